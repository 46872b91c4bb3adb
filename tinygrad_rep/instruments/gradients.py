"""Gradient diff: the analytic gradient of every tensor in a graph against a numerical one,
node by node, so a wrong backward is located and not just detected.

    report = tr.compare_gradients(fn, [x, w])
    print(report)            # one row per node, output first; the broken op is named
    report.broken            # e.g. ["MyOp"]: the ops whose backward is wrong

How it works. fn(*inputs) runs once with the graph recorded (each op's keyword arguments and
creation site are kept). The scalar checked is L = sum(v * fn(inputs)) (v = 1 for a scalar
output, a fixed random array otherwise).
- Analytic side: one backward pass of L (the library's real backward functions), keeping the
  gradient arriving at every node and the local gradient each node passes to each input.
- Numerical side, per node t: perturb one element of t's value by +-eps and re-run only the part
  of the graph downstream of t, replaying the recorded ops (their forward functions, on float64
  copies of the values); (L+ - L-) / (2 eps). Tensors that do not require grad are constants.
- Local check, per op: the same central differences through that op alone, dotted with the
  gradient that arrived at it, against what its backward returned. An op fails it exactly when
  its backward is wrong, whatever happens elsewhere, so `broken` lists the wrong ops even when
  several are wrong or a tensor has several consumers.
The node-by-node table shows where gradients stop matching: below a broken op (towards the
inputs) every gradient is off, above it (towards the output) they match.

fn must be deterministic given its inputs (draw random masks outside forward functions).
"""
import numpy as np

from .. import autograd
from ._common import Observer, fmt, label_of, shape_str, short_path, table, user_site

# Tolerances by the analytic side's dtype, as in tr.gradcheck: (atol, rtol)
_TOL = {np.dtype(np.float64): (1e-5, 1e-3), np.dtype(np.float32): (1e-3, 1e-2)}


class _Recorder(Observer):
    """Keeps each node's creation site while fn builds the graph (params are kept by apply)."""

    def after_forward(self, ctx, out, seconds):
        if not hasattr(ctx, "_site"):
            ctx._site = user_site(depth=2)


class _Backward(Observer):
    """Captures, during the analytic pass, each node's upstream and local gradients."""

    def __init__(self):
        self.upstream, self.local = {}, {}

    def after_backward(self, node, grad_out, input_grads, seconds, accumulated):
        self.upstream[id(node)] = np.array(grad_out._data, dtype=np.float64)
        self.local[id(node)] = [None if g is None else np.array(g._data, dtype=np.float64)
                                for g in input_grads]


class NodeCheck:
    """One row of the report.

    index (0 = the output), label, op (None for a source: an input or leaf), shape, dtype;
    analytic_norm (L2 norm of the whole analytic gradient); numerical_max (largest |numerical|
    over the checked elements); error (largest |analytic - numerical| there); ok;
    local_ok / local_error: the op's own backward against central differences through it
    (None for sources); local_inputs: per input, (ok, error) or None; site: creation site.
    """

    __slots__ = ("index", "label", "op", "shape", "dtype", "analytic_norm", "numerical_max",
                 "error", "ok", "checked", "local_ok", "local_error", "local_inputs", "site",
                 "input_indices", "tensor_id")

    def __init__(self, **kw):
        for k in self.__slots__:
            setattr(self, k, kw.get(k))


