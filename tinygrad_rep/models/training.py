"""What every trainer of the models shares: the divergence watch and the epoch checkpoint.

    watch = DivergenceWatch(model.named_parameters(), hint="try a smaller --lr")
    for step ...:
        loss.backward(); watch.gradients(epoch); opt.step(); watch.step(loss_value, epoch)
    # or, where a pass over the parameters is costly: watch.loss(value) every step and
    # watch.parameters() every so often

A run diverges when the loss, a gradient or a parameter stops being finite, or when the
parameters' norm grows by `growth` (three orders of magnitude) within `window` checks: a bounded
loss such as NT-Xent never explodes by itself, so the parameters are watched too. The watch raises
DivergenceError (a FloatingPointError) with a one-line message that says what went wrong first,
and the trainer stops before it writes anything. Non-finite training data is refused before the
first step (`check_finite_rows`, naming the first bad row), so a NaN in the data is never
reported as a divergence of the optimizer.

A Checkpoint is one file (an .npz written atomically by tr.save) holding everything a trainer
needs to continue as if never stopped: parameters, optimizer and scheduler state, the random
generator's state, the epoch and the history. Resuming from it gives the same result, bit for bit,
as the uninterrupted run.
"""
import collections
import json
import math
import os

import numpy as np

from ..serialization import load as load_arrays
from ..serialization import save as save_arrays
from ..tensor import Tensor


class DivergenceError(FloatingPointError):
    """Training stopped because it diverged; the message is one line naming the cause."""


class NonFiniteDataError(DivergenceError, ValueError):
    """The training data hold NaN or infinite values (named by row); nothing was trained."""


def check_finite_rows(x, what="training data"):
    """Raise NonFiniteDataError naming the first row (and column) of x holding NaN or inf."""
    x = np.asarray(x)
    if x.dtype.kind != "f" or np.isfinite(x).all():
        return
    flat = x.reshape(len(x), -1)
    row = int(np.flatnonzero(~np.isfinite(flat).all(axis=1))[0])
    col = int(np.flatnonzero(~np.isfinite(flat[row]))[0])
    count = int((~np.isfinite(flat).all(axis=1)).sum())
    raise NonFiniteDataError(f"{what}: row {row} holds {flat[row, col]} (column {col}); "
                             f"{count} of {len(flat)} rows are not finite")


def _array(v):
    return v.data if isinstance(v, Tensor) else v


class DivergenceWatch:
    """Watches a trainer's loss, gradients and parameters (see the module docstring).

    params: (name, Tensor or ndarray) pairs, read afresh at each check (updates are in place);
    hint: advice appended to every message; growth, window: the norm-growth rule.
    """

    def __init__(self, params, hint="try a smaller --lr", growth=1e3, window=5):
        self.params = list(params)
        self.hint, self.growth = hint, float(growth)
        self.steps = 0
        self.norms = collections.deque(maxlen=int(window))  # (step, norm) of the last checks
        self.norms.append((0, self._norm(None)))

    def _fail(self, what, epoch):
        where = f"at epoch {epoch}, step {self.steps}" if epoch is not None else f"at step {self.steps}"
        raise DivergenceError(f"training diverged {where}: {what}; {self.hint}")

    def _norm(self, epoch):
        total = 0.0
        for name, p in self.params:
            a = _array(p).ravel()
            s = float(np.dot(a, a))  # in the array's own dtype: a float64 copy costs 100x more
            if not math.isfinite(s):
                if not np.isfinite(a).all():
                    self._fail(f"parameter {name} is not finite", epoch)
                self._fail(f"the norm of parameter {name} overflows", epoch)
            total += s
        return math.sqrt(total)

    def loss(self, value, epoch=None):
        """Count one step and check its loss value (cheap: call it every step)."""
        self.steps += 1
        if not math.isfinite(value):
            self._fail(f"the loss is {value}", epoch)

    def gradients(self, epoch=None):
        """Check the parameters' gradients (after backward, before the optimizer step)."""
        for name, p in self.params:
            g = getattr(p, "grad", None)
            if g is not None and not np.isfinite(_array(g)).all():
                self._fail(f"the gradient of {name} is not finite", epoch)

    def parameters(self, epoch=None):
        """Check that the parameters are finite and that their norm has not grown by `growth`
        over the last `window` checks (a pass over every parameter)."""
        norm = self._norm(epoch)
        then, low = min(self.norms, key=lambda sn: sn[1])
        if low > 0 and norm > self.growth * low:
            k = self.steps - then
            self._fail(f"the parameters' norm grew from {low:.3g} to {norm:.3g} within {k} "
                       f"step{'s' if k != 1 else ''}", epoch)
        self.norms.append((self.steps, norm))

    def step(self, loss, epoch=None):
        """After an update: count the step, check its loss, then the parameters."""
        self.loss(loss, epoch)
        self.parameters(epoch)


