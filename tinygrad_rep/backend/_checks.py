"""Argument validation shared by every backend: one place decides what a kernel accepts.

Each check raises a clear Python exception (TypeError for dtypes, ValueError for shapes,
IndexError for indices) before any C code runs. The C adapters call these, and so does the
numpy reference, so all three backends reject the same inputs with the same messages.
"""
import math

import numpy as np

from . import pool

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
_TooHardError = getattr(getattr(np, "exceptions", np), "TooHardError")


def as_float(name, x, dtype=None):
    """Return x as a C-contiguous float32/float64 array; reject other dtypes.

    Rule: float32 and float64 are accepted as they are; every other dtype (float16, ints,
    bools, complex, objects) is rejected rather than silently cast, because a silent cast
    would hide precision loss or a caller bug. Non-contiguous arrays are copied, never misread.
    """
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{name}: expected a numpy.ndarray, got {type(x).__name__}")
    if x.dtype not in FLOAT_DTYPES:
        raise TypeError(f"{name}: dtype {x.dtype} is not supported (kernels take float32 or float64)")
    if dtype is not None and x.dtype != dtype:
        raise TypeError(f"{name}: dtype {x.dtype} does not match {np.dtype(dtype)}")
    return _dense(x)


def _dense(x):
    """x itself when C-contiguous and aligned, else an aligned C-contiguous copy (C code may
    use aligned vector loads on a float* or int64_t*, so a misaligned view must not reach it;
    np.ascontiguousarray would also turn a 0-d array into shape (1,))."""
    flags = x.flags
    if flags.c_contiguous and flags.aligned:
        return x
    return np.array(x, order="C")


def as_index(name, idx, upper):
    """Return idx as a C-contiguous int64 array with every entry in [0, upper)."""
    idx = as_int64(name, idx)
    in_range(name, idx, upper)
    return idx


def as_int64(name, idx):
    """Return idx as a C-contiguous int64 array; reject non-integer dtypes."""
    if not isinstance(idx, np.ndarray):
        raise TypeError(f"{name}: expected a numpy.ndarray of integers, got {type(idx).__name__}")
    if idx.dtype.kind not in "iu":
        raise TypeError(f"{name}: dtype {idx.dtype} is not an integer dtype")
    return _dense(idx.astype(np.int64, copy=False))


def in_range(name, idx, upper):
    """Raise IndexError unless every entry of the int64 array idx is in [0, upper)."""
    if idx.size:
        lo, hi = int(idx.min()), int(idx.max())
        if lo < 0 or hi >= upper:
            bad = lo if lo < 0 else hi
            raise IndexError(f"{name}: index {bad} is out of range for size {upper}")


def check_out(name, out, shape, dtype):
    """Validate a caller-supplied output buffer (exact shape, dtype, C-contiguous, writeable)."""
    if not isinstance(out, np.ndarray):
        raise TypeError(f"{name}: expected a numpy.ndarray, got {type(out).__name__}")
    if out.shape != tuple(shape):
        raise ValueError(f"{name}: shape {out.shape} does not match the expected {tuple(shape)}")
    if out.dtype != dtype:
        raise TypeError(f"{name}: dtype {out.dtype} does not match {np.dtype(dtype)}")
    if not out.flags.c_contiguous or not out.flags.writeable or not out.flags.aligned:
        raise ValueError(f"{name}: output buffer must be C-contiguous, aligned and writeable")
    return out


def matmul_shapes(a, b, trans_a, trans_b):
    """Shapes for C = op(A) @ op(B) with A, B both 2-D or both 3-D (same batch).

    Returns (batch, M, N, K, out_shape); batch is None for 2-D operands.
    """
    if a.ndim != b.ndim or a.ndim not in (2, 3):
        raise ValueError(f"matmul: operands must both be 2-D or both 3-D, got shapes {a.shape} and {b.shape}")
    batch = None
    if a.ndim == 3:
        if a.shape[0] != b.shape[0]:
            raise ValueError(f"matmul: batch sizes differ: {a.shape} and {b.shape}")
        batch = a.shape[0]
    M, Ka = (a.shape[-1], a.shape[-2]) if trans_a else (a.shape[-2], a.shape[-1])
    Kb, N = (b.shape[-1], b.shape[-2]) if trans_b else (b.shape[-2], b.shape[-1])
    if Ka != Kb:
        raise ValueError(f"matmul: inner dimensions differ: op(A) is {M}x{Ka}, op(B) is {Kb}x{N} "
                         f"(shapes {a.shape} and {b.shape}, trans_a={trans_a}, trans_b={trans_b})")
    out_shape = (M, N) if batch is None else (batch, M, N)
    return batch, M, N, Ka, out_shape


