"""Shape and indexing ops: they move or select elements, so each backward moves the gradient
back (reshape <-> reshape, transpose <-> inverse transpose, index <-> scatter-add)."""
import numpy as np

from ..autograd import Function


class Reshape(Function):
    """y = x viewed with a new shape;  the gradient is reshaped back"""
    @staticmethod
    def forward(ctx, x, shape=()):
        ctx.shape = x.shape
        return x.reshape(shape)

    @staticmethod
    def backward(ctx, g):
        return g.reshape(ctx.shape)


class Transpose(Function):
    """y = x with axes permuted;  the gradient is permuted back by the inverse permutation"""
    @staticmethod
    def forward(ctx, x, axes=()):
        ctx.inverse = tuple(np.argsort(axes))
        return x.transpose(axes)

    @staticmethod
    def backward(ctx, g):
        return g.transpose(*ctx.inverse)


class Expand(Function):
    """y = x broadcast to `shape` (a real array, not a read-only view);  the gradient is summed back"""
    @staticmethod
    def forward(ctx, x, shape=()):
        return np.array(np.broadcast_to(x, shape))

    @staticmethod
    def backward(ctx, g):
        return g  # the Function base sums it back to x's shape


class Cast(Function):
    """y = x converted to another float dtype;  the gradient is converted back"""
    @staticmethod
    def forward(ctx, x, dtype=None):
        ctx.dtype = x.dtype
        return x.astype(dtype)

    @staticmethod
    def backward(ctx, g):
        return g.astype(ctx.dtype)


class Getitem(Function):
    """y = x[index] (basic slices, integer arrays, masks);  dy/dx scatters the gradient back,
    adding where an index repeats"""
    @staticmethod
    def forward(ctx, x, index=None):
        ctx.index, ctx.shape = _private_index(index), x.shape
        return np.array(x[index])

    @staticmethod
    def backward(ctx, g):
        return IndexAdd.apply(g, index=ctx.index, shape=ctx.shape)


def _private_index(index):
    """The index with its arrays copied: the caller may reuse its array before backward."""
    if isinstance(index, tuple):
        return tuple(np.array(i) if isinstance(i, np.ndarray) else i for i in index)
    return np.array(index) if isinstance(index, np.ndarray) else index


class IndexAdd(Function):
    """y = zeros(shape) with g added at index (the transpose of Getitem);  dy/dg = g[index]"""
    @staticmethod
    def forward(ctx, g, index=None, shape=()):
        ctx.index = index
        out = np.zeros(shape, dtype=g.dtype)
        np.add.at(out, index, g)
        return out

    @staticmethod
    def backward(ctx, h):
        return h[ctx.index]


class Concat(Function):
    """y = the inputs joined along `axis`;  each input's gradient is its slice of g"""
    @staticmethod
    def forward(ctx, *xs, axis=0):
        ctx.axis = axis
        ctx.bounds = np.cumsum([0] + [x.shape[axis] for x in xs])
        return np.concatenate(xs, axis=axis)

    @staticmethod
    def backward(ctx, g):
        lead = (slice(None),) * ctx.axis
        return tuple(g[lead + (slice(int(a), int(b)),)]
                     for a, b in zip(ctx.bounds[:-1], ctx.bounds[1:]))
