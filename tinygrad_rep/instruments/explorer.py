"""The backprop explorer: one self-contained HTML page for a graph, to click through.

    with tr.viz.recording():                 # optional: remembers the file:line of each op
        loss = model(x).relu().mean()
    tr.viz.explore(loss, "graph.html")       # open it from file://, no server, no network

The page draws the graph (inputs at the top, the output at the bottom; drag to pan, wheel to
zoom), shows a node's value, gradient, dtype, derivative formula and creating source line when
it is clicked, and steps through the backward pass in the order the engine visits the nodes.

Source lines and modules are known only for ops recorded inside `tr.viz.recording()` (source
lines also under any instrument that stores creation sites, such as `tr.detect_anomaly()`); for
a graph built outside one the page says "source unknown". Ops recorded inside a Module's
forward are framed by a box per module ("encoder.0 Linear"). `explore` runs one extra backward pass from `output` to get the
gradients; it does not touch any `.grad` (the graph must still be intact: no in-place change of
a saved value since the forward).

The page's public contract (other tools and tests read it):

- ``<script type="application/json" id="tr-graph">`` holds the graph as JSON::

    {"schema": 1, "title": str, "output": id, "root_grad": "ones" | "given",
     "nodes": [{"id": int,                 # index in inputs-before-users order
                "name": str | null,        # Tensor.name (parameters: "0.weight")
                "op": str,                 # op class name, or "leaf" / "param" / "const"
                "kind": "op" | "param" | "input" | "const",
                "shape": [int], "dtype": str, "requires_grad": bool,
                "value": Array, "grad": Array | null,   # grad: total gradient arriving here
                "inputs": [id],            # the op's inputs, in argument order
                "formula": str | null,     # first docstring line of the op class
                "source": {"file", "line", "function", "code"} | null,
                "module": {"path": str, "type": str | null} | null,  # "encoder.0", "Linear"
                "layer": int, "x": float, "y": float}],   # layout (pixels, node centre)
     "steps": [{"step": int, "node": id,
                "arriving": [{"from": id | null, "grad": Array}],  # null: the output's seed
                "summed": bool,            # true when two or more contributions were added
                "grad": Array,             # the gradient this node passes on (their sum)
                "formula": str | null,
                "local": [Array | null] | null,     # elementwise ops: d out / d input_k
                "sends": [{"to": id, "grad": Array}],   # upstream times local, per input
                "leaf": bool}]}            # a leaf stores the gradient in .grad

  where an Array is ``{"shape", "size", "values"?, "min", "max", "mean", "std", "hist"?}``:
  "values" (flat, row-major) when size <= max_values, otherwise "hist" = {"edges", "counts"}
  (20 bins); summary numbers (min, max, mean, std, edges) are rounded to 6 significant digits,
  "values" are exact (float32 as their shortest float32 text). Non-finite numbers are the
  strings "NaN", "Infinity", "-Infinity".
- Each drawn node is an element with attribute ``data-node-id`` equal to its JSON id; clicking
  it fills ``#tr-node-panel``. ``#tr-step`` shows the current backward step, its node's id in
  the attribute ``data-step-node``; ``#tr-next`` / ``#tr-prev`` move through the steps. Only
  drawn nodes carry ``data-node-id``.

The JavaScript and CSS are in instruments/static/ (MIT, like the project) and are inlined into
the page when it is written. See docs/explorer.md.
"""
import html
import json
import os
import sys

import numpy as np

from .. import autograd
from ..output import write_text_atomic
from ._common import Observer, user_site
from .trace import local_derivatives

__all__ = ["explore", "recording", "graph_data", "render"]

_STATIC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "static")
_BINS = 20
_NODE_W, _NODE_H, _GAP_X, _GAP_Y = 170, 54, 24, 60


class _Recording(Observer):
    """Stores, on each op node created inside the block, the user code line that created it and
    the module whose forward ran it (its path in the outermost module: "encoder.0")."""

    def __init__(self):
        self._names = {}  # id(outermost module) -> {id(module): path}

    def after_forward(self, ctx, out, seconds):
        if getattr(ctx, "_site", None) is None:
            ctx._site = user_site(depth=2)
        from ..nn import Module
        chain, frame = [], sys._getframe(1)
        while frame is not None:
            if frame.f_code.co_name == "forward":
                obj = frame.f_locals.get("self")
                if isinstance(obj, Module):
                    chain.append(obj)
            frame = frame.f_back
        if chain:
            root, inner = chain[-1], chain[0]
            names = self._names.get(id(root))
            if names is None:
                names = self._names[id(root)] = {id(m): n for n, m in root.named_modules()}
            ctx._module = (names.get(id(inner), ""), type(inner).__name__)


