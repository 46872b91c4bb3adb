"""Tests of the instruments: graph drawing, backward trace, hooks, anomaly detection, profiler,
gradient diff, the `graph` command and the tour."""
import json
import os
import re

import numpy as np
import pytest

import tinygrad_rep as tr
from tinygrad_rep import Tensor, autograd, backend, nn, viz
from tinygrad_rep import functional as F
from tinygrad_rep.instruments import (AnomalyError, compare_gradients, detect_anomaly, profile,
                                      trace)


def _t(shape, seed, name=None, requires_grad=True, dtype=np.float64):
    t = Tensor(np.random.default_rng(seed).standard_normal(shape).astype(dtype), requires_grad=requires_grad)
    t.name = name
    return t


@pytest.fixture(autouse=True)
def _no_observers_left():
    yield
    assert autograd._observers == [], "an instrument was left active"
    assert backend._kernel_timers == [], "a kernel timer was left active"


# ------------------------------------------------------------------------------ graph (DOT)

def _parse_dot(text):
    """{node id: first label line}, [(src label, dst label, edge label or None)]."""
    nodes = {}
    for m in re.finditer(r'^\s*(n\d+) \[label="((?:[^"\\]|\\.)*)"', text, re.M):
        nodes[m.group(1)] = m.group(2).split("\\n")
    edges = [(a, b, lab) for a, b, lab in re.findall(r'^\s*(n\d+) -> (n\d+)(?: \[label="(\d+)"\])?;', text, re.M)]
    return nodes, edges


def test_dot_has_exactly_the_nodes_and_edges_of_a_small_graph():
    x, w = _t((4, 3), 0, "x"), _t((3, 2), 1, "w")
    loss = (x @ w).relu().sum()
    nodes, edges = _parse_dot(viz.to_dot(loss))
    names = {k: v[0] for k, v in nodes.items()}
    assert sorted(names.values()) == sorted(["x", "w", "MatMul", "ReLU", "Sum"])
    by = {v: k for k, v in names.items()}
    got = sorted((names[a], names[b], lab or None) for a, b, lab in edges)
    assert got == sorted([("x", "MatMul", "0"), ("w", "MatMul", "1"), ("MatMul", "ReLU", None),
                          ("ReLU", "Sum", None)])
    assert nodes[by["MatMul"]][1] == "(4, 2) float64"
    assert nodes[by["Sum"]][1] == "() float64"
    assert not any("|grad|" in line for v in nodes.values() for line in v)  # no backward yet


def test_dot_edge_per_input_constants_and_grad_norms_after_backward():
    x = _t((3,), 2, "x")
    y = (x * x) * 2.0  # x used twice by one op; 2.0 becomes a constant input
    loss = y.sum()
    with trace() as t:
        loss.backward()
    text = viz.to_dot(loss, trace=t)
    nodes, edges = _parse_dot(text)
    names = {k: v[0] for k, v in nodes.items()}
    assert sorted(names.values()) == sorted(["x", "Mul", "const", "Mul", "Sum"])
    assert len(edges) == 5
    x_id = [k for k, v in names.items() if v == "x"][0]
    assert sorted(lab for a, b, lab in edges if a == x_id) == ["0", "1"]
    # every node that received a gradient shows its norm; they match the real gradients
    x_label = nodes[x_id]
    assert x_label[-1] == f"|grad| {np.linalg.norm(x.grad.data):.3g}"
    for k, lab in nodes.items():
        if lab[0] in ("Mul", "Sum"):
            assert lab[-1].startswith("|grad| ")
        if lab[0] == "const":
            assert "|grad|" not in lab[-1]


def test_render_writes_dot_and_graphviz_files(tmp_path):
    x = _t((2, 2), 3, "x")
    files = viz.render(viz.to_dot((x @ x).sum()), tmp_path / "g", formats=("svg",))
    assert open(files["dot"]).read().startswith("digraph")
    if viz.have_graphviz():
        assert open(files["svg"]).read().lstrip().startswith(("<?xml", "<svg", "<!DOCTYPE"))
    else:
        assert "apt-get install graphviz" in files["missing"]


def _fake_graphviz(tmp_path, body):
    exe = tmp_path / "fake-dot"
    exe.write_text("#!/bin/sh\n" + body + "\n")
    exe.chmod(0o755)
    return str(exe)


