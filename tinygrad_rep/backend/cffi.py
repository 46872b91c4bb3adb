"""The cffi backend: numpy_ref's functions, computed by the C kernels in tinygrad_rep._C_cffi.

Same functions, arguments, return values and errors as numpy_ref and the pybind11 backend:
arguments are checked and outputs allocated by `_checks.prepare_*`, then the C kernel `lib.tr_*`
is called with pointers into the arrays (cffi releases the GIL around API-mode calls). The C side
trusts these pointers, so nothing reaches `lib` without going through a prepare step.
"""
import os
import warnings

from . import _checks as ck
from . import numpy_ref

try:
    from .._C_cffi import ffi, lib
except ImportError as exc:  # never fall back silently: say what is missing and how to build it
    raise ImportError(
        f"the cffi backend needs the compiled extension module tinygrad_rep._C_cffi, which could "
        f"not be imported ({exc}); build it with `pip install -e .` in the repository root",
        name="tinygrad_rep._C_cffi") from exc

NAME = "cffi"
KERNELS = numpy_ref.KERNELS

_problem = ck.env_num_threads_problem(os.environ.get("TINYGRAD_REP_NUM_THREADS"))
if _problem:
    warnings.warn(_problem, RuntimeWarning, stacklevel=2)

_from_buffer = ffi.from_buffer
# C array type of each accepted dtype (by dtype.char), for ffi.from_buffer
_CTYPE = {"f": "float[]", "d": "double[]"}
_SUFFIX = {"f": "_f32", "d": "_f64"}


def _in(x):
    """A read-only pointer to a float array's data."""
    return _from_buffer(_CTYPE[x.dtype.char], x)


def _out(x):
    """A writable pointer to a float array's data (cffi refuses a read-only buffer)."""
    return _from_buffer(_CTYPE[x.dtype.char], x, require_writable=True)


def _idx(i):
    """A pointer to an int64 index array's data."""
    return _from_buffer("int64_t[]", i)


def _by_dtype(kernel):
    """{dtype char: C function} for the C kernels tr_<kernel>_f32 and tr_<kernel>_f64."""
    return {c: getattr(lib, "tr_" + kernel + s) for c, s in _SUFFIX.items()}


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


def matmul(a, b, out=None, trans_a=False, trans_b=False, accumulate=False):
    """out = op(a) @ op(b), or out += op(a) @ op(b) when accumulate (see numpy_ref.matmul)."""
    a, b, out, batch, M, N, K = ck.prepare_matmul(a, b, out, trans_a, trans_b, accumulate)
    _matmul[a.dtype.char](batch, M, N, K, _in(a), 1 if trans_a else 0, _in(b), 1 if trans_b else 0,
                          _out(out), 1 if accumulate else 0)
    return out


def relu_forward(x, out=None):
    """out = max(x, 0); NaN stays NaN."""
    x, out = ck.prepare_relu_forward(x, out)
    _relu_forward[x.dtype.char](x.size, _in(x), _out(out))
    return out


def relu_backward(x, grad, out=None):
    """out = grad where x > 0, else 0."""
    x, grad, out = ck.prepare_relu_backward(x, grad, out)
    _relu_backward[x.dtype.char](x.size, _in(x), _in(grad), _out(out))
    return out


def softmax_forward(x, out=None):
    """Softmax along the last axis."""
    x, out, rows, cols = ck.prepare_rows_forward("softmax_forward", x, out)
    _softmax_forward[x.dtype.char](rows, cols, _in(x), _out(out))
    return out


def softmax_backward(y, grad, out=None):
    """out = y * (grad - sum(grad * y, last axis)), y = softmax(x)."""
    y, grad, out, rows, cols = ck.prepare_rows_backward("softmax_backward", y, grad, out)
    _softmax_backward[y.dtype.char](rows, cols, _in(y), _in(grad), _out(out))
    return out


def log_softmax_forward(x, out=None):
    """log(softmax(x)) along the last axis."""
    x, out, rows, cols = ck.prepare_rows_forward("log_softmax_forward", x, out)
    _log_softmax_forward[x.dtype.char](rows, cols, _in(x), _out(out))
    return out


def log_softmax_backward(y, grad, out=None):
    """out = grad - exp(y) * sum(grad, last axis), y = log_softmax(x)."""
    y, grad, out, rows, cols = ck.prepare_rows_backward("log_softmax_backward", y, grad, out)
    _log_softmax_backward[y.dtype.char](rows, cols, _in(y), _in(grad), _out(out))
    return out


