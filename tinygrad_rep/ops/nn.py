"""Ops that run on the C kernels: ReLU, softmax, log-softmax, fused cross-entropy, embedding.

Each fused backward is itself a Function (ReLUGrad, SoftmaxGrad, ...): first-order backward
calls one kernel, and because those gradient Functions have backwards of their own, gradients
of gradients work too.
"""
import numpy as np

from ..autograd import Function
from .. import backend


class ReLU(Function):
    """y = max(x, 0);  dy/dx = 1 where x > 0, else 0"""
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return backend.current().relu_forward(x)

    @staticmethod
    def backward(ctx, g):
        x, = ctx.saved_tensors
        return ReLUGrad.apply(x, g)

    @staticmethod
    def array_backward(ctx, g):  # ReLUGrad's kernel without the op object
        return backend.current().relu_backward(ctx.saved_arrays[0], g)


class ReLUGrad(Function):
    """gx = g * (x > 0);  d/dg = (x > 0), d/dx = 0 almost everywhere"""
    @staticmethod
    def forward(ctx, x, g):
        ctx.save_for_backward(x)
        return backend.current().relu_backward(x, g)

    @staticmethod
    def backward(ctx, h):
        x, = ctx.saved_tensors
        return None, ReLUGrad.apply(x, h)


class Softmax(Function):
    """y = softmax(x) along the last axis;  dx = y * (g - sum(g * y))"""
    @staticmethod
    def forward(ctx, x):
        y = backend.current().softmax_forward(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, g):
        y, = ctx.saved_tensors
        return SoftmaxGrad.apply(y, g)


class SoftmaxGrad(Function):
    """gx = y * (g - s), s = sum(g * y);
    d/dg = y * (h - sum(h * y)),  d/dy = h * (g - s) - sum(h * y) * g"""
    @staticmethod
    def forward(ctx, y, g):
        ctx.save_for_backward(y, g)
        return backend.current().softmax_backward(y, g)

    @staticmethod
    def backward(ctx, h):
        y, g = ctx.saved_tensors
        dy = None
        if ctx.needs_input_grad[0]:
            dy = h * (g - (g * y).sum(-1, keepdims=True)) - (h * y).sum(-1, keepdims=True) * g
        return dy, SoftmaxGrad.apply(y, h) if ctx.needs_input_grad[1] else None


class LogSoftmax(Function):
    """y = x - logsumexp(x) along the last axis;  dx = g - exp(y) * sum(g)"""
    @staticmethod
    def forward(ctx, x):
        y = backend.current().log_softmax_forward(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, g):
        y, = ctx.saved_tensors
        return LogSoftmaxGrad.apply(y, g)


class LogSoftmaxGrad(Function):
    """gx = g - exp(y) * sum(g);  d/dg = h - sum(h * exp(y)),  d/dy = -h * exp(y) * sum(g)"""
    @staticmethod
    def forward(ctx, y, g):
        ctx.save_for_backward(y, g)
        return backend.current().log_softmax_backward(y, g)

    @staticmethod
    def backward(ctx, h):
        y, g = ctx.saved_tensors
        p = y.exp()
        dy = -(h * p) * g.sum(-1, keepdims=True) if ctx.needs_input_grad[0] else None
        dg = h - (h * p).sum(-1, keepdims=True) if ctx.needs_input_grad[1] else None
        return dy, dg


class CrossEntropy(Function):
    """loss = mean over rows of logsumexp(x_r) - x_r[t_r] (fused log-softmax + NLL);
    dx = (softmax(x) - onehot(t)) * g / B"""
    @staticmethod
    def forward(ctx, logits, targets=None):
        # a private (contiguous) copy: the caller may reuse its array before backward
        targets = targets.copy() if type(targets) is np.ndarray else np.array(targets)
        losses, probs, loss = backend.current().cross_entropy_forward(logits, targets)
        ctx.targets, ctx.probs = targets, probs
        ctx.save_for_backward(logits)
        return loss  # the kernel's mean of losses, bit for bit what losses.mean() gives

    @staticmethod
    def backward(ctx, g):
        logits, = ctx.saved_tensors
        return CrossEntropyGrad.apply(logits, g, probs=ctx.probs, targets=ctx.targets)

    @staticmethod
    def array_backward(ctx, g):  # CrossEntropyGrad's kernel without the op object
        return _cross_entropy_grad(ctx.probs, ctx.targets, g)


