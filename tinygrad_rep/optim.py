"""Optimizers (SGD with momentum/Nesterov, Adam, AdamW) and learning-rate schedules.

    opt = tr.optim.Adam(model.parameters(), lr=1e-3)
    for x, y in batches:
        opt.zero_grad()
        loss_fn(model(x), y).backward()
        opt.step()

Updates follow PyTorch's formulas exactly (see each class) and run on the parameters' numpy
arrays in place, outside the graph. The optimizer step is on every benchmark's hot path, so
Adam/AdamW run one fused backend kernel per parameter (`adam_step`, bit-identical to the numpy
reference) and SGD reuses per-parameter scratch arrays (`out=`) instead of allocating temporaries.
"""
import copy
import math

import numpy as np

from . import backend
from .tensor import Tensor

__all__ = ["Optimizer", "SGD", "Adam", "AdamW",
           "LRScheduler", "StepLR", "LinearLR", "CosineAnnealingLR", "LambdaLR"]


def _describe(p, i):
    label = f"parameter {i}" + (f" ({p.name!r})" if getattr(p, "name", None) else "")
    return f"{label} of shape {p.shape} and dtype {p.dtype}"


class Optimizer:
    """Base class: holds parameter groups and per-parameter state; step() calls the subclass's
    _update(param, grad_array, group) for every parameter that has a gradient.

    params: an iterable of Tensors, or of dicts {"params": [...], <hyper-parameter overrides>}
    (parameter groups). Every parameter must be a floating-point Tensor that requires grad.
    Hyper-parameters live in `param_groups[i]` (a scheduler changes `group["lr"]`); per-parameter
    state (momentum buffers, moments, step counts) lives in `state[param]`.
    """

    def __init__(self, params, lr, **defaults):
        if isinstance(params, Tensor):
            raise TypeError("params must be an iterable of Tensors (e.g. model.parameters()), not one Tensor")
        _check_nonneg("lr", lr)
        self.defaults = dict(lr=lr, **defaults)
        self.param_groups = []
        self.state = {}
        self._scratch = {}  # param -> reusable work array; not part of state_dict
        params = list(params)
        if not params:
            raise ValueError(f"{type(self).__name__}: got an empty parameter list")
        if not isinstance(params[0], dict):
            params = [{"params": params}]
        for group in params:
            self.add_param_group(group)

    def add_param_group(self, group):
        """Add {"params": [...], **overrides}; unspecified hyper-parameters take the defaults."""
        if not isinstance(group, dict) or "params" not in group:
            raise TypeError(f"{type(self).__name__}: a parameter group must be a dict with a 'params' entry")
        ps = group["params"]
        ps = [ps] if isinstance(ps, Tensor) else list(ps)
        if not ps:
            raise ValueError(f"{type(self).__name__}: got an empty parameter list")
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        for i, p in enumerate(ps):
            if not isinstance(p, Tensor):
                raise TypeError(f"{type(self).__name__}: parameter {i} is a {type(p).__name__}, not a Tensor")
            if p.dtype.kind != "f":
                raise ValueError(f"{type(self).__name__}: {_describe(p, i)} is not floating-point")
            if not p.requires_grad:
                raise ValueError(f"{type(self).__name__}: {_describe(p, i)} does not require grad")
            if not p.is_leaf:
                raise ValueError(f"{type(self).__name__}: {_describe(p, i)} is not a leaf tensor")
            if id(p) in seen:
                raise ValueError(f"{type(self).__name__}: {_describe(p, i)} appears more than once")
            seen.add(id(p))
        full = dict(self.defaults)
        full.update({k: v for k, v in group.items() if k != "params"})
        full["params"] = ps
        self._validate(full)
        self.param_groups.append(full)

    def _validate(self, group):
        _check_nonneg("lr", group["lr"])

    def zero_grad(self):
        """Set every parameter's .grad to None (the next backward starts from nothing)."""
        for group in self.param_groups:
            for p in group["params"]:
                p.grad = None

    def step(self, closure=None):
        """One update of every parameter that has a gradient (those with .grad None are skipped).

        closure, if given, is called first (it should recompute the loss and run backward); its
        return value is returned.
        """
        loss = closure() if closure is not None else None
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    self._update(p, p.grad._data, group)
                    p._bump_version()  # updated in place: a graph that saved the old values refuses to backward
        return loss

    def _update(self, p, g, group):
        raise NotImplementedError

    def _work(self, p):
        buf = self._scratch.get(p)
        if buf is None:
            buf = self._scratch[p] = np.empty_like(p._data)
        return buf

    # ---- state ----
    def state_dict(self):
        """{"state": {index: {name: value}}, "param_groups": [{hyper-parameters, "params": [index]}]}
        with parameters numbered across groups in order; arrays are copies."""
        index = {}
        groups = []
        for group in self.param_groups:
            g = {k: copy.deepcopy(v) for k, v in group.items() if k != "params"}
            g["params"] = []
            for p in group["params"]:
                index[id(p)] = len(index)
                g["params"].append(index[id(p)])
            groups.append(g)
        state = {}
        for group in self.param_groups:
            for p in group["params"]:
                if p in self.state:
                    state[index[id(p)]] = {k: (v.copy() if isinstance(v, np.ndarray) else v)
                                           for k, v in self.state[p].items()}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict):
        """Restore what state_dict() returned (same parameter groups, same shapes)."""
        groups = state_dict["param_groups"]
        if len(groups) != len(self.param_groups):
            raise ValueError(f"load_state_dict: the state has {len(groups)} parameter groups, "
                             f"the optimizer has {len(self.param_groups)}")
        params = []
        for i, (saved, mine) in enumerate(zip(groups, self.param_groups)):
            if len(saved["params"]) != len(mine["params"]):
                raise ValueError(f"load_state_dict: group {i} has {len(saved['params'])} parameters in the "
                                 f"state but {len(mine['params'])} in the optimizer")
            params.extend(zip(saved["params"], mine["params"]))
        new_state = {}
        for idx, p in params:
            entry = state_dict["state"].get(idx, state_dict["state"].get(str(idx)))
            if entry is None:
                continue
            fixed = {}
            for k, v in entry.items():
                if isinstance(v, np.ndarray):
                    if v.shape != p.shape:
                        raise ValueError(f"load_state_dict: state {k!r} of {_describe(p, idx)} has shape {v.shape}")
                    v = v.astype(p.dtype, copy=True)
                fixed[k] = v
            new_state[p] = fixed
        for saved, mine in zip(groups, self.param_groups):
            mine.update({k: copy.deepcopy(v) for k, v in saved.items() if k != "params"})
        self.state = new_state

    def __repr__(self):
        lines = [f"{type(self).__name__} ("]
        for i, g in enumerate(self.param_groups):
            hyper = ", ".join(f"{k}={v}" for k, v in g.items() if k != "params")
            lines.append(f"  group {i}: {len(g['params'])} params, {hyper}")
        return "\n".join(lines) + "\n)"


