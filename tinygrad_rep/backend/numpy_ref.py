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
from .kernels import KERNELS as KERNEL_TABLE

NAME = "numpy"

KERNELS = tuple(k.name for k in KERNEL_TABLE)  # one function below per row of kernels.py
# Functions every backend has besides the kernels (same names and signatures everywhere).
RUNTIME = ("set_num_threads", "get_num_threads", "info")


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


def cross_entropy_forward(logits, targets, losses=None, probs=None, loss=None):
    """Fused log-softmax + negative log-likelihood over rows of a (B, C) array.

    Writes losses[i] = logsumexp(logits[i]) - logits[i, targets[i]], probs = softmax(logits)
    (kept for the backward) and the 0-d loss = losses.mean() (NaN for B = 0). Returns
    (losses, probs, loss). targets: int array (B,), each in [0, C).
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
    loss = _out(loss, "cross_entropy_forward: loss", (), logits.dtype)
    logp = log_softmax_forward(logits)
    np.copyto(probs, np.exp(logp))
    np.copyto(losses, -logp[np.arange(B), targets])
    np.copyto(loss, np.add.reduce(losses) / B if B else np.nan)  # as ndarray.mean sums and divides
    return losses, probs, loss


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



# ---- word2vec: skip-gram negative sampling (csrc/sgns.c) ----

SGNS_MAX_TRIES = 16  # sample_negatives: draws per slot before a draw equal to `avoid` is kept
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _splitmix64(z):
    """The splitmix64 output function on uint64 arrays (wrapping arithmetic, as in C)."""
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def sgns_forward_backward(center, targets, losses=None, grad_center=None, grad_targets=None):
    """Skip-gram negative-sampling loss of B rows and its gradients, in one pass.

    center (B, d); targets (B, T, d), T >= 1: targets[b, 0] is the true context of center[b],
    targets[b, 1:] are its negatives. With s[b, t] = center[b] . targets[b, t] and
    e[b, t] = sigmoid(s[b, t]) - (t == 0):
        losses[b]          = -log sigmoid(s[b, 0]) - sum_{t >= 1} log sigmoid(-s[b, t])
        grad_center[b]     = sum_t e[b, t] * targets[b, t]     (d losses[b] / d center[b])
        grad_targets[b, t] = e[b, t] * center[b]               (d losses[b] / d targets[b, t])
    log-sigmoid is evaluated stably (no overflow for huge |s|). Returns (losses, grad_center,
    grad_targets); each may be given as a caller-allocated buffer, which is overwritten.
    """
    B, T, d, center, targets, losses, grad_center, grad_targets = ck.prepare_sgns(
        center, targets, losses, grad_center, grad_targets)
    s = np.matmul(targets, center[:, :, None])[:, :, 0]                  # (B, T)
    sign = np.ones(T, dtype=center.dtype)
    sign[0] = -1
    z = s * sign                                                         # loss = softplus(z)
    x = np.exp(-np.abs(s))                                               # in (0, 1]: no overflow
    np.copyto(losses, (np.maximum(z, 0) + np.log1p(x)).sum(axis=1))      # |z| == |s|
    e = np.where(s >= 0, 1 / (1 + x), x / (1 + x))                       # sigmoid(s)
    e[:, 0] -= 1
    e = e.astype(center.dtype, copy=False)
    np.copyto(grad_center, np.matmul(e[:, None, :], targets)[:, 0, :])
    np.multiply(e[:, :, None], center[:, None, :], out=grad_targets)
    return losses, grad_center, grad_targets


def sample_negatives(prob, alias, avoid, k, seed, out=None):
    """k word ids per row drawn from a Walker alias table, never (if it can help) avoid[row].

    prob (V,) float64 in [0, 1] and alias (V,) int64 in [0, V) describe the distribution: a
    draw picks bucket i uniformly and returns i with probability prob[i], else alias[i].
    avoid (rows,) int64: the word each row must not draw (-1: none). Slot n = row * k + j,
    attempt a (0 <= a < SGNS_MAX_TRIES) uses the 64-bit number
        x = splitmix64(seed + (n * SGNS_MAX_TRIES + a + 1) * 0x9E3779B97F4A7C15)   (mod 2^64)
    bucket i = ((x mod 2^32) * V) >> 32, coin u = (x >> 32) / 2^32; the first attempt whose
    word differs from avoid[row] is kept (the last attempt is kept in any case). The same seed
    gives the same draws on every backend and thread count. Returns out (rows, k) int64.
    """
    rows, k, V, prob, alias, avoid, seed, out = ck.prepare_sample_negatives(prob, alias, avoid, k, seed, out)
    n = np.arange(rows * k, dtype=np.uint64)
    want = np.repeat(avoid, k)
    result = out.reshape(-1)
    todo = np.arange(rows * k)
    mask32 = np.uint64(0xFFFFFFFF)
    for attempt in range(SGNS_MAX_TRIES):
        if not len(todo):
            break
        with np.errstate(over="ignore"):
            z = np.uint64(seed) + (n[todo] * np.uint64(SGNS_MAX_TRIES) + np.uint64(attempt + 1)) * _GOLDEN
            x = _splitmix64(z)
        i = ((x & mask32) * np.uint64(V)) >> np.uint64(32)
        u = (x >> np.uint64(32)).astype(np.float64) * (1.0 / 4294967296.0)
        i = i.astype(np.int64)
        word = np.where(u < prob[i], i, alias[i])
        result[todo] = word
        todo = todo[word == want[todo]]
    return out


def sgns_sgd(W_in, W_out, inputs, targets, lr, losses=None):
    """Skip-gram SGD in place over index pairs, one pair after another (the original's loop).

    W_in (V_in, d), W_out (V_out, d): updated in place. inputs (n,), targets (n, T) int64:
    pair i trains c = W_in[inputs[i]] against o_k = W_out[targets[i, k]], k = 0 the true
    context, k >= 1 negatives, all read as they are when the pair starts:
        e_k = sigmoid(c . o_k) - (k == 0);  o_k -= lr * e_k * c  (repeated rows add up);
        c -= lr * sum_k e_k * o_k
    one SGD step on the pair's loss; the next pair starts from the updated rows. losses[i]
    (written) is pair i's loss before its step, as in sgns_forward_backward. Returns losses.
    """
    n, T, d, W_in, W_out, inputs, targets, lr, losses, _ = ck.prepare_sgns_sgd(W_in, W_out, inputs, targets, lr, losses)
    lr = W_in.dtype.type(lr)
    for i in range(n):
        c = W_in[inputs[i]]
        rows = W_out[targets[i]]                                         # a copy: the start values
        loss, gc, gt = sgns_forward_backward(c[None, :], rows[None])
        np.subtract.at(W_out, targets[i], lr * gt[0])
        c -= lr * gc[0]
        losses[i] = loss[0]
    return losses


# ---- runtime: the same functions as the C backends, so callers never need to probe ----
# numpy's own kernels take their thread count from its BLAS; the count set here is only kept and
# reported back (as for the C backends, each backend module has its own count).
_num_threads = 1


def set_num_threads(n):
    """Set the thread count this backend reports (n < 1 means 1); numpy's work is unaffected."""
    global _num_threads
    _num_threads = max(1, min(int(n), 1 << 20))


def get_num_threads():
    """The thread count last set with set_num_threads (1 at start)."""
    return _num_threads


def info():
    return {"backend": NAME, "simd": "numpy", "threads": None, "compiler_flags": None}


# ---- optimizers (csrc/optim.c) ----

def adam_step(param, grad, exp_avg, exp_avg_sq, step, lr, beta1=0.9, beta2=0.999, eps=1e-8,
              weight_decay=0.0, decoupled=False):
    """One Adam update in place (AdamW's when decoupled), PyTorch's rule; returns param.

    param, exp_avg (m), exp_avg_sq (v): same-shape float arrays, updated in place; grad: read.
    step: this update's count t >= 1 (1 on the first call). With decoupled=False, L2 decay:
    g = grad + weight_decay * param; with decoupled=True, param *= 1 - lr * weight_decay, g = grad.
    Then m = beta1 m + (1 - beta1) g, v = beta2 v + (1 - beta2) g^2,
    param -= m / (sqrt(v) / sqrt(1 - beta2^t) + eps) * lr / (1 - beta1^t).
    Each operation is rounded at the arrays' precision in this order; the C kernels match it bit
    for bit.
    """
    _, param, grad, m, v, *_, step_size, bias2_sqrt = ck.prepare_adam_step(
        param, grad, exp_avg, exp_avg_sq, step, lr, beta1, beta2, eps, weight_decay, decoupled)
    g = grad
    if weight_decay != 0:
        if decoupled:
            param *= 1.0 - lr * weight_decay
        else:
            g = grad + param * weight_decay
    m *= beta1
    m += g * (1.0 - beta1)
    v *= beta2
    v += g * g * (1.0 - beta2)
    work = np.sqrt(v)
    work /= bias2_sqrt
    work += eps
    np.divide(m, work, out=work)
    work *= step_size
    param -= work
    return param
