"""Instruments that show values: the numbers in graph drawings and in a trace that kept its
arrays are compared with values and gradients computed by hand with numpy (signs included),
and with PyTorch's gradients where it is installed; the accumulation marker and the names of
intermediate tensors; the `graph` command on the user's own expression and module."""
import json
import re

import numpy as np
import pytest

import tinygrad_rep as tr
from tinygrad_rep import Tensor, autograd, nn, viz
from tinygrad_rep.cli import main

NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"


@pytest.fixture(autouse=True)
def _no_observers_left():
    yield
    assert autograd._observers == [], "an instrument was left active"


def _leaf(values, name):
    t = Tensor(np.array(values, dtype=np.float64), requires_grad=True)
    t.name = name
    return t


def _labels(dot):
    """{first label line: {"value": [...], "grad": [...], "lines": [...]}} of the graph's nodes."""
    out = {}
    for m in re.finditer(r'^\s*n\d+ \[label="((?:[^"\\]|\\.)*)"', dot, re.M):
        lines = m.group(1).split("\\n")
        node = {"lines": lines}
        for line in lines[2:]:
            key, _, rest = line.partition(" ")
            if key in ("value", "grad"):
                node[key] = rest
        out[lines[0]] = node
    return out


def _numbers(text):
    return np.array([float(s) for s in re.findall(NUMBER, text)])


def _small_net():
    """h = x @ W + b, a = tanh(h), L = sum(a * a): a is used twice by one op."""
    x = _leaf([0.5, -1.0, 2.0], "x")
    W = _leaf([[0.3, -0.8], [1.1, 0.4], [-0.6, 0.2]], "W")
    b = _leaf([-0.1, 0.25], "b")
    h = x @ W + b
    h.name = "h"
    a = h.tanh()
    a.name = "a"
    loss = (a * a).sum()
    return (x, W, b), (h, a), loss


def _by_hand(x, W, b):
    """Forward values and gradients of _small_net, derived with the chain rule in numpy."""
    h = x @ W + b
    a = np.tanh(h)
    dL_da = 2 * a                      # d(sum a*a)/da: the two uses of a add up (a + a)
    dL_dh = dL_da * (1 - a ** 2)       # tanh' = 1 - tanh^2
    return {"h": (h, dL_dh), "a": (a, dL_da), "x": (x, W @ dL_dh), "W": (W, np.outer(x, dL_dh)),
            "b": (b, dL_dh), "L": (np.sum(a * a), 1.0)}


# ------------------------------------------------------------------------------ drawings

def test_drawn_values_and_gradients_equal_the_hand_computed_ones():
    (x, W, b), (h, a), loss = _small_net()
    with tr.trace(keep_values=True) as t:
        loss.backward()
    dot = viz.to_dot(loss, trace=t, digits=12)
    nodes = _labels(dot)
    want = _by_hand(x.data, W.data, b.data)
    assert set(nodes) >= {"x", "W", "b", "h = Add", "a = Tanh", "Mul", "Sum", "MatMul"}
    for label, key in [("x", "x"), ("W", "W"), ("b", "b"), ("h = Add", "h"), ("a = Tanh", "a"), ("Sum", "L")]:
        value, grad = want[key]
        np.testing.assert_allclose(_numbers(nodes[label]["value"]), np.ravel(value), rtol=1e-10)
        np.testing.assert_allclose(_numbers(nodes[label]["grad"]), np.ravel(grad), rtol=1e-10)
    # signs survive: W's gradient has both signs here, and so does its drawing
    drawn = _numbers(nodes["W"]["grad"])
    assert (drawn < 0).any() and (drawn > 0).any()
    assert np.array_equal(np.sign(drawn), np.sign(np.ravel(want["W"][1])))
    # a is used twice by one Mul: the drawing says its gradient is a sum over two uses
    assert "used 2x: grads add up" in nodes["a = Tanh"]["lines"]