# ------------------------------------------------------------------------------------ checkpoints

CHECKPOINT_FILE = "checkpoint.npz"
_META = "__checkpoint__"


def _json_default(obj):
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, tuple):
        return list(obj)
    raise TypeError(f"checkpoint: {type(obj).__name__} is not JSON serialisable")


class Checkpoint:
    """A trainer's state at the end of its last finished epoch, in one file `path`.

    settings: a JSON-ready dict that identifies the run (what must not change between the
    interrupted run and its resumption). `state` is the loaded state when resuming, else None.
    """

    def __init__(self, path, settings=None):
        self.path = os.fspath(path)
        self.settings = json.loads(json.dumps(settings or {}, default=_json_default))
        self.state = None
        self.epoch = None  # the epoch after which the file on disk was written

    def exists(self):
        """Whether a checkpoint file is there to resume from."""
        return os.path.isfile(self.path)

    def load(self):
        """Read the checkpoint for resuming; ValueError naming the file if it belongs to a run
        with other settings. Returns self (with .state = (arrays, meta))."""
        arrays = load_arrays(self.path)
        if _META not in arrays:
            raise ValueError(f"{self.path}: not a training checkpoint")
        meta = json.loads(arrays.pop(_META).tobytes().decode("utf-8"))
        saved = meta.get("settings", {})
        for key in sorted(set(saved) | set(self.settings)):
            if saved.get(key) != self.settings.get(key):
                raise ValueError(f"{self.path}: the checkpoint was made with {key} = {saved.get(key)!r}, "
                                 f"this run has {self.settings.get(key)!r}; resume with the same settings")
        self.state, self.epoch = (arrays, meta), meta.get("epoch")
        return self

    def save(self, arrays, meta):
        """Write arrays (name -> ndarray) and meta (JSON-ready dict, with "epoch") atomically."""
        meta = dict(meta, settings=self.settings)
        blob = np.frombuffer(json.dumps(meta, default=_json_default).encode("utf-8"), dtype=np.uint8)
        save_arrays({**arrays, _META: blob}, self.path)
        self.epoch = meta.get("epoch")

    def remove(self):
        """Delete the checkpoint file (once the run it belongs to is complete)."""
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass


def rng_state(rng):
    """A numpy Generator's state as a JSON-ready dict."""
    return rng.bit_generator.state


def set_rng_state(rng, state):
    rng.bit_generator.state = state


def module_and_optimizer_state(model, opt, sched=None):
    """(arrays, meta) holding a Module's parameters, an optimizer's state and a scheduler's."""
    arrays = {"model." + k: np.asarray(_array(v)) for k, v in model.state_dict().items()}
    sd = opt.state_dict()
    opt_meta = {"param_groups": sd["param_groups"], "state": {}}
    for idx, entry in sd["state"].items():
        scalars = {}
        for k, v in entry.items():
            if isinstance(v, np.ndarray):
                arrays[f"opt.{idx}.{k}"] = v
            else:
                scalars[k] = v
        opt_meta["state"][str(idx)] = scalars
    meta = {"optimizer": opt_meta}
    if sched is not None:
        meta["scheduler"] = sched.state_dict()
    return arrays, meta


def restore_module_and_optimizer(model, opt, sched, arrays, meta):
    """Undo module_and_optimizer_state: load the parameters, optimizer and scheduler state."""
    model.load_state_dict({k[len("model."):]: v for k, v in arrays.items() if k.startswith("model.")})
    opt_meta = meta["optimizer"]
    state = {}
    for idx, scalars in opt_meta["state"].items():
        entry = dict(scalars)
        for k, v in arrays.items():
            if k.startswith(f"opt.{idx}."):
                entry[k[len(f"opt.{idx}."):]] = v
        state[int(idx)] = entry
    groups = [{k: (tuple(v) if k == "betas" else v) for k, v in g.items()} for g in opt_meta["param_groups"]]
    opt.load_state_dict({"state": state, "param_groups": groups})
    if sched is not None:
        sched.load_state_dict(meta["scheduler"])
