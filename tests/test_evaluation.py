"""Tests for models.evaluation (PCA, probe, fine-tuning, label subsets), models.plots (PNG encoding,
plots without matplotlib) and output (atomic writes, progress without tqdm)."""
import json
import os
import sys
import zlib

import numpy as np
import pytest

from tinygrad_rep import Tensor, nn
from tinygrad_rep.data import datasets
from tinygrad_rep.models import evaluation as ev
from tinygrad_rep import output
from tinygrad_rep.models import plots


def _blobs(n=300, d=5, classes=3, seed=0, spread=0.3):
    rng = np.random.default_rng(seed)
    centers = rng.normal(0, 3, (classes, d))
    y = rng.integers(0, classes, n)
    return (centers[y] + rng.normal(0, spread, (n, d))).astype(np.float32), y.astype(np.int64)


# ---------------------------------------------------------------- PCA

def test_pca_matches_the_covariance_eigenvectors_and_is_the_best_linear_code():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 6)) @ rng.normal(size=(6, 6))
    pca = ev.PCA(3).fit(x)
    np.testing.assert_allclose(pca.components @ pca.components.T, np.eye(3), atol=1e-10)
    evals, evecs = np.linalg.eigh(np.cov(x.T))
    top = evecs[:, ::-1][:, :3]
    np.testing.assert_allclose(np.abs(pca.components @ top), np.eye(3), atol=1e-6)
    np.testing.assert_allclose(pca.explained_variance, evals[::-1][:3], rtol=1e-8)
    # any other 3-D orthonormal projection reconstructs worse (Eckart-Young)
    q, _ = np.linalg.qr(rng.normal(size=(6, 3)))
    xc = x - x.mean(0)
    other = np.mean((xc @ q @ q.T - xc) ** 2)
    assert pca.reconstruction_mse(x) < other
    mses = [ev.PCA(m).fit(x).reconstruction_mse(x) for m in range(1, 7)]
    assert all(a > b for a, b in zip(mses, mses[1:])) and mses[-1] < 1e-12


def test_pca_codes_shapes_and_errors():
    x = np.random.default_rng(0).random((20, 5)).astype(np.float32)
    pca = ev.PCA(2)
    with pytest.raises(ValueError, match="fit"):
        pca.transform(x)
    z = pca.fit(x).transform(x)
    assert z.shape == (20, 2) and z.dtype == np.float32
    assert pca.inverse_transform(z).shape == (20, 5)
    with pytest.raises(ValueError, match="positive"):
        ev.PCA(0)
    with pytest.raises(ValueError, match="at least 6"):
        ev.PCA(6).fit(x)
    with pytest.raises(ValueError, match="2-D"):
        ev.PCA(1).fit(x[0])


def test_mean_image_mse():
    tr_, te = np.zeros((4, 3)), np.ones((2, 3))
    assert ev.mean_image_mse(tr_, te) == 1.0


# ---------------------------------------------------------------- helpers

def test_accuracy():
    assert ev.accuracy(np.array([[0.1, 0.9], [0.8, 0.2]]), np.array([1, 1])) == 0.5
    assert ev.accuracy(np.array([2, 0, 1]), np.array([2, 0, 0])) == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="3 predictions but 2 labels"):
        ev.accuracy(np.array([1, 2, 3]), np.array([1, 2]))


def test_label_subset_is_stratified_sorted_and_keeps_every_class():
    y = np.repeat(np.arange(10), [500, 30, 400, 100, 100, 100, 100, 100, 100, 5])
    idx = ev.label_subset(y, 0.01, seed=0)
    assert np.all(np.diff(idx) > 0)
    counts = np.bincount(y[idx], minlength=10)
    assert counts[0] == 5 and counts[2] == 4 and counts[9] == 1 and counts.min() >= 1
    np.testing.assert_array_equal(idx, ev.label_subset(y, 0.01, seed=0))
    assert not np.array_equal(idx, ev.label_subset(y, 0.01, seed=1))
    assert len(ev.label_subset(y, 1.0)) == len(y)
    with pytest.raises(ValueError, match="fraction"):
        ev.label_subset(y, 0.0)


