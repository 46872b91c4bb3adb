"""The numpy reference backend: the oracle every C kernel is tested against.

Every function here has the same name, arguments and semantics as in the pybind11 and cffi
adapters (see csrc/tinygrad_rep.h for the C side). Inputs are validated by `_checks`, exactly
as the C adapters do, so the three backends accept and reject the same things.

Conventions shared by all backends:
- Kernels work on float32 or float64 arrays; outputs have the dtype of the inputs.
- `out=` is an optional caller-allocated, C-contiguous output buffer; the result is returned.
- "Last axis" kernels treat the array as rows of length x.shape[-1].
"""
import numpy as np

from . import _checks as ck

NAME = "numpy"

KERNELS = (
    "matmul", "relu_forward", "relu_backward",
    "softmax_forward", "softmax_backward", "log_softmax_forward", "log_softmax_backward",
    "cross_entropy_forward", "cross_entropy_backward",
    "embedding_gather", "embedding_scatter_add",
)


def _out(out, name, shape, dtype):
    if out is None:
        return np.empty(shape, dtype=dtype)
    return ck.check_out(name, out, shape, dtype)


def matmul(a, b, out=None, trans_a=False, trans_b=False, accumulate=False):
    """out = op(a) @ op(b), or out += op(a) @ op(b) when accumulate (out is then required).

    op(x) is x, or x transposed in its last two axes when the flag is set. a and b are both
    2-D, or both 3-D with the same batch size.
    """
    a = ck.as_float("matmul: a", a)
    b = ck.as_float("matmul: b", b, a.dtype)
    _, _, _, _, shape = ck.matmul_shapes(a, b, trans_a, trans_b)
    if accumulate and out is None:
        raise ValueError("matmul: accumulate=True needs an out= buffer to accumulate into")
    out = _out(out, "matmul: out", shape, a.dtype)
    opa = np.swapaxes(a, -1, -2) if trans_a else a
    opb = np.swapaxes(b, -1, -2) if trans_b else b
    if accumulate:
        out += opa @ opb
    else:
        np.matmul(opa, opb, out=out)
    return out


def relu_forward(x, out=None):
    """out = max(x, 0); NaN stays NaN."""
    x = ck.as_float("relu_forward: x", x)
    out = _out(out, "relu_forward: out", x.shape, x.dtype)
    np.copyto(out, np.where(x > 0, x, np.where(np.isnan(x), x, 0)))
    return out


def relu_backward(x, grad, out=None):
    """out = grad where x > 0, else 0 (the derivative at 0 is taken as 0)."""
    x = ck.as_float("relu_backward: x", x)
    grad = ck.as_float("relu_backward: grad", grad)
    ck.same_shape("relu_backward: x", x, "grad", grad)
    out = _out(out, "relu_backward: out", x.shape, x.dtype)
    np.copyto(out, np.where(x > 0, grad, 0))
    return out


def softmax_forward(x, out=None):
    """Softmax along the last axis; subtracts the row max, so huge logits are safe.

    A row that is entirely -inf has no defined softmax and gives NaN (as the math does).
    """
    x = ck.as_float("softmax_forward: x", x)
    ck.last_axis("softmax_forward", x)
    out = _out(out, "softmax_forward: out", x.shape, x.dtype)
    with np.errstate(invalid="ignore", over="ignore"):
        m = x.max(axis=-1, keepdims=True) if x.shape[-1] else x[..., :0]
        e = np.exp(x - m)
        np.copyto(out, e / e.sum(axis=-1, keepdims=True))
    return out


def softmax_backward(y, grad, out=None):
    """Given y = softmax(x) and dL/dy, out = dL/dx = y * (grad - sum(grad * y, last axis))."""
    y = ck.as_float("softmax_backward: y", y)
    grad = ck.as_float("softmax_backward: grad", grad)
    ck.same_shape("softmax_backward: y", y, "grad", grad)
    ck.last_axis("softmax_backward", y)
    out = _out(out, "softmax_backward: out", y.shape, y.dtype)
    np.copyto(out, y * (grad - (grad * y).sum(axis=-1, keepdims=True)))
    return out


def log_softmax_forward(x, out=None):
    """log(softmax(x)) along the last axis via log-sum-exp; -inf entries stay -inf."""
    x = ck.as_float("log_softmax_forward: x", x)
    ck.last_axis("log_softmax_forward", x)
    out = _out(out, "log_softmax_forward: out", x.shape, x.dtype)
    with np.errstate(invalid="ignore", over="ignore"):
        m = x.max(axis=-1, keepdims=True) if x.shape[-1] else x[..., :0]
        s = x - m
        np.copyto(out, s - np.log(np.exp(s).sum(axis=-1, keepdims=True)))
    return out