def recording():
    """`with tr.viz.recording(): y = f(x)` remembers where each op was created (file:line),
    which `explore` then shows. Costs one stack walk per op while active; nothing outside."""
    return _Recording()


class _Collect(Observer):
    """Keeps, per backward step, the gradient that arrived and those sent to each input."""

    def __init__(self):
        self.steps = []

    def after_backward(self, node, grad_out, input_grads, seconds, accumulated):
        self.steps.append((node, _arr(grad_out), [None if g is None else _arr(g) for g in input_grads]))


def _arr(x):
    return np.array(x._data if isinstance(x, autograd._Tensor) else x, copy=True)


def _num(v, f32):
    v = float(v)
    if v != v:
        return "NaN"
    if v in (float("inf"), float("-inf")):
        return "Infinity" if v > 0 else "-Infinity"
    # float32 numbers as their shortest float32 text (0.1, not 0.10000000149011612)
    return float(str(np.float32(v))) if f32 else v


def _stat(v):
    """A summary number (min, mean, edges...): 6 significant digits, as the page prints them."""
    v = _num(v, False)
    return v if isinstance(v, str) else float(f"{v:.6g}")


def _array(a, max_values):
    """An Array of the JSON schema: the numbers for small arrays, a summary for large ones."""
    a = np.asarray(a)
    f32 = a.dtype.kind == "f" and a.dtype.itemsize <= 4
    out = {"shape": list(a.shape), "size": int(a.size)}
    if a.dtype.kind not in "biuf":
        return out
    flat = a.reshape(-1)
    if flat.size <= max_values:
        out["values"] = [_num(v, f32) for v in flat.tolist()] if flat.dtype.kind == "f" \
            else [int(v) for v in flat.tolist()]
    if flat.size:
        fin = flat[np.isfinite(flat)] if flat.dtype.kind == "f" else flat
        x = fin.astype(np.float64)
        if x.size:
            out.update(min=_stat(x.min()), max=_stat(x.max()), mean=_stat(x.mean()), std=_stat(x.std()))
        if flat.size > max_values and x.size:
            counts, edges = np.histogram(x, bins=_BINS)
            out["hist"] = {"edges": [_stat(e) for e in edges], "counts": counts.tolist()}
        if fin.size != flat.size:
            out["nonfinite"] = int(flat.size - fin.size)
    return out


def _kind(t):
    if t._ctx is not None:
        return "op"
    if not t.requires_grad:
        return "const"
    from ..nn import Parameter
    return "param" if isinstance(t, Parameter) else "input"


def _module_of(t, kind):
    """{"path", "type"} of the module that made an op (recorded) or owns a parameter, else None."""
    if kind == "op":
        m = getattr(t._ctx, "_module", None)
        return {"path": m[0], "type": m[1]} if m is not None else None
    if kind == "param" and t.name and "." in t.name:
        return {"path": t.name.rpartition(".")[0], "type": None}
    return None


def _formula(ctx):
    doc = type(ctx).__doc__ or ""
    line = doc.strip().splitlines()[0].strip() if doc.strip() else ""
    return line or None


