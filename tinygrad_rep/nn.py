"""Neural-network building blocks: Module (parameter registry, state dicts, hooks), layers, activations.

    import tinygrad_rep as tr
    model = tr.nn.Sequential(tr.nn.Linear(64, 32, rng=0), tr.nn.ReLU(), tr.nn.Linear(32, 10, rng=1))
    logits = model(tr.Tensor(x))
    for name, p in model.named_parameters(): ...       # "0.weight", "0.bias", "2.weight", ...

A Module registers what is assigned to its attributes, in assignment order: leaf Tensors that
require grad (Parameter, or any Tensor created with requires_grad=True) become parameters, Modules
become sub-modules, arrays given to `register_buffer` become buffers (saved, not trained). Nothing
is found by introspection: what `__setattr__` saw is what the module has.

Everything here is built from Tensor operations and `functional`; no backend is touched.
"""
import collections
import math

import numpy as np

from . import functional as F
from . import ops
from .tensor import Tensor, matmul

__all__ = ["Parameter", "Module", "Linear", "Embedding", "Sequential", "ModuleList",
           "ReLU", "Sigmoid", "Tanh", "Softmax", "LogSoftmax", "Identity", "Flatten", "Dropout",
           "kaiming_uniform", "xavier_uniform", "functional_call", "StateDictError"]


class Parameter(Tensor):
    """A Tensor that is a trainable parameter: requires_grad=True unless told otherwise.

    Assigning a Parameter to a Module attribute registers it even if its requires_grad was later
    switched off (a frozen parameter is still part of the state dict). Its `.name` is set to the
    dotted path inside the module tree ("encoder.0.weight") by `named_parameters()` and
    `parameters()`, so graph visualisations can label leaves.
    """

    __slots__ = ()

    def __init__(self, data, requires_grad=True, dtype=None):
        super().__init__(data, requires_grad=requires_grad, dtype=dtype)

    def __repr__(self):
        return "Parameter" + super().__repr__()[len("Tensor"):]


class StateDictError(KeyError):
    """A missing or unexpected key in `load_state_dict` (a KeyError whose text reads plainly)."""

    def __str__(self):
        # KeyError's own __str__ quotes its message with repr(); show the sentence as written
        return str(self.args[0]) if self.args else ""


class _HookHandle:
    """Returned by register_forward_hook / register_forward_pre_hook; remove() unregisters."""

    _next_id = 0

    def __init__(self, hooks):
        self._hooks = hooks
        self.id = _HookHandle._next_id
        _HookHandle._next_id += 1

    def remove(self):
        self._hooks.pop(self.id, None)


def _rng(rng, seed=None):
    """A numpy Generator from rng (Generator, int seed or None) or seed; not both."""
    if rng is not None and seed is not None:
        raise ValueError("give either rng or seed, not both")
    if seed is not None:
        rng = seed
    if isinstance(rng, np.random.Generator):
        return rng
    return np.random.default_rng(rng)


# ---------------------------------------------------------------------------------------- init

def kaiming_uniform(shape, fan_in, rng=None, dtype=np.float32):
    """U(-b, b) with b = sqrt(6 / fan_in): He init for ReLU layers (gain sqrt(2)), Var = 2 / fan_in."""
    if fan_in <= 0:
        raise ValueError(f"kaiming_uniform: fan_in must be positive, got {fan_in}")
    bound = math.sqrt(6.0 / fan_in)
    return _rng(rng).uniform(-bound, bound, size=shape).astype(dtype)


def xavier_uniform(shape, fan_in, fan_out, rng=None, dtype=np.float32):
    """U(-b, b) with b = sqrt(6 / (fan_in + fan_out)): Glorot init, Var = 2 / (fan_in + fan_out)."""
    if fan_in + fan_out <= 0:
        raise ValueError(f"xavier_uniform: fan_in + fan_out must be positive, got {fan_in + fan_out}")
    bound = math.sqrt(6.0 / (fan_in + fan_out))
    return _rng(rng).uniform(-bound, bound, size=shape).astype(dtype)


# -------------------------------------------------------------------------------------- Module

