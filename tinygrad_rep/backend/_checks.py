"""Argument validation shared by every backend: one place decides what a kernel accepts.

Each check raises a clear Python exception (TypeError for dtypes, ValueError for shapes,
IndexError for indices) before any C code runs. The C adapters call these, and so does the
numpy reference, so all three backends reject the same inputs with the same messages.
"""
import numpy as np

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


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
    return np.ascontiguousarray(x)


def as_index(name, idx, upper):
    """Return idx as a C-contiguous int64 array with every entry in [0, upper)."""
    if not isinstance(idx, np.ndarray):
        raise TypeError(f"{name}: expected a numpy.ndarray of integers, got {type(idx).__name__}")
    if idx.dtype.kind not in "iu":
        raise TypeError(f"{name}: dtype {idx.dtype} is not an integer dtype")
    idx = np.ascontiguousarray(idx, dtype=np.int64)
    if idx.size:
        lo, hi = int(idx.min()), int(idx.max())
        if lo < 0 or hi >= upper:
            bad = lo if lo < 0 else hi
            raise IndexError(f"{name}: index {bad} is out of range for size {upper}")
    return idx


def check_out(name, out, shape, dtype):
    """Validate a caller-supplied output buffer (exact shape, dtype, C-contiguous, writeable)."""
    if not isinstance(out, np.ndarray):
        raise TypeError(f"{name}: expected a numpy.ndarray, got {type(out).__name__}")
    if out.shape != tuple(shape):
        raise ValueError(f"{name}: shape {out.shape} does not match the expected {tuple(shape)}")
    if out.dtype != dtype:
        raise TypeError(f"{name}: dtype {out.dtype} does not match {np.dtype(dtype)}")
    if not out.flags.c_contiguous or not out.flags.writeable:
        raise ValueError(f"{name}: output buffer must be C-contiguous and writeable")
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
