"""SimCLR contrastive learning on images (NT-Xent): the model, its training and its evaluation.

    from tinygrad_rep.data import augment, load
    from tinygrad_rep.models import contrastive as cl
    x_train, y_train, x_test, y_test = load("digits")
    model = cl.SimCLR(64, dim=128, hidden=(256,), image_shape=(8, 8), seed=0)
    cl.train(model, x_train, augment.preset("digits", (8, 8)), epochs=80, batch_size=128)
    codes = model.encode(x_test)                        # numpy in, numpy out: the representation
    # a saved run: tinygrad_rep.models.load("runs/simclr").encode(x_test)

One training step (SimCLR, Chen et al. 2020):
  a batch of N images -> two augmented views of each (tinygrad_rep.data.augment, numpy, seeded)
  -> encoder f: an MLP d -> hidden... -> dim, ReLU after every layer, or 3x3 stride-2
     convolutions with ReLUs, flattened (the code size is then channels[-1] x H/4 x W/4):
     the codes h = f(x)
  -> projection head g (dim -> proj_hidden... -> proj_dim, ReLU between: z = g(h))
  -> F.nt_xent_loss(z_view1, z_view2, temperature): 2N anchors, each view's positive is the other
     view of its image, the other 2N - 2 views are its negatives
  -> backward -> Adam (optionally AdamW weight decay), learning rate with a linear warm-up and a
     cosine decay to 0, updated every step.
The head is used for training only: the representation is the encoder's output h, which is
what `encode` returns and what every evaluation uses. For the conv encoder h is the last
convolution's feature map, before any fully connected layer, as SimCLR takes ResNet's pooled
features: the layers after it adapt to the contrastive task and transfer less well (measured on
Fashion-MNIST with 1% of the labels: a probe on the feature map beats one on a 256-wide
fully connected layer above it by 2-3 points, from the same trained network).

Evaluation (`evaluate`) compares, for each label budget (all labels and a small fraction):
  probe        softmax regression on the frozen SimCLR codes (trained with this engine; on a
               small budget its L2 weight decay is chosen by cross-validation on the labelled
               rows, the same way for every feature set: see `probe`)
  fine_tune    the SimCLR encoder plus a new linear head, all trained on the labels
  scratch      the same encoder architecture, freshly initialised, trained the same way
  untrained    softmax regression on the codes of that freshly initialised encoder, untrained: the
               control that separates what SimCLR learned from what the architecture gives (a
               wide random ReLU feature map is already a fair representation)
  raw_pixels   softmax regression on the pixels
  pca          softmax regression on PCA codes of the same dimension (at most the pixel count)
  autoencoder  softmax regression on the codes of an MLP autoencoder of the same dimension (at
               most the pixel count; hidden widths `hidden`), or of a saved one given by path
The command `tinygrad-rep train contrastive` is commands/train/contrastive.py; figures are in plots.py.
"""
import math
import os
import time

import numpy as np

from .. import functional as F
from .. import nn, optim
from ..data import datasets, iterate_minibatches
from ..output import Progress
from ..tensor import Tensor
from . import evaluation as ev
from . import training