class Module:
    """Base class of every layer and model.

    Subclasses call `super().__init__()` first, assign parameters and sub-modules as attributes,
    and define `forward(*inputs)`. Calling the module runs pre-hooks, forward, then forward hooks.
    `training` is True after construction; `train()` / `eval()` set it on the whole tree.
    """

    def __init__(self):
        # object.__setattr__: our own __setattr__ needs these dicts to exist already
        object.__setattr__(self, "_parameters", collections.OrderedDict())
        object.__setattr__(self, "_modules", collections.OrderedDict())
        object.__setattr__(self, "_buffers", collections.OrderedDict())
        object.__setattr__(self, "_forward_hooks", collections.OrderedDict())
        object.__setattr__(self, "_forward_pre_hooks", collections.OrderedDict())
        object.__setattr__(self, "training", True)

    # ---- registration ----
    def __setattr__(self, name, value):
        if "_parameters" not in self.__dict__:
            raise AttributeError(f"{type(self).__name__}: call super().__init__() before assigning "
                                 f"attribute {name!r}")
        params, modules, buffers = self._parameters, self._modules, self._buffers
        if isinstance(value, Tensor) and (isinstance(value, Parameter) or value.requires_grad):
            if not value.is_leaf:
                raise ValueError(f"{type(self).__name__}.{name}: a parameter must be a leaf tensor, "
                                 f"not the result of an operation (use .detach() or a Parameter)")
            modules.pop(name, None)
            buffers.pop(name, None)
            params[name] = value
            if value.name is None:
                value.name = name  # the full dotted name is set by named_parameters()
        elif isinstance(value, Module):
            params.pop(name, None)
            buffers.pop(name, None)
            modules[name] = value
        elif name in buffers:
            if value is not None and not isinstance(value, np.ndarray):
                raise TypeError(f"{type(self).__name__}.{name} is a buffer: assign a numpy array or None, "
                                f"got {type(value).__name__}")
            buffers[name] = value
        else:
            params.pop(name, None)
            modules.pop(name, None)
        object.__setattr__(self, name, value)

    def __delattr__(self, name):
        for registry in (self._parameters, self._modules, self._buffers):
            registry.pop(name, None)
        object.__delattr__(self, name)

    def register_buffer(self, name, array):
        """Keep a non-trainable array (running statistics, fixed masks) in the state dict."""
        if array is not None and not isinstance(array, np.ndarray):
            raise TypeError(f"register_buffer({name!r}): expected a numpy array or None, got {type(array).__name__}")
        self._parameters.pop(name, None)
        self._modules.pop(name, None)
        self._buffers[name] = array
        object.__setattr__(self, name, array)

    def add_module(self, name, module):
        """Register `module` under `name` (same as setattr; for names that are not identifiers)."""
        if not isinstance(module, Module):
            raise TypeError(f"add_module({name!r}): expected a Module, got {type(module).__name__}")
        setattr(self, name, module)

    # ---- traversal ----
    def named_modules(self, prefix=""):
        """(dotted name, module) for this module and every descendant, each module once."""
        seen = set()
        stack = [(prefix, self)]
        while stack:  # iterative pre-order: deep trees need no recursion
            name, mod = stack.pop()
            if id(mod) in seen:
                continue
            seen.add(id(mod))
            yield name, mod
            children = [(f"{name}.{k}" if name else k, m) for k, m in mod._modules.items() if m is not None]
            stack.extend(reversed(children))

    def modules(self):
        for _, m in self.named_modules():
            yield m

    def children(self):
        """Direct sub-modules, in registration order."""
        for m in self._modules.values():
            yield m

    def named_parameters(self, prefix="", recurse=True):
        """(dotted name, parameter) pairs, each tensor once: a module's own parameters first,
        then each sub-module's, each in assignment order (the order PyTorch uses).

        Sets each parameter's `.name` to its dotted name (the first one, if it is shared).
        """
        seen = set()
        mods = self.named_modules(prefix) if recurse else [(prefix, self)]
        for mod_name, mod in mods:
            for k, p in mod._parameters.items():
                if id(p) in seen:
                    continue
                seen.add(id(p))
                full = f"{mod_name}.{k}" if mod_name else k
                p.name = full
                yield full, p

    def parameters(self, recurse=True):
        """Every parameter once, in registration order (names them, see named_parameters)."""
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(self, prefix=""):
        for mod_name, mod in self.named_modules(prefix):
            for k, b in mod._buffers.items():
                if b is not None:
                    yield (f"{mod_name}.{k}" if mod_name else k), b

    def num_parameters(self, trainable_only=False):
        """Number of scalars in all (or only requires-grad) parameters."""
        return sum(p.size for p in self.parameters() if p.requires_grad or not trainable_only)

    # ---- training helpers ----
    def zero_grad(self):
        """Forget every parameter's gradient (sets .grad to None)."""
        for p in self.parameters():
            p.grad = None

    def train(self, mode=True):
        """Set `training` on this module and all descendants; returns self."""
        for m in self.modules():
            object.__setattr__(m, "training", bool(mode))
        return self

    def eval(self):
        """Same as train(False): Dropout and other train-only behaviour switch off."""
        return self.train(False)

    def requires_grad_(self, flag=True):
        """Freeze (False) or unfreeze (True) every parameter; returns self."""
        for p in self.parameters():
            p.requires_grad_(flag)
        return self

    # ---- state ----
    def state_dict(self):
        """Ordered dict: dotted name -> numpy array copy; each module's parameters, then its
        buffers, then its sub-modules' entries (PyTorch's order). A shared parameter appears once."""
        return collections.OrderedDict((k, v.copy()) for k, v in self._state_arrays().items())

    def _state_arrays(self):
        """name -> the live array of every parameter and buffer, in state_dict order."""
        out, seen = collections.OrderedDict(), set()
        for mod_name, mod in self.named_modules():
            for k, p in mod._parameters.items():
                if id(p) not in seen:
                    seen.add(id(p))
                    out[f"{mod_name}.{k}" if mod_name else k] = p.data
            for k, b in mod._buffers.items():
                if b is not None:
                    out[f"{mod_name}.{k}" if mod_name else k] = b
        return out

    def load_state_dict(self, state_dict, strict=True):
        """Copy arrays from `state_dict` into the parameters and buffers, in place.

        Values may be numpy arrays or Tensors and are cast to each parameter's dtype. A missing
        key, or (with strict=True) an unexpected key, raises StateDictError (a KeyError) naming
        it; a shape mismatch raises ValueError naming the key and both shapes. Everything is
        checked before anything is written, so a failed load leaves the module unchanged.
        With strict=False missing and unexpected keys are skipped and returned as
        (missing, unexpected) lists.
        """
        targets = self._state_arrays()
        missing = [k for k in targets if k not in state_dict]
        unexpected = [k for k in state_dict if k not in targets]
        if strict and missing:
            listed = ", ".join(f"{k!r} (model shape {tuple(targets[k].shape)})" for k in missing)
            raise StateDictError(f"load_state_dict: missing key{'s' if len(missing) > 1 else ''} {listed}")
        if strict and unexpected:
            listed = ", ".join(f"{k!r} (shape {tuple(np.shape(_array(state_dict[k])))})" for k in unexpected)
            raise StateDictError(f"load_state_dict: unexpected key{'s' if len(unexpected) > 1 else ''} "
                                 f"{listed} not in the model")
        staged = []
        for k, dst in targets.items():
            if k not in state_dict:
                continue
            src = _array(state_dict[k])
            if src.shape != dst.shape:
                raise ValueError(f"load_state_dict: shape mismatch for {k!r}: state dict has shape "
                                 f"{tuple(src.shape)}, model has shape {tuple(dst.shape)}")
            try:
                staged.append((dst, src.astype(dst.dtype, copy=False)))
            except (TypeError, ValueError) as e:
                raise ValueError(f"load_state_dict: cannot cast {k!r} from {src.dtype} to {dst.dtype}: {e}") from None
        for dst, src in staged:
            # in place, so optimizers and anyone else holding the arrays see the loaded values
            np.copyto(dst, src)
        return missing, unexpected

    # ---- calling ----
    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} must define forward()")

    def __call__(self, *args, **kwargs):
        if not self._forward_pre_hooks and not self._forward_hooks:
            return self.forward(*args, **kwargs)  # the common case: no hook bookkeeping at all
        for hook in list(self._forward_pre_hooks.values()):  # a copy: a hook may remove itself
            replaced = hook(self, args)
            if replaced is not None:
                args = replaced if isinstance(replaced, tuple) else (replaced,)
        out = self.forward(*args, **kwargs)
        for hook in list(self._forward_hooks.values()):
            replaced = hook(self, args, out)
            if replaced is not None:
                out = replaced
        return out

    def register_forward_hook(self, fn):
        """Call fn(module, inputs, output) after forward; a non-None return replaces the output.

        `inputs` is the tuple of positional arguments. Returns a handle with remove().
        """
        handle = _HookHandle(self._forward_hooks)
        self._forward_hooks[handle.id] = fn
        return handle

    def register_forward_pre_hook(self, fn):
        """Call fn(module, inputs) before forward; a non-None return replaces the inputs
        (a tuple, or a single value that becomes the only argument). Returns a handle."""
        handle = _HookHandle(self._forward_pre_hooks)
        self._forward_pre_hooks[handle.id] = fn
        return handle

    # ---- printing ----
    def extra_repr(self):
        """Text shown inside this module's parentheses by repr (override in layers)."""
        return ""

    def __repr__(self):
        head = f"{type(self).__name__}({self.extra_repr()}"
        if not self._modules:
            return head + ")"
        lines = [head]
        for k, m in self._modules.items():
            child = repr(m).replace("\n", "\n  ")
            lines.append(f"  ({k}): {child}")
        return "\n".join(lines) + "\n)"