def same_shape(name_a, a, name_b, b):
    if a.shape != b.shape:
        raise ValueError(f"{name_a} has shape {a.shape} but {name_b} has shape {b.shape}")
    if a.dtype != b.dtype:
        raise TypeError(f"{name_a} has dtype {a.dtype} but {name_b} has dtype {b.dtype}")


def last_axis(name, x):
    if x.ndim == 0:
        raise ValueError(f"{name}: needs at least 1 dimension, got a 0-d array")


# ---- argument preparation for the C adapters (pybind.py and cffi.py) ----
# Each prepare_<kernel> (named by the kernel's row in kernels.py) takes numpy_ref.<kernel>'s
# arguments and checks them exactly as numpy_ref does, in the same order, so every backend raises
# the same exception class with the same message for the same bad input. It then allocates the
# outputs that were not given, and copies any input that overlaps a caller-supplied output: the C
# kernels may write an output before they are done reading their inputs (log-softmax keeps
# exp(x - max) in `out` while it still needs x), so an overlap would silently corrupt the result.
# It returns the C kernel's arguments, in C order (arrays for pointers). A row without a named
# function is checked by `generic_prepare`, from the row's shape patterns alone.

def out_buffer(out, name, shape, dtype):
    """A new output array when out is None, else the validated caller buffer."""
    if out is None:
        return pool.empty(tuple(shape), np.dtype(dtype))
    return check_out(name, out, shape, dtype)


def shares_memory(a, b):
    """True when a and b have a byte in common: the cheap bounds test first, the exact (possibly
    slower) one only when the bounds overlap (strided views can interleave without touching)."""
    if a is b:
        return a.size > 0
    if not np.may_share_memory(a, b):
        return False
    try:
        return bool(np.shares_memory(a, b, max_work=10 ** 6))
    except _TooHardError:
        return True  # undecided within the budget: treat as overlapping, the safe answer


def apart(out, x):
    """x, or a private copy of it when its memory may overlap out's."""
    if x.base is None and out.base is None and x is not out:
        return x  # two arrays that own separate allocations: the common case, decided cheaply
    return x.copy() if np.may_share_memory(out, x) else x


def prepare_matmul(a, b, out=None, trans_a=False, trans_b=False, accumulate=False):
    """-> batch, M, N, K, a, trans_a, b, trans_b, out, accumulate (batch is 1 for 2-D operands)."""
    a = as_float("matmul: a", a)
    b = as_float("matmul: b", b, a.dtype)
    batch, M, N, K, shape = matmul_shapes(a, b, trans_a, trans_b)
    if accumulate and out is None:
        raise ValueError("matmul: accumulate=True needs an out= buffer to accumulate into")
    if out is None:
        out = pool.empty(shape, a.dtype)
    else:
        check_out("matmul: out", out, shape, a.dtype)
        a, b = apart(out, a), apart(out, b)
    return ((1 if batch is None else batch), M, N, K, a, 1 if trans_a else 0, b, 1 if trans_b else 0,
            out, 1 if accumulate else 0)


def prepare_relu_forward(x, out=None):
    """-> n, x, out"""
    x = as_float("relu_forward: x", x)
    if out is None:
        return x.size, x, pool.empty_like(x)
    check_out("relu_forward: out", out, x.shape, x.dtype)
    return x.size, apart(out, x), out


def prepare_relu_backward(x, grad, out=None):
    """-> n, x, grad, out"""
    x = as_float("relu_backward: x", x)
    grad = as_float("relu_backward: grad", grad)
    same_shape("relu_backward: x", x, "grad", grad)
    if out is None:
        return x.size, x, grad, pool.empty_like(x)
    check_out("relu_backward: out", out, x.shape, x.dtype)
    return x.size, apart(out, x), apart(out, grad), out