class CrossEntropyGrad(Function):
    """gx = (p - onehot(t)) * g / B with p = softmax(x);
    d/dg = sum(h * (p - onehot)) / B,  d/dx = SoftmaxGrad(p, h) * g / B"""
    @staticmethod
    def forward(ctx, logits, g, probs=None, targets=None):
        ctx.probs, ctx.targets = probs, targets
        ctx.save_for_backward(g)
        return _cross_entropy_grad(probs, targets, g)

    @staticmethod
    def backward(ctx, h):
        g, = ctx.saved_tensors
        logits = ctx.inputs[0]
        B = max(len(ctx.targets), 1)
        dx = dg = None
        if ctx.needs_input_grad[0]:
            dx = SoftmaxGrad.apply(logits.softmax(-1), h) * g / B
        if ctx.needs_input_grad[1]:
            onehot = np.zeros_like(ctx.probs)
            onehot[np.arange(len(ctx.targets)), ctx.targets] = 1
            dg = (h * ((ctx.probs - onehot) / B)).sum()
        return dx, dg


def _cross_entropy_grad(probs, targets, g):
    """(probs - onehot(targets)) * g / B through the kernel (g: the loss's 0-d gradient)."""
    B = max(len(targets), 1)
    return backend.current().cross_entropy_backward(probs, targets, np.full(len(targets), g / B, dtype=probs.dtype))


class Gather(Function):
    """y[..., :] = W[idx[...], :] (embedding lookup);  dW = scatter-add of g at idx (repeats add up)"""
    @staticmethod
    def forward(ctx, weight, indices=None):
        indices = np.array(indices)  # a private copy: the caller may reuse its array before backward
        ctx.indices, ctx.rows = indices, weight.shape[0]
        flat = backend.current().embedding_gather(weight, indices.reshape(-1))
        return flat.reshape(indices.shape + weight.shape[1:])

    @staticmethod
    def backward(ctx, g):
        return ScatterAdd.apply(g, indices=ctx.indices, rows=ctx.rows)


class ScatterAdd(Function):
    """W = zeros(rows, d) with g[i] added to row idx[i] (the transpose of Gather);  dg = Gather(h, idx)"""
    @staticmethod
    def forward(ctx, g, indices=None, rows=0):
        ctx.indices = indices
        d = g.shape[-1]
        out = np.zeros((rows, d), dtype=g.dtype)
        return backend.current().embedding_scatter_add(g.reshape(-1, d), indices.reshape(-1), out)

    @staticmethod
    def backward(ctx, h):
        return Gather.apply(h, indices=ctx.indices)


class MSELoss(Function):
    """loss = mean((x - t)^2) over all entries, fused (one op instead of sub, mul, sum, scale);
    dx = 2 * (x - t) * g / n, dt = -dx.

    Same arithmetic, in the same order, as the composite ((x - t) * (x - t)).mean(): the loss is
    sum(d * d) * (1/n) rounded at the dtype, and the gradient (d * (g * (1/n))) doubled as an
    addition, which is what the composite's two uses of d accumulate to."""
    @staticmethod
    def forward(ctx, x, t):
        ctx.save_for_backward(x, t)
        d = np.asarray(x - t)
        n = d.size
        ctx.d, ctx.scale = d, d.dtype.type(1.0 / n if n else np.nan)
        return np.asarray(np.asarray((d * d).sum(axis=tuple(range(d.ndim)))) * ctx.scale)

    @staticmethod
    def backward(ctx, g):
        need_x, need_t = ctx.needs_input_grad
        x, t = ctx.saved_tensors  # d recomputed from the inputs, so second derivatives flow through it
        half = (x - t) * (g * ctx.scale)
        dx = half + half
        return (dx if need_x else None), (-dx if need_t else None)

    @staticmethod
    def array_backward(ctx, g):
        need_x, need_t = ctx.needs_input_grad
        half = ctx.d * (g * ctx.scale)
        dx = half + half
        return (dx if need_x else None), (-dx if need_t else None)