def test_render_failure_leaves_only_the_dot_file(tmp_path, monkeypatch):
    # a Graphviz that fails after starting to write: no half-written or temporary file remains
    out = tmp_path / "out"
    monkeypatch.setattr(viz, "have_graphviz", lambda: _fake_graphviz(
        tmp_path, 'while [ "$1" != "-o" ]; do shift; done; echo "<sv" > "$2"; echo "syntax error in line 3" >&2; exit 1'))
    x = _t((2,), 3, "x")
    with pytest.raises(RuntimeError, match=r"graphviz failed to render .*g\.svg: syntax error in line 3"):
        viz.render(viz.to_dot(x.sum()), out / "g", formats=("svg",))
    assert sorted(os.listdir(out)) == ["g.dot"]


def test_render_with_graphviz_renames_its_output_into_place(tmp_path, monkeypatch):
    out = tmp_path / "out"
    monkeypatch.setattr(viz, "have_graphviz", lambda: _fake_graphviz(
        tmp_path, 'while [ "$1" != "-o" ]; do shift; done; echo "<svg/>" > "$2"'))
    files = viz.render(viz.to_dot(_t((2,), 3, "x").sum()), out / "g", formats=("svg",))
    assert files == {"dot": str(out / "g.dot"), "svg": str(out / "g.svg")}
    assert sorted(os.listdir(out)) == ["g.dot", "g.svg"] and (out / "g.svg").read_text() == "<svg/>\n"


# ------------------------------------------------------------------------------ backward trace

def _shared_graph():
    """x feeds two branches that meet again: gradients accumulate at x and at h."""
    x, w = _t((5, 4), 4, "x"), _t((4, 3), 5, "w")
    h = x @ w
    a = h.tanh()
    b = h * h
    out = (a * b + x.sum() * a).mean()
    inter = [h, a, b, out]
    return x, w, inter, out


def test_trace_order_is_reverse_topological_and_norms_match_gradients():
    x, w, inter, out = _shared_graph()
    for t_ in inter:
        t_.retain_grad()
    with trace() as t:
        out.backward()
    nodes = {e.node_id: e for e in t.entries}
    order = autograd.topological_order([out])
    assert set(nodes) == {id(n) for n in order if n._ctx is not None}  # each op node once
    for e in t.entries:
        node = e.node
        for parent in node._ctx.inputs:
            if parent._ctx is not None and parent.requires_grad:
                # a node is visited only after every node that uses it
                assert nodes[id(parent)].step > e.step
        assert e.op == node._ctx.name
        assert e.output_shape == node.shape
        assert [i["shape"] for i in e.inputs] == [p.shape for p in node._ctx.inputs]
    for n in inter:
        assert nodes[id(n)].grad_norm == pytest.approx(np.linalg.norm(n.grad.data), rel=1e-12)
    # local gradients of one visit: the norm of each gradient handed to each input
    mm = nodes[id(inter[0])]
    assert mm.input_grad_norms[1] == pytest.approx(np.linalg.norm(w.grad.data), rel=1e-12)
    # x is used by MatMul and Sum: one of its two gradients was added to a pending one
    x_uses = [(e, i) for e in t.entries for i, inp in enumerate(e.inputs) if inp["id"] == id(x)]
    assert len(x_uses) == 2
    assert sorted(e.accumulated[i] for e, i in x_uses) == [False, True]
    assert all(e.seconds >= 0 for e in t.entries)


def test_trace_table_and_json():
    x, w, inter, out = _shared_graph()
    with trace() as t:
        out.backward()
    text = str(t)
    for op in ("MatMul", "Tanh", "Mul", "Sum"):
        assert op in text
    assert len(text.splitlines()) == len(t) + 4  # title, column names, rule, note
    doc = json.loads(t.to_json())
    assert [e["op"] for e in doc["entries"]] == [e.op for e in t.entries]
    assert doc["entries"][0]["grad_norm"] == 1.0


# ------------------------------------------------------------------------------ hooks

