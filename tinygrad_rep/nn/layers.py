"""Layers and activations: Linear, Embedding, Sequential, ModuleList, Dropout, Flatten,
Identity, ReLU, Sigmoid, Tanh, Softmax, LogSoftmax.

    layer = tr.nn.Linear(64, 32, rng=0)      # y = x @ weight + bias, weight (64, 32)
    model = tr.nn.Sequential(layer, tr.nn.ReLU(), tr.nn.Linear(32, 10, rng=1))

Each is a Module (module.py) whose forward is written with Tensor operations and `functional`.
"""
import numpy as np

from .. import functional as F
from .. import ops
from ..tensor import Tensor, matmul
from .init import _rng, kaiming_uniform, xavier_uniform
from .module import Module, Parameter

__all__ = ["Linear", "Embedding", "Sequential", "ModuleList", "ReLU", "Sigmoid", "Tanh", "Softmax",
           "LogSoftmax", "Identity", "Flatten", "Dropout"]


class Linear(Module):
    """y = x @ weight + bias, for x of shape (..., in_features).

    weight has shape (in_features, out_features) — stored input-major, so forward needs no
    transpose (PyTorch stores the transpose). bias has shape (out_features,) and starts at zero.
    init="kaiming" (default): U(-sqrt(6/in), sqrt(6/in)), He init for ReLU networks;
    init="xavier": U(-sqrt(6/(in+out)), sqrt(6/(in+out))), Glorot init for tanh/sigmoid/linear.
    rng: a numpy Generator, an int seed, or None (fresh entropy); seed= is an alias for an int.
    """

    def __init__(self, in_features, out_features, bias=True, init="kaiming", rng=None,
                 dtype=np.float32, seed=None):
        super().__init__()
        if in_features <= 0 or out_features <= 0:
            raise ValueError(f"Linear: in_features and out_features must be positive, "
                             f"got {in_features} and {out_features}")
        self.in_features, self.out_features = int(in_features), int(out_features)
        self.init = init
        gen = _rng(rng, seed)
        shape = (self.in_features, self.out_features)
        if init == "kaiming":
            w = kaiming_uniform(shape, self.in_features, gen, dtype)
        elif init == "xavier":
            w = xavier_uniform(shape, self.in_features, self.out_features, gen, dtype)
        else:
            raise ValueError(f"Linear: init must be 'kaiming' or 'xavier', got {init!r}")
        self.weight = Parameter(w)
        self.bias = Parameter(np.zeros(self.out_features, dtype=dtype)) if bias else None

    def forward(self, x):
        if not isinstance(x, Tensor):
            x = Tensor(np.asarray(x, dtype=self.weight.dtype))
        shape = x._data.shape  # the arrays' own attributes: Tensor's properties are Python calls
        if not shape or shape[-1] != self.in_features:
            raise ValueError(f"Linear(in_features={self.in_features}): input of shape {x.shape} "
                             f"must have {self.in_features} as its last axis")
        y = matmul(x, self.weight)
        bias = self.bias
        if bias is None:
            return y
        if y._data.dtype is bias._data.dtype:
            return ops.Add.apply(y, bias)  # shapes (..., out) + (out,) always broadcast
        return y + bias

    def extra_repr(self):
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class Embedding(Module):
    """A lookup table: forward(indices) = weight[indices], shape indices.shape + (dim,).

    weight has shape (num_embeddings, dim). init="normal" (default): N(0, 1), as PyTorch;
    init="uniform": U(-0.5/dim, 0.5/dim), word2vec's input vectors; init="zeros": word2vec's
    output vectors. Repeated indices accumulate their gradients.
    """

    def __init__(self, num_embeddings, dim, init="normal", rng=None, dtype=np.float32, seed=None):
        super().__init__()
        if num_embeddings <= 0 or dim <= 0:
            raise ValueError(f"Embedding: num_embeddings and dim must be positive, got {num_embeddings} and {dim}")
        self.num_embeddings, self.dim = int(num_embeddings), int(dim)
        gen = _rng(rng, seed)
        shape = (self.num_embeddings, self.dim)
        if init == "normal":
            w = gen.standard_normal(shape)
        elif init == "uniform":
            w = gen.uniform(-0.5 / self.dim, 0.5 / self.dim, size=shape)
        elif init == "zeros":
            w = np.zeros(shape)
        else:
            raise ValueError(f"Embedding: init must be 'normal', 'uniform' or 'zeros', got {init!r}")
        self.weight = Parameter(w.astype(dtype))

    def forward(self, indices):
        return F.embedding(self.weight, indices)

    def extra_repr(self):
        return f"{self.num_embeddings}, {self.dim}"


