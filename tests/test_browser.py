"""The HTML pages in a real Chromium: the backprop explorer (a small expression, a 2-layer MLP,
a graph of thousands of nodes) and a run report. Gradients shown in the pages are compared
with ones computed here in numpy, independently of the engine. One browser per module; the
tests skip with the reason where no browser can be installed."""
import json
import os
import struct
import zlib

import numpy as np
import pytest

import tinygrad_rep as tr
from tinygrad_rep import autograd
from tinygrad_rep.instruments import explorer
from tinygrad_rep.report_html import HtmlReport
from browser import broken_images, broken_links, browser_context, open_page


@pytest.fixture(scope="module")
def browser():
    yield from browser_context()


def panel_numbers(page, selector):
    return [float(t) for t in page.locator(selector).all_inner_texts()]


def graph_json(page):
    return json.loads(page.locator("#tr-graph").text_content())


def ids_of(output):
    order = autograd.topological_order([output], follow=lambda t: True)
    return {id(t): i for i, t in enumerate(order)}


# ------------------------------------------------------------------ a small expression
X, W = np.array([1.0, -2.0, 3.0]), np.array([0.5, 0.25, -1.0])


def small_expression():
    x = tr.Tensor(X, requires_grad=True, dtype=np.float64)
    w = tr.Tensor(W, requires_grad=True, dtype=np.float64)
    x.name, w.name = "x", "w"
    with tr.viz.recording() if hasattr(tr.viz, "recording") else explorer.recording():
        h = x * w
        h.name = "h"
        y = (h * h + h.relu()).sum()
    return x, w, h, y


@pytest.fixture(scope="module")
def small_page(browser, tmp_path_factory):
    x, w, h, y = small_expression()
    path = str(tmp_path_factory.mktemp("small") / "graph.html")
    explorer.explore(y, path)
    page, errors = open_page(browser, path)
    return page, errors, (x, w, h, y)


def test_small_expression_page_has_no_errors_and_draws_every_node(small_page):
    page, errors, (x, w, h, y) = small_page
    assert errors == []
    data = graph_json(page)
    drawn = page.evaluate("Array.from(document.querySelectorAll('#tr-canvas [data-node-id]'))"
                          ".map(e => +e.getAttribute('data-node-id'))")
    assert sorted(drawn) == [n["id"] for n in data["nodes"]]
    ids = ids_of(y)
    assert data["nodes"][ids[id(h)]]["name"] == "h" and data["nodes"][ids[id(h)]]["op"] == "Mul"
    assert data["nodes"][ids[id(h)]]["formula"] == "z = x * y;  dz/dx = y, dz/dy = x"
    src = data["nodes"][ids[id(h)]]["source"]
    assert os.path.basename(src["file"]) == "test_browser.py" and src["code"] == "h = x * w"


def test_clicking_a_node_shows_the_gradient_computed_by_hand(small_page):
    page, _, (x, w, h, y) = small_page
    ids = ids_of(y)
    hv = X * W
    dy_dh = 2 * hv + (hv > 0)            # d/dh of h*h + relu(h)
    expected = {x: dy_dh * W, w: dy_dh * X, h: dy_dh}
    for t, want in expected.items():
        page.click(f'#tr-canvas [data-node-id="{ids[id(t)]}"]')
        shown = panel_numbers(page, "#tr-node-panel .tr-grad .tr-num")
        np.testing.assert_allclose(shown, want, rtol=1e-5)  # the page prints 6 digits
        assert panel_numbers(page, "#tr-node-panel .tr-value .tr-num") == pytest.approx(t.numpy(), rel=1e-5)
    assert "x.py" not in page.inner_text("#tr-node-panel")


