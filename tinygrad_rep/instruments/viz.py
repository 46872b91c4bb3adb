"""Graph drawings (public name `tr.viz`): the graph behind a tensor as Graphviz DOT text, with
each node's value and gradient, and rendering to SVG / PNG.

    dot = tr.viz.to_dot(loss, backward=True)        # a node per tensor (value, gradient), an edge per input
    tr.viz.render(dot, "runs/graph/loss")           # loss.dot, plus .svg/.png when `dot` is installed

    with tr.trace(keep_values=True) as t:           # or draw the gradients of your own backward pass
        loss.backward()
    dot = tr.viz.to_dot(loss, trace=t)

Op nodes (boxes) show the op's name (and the tensor's name when it has one: "h = Mul"), output
shape and dtype; leaves (ellipses) are labelled with their name (Module parameters are named
"0.weight", ... as the model is built) or "leaf"; tensors that do not require grad are dashed
"const" nodes. With values shown, each node also shows its value and its gradient dL/dnode
(signed numbers for small tensors, min/mean/max for large ones). Gradients come from `.grad`
(leaves, retain_grad) or from a tr.trace() of the backward pass (arrays when it kept values,
else L2 norms). A tensor used more than once says so: its gradient is the sum over its uses.
Edges go from an input to the op that uses it (data flow), labelled with the input's position
when the op has more than one input; a tensor used twice by one op gets two edges. A legend
explains colours, shapes and lines.

The interactive HTML explorer is here too: `tr.viz.explore(output, "graph.html")`, with
`tr.viz.recording()` around the forward pass to show source lines (instruments/explorer.py).
"""
import os
import shutil
import subprocess

import numpy as np

from .. import autograd
from ..output import atomic_path
from ._common import format_array, norm, shape_str, write_text

INSTALL_HINT = ("Graphviz's `dot` program is not installed, so only {dot} was written; install "
                "it with `apt-get install graphviz`, then render with `dot -Tsvg {dot} -o {svg}`")

_OP = 'shape=box, style="rounded,filled", fillcolor="#dbe9f6"'
_LEAF = 'shape=ellipse, style=filled, fillcolor="#fff2c8"'
_CONST = 'shape=ellipse, style=dashed, color="#888888", fontcolor="#555555"'
_BAD = ', color="#cc0000", penwidth=2'


def _quote(text):
    return '"' + str(text).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def graph_nodes(tensor, max_nodes=5000):
    """Every tensor of the graph behind `tensor`, inputs before the ops that use them.

    Follows each op's inputs whether or not they require grad (autograd.topological_order, the
    engine's own walk: iterative, so deep graphs are fine).
    """
    order = autograd.topological_order([tensor], follow=lambda t: True)
    if len(order) > max_nodes:
        raise ValueError(f"to_dot: the graph has {len(order)} nodes, more than max_nodes={max_nodes}; "
                         f"pass a larger max_nodes= to draw it")
    return order


def _known_gradients(trace, grads):
    """({id: L2 norm}, {id: array}) of the gradients known from a trace and from `grads`."""
    norms, arrays = {}, {}
    if trace is not None:
        norms.update(trace.grad_norms())
        if trace.keep_values:
            arrays.update(trace.gradients())
            norms.update({k: norm(a) for k, a in arrays.items()})
        else:
            # leaves: the norm of the gradient they received, known when they were used once
            # (norms of several uses do not add; keep_values or .grad give those)
            sums = {}
            for e in trace.entries:
                for inp, g in zip(e.inputs, e.input_grad_norms):
                    if inp["leaf"] and g is not None:
                        sums.setdefault(inp["id"], []).append(g)
            for k, gs in sums.items():
                if k not in norms and len(gs) == 1:
                    norms[k] = gs[0]
    for k, g in (grads or {}).items():
        if isinstance(g, (np.ndarray, autograd._Tensor)):
            arrays[k] = np.asarray(g._data if isinstance(g, autograd._Tensor) else g)
            norms[k] = norm(arrays[k])
        else:
            norms[k] = g
    return norms, arrays