def _array(value):
    if isinstance(value, Tensor):
        return value.data
    return np.asarray(value)


def functional_call(module, params, *args, **kwargs):
    """Run module(*args, **kwargs) with some parameters replaced by the Tensors in `params`.

    params maps dotted names (as in named_parameters) to Tensors. The module's own parameters
    are put back afterwards, also on error. This is how a module is gradchecked::

        names = [n for n, _ in model.named_parameters()]
        tr.gradcheck(lambda x, *ps: functional_call(model, dict(zip(names, ps)), x).sum(),
                     [x] + [p for _, p in model.named_parameters()])
    """
    owners = {}
    for mod_name, mod in module.named_modules():
        for k in mod._parameters:
            owners.setdefault(f"{mod_name}.{k}" if mod_name else k, (mod, k))
    swapped = []
    try:
        for name, t in params.items():
            if name not in owners:
                raise KeyError(f"functional_call: the module has no parameter {name!r}")
            mod, k = owners[name]
            swapped.append((mod, k, mod.__dict__[k]))
            # bypass __setattr__: the registry keeps the real parameter, only forward sees `t`
            object.__setattr__(mod, k, t)
        return module(*args, **kwargs)
    finally:
        for mod, k, old in reversed(swapped):
            object.__setattr__(mod, k, old)


# -------------------------------------------------------------------------------------- layers

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
        shape = x.data.shape
        if not shape or shape[-1] != self.in_features:
            raise ValueError(f"Linear(in_features={self.in_features}): input of shape {x.shape} "
                             f"must have {self.in_features} as its last axis")
        y = matmul(x, self.weight)
        if self.bias is None:
            return y
        if y.data.dtype is self.bias.data.dtype:
            return ops.Add.apply(y, self.bias)  # shapes (..., out) + (out,) always broadcast
        return y + self.bias

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
        return len(self._modules)

    def __iter__(self):
        return iter(list(self._modules.values()))

    def __getitem__(self, index):
        mods = list(self._modules.values())
        if isinstance(index, slice):
            return type(self)(*mods[index])
        return mods[index]

    def append(self, module):
        """Add a module at the end; returns self."""
        self.add_module(str(len(self)), module)
        return self

    def forward(self, x):
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
        self.add_module(str(len(self._modules)), module)
        return self

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(list(self._modules.values()))

    def __getitem__(self, index):
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