def test_hook_that_doubles_a_gradient_doubles_the_leafs_gradient():
    def run(hook_on):
        x = Tensor(np.array([1.0, -2.0, 3.0]), requires_grad=True)
        h = x * 3.0
        if hook_on == "leaf":
            x.register_hook(lambda g: g * 2)
        elif hook_on == "intermediate":
            h.register_hook(lambda g: g * 2)
        (h * h).sum().backward()
        return x.grad.data

    base = run(None)
    np.testing.assert_allclose(base, 18 * np.array([1.0, -2.0, 3.0]))
    np.testing.assert_allclose(run("leaf"), 2 * base)
    np.testing.assert_allclose(run("intermediate"), 2 * base)


def test_hook_sees_the_gradient_and_can_be_removed():
    x = Tensor(np.ones(3), requires_grad=True)
    seen = []
    handle = x.register_hook(lambda g: seen.append(g.data.copy()))
    (x * 5.0).sum().backward()
    np.testing.assert_allclose(seen[0], [5.0, 5.0, 5.0])
    handle.remove()
    x.grad = None
    (x * 5.0).sum().backward()
    assert len(seen) == 1


def test_retain_grad_keeps_an_intermediate_gradient():
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    h = x * x
    k = x * x
    h.retain_grad()
    (h * 3.0 + k).sum().backward()
    np.testing.assert_allclose(h.grad.data, [3.0, 3.0])
    assert k.grad is None  # not retained: only leaves keep gradients by default
    np.testing.assert_allclose(x.grad.data, [8.0, 16.0])


def test_module_forward_hooks_see_and_replace_outputs():
    layer = nn.Linear(3, 2, rng=0, dtype=np.float64)
    seen = []
    h1 = layer.register_forward_hook(lambda m, inputs, out: seen.append((m, inputs[0].shape, out.shape)))
    x = Tensor(np.ones((4, 3)))
    y = layer(x)
    assert seen == [(layer, (4, 3), (4, 2))]
    h2 = layer.register_forward_hook(lambda m, inputs, out: out * 0.0)
    assert np.all(layer(x).data == 0)
    h2.remove()
    np.testing.assert_allclose(layer(x).data, y.data)
    h1.remove()
    layer(x)
    assert len(seen) == 3  # three calls seen before the removal


# ------------------------------------------------------------------------------ anomaly detection

def _log_of_zero(x):
    y = x - x
    return y.log()  # the anomaly: log(0) = -inf


def test_detect_anomaly_points_at_log_of_zero_by_op_and_line():
    x = _t((3,), 6)
    with pytest.raises(AnomalyError) as err:
        with detect_anomaly():
            _log_of_zero(x)
    e = err.value
    assert e.op == "Log" and e.phase == "forward"
    assert e.site.filename == __file__
    assert e.site.lineno == _log_of_zero.__code__.co_firstlineno + 2
    assert "y.log()" in e.site.code
    msg = str(e)
    assert "Log produced -inf" in msg and f"test_instruments.py:{e.site.lineno}" in msg


def _sqrt(x):
    return x.sqrt()  # fine forward at 0, but d sqrt(x)/dx = inf there


@pytest.mark.filterwarnings("ignore:divide by zero")
def test_detect_anomaly_in_backward_names_the_op_and_its_creation_line():
    x = Tensor(np.array([0.0, 4.0]), requires_grad=True)
    with pytest.raises(AnomalyError) as err:
        with detect_anomaly():
            _sqrt(x).sum().backward()
    e = err.value
    assert e.phase == "backward" and e.op == "Sqrt"
    assert e.site.lineno == _sqrt.__code__.co_firstlineno + 1
    assert "Sqrt backward" in str(e)
    assert x.grad is None  # raised before the bad gradient reached the leaf


class _MaskDiagonal(tr.Function):
    """y = x with -inf on the diagonal, on purpose (a self-mask); the diagonal gets no gradient."""
    anomaly_allows_inf = True

    @staticmethod
    def forward(ctx, x):
        y = x.copy()
        np.fill_diagonal(y, -np.inf)
        return y

    @staticmethod
    def backward(ctx, g):
        return g * (1.0 - np.eye(g.shape[0]))