def cross_entropy_forward(logits, targets, losses=None, probs=None):
    """Fused log-softmax + NLL over rows of (B, C) logits -> (losses, probs)."""
    logits, targets, losses, probs, B, C = ck.prepare_cross_entropy_forward(logits, targets, losses, probs)
    _cross_entropy_forward[logits.dtype.char](B, C, _in(logits), _idx(targets), _out(losses), _out(probs))
    return losses, probs


def cross_entropy_backward(probs, targets, grad, out=None):
    """dL/dlogits = (probs - onehot(targets)) * grad[:, None]."""
    probs, targets, grad, out, B, C = ck.prepare_cross_entropy_backward(probs, targets, grad, out)
    _cross_entropy_backward[probs.dtype.char](B, C, _in(probs), _idx(targets), _in(grad), _out(out))
    return out


def embedding_gather(weight, indices, out=None):
    """out[i] = weight[indices[i]] -> (n, d)."""
    weight, indices, out, n, d = ck.prepare_embedding_gather(weight, indices, out)
    _embedding_gather[weight.dtype.char](n, d, _in(weight), _idx(indices), _out(out))
    return out


def embedding_scatter_add(grad, indices, out):
    """out[indices[i]] += grad[i] for every i, in order; returns out."""
    grad, indices, out, n, d = ck.prepare_embedding_scatter_add(grad, indices, out)
    _embedding_scatter_add[grad.dtype.char](n, d, _in(grad), _idx(indices), _out(out))
    return out


# ---- word2vec (csrc/sgns.c) ----

def sgns_forward_backward(center, targets, losses=None, grad_center=None, grad_targets=None):
    """SGNS loss of B rows and its gradients in one pass (see numpy_ref.sgns_forward_backward)."""
    center, targets, losses, gc, gt, B, T, d = ck.prepare_sgns(center, targets, losses, grad_center, grad_targets)
    _sgns_forward_backward[center.dtype.char](B, T, d, _in(center), _in(targets), _out(losses), _out(gc), _out(gt))
    return losses, gc, gt


def sgns_sgd(W_in, W_out, inputs, targets, lr, losses=None):
    """Per-pair SGNS SGD in place over index pairs (see numpy_ref.sgns_sgd); returns losses."""
    W_in, W_out, inputs, targets, lr, losses, work, n, T, d = ck.prepare_sgns_sgd(W_in, W_out, inputs, targets, lr, losses)
    _sgns_sgd[W_in.dtype.char](n, T, d, _out(W_in), _out(W_out), _idx(inputs), _idx(targets), lr,
                                _out(losses), _out(work))
    return losses


def sample_negatives(prob, alias, avoid, k, seed, out=None):
    """k draws per row from a Walker alias table, avoiding avoid[row] (see numpy_ref)."""
    prob, alias, avoid, k, seed, out, rows, V = ck.prepare_sample_negatives(prob, alias, avoid, k, seed, out)
    lib.tr_sample_negatives(rows, k, V, _from_buffer("double[]", prob), _idx(alias), _idx(avoid), seed,
                            _from_buffer("int64_t[]", out, require_writable=True))
    return out

def set_num_threads(n):
    """Set the number of OpenMP threads this extension's kernels may use (n < 1 means 1)."""
    lib.tr_set_num_threads(max(0, min(int(n), 1 << 20)))  # into C int range; C clamps further


def get_num_threads():
    """The number of threads this extension's kernels may use."""
    return lib.tr_get_num_threads()


def info():
    return {"backend": NAME, "simd": ffi.string(lib.tr_simd_level()).decode(),
            "threads": lib.tr_get_num_threads(),
            "compiler_flags": ffi.string(lib.tr_build_flags()).decode()}


# ---- optimizers (csrc/optim.c) ----

_adam_step = _by_dtype("adam_step")


def adam_step(param, grad, exp_avg, exp_avg_sq, step, lr, beta1=0.9, beta2=0.999, eps=1e-8,
              weight_decay=0.0, decoupled=False):
    """One fused Adam / AdamW update in place on param, exp_avg, exp_avg_sq (see numpy_ref)."""
    param, grad, m, v, step_size, bias2_sqrt = ck.prepare_adam_step(
        param, grad, exp_avg, exp_avg_sq, step, lr, beta1, beta2, eps, weight_decay)
    _adam_step[param.dtype.char](param.size, _out(param), _in(grad), _out(m), _out(v), beta1, beta2,
                                 eps, weight_decay, bool(decoupled), lr, step_size, bias2_sqrt)
    return param
