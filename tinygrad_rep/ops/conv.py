"""Convolution's data movement as ops: im2col (patches as rows) and its adjoint col2im.

A 2-D convolution is then one matmul on the C kernel (tinygrad_rep.nn.conv.conv2d):
    cols = Im2Col(x)            (N, H, W, C) -> (N*OH*OW, KH*KW*C), one row per output pixel
    y    = cols @ W + b         W: (KH*KW*C, O)  ->  (N*OH*OW, O)  ->  reshape (N, OH, OW, O)
Layout is channels-last (NHWC) so that neither step needs a transpose. Both ops loop over the
KH*KW kernel offsets (9 for a 3x3 kernel) with strided numpy slices (im2col: one strided view
and one copy), never over the batch.

Im2Col is linear, so its gradient is its adjoint: col2im adds every patch entry back onto the
pixel it was read from (overlapping patches add up). Col2Im's gradient is Im2Col again, so
gradients of gradients work.
"""
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..autograd import Function


def output_size(size, kernel, stride, padding):
    """Output length of a convolution along one axis: (size + 2*padding - kernel) // stride + 1."""
    return (size + 2 * padding - kernel) // stride + 1


def _geometry(shape, kernel, stride, padding):
    n, h, w, c = shape
    kh, kw = kernel
    oh, ow = output_size(h, kh, stride, padding), output_size(w, kw, stride, padding)
    if oh <= 0 or ow <= 0:
        raise ValueError(f"im2col: a {kh}x{kw} kernel with padding {padding} does not fit an image "
                         f"of {h}x{w}")
    return n, h, w, c, kh, kw, oh, ow


class Im2Col(Function):
    """cols[(b, i, j), (p, q, c)] = xpad[b, i*stride + p, j*stride + q, c] for x (N, H, W, C),
    xpad = x with `padding` zeros on each side of H and W;  dx = col2im(g) (the adjoint)"""
    @staticmethod
    def forward(ctx, x, kernel=(3, 3), stride=1, padding=0):
        n, h, w, c, kh, kw, oh, ow = _geometry(x.shape, kernel, stride, padding)
        ctx.shape, ctx.kernel, ctx.stride, ctx.padding = x.shape, (kh, kw), stride, padding
        xp = np.pad(x, ((0, 0), (padding, padding), (padding, padding), (0, 0))) if padding else x
        # every window as a strided view (no copy): (n, OH, OW, C, KH, KW) after the stride step
        windows = sliding_window_view(xp, (kh, kw), axis=(1, 2))[:, :stride * oh:stride, :stride * ow:stride]
        # one copy into the row layout (n, OH, OW, KH, KW, C)
        return np.ascontiguousarray(windows.transpose(0, 1, 2, 4, 5, 3)).reshape(n * oh * ow, kh * kw * c)

    @staticmethod
    def backward(ctx, g):
        return Col2Im.apply(g, shape=ctx.shape, kernel=ctx.kernel, stride=ctx.stride, padding=ctx.padding)


class Col2Im(Function):
    """x[b, y, x, c] = sum of the cols entries read from that pixel by Im2Col (its adjoint);
    dcols = im2col(h)"""
    @staticmethod
    def forward(ctx, cols, shape=None, kernel=(3, 3), stride=1, padding=0):
        n, h, w, c, kh, kw, oh, ow = _geometry(shape, kernel, stride, padding)
        ctx.kernel, ctx.stride, ctx.padding = (kh, kw), stride, padding
        # kernel offsets first, so that each offset's block is contiguous
        g = np.ascontiguousarray(cols.reshape(n, oh, ow, kh, kw, c).transpose(3, 4, 0, 1, 2, 5))
        xp = np.zeros((n, h + 2 * padding, w + 2 * padding, c), dtype=cols.dtype)
        for p in range(kh):  # KH*KW strided adds (9 for 3x3), never a loop over the batch
            for q in range(kw):
                xp[:, p:p + stride * oh:stride, q:q + stride * ow:stride, :] += g[p, q]
        return np.ascontiguousarray(xp[:, padding:padding + h, padding:padding + w, :]) if padding else xp

    @staticmethod
    def backward(ctx, h):
        return Im2Col.apply(h, kernel=ctx.kernel, stride=ctx.stride, padding=ctx.padding)