KIND = "contrastive"
# training objectives: NT-Xent (SimCLR: 2N anchors, 2N - 2 negatives each); InfoNCE in both
# directions (anchors of one view against the other view's N candidates, averaged over the two
# directions); triplet margin loss on L2-normalized projections (positive: the other view;
# negative: the other view of the previous image in the batch)
LOSSES = ("nt-xent", "info-nce", "triplet")
IMAGE_SHAPES, CLASS_NAMES = datasets.IMAGE_SHAPES, datasets.CLASS_NAMES
# Defaults per data set, chosen so that a run with only --data and --out meets the quality
# targets: on digits the probe beats raw pixels with 10% of the labels; on Fashion-MNIST it beats
# raw pixels and the from-scratch encoder with 1% of the labels and is within 2 points of raw
# pixels with all of them.
DEFAULTS = {
    "digits": dict(encoder="mlp", hidden=(256,), channels=(16, 32), dim=128, proj_hidden=128, proj_dim=64,
                   epochs=80, batch_size=128, temperature=0.5, lr=1e-3, warmup_epochs=2, weight_decay=0.0,
                   label_fraction=0.1, probe_steps=500, finetune_steps=600, finetune_steps_all=1000,
                   finetune=True, autoencoder_epochs=None),
    # the default Fashion-MNIST run is short (training and evaluation within minutes on two cores:
    # fewer epochs, no fine-tuning of the conv encoder, a short autoencoder); FULL keeps the long protocol
    "fashion-mnist": dict(encoder="conv", hidden=(1024,), channels=(16, 32), dim=256, proj_hidden=(256, 256),
                          proj_dim=64, epochs=8, batch_size=256, temperature=0.5, lr=1e-3, warmup_epochs=1,
                          weight_decay=0.0, label_fraction=0.01, probe_steps=500, finetune_steps=600,
                          finetune_steps_all=1000, finetune=False, autoencoder_epochs=2),
}
# `--full`: the long protocol, overriding DEFAULTS (autoencoder_epochs None = SimCLR's epochs)
FULL = {"digits": {}, "fashion-mnist": dict(epochs=30, finetune=True, autoencoder_epochs=None)}


# ---------------------------------------------------------------------------------------- model

class _ToImages(nn.Module):
    """Rows (N, H*W) -> channels-last images (N, H, W, 1) for the convolutional encoder."""

    def __init__(self, shape):
        super().__init__()
        self.shape = tuple(shape)

    def forward(self, x):
        return x.reshape(x.shape[0], self.shape[0], self.shape[1], 1)

    def extra_repr(self):
        return f"shape={self.shape}"


def conv_code_size(image_shape, channels):
    """Code size of the conv encoder: channels[-1] x H' x W', each convolution halving H and W."""
    from ..nn.conv import output_size
    h, w = image_shape
    for _ in channels:
        h, w = output_size(h, 3, 2, 1), output_size(w, 3, 2, 1)
    return h * w * channels[-1]


def _conv_encoder(image_shape, channels, rng, dtype):
    """3x3 convolutions with stride 2 and padding 1 (each halves the image), ReLU after each,
    flattened: (N, H*W) -> (N, conv_code_size(image_shape, channels))."""
    from ..nn.conv import Conv2d
    layers = [_ToImages(image_shape)]
    c_in = 1
    for c in channels:
        layers += [Conv2d(c_in, c, 3, stride=2, padding=1, rng=rng, dtype=dtype), nn.ReLU()]
        c_in = c
    layers.append(nn.Flatten())
    return nn.Sequential(*layers)