def _uses(nodes):
    """{id(tensor): number of (op, input position) pairs through which it receives a gradient}."""
    count = {}
    for t in nodes:
        if t._ctx is None:
            continue
        for parent, need in zip(t._ctx.inputs, t._ctx.needs_input_grad):
            if need:
                count[id(parent)] = count.get(id(parent), 0) + 1
    return count


def _html(text):
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def legend_dot(values=True):
    """The legend of to_dot: one node (id "key", no edges, so it never mixes with the graph's
    own nodes n0, n1, ...) holding a table of the colours, shapes and label lines."""
    swatches = [  # (cell attributes, cell text, meaning)
        ('BGCOLOR="#dbe9f6" STYLE="rounded"', "op", "box: the output of an op"),
        ('BGCOLOR="#fff2c8"', "leaf", "yellow ellipse: a leaf that requires grad (parameter, input)"),
        ('STYLE="dashed" COLOR="#888888"', "const", "dashed ellipse: a constant (gets no gradient)"),
        ('BGCOLOR="#dbe9f6" BORDER="3"', "out", "double outline: the drawn output L"),
        ('BGCOLOR="#dbe9f6" COLOR="#cc0000" BORDER="2"', "bad", "red outline: a non-finite gradient"),
    ]
    lines = ['first line: the name, or the op ("h = Mul": tensor h, made by Mul)', "then its shape and dtype"]
    if values:
        lines += ["value: the tensor's value", "grad: dL/d(tensor), the gradient of L with respect to it",
                  "numbers for small tensors, else min / mean / max"]
    lines += ["used Nx: used N times, its gradient is the sum over the uses",
              "|grad|: L2 norm of the gradient", "edge label k: the tensor is input k of the op"]
    rows = ['<TR><TD COLSPAN="2" BORDER="0"><B>legend</B></TD></TR>']
    rows += [f'<TR><TD {attrs}>{cell}</TD><TD BORDER="0" ALIGN="LEFT">{_html(meaning)}</TD></TR>'
             for attrs, cell, meaning in swatches]
    rows += [f'<TR><TD COLSPAN="2" BORDER="0" ALIGN="LEFT">{_html(line)}</TD></TR>' for line in lines]
    table = '<TABLE BORDER="1" COLOR="#bbbbbb" CELLBORDER="1" CELLSPACING="3" CELLPADDING="3">' + "".join(rows) + "</TABLE>"
    return [f"  key [shape=plaintext, fontsize=9, label=<{table}>];"]


def gradient_trace(output, grad=None):
    """Run one backward pass from `output` under tr.trace(keep_values=True) and return the trace;
    no `.grad` is touched. grad: dL/d(output), default ones (so L = sum of output)."""
    from .trace import Trace
    if not isinstance(output, autograd._Tensor) or not output.requires_grad:
        raise ValueError("to_dot(backward=True): the tensor must require grad (nothing to differentiate)")
    g = np.ones(output.shape, dtype=output.dtype) if grad is None else np.asarray(grad, dtype=output.dtype)
    if g.shape != output.shape:
        raise ValueError(f"to_dot: grad has shape {g.shape} but the output has shape {output.shape}")
    with Trace(keep_values=True) as t:
        autograd.run_backward([output], [autograd._Tensor._wrap(g)], wanted=[])
    return t