def _layout(nodes):
    """Layered layout, inputs above users. An op's layer is its longest path from a leaf (one
    more step where the path crosses a module boundary); a leaf
    sits just above its first user, to the user's left. An op goes under the mean position of
    its op inputs (so a chain of ops is one straight column); nodes of a layer that want the
    same place are pushed right, never overlapping."""
    users = [[] for _ in nodes]

    def module(n):
        return n["module"]["path"] if n["module"] else None

    for n in nodes:
        for i in n["inputs"]:
            users[i].append(n["id"])
        # one empty layer where data leaves a module, so module boxes never share a row
        n["layer"] = max((nodes[i]["layer"] + (2 if nodes[i]["inputs"] and module(nodes[i]) != module(n)
                                                 else 1) for i in n["inputs"]), default=0)
    leaf = [not n["inputs"] for n in nodes]
    for n in nodes:
        if leaf[n["id"]] and users[n["id"]]:
            n["layer"] = max(0, min(nodes[u]["layer"] for u in users[n["id"]]) - 1)
    layers = {}
    for n in nodes:
        layers.setdefault(n["layer"], []).append(n["id"])
    pos = {}

    def place(row, want):
        last, order = None, sorted(row, key=lambda i: (want[i], not leaf[i], i))
        for i in order:
            pos[i] = want[i] if last is None else max(want[i], last + 1.0)
            last = pos[i]
        # pushing only rightwards would let a wide graph drift: keep the ops where they want
        ops = [i for i in order if not leaf[i]] or order
        shift = sum(want[i] - pos[i] for i in ops) / len(ops)
        for i in order:
            pos[i] += shift

    def mean(ids, default):
        ops = [i for i in ids if i in pos and not leaf[i]] or [i for i in ids if i in pos]
        return sum(pos[i] for i in ops) / len(ops) if ops else default

    # down: ops under their inputs; then up: every node over its users (leaves to the left of
    # the first user); then down again so ops sit under where their inputs ended up
    for k in sorted(layers):
        place(layers[k], {i: mean(nodes[i]["inputs"], float(j)) for j, i in enumerate(layers[k])})
    for k in sorted(layers, reverse=True):
        want = {}
        for i in layers[k]:
            us = [u for u in users[i] if nodes[u]["layer"] > k]
            if leaf[i] and us:
                first = us[0]
                sibs = [j for j in dict.fromkeys(nodes[first]["inputs"]) if leaf[j] and nodes[j]["layer"] == k]
                want[i] = pos[first] - len(sibs) + sibs.index(i) if i in sibs else pos[first] - 1
            else:
                want[i] = sum(pos[u] for u in us) / len(us) if us else pos[i]
        place(layers[k], want)
    for k in sorted(layers):
        place(layers[k], {i: pos[i] if leaf[i] else mean(nodes[i]["inputs"], pos[i]) for i in layers[k]})
    left = min(pos.values())
    top, y = {}, _GAP_Y
    for k in range(max(layers) + 1):
        top[k] = y
        y += _NODE_H + _GAP_Y if k in layers else 28  # an empty layer is only a module gap
    for n in nodes:
        n["x"] = round((pos[n["id"]] - left) * (_NODE_W + _GAP_X) + _NODE_W / 2 + _GAP_X, 1)
        n["y"] = top[n["layer"]] + _NODE_H / 2


def graph_data(output, grad=None, max_values=64, title=None):
    """The explorer's JSON (a dict, see the module docstring) for the graph that made `output`.

    grad: the gradient to start backward with (default: ones of the output's shape, so a
    non-scalar output is explored as if it were summed). max_values: tensors with more elements
    are summarised (min/mean/max/std and a histogram) instead of listed.
    """
    if not isinstance(output, autograd._Tensor):
        raise TypeError(f"explore: expected a Tensor output, got {type(output).__name__}")
    if not isinstance(max_values, int) or max_values < 0:
        raise ValueError(f"explore: max_values must be an int >= 0, got {max_values!r}")
    order = autograd.topological_order([output], follow=lambda t: True)
    ids = {id(t): i for i, t in enumerate(order)}
    steps, grads = [], {}
    if output.requires_grad:
        root = np.ones(output.shape, dtype=output.dtype) if grad is None else \
            np.asarray(grad._data if isinstance(grad, autograd._Tensor) else grad, dtype=output.dtype)
        if root.shape != output.shape:
            raise ValueError(f"explore: grad has shape {root.shape}, the output {output.shape}")
        steps, grads = _backward(output, root, ids, max_values)
    nodes = []
    for i, t in enumerate(order):
        ctx = t._ctx
        site = getattr(ctx, "_site", None) if ctx is not None else None
        kind = _kind(t)
        nodes.append({
            "id": i, "name": t.name, "op": ctx.name if ctx is not None else
            {"param": "param", "input": "leaf", "const": "const"}[kind],
            "kind": kind, "shape": list(t.shape), "dtype": str(t.dtype),
            "requires_grad": bool(t.requires_grad),
            "value": _array(t._data, max_values),
            "grad": _array(grads[i], max_values) if i in grads else None,
            "inputs": [ids[id(p)] for p in ctx.inputs] if ctx is not None else [],
            "formula": _formula(ctx) if ctx is not None else None,
            "source": site.to_dict() if site is not None else None,
            "module": _module_of(t, kind),
        })
    # a parameter belongs to the module its name says, when that module's ops are drawn
    drawn = {n["module"]["path"] for n in nodes if n["kind"] == "op" and n["module"]}
    for n in nodes:
        if n["kind"] == "param" and n["module"] and n["module"]["path"] not in drawn:
            n["module"] = None
    _layout(nodes)
    return {"schema": 1, "title": title or "backprop explorer", "output": ids[id(output)],
            "root_grad": "ones" if grad is None else "given", "nodes": nodes, "steps": steps}


