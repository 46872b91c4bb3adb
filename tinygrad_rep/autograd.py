"""The graph: Function (one node per op application), grad mode, and the backward walk.

A Function subclass writes `forward(ctx, *arrays, **params)` on raw numpy arrays and
`backward(ctx, grad)` right below it, in Tensor operations. Because backward is written with
Tensor ops, gradients are themselves differentiable: `backward(create_graph=True)` simply runs
backward with graph recording on. With the default create_graph=False it runs under no_grad,
so first-order backward records nothing.

An op may also define `array_backward(ctx, grad_array)`: the same gradient computed on arrays
(ctx.saved_arrays in, arrays out), in the spirit of PyTorch's `once_differentiable`. The engine
alone chooses: a first-order backward that no instrument observes runs `array_backward` where an
op has one (no op objects, no graph); `create_graph=True` or an active trace/profile/anomaly check
runs `backward`, so every step can be seen and differentiated again. Ops never test the mode.

Done once here, never inside an op:
- undoing broadcasting: a gradient whose shape differs from its input's is summed back;
- dtype: a gradient is cast to its input's dtype;
- accumulation: gradients from several uses of a tensor are summed before they flow on;
- saved values: linked to the input or output they came from when forward returns, with that
  tensor's version, and checked at backward (a value modified in place since is an error);
- the walk itself, which is iterative (a 100,000-op chain needs no recursion).
"""
import threading
import time
import weakref

import numpy as np


# Grad mode is per thread (as in PyTorch): a no_grad in one thread, or a backward running there,
# never switches recording off in another. Only threads with recording off are listed (setting and
# popping one key is atomic), so an empty dict means "recording everywhere": apply, which asks on
# every op, then needs no lookup at all; a dict keyed by thread id is also cheaper than a
# threading.local.
_disabled_in = {}
_thread_id = threading.get_ident
# Observers (trace, profiler, anomaly detection) see every forward and backward step.
# The list is empty unless one of them is active, so the fast path costs one truth test.
# Protocol: before_forward(ctx); after_forward(ctx, out, seconds); optional
# before_backward(node, grad_out); after_backward(node, grad_out, input_grads, seconds, accumulated).
# While observed, apply keeps its keyword arguments on ctx._params (for replaying the op).
_observers = []
_Tensor = None  # set by tensor.py (the class is defined there; this avoids an import cycle)
_wrap = None     # tensor.py's Tensor._wrap, the internal constructor (one global lookup per op)
_new = object.__new__
_add_reduce = np.add.reduce
_ndarray = np.ndarray
_weakref = weakref.ref


class _GradMode:
    """Context manager and decorator that sets whether operations record the graph (this thread)."""

    def __init__(self, enabled):
        self.enabled = enabled

    def __enter__(self):
        tid = _thread_id()
        self._prev = _disabled_in.get(tid, True)
        _set_mode(tid, self.enabled)
        return self

    def __exit__(self, *exc):
        _set_mode(_thread_id(), self._prev)
        return False

    def __call__(self, fn):
        def wrapper(*args, **kwargs):
            with _GradMode(self.enabled):
                return fn(*args, **kwargs)
        wrapper.__name__, wrapper.__doc__ = fn.__name__, fn.__doc__
        return wrapper


def no_grad(fn=None):
    """`with tr.no_grad():`, `@tr.no_grad()` or `@tr.no_grad`: run without recording the graph.

    Grad mode belongs to the calling thread; other threads keep theirs."""
    return _GradMode(False) if fn is None else _GradMode(False)(fn)


def enable_grad():
    """`with tr.enable_grad():` record the graph even inside no_grad (this thread)."""
    return _GradMode(True)


def set_grad_enabled(enabled):
    """`with tr.set_grad_enabled(flag):` record the graph or not, as flag says (this thread)."""
    return _GradMode(bool(enabled))


