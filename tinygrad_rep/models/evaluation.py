"""Evaluating learned representations: PCA baseline, linear probe, fine-tuning, label subsets.

Everything takes numpy arrays (codes, images, labels) or an encoder Module (Tensor in, codes
out), so any representation learner can use it. Training runs on this library's own engine:
the probe is softmax regression (the "final-layer adaptation": a new linear layer on frozen
codes), fine-tuning trains a copy of the encoder together with a new linear head.

    pca = PCA(8).fit(x_train)
    mse = pca.reconstruction_mse(x_test)
    acc = linear_probe(pca.transform(x_train), y_train, pca.transform(x_test), y_test)["accuracy"]
"""
import copy

import numpy as np

from .. import functional as F
from .. import nn, optim
from ..autograd import no_grad
from ..tensor import Tensor
from .training import DivergenceWatch


# ---------------------------------------------------------------------------- PCA

class PCA:
    """Principal component analysis through numpy's SVD: the optimal linear code of size m.

    fit(x) centres x and keeps the top m right singular vectors (`components`, shape (m, d));
    transform(x) = (x - mean) @ components.T; inverse_transform(z) = z @ components + mean.
    Among all rank-m linear encoders/decoders this gives the smallest squared reconstruction
    error on the data it was fitted to (Eckart-Young).
    """

    def __init__(self, m):
        if int(m) <= 0:
            raise ValueError(f"PCA: the number of components must be positive, got {m}")
        self.m = int(m)
        self.mean = self.components = self.explained_variance = None

    def fit(self, x):
        """Fit to the rows of x (n, d); returns self."""
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2:
            raise ValueError(f"PCA.fit: expected a 2-D array (n, d), got shape {x.shape}")
        if self.m > min(x.shape):
            raise ValueError(f"PCA: {self.m} components need at least {self.m} rows and columns, "
                             f"got shape {x.shape}")
        self.mean = x.mean(axis=0)
        _, s, vt = np.linalg.svd(x - self.mean, full_matrices=False)
        self.components = vt[:self.m]
        self.explained_variance = s[:self.m] ** 2 / max(len(x) - 1, 1)
        return self

    def _fitted(self):
        if self.components is None:
            raise ValueError("PCA: call fit(x) first")

    def transform(self, x):
        """Codes (n, m) of the rows of x, as float32."""
        self._fitted()
        return ((np.asarray(x, dtype=np.float64) - self.mean) @ self.components.T).astype(np.float32)

    def inverse_transform(self, z):
        """Reconstructions (n, d) from codes (n, m), as float32."""
        self._fitted()
        return (np.asarray(z, dtype=np.float64) @ self.components + self.mean).astype(np.float32)

    def reconstruction_mse(self, x):
        """Mean squared error of reconstructing x through the m-dimensional code."""
        x = np.asarray(x, dtype=np.float64)
        return float(np.mean((self.inverse_transform(self.transform(x)) - x) ** 2))


def mean_image_mse(x_train, x_test):
    """The trivial baseline: predict the training mean for every test image."""
    return float(np.mean((np.asarray(x_test, np.float64) - np.asarray(x_train, np.float64).mean(0)) ** 2))


# ---------------------------------------------------------------------------- helpers

def accuracy(scores, labels):
    """Fraction of rows whose argmax (for (n, C) scores) or value (for (n,) predictions) equals the label."""
    scores, labels = np.asarray(scores), np.asarray(labels)
    pred = scores.argmax(axis=1) if scores.ndim == 2 else scores
    if pred.shape != labels.shape:
        raise ValueError(f"accuracy: {pred.shape[0]} predictions but {labels.shape[0]} labels")
    return float(np.mean(pred == labels)) if len(labels) else float("nan")


def label_subset(labels, fraction, seed=0, min_per_class=1):
    """Indices of a class-stratified random subset holding `fraction` of the labels
    (at least `min_per_class` of each class), sorted."""
    labels = np.asarray(labels)
    if not 0 < fraction <= 1:
        raise ValueError(f"label_subset: fraction must be in (0, 1], got {fraction}")
    rng = np.random.default_rng(seed)
    picked = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        k = min(len(idx), max(min_per_class, int(round(fraction * len(idx)))))
        picked.append(rng.choice(idx, size=k, replace=False))
    return np.sort(np.concatenate(picked))


def standardize(train, *others):
    """Scale every column to zero mean and unit variance using `train`'s statistics.
    Returns the transformed (train, *others)."""
    train = np.asarray(train, dtype=np.float32)
    mu, sd = train.mean(0), train.std(0)
    sd = np.where(sd > 1e-8, sd, 1.0).astype(np.float32)
    return tuple((np.asarray(a, dtype=np.float32) - mu) / sd for a in (train,) + others)


