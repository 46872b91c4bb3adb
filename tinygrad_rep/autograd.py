"""The graph: Function (one node per op application), grad mode, and the backward walk.

A Function subclass writes `forward(ctx, *arrays, **params)` on raw numpy arrays and
`backward(ctx, grad)` right below it, in Tensor operations. Because backward is written with
Tensor ops, gradients are themselves differentiable: `backward(create_graph=True)` simply runs
backward with graph recording on. With the default create_graph=False it runs under no_grad,
so first-order backward records nothing.

Done once here, never inside an op:
- undoing broadcasting: a gradient whose shape differs from its input's is summed back;
- dtype: a gradient is cast to its input's dtype;
- accumulation: gradients from several uses of a tensor are summed before they flow on;
- the walk itself, which is iterative (a 100,000-op chain needs no recursion).
"""
import time
import weakref

import numpy as np

_grad_enabled = True
# Observers (trace, profiler, anomaly detection) see every forward and backward step.
# The list is empty unless one of them is active, so the fast path costs one truth test.
# Protocol: before_forward(ctx); after_forward(ctx, out, seconds); optional
# before_backward(node, grad_out); after_backward(node, grad_out, input_grads, seconds, accumulated).
# While observed, apply keeps its keyword arguments on ctx._params (for replaying the op).
_observers = []
_Tensor = None  # set by tensor.py (the class is defined there; this avoids an import cycle)


class _GradMode:
    """Context manager and decorator that sets whether operations record the graph."""

    def __init__(self, enabled):
        self.enabled = enabled

    def __enter__(self):
        global _grad_enabled
        self._prev, _grad_enabled = _grad_enabled, self.enabled
        return self

    def __exit__(self, *exc):
        global _grad_enabled
        _grad_enabled = self._prev
        return False

    def __call__(self, fn):
        def wrapper(*args, **kwargs):
            with _GradMode(self.enabled):
                return fn(*args, **kwargs)
        wrapper.__name__, wrapper.__doc__ = fn.__name__, fn.__doc__
        return wrapper


def no_grad(fn=None):
    """`with tr.no_grad():`, `@tr.no_grad()` or `@tr.no_grad`: run without recording the graph."""
    return _GradMode(False) if fn is None else _GradMode(False)(fn)


def enable_grad():
    """`with tr.enable_grad():` record the graph even inside no_grad."""
    return _GradMode(True)


def set_grad_enabled(enabled):
    return _GradMode(bool(enabled))


def is_grad_enabled():
    return _grad_enabled


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
    unchanged (axes, flags, index arrays). `ctx` is the Function instance: store anything
    non-Tensor on it as attributes. Arrays given to `save_for_backward` come back from
    `saved_tensors` as the matching input or output Tensor (so higher-order gradients flow
    through them), or as constants if they are neither.
    """

    def __init__(self, inputs):
        self.inputs = inputs
        self.needs_input_grad = tuple([t.requires_grad for t in inputs])
        self._saved = ()
        self._out = None

    def save_for_backward(self, *arrays):
        self._saved = arrays

    @property
    def saved_tensors(self):
        out = self._out() if self._out is not None else None
        result = []
        for a in self._saved:
            for t in self.inputs:
                if t.data is a:
                    result.append(t)
                    break
            else:
                if out is not None and out.data is a:
                    result.append(out)
                elif isinstance(a, np.ndarray):
                    result.append(_Tensor._wrap(a))
                else:
                    result.append(a)
        return tuple(result)

    @property
    def name(self):
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
        for t in inputs:
            if not isinstance(t, _Tensor):
                raise TypeError(f"{cls.__name__}.apply: positional arguments must be Tensors, "
                                f"got {type(t).__name__} (pass non-Tensor options as keywords)")
        ctx = cls(inputs)
        if _observers:
            return _apply_observed(cls, ctx, inputs, params)
        out = _Tensor._wrap(cls.forward(ctx, *[t.data for t in inputs], **params))
        if _grad_enabled and True in ctx.needs_input_grad:
            out.requires_grad = True
            out._ctx = ctx
            ctx._out = weakref.ref(out)
        return out


def _apply_observed(cls, ctx, inputs, params):
    ctx._params = params  # kept so instruments can replay the op (compare_gradients)
    for obs in _observers:
        obs.before_forward(ctx)
    t0 = time.perf_counter()
    data = cls.forward(ctx, *[t.data for t in inputs], **params)
    seconds = time.perf_counter() - t0
    out = _Tensor._wrap(data)
    if _grad_enabled and any(ctx.needs_input_grad):
        out.requires_grad = True
        out._ctx = ctx
        ctx._out = weakref.ref(out)
    for obs in list(_observers):
        obs.after_forward(ctx, out, seconds)
    return out


def plain_backward():
    """True while a backward may compute its gradients on arrays directly (and wrap them) instead
    of applying ops: the gradient is first-order (no graph to record) and no instrument observes
    (a trace or profile sees every op a backward applies). Hot backwards (matmul, relu, sigmoid,
    mul, mse) use it to skip per-op overhead; the arithmetic is the same either way."""
    return not _grad_enabled and not _observers


def unbroadcast(grad, shape):
    """Sum a gradient of a broadcast result back to an input's `shape` (in Tensor ops)."""
    lead = grad.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(
        lead + i for i, n in enumerate(shape) if n == 1 and grad.shape[lead + i] != 1)
    if axes:
        grad = grad.sum(axis=axes, keepdims=True)
    return grad.reshape(shape) if grad.shape != tuple(shape) else grad