def _backward(output, root, ids, max_values):
    """Run backward once under an observer (no .grad touched) and turn what it saw into steps,
    one per node in the engine's order: reversed topological_order([output])."""
    # only this observer watches the extra pass: a trace or profile the user has open around
    # the call must not see it, nor should anomaly checks fire twice
    col, others = _Collect(), autograd._observers[:]
    autograd._observers[:] = [col]
    try:
        autograd.run_backward([output], [autograd._Tensor._wrap(root)], wanted=[])
    finally:
        autograd._observers[:] = others
    seen = {id(node): (g_out, ins) for node, g_out, ins in col.steps}
    arriving = {ids[id(output)]: [(None, root)]}
    total, steps = {}, []
    for node in reversed(autograd.topological_order([output])):
        i = ids[id(node)]
        parts = arriving.get(i)
        if not parts:
            continue  # no gradient reached it (an unused branch)
        if id(node) in seen:
            g = seen[id(node)][0]  # what the engine passed on (after any hooks)
        else:
            g = parts[0][1]
            for _, p in parts[1:]:
                g = g + p
        total[i] = g
        ctx = node._ctx
        step = {"step": len(steps), "node": i,
                "arriving": [{"from": src, "grad": _array(p, max_values)} for src, p in parts],
                "summed": len(parts) > 1, "grad": _array(g, max_values),
                "formula": _formula(ctx) if ctx is not None else None,
                "local": None, "sends": [], "leaf": ctx is None}
        if ctx is not None and id(node) in seen:
            _, ins = seen[id(node)]
            for inp, ig in zip(ctx.inputs, ins):
                if ig is None:
                    continue
                j = ids[id(inp)]
                arriving.setdefault(j, []).append((i, ig))
                step["sends"].append({"to": j, "grad": _array(ig, max_values)})
            loc = local_derivatives(node)
            if loc is not None:
                step["local"] = [None if d is None else _array(d, max_values) for d in loc]
        steps.append(step)
    return steps, total


def _static(name):
    with open(os.path.join(_STATIC, name), encoding="utf-8") as f:
        return f.read()


def _script_json(obj):
    """JSON safe inside a <script> element (no '<', '>' or '&' in the text)."""
    text = json.dumps(obj, separators=(",", ":"), allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def render(data):
    """The HTML page (a string) for the JSON of `graph_data`."""
    title = html.escape(data["title"])
    n, s = len(data["nodes"]), len(data["steps"])
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>{_static("explorer.css")}</style>
</head><body>
<header><h1>{title}</h1>
<p class="tr-help">{n} nodes, {s} backward steps. Click a node to see its value and gradient;
step through the backward pass below. Drag to pan, wheel to zoom.
<span class="tr-key"><i class="k-op"></i>op <i class="k-param"></i>parameter
<i class="k-input"></i>input leaf <i class="k-const"></i>constant <i class="k-out"></i>output</span></p>
<noscript><p>This explorer needs JavaScript; the graph data is in the page as JSON (id tr-graph).</p></noscript>
</header>
<main>
<section id="tr-canvas" aria-label="graph"></section>
<aside>
<div id="tr-controls"><button id="tr-prev" type="button">&#9664; prev</button>
<button id="tr-next" type="button">next &#9654;</button>
<button id="tr-reset" type="button">reset</button>
<button id="tr-fit" type="button">fit</button>
<span id="tr-step-count"></span></div>
<div id="tr-step" aria-live="polite"><p>Backward steps: press <b>next</b>.</p></div>
<div id="tr-node-panel" aria-live="polite"><p>Click a node.</p></div>
</aside>
</main>
<script type="application/json" id="tr-graph">{_script_json(data)}</script>
<script>{_static("explorer.js")}</script>
</body></html>
"""


def explore(output, path, grad=None, max_values=64, title=None):
    """Write the backprop explorer for the graph that computed `output` to `path` (one HTML
    file, working offline from file://). Returns the path. See the module docstring for what
    the page shows and its JSON schema; `grad` and `max_values` as in `graph_data`."""
    data = graph_data(output, grad=grad, max_values=max_values, title=title)
    return write_text_atomic(path, render(data))