def test_to_dot_backward_runs_its_own_pass_and_leaves_grad_alone():
    (x, W, b), _, loss = _small_net()
    nodes = _labels(viz.to_dot(loss, backward=True, digits=12))
    want = _by_hand(x.data, W.data, b.data)
    assert x.grad is None and W.grad is None  # the drawing's pass does not touch .grad
    for label, key in [("x", "x"), ("W", "W"), ("h = Add", "h"), ("a = Tanh", "a")]:
        np.testing.assert_allclose(_numbers(nodes[label]["grad"]), np.ravel(want[key][1]), rtol=1e-10)
    # after two backward calls .grad holds twice the gradient; the drawing of a traced pass
    # shows that pass's gradient
    loss.backward()
    loss.backward()
    np.testing.assert_allclose(W.grad.data, 2 * want["W"][1])
    nodes = _labels(viz.to_dot(loss, backward=True, digits=12))
    np.testing.assert_allclose(_numbers(nodes["W"]["grad"]), np.ravel(want["W"][1]), rtol=1e-10)
    with pytest.raises(ValueError, match="give trace= or backward=True, not both"):
        viz.to_dot(loss, trace=viz.gradient_trace(loss), backward=True)


def test_drawn_gradients_equal_pytorchs():
    torch = pytest.importorskip("torch")
    (x, W, b), _, loss = _small_net()
    with tr.trace(keep_values=True) as t:
        loss.backward()
    nodes = _labels(viz.to_dot(loss, trace=t, digits=12))
    tx, tW, tb = (torch.tensor(v.data, requires_grad=True) for v in (x, W, b))
    ta = torch.tanh(tx @ tW + tb)
    (ta * ta).sum().backward()
    for label, tt in [("x", tx), ("W", tW), ("b", tb)]:
        np.testing.assert_allclose(_numbers(nodes[label]["grad"]), tt.grad.numpy().ravel(), rtol=1e-10)


def test_values_without_a_trace_show_leaf_gradients_and_large_tensors_are_summarised():
    rng = np.random.default_rng(0)
    big = Tensor(rng.standard_normal((4, 5)), requires_grad=True)
    big.name = "big"
    out = (big * -2.0).sum()
    out.backward()
    nodes = _labels(viz.to_dot(out, values=True, max_elements=8, digits=10))
    summary = nodes["big"]["value"]
    assert summary.startswith("min ") and " mean " in summary and " max " in summary
    np.testing.assert_allclose(_numbers(summary), [big.data.min(), big.data.mean(), big.data.max()], rtol=1e-9)
    # dL/dbig = -2 everywhere: min = mean = max = -2, sign kept
    np.testing.assert_allclose(_numbers(nodes["big"]["grad"]), [-2.0, -2.0, -2.0])
    assert "grad" not in nodes["Mul"]  # an intermediate's gradient needs a trace (or retain_grad)
    np.testing.assert_allclose(_numbers(nodes["Sum"]["value"]), [-2 * big.data.sum()], rtol=1e-9)


def test_legend_explains_colours_shapes_and_lines():
    (x, W, b), _, loss = _small_net()
    dot = viz.to_dot(loss, values=True)
    legend = next(line for line in dot.splitlines() if line.lstrip().startswith("key ["))
    # each colour of the drawing is shown, with what it means
    for colour, meaning in [("#dbe9f6", "box: the output of an op"),
                            ("#fff2c8", "yellow ellipse: a leaf that requires grad"),
                            ("#cc0000", "red outline: a non-finite gradient")]:
        assert f'COLOR="{colour}"' in legend and meaning in legend
    for words in ("dashed ellipse: a constant", "double outline: the drawn output L",
                  "value: the tensor's value", "grad: dL/d(tensor)",
                  "L2 norm of the gradient", "min / mean / max", "its gradient is the sum over the uses"):
        assert words in legend, words
    assert "->" not in legend  # the legend adds no edges to the graph
    assert "key [" not in viz.to_dot(loss, legend=False)
    assert "value:" not in viz.to_dot(loss, values=False)  # without values the legend does not mention them