def topological_order(roots):
    """Every tensor that requires grad and is reachable from `roots`, inputs before users.

    Iterative depth-first post-order: no recursion, so graph depth is unlimited.
    """
    order, visited = [], set()
    stack = [(r, False) for r in roots if r.requires_grad]
    while stack:
        node, expanded = stack.pop()
        if expanded:
            order.append(node)
            continue
        if id(node) in visited:
            continue
        visited.add(id(node))
        stack.append((node, True))
        if node._ctx is not None:
            for parent in node._ctx.inputs:
                if parent.requires_grad and id(parent) not in visited:
                    stack.append((parent, False))
    return order


def _as_grad_tensor(g, like, who):
    if isinstance(g, _Tensor):
        return g
    if isinstance(g, (np.ndarray, np.generic, float, int)):
        return _Tensor._wrap(np.asarray(g, dtype=like.dtype))
    raise TypeError(f"{who}.backward returned {type(g).__name__}; expected a Tensor, an ndarray or None")


def run_backward(roots, root_grads, create_graph=False, wanted=None):
    """Propagate root_grads from roots through the graph.

    With wanted=None, leaf gradients are accumulated into `.grad` (Tensor.backward).
    Otherwise `wanted` is a list of tensors whose gradients are returned instead, and no
    `.grad` is touched (tr.grad).
    """
    order = topological_order(roots)
    grads = {}
    for r, g in zip(roots, root_grads):
        if r.requires_grad:
            grads[id(r)] = grads[id(r)] + g if id(r) in grads else g
    wanted_ids = None if wanted is None else {id(t): i for i, t in enumerate(wanted)}
    found = [None] * (0 if wanted is None else len(wanted))
    with _GradMode(create_graph):
        for node in reversed(order):
            g = grads.pop(id(node), None)
            if g is None:
                continue
            if node._hooks:
                for hook in node._hooks:
                    replaced = hook(g)
                    if replaced is not None:
                        g = _as_grad_tensor(replaced, node, "hook")
            if wanted_ids is not None and id(node) in wanted_ids:
                found[wanted_ids[id(node)]] = g
            ctx = node._ctx
            if ctx is None or (wanted is None and node._retains_grad):
                if wanted is None:
                    node.grad = g if node.grad is None else node.grad + g
                    if not create_graph:
                        node.grad = node.grad.detach()
                if ctx is None:
                    continue
            if _observers:
                for obs in list(_observers):
                    before = getattr(obs, "before_backward", None)
                    if before is not None:
                        before(node, g)
                t0 = time.perf_counter()
            in_grads = ctx.backward(ctx, g)
            if not isinstance(in_grads, tuple):
                in_grads = (in_grads,)
            if len(in_grads) != len(ctx.inputs):
                raise ValueError(f"{ctx.name}.backward returned {len(in_grads)} gradients "
                                 f"for {len(ctx.inputs)} inputs")
            plain = not create_graph and not _observers
            fixed = []
            for inp, ig, need in zip(ctx.inputs, in_grads, ctx.needs_input_grad):
                if ig is None or not need:
                    fixed.append(None)
                    continue
                if type(ig) is not _Tensor:
                    ig = _as_grad_tensor(ig, inp, ctx.name)
                a, want = ig.data, inp.data
                if a.shape != want.shape:
                    try:
                        ig = (_unbroadcast_array(a, want.shape) if plain
                              else unbroadcast(ig, want.shape))
                    except ValueError:
                        raise ValueError(f"{ctx.name}.backward returned a gradient of shape "
                                         f"{ig.shape} for an input of shape {inp.shape}") from None
                if ig.data.dtype != want.dtype:
                    ig = _Tensor._wrap(ig.data.astype(want.dtype)) if plain else ig.astype(want.dtype)
                fixed.append(ig)
            if _observers:
                seconds = time.perf_counter() - t0
                accumulated = [ig is not None and id(inp) in grads for inp, ig in zip(ctx.inputs, fixed)]
                for obs in list(_observers):
                    obs.after_backward(node, g, fixed, seconds, accumulated)
            for inp, ig in zip(ctx.inputs, fixed):
                if ig is not None:
                    prev = grads.get(id(inp))
                    if prev is None:
                        grads[id(inp)] = ig
                    else:
                        grads[id(inp)] = _Tensor._wrap(prev.data + ig.data) if plain else prev + ig
    return found


def _unbroadcast_array(a, shape):
    """unbroadcast on arrays (the same sums, without ops): for first-order, unobserved backward."""
    shape = tuple(shape)
    lead = a.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(
        lead + i for i, n in enumerate(shape) if n == 1 and a.shape[lead + i] != 1)
    if axes:
        a = np.asarray(a.sum(axis=axes, keepdims=True))
    return _Tensor._wrap(a.reshape(shape) if a.shape != shape else a)


def grad(outputs, inputs, grad_outputs=None, create_graph=False, allow_unused=False):
    """Gradients of `outputs` with respect to `inputs`, returned as a tuple (no .grad touched).

    outputs: a Tensor or a sequence of Tensors; grad_outputs: matching gradients (required for
    non-scalar outputs). With create_graph=True the returned gradients are part of the graph,
    so they can be differentiated again (Hessian-vector products, gradgradcheck).
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
        return _Tensor._wrap(np.ones(output.shape, dtype=output.dtype))
    g = g if isinstance(g, _Tensor) else _Tensor(np.asarray(g), dtype=output.dtype)
    if g.shape != output.shape:
        raise ValueError(f"backward: grad has shape {g.shape} but the output has shape {output.shape}")
    return g
