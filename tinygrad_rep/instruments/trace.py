"""Backward trace: what backprop did at each node, in the order it visited them.

    with tr.trace() as t:
        loss.backward()
    print(t)                 # one row per node: op, shapes, |upstream grad|, |local grads|, time
    t.to_json("trace.json")

Only backward steps are recorded (ops that backward functions apply internally are part of
their node's step and its time).
"""
import time
import weakref

from ._common import Observer, dumps, fmt, label_of, norm, shape_str, table, write_text


class TraceEntry:
    """One backward step.

    step: position in the walk (0 = first node visited, the output);
    op: the op's name; node_id: id() of the node's output tensor (as used by viz.to_dot);
    output_shape, dtype; inputs: one dict per input (label, shape, requires_grad);
    grad_norm: L2 norm of the upstream gradient arriving at the node (after its hooks);
    input_grad_norms: L2 norm of each local gradient (None where the input gets none);
    accumulated: per input, True if its gradient was added to one already pending from
    another use; seconds: time spent in the op's backward (including broadcast reduction).
    """

    __slots__ = ("step", "op", "node_id", "_node", "output_shape", "dtype", "inputs",
                 "grad_norm", "input_grad_norms", "accumulated", "seconds")

    def __init__(self, step, node, grad_out, input_grads, seconds, accumulated):
        ctx = node._ctx
        self.step, self.op, self.node_id = step, ctx.name, id(node)
        self._node = weakref.ref(node)
        self.output_shape, self.dtype = tuple(node.shape), str(node.dtype)
        self.inputs = [{"label": label_of(t), "id": id(t), "shape": tuple(t.shape),
                        "requires_grad": bool(t.requires_grad), "leaf": t._ctx is None}
                       for t in ctx.inputs]
        self.grad_norm = norm(grad_out)
        self.input_grad_norms = [norm(g) for g in input_grads]
        self.accumulated = [bool(a) for a in accumulated]
        self.seconds = seconds

    @property
    def node(self):
        """The output tensor of this node, if it is still alive (else None)."""
        return self._node()

    def to_dict(self):
        return {"step": self.step, "op": self.op, "node_id": self.node_id,
                "output_shape": list(self.output_shape), "dtype": self.dtype,
                "inputs": [dict(i, shape=list(i["shape"])) for i in self.inputs],
                "grad_norm": self.grad_norm, "input_grad_norms": self.input_grad_norms,
                "accumulated": self.accumulated, "seconds": self.seconds}


class Trace(Observer):
    """Records every backward step run inside its `with` block; see TraceEntry for the fields.

    `entries` lists the steps in visit order (a reverse topological order of the graph);
    `print(t)` shows them as a table; `to_json()` gives them as JSON. Gradient norms are
    computed in float64 while recording, so a trace costs a few passes over each gradient.
    """

    def __init__(self):
        self.entries = []
        self.seconds = 0.0
        self._t0 = None

    def __enter__(self):
        self._t0 = time.perf_counter()
        return super().__enter__()

    def __exit__(self, *exc):
        self.seconds += time.perf_counter() - self._t0
        return super().__exit__(*exc)

    def after_backward(self, node, grad_out, input_grads, seconds, accumulated):
        self.entries.append(TraceEntry(len(self.entries), node, grad_out, input_grads, seconds, accumulated))

    def __len__(self):
        return len(self.entries)

    def __iter__(self):
        return iter(self.entries)

    def __getitem__(self, i):
        return self.entries[i]

    def grad_norms(self):
        """{id(node): norm of its upstream gradient} for every recorded node (for viz.to_dot)."""
        return {e.node_id: e.grad_norm for e in self.entries}

    def table(self):
        """The trace as a text table, one row per backward step."""
        rows = []
        for e in self.entries:
            ins = ", ".join(f"{i['label']}{shape_str(i['shape'])}" for i in e.inputs)
            locs = []
            for i, (g, acc) in enumerate(zip(e.input_grad_norms, e.accumulated)):
                locs.append("-" if g is None else fmt(g) + ("+" if acc else ""))
            rows.append([e.step, e.op, shape_str(e.output_shape), ins, fmt(e.grad_norm),
                         " ".join(locs), f"{e.seconds * 1e6:.1f}"])
        head = (f"backward trace: {len(self.entries)} nodes, "
                f"{sum(e.seconds for e in self.entries) * 1e3:.3f} ms in op backwards")
        body = table(["#", "op", "output", "inputs", "|grad out|", "|local grads|", "us"], rows,
                     "rllllrr")
        note = "(+ = added to a gradient already pending from another use of that input; - = no gradient)"
        return "\n".join([head, body, note])

    def __str__(self):
        return self.table()

    def __repr__(self):
        return f"<Trace: {len(self.entries)} backward steps>"

    def to_dict(self):
        return {"entries": [e.to_dict() for e in self.entries]}

    def to_json(self, path=None):
        """The trace as JSON text; also written to `path` when one is given."""
        text = dumps(self.to_dict())
        if path is not None:
            write_text(path, text)
        return text


def trace():
    """`with tr.trace() as t: loss.backward()` records each backward step; `print(t)`."""
    return Trace()