def is_grad_enabled():
    """Whether operations in the calling thread record the graph."""
    return _disabled_in.get(_thread_id(), True)


def _set_mode(tid, enabled):
    if enabled:
        _disabled_in.pop(tid, None)
    else:
        _disabled_in[tid] = False


# What a saved value is, resolved once when forward returns: the node's output (_OUTPUT), a
# constant (None), or input i as (tensor, its version then, i).
_OUTPUT = "output"


class Function:
    """One node of the graph: an op applied to some tensors.

    Subclass it to add an op (this is how every op of the library is written)::

        class Cube(tr.Function):
            @staticmethod
            def forward(ctx, x):            # x: numpy array
                ctx.save_for_backward(x)
                return x ** 3
            @staticmethod
            def backward(ctx, grad):        # grad: Tensor shaped like the output
                x, = ctx.saved_tensors      # Tensors again
                return grad * 3 * x * x     # one gradient per Tensor input (None = zero)

        y = Cube.apply(t)

    Positional arguments of `apply` are Tensors; keyword arguments are passed to forward
    unchanged (axes, flags, index arrays). `ctx` is the Function instance (apply makes it with
    `inputs` and `needs_input_grad` set, without calling `__init__`): store anything
    non-Tensor on it as attributes.

    Saved values: an array given to `save_for_backward` that is one of forward's own arguments
    comes back from `saved_tensors` as that input Tensor, the array forward returned comes back
    as the output Tensor (so higher-order gradients flow through them), anything else as a
    constant. The link is made by position when forward returns (each argument is a distinct
    array object, even when two inputs share memory), and each linked tensor's version is
    recorded: if it is modified in place before backward, backward raises RuntimeError.

    Optionally define `array_backward(ctx, grad)` too: the same gradient on arrays, with
    `ctx.saved_arrays`; the engine uses it for first-order, unobserved backward passes.
    """

    array_backward = None  # an op may define one; see the module docstring
    _saved = _links = _dirty = ()  # instance attributes once set; these defaults save the stores
    _out = None

    def __init__(self, inputs):
        self.inputs = inputs
        self.needs_input_grad = _needs_grad(inputs)

    def save_for_backward(self, *arrays):
        """Keep arrays (inputs, the output, or intermediates) for backward."""
        self._saved = arrays

    def mark_dirty(self, *arrays):
        """Say that forward wrote into these input arrays in place (as PyTorch's ctx.mark_dirty):
        their tensors get a new version, so graphs that saved the old values refuse to backward."""
        self._dirty = arrays

    @property
    def saved_arrays(self):
        """The saved values as forward saw them (arrays), for `array_backward`."""
        return self._saved

    @property
    def saved_tensors(self):
        """The saved values as Tensors: linked inputs and the output are the graph's own tensors."""
        if not self._links:
            return tuple(_wrap(a) if isinstance(a, np.ndarray) else a for a in self._saved)
        out = self._out() if self._out is not None else None
        result = []
        for a, link in zip(self._saved, self._links):
            if link is None or (link is _OUTPUT and out is None):
                result.append(_wrap(np.asarray(a)) if isinstance(a, (np.ndarray, np.generic)) else a)
            else:
                result.append(out if link is _OUTPUT else link[0])
        return tuple(result)

    @property
    def output(self):
        """The output Tensor of this node (alive while its backward runs), or None."""
        return self._out() if self._out is not None else None

    @property
    def name(self):
        """The op's name: its class name (e.g. "MatMul")."""
        return type(self).__name__

    @staticmethod
    def forward(ctx, *args, **kwargs):
        raise NotImplementedError("a Function subclass must define forward(ctx, *arrays)")

    @staticmethod
    def backward(ctx, grad):
        raise NotImplementedError("a Function subclass must define backward(ctx, grad)")

    @classmethod
    def apply(cls, *inputs, **params):
        """Run forward on the inputs' arrays and, when recording, link the result into the graph."""
        # The hot path of every op: no comprehension, no per-call list for one or two inputs,
        # and the node made without calling __init__ (two Python calls fewer; same attributes).
        ctx = _new(cls)
        ctx.inputs = inputs
        if len(inputs) == 2:
            x, y = inputs
            if not (isinstance(x, _Tensor) and isinstance(y, _Tensor)):
                _refuse_non_tensors(cls, inputs)
            a, b = x._data, y._data
            args = (a, b) if a is not b else (a, b.view())
            ctx.needs_input_grad = (x.requires_grad, y.requires_grad)
        elif len(inputs) == 1:
            x, = inputs
            if not isinstance(x, _Tensor):
                _refuse_non_tensors(cls, inputs)
            args = (x._data,)
            ctx.needs_input_grad = (x.requires_grad,)
        else:
            for t in inputs:
                if not isinstance(t, _Tensor):
                    _refuse_non_tensors(cls, inputs)
            args = tuple(_distinct_arrays([t._data for t in inputs]))
            ctx.needs_input_grad = _needs_grad(inputs)
        if _observers:
            return _apply_observed(cls, ctx, inputs, args, params)
        # a call with a fixed argument count runs forward in this interpreter frame loop; a
        # call with *args/**params goes through the C call path (about twice the cost)
        if params:
            raw = cls.forward(ctx, *args, **params)
        elif len(args) == 2:
            raw = cls.forward(ctx, args[0], args[1])
        elif len(args) == 1:
            raw = cls.forward(ctx, args[0])
        else:
            raw = cls.forward(ctx, *args)
        out = _wrap(raw)
        if ctx._dirty:
            _bump_dirty(ctx, args)
        if True in ctx.needs_input_grad and (not _disabled_in or _disabled_in.get(_thread_id(), True)):
            _link(ctx, out, args, raw)
        return out