class GradientReport:
    """What compare_gradients found. rows: NodeCheck per node, output first; broken: names of
    the ops whose backward is wrong (output side first); ok: True if everything matches."""

    def __init__(self, rows, eps, max_elements, output_shape):
        self.rows, self.eps, self.max_elements, self.output_shape = rows, eps, max_elements, output_shape
        self.broken_nodes = [r for r in rows if r.local_ok is False]
        names = []
        for r in self.broken_nodes:
            if r.op not in names:
                names.append(r.op)
        self.broken = names

    @property
    def ok(self):
        """True when every gradient matches and no op's backward is wrong."""
        return all(r.ok for r in self.rows) and not self.broken_nodes

    @property
    def first_divergence(self):
        """The first node from the output whose gradient matches while a gradient it passes to
        an input does not (the brief's definition of the broken op), or None."""
        by_index = {r.index: r for r in self.rows}
        for r in self.rows:
            if r.op is None or not r.ok:
                continue
            if any(not by_index[i].ok for i in r.input_indices if i is not None):
                return r
        return None

    def __bool__(self):
        return self.ok

    def table(self):
        """The report as text: one row per node, output first, then what is broken."""
        rows = []
        for r in self.rows:
            local = "-" if r.local_ok is None else ("ok" if r.local_ok else f"WRONG ({r.local_error:.3g})")
            site = "" if r.site is None else f"{short_path(r.site.filename)}:{r.site.lineno}"
            ins = ",".join("-" if i is None else str(i) for i in (r.input_indices or ()))
            rows.append([r.index, r.label, shape_str(r.shape), ins, fmt(r.analytic_norm),
                         fmt(r.numerical_max), fmt(r.error), "ok" if r.ok else "WRONG", local, site])
        head = (f"gradient comparison of L = sum(v * output{shape_str(self.output_shape)}): analytic backward "
                f"vs central differences (eps={self.eps:g}) on a float64 replay of the graph, "
                f"up to {self.max_elements} elements per tensor")
        body = table(["#", "node", "shape", "inputs", "L2(analytic)", "max|numerical|", "max abs err",
                      "gradient", "its backward", "created at"], rows, "rlllrrrlll")
        lines = [head, body]
        if not self.broken_nodes and all(r.ok for r in self.rows):
            lines.append("all gradients match")
        for r in self.broken_nodes:
            bad = [f"input {k} (node #{r.input_indices[k]})" if r.input_indices[k] is not None else f"input {k}"
                   for k, li in enumerate(r.local_inputs) if li is not None and not li[0]]
            where = f", created at {r.site}" if r.site is not None else ""
            lines.append(f"broken op: {r.op} (node #{r.index}{where}): the gradient arriving at it "
                         f"{'matches' if r.ok else 'is itself wrong'}, but its backward returns a wrong "
                         f"gradient for {', '.join(bad)} (max abs err {r.local_error:.3g})")
        if not self.broken_nodes and not all(r.ok for r in self.rows):
            lines.append("gradients differ but no op's local check fails: look for hooks that change "
                         "gradients or ops whose forward is not deterministic")
        return "\n".join(lines)

    def __str__(self):
        return self.table()

    def __repr__(self):
        return f"<GradientReport: {len(self.rows)} nodes, broken={self.broken}>"


def _f64(a):
    a = np.asarray(a)
    return np.array(a, dtype=np.float64) if a.dtype.kind == "f" else a


def _graph(out, cut):
    """Nodes that require grad reachable from out, inputs before users; a node in `cut`, a leaf,
    or a node built before fn ran (no recorded params) is a source: replay does not go above it.

    The engine's walk (autograd.topological_order) gives the replayed ops; each source is then
    placed just before its first user, so the order stays topological."""
    if _is_source(out, cut):
        return [out]
    ops_order = autograd.topological_order([out], follow=lambda t: t.requires_grad and not _is_source(t, cut))
    order, placed = [], set()
    for node in ops_order:
        for parent in node._ctx.inputs:
            if parent.requires_grad and id(parent) not in placed and _is_source(parent, cut):
                placed.add(id(parent))
                order.append(parent)
        order.append(node)
    return order


def _is_source(node, cut):
    return id(node) in cut or node._ctx is None or not hasattr(node._ctx, "_params")


def _forward(ctx, arrays):
    fresh = type(ctx)(ctx.inputs)
    with autograd.no_grad():
        y = type(ctx).forward(fresh, *arrays, **ctx._params)
    return _f64(y)


def _inputs_of(node, values):
    return [values[id(t)] if id(t) in values else _f64(t._data) for t in node._ctx.inputs]


def _sample(size, max_elements, rng):
    if max_elements is None or size <= max_elements:
        return np.arange(size)
    return np.sort(rng.choice(size, size=max_elements, replace=False))


def _directional(y_plus, y_minus, weights):
    """sum(weights * (y_plus - y_minus)) over the elements with a non-zero weight: an entry that
    gets no gradient (a -inf mask entry, say) cannot spoil the difference with inf - inf."""
    mask = np.broadcast_to(weights != 0, np.shape(y_plus))
    d = np.asarray(y_plus - y_minus if mask.all() else np.where(mask, y_plus, 0) - np.where(mask, y_minus, 0))
    return float(np.sum(d * weights))


def _close(a, n, atol, rtol):
    return bool(np.all(np.abs(a - n) <= atol + rtol * np.abs(n)))


