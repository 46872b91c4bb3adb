"""The pybind11 backend: numpy_ref's functions, computed by the C kernels in tinygrad_rep._C.

Every function has numpy_ref's name, arguments, return value and errors. Arguments are checked
and outputs allocated by `_checks.prepare_*` (the same checks, in the same order, as the
reference), then one C kernel runs on the arrays with the GIL released. The work per call is
kept small on purpose (one prepare call, one dict lookup, one C call), because the autograd
engine calls these on tiny arrays too.

Fast path (relu and the softmax family): the function first hands the caller's arrays to
_C._<kernel>, which runs the kernel only if they pass every check in C++ (dtype, layout, shape,
writeable, no overlap; see bind_pybind.cpp) and returns False otherwise, and only then takes
the prepare_* path, which raises numpy_ref's errors or copies what needs copying. Outputs not
given are allocated by the buffer pool (pool.py) in both paths.
"""
import os
import warnings

import numpy as np

from . import _checks as ck
from . import numpy_ref
from . import pool

try:
    from .. import _C
except ImportError as exc:  # never fall back silently: say what is missing and how to build it
    raise ImportError(
        f"the pybind11 backend needs the compiled extension module tinygrad_rep._C, which could "
        f"not be imported ({exc}); build it with `pip install -e .` in the repository root",
        name="tinygrad_rep._C") from exc

NAME = "pybind11"
KERNELS = numpy_ref.KERNELS

_problem = ck.env_num_threads_problem(os.environ.get("TINYGRAD_REP_NUM_THREADS"))
if _problem:
    warnings.warn(_problem, RuntimeWarning, stacklevel=2)


def _by_dtype(kernel):
    """{dtype char: C function} for a kernel that exists as <kernel>_f32 and <kernel>_f64."""
    return {"f": getattr(_C, kernel + "_f32"), "d": getattr(_C, kernel + "_f64")}


_matmul = _by_dtype("matmul")
_relu_forward = _by_dtype("relu_forward")
_relu_backward = _by_dtype("relu_backward")
_softmax_forward = _by_dtype("softmax_forward")
_softmax_backward = _by_dtype("softmax_backward")
_log_softmax_forward = _by_dtype("log_softmax_forward")
_log_softmax_backward = _by_dtype("log_softmax_backward")
_cross_entropy_forward = _by_dtype("cross_entropy_forward")
_cross_entropy_backward = _by_dtype("cross_entropy_backward")
_embedding_gather = _by_dtype("embedding_gather")
_embedding_scatter_add = _by_dtype("embedding_scatter_add")
_sgns_forward_backward = _by_dtype("sgns_forward_backward")
_sgns_sgd = _by_dtype("sgns_sgd")

_ndarray = np.ndarray
_empty_like = pool.empty_like
_fast_relu_forward = _C._relu_forward
_fast_relu_backward = _C._relu_backward
_fast_softmax_forward = _C._softmax_forward
_fast_softmax_backward = _C._softmax_backward
_fast_log_softmax_forward = _C._log_softmax_forward
_fast_log_softmax_backward = _C._log_softmax_backward


def matmul(a, b, out=None, trans_a=False, trans_b=False, accumulate=False):
    """out = op(a) @ op(b), or out += op(a) @ op(b) when accumulate (see numpy_ref.matmul)."""
    a, b, out, batch, M, N, K = ck.prepare_matmul(a, b, out, trans_a, trans_b, accumulate)
    _matmul[a.dtype.char](batch, M, N, K, a, bool(trans_a), b, bool(trans_b), out, bool(accumulate))
    return out


def relu_forward(x, out=None):
    """out = max(x, 0); NaN stays NaN."""
    o = out if out is not None else _empty_like(x) if type(x) is _ndarray else None
    if o is not None and _fast_relu_forward(x, o):
        return o
    x, out = ck.prepare_relu_forward(x, out)
    _relu_forward[x.dtype.char](x.size, x, out)
    return out


def relu_backward(x, grad, out=None):
    """out = grad where x > 0, else 0."""
    o = out if out is not None else _empty_like(x) if type(x) is _ndarray else None
    if o is not None and _fast_relu_backward(x, grad, o):
        return o
    x, grad, out = ck.prepare_relu_backward(x, grad, out)
    _relu_backward[x.dtype.char](x.size, x, grad, out)
    return out


def softmax_forward(x, out=None):
    """Softmax along the last axis."""
    o = out if out is not None else _empty_like(x) if type(x) is _ndarray else None
    if o is not None and _fast_softmax_forward(x, o):
        return o
    x, out, rows, cols = ck.prepare_rows_forward("softmax_forward", x, out)
    _softmax_forward[x.dtype.char](rows, cols, x, out)
    return out


def softmax_backward(y, grad, out=None):
    """out = y * (grad - sum(grad * y, last axis)), y = softmax(x)."""
    o = out if out is not None else _empty_like(y) if type(y) is _ndarray else None
    if o is not None and _fast_softmax_backward(y, grad, o):
        return o
    y, grad, out, rows, cols = ck.prepare_rows_backward("softmax_backward", y, grad, out)
    _softmax_backward[y.dtype.char](rows, cols, y, grad, out)
    return out