def _needs_grad(inputs):
    """needs_input_grad: whether each input requires grad (spelled out for the usual arities)."""
    n = len(inputs)
    if n == 1:
        return (inputs[0].requires_grad,)
    if n == 2:
        return (inputs[0].requires_grad, inputs[1].requires_grad)
    return tuple([t.requires_grad for t in inputs])


def _refuse_non_tensors(cls, inputs):
    for t in inputs:
        if not isinstance(t, _Tensor):
            raise TypeError(f"{cls.__name__}.apply: positional arguments must be Tensors, "
                            f"got {type(t).__name__} (pass non-Tensor options as keywords)")


def _distinct_arrays(args):
    """One distinct array object per input position (a view where two inputs share one array),
    so a saved array names exactly one input. (apply does the two-input case inline.)"""
    if len(args) < 2:
        return args
    seen = set()
    for i, a in enumerate(args):
        if id(a) in seen:
            args[i] = a.view()
        seen.add(id(args[i]))
    return args


def _bump_dirty(ctx, args):
    for a in ctx._dirty:
        for t, arg in zip(ctx.inputs, args):
            if a is arg:
                t._bump_version()


def _link(ctx, out, args, raw):
    """Make `out` the node's output and resolve what forward saved: input i, the output, or a
    constant; record the linked tensors' versions for the check at backward."""
    out.requires_grad = True
    out._ctx = ctx
    ctx._out = _weakref(out)
    saved = ctx._saved
    if not saved:
        return
    links = []
    for a in saved:
        if a is raw:
            links.append(_OUTPUT)
            out._watched = True
            continue
        for i, arg in enumerate(args):
            if a is arg:
                t = ctx.inputs[i]
                if t._snapshot is not None:
                    t._settle()
                t._watched = True
                links.append((t, t._version, i))
                break
        else:
            links.append(None)
    ctx._links = links