def test_step_through_follows_the_engine_order_and_ends_at_the_leaves(small_page):
    page, _, (x, w, h, y) = small_page
    ids = ids_of(y)
    engine = [ids[id(t)] for t in reversed(autograd.topological_order([y]))]
    page.click("#tr-reset")
    visited = []
    for _ in engine:
        page.click("#tr-next")
        visited.append(int(page.get_attribute("#tr-step", "data-step-node")))
        if visited[-1] == ids[id(h)]:
            # h is used three times (h * h and relu(h)): its gradients are summed here
            assert "3 contributions summed" in page.inner_text("#tr-step")
            total = panel_numbers(page, "#tr-step .tr-total .tr-num")
            np.testing.assert_allclose(total, 2 * X * W + (X * W > 0), rtol=1e-5)
    assert visited == engine
    # the contract: only drawn nodes carry data-node-id (the step box and links do not)
    assert page.locator("[data-node-id]").count() == len(graph_json(page)["nodes"])
    assert {visited[-1], visited[-2]} == {ids[id(x)], ids[id(w)]}
    assert "walk ends here" in page.inner_text("#tr-step")
    page.click("#tr-next")  # past the end: stays on the last step
    assert int(page.get_attribute("#tr-step", "data-step-node")) == visited[-1]


# ------------------------------------------------------------------ a 2-layer MLP on a batch
def mlp_by_hand(x, y, w1, b1, w2, b2):
    """Gradients of mean cross-entropy of relu(x w1 + b1) w2 + b2, in float64 numpy."""
    a = x @ w1 + b1
    r = np.maximum(a, 0)
    z = r @ w2 + b2
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    dz = p.copy()
    dz[np.arange(len(y)), y] -= 1
    dz /= len(y)
    dr = dz @ w2.T
    da = dr * (a > 0)
    return {"0.weight": x.T @ da, "0.bias": da.sum(0), "2.weight": r.T @ dz, "2.bias": dz.sum(0)}


def test_mlp_explorer_shows_each_parameter_gradient(browser, tmp_path):
    rng = np.random.default_rng(3)
    model = tr.nn.Sequential(tr.nn.Linear(4, 6), tr.nn.ReLU(), tr.nn.Linear(6, 3))
    xb, yb = rng.normal(size=(10, 4)).astype(np.float32), np.arange(10) % 3
    with explorer.recording():
        loss = tr.functional.cross_entropy(model(tr.Tensor(xb)), yb)
    path = str(tmp_path / "mlp.html")
    explorer.explore(loss, path, title="mlp")
    page, errors = open_page(browser, path)
    assert errors == []
    params = dict(model.named_parameters())
    want = mlp_by_hand(xb.astype(np.float64), yb, *[params[k].numpy().astype(np.float64)
                       for k in ("0.weight", "0.bias", "2.weight", "2.bias")])
    ids = ids_of(loss)
    for name, g in want.items():
        node = page.locator(f'#tr-canvas [data-node-id="{ids[id(params[name])]}"]')
        assert name in node.text_content()
        node.click()
        assert "param" in page.inner_text("#tr-node-panel .tr-facts")
        np.testing.assert_allclose(panel_numbers(page, "#tr-node-panel .tr-grad .tr-num"), g.ravel(),
                                   rtol=1e-4, atol=1e-6)
    assert model[0].weight.grad is None  # exploring does not touch .grad
    # ops are framed by the module that ran them: three boxes, Linear, ReLU, Linear
    assert page.locator(".tr-group").evaluate_all("gs => gs.map(g => g.textContent)") == \
        ["0 · Linear", "1 · ReLU", "2 · Linear"]
    relu = next(n for n in graph_json(page)["nodes"] if n["op"] == "ReLU")
    assert relu["module"] == {"path": "1", "type": "ReLU"}


def test_large_tensors_are_summarised_with_a_histogram(browser, tmp_path):
    x = tr.Tensor(np.linspace(-1, 1, 500), requires_grad=True, dtype=np.float64)
    y = (x * x).sum()
    path = str(tmp_path / "big.html")
    explorer.explore(y, path, max_values=64)
    data = json.loads(open(path).read().split('id="tr-graph">')[1].split("</script>")[0])
    leaf = data["nodes"][ids_of(y)[id(x)]]
    assert "values" not in leaf["grad"] and sum(leaf["grad"]["hist"]["counts"]) == 500
    assert leaf["grad"]["min"] == -2.0 and leaf["grad"]["max"] == 2.0
    page, errors = open_page(browser, path)
    page.click(f'#tr-canvas [data-node-id="{leaf["id"]}"]')
    assert errors == [] and page.locator("#tr-node-panel .tr-grad svg.tr-hist rect").count() == 20
    text = page.inner_text("#tr-node-panel .tr-grad")
    std = float(np.std(2 * np.linspace(-1, 1, 500)))
    assert text.startswith("min -2 · mean ") and f" · max 2 · std {std:.6g}" in text