def log_softmax_forward(x, out=None):
    """log(softmax(x)) along the last axis."""
    o = out if out is not None else _empty_like(x) if type(x) is _ndarray else None
    if o is not None and _fast_log_softmax_forward(x, o):
        return o
    x, out, rows, cols = ck.prepare_rows_forward("log_softmax_forward", x, out)
    _log_softmax_forward[x.dtype.char](rows, cols, x, out)
    return out


def log_softmax_backward(y, grad, out=None):
    """out = grad - exp(y) * sum(grad, last axis), y = log_softmax(x)."""
    o = out if out is not None else _empty_like(y) if type(y) is _ndarray else None
    if o is not None and _fast_log_softmax_backward(y, grad, o):
        return o
    y, grad, out, rows, cols = ck.prepare_rows_backward("log_softmax_backward", y, grad, out)
    _log_softmax_backward[y.dtype.char](rows, cols, y, grad, out)
    return out


def cross_entropy_forward(logits, targets, losses=None, probs=None):
    """Fused log-softmax + NLL over rows of (B, C) logits -> (losses, probs)."""
    logits, targets, losses, probs, B, C = ck.prepare_cross_entropy_forward(logits, targets, losses, probs)
    _cross_entropy_forward[logits.dtype.char](B, C, logits, targets, losses, probs)
    return losses, probs


def cross_entropy_backward(probs, targets, grad, out=None):
    """dL/dlogits = (probs - onehot(targets)) * grad[:, None]."""
    probs, targets, grad, out, B, C = ck.prepare_cross_entropy_backward(probs, targets, grad, out)
    _cross_entropy_backward[probs.dtype.char](B, C, probs, targets, grad, out)
    return out


def embedding_gather(weight, indices, out=None):
    """out[i] = weight[indices[i]] -> (n, d)."""
    weight, indices, out, n, d = ck.prepare_embedding_gather(weight, indices, out)
    _embedding_gather[weight.dtype.char](n, d, weight, indices, out)
    return out


def embedding_scatter_add(grad, indices, out):
    """out[indices[i]] += grad[i] for every i, in order; returns out."""
    grad, indices, out, n, d = ck.prepare_embedding_scatter_add(grad, indices, out)
    _embedding_scatter_add[grad.dtype.char](n, d, grad, indices, out)
    return out


# ---- word2vec (csrc/sgns.c) ----

def sgns_forward_backward(center, targets, losses=None, grad_center=None, grad_targets=None):
    """SGNS loss of B rows and its gradients in one pass (see numpy_ref.sgns_forward_backward)."""
    center, targets, losses, gc, gt, B, T, d = ck.prepare_sgns(center, targets, losses, grad_center, grad_targets)
    _sgns_forward_backward[center.dtype.char](B, T, d, center, targets, losses, gc, gt)
    return losses, gc, gt


def sgns_sgd(W_in, W_out, inputs, targets, lr, losses=None):
    """Per-pair SGNS SGD in place over index pairs (see numpy_ref.sgns_sgd); returns losses."""
    W_in, W_out, inputs, targets, lr, losses, work, n, T, d = ck.prepare_sgns_sgd(W_in, W_out, inputs, targets, lr, losses)
    _sgns_sgd[W_in.dtype.char](n, T, d, W_in, W_out, inputs, targets, lr, losses, work)
    return losses


def sample_negatives(prob, alias, avoid, k, seed, out=None):
    """k draws per row from a Walker alias table, avoiding avoid[row] (see numpy_ref)."""
    prob, alias, avoid, k, seed, out, rows, V = ck.prepare_sample_negatives(prob, alias, avoid, k, seed, out)
    _C.sample_negatives(rows, k, V, prob, alias, avoid, seed, out)
    return out

def set_num_threads(n):
    """Set the number of OpenMP threads this extension's kernels may use (n < 1 means 1)."""
    _C.set_num_threads(max(0, min(int(n), 1 << 20)))  # into C int range; C clamps further


def get_num_threads():
    """The number of threads this extension's kernels may use."""
    return _C.get_num_threads()


def info():
    return {"backend": NAME, "simd": _C.simd_level(), "threads": _C.get_num_threads(),
            "compiler_flags": _C.build_flags()}


# ---- optimizers (csrc/optim.c) ----

_adam_step = _by_dtype("adam_step")


def adam_step(param, grad, exp_avg, exp_avg_sq, step, lr, beta1=0.9, beta2=0.999, eps=1e-8,
              weight_decay=0.0, decoupled=False):
    """One fused Adam / AdamW update in place on param, exp_avg, exp_avg_sq (see numpy_ref)."""
    param, grad, m, v, step_size, bias2_sqrt = ck.prepare_adam_step(
        param, grad, exp_avg, exp_avg_sq, step, lr, beta1, beta2, eps, weight_decay)
    _adam_step[param.dtype.char](param.size, param, grad, m, v, beta1, beta2, eps, weight_decay,
                                 bool(decoupled), lr, step_size, bias2_sqrt)
    return param