def _mlp(widths, rng, dtype, relu_last):
    layers = []
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
        layers.append(nn.Linear(a, b, rng=rng, dtype=dtype))
        if i < len(widths) - 2 or relu_last:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class SimCLR(nn.Module):
    """Encoder + projection head for SimCLR.

    input_dim: pixels per image d; encoder: "mlp" (d -> hidden... -> dim, a ReLU after each
    layer, as SimCLR's pooled ResNet features) or "conv" (3x3 stride-2 convolutions with
    `channels` output channels each and ReLUs, flattened; needs image_shape); dim: the code
    size, 128 by default for the MLP; for the conv encoder it follows from channels and the
    image (conv_code_size), and dim may be left None; proj_hidden: the projection head's hidden
    width(s), an int or a sequence; proj_dim: its output width; image_shape: (H, W) of the
    images (d must equal H*W); seed: initialisation; dtype: float32 (default) or float64.
    """

    def __init__(self, input_dim, dim=None, hidden=(256,), proj_hidden=128, proj_dim=64,
                 image_shape=None, seed=0, dtype=np.float32, encoder="mlp", channels=(16, 32)):
        super().__init__()
        hidden = tuple(int(h) for h in hidden)
        proj_hidden = (int(proj_hidden),) if np.ndim(proj_hidden) == 0 else tuple(int(h) for h in proj_hidden)
        if encoder not in ("mlp", "conv"):
            raise ValueError(f"SimCLR: encoder must be 'mlp' or 'conv', got {encoder!r}")
        channels = tuple(int(c) for c in channels)
        if encoder == "conv":
            if image_shape is None or not channels or min(channels) <= 0:
                raise ValueError("SimCLR: a conv encoder needs image_shape and positive channels")
            size = conv_code_size(tuple(int(s) for s in image_shape), channels)
            if dim is not None and int(dim) != size:
                raise ValueError(f"SimCLR: the conv encoder's code size is set by channels and the image: "
                                 f"{channels[-1]} channels x {size // channels[-1]} positions = {size}, "
                                 f"got dim={dim} (leave dim unset)")
            dim = size
        dim = 128 if dim is None else int(dim)
        widths = (int(input_dim),) + hidden + (dim,)
        if min(widths) <= 0 or min(proj_hidden, default=1) <= 0 or int(proj_dim) <= 0:
            raise ValueError(f"SimCLR: every width must be positive, got input_dim={input_dim}, "
                             f"hidden={hidden}, dim={dim}, proj_hidden={proj_hidden}, proj_dim={proj_dim}")
        if image_shape is not None:
            image_shape = tuple(int(s) for s in image_shape)
            if len(image_shape) != 2 or image_shape[0] * image_shape[1] != int(input_dim):
                raise ValueError(f"SimCLR: image_shape {image_shape} does not hold {input_dim} pixels")
        self.input_dim, self.hidden, self.dim = int(input_dim), hidden, dim
        self.proj_hidden, self.proj_dim = proj_hidden, int(proj_dim)
        self.image_shape, self.seed, self.dtype = image_shape, seed, np.dtype(dtype)
        self.kind, self.channels = encoder, channels
        rng = np.random.default_rng(seed)
        self.encoder = (_mlp(widths, rng, dtype, relu_last=True) if encoder == "mlp"
                        else _conv_encoder(image_shape, channels, rng, dtype))
        self.head = _mlp((self.dim,) + self.proj_hidden + (self.proj_dim,), rng, dtype, relu_last=False)

    def config(self):
        """Constructor arguments as a JSON-ready dict (what model.json stores)."""
        return {"input_dim": self.input_dim, "dim": self.dim, "hidden": list(self.hidden),
                "proj_hidden": list(self.proj_hidden), "proj_dim": self.proj_dim,
                "image_shape": list(self.image_shape) if self.image_shape else None,
                "seed": self.seed, "dtype": self.dtype.name, "encoder": self.kind,
                "channels": list(self.channels)}

    def new_encoder(self, seed):
        """A freshly initialised encoder of the same architecture (the from-scratch baseline)."""
        return SimCLR(**{**self.config(), "seed": seed}).encoder

    def forward(self, x):
        """Projections z = head(encoder(x)) (Tensor) of a batch x (Tensor or array (n, d))."""
        return self.head(self.encoder(x))

    def loss(self, view1, view2, temperature=0.5, objective="nt-xent", margin=0.5):
        """The contrastive loss of the projections of two views (arrays (n, d)), one forward
        pass over both views. objective: see LOSSES."""
        n = len(view1)
        z = self(Tensor._wrap(np.concatenate([view1, view2]).astype(self.dtype, copy=False)))
        z1, z2 = z[:n], z[n:]
        if objective == "nt-xent":
            return F.nt_xent_loss(z1, z2, temperature)
        if objective == "info-nce":
            return (F.info_nce_loss(z1, z2, temperature=temperature)
                    + F.info_nce_loss(z2, z1, temperature=temperature)) * 0.5
        if objective == "triplet":
            z1, z2 = F.normalize(z1, axis=1), F.normalize(z2, axis=1)
            negative = z2[np.roll(np.arange(n), 1)]  # the other view of the previous image
            return F.triplet_margin_loss(z1, z2, negative, margin=margin)
        raise ValueError(f"SimCLR.loss: objective must be one of {LOSSES}, got {objective!r}")

    # ---- numpy in, numpy out ----
    def encode(self, x, batch_size=4096):
        """Codes (n, dim) of images x (n, d) or (n, H, W): the representation, as numpy."""
        return ev.predict(self.encoder, self._rows(x), batch_size)

    def project(self, x, batch_size=4096):
        """Projection-head outputs (n, proj_dim) of images x, as numpy (what the loss compares)."""
        return ev.predict(self, self._rows(x), batch_size)

    def _rows(self, x):
        x = np.asarray(x, dtype=self.dtype)
        if x.ndim == 1:
            x = x[None]
        x = x.reshape(len(x), -1)
        if x.shape[1] != self.input_dim:
            raise ValueError(f"SimCLR: expected inputs with {self.input_dim} values per row, got shape {x.shape}")
        return x

    def save(self, folder, **extra):
        """Write model.json + weights.npz into `folder` (reload with tr.models.load)."""
        from . import save_model
        return save_model(folder, KIND, self.config(), self.state_dict(), **extra)