def predict(model, x, batch_size=2048):
    """model(Tensor(batch)) over x in batches without recording the graph -> numpy (n, ...)."""
    outs = []
    with no_grad():
        for start in range(0, len(x), batch_size):
            outs.append(model(Tensor(np.ascontiguousarray(x[start:start + batch_size]))).data)
    return np.concatenate(outs) if outs else np.zeros((0,))


def _num_classes(*label_arrays):
    return int(max(int(np.max(y)) for y in label_arrays if len(y))) + 1


def _cycle_batches(n, batch_size, rng):
    """Endless shuffled minibatch indices: one permutation per pass."""
    while True:
        order = rng.permutation(n)
        for start in range(0, n, batch_size):
            yield order[start:start + batch_size]


def fit_classifier(model, x, y, steps, lr, batch_size=256, weight_decay=0.0, seed=0):
    """Train `model` (Tensor -> logits) with Adam on cross-entropy for `steps` minibatch steps,
    learning rate decayed by a cosine to 0. Returns the list of losses (one per step); raises
    DivergenceError (models/training.py) if training diverges."""
    params = [p for p in model.parameters() if p.requires_grad]
    opt = optim.Adam(params, lr=lr, weight_decay=weight_decay)
    sched = optim.CosineAnnealingLR(opt, T_max=max(int(steps), 1))
    rng = np.random.default_rng(seed)
    batches = _cycle_batches(len(x), min(batch_size, len(x)), rng)
    losses = []
    watch = DivergenceWatch([(n, p) for n, p in model.named_parameters() if p.requires_grad],
                            hint="try a smaller learning rate")
    model.train()
    for _ in range(int(steps)):
        idx = next(batches)
        loss = F.cross_entropy(model(Tensor(x[idx])), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        losses.append(float(loss.data))
        watch.step(losses[-1])
    model.eval()
    return losses


# ---------------------------------------------------------------------------- probe / fine-tune

def linear_probe(train_codes, train_labels, test_codes, test_labels, steps=1000, lr=0.05,
                 batch_size=4096, weight_decay=1e-4, seed=0):
    """Softmax regression on frozen codes (standardized with the training codes' statistics).

    Adam on cross-entropy for `steps` steps of `batch_size` rows (the whole set when smaller:
    full-batch for small sets), cosine-decayed learning rate, L2 `weight_decay`.
    Returns {"accuracy", "train_accuracy", "loss"}.
    """
    ztr, zte = standardize(train_codes, test_codes)
    ytr, yte = np.asarray(train_labels, np.int64), np.asarray(test_labels, np.int64)
    if len(ztr) != len(ytr) or len(zte) != len(yte):
        raise ValueError(f"linear_probe: {len(ztr)} train codes for {len(ytr)} labels, "
                         f"{len(zte)} test codes for {len(yte)} labels")
    head = nn.Linear(ztr.shape[1], _num_classes(ytr, yte), init="xavier", rng=seed)
    losses = fit_classifier(head, ztr, ytr, steps, lr, batch_size, weight_decay, seed)
    return {"accuracy": accuracy(predict(head, zte), yte),
            "train_accuracy": accuracy(predict(head, ztr), ytr), "loss": losses[-1]}


class Classifier(nn.Module):
    """An encoder (Tensor -> codes of size code_dim) followed by a new linear head."""

    def __init__(self, encoder, code_dim, num_classes, seed=0):
        super().__init__()
        self.encoder = encoder
        self.head = nn.Linear(code_dim, num_classes, init="xavier", rng=seed)

    def forward(self, x):
        return self.head(self.encoder(x))


def fine_tune(encoder, code_dim, x_train, y_train, x_test, y_test, steps=500, lr=1e-3,
              batch_size=128, weight_decay=0.0, seed=0, freeze=False, copy_encoder=True):
    """Train a copy of `encoder` plus a new linear head on labelled images; returns
    {"accuracy", "train_accuracy", "loss"}.

    With a pretrained encoder this is fine-tuning; with a freshly initialised one it is the
    from-scratch baseline; with freeze=True only the head learns (a probe through the encoder).
    The caller's encoder is left untouched unless copy_encoder=False.
    """
    enc = copy.deepcopy(encoder) if copy_encoder else encoder
    enc.requires_grad_(not freeze)
    x_train, x_test = np.asarray(x_train, np.float32), np.asarray(x_test, np.float32)
    ytr, yte = np.asarray(y_train, np.int64), np.asarray(y_test, np.int64)
    model = Classifier(enc, code_dim, _num_classes(ytr, yte), seed=seed)
    losses = fit_classifier(model, x_train, ytr, steps, lr, batch_size, weight_decay, seed)
    return {"accuracy": accuracy(predict(model, x_test), yte),
            "train_accuracy": accuracy(predict(model, x_train), ytr), "loss": losses[-1]}
