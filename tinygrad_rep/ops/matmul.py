"""Matrix product through the backend's matmul kernel (transpose flags, batched).

C = op(A) @ op(B), op = optional transpose of the last two axes. The gradients are matmuls
with other transpose flags, so backward never materialises a transposed copy:
    dA = g @ op(B)^T      (or its transpose when A was used transposed)
    dB = op(A)^T @ g      (or its transpose when B was used transposed)
"""
import numpy as np

from ..autograd import Function
from .. import backend


class MatMul(Function):
    """C = op(A) @ op(B) for operands with at least 2 dimensions (leading axes broadcast)."""
    @staticmethod
    def forward(ctx, a, b, trans_a=False, trans_b=False):
        ctx.trans_a, ctx.trans_b = trans_a, trans_b
        ctx.save_for_backward(a, b)
        return _matmul(a, b, trans_a, trans_b)

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        return _matmul_grads(ctx, a, b, g, MatMul.apply)

    @staticmethod
    def array_backward(ctx, g):  # the same products on arrays
        a, b = ctx.saved_arrays
        return _matmul_grads(ctx, a, b, g, _matmul)


def _matmul_grads(ctx, a, b, g, apply):
    """dA and dB of op(A) @ op(B) as products with other transpose flags; `apply` is MatMul.apply
    on Tensors (differentiable) or _matmul on arrays."""
    ta, tb = ctx.trans_a, ctx.trans_b
    da = db = None
    if ctx.needs_input_grad[0]:
        da = (apply(b, g, trans_a=tb, trans_b=True) if ta
              else apply(g, b, trans_b=not tb))
    if ctx.needs_input_grad[1]:
        if b.ndim == 2 and a.ndim > 2 and not ta:
            # fold the stacked rows so dB is one 2-D product, not a batch to be summed
            rows = int(np.prod(a.shape[:-1]))
            a, g = a.reshape(rows, a.shape[-1]), g.reshape(rows, g.shape[-1])
        db = (apply(g, a, trans_a=True, trans_b=ta) if tb
              else apply(a, g, trans_a=not ta))
    return da, db


def _matmul(a, b, trans_a=False, trans_b=False):
    """op(a) @ op(b) on arrays through the backend's kernel (MatMul's forward)."""
    be = backend.current()
    if a.ndim == 2 and b.ndim == 2:
        return be.matmul(a, b, trans_a=trans_a, trans_b=trans_b)
    if b.ndim == 2 and not trans_a:
        # stacked rows times one matrix: one big 2-D product, no batch loop
        # explicit row count: reshape(-1, k) is ambiguous when the array has size 0
        out = be.matmul(a.reshape(int(np.prod(a.shape[:-1])), a.shape[-1]), b, trans_b=trans_b)
        return out.reshape(a.shape[:-1] + out.shape[-1:])
    batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    nb = int(np.prod(batch))
    a3 = np.broadcast_to(a, batch + a.shape[-2:]).reshape((nb,) + a.shape[-2:])
    b3 = np.broadcast_to(b, batch + b.shape[-2:]).reshape((nb,) + b.shape[-2:])
    out = be.matmul(a3, b3, trans_a=trans_a, trans_b=trans_b)
    return out.reshape(batch + out.shape[-2:])


class SelfMaskedGram(Function):
    """NT-Xent's logits as one node: s = (z z^T) * scale, then s_ii = fill (-inf: the self-pair).

    The fill value is an input (a constant 0-d tensor), so instruments see where the -inf comes
    from (detect_anomaly treats an infinity passed in as a mask, not as a new anomaly). Forward is
    one matmul (z times z transposed, by flag) scaled in place: the same values as
    `(z @ z.T) * scale + mask`, without the transposed copy, the mask matrix and two 2N x 2N
    temporaries. Backward: with g' = g with its diagonal zeroed (a masked logit is a constant,
    so the self-pair passes no gradient), ds/dz gives dz = (g' z + g'^T z) * scale.
    """
    @staticmethod
    def forward(ctx, z, fill, scale=1.0):
        ctx.scale = scale
        ctx.save_for_backward(z)
        s = backend.current().matmul(z, z, trans_b=True)
        s *= s.dtype.type(scale)
        np.fill_diagonal(s, fill)
        return s

    @staticmethod
    def backward(ctx, g):
        z, = ctx.saved_tensors
        off_diagonal = np.ones(g.shape, dtype=g.dtype)
        np.fill_diagonal(off_diagonal, 0)
        gm = g * off_diagonal
        return (MatMul.apply(gm, z) + MatMul.apply(gm, z, trans_a=True)) * ctx.scale, None

    @staticmethod
    def array_backward(ctx, g):
        z, = ctx.saved_arrays
        gm = g.copy()  # g may be shared with other gradients
        np.fill_diagonal(gm, 0)
        dz = _matmul(gm, z)
        dz += _matmul(gm, z, trans_a=True)
        dz *= dz.dtype.type(ctx.scale)
        return dz, None
