"""Numerical gradient checks: compare backward against central differences.

gradcheck(fn, inputs) checks the vector-Jacobian product v^T J for a fixed random v of the
output's shape, element by element of every input that requires grad: the analytic side is
one backward pass, the numerical side is (f(x + eps) - f(x - eps)) / (2 eps) of the scalar
sum(v * fn(x)), always evaluated in float64 (inputs are copied to float64), so float32 ops are
judged against a float64 reference. A random v makes a wrong Jacobian fail with probability 1.
"""
import numpy as np

from . import autograd
from .tensor import Tensor, concat


class GradcheckError(AssertionError):
    """Raised by gradcheck: names the input, the element index and both values."""

    def __init__(self, message, input_index=None, element=None, analytic=None, numerical=None, tolerance=None):
        super().__init__(message)
        self.input_index, self.element = input_index, element
        self.analytic, self.numerical, self.tolerance = analytic, numerical, tolerance


# Defaults by the dtype of the analytic side. float64: central differences with eps=1e-6 are
# accurate to ~1e-9 relative, so 1e-5/1e-3 leaves room only for genuine errors. float32: the
# analytic gradient itself carries float32 rounding (~1e-7 relative per op), so the bound is
# looser: atol=1e-3, rtol=1e-2 (still far below any real backward bug on O(1) values).
_DEFAULTS = {np.dtype(np.float64): (1e-6, 1e-5, 1e-3), np.dtype(np.float32): (1e-6, 1e-3, 1e-2)}


def _as_inputs(inputs):
    single = isinstance(inputs, Tensor)
    inputs = [inputs] if single else list(inputs)
    for i, x in enumerate(inputs):
        if not isinstance(x, Tensor):
            raise TypeError(f"gradcheck: input {i} is a {type(x).__name__}, expected a Tensor")
    if not any(x.requires_grad for x in inputs):
        raise ValueError("gradcheck: no input requires grad; nothing to check")
    return inputs


def _tolerances(inputs, eps, atol, rtol):
    dtype = max((x.dtype for x in inputs if x.requires_grad), key=lambda d: d.itemsize)
    d_eps, d_atol, d_rtol = _DEFAULTS.get(np.dtype(dtype), _DEFAULTS[np.dtype(np.float32)])
    return (d_eps if eps is None else eps, d_atol if atol is None else atol,
            d_rtol if rtol is None else rtol)


def gradient_pairs(fn, inputs, eps=1e-6, seed=0):
    """Yield (input index, analytic array, numerical array) for every input that requires grad.

    The analytic side is one backward pass of sum(v * fn(*inputs)) for a fixed random v; the
    numerical side is central differences of the same scalar, evaluated on float64 copies.
    """
    inputs = _as_inputs(inputs)
    out = fn(*inputs)
    if not isinstance(out, Tensor):
        raise TypeError(f"gradcheck: fn must return a Tensor, got {type(out).__name__}")
    v = np.random.default_rng(seed).standard_normal(out.shape)
    checked = [x for x in inputs if x.requires_grad]
    if out.requires_grad:
        analytic = autograd.grad(out, checked, grad_outputs=Tensor(v, dtype=out.dtype), allow_unused=True)
    else:
        analytic = [None] * len(checked)
    copies = [Tensor(x.data.astype(np.float64), requires_grad=x.requires_grad) if x.dtype.kind == "f"
              else x for x in inputs]

    def f():
        return float(np.sum(np.asarray(fn(*copies).data, dtype=np.float64) * v))

    k = 0
    for i, x in enumerate(inputs):
        if not x.requires_grad:
            continue
        a = analytic[k]
        a = np.zeros(x.shape) if a is None else np.asarray(a.data, dtype=np.float64)
        k += 1
        flat = copies[i].data.reshape(-1)
        num = np.empty(flat.size)
        for j in range(flat.size):
            orig = flat[j]
            flat[j] = orig + eps
            fp = f()
            flat[j] = orig - eps
            fm = f()
            flat[j] = orig
            num[j] = (fp - fm) / (2 * eps)
        yield i, a, num.reshape(x.shape)


def gradcheck(fn, inputs, eps=None, atol=None, rtol=None, seed=0):
    """Check fn's gradients numerically; return True or raise GradcheckError.

    fn(*inputs) must return a Tensor. Only inputs with requires_grad are checked; the others
    are passed through unchanged. A check passes when |analytic - numerical| <= atol +
    rtol * |numerical| for every element. Defaults come from the inputs' dtype (see _DEFAULTS).
    """
    inputs = _as_inputs(inputs)
    eps, atol, rtol = _tolerances(inputs, eps, atol, rtol)
    for i, a, num in gradient_pairs(fn, inputs, eps, seed):
        tol = atol + rtol * np.abs(num)
        bad = ~(np.abs(a - num) <= tol)  # NaN counts as bad
        if bad.any():
            j = int(np.flatnonzero(bad.reshape(-1))[0])
            idx = tuple(int(t) for t in np.unravel_index(j, a.shape)) if a.ndim else ()
            an, nu, tl = float(a.reshape(-1)[j]), float(num.reshape(-1)[j]), float(tol.reshape(-1)[j])
            x = inputs[i]
            raise GradcheckError(
                f"gradcheck failed for input {i} (shape {x.shape}, dtype {x.dtype}) at element "
                f"{idx}: analytic {an!r}, numerical {nu!r}, difference {abs(an - nu):.3g} > "
                f"tolerance {tl:.3g} (atol={atol}, rtol={rtol})",
                input_index=i, element=idx, analytic=an, numerical=nu, tolerance=tl)
    return True


def max_gradient_error(fn, inputs, eps=None, seed=0):
    """The largest |analytic - numerical| over all inputs and elements (for reports)."""
    inputs = _as_inputs(inputs)
    eps, _, _ = _tolerances(inputs, eps, None, None)
    worst = 0.0
    for _, a, num in gradient_pairs(fn, inputs, eps, seed):
        if a.size:
            worst = max(worst, float(np.max(np.abs(a - num))))
    return worst


def gradgradcheck(fn, inputs, grad_outputs=None, eps=None, atol=None, rtol=None, seed=0):
    """Check second derivatives: gradcheck of (inputs, v) -> d<v, fn(inputs)>/d inputs.

    The inner gradient is taken with create_graph=True, so this checks every backward's own
    backward. grad_outputs (v) defaults to a fixed random tensor of the output's shape.
    """
    inputs = _as_inputs(inputs)
    out = fn(*inputs)
    if grad_outputs is None:
        v = np.random.default_rng(seed + 1).standard_normal(out.shape)
        grad_outputs = Tensor(v, dtype=out.dtype, requires_grad=True)
    checked_idx = [i for i, x in enumerate(inputs) if x.requires_grad]

    def first_derivatives(*args):
        xs, v = args[:-1], args[-1]
        y = fn(*xs)
        wrt = [xs[i] for i in checked_idx]
        gs = autograd.grad(y, wrt, grad_outputs=v, create_graph=True, allow_unused=True)
        parts = [(g if g is not None else Tensor(np.zeros(w.shape, dtype=w.dtype))).reshape(-1)
                 for g, w in zip(gs, wrt)]
        return concat(parts, axis=0)

    return gradcheck(first_derivatives, list(inputs) + [grad_outputs], eps=eps, atol=atol, rtol=rtol, seed=seed)
