"""Backward trace: what backprop did at each node, in the order it visited them.

    with tr.trace() as t:
        loss.backward()
    print(t)                 # one row per node: op, shapes, L2 norms of the gradients, time
    t.to_json("trace.json")

    with tr.trace(keep_values=True) as t:    # keep the arrays themselves, not only their norms
        loss.backward()
    print(t.details())       # per node: its value, the gradient arriving at it, the local
                             # derivative (elementwise ops), the gradient sent to each input

What each step holds, for a node y = op(x_0, x_1, ...) and the scalar L being differentiated:
- the gradient arriving at the node: dL/dy, after the node's hooks;
- the gradient sent to input k: dL/dy times the local derivative dy/dx_k (the vector-Jacobian
  product the op's backward computes), summed back over broadcast axes to x_k's shape;
- the local derivative dy/dx_k itself, for elementwise ops (then it is an array of y's shape and
  "sent = arriving * local", summed back where x_k was broadcast);
- accumulated: the gradient sent to x_k was added to one already pending for x_k, because x_k is
  used more than once (by two ops, or twice by this one, as in h * h).

Only backward steps are recorded (ops that backward functions apply internally are part of
their node's step and its time).
"""
import time
import weakref

import numpy as np

from .. import autograd
from .. import ops
from ._common import Observer, dumps, fmt, format_array, label_of, norm, shape_str, table, write_text

# What the fields of an entry hold (also written at the top of to_json's output).
COLUMNS = {
    "step": "position in the walk (0 = the output, visited first)",
    "op": "the op that made the node",
    "name": "the node's .name (None when unnamed)",
    "grad_norm": "L2 norm of the gradient arriving at the node: dL/d(node output), after its hooks",
    "input_grad_norms": "per input, L2 norm of the gradient sent to it: dL/d(output) times the "
                        "local derivative d(output)/d(input), summed over broadcast axes (None: no gradient)",
    "accumulated": "per input, True when the gradient sent was added to one already pending for "
                   "that input (the input is used more than once, possibly twice by this op)",
    "seconds": "time of the op's backward step",
    "value": "(keep_values) the node's output array",
    "grad": "(keep_values) the gradient arriving at the node, an array of the output's shape",
    "input_grads": "(keep_values) per input, the gradient sent to it, an array of the input's shape",
    "local_grads": "(keep_values) per input, the local derivative d(output)/d(input) as an array "
                   "of the output's shape, for elementwise ops (None otherwise)",
}

# Ops whose output element i depends only on element i of each (broadcast) input, so the
# local derivative is an array, not a matrix. A user's Function says so with `elementwise = True`.
_ELEMENTWISE = {ops.Add, ops.Sub, ops.Mul, ops.Div, ops.Neg, ops.Pow, ops.Exp, ops.Log, ops.Sqrt,
                ops.Sigmoid, ops.LogSigmoid, ops.Tanh, ops.Abs, ops.Clamp, ops.ReLU}


def is_elementwise(ctx):
    """Whether the op of this node acts element by element (its Jacobian is diagonal)."""
    flag = getattr(type(ctx), "elementwise", None)
    return bool(flag) if flag is not None else type(ctx) in _ELEMENTWISE


def local_derivatives(node):
    """For an elementwise node y = op(x_0, ...): [dy/dx_k as an array of y's shape, or None where
    x_k needs no gradient]. It is the op's own backward applied to a gradient of ones. None for
    other ops (their local derivative is a Jacobian matrix, not an array)."""
    ctx = node._ctx
    if ctx is None or not is_elementwise(ctx):
        return None
    ones = np.ones(node.shape, dtype=node.dtype)
    if ctx.array_backward is not None:
        res = ctx.array_backward(ctx, ones)  # arrays in, arrays out: no op runs, nothing observed
    else:
        # the Tensor-level backward applies ops: run it unrecorded and unobserved, so that no
        # instrument mistakes it for a step of the user's computation
        observers = autograd._observers[:]
        autograd._observers.clear()
        try:
            with autograd.no_grad():
                res = ctx.backward(ctx, autograd._Tensor._wrap(ones))
        finally:
            autograd._observers[:] = observers
    res = res if isinstance(res, tuple) else (res,)
    out = []
    for g, need in zip(res, ctx.needs_input_grad):
        if g is None or not need:
            out.append(None)
            continue
        a = np.asarray(g._data if isinstance(g, autograd._Tensor) else g, dtype=node.dtype)
        out.append(np.array(np.broadcast_to(a, node.shape)))
    return out