def test_detect_anomaly_allows_masks_and_is_off_by_default():
    z = _t((4, 4), 7)
    mask = np.where(np.eye(4, dtype=bool), -np.inf, 0.0)
    with detect_anomaly():
        loss = F.cross_entropy(z + mask, np.array([1, 2, 3, 0]))  # an inf passed on, not made
        loss.backward()
        loss2 = F.cross_entropy(_MaskDiagonal.apply(z), np.array([1, 2, 3, 0]))  # made on purpose
        loss2.backward()
    assert np.isfinite(loss.item()) and loss.item() == pytest.approx(loss2.item())
    # outside the block nothing is checked: log(0) just gives -inf
    assert np.isneginf(_log_of_zero(_t((2,), 9)).data).all()


def test_detect_anomaly_flags_nan_in_a_leaf():
    x = Tensor(np.array([1.0, np.nan]), requires_grad=True)
    x.name = "bad"
    with pytest.raises(AnomalyError, match="leaf tensor 'bad'.*contains NaN"):
        with detect_anomaly():
            x * 2.0


# ------------------------------------------------------------------------------ profiler

def test_profiler_counts_matmul_flops_as_2mnk():
    M, K, N = 7, 5, 3
    a, b = _t((M, K), 10), _t((K, N), 11)
    with profile() as p:
        c = a @ b
        c.backward(np.ones((M, N)))
    mm = p.stats["MatMul"]
    assert mm.forward_calls == 1 and mm.backward_calls == 1
    assert mm.forward_flops == 2 * M * N * K
    assert mm.backward_flops == 2 * (2 * M * N * K)  # dA and dB are one matmul each
    assert mm.forward_bytes == (M * K + K * N + M * N) * 8
    assert p.kernels["matmul"][0] == 3  # one forward and two backward kernel calls
    assert mm.kernel_seconds > 0 and mm.kernel_seconds <= mm.seconds + 1e-6
    assert backend.current() is backend._current  # the timing proxy is gone after the block


def test_profiler_flops_of_other_ops_and_table():
    x = _t((4, 6), 12)
    with profile() as p:
        y = x.relu().softmax(-1).sum()
        y.backward()
    assert p.stats["ReLU"].forward_flops == 24
    assert p.stats["Softmax"].forward_flops == 5 * 24
    assert p.stats["Softmax"].backward_flops == 4 * 24  # one SoftmaxGrad kernel
    text = p.table()
    for word in ("ReLU", "Softmax", "Sum", "TOTAL", "kernel", "GFLOP/s"):
        assert word in text
    assert p.wall_seconds >= p.op_seconds


def test_profiler_counts_fused_mse_flops():
    x, t = _t((4, 6), 12), _t((4, 6), 13)
    with profile() as p:
        tr.functional.mse_loss(x, t).backward()
    assert p.stats["MSELoss"].forward_flops == 3 * 24  # subtract, square, add per element


def test_profiler_user_function_has_unknown_flops():
    class Cube(tr.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x ** 3

        @staticmethod
        def backward(ctx, g):
            x, = ctx.saved_tensors
            return g * 3 * x * x

    x = _t((3,), 13)
    with profile() as p:
        Cube.apply(x).sum().backward()
    assert p.stats["Cube"].forward_flops is None and p.stats["Cube"].flops is None
    assert "?" in p.table()


def test_chrome_trace_is_valid_and_nested(tmp_path):
    a, b = _t((8, 4), 14), _t((4, 8), 15)
    with profile() as p:
        (a @ b).relu().sum().backward()
    path = p.export_chrome_trace(tmp_path / "trace.json")
    doc = json.load(open(path))
    events = [e for e in doc["traceEvents"] if e["ph"] == "X"]
    assert {"forward", "backward", "kernel"} <= {e["cat"] for e in events}
    for e in events:
        assert e["dur"] >= 0 and e["ts"] >= 0 and isinstance(e["name"], str)
    # each kernel call lies inside the op step that made it
    steps = [e for e in events if e["cat"] in ("forward", "backward")]
    for k in (e for e in events if e["cat"] == "kernel"):
        assert any(s["ts"] <= k["ts"] and k["ts"] + k["dur"] <= s["ts"] + s["dur"] + 1e-3 for s in steps)


# ------------------------------------------------------------------------------ gradient diff

class WrongSquare(tr.Function):
    """y = x^2 with a deliberately wrong backward (forgets the factor 2)."""
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx, g):
        x, = ctx.saved_tensors
        return g * x


