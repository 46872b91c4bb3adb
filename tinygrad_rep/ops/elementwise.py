"""Element-wise ops. Broadcasting is undone by the Function base, so each backward returns
the gradient at the broadcast shape and never sums it itself."""
import numpy as np

from ..autograd import Function


class Add(Function):
    """z = x + y;  dz/dx = 1, dz/dy = 1"""
    complex_step = True  # forward is analytic and runs on complex input

    @staticmethod
    def forward(ctx, x, y):
        return x + y

    @staticmethod
    def backward(ctx, g):
        return g, g

    @staticmethod
    def array_backward(ctx, g):
        return g, g


class Sub(Function):
    """z = x - y;  dz/dx = 1, dz/dy = -1"""
    complex_step = True  # forward is analytic and runs on complex input

    @staticmethod
    def forward(ctx, x, y):
        return x - y

    @staticmethod
    def backward(ctx, g):
        return g, -g

    @staticmethod
    def array_backward(ctx, g):
        return g, (-g if ctx.needs_input_grad[1] else None)


class Mul(Function):
    """z = x * y;  dz/dx = y, dz/dy = x"""
    complex_step = True  # forward is analytic and runs on complex input

    @staticmethod
    def forward(ctx, x, y):
        ctx.save_for_backward(x, y)
        return x * y

    @staticmethod
    def backward(ctx, g):
        x, y = ctx.saved_tensors
        return (g * y if ctx.needs_input_grad[0] else None,
                g * x if ctx.needs_input_grad[1] else None)

    @staticmethod
    def array_backward(ctx, g):
        x, y = ctx.saved_arrays
        return (g * y if ctx.needs_input_grad[0] else None,
                g * x if ctx.needs_input_grad[1] else None)


class Div(Function):
    """z = x / y;  dz/dx = 1/y, dz/dy = -x/y^2, computed as -(g * (x/y)) / y: finite wherever
    the true value is (y * y alone underflows to 0 for |y| < 1e-19 in float32)"""
    complex_step = True  # forward is analytic and runs on complex input

    @staticmethod
    def forward(ctx, x, y):
        ctx.save_for_backward(x, y)
        return x / y

    @staticmethod
    def backward(ctx, g):
        x, y = ctx.saved_tensors
        return (g / y if ctx.needs_input_grad[0] else None,
                -(g * (x / y)) / y if ctx.needs_input_grad[1] else None)


class Neg(Function):
    """z = -x;  dz/dx = -1"""
    complex_step = True  # forward is analytic and runs on complex input

    @staticmethod
    def forward(ctx, x):
        return -x

    @staticmethod
    def backward(ctx, g):
        return -g

    @staticmethod
    def array_backward(ctx, g):
        return -g


class Pow(Function):
    """z = x ** p for a constant p;  dz/dx = p * x^(p-1)"""
    @staticmethod
    def forward(ctx, x, p):
        ctx.save_for_backward(x)
        ctx.p = p
        return np.power(x, x.dtype.type(p))

    @staticmethod
    def backward(ctx, g):
        x, = ctx.saved_tensors
        p = ctx.p
        if p == 0:
            return None
        return g * p if p == 1 else g * p * x ** (p - 1)


class Exp(Function):
    """y = exp(x);  dy/dx = y"""
    complex_step = True  # forward is analytic and runs on complex input

    @staticmethod
    def forward(ctx, x):
        y = np.exp(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, g):
        y, = ctx.saved_tensors
        return g * y


class Log(Function):
    """y = log(x);  dy/dx = 1/x"""
    complex_step = True  # forward is analytic and runs on complex input

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.log(x)

    @staticmethod
    def backward(ctx, g):
        x, = ctx.saved_tensors
        return g / x


class Sqrt(Function):
    """y = sqrt(x);  dy/dx = 1 / (2 y)"""
    complex_step = True  # forward is analytic and runs on complex input

    @staticmethod
    def forward(ctx, x):
        with np.errstate(invalid="ignore"):
            y = np.sqrt(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, g):
        y, = ctx.saved_tensors
        return g * 0.5 / y


class Sigmoid(Function):
    """y = 1 / (1 + exp(-x)), with e = exp(-|x|) as 1 / (1 + e) for x >= 0 and e / (1 + e) for
    x < 0: never overflows, and exact in both tails (sigmoid(-20) is 2.06e-9 in float32, not the
    0 that (tanh(x/2) + 1) / 2 rounds to);  dy/dx = y (1 - y)"""
    @staticmethod
    def forward(ctx, x):
        e = np.asarray(np.abs(x))  # 0-d inputs give a numpy scalar; out= needs an array
        np.negative(e, out=e)
        np.exp(e, out=e)
        y = np.where(x >= 0, x.dtype.type(1), e)
        e += x.dtype.type(1)
        y /= e
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, g):
        y, = ctx.saved_tensors
        return g * y * (1 - y)

    @staticmethod
    def array_backward(ctx, g):
        y, = ctx.saved_arrays
        return (g * y) * (y.dtype.type(1) - y)


class LogSigmoid(Function):
    """y = log sigmoid(x) = -log(1 + exp(-x)), stable for any x;  dy/dx = sigmoid(-x)"""
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return -np.logaddexp(x.dtype.type(0), -x)

    @staticmethod
    def backward(ctx, g):
        x, = ctx.saved_tensors
        return g * (-x).sigmoid()


class Tanh(Function):
    """y = tanh(x);  dy/dx = 1 - y^2"""
    complex_step = True  # forward is analytic and runs on complex input

    @staticmethod
    def forward(ctx, x):
        y = np.tanh(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, g):
        y, = ctx.saved_tensors
        return g * (1 - y * y)


class Abs(Function):
    """y = |x|;  dy/dx = sign(x) (0 at 0)"""
    @staticmethod
    def forward(ctx, x):
        ctx.sign = np.sign(x)
        return np.abs(x)

    @staticmethod
    def backward(ctx, g):
        return g * ctx.sign


class Clamp(Function):
    """y = min(max(x, lo), hi);  dy/dx = 1 strictly inside [lo, hi], else 0"""
    @staticmethod
    def forward(ctx, x, lo=None, hi=None):
        inside = np.ones(x.shape, dtype=x.dtype)
        if lo is not None:
            inside *= x > lo
        if hi is not None:
            inside *= x < hi
        ctx.inside = inside
        return np.clip(x, lo, hi).astype(x.dtype, copy=False)

    @staticmethod
    def backward(ctx, g):
        return g * ctx.inside