def log_softmax_backward(y, grad, out=None):
    """Given y = log_softmax(x) and dL/dy, out = grad - exp(y) * sum(grad, last axis)."""
    y = ck.as_float("log_softmax_backward: y", y)
    grad = ck.as_float("log_softmax_backward: grad", grad)
    ck.same_shape("log_softmax_backward: y", y, "grad", grad)
    ck.last_axis("log_softmax_backward", y)
    out = _out(out, "log_softmax_backward: out", y.shape, y.dtype)
    np.copyto(out, grad - np.exp(y) * grad.sum(axis=-1, keepdims=True))
    return out


def cross_entropy_forward(logits, targets, losses=None, probs=None):
    """Fused log-softmax + negative log-likelihood over rows of a (B, C) array.

    Writes losses[i] = logsumexp(logits[i]) - logits[i, targets[i]] and probs = softmax(logits)
    (kept for the backward). Returns (losses, probs). targets: int array (B,), each in [0, C).
    """
    logits = ck.as_float("cross_entropy_forward: logits", logits)
    if logits.ndim != 2:
        raise ValueError(f"cross_entropy_forward: logits must be 2-D (B, C), got shape {logits.shape}")
    B, C = logits.shape
    targets = ck.as_index("cross_entropy_forward: targets", targets, C)
    if targets.shape != (B,):
        raise ValueError(f"cross_entropy_forward: targets must have shape ({B},), got {targets.shape}")
    losses = _out(losses, "cross_entropy_forward: losses", (B,), logits.dtype)
    probs = _out(probs, "cross_entropy_forward: probs", (B, C), logits.dtype)
    logp = log_softmax_forward(logits)
    np.copyto(probs, np.exp(logp))
    np.copyto(losses, -logp[np.arange(B), targets])
    return losses, probs


def cross_entropy_backward(probs, targets, grad, out=None):
    """dL/dlogits = (probs - onehot(targets)) * grad[:, None], with grad = dL/dlosses (B,)."""
    probs = ck.as_float("cross_entropy_backward: probs", probs)
    if probs.ndim != 2:
        raise ValueError(f"cross_entropy_backward: probs must be 2-D (B, C), got shape {probs.shape}")
    B, C = probs.shape
    targets = ck.as_index("cross_entropy_backward: targets", targets, C)
    if targets.shape != (B,):
        raise ValueError(f"cross_entropy_backward: targets must have shape ({B},), got {targets.shape}")
    grad = ck.as_float("cross_entropy_backward: grad", grad, probs.dtype)
    if grad.shape != (B,):
        raise ValueError(f"cross_entropy_backward: grad must have shape ({B},), got {grad.shape}")
    out = _out(out, "cross_entropy_backward: out", (B, C), probs.dtype)
    np.copyto(out, probs)
    out[np.arange(B), targets] -= 1
    out *= grad[:, None]
    return out


def embedding_gather(weight, indices, out=None):
    """out[i] = weight[indices[i]] for a (V, d) weight and a 1-D int index array (n,) -> (n, d)."""
    weight = ck.as_float("embedding_gather: weight", weight)
    if weight.ndim != 2:
        raise ValueError(f"embedding_gather: weight must be 2-D (V, d), got shape {weight.shape}")
    indices = ck.as_index("embedding_gather: indices", indices, weight.shape[0])
    if indices.ndim != 1:
        raise ValueError(f"embedding_gather: indices must be 1-D, got shape {indices.shape}")
    out = _out(out, "embedding_gather: out", (indices.shape[0], weight.shape[1]), weight.dtype)
    np.take(weight, indices, axis=0, out=out)
    return out


def embedding_scatter_add(grad, indices, out):
    """out[indices[i]] += grad[i] for every i (repeated indices accumulate); returns out (V, d)."""
    if out is None:
        raise ValueError("embedding_scatter_add: out (V, d) is required: it is accumulated into")
    grad = ck.as_float("embedding_scatter_add: grad", grad)
    if grad.ndim != 2:
        raise ValueError(f"embedding_scatter_add: grad must be 2-D (n, d), got shape {grad.shape}")
    if not isinstance(out, np.ndarray) or out.ndim != 2:
        raise ValueError("embedding_scatter_add: out must be a 2-D (V, d) ndarray")
    ck.check_out("embedding_scatter_add: out", out, (out.shape[0], grad.shape[1]), grad.dtype)
    indices = ck.as_index("embedding_scatter_add: indices", indices, out.shape[0])
    if indices.shape != (grad.shape[0],):
        raise ValueError(f"embedding_scatter_add: indices must have shape ({grad.shape[0]},), got {indices.shape}")
    np.add.at(out, indices, grad)
    return out


def info():
    return {"backend": NAME, "simd": "numpy", "threads": None, "compiler_flags": None}