def _net(x, w1, w2, square=None):
    h = (x @ w1).tanh()
    s = square.apply(h) if square else h * h
    return ((s @ w2).sigmoid() + h.sum()).mean()


def test_compare_gradients_finds_the_one_broken_op():
    x, w1, w2 = _t((4, 3), 16), _t((3, 5), 17, "w1"), _t((5, 2), 18, "w2")
    report = compare_gradients(lambda x, w1, w2: _net(x, w1, w2, WrongSquare), [x, w1, w2])
    assert report.broken == ["WrongSquare"]
    assert not report.ok
    broken = report.broken_nodes[0]
    assert broken.ok  # the gradient arriving at the broken op is right ...
    rows = {r.index: r for r in report.rows}
    assert not rows[broken.input_indices[0]].ok  # ... the one it passes on is wrong
    assert report.first_divergence is broken
    # everything between the output and the broken op matches
    assert all(r.ok for r in report.rows if r.index < broken.index)
    assert all(r.local_ok for r in report.rows if r.op not in (None, "WrongSquare"))
    assert broken.site is not None and broken.site.filename == __file__
    text = str(report)
    assert "broken op: WrongSquare" in text and "WRONG" in text


def test_compare_gradients_passes_a_correct_graph_and_matches_retained_grads():
    x, w1, w2 = _t((4, 3), 19), _t((3, 5), 20, "w1"), _t((5, 2), 21, "w2")
    report = compare_gradients(_net, [x, w1, w2])
    assert report.ok and report.broken == [] and report.first_divergence is None
    assert "all gradients match" in str(report)
    assert [r.op for r in report.rows][0] == "Mul"  # the output (mean = sum * 1/n) comes first
    assert {r.label for r in report.rows if r.op is None} == {"input 0", "input 1 'w1'", "input 2 'w2'"}
    # the analytic norms are the norms of the real gradients
    out = _net(x, w1, w2)
    out.backward()
    by_label = {r.label: r for r in report.rows}
    assert by_label["input 1 'w1'"].analytic_norm == pytest.approx(np.linalg.norm(w1.grad.data))


def test_compare_gradients_with_a_minus_inf_mask_and_cross_entropy():
    z1, z2 = _t((4, 3), 23), _t((4, 3), 24)
    report = compare_gradients(F.nt_xent_loss, [z1, z2])  # -inf self-mask, concat, norms, fused CE
    assert report.ok, str(report)


def test_compare_gradients_float32_model_and_non_scalar_output():
    model = nn.Sequential(nn.Linear(6, 4, rng=0), nn.ReLU(), nn.Linear(4, 3, rng=1))
    list(model.named_parameters())
    x = Tensor(np.random.default_rng(22).standard_normal((5, 6)).astype(np.float32))
    report = compare_gradients(lambda x: model(x), [x])
    assert report.ok, str(report)
    labels = {r.label for r in report.rows}
    assert {"0.weight", "0.bias", "2.weight", "2.bias"} <= labels


# ------------------------------------------------------------------------------ command and tour

def test_graph_command_writes_files(tmp_path, capsys):
    from tinygrad_rep.cli import main
    assert main(["graph", "--out", str(tmp_path), "--batch-size", "4"]) == 0
    text = (tmp_path / "graph.dot").read_text()
    nodes, edges = _parse_dot(text)
    assert len(nodes) == 11 and len(edges) == 10  # images, 4 parameters, 6 ops
    assert {"0.weight", "0.bias", "2.weight", "2.bias", "CrossEntropy"} <= {v[0] for v in nodes.values()}
    assert (tmp_path / "backward_trace.json").exists()
    if viz.have_graphviz():
        assert (tmp_path / "graph.svg").exists() and (tmp_path / "graph.png").exists()
    out = capsys.readouterr().out
    assert "CrossEntropy" in out and "graph.dot" in out


def test_instruments_tour(tmp_path, capsys):
    from tinygrad_rep.instruments.tour import instruments_tour
    summary = instruments_tour(str(tmp_path), repeats=1)
    printed = capsys.readouterr().out
    assert "digraph" in printed and "backward trace" in printed and "TOTAL" in printed
    assert "autoencoder step" in summary and "11 nodes / 10 edges" in summary
    assert os.path.exists(tmp_path / "autoencoder_step.chrome_trace.json")