def _check_nonneg(name, value):
    if not isinstance(value, (int, float, np.floating, np.integer)) or not value >= 0:  # NaN fails too
        raise ValueError(f"invalid {name}: {value!r} (must be a number >= 0)")


class SGD(Optimizer):
    """Stochastic gradient descent, PyTorch's rule:

        g = grad + weight_decay * p
        buf = g                                     (first step)
        buf = momentum * buf + (1 - dampening) * g  (later steps)
        g = g + momentum * buf  if nesterov  else  buf      (when momentum != 0)
        p = p - lr * g
    """

    def __init__(self, params, lr, momentum=0.0, weight_decay=0.0, nesterov=False, dampening=0.0):
        super().__init__(params, lr, momentum=momentum, weight_decay=weight_decay,
                         nesterov=nesterov, dampening=dampening)

    def _validate(self, group):
        super()._validate(group)
        for k in ("momentum", "weight_decay", "dampening"):
            _check_nonneg(k, group[k])
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError("SGD: Nesterov momentum needs momentum > 0 and dampening = 0")

    def _update(self, p, g, group):
        lr, mom, wd = group["lr"], group["momentum"], group["weight_decay"]
        work = self._work(p)
        if wd != 0:
            np.multiply(p._data, wd, out=work)
            np.add(g, work, out=work)
            g = work  # from here on g may live in the scratch array: never overwrite it early
        if mom != 0:
            state = self.state.setdefault(p, {})
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = state["momentum_buffer"] = np.array(g, dtype=p.dtype, copy=True)
            else:
                buf *= mom
                damp = 1.0 - group["dampening"]
                buf += g if damp == 1.0 else damp * g
            if group["nesterov"]:
                if g is work:
                    work += mom * buf  # g already occupies the scratch array: one temporary
                else:
                    np.multiply(buf, mom, out=work)
                    work += g
                g = work
            else:
                g = buf
        np.multiply(g, lr, out=work)
        p._data -= work


class Adam(Optimizer):
    """Adam (Kingma & Ba), PyTorch's rule, with L2 weight decay added to the gradient:

        g = grad + weight_decay * p
        m = beta1 * m + (1 - beta1) * g;   v = beta2 * v + (1 - beta2) * g * g
        p = p - (lr / (1 - beta1^t)) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        super().__init__(params, lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay)

    _decoupled = False

    def _validate(self, group):
        super()._validate(group)
        _check_nonneg("eps", group["eps"])
        _check_nonneg("weight_decay", group["weight_decay"])
        b1, b2 = group["betas"]
        for i, b in enumerate((b1, b2)):
            if not 0.0 <= b < 1.0:
                raise ValueError(f"invalid beta parameter at index {i}: {b!r} (must be in [0, 1))")

    def _update(self, p, g, group):
        lr, (b1, b2), eps, wd = group["lr"], group["betas"], group["eps"], group["weight_decay"]
        state = self.state.get(p)
        if state is None:
            state = self.state[p] = {"step": 0, "exp_avg": np.zeros(p.shape, p.dtype),
                                     "exp_avg_sq": np.zeros(p.shape, p.dtype)}
        state["step"] += 1
        # One fused pass (the backend's adam_step: C kernels, or numpy_ref's identical math)
        # instead of ~10 whole-array numpy passes. It updates in place, so it needs dense arrays.
        for key in ("exp_avg", "exp_avg_sq"):
            if not _dense(state[key]):  # a loaded state may come in another memory order
                state[key] = np.ascontiguousarray(state[key])
        data = p._data if _dense(p._data) else np.ascontiguousarray(p._data)
        backend.current().adam_step(data, g, state["exp_avg"], state["exp_avg_sq"], int(state["step"]),
                                    lr, b1, b2, eps, wd, self._decoupled)
        if data is not p._data:
            p._data[...] = data


def _dense(a):
    """True when the kernels can update `a` in place (C-contiguous, aligned, writeable)."""
    f = a.flags
    return f.c_contiguous and f.aligned and f.writeable


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter), PyTorch's rule:

        p = p * (1 - lr * weight_decay), then the Adam step on the raw gradient.
    """

    _decoupled = True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)