def load_model(folder):
    """Rebuild the SimCLR model saved in `folder` (model.json + weights.npz), in eval mode."""
    from . import load_module
    return load_module(folder, KIND, SimCLR)


# ------------------------------------------------------------------------------------- training

def lr_factor(step, total, warmup):
    """The learning-rate multiplier at `step` of `total`: linear warm-up over `warmup` steps
    (from 1/warmup to 1), then a cosine decay from 1 to 0 at `total`."""
    if warmup > 0 and step < warmup:
        return (step + 1) / warmup
    span = max(total - warmup, 1)
    return 0.5 * (1.0 + math.cos(math.pi * min(step - warmup, span) / span))


def train(model, x_train, augmenter, epochs, batch_size, temperature=0.5, lr=1e-3, weight_decay=0.0,
          warmup_epochs=1, schedule="cosine", seed=0, progress=True, desc="simclr", objective="nt-xent",
          margin=0.5, checkpoint=None):
    """Train `model` with NT-Xent on two views per image of the rows of x_train.

    augmenter: a callable (images, rng) -> one view (e.g. augment.Augment); batches are shuffled
    and augmented from one Generator seeded with `seed`. A partial last batch is used (one image
    alone has no negatives and is skipped). Optimizer: Adam, or AdamW when weight_decay > 0;
    schedule: "cosine" (warm-up, then cosine to 0, per step) or "constant". objective, margin:
    the loss (LOSSES; NT-Xent by default) and the triplet loss's margin.
    Returns a dict: epoch_losses, lrs (per epoch, at its end), seconds, augment_seconds, steps,
    samples_per_second. Non-finite data raise NonFiniteDataError naming the row; a run whose loss,
    gradients or parameters stop being finite or explode raises DivergenceError (models/training.py).
    checkpoint: a training.Checkpoint saved after every epoch; one holding a loaded state is resumed.
    """
    if objective not in LOSSES:
        raise ValueError(f"train: objective must be one of {LOSSES}, got {objective!r}")
    if schedule not in ("cosine", "constant"):
        raise ValueError(f"train: schedule must be 'cosine' or 'constant', got {schedule!r}")
    x_train = np.ascontiguousarray(x_train, dtype=model.dtype)
    training.check_finite_rows(x_train)
    n = len(x_train)
    if n < 2:
        raise ValueError(f"train: SimCLR needs at least 2 images, got {n}")
    steps_per_epoch = -(-n // batch_size)
    total = epochs * steps_per_epoch
    warmup = int(round(warmup_epochs * steps_per_epoch)) if schedule == "cosine" else 0
    params = list(model.parameters())
    opt = (optim.AdamW(params, lr=lr, weight_decay=weight_decay) if weight_decay > 0
           else optim.Adam(params, lr=lr))
    if schedule == "cosine":
        sched = optim.LambdaLR(opt, lambda step: lr_factor(step, total, warmup))
    rng = np.random.default_rng(seed)
    history, lrs, first_epoch, seen, aug_seconds, seconds_before = [], [], 0, 0, 0.0, 0.0
    if checkpoint is not None and checkpoint.state is not None:
        arrays, meta = checkpoint.state
        training.restore_module_and_optimizer(model, opt, sched if schedule == "cosine" else None, arrays, meta)
        training.set_rng_state(rng, meta["rng"])
        history, lrs, first_epoch = meta["history"], meta["lrs"], meta["epoch"]
        seen, aug_seconds, seconds_before = meta["seen"], meta["augment_seconds"], meta["seconds"]
    hint = "try a smaller --lr" + (" or a larger --temperature" if objective != "triplet" else "")
    watch = training.DivergenceWatch(model.named_parameters(), hint=hint)
    model.train()
    bar = Progress(total, desc=desc, disable=not progress)
    bar.update(first_epoch * steps_per_epoch)
    start = time.perf_counter() - seconds_before
    try:
        for epoch in range(first_epoch, epochs):
            epoch_loss, counted = 0.0, 0
            for (xb,) in iterate_minibatches(x_train, batch_size=batch_size, seed=rng):
                if len(xb) < 2:
                    bar.update(1)
                    continue
                t0 = time.perf_counter()
                v1, v2 = augmenter(xb, rng), augmenter(xb, rng)
                aug_seconds += time.perf_counter() - t0
                loss = model.loss(v1, v2, temperature, objective, margin)
                opt.zero_grad()
                loss.backward()
                watch.gradients(epoch + 1)
                opt.step()
                if schedule == "cosine":
                    sched.step()
                value = float(loss.data)
                watch.step(value, epoch + 1)
                epoch_loss += value * len(xb)
                counted += len(xb)
                seen += len(xb)
                rate = seen / max(time.perf_counter() - start, 1e-9)
                bar.update(1, epoch=f"{epoch + 1}/{epochs}", loss=value, images_per_s=round(rate))
            history.append(epoch_loss / max(counted, 1))
            lrs.append(opt.param_groups[0]["lr"])
            if checkpoint is not None:
                arrays, meta = training.module_and_optimizer_state(model, opt,
                                                                   sched if schedule == "cosine" else None)
                checkpoint.save(arrays, {**meta, "rng": training.rng_state(rng), "epoch": epoch + 1,
                                         "history": history, "lrs": lrs, "seen": seen,
                                         "augment_seconds": aug_seconds, "seconds": time.perf_counter() - start})
    finally:
        bar.close()
    model.eval()
    seconds = time.perf_counter() - start
    return {"epoch_losses": history, "lrs": lrs, "seconds": seconds, "augment_seconds": aug_seconds,
            "steps": total, "samples_per_second": seen / max(seconds, 1e-9)}


# ----------------------------------------------------------------------------------- evaluation

def _timed(fn, *args, **kwargs):
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t0


def train_autoencoder_codes(x_train, x_test, dim, hidden, epochs, batch_size=256, lr=2e-3, seed=0,
                            progress=False):
    """Train a plain autoencoder whose encoder has SimCLR's architecture (hidden..., dim) and
    return (train codes, test codes, seconds)."""
    from .autoencoder import Autoencoder, train as train_ae
    ae = Autoencoder(x_train.shape[1], hidden=tuple(hidden), bottleneck=dim, seed=seed)
    fit = train_ae(ae, x_train, epochs, batch_size, lr, seed=seed, progress=progress, desc="autoencoder")
    return ae.encode(x_train), ae.encode(x_test), fit["seconds"]


# L2 weight decays tried by the probe on a small label budget, chosen by cross-validation
PROBE_WEIGHT_DECAYS = (1e-3, 1e-2, 3e-2, 1e-1)
CV_MAX_ROWS = 5000  # above this many labelled rows the probe uses ev.linear_probe's default decay


def probe(train_features, train_labels, test_features, test_labels, steps=500, seed=0,
          weight_decays=PROBE_WEIGHT_DECAYS, folds=3):
    """Linear probe (ev.linear_probe: softmax regression on standardized features) whose L2
    weight decay is chosen by `folds`-fold cross-validation on the labelled training rows alone
    (the test set is not looked at); ties go to the larger decay. With more than CV_MAX_ROWS rows
    (or a single decay given) no search is made and ev.linear_probe's default decay is used:
    with tens of thousands of labels regularization hardly matters and the search is costly.
    Returns linear_probe's dict plus "weight_decay" and "cv" ({decay: mean held-out accuracy}).
    """
    train_labels = np.asarray(train_labels)
    n = len(train_labels)
    if n > CV_MAX_ROWS or len(weight_decays) < 2:
        wd = weight_decays[0] if len(weight_decays) == 1 else 1e-4
        res = ev.linear_probe(train_features, train_labels, test_features, test_labels, steps=steps,
                              weight_decay=wd, seed=seed)
        return {**res, "weight_decay": wd, "cv": None}
    fold = np.empty(n, dtype=np.int64)
    fold[np.random.default_rng(seed).permutation(n)] = np.arange(n) % folds
    cv = {}
    for wd in weight_decays:
        accs = [ev.linear_probe(train_features[fold != k], train_labels[fold != k], train_features[fold == k],
                                train_labels[fold == k], steps=steps, weight_decay=wd, seed=seed)["accuracy"]
                for k in range(folds)]
        cv[wd] = float(np.mean(accs))
    best = max(sorted(weight_decays, reverse=True), key=lambda wd: cv[wd])
    res = ev.linear_probe(train_features, train_labels, test_features, test_labels, steps=steps,
                          weight_decay=best, seed=seed)
    return {**res, "weight_decay": best, "cv": cv}


def evaluate(model, x_train, y_train, x_test, y_test, label_fraction, subsets=3, probe_steps=500,
             finetune_steps=600, finetune_steps_all=2000, finetune=True, autoencoder=None, seed=0,
             progress=False):
    """The comparison table: for all labels and for `label_fraction` of them, the test accuracy
    and seconds of each method (see the module docstring for the methods).

    The small budget is drawn `subsets` times (class-stratified, seeds seed, seed+1, ...): a few
    hundred labels make one draw's accuracy noisy, so the table gives the mean over the draws and
    keeps each draw's accuracy ("runs"). autoencoder: None (skip), a model folder saved by
    `train autoencoder` (its codes are used; its code size may differ), or a dict of
    `train_autoencoder_codes` keyword arguments (epochs, ...) to train one of SimCLR's
    architecture and dimension here. Returns (metrics dict, test codes).
    """
    d = model.dim
    few_name = f"{label_fraction:g}"
    budgets = {"all": [np.arange(len(y_train))],
               few_name: [ev.label_subset(y_train, label_fraction, seed=seed + k) for k in range(max(int(subsets), 1))]}
    (ztr, zte), t_codes = _timed(lambda: (model.encode(x_train), model.encode(x_test)))
    m = min(d, x_train.shape[1], len(x_train))  # PCA cannot have more components than pixels
    pca, t_pca = _timed(lambda: ev.PCA(m).fit(x_train))
    ptr, pte = pca.transform(x_train), pca.transform(x_test)
    features = {"probe": (ztr, zte, t_codes), "raw_pixels": (x_train, x_test, 0.0), "pca": (ptr, pte, t_pca)}
    fresh = model.new_encoder(model.seed + 1)  # also the from-scratch baseline's starting point
    (utr, ute), t_untrained = _timed(lambda: (ev.predict(fresh, model._rows(x_train), 4096),
                                              ev.predict(fresh, model._rows(x_test), 4096)))
    features["untrained"] = (utr, ute, t_untrained)
    ae_info = None
    if isinstance(autoencoder, (str, os.PathLike)):
        from . import load as load_any
        ae, t_ae = _timed(load_any, autoencoder)
        features["autoencoder"] = (ae.encode(x_train), ae.encode(x_test), t_ae)
        ae_info = {"source": os.fspath(autoencoder), "dim": int(features["autoencoder"][0].shape[1])}
    elif isinstance(autoencoder, dict):
        atr, ate, t_ae = train_autoencoder_codes(x_train, x_test, m, model.hidden, seed=seed,
                                                 progress=progress, **autoencoder)
        features["autoencoder"] = (atr, ate, t_ae)
        ae_info = {"source": "trained here", "dim": m, "hidden": list(model.hidden), **autoencoder}

    # one bar over every (budget, method, draw) cell: the evaluation can take minutes
    methods = len(features) + (2 if finetune else 0)
    bar = Progress(sum(len(d) for d in budgets.values()) * methods, desc="evaluation",
                   disable=not progress)

    def cell(fn, draws, what):
        runs, seconds, decays = [], 0.0, []
        for idx in draws:
            res, t = _timed(fn, idx)
            runs.append(res["accuracy"])
            seconds += t
            if "weight_decay" in res:
                decays.append(res["weight_decay"])
            bar.update(1, method=what, accuracy=res["accuracy"])
        out = {"accuracy": float(np.mean(runs)), "seconds": seconds / len(runs)}
        if len(runs) > 1:
            out["runs"] = runs
        if decays:
            out["weight_decay"] = decays if len(decays) > 1 else decays[0]
        return out

    table = {}
    try:
        for name, draws in budgets.items():
            row = {"labels": int(len(draws[0])), "draws": len(draws)}
            for key, (ftr, fte, t_feat) in features.items():
                row[key] = cell(lambda idx: probe(ftr[idx], y_train[idx], fte, y_test, steps=probe_steps,
                                                  seed=seed), draws, f"{key} ({name})")
                row[key]["feature_seconds"] = t_feat
            if finetune:
                steps = finetune_steps_all if name == "all" else finetune_steps
                for key, enc in (("fine_tune", model.encoder), ("scratch", fresh)):  # fine_tune trains a copy
                    row[key] = cell(lambda idx: ev.fine_tune(enc, d, x_train[idx], y_train[idx], x_test, y_test,
                                                             steps=steps, seed=seed), draws, f"{key} ({name})")
                    row[key]["steps"] = steps
            table[name] = row
    finally:
        bar.close()
    few = table[few_name]
    out = {"label_fraction": label_fraction,
           "probe_accuracy": few["probe"]["accuracy"],
           "raw_pixels_accuracy": few["raw_pixels"]["accuracy"],
           "pca_accuracy": few["pca"]["accuracy"],
           "probe_accuracy_all": table["all"]["probe"]["accuracy"],
           "raw_pixels_accuracy_all": table["all"]["raw_pixels"]["accuracy"],
           "untrained_accuracy": few["untrained"]["accuracy"],
           "pca_dim": m, "labels": table}
    if finetune:
        out["fine_tune_accuracy"] = few["fine_tune"]["accuracy"]
        out["scratch_accuracy"] = few["scratch"]["accuracy"]
    if ae_info is not None:
        out["autoencoder"] = ae_info
        out["autoencoder_accuracy"] = few["autoencoder"]["accuracy"]
    return out, zte


# ------------------------------------------------------------------------------------ similarity

def similarity_matrix(model, x, augmenter, rng):
    """Cosine similarities (2n x 2n) of the projections of two views of each image of x, ordered
    [view 1 of images 0..n-1, view 2 of images 0..n-1]: positives sit on the two off-diagonals
    at distance n."""
    z = model.project(np.concatenate([augmenter(x, rng), augmenter(x, rng)]))
    z = z / np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-12)
    return z @ z.T
