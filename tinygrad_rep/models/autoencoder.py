"""MLP autoencoders (plain, denoising, masked) on images: the model, its training and evaluation.

    import tinygrad_rep as tr
    from tinygrad_rep.models.autoencoder import Autoencoder, train
    x_train, y_train, x_test, y_test = tr.data.load("digits")
    ae = Autoencoder(64, hidden=(128, 64), bottleneck=8, seed=0)
    train(ae, x_train, epochs=100, batch_size=64, lr=3e-3)
    codes, recon = ae.encode(x_test), ae.reconstruct(x_test)

encoder: d -> hidden[0] -> ... -> m (ReLU between layers, linear code);
decoder: m -> ... -> hidden[0] -> d (mirror image, sigmoid output since pixels are in [0, 1]).
Variants differ only in what goes in and where the loss is taken:
  plain      input x, loss mean (x_hat - x)^2 over all entries;
  denoising  input x + N(0, noise^2), loss against the clean x;
  masked     a random `mask_ratio` of the entries set to 0, loss on the hidden entries only
             (the MLP form of a masked autoencoder: nothing is learned from visible entries).
The command `tinygrad-rep train autoencoder` is commands/train/autoencoder.py.
"""
import time

import numpy as np

from .. import functional as F
from .. import nn, optim
from ..data import datasets, iterate_minibatches
from ..output import Progress
from ..tensor import Tensor
from . import evaluation as ev
from . import training

KIND = "autoencoder"
VARIANTS = ("plain", "denoising", "masked")
IMAGE_SHAPES, CLASS_NAMES = datasets.IMAGE_SHAPES, datasets.CLASS_NAMES
# Defaults per data set, chosen so that a run with only --data and --out meets the quality
# targets (held-out MSE below PCA's at the same m, probe accuracy at least PCA's).
DEFAULTS = {
    "digits": dict(hidden=(128, 64), bottleneck=8, epochs=60, batch_size=64, lr=3e-3,
                   variant="plain", finetune_steps=400, probe_steps=1000),
    "fashion-mnist": dict(hidden=(512, 128), bottleneck=8, epochs=15, batch_size=256, lr=2e-3,
                          variant="denoising", finetune_steps=1000, probe_steps=1000),
}


