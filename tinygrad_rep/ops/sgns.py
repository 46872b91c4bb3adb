"""Word2vec's ops: the skip-gram negative-sampling loss on the fused C kernel, and the
original's per-pair SGD step over a batch of index pairs (also one kernel).

SGNSLoss / sgns_loss     loss of gathered rows; backward returns the kernel's gradients
SGNSPairs / sgns_pairs   loss of index pairs read from the two matrices; lr > 0 trains in place
sparse_sgd_              W[rows] -= lr * grad through the scatter-add kernel
F.skipgram_negative_sampling_loss is the same loss composed from elementary ops.
"""
import math

import numpy as np

from .. import backend
from ..autograd import Function, is_grad_enabled
from ..tensor import Tensor
from .nn import Gather, ScatterAdd


class SGNSLoss(Function):
    """Skip-gram negative-sampling loss on gathered rows, fused into one C kernel.

    center (B, d), targets (B, T, d): targets[:, 0] are the true contexts, targets[:, 1:] the
    negatives. With s = center . targets and e = sigmoid(s) - [t == 0]:
        loss = R(-log sigmoid(s[:, 0]) - sum_{t>=1} log sigmoid(-s[:, t]))   R = mean or sum over B
        d center = sum_t e[:, t] targets[:, t] * g',   d targets[:, t] = e[:, t] center * g'
    with g' = g / B for the mean. The forward kernel computes the loss and both gradients in
    one pass; backward only scales them. When a graph of the gradient is wanted
    (create_graph=True) backward is recomputed from Tensor ops, so it is differentiable too.
    """

    @staticmethod
    def forward(ctx, center, targets, reduction="mean"):
        losses, gc, gt = backend.current().sgns_forward_backward(center, targets)
        B = center.shape[0]
        ctx.scale = (1.0 / B if B else math.nan) if reduction == "mean" else 1.0
        ctx.grads = (gc, gt)
        ctx.save_for_backward(center, targets)
        return np.asarray(losses.sum() * ctx.scale, dtype=center.dtype)

    @staticmethod
    def backward(ctx, g):  # differentiable, for create_graph: the kernel's values on a composite's graph
        center, targets = ctx.saved_tensors
        gc, gt = _kernel_valued(sgns_gradients(center, targets), ctx.grads)
        s = g * ctx.scale
        return gc * s, gt * s

    @staticmethod
    def array_backward(ctx, g):  # the kernel's gradients from forward, scaled
        k = g * g.dtype.type(ctx.scale)
        gc, gt = ctx.grads
        if k != 1:
            gc, gt = gc * k, gt * k
        return gc, gt


def _kernel_valued(composite, kernel):
    """Tensors whose values are the fused kernel's gradients, bit for bit, and whose graph is the
    composite's (c - c.detach() is exactly 0 and has c's derivative): so create_graph and the
    first-order array path agree exactly, and second derivatives are the composite's."""
    return tuple(Tensor(k) + (c - c.detach()) for c, k in zip(composite, kernel))


def sgns_gradients(center, targets):
    """d loss_b / d center_b and d loss_b / d targets_b of the SGNS loss, in Tensor ops."""
    B, T, d = targets.shape
    s = (targets @ center.reshape(B, d, 1)).reshape(B, T)
    onehot = np.zeros((1, T), dtype=center.dtype)
    onehot[0, 0] = 1
    e = s.sigmoid() - onehot
    gc = (e.reshape(B, 1, T) @ targets).reshape(B, d)
    gt = e.reshape(B, T, 1) * center.reshape(B, 1, d)
    return gc, gt


def sgns_loss(center, targets, reduction="mean"):
    """The SGNS loss of center (B, d) against targets (B, 1 + K, d) (true context first, then
    K negatives), on the fused kernel; reduction "mean" (as F's losses) or "sum"."""
    if reduction not in ("mean", "sum"):
        raise ValueError(f"sgns_loss: reduction must be 'mean' or 'sum', got {reduction!r}")
    if not isinstance(center, Tensor) or not isinstance(targets, Tensor):
        raise TypeError("sgns_loss: center and targets must be Tensors")
    if center.ndim != 2 or targets.ndim != 3 or targets.shape[0] != center.shape[0] \
            or targets.shape[2] != center.shape[1] or targets.shape[1] < 1:
        raise ValueError(f"sgns_loss: expected center (B, d) and targets (B, T >= 1, d), got "
                         f"{center.shape} and {targets.shape}")
    return SGNSLoss.apply(center, targets, reduction=reduction)