def test_standardize_uses_training_statistics():
    a, b = ev.standardize(np.array([[1.0, 5.0], [3.0, 5.0]]), np.array([[2.0, 6.0]]))
    np.testing.assert_allclose(a, [[-1, 0], [1, 0]])
    np.testing.assert_allclose(b, [[0, 1]])  # a constant column is only centred


# ---------------------------------------------------------------- probe and fine-tuning

def test_linear_probe_separates_blobs_and_reads_digits():
    x, y = _blobs()
    res = ev.linear_probe(x[:200], y[:200], x[200:], y[200:], steps=200)
    assert res["accuracy"] == 1.0 and res["train_accuracy"] == 1.0
    x_train, y_train, x_test, y_test = datasets.load("digits")
    res = ev.linear_probe(x_train, y_train, x_test, y_test, steps=300)
    assert res["accuracy"] > 0.93
    with pytest.raises(ValueError, match="labels"):
        ev.linear_probe(x[:10], y[:9], x[:5], y[:5])


def test_fine_tune_trains_a_copy_and_freeze_trains_only_the_head():
    x, y = _blobs(d=6, seed=1, spread=1.0)
    encoder = nn.Sequential(nn.Linear(6, 8, rng=0), nn.ReLU(), nn.Linear(8, 3, rng=1))
    before = {k: v.copy() for k, v in encoder.state_dict().items()}
    res = ev.fine_tune(encoder, 3, x[:200], y[:200], x[200:], y[200:], steps=150, lr=1e-2)
    assert res["accuracy"] > 0.9
    for k, v in encoder.state_dict().items():  # the caller's encoder is untouched
        np.testing.assert_array_equal(v, before[k])
    assert all(p.requires_grad for p in encoder.parameters())
    # frozen: the encoder copy does not move, only the head learns
    enc = nn.Sequential(nn.Linear(6, 3, rng=0))
    ev.fine_tune(enc, 3, x, y, x, y, steps=20, freeze=True, copy_encoder=False)
    np.testing.assert_array_equal(enc.state_dict()["0.weight"], nn.Linear(6, 3, rng=0).weight.data)


def test_predict_batches_without_recording_the_graph():
    lin = nn.Linear(4, 2, rng=0)
    x = np.random.default_rng(0).random((10, 4)).astype(np.float32)
    out = ev.predict(lin, x, batch_size=3)
    np.testing.assert_allclose(out, x @ lin.weight.data + lin.bias.data, rtol=1e-5, atol=1e-6)
    assert isinstance(out, np.ndarray)


# ---------------------------------------------------------------- plots

def _png_pixels(data):
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, chunks = 8, {}
    while pos < len(data):
        n = int.from_bytes(data[pos:pos + 4], "big")
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + n]
        assert zlib.crc32(kind + body) == int.from_bytes(data[pos + 8 + n:pos + 12 + n], "big")
        chunks[kind] = chunks.get(kind, b"") + body
        pos += 12 + n
    w, h = int.from_bytes(chunks[b"IHDR"][:4], "big"), int.from_bytes(chunks[b"IHDR"][4:8], "big")
    raw = np.frombuffer(zlib.decompress(chunks[b"IDAT"]), np.uint8).reshape(h, -1)
    assert np.all(raw[:, 0] == 0)
    return raw[:, 1:]


def test_encode_png_round_trips_and_the_grid_shows_inputs_and_reconstructions(tmp_path):
    img = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    np.testing.assert_array_equal(_png_pixels(plots.encode_png(img)), img)
    inputs = np.zeros((3, 4), np.float32)
    recons = np.ones((3, 4), np.float32)
    path = plots.save_reconstruction_grid(tmp_path / "g.png", inputs, recons, (2, 2), per_row=3, scale=1)
    pix = _png_pixels(path.read_bytes())
    assert pix.shape == (2 * 3 + 1, 3 * 3 + 1)  # 2 rows (inputs, reconstructions) of 3 images
    assert pix[1, 1] == 0 and pix[4, 1] == 255 and pix[0, 0] == 128
    with pytest.raises(ValueError, match="expected"):
        plots.encode_png(np.zeros((2, 2, 2)))


