"""Module: the base class of layers and models (parameter registry, names, state dicts, hooks).

    class Block(tr.nn.Module):
        def __init__(self):
            super().__init__()
            self.scale = tr.nn.Parameter(np.ones(3))     # registered as a parameter
            self.inner = tr.nn.Linear(3, 2, rng=0)        # registered as a sub-module
        def forward(self, x):
            return self.inner(x * self.scale)

A Module registers what is assigned to its attributes, in assignment order: leaf Tensors that
require grad (Parameter, or any Tensor created with requires_grad=True) become parameters, Modules
become sub-modules, arrays given to `register_buffer` become buffers (saved, not trained). Nothing
is found by introspection: what `__setattr__` saw is what the module has.

Parameters are named as they are registered: a Linear's weight is "weight", and once that Linear
is the first layer of a Sequential it is "0.weight" (and "encoder.0.weight" once that Sequential
is a model's encoder), so drawings and traces label them without any call from the user.
"""
import collections

import numpy as np

from ..tensor import Tensor

__all__ = ["Parameter", "Module", "functional_call", "StateDictError"]


class Parameter(Tensor):
    """A Tensor that is a trainable parameter: requires_grad=True unless told otherwise.

    Assigning a Parameter to a Module attribute registers it even if its requires_grad was later
    switched off (a frozen parameter is still part of the state dict). Its `.name` becomes its
    dotted path inside the module tree ("encoder.0.weight") as the tree is built, so drawings and
    traces label it; a name the user set is kept.
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
                value.name = name
        elif isinstance(value, Module):
            params.pop(name, None)
            buffers.pop(name, None)
            modules[name] = value
            _prefix_names(value, name)
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
        """This module and every descendant, each once (as named_modules, without the names)."""
        for _, m in self.named_modules():
            yield m

    def children(self):
        """Direct sub-modules, in registration order."""
        for m in self._modules.values():
            yield m

    def named_parameters(self, prefix="", recurse=True):
        """(dotted name, parameter) pairs, each tensor once: a module's own parameters first,
        then each sub-module's, each in assignment order (the order PyTorch uses).

        A parameter without a name, or named by the end of its path only (assigned after its
        module joined a bigger tree: "extra.weight" in "encoder.extra.weight"), gets its full
        dotted name here.
        """
        for full, _, p in self._walk_parameters(prefix, recurse):
            if p.name is None or (p.name != full and full.endswith("." + p.name)):
                p.name = full
            yield full, p

    def _walk_parameters(self, prefix="", recurse=True):
        """(dotted name, attribute name, parameter), each tensor once (the first path)."""
        seen = set()
        mods = self.named_modules(prefix) if recurse else [(prefix, self)]
        for mod_name, mod in mods:
            for k, p in mod._parameters.items():
                if id(p) in seen:
                    continue
                seen.add(id(p))
                yield (f"{mod_name}.{k}" if mod_name else k), k, p

    def parameters(self, recurse=True):
        """Every parameter once, in registration order (see named_parameters)."""
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(self, prefix=""):
        """(dotted name, array) for every buffer in the tree that is not None."""
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
        # every module of the tree once, without the names named_modules builds
        stack, seen = [self], set()
        while stack:
            mod = stack.pop()
            if id(mod) in seen:
                continue
            seen.add(id(mod))
            for p in mod._parameters.values():
                p.grad = None
            for m in mod._modules.values():
                if m is not None:
                    stack.append(m)

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
        return collections.OrderedDict((k, a) for k, (a, _) in self._state_entries().items())

    def _state_entries(self):
        """name -> (live array, its parameter Tensor or None for a buffer), in state_dict order."""
        out, seen = collections.OrderedDict(), set()
        for mod_name, mod in self.named_modules():
            for k, p in mod._parameters.items():
                if id(p) not in seen:
                    seen.add(id(p))
                    out[f"{mod_name}.{k}" if mod_name else k] = (p._data, p)
            for k, b in mod._buffers.items():
                if b is not None:
                    out[f"{mod_name}.{k}" if mod_name else k] = (b, None)
        return out

    def load_state_dict(self, state_dict, strict=True):
        """Copy arrays from `state_dict` into the parameters and buffers, in place.

        Values may be numpy arrays or Tensors and are cast to each parameter's dtype. A missing
        key, or (with strict=True) an unexpected key, raises StateDictError (a KeyError) naming
        it; a shape mismatch raises ValueError naming the key and both shapes. Everything is
        checked before anything is written, so a failed load leaves the module unchanged.
        With strict=False missing and unexpected keys are skipped and returned as
        (missing, unexpected) lists. Each parameter written gets a new version, so a graph that
        saved its old values refuses to backward (RuntimeError) instead of mixing old and new.
        """
        entries = self._state_entries()
        targets = collections.OrderedDict((k, a) for k, (a, _) in entries.items())
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
                staged.append((dst, src.astype(dst.dtype, copy=False), entries[k][1]))
            except (TypeError, ValueError) as e:
                raise ValueError(f"load_state_dict: cannot cast {k!r} from {src.dtype} to {dst.dtype}: {e}") from None
        for dst, src, param in staged:
            # in place, so optimizers and anyone else holding the arrays see the loaded values
            np.copyto(dst, src)
            if param is not None:
                param._bump_version()  # a graph that saved the old values must not backward
        return missing, unexpected

    # ---- calling ----
    def forward(self, *args, **kwargs):
        """The computation of the module on its inputs (Tensors); every subclass defines it.
        Call the module itself (`module(x)`), which also runs its hooks."""
        raise NotImplementedError(f"{type(self).__name__} must define forward()")

    def __call__(self, *args, **kwargs):
        """Run the forward pre-hooks, forward(*args, **kwargs), then the forward hooks."""
        if not self._forward_pre_hooks and not self._forward_hooks:
            # the common case: no hook bookkeeping at all, and for one input a plain call (which
            # Python runs in the same frame loop, unlike a call with *args/**kwargs)
            if len(args) == 1 and not kwargs:
                return self.forward(args[0])
            return self.forward(*args, **kwargs)
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


def _prefix_names(child, key):
    """`child` was just registered under `key`: parameters it named itself ("weight", "0.weight")
    become "key.weight", "key.0.weight". A name set by the user or by another tree is kept."""
    for full, _, p in child._walk_parameters():
        if p.name is None or p.name == full:
            p.name = f"{key}.{full}"


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