def _apply_observed(cls, ctx, inputs, args, params):
    ctx._params = params  # kept so instruments can replay the op (compare_gradients)
    for obs in _observers:
        obs.before_forward(ctx)
    t0 = time.perf_counter()
    raw = cls.forward(ctx, *args, **params)
    seconds = time.perf_counter() - t0
    out = _wrap(raw)
    if ctx._dirty:
        _bump_dirty(ctx, args)
    if any(ctx.needs_input_grad) and _disabled_in.get(_thread_id(), True):
        _link(ctx, out, args, raw)
    for obs in list(_observers):
        obs.after_forward(ctx, out, seconds)
    return out


def _check_saved(ctx):
    """Refuse to backward through a node whose saved input or output was modified in place."""
    for link in ctx._links:
        if link is None:
            continue
        if link is _OUTPUT:
            t = ctx._out() if ctx._out is not None else None
            if t is None:
                continue
            version, what = 0, "its output"
        else:
            t, version, i = link
            if t._version == version and t._snapshot is None:
                continue
            what = f"input {i}"
        if t._snapshot is not None:
            t._settle()
        if t._version != version:
            label = f" '{t.name}'" if t.name else ""
            raise RuntimeError(
                f"{ctx.name}: {what}{label} (shape {t.shape}) was modified in place after the forward "
                f"pass (version {t._version}, saved at version {version}); the gradient needs its "
                f"value from the forward. Modify a copy, or call backward before changing it.")


def unbroadcast(grad, shape):
    """Sum a gradient of a broadcast result back to an input's `shape` (a Tensor or an ndarray;
    the same sums either way: Tensor ops record them, arrays do not)."""
    shape = tuple(shape)
    lead = grad.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(
        lead + i for i, n in enumerate(shape) if n == 1 and grad.shape[lead + i] != 1)
    if axes:
        if type(grad) is np.ndarray:  # ndarray.sum's own reduction, without its Python wrapper
            grad = _add_reduce(grad, axis=axes, keepdims=True)
        else:
            grad = grad.sum(axis=axes, keepdims=True)
        if isinstance(grad, np.generic):
            grad = np.asarray(grad)
    return grad.reshape(shape) if grad.shape != shape else grad


def topological_order(roots, follow=None):
    """The tensors reachable from `roots` (through `_ctx.inputs`) for which `follow(t)` is true,
    inputs before users. `follow` defaults to "requires grad" (what backward visits); pass
    `lambda t: True` to see constants too (drawings).

    Iterative depth-first post-order: no recursion, so graph depth is unlimited.
    """
    order, visited = [], set()
    stack = [(r, False) for r in roots if (r.requires_grad if follow is None else follow(r))]
    while stack:
        node, expanded = stack.pop()
        if expanded:
            order.append(node)
            continue
        if node in visited:
            continue
        visited.add(node)
        stack.append((node, True))
        if node._ctx is not None:
            for parent in node._ctx.inputs:
                if parent not in visited and (parent.requires_grad if follow is None else follow(parent)):
                    stack.append((parent, False))
    return order


def _as_grad_array(g, like, who):
    if isinstance(g, _Tensor):
        return g._data
    if isinstance(g, (np.ndarray, np.generic, float, int)):
        return np.asarray(g, dtype=like.dtype)
    raise TypeError(f"{who} returned {type(g).__name__}; expected a Tensor, an ndarray or None")