# ------------------------------------------------------------------------- learning-rate schedules

class LRScheduler:
    """Sets each group's lr to base_lr * factor(epoch); call step() once per epoch (or per
    iteration, if that is the unit you chose). Factors are closed forms of the epoch number."""

    def __init__(self, optimizer):
        self.optimizer = optimizer
        for g in optimizer.param_groups:
            g.setdefault("initial_lr", g["lr"])
        self.base_lrs = [g["initial_lr"] for g in optimizer.param_groups]
        self.last_epoch = 0
        self._apply()

    def factor(self, epoch, base_lr):
        """The multiplier of the initial learning rate after `epoch` steps of the scheduler."""
        raise NotImplementedError

    def lr_at(self, epoch, base_lr):
        """The learning rate of each parameter group after `epoch` steps."""
        return base_lr * self.factor(epoch, base_lr)

    def _apply(self):
        for g, base in zip(self.optimizer.param_groups, self.base_lrs):
            g["lr"] = self.lr_at(self.last_epoch, base)

    def step(self):
        """Advance one epoch and update the optimizer's learning rates."""
        self.last_epoch += 1
        self._apply()

    def get_last_lr(self):
        """The learning rate of each group, as last set."""
        return [g["lr"] for g in self.optimizer.param_groups]

    def state_dict(self):
        """The scheduler's state (step count and settings), for checkpoints."""
        return {"last_epoch": self.last_epoch, "base_lrs": list(self.base_lrs)}

    def load_state_dict(self, state):
        """Restore a state from state_dict() (e.g. when resuming a run)."""
        self.last_epoch, self.base_lrs = state["last_epoch"], list(state["base_lrs"])
        self._apply()


class StepLR(LRScheduler):
    """lr = base_lr * gamma ** (epoch // step_size)."""

    def __init__(self, optimizer, step_size, gamma=0.1):
        if step_size <= 0:
            raise ValueError(f"StepLR: step_size must be positive, got {step_size}")
        self.step_size, self.gamma = int(step_size), gamma
        super().__init__(optimizer)

    def factor(self, epoch, base_lr):
        """The multiplier of the initial learning rate after `epoch` steps of the scheduler."""
        return self.gamma ** (epoch // self.step_size)


class LinearLR(LRScheduler):
    """Factor goes linearly from start_factor to end_factor over total_iters epochs, then stays.
    start_factor=1, end_factor=0 is word2vec's linear decay."""

    def __init__(self, optimizer, start_factor=1.0 / 3, end_factor=1.0, total_iters=5):
        if total_iters <= 0:
            raise ValueError(f"LinearLR: total_iters must be positive, got {total_iters}")
        self.start_factor, self.end_factor, self.total_iters = start_factor, end_factor, int(total_iters)
        super().__init__(optimizer)

    def factor(self, epoch, base_lr):
        """The multiplier of the initial learning rate after `epoch` steps of the scheduler."""
        frac = min(epoch, self.total_iters) / self.total_iters
        return self.start_factor + (self.end_factor - self.start_factor) * frac


class CosineAnnealingLR(LRScheduler):
    """lr = eta_min + (base_lr - eta_min) * (1 + cos(pi * epoch / T_max)) / 2.

    As in PyTorch, the cosine goes on past T_max (back up to base_lr at 2 * T_max): stop
    stepping at T_max to stay at eta_min."""

    def __init__(self, optimizer, T_max, eta_min=0.0):
        if T_max <= 0:
            raise ValueError(f"CosineAnnealingLR: T_max must be positive, got {T_max}")
        self.T_max, self.eta_min = int(T_max), eta_min
        super().__init__(optimizer)

    def lr_at(self, epoch, base_lr):
        """The learning rate of each parameter group after `epoch` steps."""
        return self.eta_min + (base_lr - self.eta_min) * (1 + math.cos(math.pi * epoch / self.T_max)) / 2


class LambdaLR(LRScheduler):
    """lr = base_lr * lr_lambda(epoch)."""

    def __init__(self, optimizer, lr_lambda):
        self.lr_lambda = lr_lambda
        super().__init__(optimizer)

    def factor(self, epoch, base_lr):
        """The multiplier of the initial learning rate after `epoch` steps of the scheduler."""
        return self.lr_lambda(epoch)