class Autoencoder(nn.Module):
    """MLP autoencoder: encoder d -> hidden... -> m, decoder m -> ...hidden -> d (sigmoid).

    input_dim: d; hidden: widths of the encoder's hidden layers (the decoder mirrors them);
    bottleneck: m; variant: "plain" | "denoising" | "masked"; noise: std of the denoising
    variant's Gaussian noise; mask_ratio: fraction hidden by the masked variant;
    seed: initialisation seed; dtype: float32 (default) or float64 (gradient checks).
    """

    def __init__(self, input_dim, hidden=(128, 64), bottleneck=8, variant="plain", noise=0.2,
                 mask_ratio=0.5, seed=0, dtype=np.float32):
        super().__init__()
        if variant not in VARIANTS:
            raise ValueError(f"Autoencoder: variant must be one of {VARIANTS}, got {variant!r}")
        hidden = tuple(int(h) for h in hidden)
        if int(bottleneck) <= 0 or any(h <= 0 for h in hidden):
            raise ValueError(f"Autoencoder: widths must be positive, got hidden={hidden}, "
                             f"bottleneck={bottleneck}")
        if not 0 < mask_ratio < 1:
            raise ValueError(f"Autoencoder: mask_ratio must be in (0, 1), got {mask_ratio}")
        if noise < 0:
            raise ValueError(f"Autoencoder: noise must be >= 0, got {noise}")
        self.input_dim, self.hidden, self.bottleneck = int(input_dim), hidden, int(bottleneck)
        self.variant, self.noise, self.mask_ratio, self.seed = variant, float(noise), float(mask_ratio), seed
        self.dtype = np.dtype(dtype)
        rng = np.random.default_rng(seed)
        widths = (self.input_dim,) + hidden + (self.bottleneck,)
        self.encoder = _mlp(widths, rng, dtype)
        self.decoder = _mlp(widths[::-1], rng, dtype)
        self.decoder.append(nn.Sigmoid())

    def config(self):
        """Constructor arguments as a JSON-ready dict (what model.json stores)."""
        return {"input_dim": self.input_dim, "hidden": list(self.hidden), "bottleneck": self.bottleneck,
                "variant": self.variant, "noise": self.noise, "mask_ratio": self.mask_ratio,
                "seed": self.seed}

    def forward(self, x):
        """Reconstruction (Tensor) of a batch x (Tensor or array of shape (n, d))."""
        return self.decoder(self.encoder(x))

    # ---- training objective ----
    def corrupt(self, x, rng):
        """The network's input for clean rows x, and the mask of entries the loss covers
        (None = all): x itself, x plus Gaussian noise, or x with hidden entries zeroed."""
        if self.variant == "denoising":
            return (x + rng.standard_normal(x.shape).astype(x.dtype) * x.dtype.type(self.noise)), None
        if self.variant == "masked":
            hidden = rng.random(x.shape) < self.mask_ratio
            return np.where(hidden, x.dtype.type(0), x), hidden
        return x, None

    def loss_on(self, inputs, target, mask=None):
        """The loss for network inputs and clean targets (Tensors): mean squared error over all
        entries, or, with a boolean mask, over the masked entries only (zero gradient elsewhere)."""
        recon = self(inputs)
        if mask is None:
            return F.mse_loss(recon, target)
        count = max(int(mask.sum()), 1)
        d = (recon - target) * Tensor._wrap(mask.astype(recon.dtype))
        return (d * d).sum() * (1.0 / count)

    def loss(self, x, rng):
        """The variant's training loss (scalar Tensor) on a batch of clean rows x (numpy)."""
        x = np.asarray(x, dtype=self.dtype)
        inputs, mask = self.corrupt(x, rng)
        return self.loss_on(Tensor._wrap(inputs), Tensor._wrap(x), mask)

    # ---- numpy in, numpy out ----
    def encode(self, x, batch_size=4096):
        """Codes (n, m) of images x (n, d), as a numpy array (no graph is recorded)."""
        return ev.predict(self.encoder, self._rows(x), batch_size)

    def decode(self, codes, batch_size=4096):
        """Images (n, d) the decoder makes from codes (n, m), as a numpy array: a walk through
        the code space is decode() of points between two images' codes."""
        codes = np.asarray(codes, dtype=self.dtype)
        if codes.ndim == 1:
            codes = codes[None]
        if codes.ndim != 2 or codes.shape[1] != self.bottleneck:
            raise ValueError(f"Autoencoder.decode: expected codes of shape (n, {self.bottleneck}), "
                             f"got {codes.shape}")
        return ev.predict(self.decoder, codes, batch_size)

    def reconstruct(self, x, batch_size=4096):
        """Reconstructions (n, d) of images x (n, d), as a numpy array."""
        return ev.predict(self, self._rows(x), batch_size)

    def reconstruction_mse(self, x):
        """Mean squared error between x and its reconstruction."""
        x = self._rows(x)
        return float(np.mean((self.reconstruct(x).astype(np.float64) - x) ** 2))

    def _rows(self, x):
        x = np.asarray(x, dtype=self.dtype)
        if x.ndim == 1:
            x = x[None]
        x = x.reshape(len(x), -1)
        if x.shape[1] != self.input_dim:
            raise ValueError(f"Autoencoder: expected inputs with {self.input_dim} values per row, "
                             f"got shape {x.shape}")
        return x

    def save(self, folder, **extra):
        """Write model.json + weights.npz into `folder` (reload with tr.models.load)."""
        from . import save_model
        return save_model(folder, KIND, self.config(), self.state_dict(), **extra)


def _mlp(widths, rng, dtype):
    layers = []
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
        last = i == len(widths) - 2
        layers.append(nn.Linear(a, b, init="xavier" if last else "kaiming", rng=rng, dtype=dtype))
        if not last:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def load_model(folder):
    """Rebuild the Autoencoder saved in `folder` (model.json + weights.npz)."""
    from . import load_module
    return load_module(folder, KIND, Autoencoder)


# ---------------------------------------------------------------------------- training