class Sequential(Module):
    """Modules applied one after another; registered as "0", "1", ... and indexed like a list
    (negative indices; a slice gives a new Sequential sharing the same modules)."""

    def __init__(self, *modules):
        super().__init__()
        for i, m in enumerate(modules):
            if not isinstance(m, Module):
                raise TypeError(f"Sequential: argument {i} is a {type(m).__name__}, not a Module")
            self.add_module(str(i), m)

    def __len__(self):
        """The number of modules."""
        return len(self._modules)

    def __iter__(self):
        """The modules, in order."""
        return iter(list(self._modules.values()))

    def __getitem__(self, index):
        """The module at `index` (negative allowed), or a Sequential of a slice of them."""
        mods = list(self._modules.values())
        if isinstance(index, slice):
            return type(self)(*mods[index])
        return mods[index]

    def append(self, module):
        """Add a module at the end; returns self."""
        self.add_module(str(len(self)), module)
        return self

    def forward(self, x):
        """Each module applied to the previous one's output."""
        for m in self._modules.values():
            x = m(x)
        return x


class ModuleList(Module):
    """A list of sub-modules registered as "0", "1", ... (no forward: the owner decides the order)."""

    def __init__(self, modules=()):
        super().__init__()
        for m in modules:
            self.append(m)

    def append(self, module):
        """Add a module at the end (named by its position); returns self."""
        self.add_module(str(len(self._modules)), module)
        return self

    def __len__(self):
        """The number of modules."""
        return len(self._modules)

    def __iter__(self):
        """The modules, in order."""
        return iter(list(self._modules.values()))

    def __getitem__(self, index):
        """The module at `index`, or a ModuleList of a slice of them."""
        mods = list(self._modules.values())
        return ModuleList(mods[index]) if isinstance(index, slice) else mods[index]


# --------------------------------------------------------------------------------- activations

class ReLU(Module):
    """max(x, 0)."""
    def forward(self, x):
        return F.relu(x)


class Sigmoid(Module):
    """1 / (1 + exp(-x))."""
    def forward(self, x):
        return F.sigmoid(x)


class Tanh(Module):
    """tanh(x)."""
    def forward(self, x):
        return x.tanh()


class Softmax(Module):
    """softmax along `axis` (default the last)."""
    def __init__(self, axis=-1):
        super().__init__()
        self.axis = axis

    def forward(self, x):
        return F.softmax(x, self.axis)

    def extra_repr(self):
        return f"axis={self.axis}"


class LogSoftmax(Module):
    """log-softmax along `axis` (default the last)."""
    def __init__(self, axis=-1):
        super().__init__()
        self.axis = axis

    def forward(self, x):
        return F.log_softmax(x, self.axis)

    def extra_repr(self):
        return f"axis={self.axis}"


class Identity(Module):
    """Returns its input unchanged."""
    def forward(self, x):
        return x


class Flatten(Module):
    """Merge axes start_axis.. into one: (B, 8, 8) -> (B, 64) with the default start_axis=1."""
    def __init__(self, start_axis=1):
        super().__init__()
        self.start_axis = start_axis

    def forward(self, x):
        return x.reshape(x.shape[:self.start_axis] + (-1,))

    def extra_repr(self):
        return f"start_axis={self.start_axis}"


class Dropout(Module):
    """In training mode, zero each element with probability p and scale the rest by 1/(1-p)
    (so the expected value is unchanged); in eval mode, the identity. Masks come from the
    module's own generator (rng / seed), so runs are reproducible."""

    def __init__(self, p=0.5, rng=None, seed=None):
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"Dropout: p must be in [0, 1], got {p}")
        self.p = float(p)
        self.rng = _rng(rng, seed)

    def forward(self, x):
        if not self.training or self.p == 0.0:
            return x
        if self.p == 1.0:
            return x * 0.0
        keep = self.rng.random(x.shape) >= self.p
        # the mask is a constant: the gradient is masked and scaled the same way
        return x * (keep * (1.0 / (1.0 - self.p))).astype(x.dtype)

    def extra_repr(self):
        return f"p={self.p}"