class SGNSPairs(Function):
    """The SGNS loss of index pairs read straight from the two matrices, optionally training them.

    apply(W_in, W_out, inputs=(n,) ids, targets=(n, 1 + K) ids, lr=0.0, reduction="sum"):
    pair i scores W_in[inputs[i]] against W_out[targets[i, 0]] (true context) and
    W_out[targets[i, 1:]] (negatives), as sgns_loss does on gathered rows.
      lr == 0: a pure op. Forward gathers the rows (C gather kernel) and runs the fused
               forward/backward kernel; backward scatter-adds the row gradients into the
               matrices' gradients (repeated rows add up), so tr.gradcheck applies.
      lr > 0:  the training step of the original word2vec, fused into one C kernel
               (`sgns_sgd`): pair by pair, the loss is computed and its SGD update applied in
               place before the next pair is read. The returned loss is the sum (or mean) of
               each pair's loss before its update. There is no gradient to take: the update
               has been made, so the inputs must not require grad (use no_grad).
    """

    @staticmethod
    def forward(ctx, W_in, W_out, inputs=None, targets=None, lr=0.0, reduction="sum"):
        be = backend.current()
        n = len(inputs)
        scale = (1.0 / n if n else math.nan) if reduction == "mean" else 1.0
        if lr:
            if any(ctx.needs_input_grad) and is_grad_enabled():
                raise ValueError("SGNSPairs: lr > 0 updates W_in and W_out in place and has no "
                                 "gradient; call it under tr.no_grad() or on tensors without grad")
            losses = be.sgns_sgd(W_in, W_out, inputs, targets, lr)
            ctx.mark_dirty(W_in, W_out)  # trained in place: graphs that saved the old rows must not use them
            return np.asarray(losses.sum() * scale, dtype=W_in.dtype)
        center = be.embedding_gather(W_in, inputs)
        rows = be.embedding_gather(W_out, targets.reshape(-1)).reshape(targets.shape + (W_out.shape[1],))
        losses, gc, gt = be.sgns_forward_backward(center, rows)
        # private copies of the index arrays: the caller may reuse its arrays before backward
        ctx.inputs_idx, ctx.targets_idx, ctx.scale = np.array(inputs), np.array(targets), scale
        ctx.grads = (gc, gt)
        return np.asarray(losses.sum() * scale, dtype=W_in.dtype)

    @staticmethod
    def backward(ctx, g):  # the same gradient from differentiable ops, for create_graph
        W_in, W_out = ctx.inputs
        inp, tgt = ctx.inputs_idx, ctx.targets_idx
        d = W_in.shape[1]
        gc, gt = _kernel_valued(sgns_gradients(Gather.apply(W_in, indices=inp),
                                               Gather.apply(W_out, indices=tgt)), ctx.grads)
        s = g * ctx.scale
        return (ScatterAdd.apply(gc * s, indices=inp, rows=W_in.shape[0]),
                ScatterAdd.apply((gt * s).reshape(-1, d), indices=tgt.reshape(-1), rows=W_out.shape[0]))

    @staticmethod
    def array_backward(ctx, g):  # the kernel's row gradients from forward, scatter-added
        W_in, W_out = ctx.inputs
        inp, tgt = ctx.inputs_idx, ctx.targets_idx
        k = g * g.dtype.type(ctx.scale)
        gc, gt = ctx.grads
        be = backend.current()
        d_in = be.embedding_scatter_add(gc * k, inp, np.zeros(W_in.shape, W_in.dtype))
        d_out = be.embedding_scatter_add((gt * k).reshape(-1, W_out.shape[1]), tgt.reshape(-1),
                                         np.zeros(W_out.shape, W_out.dtype))
        return d_in, d_out


def sgns_pairs(W_in, W_out, inputs, targets, lr=0.0, reduction="sum"):
    """SGNS loss of index pairs on the matrices W_in (V_in, d) and W_out (V_out, d), Tensors;
    with lr > 0, also the original's per-pair SGD step, in place (see SGNSPairs)."""
    if reduction not in ("mean", "sum"):
        raise ValueError(f"sgns_pairs: reduction must be 'mean' or 'sum', got {reduction!r}")
    inputs = np.ascontiguousarray(inputs, dtype=np.int64)
    targets = np.ascontiguousarray(targets, dtype=np.int64)
    if inputs.ndim != 1 or targets.ndim != 2 or len(targets) != len(inputs) or targets.shape[1] < 1:
        raise ValueError(f"sgns_pairs: expected inputs (n,) and targets (n, T >= 1), got "
                         f"{inputs.shape} and {targets.shape}")
    return SGNSPairs.apply(W_in, W_out, inputs=inputs, targets=targets, lr=float(lr), reduction=reduction)


def sparse_sgd_(weight, indices, grad, lr):
    """weight[indices[i]] -= lr * grad[i] for every i, in place; repeated rows add up.

    Only the listed rows are read or written (the backend's scatter-add kernel); grad is
    scaled in place. weight: (V, d) ndarray; indices: int64 (n,); grad: (n, d).
    """
    grad *= -lr
    backend.current().embedding_scatter_add(grad, indices, weight)