def test_module_parameters_are_named_in_drawings_without_asking():
    model = nn.Sequential(nn.Linear(3, 2, rng=0, dtype=np.float64), nn.ReLU(), nn.Linear(2, 1, rng=1, dtype=np.float64))
    loss = model(Tensor(np.ones((4, 3)))).sum()
    assert {"0.weight", "0.bias", "2.weight", "2.bias"} <= set(_labels(viz.to_dot(loss)))


def test_tr_viz_is_the_instruments_module():
    import tinygrad_rep.viz as by_path
    from tinygrad_rep.instruments import viz as inside
    assert tr.viz is by_path is inside and tr.viz.to_dot is inside.to_dot


# ------------------------------------------------------------------------------ traces with values

def test_trace_keeps_arriving_sent_and_local_gradients():
    x = _leaf([1.0, -2.0, 0.5], "x")
    w = _leaf([3.0], "w")  # broadcast against x: its gradient is summed back
    e = (x * w).exp()
    e.name = "e"
    loss = e.sum()
    with tr.trace(keep_values=True) as t:
        loss.backward()
    steps = {entry.op: entry for entry in t}
    mul, exp, total = steps["Mul"], steps["Exp"], steps["Sum"]
    xw = x.data * w.data
    # the gradient arriving at each node: dL/d(its output)
    np.testing.assert_array_equal(total.grad, 1.0)
    np.testing.assert_allclose(exp.grad, np.ones(3))
    np.testing.assert_allclose(mul.grad, np.exp(xw))
    # local derivatives of elementwise ops, as arrays of the output's shape
    np.testing.assert_allclose(exp.local_grads[0], np.exp(xw))
    np.testing.assert_allclose(mul.local_grads[0], [3.0, 3.0, 3.0])     # d(xw)/dx = w
    np.testing.assert_allclose(mul.local_grads[1], x.data)               # d(xw)/dw = x
    assert total.local_grads is None                                     # a reduction: a Jacobian
    # the gradient sent to each input is arriving x local, summed back where it was broadcast
    np.testing.assert_allclose(mul.input_grads[0], mul.grad * mul.local_grads[0])
    np.testing.assert_allclose(mul.input_grads[1], [np.sum(mul.grad * mul.local_grads[1])])
    np.testing.assert_allclose(mul.input_grads[0], x.grad.data)
    np.testing.assert_allclose(mul.input_grads[1], w.grad.data)
    np.testing.assert_allclose(exp.value, np.exp(xw))
    # norms are the L2 norms of these arrays
    assert mul.grad_norm == pytest.approx(np.linalg.norm(mul.grad))
    assert mul.input_grad_norms[1] == pytest.approx(abs(w.grad.data[0]))
    grads = t.gradients()
    np.testing.assert_allclose(grads[id(x)], x.grad.data)
    np.testing.assert_allclose(grads[id(e)], np.ones(3))


def test_trace_columns_say_what_they_hold():
    x = _leaf([1.0, 2.0], "x")
    with tr.trace() as t:
        (x * x).sum().backward()
    head = str(t).splitlines()[1]
    assert "L2(grad arriving)" in head and "L2(grad sent to each input)" in head
    note = str(t).splitlines()[-1]
    assert "grad arriving = dL/d(node output)" in note and "local derivative" in note
    doc = json.loads(t.to_json())
    assert "L2 norm of the gradient arriving" in doc["columns"]["grad_norm"]
    assert "value" not in doc["entries"][0]  # norms only, unless values are kept
    with pytest.raises(ValueError, match=r"keep_values=True"):
        t.details()


