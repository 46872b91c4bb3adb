"""Test helpers: `check_op`, the one-line-per-op check (forward against numpy, backward
against tr.gradcheck in float64), in the spirit of early tinygrad's helper_test_op."""
import numpy as np
from hypothesis import settings

import tinygrad_rep as tr
from tinygrad_rep import Tensor


def capped(n):
    """Hypothesis settings with at most n examples (never more than the active profile's)."""
    return settings(max_examples=max(1, min(settings.default.max_examples, n)))


def as_tensors(args, nondiff=()):
    """Float ndarrays -> float64 Tensors that require grad (except positions in nondiff);
    integer/bool ndarrays (indices, targets) -> constant Tensors; everything else (Python
    scalars, Tensors) is passed through."""
    out = []
    for i, a in enumerate(args):
        if isinstance(a, np.ndarray) and a.dtype.kind == "f":
            out.append(Tensor(a.astype(np.float64), requires_grad=i not in nondiff))
        elif isinstance(a, np.ndarray):
            out.append(Tensor(a))
        else:
            out.append(a)
    return out


def check_op(tr_fn, np_fn, *args, nondiff=(), grad=True, rtol=1e-7, atol=1e-9, **gradcheck_kwargs):
    """Assert tr_fn(*tensors) equals np_fn(*args) (shape, dtype float64, values) and that
    tr_fn's gradients pass tr.gradcheck for every float argument not listed in nondiff.

    args: float ndarrays become float64 Tensors that require grad, integer arrays constant
    Tensors (tr_fn gets Tensors, np_fn the arrays); other arguments (scalars) are given
    unchanged to both functions. Returns the output Tensor.
    """
    tensors = as_tensors(args, nondiff)
    out = tr_fn(*tensors)
    assert isinstance(out, Tensor), f"expected a Tensor, got {type(out).__name__}"
    expected = np.asarray(np_fn(*[a.astype(np.float64) if isinstance(a, np.ndarray) and a.dtype.kind == "f"
                                  else a for a in args]))
    assert out.shape == expected.shape, f"shape {out.shape} != numpy's {expected.shape}"
    assert out.dtype == np.float64, f"dtype {out.dtype} != float64"
    np.testing.assert_allclose(out.data, expected, rtol=rtol, atol=atol, equal_nan=True)
    needs_grad = [t for t in tensors if isinstance(t, Tensor) and t.requires_grad]
    if grad and needs_grad:
        assert out.requires_grad
        assert tr.gradcheck(tr_fn, tensors, **gradcheck_kwargs)
    return out


def draw_arrays(data, shapes, **kwargs):
    """Draw one float array per shape from hypothesis' `data` (kwargs go to float_arrays)."""
    from tinygrad_rep.testing import strategies as trst
    return [data.draw(trst.float_arrays(s, **kwargs), label=f"array{i}") for i, s in enumerate(shapes)]


# numpy references shared by several test files
def np_softmax(x, axis=-1):
    m = np.max(x, axis=axis, keepdims=True)
    e = np.exp(x - m)
    return e / e.sum(axis=axis, keepdims=True)


def np_log_softmax(x, axis=-1):
    return x - np_logsumexp(x, axis=axis, keepdims=True)


def np_logsumexp(x, axis=None, keepdims=False):
    m = np.max(x, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0)
    out = m + np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True))
    return out if keepdims else np.squeeze(out, axis=axis) if axis is not None else out.reshape(())


def np_logsigmoid(x):
    return -np.logaddexp(0.0, -x)


def np_sigmoid(x):
    return np.exp(np_logsigmoid(x))