# argument names in messages, made once (string formatting would cost on every tiny call)
_ROW_NAMES = {k: (f"{k}: x", f"{k}: y", f"{k}: grad", f"{k}: out") for k in (
    "softmax_forward", "log_softmax_forward", "softmax_backward", "log_softmax_backward")}


def _rows_forward(kernel, x, out):
    """softmax_forward / log_softmax_forward -> rows, cols, x, out"""
    x_name, _, _, out_name = _ROW_NAMES[kernel]
    x = as_float(x_name, x)
    last_axis(kernel, x)
    if out is None:
        out = pool.empty_like(x)
    else:
        check_out(out_name, out, x.shape, x.dtype)
        x = apart(out, x)
    cols = x.shape[-1]
    return (x.size // cols if cols else 0), cols, x, out


def _rows_backward(kernel, y, grad, out):
    """softmax_backward / log_softmax_backward -> rows, cols, y, grad, out"""
    _, y_name, grad_name, out_name = _ROW_NAMES[kernel]
    y = as_float(y_name, y)
    grad = as_float(grad_name, grad)
    same_shape(y_name, y, "grad", grad)
    last_axis(kernel, y)
    if out is None:
        out = pool.empty_like(y)
    else:
        check_out(out_name, out, y.shape, y.dtype)
        y, grad = apart(out, y), apart(out, grad)
    cols = y.shape[-1]
    return (y.size // cols if cols else 0), cols, y, grad, out


def prepare_softmax_forward(x, out=None):
    return _rows_forward("softmax_forward", x, out)


def prepare_log_softmax_forward(x, out=None):
    return _rows_forward("log_softmax_forward", x, out)


def prepare_softmax_backward(y, grad, out=None):
    return _rows_backward("softmax_backward", y, grad, out)


def prepare_log_softmax_backward(y, grad, out=None):
    return _rows_backward("log_softmax_backward", y, grad, out)


def prepare_cross_entropy_forward(logits, targets, losses=None, probs=None, loss=None):
    """-> B, C, logits, targets (int64), losses, probs, loss"""
    logits = as_float("cross_entropy_forward: logits", logits)
    if logits.ndim != 2:
        raise ValueError(f"cross_entropy_forward: logits must be 2-D (B, C), got shape {logits.shape}")
    B, C = logits.shape
    targets = as_index("cross_entropy_forward: targets", targets, C)
    if targets.shape != (B,):
        raise ValueError(f"cross_entropy_forward: targets must have shape ({B},), got {targets.shape}")
    losses = out_buffer(losses, "cross_entropy_forward: losses", (B,), logits.dtype)
    probs = out_buffer(probs, "cross_entropy_forward: probs", (B, C), logits.dtype)
    loss = out_buffer(loss, "cross_entropy_forward: loss", (), logits.dtype)
    outs = {"losses": losses, "probs": probs, "loss": loss}
    for a, b in (("losses", "probs"), ("losses", "loss"), ("probs", "loss")):
        if np.may_share_memory(outs[a], outs[b]):
            raise ValueError(f"cross_entropy_forward: {a} and {b} must not overlap")
    for out in (losses, probs, loss):
        logits, targets = apart(out, logits), apart(out, targets)
    return B, C, logits, targets, losses, probs, loss


def prepare_cross_entropy_backward(probs, targets, grad, out=None):
    """-> B, C, probs, targets (int64), grad, out"""
    probs = as_float("cross_entropy_backward: probs", probs)
    if probs.ndim != 2:
        raise ValueError(f"cross_entropy_backward: probs must be 2-D (B, C), got shape {probs.shape}")
    B, C = probs.shape
    targets = as_index("cross_entropy_backward: targets", targets, C)
    if targets.shape != (B,):
        raise ValueError(f"cross_entropy_backward: targets must have shape ({B},), got {targets.shape}")
    grad = as_float("cross_entropy_backward: grad", grad, probs.dtype)
    if grad.shape != (B,):
        raise ValueError(f"cross_entropy_backward: grad must have shape ({B},), got {grad.shape}")
    if out is None:
        out = pool.empty_like(probs)
    else:
        check_out("cross_entropy_backward: out", out, (B, C), probs.dtype)
        probs, targets, grad = apart(out, probs), apart(out, targets), apart(out, grad)
    return B, C, probs, targets, grad, out


def prepare_embedding_gather(weight, indices, out=None):
    """-> n, d, weight, indices (int64), out"""
    weight = as_float("embedding_gather: weight", weight)
    if weight.ndim != 2:
        raise ValueError(f"embedding_gather: weight must be 2-D (V, d), got shape {weight.shape}")
    indices = as_index("embedding_gather: indices", indices, weight.shape[0])
    if indices.ndim != 1:
        raise ValueError(f"embedding_gather: indices must be 1-D, got shape {indices.shape}")
    n, d = indices.shape[0], weight.shape[1]
    if out is None:
        out = pool.empty((n, d), weight.dtype)
    else:
        check_out("embedding_gather: out", out, (n, d), weight.dtype)
        weight, indices = apart(out, weight), apart(out, indices)
    return n, d, weight, indices, out


def prepare_embedding_scatter_add(grad, indices, out):
    """-> n, d, grad, indices (int64), out"""
    if out is None:
        raise ValueError("embedding_scatter_add: out (V, d) is required: it is accumulated into")
    grad = as_float("embedding_scatter_add: grad", grad)
    if grad.ndim != 2:
        raise ValueError(f"embedding_scatter_add: grad must be 2-D (n, d), got shape {grad.shape}")
    if not isinstance(out, np.ndarray) or out.ndim != 2:
        raise ValueError("embedding_scatter_add: out must be a 2-D (V, d) ndarray")
    check_out("embedding_scatter_add: out", out, (out.shape[0], grad.shape[1]), grad.dtype)
    indices = as_index("embedding_scatter_add: indices", indices, out.shape[0])
    if indices.shape != (grad.shape[0],):
        raise ValueError(f"embedding_scatter_add: indices must have shape ({grad.shape[0]},), got {indices.shape}")
    grad, indices = apart(out, grad), apart(out, indices)
    return grad.shape[0], grad.shape[1], grad, indices, out


def env_num_threads_problem(value):
    """A message when TINYGRAD_REP_NUM_THREADS holds something other than a whole number >= 1
    (the C runtime then ignores it and uses OpenMP's default), else None."""
    if value is None or not value.strip():
        return None
    try:
        if int(value.strip()) >= 1:
            return None
    except ValueError:
        pass
    return (f"TINYGRAD_REP_NUM_THREADS={value!r} is not a whole number >= 1; "
            "the kernels use OpenMP's default thread count instead")


# ---- word2vec kernels (csrc/sgns.c): shared by numpy_ref, pybind.py and cffi.py ----

def prepare_sgns(center, targets, losses=None, grad_center=None, grad_targets=None):
    """sgns_forward_backward -> B, T, d, center, targets, losses, grad_center, grad_targets"""
    name = "sgns_forward_backward"
    center = as_float(f"{name}: center", center)
    targets = as_float(f"{name}: targets", targets, center.dtype)
    if center.ndim != 2:
        raise ValueError(f"{name}: center must be 2-D (B, d), got shape {center.shape}")
    B, d = center.shape
    if targets.ndim != 3 or targets.shape[0] != B or targets.shape[2] != d:
        raise ValueError(f"{name}: targets must have shape ({B}, T, {d}), got {targets.shape}")
    T = targets.shape[1]
    if T < 1:
        raise ValueError(f"{name}: targets needs T >= 1 rows per center (the true context first)")
    outs = (out_buffer(losses, f"{name}: losses", (B,), center.dtype),
            out_buffer(grad_center, f"{name}: grad_center", (B, d), center.dtype),
            out_buffer(grad_targets, f"{name}: grad_targets", (B, T, d), center.dtype))
    for i, a in enumerate(outs):
        for b in outs[i + 1:]:
            if a.size and b.size and np.may_share_memory(a, b):
                raise ValueError(f"{name}: output buffers must not overlap")
    for out in outs:
        center, targets = apart(out, center), apart(out, targets)
    return (B, T, d, center, targets) + outs


def prepare_sample_negatives(prob, alias, avoid, k, seed, out=None):
    """sample_negatives -> rows, k, V, prob, alias, avoid (int64), seed, out"""
    name = "sample_negatives"
    if not isinstance(prob, np.ndarray) or prob.dtype != np.float64 or prob.ndim != 1:
        raise TypeError(f"{name}: prob must be a 1-D float64 ndarray")
    V = prob.shape[0]
    if V < 1:
        raise ValueError(f"{name}: the alias table is empty (V = 0)")
    prob = _dense(prob)
    if not np.all((prob >= 0) & (prob <= 1)):  # also rejects NaN
        raise ValueError(f"{name}: prob entries must lie in [0, 1]")
    alias = as_index(f"{name}: alias", alias, V)
    if alias.shape != (V,):
        raise ValueError(f"{name}: alias must have shape ({V},), got {alias.shape}")
    if not isinstance(avoid, np.ndarray) or avoid.dtype.kind not in "iu" or avoid.ndim != 1:
        raise TypeError(f"{name}: avoid must be a 1-D integer ndarray (-1 where nothing is avoided)")
    avoid = _dense(avoid.astype(np.int64, copy=False))
    rows = avoid.shape[0]
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 0:
        raise ValueError(f"{name}: k must be an integer >= 0, got {k!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= int(seed) < 2 ** 64:
        raise ValueError(f"{name}: seed must be an integer in [0, 2**64), got {seed!r}")
    k, seed = int(k), int(seed)
    if out is None:
        out = np.empty((rows, k), dtype=np.int64)
    else:
        check_out(f"{name}: out", out, (rows, k), np.dtype(np.int64))
        prob, alias, avoid = apart(out, prob), apart(out, alias), apart(out, avoid)
    return rows, k, V, prob, alias, avoid, seed, out


def prepare_sgns_sgd(W_in, W_out, inputs, targets, lr, losses=None):
    """sgns_sgd -> n, T, d, W_in, W_out, inputs, targets (int64), lr (float), losses, work
    (work: the kernel's T + d scratch values).

    W_in and W_out are updated in place, so they must be C-contiguous, writeable, of one float
    dtype, and must not share memory (no copy is ever made of them)."""
    name = "sgns_sgd"
    for what, W in (("W_in", W_in), ("W_out", W_out)):
        if not isinstance(W, np.ndarray):
            raise TypeError(f"{name}: {what} must be a numpy.ndarray, got {type(W).__name__}")
        if W.dtype not in FLOAT_DTYPES:
            raise TypeError(f"{name}: {what} has dtype {W.dtype} (float32 or float64 needed)")
        if W.ndim != 2:
            raise ValueError(f"{name}: {what} must be 2-D (V, d), got shape {W.shape}")
        if not W.flags.c_contiguous or not W.flags.writeable or not W.flags.aligned:
            raise ValueError(f"{name}: {what} is updated in place and must be C-contiguous, aligned and writeable")
    if W_out.dtype != W_in.dtype:
        raise TypeError(f"{name}: W_in has dtype {W_in.dtype} but W_out has dtype {W_out.dtype}")
    d = W_in.shape[1]
    if W_out.shape[1] != d:
        raise ValueError(f"{name}: W_in is {W_in.shape} but W_out is {W_out.shape}: the widths differ")
    if W_in is W_out or (W_in.size and W_out.size and shares_memory(W_in, W_out)):
        raise ValueError(f"{name}: W_in and W_out must not share memory")
    inputs = as_index(f"{name}: inputs", inputs, W_in.shape[0])
    if inputs.ndim != 1:
        raise ValueError(f"{name}: inputs must be 1-D, got shape {inputs.shape}")
    n = inputs.shape[0]
    targets = as_index(f"{name}: targets", targets, W_out.shape[0])
    if targets.ndim != 2 or targets.shape[0] != n or targets.shape[1] < 1:
        raise ValueError(f"{name}: targets must have shape ({n}, T) with T >= 1, got {targets.shape}")
    if isinstance(lr, bool) or not isinstance(lr, (int, float, np.integer, np.floating)) or not np.isfinite(lr):
        raise ValueError(f"{name}: lr must be a finite number, got {lr!r}")
    losses = out_buffer(losses, f"{name}: losses", (n,), W_in.dtype)
    for W in (W_in, W_out):
        if shares_memory(W, losses):
            raise ValueError(f"{name}: losses must not share memory with W_in or W_out")
    # the kernel writes W_in, W_out and losses while it still reads the indices: an index array
    # sharing their memory would be overwritten mid-call and send the kernel out of range
    for out in (W_in, W_out, losses):
        inputs, targets = apart(out, inputs), apart(out, targets)
    T = targets.shape[1]
    return n, T, d, W_in, W_out, inputs, targets, float(lr), losses, np.empty(T + d, W_in.dtype)


_INF = math.inf


def _refuse_adam_hyperparameters(lr, beta1, beta2, eps, weight_decay):
    for name, value, high in (("lr", lr, _INF), ("beta1", beta1, 1.0), ("beta2", beta2, 1.0),
                              ("eps", eps, _INF), ("weight_decay", weight_decay, _INF)):
        if (isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating))
                or not 0.0 <= value < high):
            limits = "in [0, 1)" if high == 1.0 else "a finite number >= 0"
            raise ValueError(f"adam_step: {name} must be {limits}, got {value!r}")


def prepare_adam_step(param, grad, exp_avg, exp_avg_sq, step, lr, beta1=0.9, beta2=0.999, eps=1e-8,
                      weight_decay=0.0, decoupled=False):
    """Checks shared by every backend's adam_step -> n, param, grad, exp_avg, exp_avg_sq, beta1,
    beta2, eps, weight_decay, decoupled, lr, step_size, bias2_sqrt (tr_adam_step's arguments).

    param, exp_avg and exp_avg_sq are updated in place, so they must be writeable, C-contiguous,
    aligned float32/float64 arrays of one shape and dtype that do not overlap (a copy would drop
    the update); grad must match them and is copied when it is not dense or overlaps them.
    """
    check_out("adam_step: param", param, getattr(param, "shape", ()), getattr(param, "dtype", None))
    if param.dtype not in FLOAT_DTYPES:
        raise TypeError(f"adam_step: param: dtype {param.dtype} is not supported (kernels take float32 or float64)")
    check_out("adam_step: exp_avg", exp_avg, param.shape, param.dtype)
    check_out("adam_step: exp_avg_sq", exp_avg_sq, param.shape, param.dtype)
    grad = as_float("adam_step: grad", grad, param.dtype)
    if grad.shape != param.shape:
        raise ValueError(f"adam_step: grad has shape {grad.shape} but param has shape {param.shape}")
    if (param.base is not None or exp_avg.base is not None or exp_avg_sq.base is not None
            or param is exp_avg or param is exp_avg_sq or exp_avg is exp_avg_sq):
        for a, b in ((param, exp_avg), (param, exp_avg_sq), (exp_avg, exp_avg_sq)):
            if np.may_share_memory(a, b):
                raise ValueError("adam_step: param, exp_avg and exp_avg_sq must not overlap")
    for out in (param, exp_avg, exp_avg_sq):
        grad = apart(out, grad)
    if isinstance(step, bool) or not isinstance(step, (int, np.integer)) or step < 1:
        raise ValueError(f"adam_step: step must be an int >= 1 (the count including this step), got {step!r}")
    try:  # one chained test per step (NaN fails every comparison); the loop below names the culprit
        fine = 0.0 <= lr < _INF and 0.0 <= beta1 < 1.0 and 0.0 <= beta2 < 1.0 and 0.0 <= eps < _INF \
            and 0.0 <= weight_decay < _INF
    except TypeError:
        fine = False
    if not fine:
        _refuse_adam_hyperparameters(lr, beta1, beta2, eps, weight_decay)
    step_size = lr / (1.0 - beta1 ** step)
    bias2_sqrt = math.sqrt(1.0 - beta2 ** step)
    return (param.size, param, grad, exp_avg, exp_avg_sq, beta1, beta2, eps, weight_decay,
            1 if decoupled else 0, lr, step_size, bias2_sqrt)


# ---- the checks of a kernel row without a named function, from its shape patterns ----

def _shape_text(parts):
    return "(" + ", ".join(str(p) for p in parts) + ("," if len(parts) == 1 else "") + ")"


def _is_number(v):
    return not isinstance(v, bool) and isinstance(v, (int, float, np.integer, np.floating))


_generic = {}


def check_args(kernel, *values):
    """A kernel's C arguments from its Python-side arguments (the table row's, in C order),
    checked by the row's generic checks: numpy_ref's way to check a kernel without a named
    check function, e.g. `n, x, alpha, out = check_args("scale", x, alpha, out)`."""
    if kernel not in _generic:
        from .kernels import BY_NAME
        _generic[kernel] = generic_prepare(BY_NAME[kernel])
    return _generic[kernel](*values)


def generic_prepare(row, names=None):
    """The check function of a kernel row (kernels.Kernel) that names none: it takes
    numpy_ref's arguments (parameter `names`, in order; by default the row's Python-side
    arguments in C order) and returns the C arguments, raising
    the messages of the functions above (as_float, as_index, check_out, same_shape) and
    "<kernel>: <arg> must be 2-D (B, C), got shape (3,)" / "... must have shape (2, T), got
    (3, 1)" for a shape that does not fit the row's pattern."""
    from . import kernels as K
    k, args = row.name, row.args
    names = names or [a.py for a in args if a.py is not None]
    where = {a.py: names.index(a.py) for a in args if a.py is not None}
    numbers = [i for i, a in enumerate(args) if a.role in (K.FLAG, K.SCALAR, K.SEED) or
               (a.role == K.SIZE and a.py is not None)]
    arrays = [i for i in row.arrays if args[i].role != K.SCRATCH]

    def bind_shape(a, x, sym, binder, flags):
        tokens = list(a.pattern)
        if a.swap and flags[a.swap]:
            tokens[-2:] = tokens[-1:-3:-1]
        star = tokens and tokens[0][0] == "*"
        if star and tokens[0][1:] in sym:  # the very shape of the array that bound it
            same_shape(f"{k}: {binder[tokens[0][1:]]}", binder["@" + tokens[0][1:]], a.name, x)
            return
        if star and x.ndim < len(tokens) - 1:
            more = len(tokens) - 1
            raise ValueError(f"{k}: needs at least {more} dimension{'s' * (more > 1)}, got a {x.ndim}-d array")
        lead = x.ndim - len(tokens) + 1 if star else 0
        if tokens and tokens[0][0] == "?" and x.ndim == len(tokens) - 1:
            sym.setdefault(tokens[0][1:], None)
            tokens = tokens[1:]
        want = [t.lstrip("*?") for t in tokens]
        free = all(t not in sym for t in want)
        dims = [x.shape[:lead]] + list(x.shape[lead:]) if star else list(x.shape)
        fits = len(dims) == len(want) and all(sym.get(t, d) == d for t, d in zip(want, dims))
        if not fits:
            if free and len(want) == 1:
                raise ValueError(f"{k}: {a.name} must be 1-D, got shape {x.shape}")
            if free:
                raise ValueError(f"{k}: {a.name} must be {len(want)}-D ({', '.join(want)}), got shape {x.shape}")
            raise ValueError(f"{k}: {a.name} must have shape {_shape_text([sym.get(t, t) for t in want])}, "
                             f"got {x.shape}")
        for t, d in zip(want, dims):
            if t not in sym:
                sym[t], binder[t], binder["@" + t] = d, a.name, x
        if star:
            sym[want[0]] = x.shape[:lead]

    def shape_of(a, sym, flags):
        tokens = list(a.pattern)
        if a.swap and flags[a.swap]:
            tokens[-2:] = tokens[-1:-3:-1]
        shape = []
        for t in tokens:
            v = sym[t.lstrip("*?")]
            shape += list(v) if t[0] == "*" else [] if v is None else [v]
        return tuple(shape)

    def prepare(*values):
        c = [None] * len(args)
        sym, binder, flags = {}, {}, {}
        for i in numbers:
            a, v = args[i], values[where[args[i].py]]
            if a.role == K.FLAG:
                c[i] = flags[a.name] = 1 if v else 0
            elif a.role == K.SCALAR:
                if not _is_number(v) or (a.finite and not math.isfinite(v)):
                    raise ValueError(f"{k}: {a.name} must be a {'finite ' * a.finite}number, got {v!r}")
                c[i] = float(v)
            elif a.role == K.SEED:
                if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not 0 <= int(v) < 2 ** 64:
                    raise ValueError(f"{k}: {a.name} must be an integer in [0, 2**64), got {v!r}")
                c[i] = int(v)
            else:
                if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0:
                    raise ValueError(f"{k}: {a.name} must be an integer >= 0, got {v!r}")
                sym[a.sym] = int(v)
        dtype, missing, deferred = None, [], []
        for i in arrays:
            a, x = args[i], values[where[args[i].py]]
            name = f"{k}: {a.name}"
            if x is None and a.role == K.OUT:
                if a.required_if and flags[a.required_if]:
                    raise ValueError(f"{name}: {a.required_if}=True needs an output to accumulate into")
                missing.append(i)
                continue
            if x is None:
                raise ValueError(f"{name} is required: it is updated in place")
            if a.role in (K.OUT, K.INOUT):
                if not isinstance(x, np.ndarray):
                    raise TypeError(f"{name}: expected a numpy.ndarray, got {type(x).__name__}")
                want = {"T": dtype or x.dtype, "f64": np.dtype(np.float64), "i64": np.dtype(np.int64)}[a.dtype]
                if a.dtype == "T" and x.dtype not in FLOAT_DTYPES:
                    raise TypeError(f"{name}: dtype {x.dtype} is not supported (kernels take float32 or float64)")
                if all(t.lstrip("*?") in sym for t in a.pattern):
                    check_out(name, x, shape_of(a, sym, flags), want)
                else:
                    bind_shape(a, x, sym, binder, flags)
                    check_out(name, x, x.shape, want)
                dtype = dtype or (x.dtype if a.dtype == "T" else None)
            elif a.role == K.INDEX:
                if a.below in sym:
                    x = as_index(name, x, sym[a.below])
                else:  # its bound comes from a later argument: the range is checked below
                    x = as_int64(name, x)
                    deferred.append(i)
                bind_shape(a, x, sym, binder, flags)
            elif a.role == K.INTS:
                x = as_int64(name, x)
                bind_shape(a, x, sym, binder, flags)
            else:
                like = a.pattern and a.pattern[0][0] == "*" and a.pattern[0][1:] in sym
                x = as_float(name, x, None if like or a.dtype != "T" else dtype)
                if a.dtype == "f64" and x.dtype != np.float64:
                    raise TypeError(f"{name}: dtype {x.dtype} does not match float64")
                bind_shape(a, x, sym, binder, flags)
                dtype = dtype or (x.dtype if a.dtype == "T" else None)
                if a.within and not np.all((x >= a.within[0]) & (x <= a.within[1])):
                    raise ValueError(f"{name}: entries must lie in [{a.within[0]}, {a.within[1]}]")
            c[i] = x
        for i, a in enumerate(args):
            if a.role == K.SIZE:
                if a.sym not in sym:
                    raise TypeError(f"kernel table: {k}'s size {a.name} is bound by no argument")
                v = sym[a.sym]
                c[i] = 1 if v is None else int(np.prod(v)) if isinstance(v, tuple) else v
                if c[i] < a.minimum:
                    raise ValueError(f"{k}: {a.sym} must be >= {a.minimum}, got {c[i]}")
        for i in deferred:
            in_range(f"{k}: {args[i].name}", c[i], sym[args[i].below])
        for i in missing:
            a = args[i]
            want = {"T": dtype, "f64": np.dtype(np.float64), "i64": np.dtype(np.int64)}[a.dtype]
            c[i] = pool.empty(shape_of(a, sym, flags), want)
        for i, a in enumerate(args):
            if a.role == K.SCRATCH:
                c[i] = np.empty(sum(sym[t] for t in a.count), dtype)
            elif a.role == K.SIZE and a.nonempty_if and c[[b.name for b in args].index(a.nonempty_if)].size:
                if c[i] < 1:
                    raise ValueError(f"{k}: {a.message}")
        written = [i for i in row.arrays if args[i].role in K.WRITTEN]
        for n, i in enumerate(written):
            for j in written[n + 1:]:
                if shares_memory(c[i], c[j]):
                    raise ValueError(f"{k}: {args[i].name} and {args[j].name} must not overlap")
        for i in row.arrays:
            if args[i].role not in K.WRITTEN:
                for j in written:
                    c[i] = apart(c[j], c[i])
        return tuple(c)

    prepare.__name__ = prepare.__qualname__ = f"prepare_{k}"
    return prepare