def test_a_graph_of_thousands_of_nodes_opens_and_steps(browser, tmp_path):
    rng = np.random.default_rng(0)
    h = x = tr.Tensor(rng.normal(size=(8, 16)), requires_grad=True, dtype=np.float64)
    ws = [tr.Tensor(rng.normal(size=(16, 16)) * 0.25, requires_grad=True, dtype=np.float64) for _ in range(300)]
    for w in ws:
        h = (h @ w).tanh() + h * 0.5
    loss = (h * h).mean()
    path = str(tmp_path / "deep.html")
    explorer.explore(loss, path)
    page, errors = open_page(browser, path)
    n = len(graph_json(page)["nodes"])
    assert n > 1500 and errors == []
    assert page.locator("#tr-canvas [data-node-id]").count() == n
    page.click("#tr-next")
    assert int(page.get_attribute("#tr-step", "data-step-node")) == ids_of(loss)[id(loss)]


# ------------------------------------------------------------------ a run report
def tiny_png(path, w=3, h=2):
    raw = b"".join(b"\x00" + bytes([200, 30, 30] * w) for _ in range(h))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def test_report_page_images_load_and_links_resolve(browser, tmp_path):
    tiny_png(tmp_path / "loss.png")
    (tmp_path / "plots").mkdir()
    tiny_png(tmp_path / "plots" / "codes.png", 5, 4)
    (tmp_path / "graph.html").write_text("<!DOCTYPE html><title>g</title>")
    page_ = HtmlReport("run", folder=tmp_path)
    page_.heading("Results").table(["model", "mse"], [["ae", 0.0213], ["pca", 0.0250]],
                                   caption="held-out error", legend={"mse": "mean squared error"})
    page_.image("loss.png", "loss per epoch").image("plots/codes.png", "codes", inline=True)
    page_.link("graph.html", "explorer").link("https://example.org/", "elsewhere").machine({"backend": "numpy"})
    path = page_.write(str(tmp_path / "report.html"))
    page, errors = open_page(browser, path)
    assert errors == [] and broken_images(page) == [] and broken_links(page, path) == []
    assert page.locator("img").count() == 2 and page.locator("figcaption").all_inner_texts() == ["loss per epoch", "codes"]
    assert page.inner_text("table caption") == "held-out error"
    assert page.locator("script").count() == 0  # a document: readable without JavaScript
    # a missing file is caught by the checks
    (tmp_path / "graph.html").unlink()
    os.unlink(tmp_path / "loss.png")
    page.reload()
    assert broken_links(page, path) == ["graph.html"] and broken_images(page) == ["loss.png"]


def test_report_refuses_a_missing_image_and_a_ragged_table(tmp_path):
    page = HtmlReport("run", folder=tmp_path).image("nope.png", "missing")
    with pytest.raises(FileNotFoundError, match="nope.png"):
        page.write(str(tmp_path / "r.html"))
    assert not os.path.exists(tmp_path / "r.html")
    with pytest.raises(ValueError, match="row 1 has 1 cells for 2 columns"):
        HtmlReport("run").table(["a", "b"], [[1, 2], [3]])


def test_explore_rejects_what_is_not_a_tensor(tmp_path):
    with pytest.raises(TypeError, match="expected a Tensor output, got ndarray"):
        explorer.explore(np.ones(3), str(tmp_path / "g.html"))
    assert os.listdir(tmp_path) == []