def test_trace_json_and_details_hold_the_arrays():
    x = _leaf([1.0, -2.0], "x")
    h = x * 3.0
    h.name = "h"
    with tr.trace(keep_values=True) as t:
        (h * h).sum().backward()
    doc = json.loads(t.to_json())
    by_op = {(e["name"] or e["op"]): e for e in doc["entries"]}
    assert by_op["h"]["value"] == [3.0, -6.0]
    assert by_op["h"]["grad"] == [6.0, -12.0]                 # dL/dh = 2h
    assert by_op["h"]["input_grads"][0] == [18.0, -36.0]      # dL/dx = 2h * 3
    assert by_op["h"]["local_grads"][0] == [3.0, 3.0]
    text = t.details()
    assert "#2 h = Mul -> (2,) float64" in text
    assert re.search(r"grad arriving dL/d\(output\) +\[6, -12\]", text)
    assert re.search(r"grad sent +\[18, -36\]  = arriving x local", text)


def test_accumulation_marker_when_one_op_uses_a_tensor_twice():
    x = _leaf([1.0, -2.0, 3.0], "x")
    h = x * 3.0
    h.name = "h"
    with tr.trace() as t:
        (h * h).sum().backward()
    square = next(e for e in t if e.op == "Mul" and e.name is None)
    assert [i["label"] for i in square.inputs] == ["h", "h"]
    assert square.accumulated == [False, True]  # the second gradient is added to the first
    row = next(line for line in str(t).splitlines() if line.split()[1:2] == ["Mul"])
    assert row.split()[-2].endswith("+")
    np.testing.assert_allclose(x.grad.data, 18 * x.data)  # d/dx (3x)^2


def test_names_of_intermediates_appear_in_traces():
    x = _leaf([1.0, 2.0], "x")
    h = x * 2.0
    h.name = "h"
    with tr.trace() as t:
        h.relu().sum().backward()
    text = str(t)
    assert re.search(r"^2 +h = Mul ", text, re.M)
    assert "h(2,)" in text  # as the ReLU's input
    assert json.loads(t.to_json())["entries"][2]["name"] == "h"


class _Square(tr.Function):
    """y = x^2, declared elementwise so traces show its local derivative 2x."""
    elementwise = True

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx, g):
        x, = ctx.saved_tensors
        return g * 2.0 * x


def test_a_users_elementwise_function_gets_its_local_derivative():
    x = _leaf([1.5, -0.5], "x")
    with tr.trace(keep_values=True) as t:
        _Square.apply(x).sum().backward()
    sq = next(e for e in t if e.op == "_Square")
    np.testing.assert_allclose(sq.local_grads[0], [3.0, -1.0])


def test_local_derivatives_are_not_seen_by_other_instruments():
    # the extra backward that computes local derivatives applies ops (Exp's backward multiplies);
    # a profiler running beside the trace must count only the user's own forward ops
    def run(keep):
        x, w = _leaf([1.0, -2.0], "x"), _leaf([0.5, 0.5], "w")
        with tr.profile() as p, tr.trace(keep_values=keep) as t:
            (x * w).exp().sum().backward()
        return p, t
    p, t = run(True)
    plain, _ = run(False)
    assert p.stats["Mul"].forward_calls == plain.stats["Mul"].forward_calls == 1
    assert p.stats["Mul"].backward_calls == plain.stats["Mul"].backward_calls
    np.testing.assert_allclose(next(e for e in t if e.op == "Exp").local_grads[0], np.exp([0.5, -1.0]))


# ------------------------------------------------------------------------------ the graph command