def run_backward(roots, root_grads, create_graph=False, wanted=None):
    """Propagate root_grads (Tensors) from roots through the graph.

    With wanted=None, leaf gradients are accumulated into `.grad` (Tensor.backward).
    Otherwise `wanted` is a list of tensors whose gradients are returned instead, and no
    `.grad` is touched (tr.grad).

    First-order and unobserved, gradients flow as arrays and ops with an `array_backward` run it;
    otherwise gradients are Tensors and every op's Tensor-level `backward` runs (recorded when
    create_graph is set). The arithmetic is the same; tests hold both paths to bit-identity.
    """
    plain = not create_graph and not _observers
    order = topological_order(roots)
    grads = {}  # keyed by the tensors themselves: Tensor hashes and compares by identity
    for r, g in zip(roots, root_grads):
        if r.requires_grad:
            g = g._data if plain else g
            grads[r] = grads[r] + g if r in grads else g
    wanted_at = None
    if wanted is not None:
        wanted_at = {}
        for i, t in enumerate(wanted):
            wanted_at.setdefault(t, []).append(i)
    found = [None] * (0 if wanted is None else len(wanted))
    # owners of memory already given to a .grad in this pass, starting with the caller's gradients
    stored = {id(g._data if g._data.base is None else g._data.base) for g in root_grads}
    wrap = _wrap
    with _GradMode(create_graph):
        for node in reversed(order):
            g = grads.pop(node, None)
            if g is None:
                continue
            if node._hooks:
                gt = wrap(g) if plain else g
                for hook in node._hooks:
                    replaced = hook(gt)
                    if replaced is not None:
                        gt = wrap(_as_grad_array(replaced, node, "a hook"))
                g = gt._data if plain else gt
            if wanted_at is not None and node in wanted_at:
                for k, i in enumerate(wanted_at[node]):
                    gt = wrap(g) if plain else g
                    found[i] = gt if k == 0 else _copy_grad(gt)
            ctx = node._ctx
            if wanted is None and (ctx is None or node._retains_grad):
                _accumulate_grad(node, g, plain, create_graph, stored)
            if ctx is None:
                continue
            if ctx._links:
                _check_saved(ctx)
            if plain and ctx.array_backward is not None:
                in_grads = ctx.array_backward(ctx, g)
            else:
                gt = wrap(g) if plain else g
                if _observers:
                    for obs in list(_observers):
                        before = getattr(obs, "before_backward", None)
                        if before is not None:
                            before(node, gt)
                    t0 = time.perf_counter()
                in_grads = ctx.backward(ctx, gt)
            if not isinstance(in_grads, tuple):
                in_grads = (in_grads,)
            if len(in_grads) != len(ctx.inputs):
                raise ValueError(f"{ctx.name}.backward returned {len(in_grads)} gradients "
                                 f"for {len(ctx.inputs)} inputs")
            fixed = []
            for inp, ig, need in zip(ctx.inputs, in_grads, ctx.needs_input_grad):
                if ig is None or not need:
                    fixed.append(None)
                elif plain and type(ig) is _ndarray and ig.shape == (d := inp._data).shape \
                        and (ig.dtype is d.dtype or ig.dtype == d.dtype):
                    fixed.append(ig)  # the common case: nothing to sum back or cast
                else:
                    fixed.append(_fix_grad(ig, inp, ctx, plain))
            if _observers:
                seconds = time.perf_counter() - t0
                accumulated = [ig is not None and inp in grads for inp, ig in zip(ctx.inputs, fixed)]
                # the same tensor used twice by this op: its second gradient is an accumulation too
                seen = set()
                for k, (inp, ig) in enumerate(zip(ctx.inputs, fixed)):
                    if ig is not None:
                        accumulated[k] = accumulated[k] or inp in seen
                        seen.add(inp)
                for obs in list(_observers):
                    obs.after_backward(node, gt, fixed, seconds, accumulated)
            for inp, ig in zip(ctx.inputs, fixed):
                if ig is not None:
                    prev = grads.get(inp)
                    grads[inp] = ig if prev is None else prev + ig
    return found


def _fix_grad(ig, inp, ctx, plain):
    """One input's gradient, summed back over broadcast axes and cast to the input's dtype:
    an ndarray on the plain path, a Tensor otherwise."""
    if plain:
        a = ig._data if isinstance(ig, _Tensor) else ig
        if type(a) is not np.ndarray:
            a = _as_grad_array(a, inp, f"{ctx.name}.backward")
    else:
        a = ig if isinstance(ig, _Tensor) else _wrap(_as_grad_array(ig, inp, f"{ctx.name}.backward"))
    want = inp._data
    if a.shape != want.shape:
        try:
            a = unbroadcast(a, want.shape)
        except ValueError:
            raise ValueError(f"{ctx.name}.backward returned a gradient of shape "
                             f"{a.shape} for an input of shape {inp.shape}") from None
    if a.dtype != want.dtype:
        a = a.astype(want.dtype)
    return a