def to_dot(tensor, trace=None, grads=None, title=None, max_nodes=5000, values=None,
           max_elements=8, digits=4, legend=True, backward=False):
    """Graphviz DOT text of the graph behind `tensor`.

    trace: a tr.trace() of a backward pass through this graph: every node then shows its
    gradient (the arrays when the trace kept values, else L2 norms); without one only tensors
    whose `.grad` is set show a gradient. backward=True runs that pass here (gradient_trace:
    L = sum of `tensor`, no `.grad` touched), so `to_dot(loss, backward=True)` shows every
    value and gradient. grads: {id(tensor): L2 norm or array} to add more.
    values: show each node's value and gradient as numbers (None: when the trace kept values);
    tensors with more than max_elements elements show min / mean / max instead, with `digits`
    significant digits. legend: add the legend box. Node ids are n0, n1, ... in topological
    order (inputs first).
    """
    if backward:
        if trace is not None:
            raise ValueError("to_dot: give trace= or backward=True, not both")
        trace = gradient_trace(tensor)
    nodes = graph_nodes(tensor, max_nodes)
    ids = {id(t): f"n{i}" for i, t in enumerate(nodes)}
    norms, arrays = _known_gradients(trace, grads)
    if values is None:
        values = trace is not None and trace.keep_values
    uses = _uses(nodes)
    lines = ["digraph tinygrad_rep {",
             '  graph [rankdir=TB, fontname="Helvetica", fontsize=11' +
             (f", label={_quote(title)}, labelloc=t" if title else "") + "];",
             '  node [fontname="Helvetica", fontsize=10];',
             '  edge [fontname="Helvetica", fontsize=9, color="#555555"];']
    for t in nodes:
        if id(t) in arrays or t.grad is None:  # the traced pass first: .grad may hold earlier passes too
            grad, grad_norm = arrays.get(id(t)), norms.get(id(t))
        else:
            grad, grad_norm = t.grad._data, norm(t.grad)
        text = f"{shape_str(t.shape)} {t.dtype}"
        if t._ctx is not None:
            head = f"{t.name} = {t._ctx.name}" if t.name else t._ctx.name
            attrs = _OP
        elif t.requires_grad:
            head, attrs = t.name or "leaf", _LEAF
        else:
            head, attrs = t.name or "const", _CONST
        label = [head, text]
        if values:
            label.append("value " + format_array(t._data, max_elements, digits))
            if grad is not None:
                label.append("grad " + format_array(grad, max_elements, digits))
        if uses.get(id(t), 0) > 1:
            label.append(f"used {uses[id(t)]}x: grads add up")
        if grad_norm is not None:
            label.append(f"|grad| {grad_norm:.3g}")
            if not np.isfinite(grad_norm):
                attrs += _BAD
        if t is tensor:
            attrs += ", peripheries=2"
        text = "\n".join(label)
        lines.append(f"  {ids[id(t)]} [label={_quote(text)}, {attrs}];")
    for t in nodes:
        if t._ctx is None:
            continue
        inputs = t._ctx.inputs
        for k, parent in enumerate(inputs):
            extra = f" [label={_quote(k)}]" if len(inputs) > 1 else ""
            lines.append(f"  {ids[id(parent)]} -> {ids[id(t)]}{extra};")
    if legend:
        lines += legend_dot(values)
    lines.append("}")
    return "\n".join(lines) + "\n"


def have_graphviz():
    """The path of Graphviz's `dot` program, or None when it is not installed."""
    return shutil.which("dot")


def render(dot_text, path, formats=("svg", "png"), timeout=60):
    """Write `path`.dot and, when Graphviz is installed, `path`.<fmt> for each format.

    path is given without extension. Returns {"dot": file, "svg": file, ...} for the files
    written; when `dot` is missing, only the .dot file, and the "missing" key holds the hint.
    """
    path = os.fspath(path)
    if path.endswith(".dot"):
        path = path[:-4]
    written = {"dot": write_text(path + ".dot", dot_text)}
    exe = have_graphviz()
    if exe is None:
        written["missing"] = INSTALL_HINT.format(dot=path + ".dot", svg=path + ".svg")
        return written
    for fmt in formats:
        target = f"{path}.{fmt}"
        try:
            with atomic_path(target) as tmp:  # Graphviz writes a temporary file, renamed on success
                subprocess.run([exe, f"-T{fmt}", path + ".dot", "-o", tmp], check=True,
                               capture_output=True, timeout=timeout)
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as e:
            err = getattr(e, "stderr", b"") or b""
            raise RuntimeError(f"graphviz failed to render {target}: {err.decode(errors='replace').strip() or e}") from None
        written[fmt] = target
    return written


def save(tensor, path, trace=None, formats=("svg", "png"), title=None, values=None):
    """to_dot(tensor, trace, values=values) rendered with render(); returns the files written."""
    return render(to_dot(tensor, trace=trace, title=title, values=values), path, formats)


from .explorer import explore, recording  # noqa: E402,F401  (the HTML explorer, same namespace)
