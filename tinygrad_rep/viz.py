"""Graph drawings: the graph behind a tensor as Graphviz DOT text, and rendering to SVG / PNG.

    dot = tr.viz.to_dot(loss)                       # a node per op and per leaf, an edge per input
    tr.viz.render(dot, "runs/graph/loss")           # loss.dot, plus .svg/.png when `dot` is installed

Op nodes (boxes) show the op's name, output shape and dtype; leaves (ellipses) are labelled with
their name (Module parameters are named "0.weight", ... by nn) or "leaf"; tensors that do not
require grad are dashed "const" nodes. After backward, a node shows its gradient norm when it is
known: from `.grad` (leaves, retain_grad), or from a tr.trace() of the backward pass.
Edges go from an input to the op that uses it (data flow), labelled with the input's position
when the op has more than one input; a tensor used twice by one op gets two edges.
"""
import os
import shutil
import subprocess

import numpy as np

from .instruments._common import norm, shape_str, write_text

INSTALL_HINT = ("Graphviz's `dot` program is not installed, so only {dot} was written; install "
                "it with `apt-get install graphviz`, then render with `dot -Tsvg {dot} -o {svg}`")


def _quote(text):
    return '"' + str(text).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def graph_nodes(tensor, max_nodes=5000):
    """Every tensor of the graph behind `tensor`, inputs before the ops that use them.

    Follows each op's inputs whether or not they require grad; iterative, so deep graphs are fine.
    """
    order, visited = [], set()
    stack = [(tensor, False)]
    while stack:
        node, expanded = stack.pop()
        if expanded:
            order.append(node)
            continue
        if id(node) in visited:
            continue
        visited.add(id(node))
        if len(visited) > max_nodes:
            raise ValueError(f"to_dot: the graph has more than {max_nodes} nodes; pass max_nodes= to draw it")
        stack.append((node, True))
        if node._ctx is not None:
            for parent in reversed(node._ctx.inputs):
                if id(parent) not in visited:
                    stack.append((parent, False))
    return order


def _grad_norms(trace, grads):
    known = {}
    if trace is not None:
        known.update(trace.grad_norms())
        # leaves: the gradient each leaf received, summed over its uses
        sums = {}
        for e in trace.entries:
            for inp, g in zip(e.inputs, e.input_grad_norms):
                if inp["leaf"] and g is not None:
                    sums.setdefault(inp["id"], []).append(g)
        for k, gs in sums.items():
            if k not in known and len(gs) == 1:
                known[k] = gs[0]  # several uses: norms do not add; use .grad instead
    if grads:
        known.update(grads)
    return known


def to_dot(tensor, trace=None, grads=None, title=None, max_nodes=5000):
    """Graphviz DOT text of the graph behind `tensor`.

    trace: a tr.trace() of a backward pass through this graph, to show every node's gradient
    norm (otherwise only tensors whose `.grad` is set show one); grads: {id(tensor): norm} to
    add more. Node ids are n0, n1, ... in topological order (inputs first).
    """
    nodes = graph_nodes(tensor, max_nodes)
    ids = {id(t): f"n{i}" for i, t in enumerate(nodes)}
    known = _grad_norms(trace, grads)
    lines = ["digraph tinygrad_rep {",
             '  graph [rankdir=TB, fontname="Helvetica", fontsize=11' +
             (f", label={_quote(title)}, labelloc=t" if title else "") + "];",
             '  node [fontname="Helvetica", fontsize=10];',
             '  edge [fontname="Helvetica", fontsize=9, color="#555555"];']
    for t in nodes:
        grad_norm = norm(t.grad) if t.grad is not None else known.get(id(t))
        text = f"{shape_str(t.shape)} {t.dtype}"
        if t._ctx is not None:
            label = f"{t._ctx.name}\n{text}"
            attrs = 'shape=box, style="rounded,filled", fillcolor="#dbe9f6"'
        elif t.requires_grad:
            label = f"{t.name or 'leaf'}\n{text}"
            attrs = 'shape=ellipse, style=filled, fillcolor="#fff2c8"'
        else:
            label = f"{t.name or 'const'}\n{text}"
            attrs = 'shape=ellipse, style=dashed, color="#888888", fontcolor="#555555"'
        if grad_norm is not None:
            label += f"\n|grad| {grad_norm:.3g}"
            if not np.isfinite(grad_norm):
                attrs += ', color="#cc0000", penwidth=2'
        if t is tensor:
            attrs += ", peripheries=2"
        lines.append(f"  {ids[id(t)]} [label={_quote(label)}, {attrs}];")
    for t in nodes:
        if t._ctx is None:
            continue
        inputs = t._ctx.inputs
        for k, parent in enumerate(inputs):
            extra = f" [label={_quote(k)}]" if len(inputs) > 1 else ""
            lines.append(f"  {ids[id(parent)]} -> {ids[id(t)]}{extra};")
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
        tmp = os.path.join(os.path.dirname(os.path.abspath(target)), f".tmp-{os.path.basename(target)}")
        try:
            subprocess.run([exe, f"-T{fmt}", path + ".dot", "-o", tmp], check=True,
                           capture_output=True, timeout=timeout)
            os.replace(tmp, target)
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as e:
            if os.path.exists(tmp):
                os.unlink(tmp)
            err = getattr(e, "stderr", b"") or b""
            raise RuntimeError(f"graphviz failed to render {target}: {err.decode(errors='replace').strip() or e}") from None
        written[fmt] = target
    return written


def save(tensor, path, trace=None, formats=("svg", "png"), title=None):
    """to_dot(tensor, trace) rendered with render(); returns the files written."""
    return render(to_dot(tensor, trace=trace, title=title), path, formats)
