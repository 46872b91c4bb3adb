"""Reductions. Each backward reshapes the gradient to keepdims form and expands it back."""
import numpy as np

from ..autograd import Function


def normalize_axis(axis, ndim):
    """Axis argument -> sorted tuple of non-negative axes; raises ValueError naming a bad axis."""
    if axis is None:
        return tuple(range(ndim))
    if isinstance(axis, (int, np.integer)):
        axes = (axis,)
    elif isinstance(axis, (tuple, list)):
        axes = tuple(axis)
    else:
        raise TypeError(f"axis must be an int, a tuple of ints or None, got {axis!r}")
    out = []
    for a in axes:
        if not isinstance(a, (int, np.integer)) or isinstance(a, bool):
            raise TypeError(f"axis must be an int or a tuple of ints, got {axis!r}")
        if not -max(ndim, 1) <= a < max(ndim, 1):  # a 0-d tensor accepts axis 0 and -1, as in PyTorch
            raise ValueError(f"axis {a} is out of range for a tensor with {ndim} dimensions")
        out.append(int(a) % max(ndim, 1))
    if len(set(out)) != len(out):
        raise ValueError(f"repeated axis in {axis!r}")
    return tuple(sorted(out)) if ndim else ()  # a 0-d tensor has no axis to reduce


def keepdims_shape(shape, axes):
    return tuple(1 if i in axes else n for i, n in enumerate(shape))


class Sum(Function):
    """y = sum of x over axes;  dy/dx = 1 (the gradient is expanded back over the summed axes)"""
    @staticmethod
    def forward(ctx, x, axes=(), keepdims=False):
        ctx.shape, ctx.axes = x.shape, axes
        return np.asarray(x.sum(axis=axes, keepdims=keepdims))

    @staticmethod
    def backward(ctx, g):
        return g.reshape(keepdims_shape(ctx.shape, ctx.axes)).expand(ctx.shape)

    @staticmethod
    def array_backward(ctx, g):  # Reshape's and Expand's forwards on the array
        a = g.reshape(keepdims_shape(ctx.shape, ctx.axes))
        return a if a.shape == ctx.shape else np.array(np.broadcast_to(a, ctx.shape))


class Max(Function):
    """y = max of x over axes;  dy/dx = 1 at the maximum (shared equally between ties), else 0"""
    @staticmethod
    def forward(ctx, x, axes=(), keepdims=False):
        if x.size == 0 and any(x.shape[a] == 0 for a in axes):
            raise ValueError(f"max over an empty axis: tensor of shape {x.shape}, axes {axes}")
        y = x.max(axis=axes, keepdims=True)
        mask = (x == y).astype(x.dtype)
        ctx.weights = mask / mask.sum(axis=axes, keepdims=True)
        ctx.shape, ctx.axes = x.shape, axes
        return np.asarray(y if keepdims else y.reshape([n for i, n in enumerate(x.shape) if i not in axes]))

    @staticmethod
    def backward(ctx, g):
        return g.reshape(keepdims_shape(ctx.shape, ctx.axes)) * ctx.weights


class LogSumExp(Function):
    """y = log sum exp(x) over axes, shifted by the max so it never overflows;
    dy/dx = exp(x - y) = softmax(x)"""
    @staticmethod
    def forward(ctx, x, axes=(), keepdims=False):
        with np.errstate(invalid="ignore", divide="ignore"):
            m = x.max(axis=axes, keepdims=True) if x.size else np.zeros(keepdims_shape(x.shape, axes), x.dtype)
            m = np.where(np.isfinite(m), m, 0)  # rows of all -inf give -inf, not NaN
            y = m + np.log(np.exp(x - m).sum(axis=axes, keepdims=True))
        out = y if keepdims else y.reshape([n for i, n in enumerate(x.shape) if i not in axes])
        ctx.save_for_backward(x, out)
        ctx.shape, ctx.axes = x.shape, axes
        return out

    @staticmethod
    def backward(ctx, g):
        x, y = ctx.saved_tensors
        y = y.reshape(keepdims_shape(ctx.shape, ctx.axes))
        return g.reshape(keepdims_shape(ctx.shape, ctx.axes)) * (x - y).exp()


class Norm(Function):
    """y = sqrt(sum x^2) over axes (the L2 norm);  dy/dx = x / y, taken as 0 where y = 0.

    Computed as m * sqrt(sum (x/m)^2) with m = max |x|, so the sum of squares neither underflows
    (x = 1e-30 in float32 has the norm 1e-30, not 0 with a gradient of 1e8) nor overflows."""
    @staticmethod
    def forward(ctx, x, axes=(), keepdims=False):
        if x.size:
            m = np.abs(x).max(axis=axes, keepdims=True)
            m = np.where((m > 0) & np.isfinite(m), m, x.dtype.type(1))
        else:
            m = np.ones(keepdims_shape(x.shape, axes), dtype=x.dtype)
        r = x / m
        y = np.sqrt((r * r).sum(axis=axes, keepdims=True)) * m
        out = y if keepdims else y.reshape([n for i, n in enumerate(x.shape) if i not in axes])
        ctx.save_for_backward(x, out)
        ctx.shape, ctx.axes = x.shape, axes
        return out

    @staticmethod
    def backward(ctx, g):
        x, y = ctx.saved_tensors
        y = y.reshape(keepdims_shape(ctx.shape, ctx.axes))
        # where y = 0, x = 0 too, so x / tiny = 0: the subgradient 0, never NaN
        return g.reshape(keepdims_shape(ctx.shape, ctx.axes)) * x / y.clamp(lo=np.finfo(x.dtype).tiny)