def test_run_report_and_demo_index_pages(browser, tmp_path):
    from tinygrad_rep.report_html import demo_index, run_page
    run = tmp_path / "autoencoder-digits"
    run.mkdir()
    tiny_png(run / "loss.png")
    tiny_png(run / "codes.png", 4, 4)
    metrics = {"recon_mse": 0.0213, "bottleneck": 8, "backend": {"backend": "numpy"},
               "labels": {"all": {"labels": 1437, "probe": 0.91, "pca_probe": 0.88},
                          "1%": {"labels": 14, "probe": 0.52, "pca_probe": 0.49}},
               "legend": {"probe": "a linear probe on the codes"}, "reading": "the probe beats PCA by 3 points",
               "epoch_losses": [0.09, 0.05]}
    (run / "metrics.json").write_text(json.dumps(metrics))
    (run / "model.json").write_text("{}")
    report = run_page(str(run), "train autoencoder", summary="held-out MSE 0.0213")
    index = demo_index(str(tmp_path), [{"op": "mul", "max_error": 3e-11, "status": "pass"}])
    for path in (report, index):
        page, errors = open_page(browser, path)
        assert errors == [] and broken_images(page) == [] and broken_links(page, path) == []
        assert page.locator("script").count() == 0
    assert page.locator("img").count() == 2
    assert "a linear probe on the codes" in page.locator("dl.legend").nth(1).inner_text()
    assert page.locator("table").nth(1).locator("tr").all_inner_texts()[2].split() == \
        ["1%", "14", "0.52", "0.49"]
    assert "the probe beats PCA by 3 points" in page.inner_text("body")
    page.click("text=backprop explorer")
    page.wait_for_selector("#tr-node-panel")
    assert page.url.endswith("instruments/explorer.html")
    assert len(graph_json(page)["nodes"]) == page.locator("#tr-canvas [data-node-id]").count() > 5


def test_explore_leaves_grads_and_open_traces_alone(tmp_path):
    x, w, h, y = small_expression()
    with tr.trace() as t:
        data = explorer.graph_data(y)
    assert len(t) == 0  # the extra backward pass is not part of the user's trace
    assert x.grad is None and w.grad is None
    steps = [s["node"] for s in data["steps"]]
    ids = ids_of(y)
    assert steps == [ids[id(n)] for n in reversed(autograd.topological_order([y]))]
    leaf = data["nodes"][ids[id(w)]]
    assert leaf["kind"] == "input" and leaf["grad"]["values"] == [2.0, 2.0, -18.0]


def test_a_failed_write_leaves_the_old_page(tmp_path, monkeypatch):
    import tinygrad_rep.output as output
    x, w, h, y = small_expression()
    path = tmp_path / "graph.html"
    path.write_text("old page")

    def disk_full(*a, **k):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(output.os, "replace", disk_full)
    with pytest.raises(OSError, match="No space left"):
        explorer.explore(y, str(path))
    with pytest.raises(OSError, match="No space left"):
        HtmlReport("run").paragraph("new").write(str(tmp_path / "graph.html"))
    assert path.read_text() == "old page" and os.listdir(tmp_path) == ["graph.html"]


def test_a_real_train_run_report_opens_cleanly(browser, tmp_path):
    """The report.html that `tinygrad-rep train autoencoder` itself writes: no console errors,
    every image loads, every link resolves, the results table and every PNG of the folder shown."""
    from tinygrad_rep import cli
    out = tmp_path / "run"
    assert cli.main(["train", "autoencoder", "--data", "digits", "--epochs", "2", "--bottleneck", "4",
                     "--hidden", "16", "--finetune-steps", "10", "--quiet", "--out", str(out)]) == 0
    path = str(out / "report.html")
    page, errors = open_page(browser, path)
    assert errors == [] and broken_images(page) == [] and broken_links(page, path) == []
    pngs = sorted(p.name for p in out.glob("*.png"))
    shown = sorted(os.path.basename(s) for s in page.eval_on_selector_all("img", "els => els.map(e => e.src)"))
    assert shown == pngs and "reconstructions.png" in pngs
    assert page.locator("table").count() >= 2  # the results and the machine


def test_metrics_whose_nested_dicts_lack_an_accuracy_still_make_a_page(tmp_path):
    """word2vec's metrics.json nests dicts of other numbers (sections of the analogy set): the
    page must still be written (it once raised KeyError: 'accuracy' at the end of a training run)."""
    from tinygrad_rep.report_html import run_page
    metrics = {"evaluation": {"analogy": {"accuracy": 0.113, "covered": 10694,
                                          "semantic": {"correct": 36, "covered": 4000}},
                              "wordsim353": {"spearman": 0.54, "covered": 330}}}
    (tmp_path / "metrics.json").write_text(json.dumps(metrics))
    page = open(run_page(str(tmp_path), "train word2vec")).read()
    assert "0.113" in page and "10694" in page
