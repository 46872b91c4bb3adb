"""2-D convolution for images, as im2col + the C matmul: `conv2d` and the `Conv2d` layer.

    conv = tr.nn.Conv2d(1, 16, kernel_size=3, stride=2, padding=1, rng=0)
    y = conv(x)            # x: (N, H, W, C) channels-last Tensor -> (N, OH, OW, 16)

Channels-last (NHWC) throughout: im2col turns x into one row per output pixel, (N*OH*OW,
KH*KW*C); one matmul with the weight (KH*KW*C, O) gives (N*OH*OW, O), which is already NHWC
after a reshape. Gradients come from the ops (ops/conv.py: Im2Col's adjoint is Col2Im) and
MatMul, so they are checked like every other op (tests/test_contrastive.py gradchecks them).
"""
import numpy as np

from ..ops.conv import Im2Col, output_size
from ..tensor import Tensor
from .init import _rng, kaiming_uniform
from .module import Module, Parameter

__all__ = ["conv2d", "Conv2d", "output_size"]


def _pair(v, name):
    if isinstance(v, (tuple, list)):
        if len(v) != 2:
            raise ValueError(f"conv2d: {name} must be an int or a pair, got {v!r}")
        return int(v[0]), int(v[1])
    return int(v), int(v)


def conv2d(x, weight, bias=None, kernel_size=3, stride=1, padding=0):
    """y[b, i, j, o] = sum_{p, q, c} xpad[b, i*stride + p, j*stride + q, c] * W[(p, q, c), o] + bias[o].

    x: (N, H, W, C) Tensor; weight: (KH*KW*C, O) Tensor, rows ordered (p, q, c); bias: (O,) or
    None. Returns (N, OH, OW, O) with OH = (H + 2*padding - KH) // stride + 1 (same for W).
    """
    if not isinstance(x, Tensor):
        x = Tensor(np.asarray(x, dtype=weight.dtype))
    if x.ndim != 4:
        raise ValueError(f"conv2d: x must be (N, H, W, C), got shape {x.shape}")
    kh, kw = _pair(kernel_size, "kernel_size")
    if stride < 1 or padding < 0:
        raise ValueError(f"conv2d: stride must be >= 1 and padding >= 0, got {stride}, {padding}")
    n, h, w, c = x.shape
    if weight.shape[0] != kh * kw * c:
        raise ValueError(f"conv2d: weight has {weight.shape[0]} rows but a {kh}x{kw} kernel over "
                         f"{c} channels needs {kh * kw * c}")
    oh, ow = output_size(h, kh, stride, padding), output_size(w, kw, stride, padding)
    y = Im2Col.apply(x, kernel=(kh, kw), stride=int(stride), padding=int(padding)) @ weight
    if bias is not None:
        y = y + bias
    return y.reshape(n, oh, ow, weight.shape[1])


class Conv2d(Module):
    """A 2-D convolution layer on channels-last images (N, H, W, in_channels).

    weight: (kernel_size^2 * in_channels, out_channels), He-uniform initialised (fan-in =
    kernel_size^2 * in_channels), bias zeros. rng: Generator, int seed or None.
    """

    def __init__(self, in_channels, out_channels, kernel_size=3, stride=1, padding=0, bias=True,
                 rng=None, dtype=np.float32):
        super().__init__()
        kh, kw = _pair(kernel_size, "kernel_size")
        if min(in_channels, out_channels, kh, kw) <= 0:
            raise ValueError("Conv2d: channels and kernel size must be positive")
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.kernel_size, self.stride, self.padding = (kh, kw), int(stride), int(padding)
        fan_in = kh * kw * self.in_channels
        gen = _rng(rng)
        self.weight = Parameter(kaiming_uniform((fan_in, self.out_channels), fan_in, gen, dtype))
        self.bias = Parameter(np.zeros(self.out_channels, dtype=dtype)) if bias else None

    def forward(self, x):
        if x.ndim != 4 or x.shape[-1] != self.in_channels:
            raise ValueError(f"Conv2d(in_channels={self.in_channels}): expected (N, H, W, "
                             f"{self.in_channels}) input, got shape {x.shape}")
        return conv2d(x, self.weight, self.bias, self.kernel_size, self.stride, self.padding)

    def extra_repr(self):
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}")