def train(model, x_train, epochs, batch_size, lr, seed=0, progress=True, desc="train", checkpoint=None):
    """Train `model` on the rows of x_train with Adam (cosine-decayed learning rate).

    Shows a progress bar (epoch, loss, samples/s) unless progress=False. Returns a dict:
    epoch_losses (mean training loss per epoch), seconds, samples_per_second, steps.
    Non-finite data raise NonFiniteDataError naming the row; a run whose loss, gradients or
    parameters stop being finite or explode raises DivergenceError (models/training.py).
    checkpoint: a training.Checkpoint saved at the end of every epoch; if it holds a loaded
    state (Checkpoint.load), training continues from it, bit-identical to an uninterrupted run.
    """
    x_train = np.ascontiguousarray(x_train, dtype=model.dtype)
    training.check_finite_rows(x_train)
    n = len(x_train)
    steps_per_epoch = -(-n // batch_size)
    total = epochs * steps_per_epoch
    opt = optim.Adam(model.parameters(), lr=lr)
    sched = optim.CosineAnnealingLR(opt, T_max=max(total, 1))
    rng = np.random.default_rng(seed)
    history, first_epoch, seen, seconds_before = [], 0, 0, 0.0
    if checkpoint is not None and checkpoint.state is not None:
        arrays, meta = checkpoint.state
        training.restore_module_and_optimizer(model, opt, sched, arrays, meta)
        training.set_rng_state(rng, meta["rng"])
        history, first_epoch, seen, seconds_before = meta["history"], meta["epoch"], meta["seen"], meta["seconds"]
    watch = training.DivergenceWatch(model.named_parameters(), hint="try a smaller --lr")
    model.train()
    bar = Progress(total, desc=desc, disable=not progress)
    bar.update(first_epoch * steps_per_epoch)
    start = time.perf_counter() - seconds_before
    try:
        for epoch in range(first_epoch, epochs):
            epoch_loss = 0.0
            for (xb,) in iterate_minibatches(x_train, batch_size=batch_size, seed=rng):
                loss = model.loss(xb, rng)
                opt.zero_grad()
                loss.backward()
                watch.gradients(epoch + 1)
                opt.step()
                sched.step()
                value = float(loss.data)
                watch.step(value, epoch + 1)
                epoch_loss += value * len(xb)
                seen += len(xb)
                rate = seen / max(time.perf_counter() - start, 1e-9)
                bar.update(1, epoch=f"{epoch + 1}/{epochs}", loss=value, samples_per_s=round(rate))
            history.append(epoch_loss / n)
            if checkpoint is not None:
                arrays, meta = training.module_and_optimizer_state(model, opt, sched)
                checkpoint.save(arrays, {**meta, "rng": training.rng_state(rng), "epoch": epoch + 1,
                                         "history": history, "seen": seen,
                                         "seconds": time.perf_counter() - start})
    finally:
        bar.close()
    model.eval()
    seconds = time.perf_counter() - start
    return {"epoch_losses": history, "seconds": seconds, "steps": total,
            "samples_per_second": seen / max(seconds, 1e-9)}


# ---------------------------------------------------------------------------- evaluation

def objective_mse(model, x, seed=0):
    """The variant's own held-out error: plain, the reconstruction MSE; denoising, the MSE of
    reconstructing clean x from noisy x; masked, the MSE on the hidden entries only (a masked
    model is never trained to reproduce the visible ones, so its plain recon_mse is not its aim)."""
    x = model._rows(x)
    inputs, mask = model.corrupt(x, np.random.default_rng(seed))
    err = (model.reconstruct(inputs).astype(np.float64) - x) ** 2
    return float(err[mask].mean() if mask is not None else err.mean())


def evaluate(model, x_train, y_train, x_test, y_test, probe_steps=500, finetune_steps=600,
             label_fraction=0.01, finetune=True, seed=0):
    """Reconstruction vs PCA at the same m, linear probe on the codes vs on PCA codes, and
    (when finetune) fine-tuning vs from scratch, with all labels and with `label_fraction`."""
    m = model.bottleneck
    pca = ev.PCA(m).fit(x_train)
    ztr, zte = model.encode(x_train), model.encode(x_test)
    ptr, pte = pca.transform(x_train), pca.transform(x_test)
    out = {"recon_mse": model.reconstruction_mse(x_test), "pca_mse": pca.reconstruction_mse(x_test),
           "mean_image_mse": ev.mean_image_mse(x_train, x_test),
           "train_recon_mse": model.reconstruction_mse(x_train),
           "objective_mse": objective_mse(model, x_test, seed)}
    sub = ev.label_subset(y_train, label_fraction, seed=seed)
    budgets = {"all": np.arange(len(y_train)), f"{label_fraction:.0%}": sub}
    table = {}
    for name, idx in budgets.items():
        row = {"labels": int(len(idx)),
               "probe": ev.linear_probe(ztr[idx], y_train[idx], zte, y_test, steps=probe_steps, seed=seed)["accuracy"],
               "pca_probe": ev.linear_probe(ptr[idx], y_train[idx], pte, y_test, steps=probe_steps, seed=seed)["accuracy"]}
        if finetune:
            scratch = Autoencoder(**{**model.config(), "seed": model.seed + 1}).encoder
            for key, enc in (("fine_tune", model.encoder), ("scratch", scratch)):
                row[key] = ev.fine_tune(enc, m, x_train[idx], y_train[idx], x_test, y_test,
                                        steps=finetune_steps, seed=seed)["accuracy"]
        table[name] = row
    out["probe_accuracy"] = table["all"]["probe"]
    out["pca_probe_accuracy"] = table["all"]["pca_probe"]
    if finetune:
        out["fine_tune_accuracy"] = table["all"]["fine_tune"]
        out["scratch_accuracy"] = table["all"]["scratch"]
    out["labels"] = table
    return out, ztr, zte