def test_atomic_writes_leave_no_temporary_files(tmp_path):
    output.write_json_atomic(tmp_path / "m.json", {"a": np.float32(0.5), "b": np.arange(2), "c": np.int64(3)})
    assert json.loads((tmp_path / "m.json").read_text()) == {"a": 0.5, "b": [0, 1], "c": 3}
    output.write_text_atomic(tmp_path / "m.json", "replaced")
    assert (tmp_path / "m.json").read_text() == "replaced"
    with pytest.raises(RuntimeError):
        with output.atomic_path(tmp_path / "never.bin") as tmp:
            open(tmp, "w").write("half")
            raise RuntimeError("interrupted")
    assert sorted(os.listdir(tmp_path)) == ["m.json"]


def test_progress_without_tqdm_prints_plain_lines(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "tqdm", None)  # import tqdm now raises ImportError
    output._noted.clear()
    bar = output.Progress(total=3, desc="train", every=0.0)
    for i in range(3):
        bar.update(1, epoch=f"{i + 1}/3", loss=0.5)
    bar.close()
    err = capsys.readouterr().err
    assert "tqdm is not installed" in err
    assert "train 3/3 (100%)" in err and "loss=0.5" in err
    quiet = output.Progress(total=2, disable=True)
    quiet.update(2)
    quiet.close()
    assert capsys.readouterr().err == ""


def test_scatter_is_skipped_with_a_note_without_matplotlib(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    output._noted.clear()
    assert plots.save_scatter(tmp_path / "s.png", np.zeros((5, 2)), np.zeros(5, int)) is None
    assert "matplotlib is not installed" in capsys.readouterr().err
    assert not (tmp_path / "s.png").exists()


def test_scatter_with_matplotlib(tmp_path):
    pytest.importorskip("matplotlib")
    x, y = _blobs(d=2)
    path = plots.save_scatter(tmp_path / "s.png", x, y, title="blobs")
    assert path is not None and (tmp_path / "s.png").read_bytes()[:4] == b"\x89PNG"


def test_format_table():
    text = output.format_table(["a", "b"], [["x", 0.5], ["y", float("nan")]])
    assert text.splitlines()[2] == "| x | 0.5000 |" and "n/a" in text


def test_labelled_image_rows_and_their_plain_fallback(monkeypatch, tmp_path):
    inputs = np.zeros((3, 4), np.float32)
    recons = np.ones((3, 4), np.float32)
    if plots._pyplot(tmp_path, quiet=True) is not None:
        path = plots.save_reconstructions(tmp_path / "r.png", inputs, recons, (2, 2), corrupted=inputs + 0.5)
        assert _png_pixels_rgba_ok(path.read_bytes())
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # the numpy-only grid, no text
    output._noted.clear()
    path = plots.save_reconstructions(tmp_path / "g.png", inputs, recons, (2, 2), corrupted=inputs + 0.5)
    pix = _png_pixels(path.read_bytes())
    scale = 64 // 2
    assert pix.shape == (3 * (2 * scale + 1) + 1, 3 * (2 * scale + 1) + 1)  # rows: input, corrupted, recon
    assert pix[1, 1] == 0 and pix[2 * scale + 2, 1] == 128 and pix[2 * (2 * scale + 1) + 1, 1] == 255


def _png_pixels_rgba_ok(data):
    return data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 1000


def test_project_2d_uses_pca_and_pads_a_missing_component():
    x = np.array([[0.0, 0.0, 1.0], [2.0, 0.0, 1.0], [4.0, 0.0, 1.0]])
    pts = plots.project_2d(x)
    assert pts.shape == (3, 2)
    np.testing.assert_allclose(np.abs(pts[:, 0]), [2, 0, 2], atol=1e-6)
    np.testing.assert_allclose(pts[:, 1], 0, atol=1e-6)
    np.testing.assert_array_equal(plots.project_2d(np.ones((1, 5))), np.zeros((1, 2)))
    np.testing.assert_array_equal(plots.project_2d(np.arange(3.0)[:, None])[:, 1], 0)