def _copy(a):
    if a is None:
        return None
    return np.array(a._data if isinstance(a, autograd._Tensor) else a, copy=True)


class TraceEntry:
    """One backward step; see COLUMNS for what each field holds.

    step, op, name, node_id (id() of the node's output tensor, as used by viz.to_dot),
    output_shape, dtype, inputs (one dict per input: label, id, shape, requires_grad, leaf),
    grad_norm, input_grad_norms, accumulated, seconds; with keep_values also value, grad,
    input_grads, local_grads (else None).
    """

    __slots__ = ("step", "op", "name", "node_id", "_node", "output_shape", "dtype", "inputs",
                 "grad_norm", "input_grad_norms", "accumulated", "seconds",
                 "value", "grad", "input_grads", "local_grads")

    def __init__(self, step, node, grad_out, input_grads, seconds, accumulated, keep_values=False):
        ctx = node._ctx
        self.step, self.op, self.name, self.node_id = step, ctx.name, node.name, id(node)
        self._node = weakref.ref(node)
        self.output_shape, self.dtype = tuple(node.shape), str(node.dtype)
        self.inputs = [{"label": label_of(t), "id": id(t), "shape": tuple(t.shape),
                        "requires_grad": bool(t.requires_grad), "leaf": t._ctx is None}
                       for t in ctx.inputs]
        self.grad_norm = norm(grad_out)
        self.input_grad_norms = [norm(g) for g in input_grads]
        self.accumulated = [bool(a) for a in accumulated]
        self.seconds = seconds
        self.value = self.grad = self.input_grads = self.local_grads = None
        if keep_values:
            self.value = _copy(node._data)
            self.grad = _copy(grad_out)
            self.input_grads = [_copy(g) for g in input_grads]
            self.local_grads = local_derivatives(node)

    @property
    def node(self):
        """The output tensor of this node, if it is still alive (else None)."""
        return self._node()

    @property
    def label(self):
        """"h = Mul" for a node named h, else the op's name."""
        return f"{self.name} = {self.op}" if self.name else self.op

    def to_dict(self):
        """The entries as a JSON-ready dict."""
        d = {"step": self.step, "op": self.op, "name": self.name, "node_id": self.node_id,
             "output_shape": list(self.output_shape), "dtype": self.dtype,
             "inputs": [dict(i, shape=list(i["shape"])) for i in self.inputs],
             "grad_norm": self.grad_norm, "input_grad_norms": self.input_grad_norms,
             "accumulated": self.accumulated, "seconds": self.seconds}
        if self.grad is not None:
            d.update(value=self.value, grad=self.grad, input_grads=self.input_grads,
                     local_grads=self.local_grads)
        return d