def _copy_grad(g):
    return _wrap(g._data.copy()) if not g.requires_grad else g * 1


def _accumulate_grad(node, g, plain, create_graph, stored):
    """Add g into node.grad. A .grad never shares memory with another .grad, the tensor's own
    data or the caller's gradient: `stored` holds the ids of the memory owners (an array, or the
    base of a view) already given out in this pass; the engine hands the same gradient to both
    inputs of an Add, and slices of one gradient to the inputs of a concat."""
    if node.grad is not None:
        prev = node.grad
        node.grad = prev + (_wrap(g) if plain else g)
        if not create_graph:
            node.grad = node.grad.detach()
    else:
        gt = _wrap(g) if plain else (g if create_graph else g.detach())
        a = gt._data
        owner = a if a.base is None else a.base
        data = node._data
        if id(owner) in stored or owner is data or owner is data.base:
            gt = _wrap(a.copy()) if not gt.requires_grad else gt * 1
        node.grad = gt
    a = node.grad._data
    stored.add(id(a if a.base is None else a.base))


def grad(outputs, inputs, grad_outputs=None, create_graph=False, allow_unused=False):
    """Gradients of `outputs` with respect to `inputs`, returned as a tuple (no .grad touched).

    outputs: a Tensor or a sequence of Tensors; grad_outputs: matching gradients (required for
    non-scalar outputs). With create_graph=True the returned gradients are part of the graph,
    so they can be differentiated again (Hessian-vector products, gradgradcheck). A tensor listed
    twice in `inputs` gets its gradient twice (separate arrays).
    """
    outputs = list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]
    single = not isinstance(inputs, (list, tuple))
    inputs = [inputs] if single else list(inputs)
    if grad_outputs is None:
        grad_outputs = [None] * len(outputs)
    elif not isinstance(grad_outputs, (list, tuple)):
        grad_outputs = [grad_outputs]
    if len(grad_outputs) != len(outputs):
        raise ValueError(f"grad: {len(outputs)} outputs but {len(grad_outputs)} grad_outputs")
    for i, t in enumerate(inputs):
        if not isinstance(t, _Tensor) or not t.requires_grad:
            raise ValueError(f"grad: input {i} is not a Tensor that requires grad")
    root_grads = [_root_grad(o, g) for o, g in zip(outputs, grad_outputs)]
    found = run_backward(outputs, root_grads, create_graph=create_graph, wanted=inputs)
    for i, g in enumerate(found):
        if g is None and not allow_unused:
            raise ValueError(f"grad: input {i} (shape {inputs[i].shape}) was not used to compute "
                             f"the outputs; pass allow_unused=True to get None for it")
    return tuple(found)


def _root_grad(output, g):
    if not isinstance(output, _Tensor):
        raise TypeError(f"backward: expected a Tensor output, got {type(output).__name__}")
    if not output.requires_grad:
        raise ValueError("backward: the output does not require grad (no input requires grad, "
                         "or it was computed under no_grad)")
    if g is None:
        if output.size != 1:
            raise ValueError(f"backward: a gradient is needed for a non-scalar output of shape "
                             f"{output.shape}; pass grad= with that shape")
        return _wrap(np.ones(output.shape, dtype=output.dtype))
    g = g if isinstance(g, _Tensor) else _Tensor(np.asarray(g), dtype=output.dtype)
    if g.shape != output.shape:
        raise ValueError(f"backward: grad has shape {g.shape} but the output has shape {output.shape}")
    return g