def compare_gradients(fn, inputs, eps=1e-6, atol=None, rtol=None, max_elements=64, seed=0):
    """Compare the analytic gradient of every node of fn's graph with a numerical one.

    fn(*inputs) must return a Tensor that requires grad. Returns a GradientReport: `print` it
    for the node-by-node table; `.broken` names the ops whose backward is wrong; `.ok`.
    Tolerances default by dtype like tr.gradcheck (float64: atol 1e-5, rtol 1e-3; float32:
    atol 1e-3, rtol 1e-2). At most max_elements elements of each tensor are checked (chosen
    at random with `seed`; None checks all).
    """
    single = not isinstance(inputs, (list, tuple))
    inputs = [inputs] if single else list(inputs)
    with _Recorder():
        out = fn(*inputs)
    if not isinstance(out, autograd._Tensor):
        raise TypeError(f"compare_gradients: fn must return a Tensor, got {type(out).__name__}")
    if not out.requires_grad:
        raise ValueError("compare_gradients: fn's output does not require grad (no input requires grad?)")
    rng = np.random.default_rng(seed)
    v = np.ones(out.shape) if out.size == 1 else rng.standard_normal(out.shape)
    cut = {id(t) for t in inputs}
    order = _graph(out, cut)
    sources = [t for t in order if _is_source(t, cut)]

    # analytic side: the library's backward, once
    grab = _Backward()
    with grab:
        found = autograd.run_backward([out], [autograd._Tensor._wrap(np.asarray(v, dtype=out.dtype))],
                                      wanted=sources)
    analytic = dict(grab.upstream)
    for t, g in zip(sources, found):
        analytic[id(t)] = None if g is None else np.array(g._data, dtype=np.float64)

    # numerical side: replay the recorded ops on float64 values
    base = {}
    for t in order:
        base[id(t)] = _f64(t._data) if _is_source(t, cut) else _forward(t._ctx, _inputs_of(t, base))


    index_of = {id(t): k for k, t in enumerate(reversed(order))}
    input_pos = {id(t): i for i, t in enumerate(inputs)}
    rows = []
    for pos in range(len(order) - 1, -1, -1):
        t = order[pos]
        tid = id(t)
        atol_, rtol_ = _TOL.get(np.dtype(t.dtype), _TOL[np.dtype(np.float32)])
        atol_ = atol_ if atol is None else atol
        rtol_ = rtol_ if rtol is None else rtol
        a_full = analytic.get(tid)
        a_full = np.zeros(t.shape) if a_full is None else a_full
        # downstream part of the graph
        affected, downstream = {tid}, []
        for node in order[pos + 1:]:
            if not _is_source(node, cut) and any(id(i) in affected for i in node._ctx.inputs):
                affected.add(id(node))
                downstream.append(node)
        elems = _sample(t.size, max_elements, rng)
        num = np.zeros(len(elems))
        for k, j in enumerate(elems):
            vals = dict(base)
            outs = []
            for sign in (1.0, -1.0):
                x = base[tid].copy()
                x.reshape(-1)[j] += sign * eps
                vals[tid] = x
                for node in downstream:
                    vals[id(node)] = _forward(node._ctx, _inputs_of(node, vals))
                outs.append(vals[id(out)])
            num[k] = _directional(outs[0], outs[1], v) / (2 * eps)
        a = a_full.reshape(-1)[elems]
        error = float(np.max(np.abs(a - num))) if len(elems) else 0.0
        row = NodeCheck(index=index_of[tid], tensor_id=tid, shape=tuple(t.shape), dtype=str(t.dtype),
                        analytic_norm=float(np.linalg.norm(a_full)) if a_full.size else 0.0,
                        numerical_max=float(np.max(np.abs(num))) if len(elems) else 0.0,
                        error=error, ok=_close(a, num, atol_, rtol_), checked=len(elems))
        if _is_source(t, cut):
            name = label_of(t) if t._ctx is None else f"{t._ctx.name} (built outside fn)"
            row.label = f"input {input_pos[tid]}" + (f" '{t.name}'" if t.name else "") if tid in input_pos else name
            row.input_indices = ()
        else:
            ctx = t._ctx
            row.op, row.label = ctx.name, (f"{t.name} = {ctx.name}" if t.name else ctx.name)
            row.site = getattr(ctx, "_site", None)
            row.input_indices = [index_of.get(id(i)) if i.requires_grad else None for i in ctx.inputs]
            _local_check(row, t, grab, base, eps, atol_, rtol_, max_elements, rng)
        rows.append(row)
    return GradientReport(rows, eps, max_elements, tuple(out.shape))


def _local_check(row, node, grab, base, eps, atol, rtol, max_elements, rng):
    """Central differences through this op alone, dotted with the gradient that reached it."""
    ctx = node._ctx
    g = grab.upstream.get(id(node))
    if g is None:  # no gradient reached the node: nothing to check
        row.local_ok, row.local_error, row.local_inputs = True, 0.0, [None] * len(ctx.inputs)
        return
    arrays = _inputs_of(node, base)
    results, worst, all_ok = [], 0.0, True
    for i, inp in enumerate(ctx.inputs):
        if not (inp.requires_grad and ctx.needs_input_grad[i]):
            results.append(None)
            continue
        local = grab.local[id(node)][i]
        local = np.zeros(inp.shape) if local is None else local
        elems = _sample(inp.size, max_elements, rng)
        num = np.zeros(len(elems))
        for k, j in enumerate(elems):
            ys = []
            for sign in (1.0, -1.0):
                xs = list(arrays)
                xs[i] = arrays[i].copy()
                xs[i].reshape(-1)[j] += sign * eps
                ys.append(_forward(ctx, xs))
            num[k] = _directional(ys[0], ys[1], g) / (2 * eps)
        a = local.reshape(-1)[elems]
        err = float(np.max(np.abs(a - num))) if len(elems) else 0.0
        ok = _close(a, num, atol, rtol)
        results.append((ok, err))
        worst = max(worst, err)
        all_ok = all_ok and ok
    row.local_ok, row.local_error, row.local_inputs = all_ok, worst, results
