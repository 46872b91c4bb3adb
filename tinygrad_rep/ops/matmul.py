"""Matrix product through the backend's matmul kernel (transpose flags, batched).

C = op(A) @ op(B), op = optional transpose of the last two axes. The gradients are matmuls
with other transpose flags, so backward never materialises a transposed copy:
    dA = g @ op(B)^T      (or its transpose when A was used transposed)
    dB = op(A)^T @ g      (or its transpose when B was used transposed)
"""
import numpy as np

from .. import autograd
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
        ta, tb = ctx.trans_a, ctx.trans_b
        if autograd.plain_backward():
            # the same products as below, on arrays: no op objects for a first-order backward
            a, b = ctx._saved
            g = g.data
            apply = _matmul
            wrap = autograd._Tensor._wrap
        else:
            a, b = ctx.saved_tensors
            apply = MatMul.apply
            wrap = None
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
        if wrap is not None:
            da = None if da is None else wrap(da)
            db = None if db is None else wrap(db)
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