def test_graph_command_draws_an_expression_with_hand_checked_values(tmp_path, capsys):
    status = main(["graph", "--out", str(tmp_path), "--formats", "", "--expr", "h = x * w; (h * h).sum()",
                   "--input", "x=1,-2,3", "--input", "w=0.5"])
    assert status == 0
    nodes = _labels((tmp_path / "graph.dot").read_text())
    x, w = np.array([1.0, -2.0, 3.0]), 0.5
    h = x * w
    np.testing.assert_allclose(_numbers(nodes["h = Mul"]["value"]), h)
    np.testing.assert_allclose(_numbers(nodes["h = Mul"]["grad"]), 2 * h)
    np.testing.assert_allclose(_numbers(nodes["x"]["grad"]), 2 * h * w)
    np.testing.assert_allclose(_numbers(nodes["w"]["grad"]), [np.sum(2 * h * x)])  # 14
    np.testing.assert_allclose(_numbers(nodes["Sum"]["value"]), [np.sum(h * h)])
    trace_text = (tmp_path / "backward_trace.txt").read_text()
    assert "grad sent" in trace_text and "summed over broadcast axes" in trace_text
    assert "h = Mul" in capsys.readouterr().out


def test_graph_command_draws_a_users_module(tmp_path):
    (tmp_path / "mymodel.py").write_text(
        "import numpy as np\nimport tinygrad_rep as tr\n"
        "def make():\n"
        "    return tr.nn.Sequential(tr.nn.Linear(2, 2, rng=0, dtype=np.float64), tr.nn.Tanh())\n")
    out = tmp_path / "out"
    assert main(["graph", "--out", str(out), "--formats", "", "--module", f"{tmp_path / 'mymodel.py'}:make",
                 "--input", "x=[[1, -1]]"]) == 0
    nodes = _labels((out / "graph.dot").read_text())
    assert {"x", "0.weight", "0.bias", "Tanh"} <= set(nodes)
    import importlib.util
    spec = importlib.util.spec_from_file_location("mymodel_check", tmp_path / "mymodel.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    w = mod.make()[0].weight.data  # the same seed: the same weights
    y = np.tanh(np.array([[1.0, -1.0]]) @ w)
    np.testing.assert_allclose(_numbers(nodes["Tanh"]["value"]), y.ravel(), rtol=1e-3)
    # L = sum(y): dL/dW = x^T (1 - y^2)
    np.testing.assert_allclose(_numbers(nodes["0.weight"]["grad"]),
                               (np.array([[1.0], [-1.0]]) @ (1 - y ** 2)).ravel(), rtol=1e-3)


def test_graph_command_without_values_and_with_a_random_module_input(tmp_path):
    (tmp_path / "net.py").write_text("import tinygrad_rep as tr\nnet = tr.nn.Linear(3, 2, rng=0)\n")
    out = tmp_path / "out"
    assert main(["graph", "--out", str(out), "--formats", "", "--no-values", "--module",
                 f"{tmp_path / 'net.py'}:net", "--input-shape", "4,3"]) == 0
    nodes = _labels((out / "graph.dot").read_text())
    assert nodes["input"]["lines"][1] == "(4, 3) float32"  # the module's dtype, the shape asked for
    assert not any("value" in n or "grad" in n for n in nodes.values())
    assert nodes["weight"]["lines"][-1].startswith("|grad| ")  # norms only
    assert "backward trace, values" not in (out / "backward_trace.txt").read_text()  # no arrays


@pytest.mark.parametrize("argv, message", [
    (["--expr", "x *", "--input", "x=1"], "--expr: syntax error"),
    (["--expr", "x * y", "--input", "x=1"], "--expr failed: NameError: name 'y' is not defined"),
    (["--expr", "x.sum()", "--input", "x=1,a"], "--input x: VALUES must be a number or a list of numbers"),
    (["--expr", "x.sum()", "--input", "1x=2"], "--input must be NAME=VALUES"),
    (["--input", "x=1"], "--input needs --expr or --module"),
    (["--module", "no_such_module_here:net", "--input", "x=1"], "--module no_such_module_here:net: ModuleNotFoundError"),
    (["--expr", "np.ones(3)"], "gave a ndarray, not a Tensor"),
])
def test_graph_command_bad_input_is_one_line(tmp_path, capsys, argv, message):
    assert main(["graph", "--out", str(tmp_path)] + argv) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