class Trace(Observer):
    """Records every backward step run inside its `with` block; see TraceEntry for the fields.

    `entries` lists the steps in visit order (a reverse topological order of the graph);
    `print(t)` shows them as a table; `to_json()` gives them as JSON. Gradient norms are
    computed in float64 while recording, so a trace costs a few passes over each gradient.
    With keep_values=True every entry also keeps copies of the arrays (value, gradient
    arriving, gradients sent, local derivatives), shown by `details()`.
    """

    def __init__(self, keep_values=False):
        self.entries = []
        self.seconds = 0.0
        self.keep_values = bool(keep_values)
        self._t0 = None

    def __enter__(self):
        self._t0 = time.perf_counter()
        return super().__enter__()

    def __exit__(self, *exc):
        self.seconds += time.perf_counter() - self._t0
        return super().__exit__(*exc)

    def after_backward(self, node, grad_out, input_grads, seconds, accumulated):
        self.entries.append(TraceEntry(len(self.entries), node, grad_out, input_grads, seconds,
                                       accumulated, self.keep_values))

    def __len__(self):
        return len(self.entries)

    def __iter__(self):
        return iter(self.entries)

    def __getitem__(self, i):
        return self.entries[i]

    def grad_norms(self):
        """{id(node): L2 norm of the gradient arriving at it} for every recorded node."""
        return {e.node_id: e.grad_norm for e in self.entries}

    def gradients(self):
        """{id(tensor): dL/dtensor as an array} for every tensor that received a gradient in the
        traced pass: the gradient arriving at each recorded node, and for the other inputs
        (leaves) the sum of the gradients sent to them over all their uses. Needs keep_values."""
        if not self.keep_values:
            raise ValueError("gradients(): this trace kept only norms; use tr.trace(keep_values=True)")
        found = {e.node_id: e.grad for e in self.entries}
        sums = {}
        for e in self.entries:
            for inp, g in zip(e.inputs, e.input_grads):
                if g is not None and inp["id"] not in found:
                    sums[inp["id"]] = g if inp["id"] not in sums else sums[inp["id"]] + g
        found.update(sums)
        return found

    def table(self):
        """The trace as a text table, one row per backward step (norms; see details() for arrays)."""
        rows = []
        for e in self.entries:
            ins = ", ".join(f"{i['label']}{shape_str(i['shape'])}" for i in e.inputs)
            sent = []
            for g, acc in zip(e.input_grad_norms, e.accumulated):
                sent.append("-" if g is None else fmt(g) + ("+" if acc else ""))
            rows.append([e.step, e.label, shape_str(e.output_shape), ins, fmt(e.grad_norm),
                         " ".join(sent), f"{e.seconds * 1e6:.1f}"])
        head = (f"backward trace: {len(self.entries)} nodes, "
                f"{sum(e.seconds for e in self.entries) * 1e3:.3f} ms in op backwards")
        body = table(["#", "node", "output", "inputs", "L2(grad arriving)", "L2(grad sent to each input)",
                      "us"], rows, "rllllrr")
        note = ("grad arriving = dL/d(node output); grad sent to input k = grad arriving x local "
                "derivative d(output)/d(input k), summed over broadcast axes; L2 = Euclidean norm; "
                "+ = added to a gradient already pending for that input (it is used more than once); "
                "- = no gradient")
        return "\n".join([head, body, note])

    def details(self, max_elements=8, digits=4):
        """Per step, the arrays: the node's value, the gradient arriving at it, and for each input
        the local derivative (elementwise ops) and the gradient sent. Tensors with more than
        max_elements elements are summarised (min, mean, max). Needs keep_values."""
        if not self.keep_values:
            raise ValueError("details(): this trace kept only norms; use tr.trace(keep_values=True)")

        def row(indent, label, a, note=""):
            return f"{' ' * indent}{label:<{34 - indent}} {format_array(a, max_elements, digits)}{note}"
        lines = [f"backward trace, values ({len(self.entries)} nodes; L is the differentiated output)"]
        for e in self.entries:
            lines.append(f"#{e.step} {e.label} -> {shape_str(e.output_shape)} {e.dtype}")
            lines.append(row(4, "value", e.value))
            lines.append(row(4, "grad arriving dL/d(output)", e.grad))
            for k, inp in enumerate(e.inputs):
                lines.append(f"    input {k}: {inp['label']}{shape_str(inp['shape'])}")
                if e.input_grads[k] is None:
                    lines.append("      no gradient (it does not require grad)")
                    continue
                if e.local_grads is not None and e.local_grads[k] is not None:
                    lines.append(row(6, "local d(output)/d(input)", e.local_grads[k]))
                    how = "arriving x local"
                    if tuple(inp["shape"]) != e.output_shape:
                        how += ", summed over broadcast axes"
                else:
                    lines.append(f"{'      local d(output)/d(input)':<34} (a Jacobian: the op is not elementwise)")
                    how = "arriving x Jacobian"
                acc = "  (added to a gradient already pending for it)" if e.accumulated[k] else ""
                lines.append(row(6, "grad sent", e.input_grads[k], f"  = {how}{acc}"))
        return "\n".join(lines)

    def __str__(self):
        return self.table()

    def __repr__(self):
        return f"<Trace: {len(self.entries)} backward steps{', values kept' if self.keep_values else ''}>"

    def to_dict(self):
        """The entries as a JSON-ready dict."""
        return {"columns": COLUMNS, "entries": [e.to_dict() for e in self.entries]}

    def to_json(self, path=None):
        """The trace as JSON text (a "columns" object says what each field holds); also written
        to `path` when one is given. With keep_values the arrays are nested lists."""
        text = dumps(self.to_dict())
        if path is not None:
            write_text(path, text)
        return text


def trace(keep_values=False):
    """`with tr.trace() as t: loss.backward()` records each backward step; `print(t)`.

    keep_values=True also keeps copies of every node's value, the gradient arriving at it, the
    gradient sent to each input and (elementwise ops) the local derivative: `t.details()`,
    `t.gradients()`, and `tr.viz.to_dot(loss, trace=t)` then show the numbers.
    """
    return Trace(keep_values)
