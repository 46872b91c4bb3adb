"""Tests for SimCLR (tinygrad_rep.models.contrastive): the model's gradients, training on digits,
the representation against raw pixels, saving and reloading, and `train contrastive`."""
import json
import os

import numpy as np
import pytest

import tinygrad_rep as tr
from tinygrad_rep import Tensor, cli, models, nn
from tinygrad_rep.data import augment, datasets
from tinygrad_rep.models import contrastive as cl
from tinygrad_rep.models import evaluation as ev


def _digits():
    return datasets.load("digits")


class _Loss(nn.Module):
    """Wraps a model so functional_call can swap its parameters for gradcheck's copies."""

    def __init__(self, model, temperature):
        super().__init__()
        self.model, self.temperature = model, temperature

    def forward(self, v1, v2):
        return self.model.loss(v1, v2, self.temperature)


def test_model_shapes_and_numpy_interface():
    model = cl.SimCLR(64, dim=16, hidden=(32,), proj_hidden=12, proj_dim=8, image_shape=(8, 8), seed=0)
    x = np.random.default_rng(0).random((10, 64)).astype(np.float32)
    codes = model.encode(x)
    assert isinstance(codes, np.ndarray) and codes.shape == (10, 16) and codes.dtype == np.float32
    assert (codes >= 0).all()  # the encoder ends in a ReLU
    assert model.project(x).shape == (10, 8)
    np.testing.assert_array_equal(model.encode(x.reshape(10, 8, 8)), codes)
    np.testing.assert_allclose(model.encode(x[0]), codes[:1], rtol=1e-5, atol=1e-6)  # one row: another matmul blocking
    with pytest.raises(ValueError, match="64 values per row"):
        model.encode(np.zeros((2, 63)))
    with pytest.raises(ValueError, match="does not hold"):
        cl.SimCLR(64, image_shape=(7, 7))
    with pytest.raises(ValueError, match="positive"):
        cl.SimCLR(64, dim=0)


def test_full_simclr_loss_passes_gradcheck_float64():
    model = cl.SimCLR(9, dim=4, hidden=(5,), proj_hidden=4, proj_dim=3, seed=0, dtype=np.float64)
    wrapper = _Loss(model, temperature=0.3)
    rng = np.random.default_rng(1)
    names = [n for n, _ in wrapper.named_parameters()]
    # random biases: with zero biases a ReLU input can sit exactly on the kink
    params = [Tensor(p.data + rng.normal(0, 0.1, p.shape), requires_grad=True)
              for _, p in wrapper.named_parameters()]
    assert len(params) == 8  # 2 encoder + 2 head layers, weight and bias each
    v1, v2 = rng.random((4, 9)), rng.random((4, 9))

    def loss(*ps):
        return nn.functional_call(wrapper, dict(zip(names, ps)), v1, v2)

    assert tr.gradcheck(loss, params)


def test_lr_schedule_warms_up_then_decays_to_zero():
    total, warmup = 100, 10
    f = [cl.lr_factor(s, total, warmup) for s in range(total + 1)]
    assert f[0] == pytest.approx(0.1) and f[9] == pytest.approx(1.0) and f[10] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(f[10:], f[11:]))
    assert f[total] == pytest.approx(0.0, abs=1e-12)
    assert cl.lr_factor(55, total, 10) == pytest.approx(0.5)


def test_training_lowers_the_loss_and_uses_a_partial_last_batch():
    x, *_ = _digits()
    x = x[:301]  # 301 = 2 * 128 + 45: a partial last batch
    model = cl.SimCLR(64, dim=32, hidden=(64,), proj_hidden=32, proj_dim=16, image_shape=(8, 8), seed=0)
    fit = cl.train(model, x, augment.preset("digits", (8, 8)), epochs=6, batch_size=128, lr=2e-3,
                   seed=0, progress=False)
    losses = fit["epoch_losses"]
    assert len(losses) == 6 and np.isfinite(losses).all()
    assert losses[-1] < losses[0] - 0.1
    assert fit["steps"] == 18 and fit["lrs"][-1] == pytest.approx(0.0, abs=1e-9)
    assert not model.training
    # a last batch of one image has no negatives: it is skipped, not an error
    fit = cl.train(model, x[:129], augment.preset("digits", (8, 8)), epochs=1, batch_size=128, progress=False)
    assert np.isfinite(fit["epoch_losses"][0])


def test_training_is_reproducible_for_a_seed():
    x, *_ = _digits()
    codes = []
    for _ in range(2):
        model = cl.SimCLR(64, dim=16, hidden=(32,), proj_hidden=16, proj_dim=8, image_shape=(8, 8), seed=3)
        cl.train(model, x[:256], augment.preset("digits", (8, 8)), epochs=2, batch_size=64, seed=5,
                 progress=False)
        codes.append(model.encode(x[:50]))
    np.testing.assert_array_equal(codes[0], codes[1])


def test_short_run_on_digits_beats_raw_pixels_with_ten_percent_of_the_labels():
    # half the default epochs, to keep the suite quick; accuracies are means over three draws
    # of the 143 labels, as `evaluate` reports them (one draw alone is noisy)
    x_train, y_train, x_test, y_test = _digits()
    d = cl.DEFAULTS["digits"]
    model = cl.SimCLR(64, dim=d["dim"], hidden=d["hidden"], proj_hidden=d["proj_hidden"],
                      proj_dim=d["proj_dim"], image_shape=(8, 8), seed=0)
    cl.train(model, x_train, augment.preset("digits", (8, 8)), epochs=d["epochs"] // 2,
             batch_size=d["batch_size"], temperature=d["temperature"], lr=d["lr"],
             warmup_epochs=d["warmup_epochs"], seed=0, progress=False)
    ztr, zte = model.encode(x_train), model.encode(x_test)
    probe, raw = [], []
    for seed in range(3):
        few = ev.label_subset(y_train, 0.1, seed=seed)
        probe.append(ev.linear_probe(ztr[few], y_train[few], zte, y_test)["accuracy"])
        raw.append(ev.linear_probe(x_train[few], y_train[few], x_test, y_test)["accuracy"])
    assert np.mean(probe) > np.mean(raw) + 0.01, (probe, raw)


def test_save_and_load_round_trip_gives_identical_codes(tmp_path):
    x, *_ = _digits()
    model = cl.SimCLR(64, dim=16, hidden=(32,), proj_hidden=16, proj_dim=8, image_shape=(8, 8), seed=1)
    cl.train(model, x[:200], augment.preset("digits", (8, 8)), epochs=1, batch_size=64, progress=False)
    model.save(tmp_path / "m", data="digits")
    back = models.load(tmp_path / "m")
    assert isinstance(back, cl.SimCLR) and back.config() == model.config()
    np.testing.assert_array_equal(back.encode(x), model.encode(x))
    np.testing.assert_array_equal(back.project(x), model.project(x))
    assert cl.load_model(tmp_path / "m").dim == 16
    meta = json.loads((tmp_path / "m" / "model.json").read_text())
    assert meta["kind"] == "contrastive" and meta["data"] == "digits"


def test_evaluation_table_has_every_method_and_budget():
    x_train, y_train, x_test, y_test = _digits()
    model = cl.SimCLR(64, dim=16, hidden=(32,), proj_hidden=16, proj_dim=8, image_shape=(8, 8), seed=0)
    metrics, zte = cl.evaluate(model, x_train, y_train, x_test[:100], y_test[:100], 0.1, probe_steps=20,
                               finetune_steps=5, finetune_steps_all=5, autoencoder={"epochs": 1})
    assert zte.shape == (100, 16)
    assert set(metrics["labels"]) == {"all", "0.1"}
    assert metrics["labels"]["0.1"]["labels"] == len(ev.label_subset(y_train, 0.1)) and metrics["labels"]["0.1"]["draws"] == 3
    for row in metrics["labels"].values():
        for method in ("probe", "fine_tune", "scratch", "untrained", "raw_pixels", "pca", "autoencoder"):
            assert 0 <= row[method]["accuracy"] <= 1 and row[method]["seconds"] >= 0
    assert metrics["pca_dim"] == 16 and metrics["autoencoder"]["dim"] == 16


def test_probe_chooses_its_weight_decay_on_the_training_rows_only():
    x_train, y_train, x_test, y_test = _digits()
    few = ev.label_subset(y_train, 0.1, seed=0)
    res = cl.probe(x_train[few], y_train[few], x_test, y_test, steps=60)
    assert res["weight_decay"] in cl.PROBE_WEIGHT_DECAYS
    assert set(res["cv"]) == set(cl.PROBE_WEIGHT_DECAYS) and res["cv"][res["weight_decay"]] == max(res["cv"].values())
    # the choice does not depend on the test rows: scrambled test labels give the same decay
    scrambled = cl.probe(x_train[few], y_train[few], x_test, np.roll(y_test, 7), steps=60)
    assert scrambled["weight_decay"] == res["weight_decay"] and scrambled["cv"] == res["cv"]
    fixed = cl.probe(x_train[few], y_train[few], x_test, y_test, steps=60, weight_decays=(0.05,))
    assert fixed["weight_decay"] == 0.05 and fixed["cv"] is None


def test_similarity_matrix_puts_positives_on_the_off_diagonals():
    x, *_ = _digits()
    model = cl.SimCLR(64, dim=16, hidden=(32,), proj_hidden=16, proj_dim=8, image_shape=(8, 8), seed=0)
    sim = cl.similarity_matrix(model, x[:10], augment.Augment((8, 8), crop_scale=None, flip=0.0),
                               np.random.default_rng(0))
    assert sim.shape == (20, 20)
    np.testing.assert_allclose(np.diag(sim), 1, rtol=1e-5)
    np.testing.assert_allclose(np.diag(sim, 10), 1, rtol=1e-5)  # identical views: similarity 1


def test_cli_writes_metrics_plots_and_a_loadable_model(tmp_path, capsys):
    out = tmp_path / "run"
    code = cli.main(["train", "contrastive", "--data", "digits", "--epochs", "2", "--batch-size", "256",
                     "--temperature", "0.2", "--dim", "24", "--seed", "3", "--autoencoder", "none",
                     "--no-finetune", "--label-draws", "1", "--probe-steps", "50", "--quiet", "--out", str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "probe" in printed and "raw_pixels" in printed
    for name in ("metrics.json", "model.json", "weights.npz", "augmentations.png", "similarity.png"):
        assert (out / name).is_file(), name
        if name.endswith(".png"):
            assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["settings"]["temperature"] == 0.2 and metrics["settings"]["dim"] == 24
    assert len(metrics["epoch_losses"]) == 2
    for key in ("probe_accuracy", "raw_pixels_accuracy", "pca_accuracy", "seconds"):
        assert key in metrics
    x_train, *_ = _digits()
    assert models.load(out).encode(x_train[:5]).shape == (5, 24)
    assert not [f for f in os.listdir(out) if f.endswith(".tmp")]
    page = (out / "report.html").read_text()
    assert 'src="similarity.png"' in page and 'href="metrics.json"' in page and "<table" in page


@pytest.mark.parametrize("argv, match", [
    (["--temperature", "0"], "--temperature must be positive"),
    (["--epochs", "-1"], "--epochs must be positive"),
    (["--label-fraction", "2"], "--label-fraction"),
    (["--hidden", "a,b"], "--hidden"),
])
def test_cli_rejects_bad_options(tmp_path, capsys, argv, match):
    code = cli.main(["train", "contrastive", "--data", "digits", "--out", str(tmp_path / "x")] + argv)
    assert code == 2
    assert match in capsys.readouterr().err


# ------------------------------------------------------------------------- convolutional encoder

def _conv_reference(x, w, b, k, stride, padding):
    """conv2d written as explicit loops over output pixels (channels-last, weight rows (p, q, c))."""
    n, h, wd, c = x.shape
    xp = np.pad(x, ((0, 0), (padding, padding), (padding, padding), (0, 0)))
    oh, ow = (h + 2 * padding - k) // stride + 1, (wd + 2 * padding - k) // stride + 1
    wr = w.reshape(k, k, c, -1)
    out = np.zeros((n, oh, ow, w.shape[1]))
    for i in range(oh):
        for j in range(ow):
            patch = xp[:, i * stride:i * stride + k, j * stride:j * stride + k, :]
            out[:, i, j] = np.einsum("npqc,pqco->no", patch, wr) + b
    return out


@pytest.mark.parametrize("k, stride, padding", [(3, 1, 0), (3, 2, 1), (3, 1, 1), (2, 2, 0), (3, 3, 2)])
def test_conv2d_matches_a_loop_reference_and_passes_gradcheck(k, stride, padding):
    from tinygrad_rep.nn.conv import conv2d
    rng = np.random.default_rng(0)
    x = Tensor(rng.standard_normal((2, 5, 6, 3)), requires_grad=True)
    w = Tensor(rng.standard_normal((k * k * 3, 4)), requires_grad=True)
    b = Tensor(rng.standard_normal(4), requires_grad=True)
    y = conv2d(x, w, b, k, stride, padding)
    np.testing.assert_allclose(y.data, _conv_reference(x.data, w.data, b.data, k, stride, padding), atol=1e-12)
    assert tr.gradcheck(lambda x, w, b: conv2d(x, w, b, k, stride, padding), [x, w, b])


def test_im2col_and_col2im_are_adjoint_and_twice_differentiable():
    from tinygrad_rep.ops.conv import Col2Im, Im2Col
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 6, 5, 2))
    cols = Im2Col.apply(Tensor(x), kernel=(3, 3), stride=2, padding=1).data
    c = rng.standard_normal(cols.shape)
    back = Col2Im.apply(Tensor(c), shape=x.shape, kernel=(3, 3), stride=2, padding=1).data
    assert np.sum(cols * c) == pytest.approx(np.sum(x * back))  # <A x, c> = <x, A^T c>
    xt = Tensor(x, requires_grad=True)
    assert tr.gradgradcheck(lambda t: Im2Col.apply(t, kernel=(3, 3), stride=2, padding=1), [xt])
    with pytest.raises(ValueError, match="does not fit"):
        Im2Col.apply(Tensor(np.zeros((1, 2, 2, 1))), kernel=(3, 3), stride=1, padding=0)


def test_conv_layer_checks_its_input():
    from tinygrad_rep.nn.conv import Conv2d
    conv = Conv2d(2, 3, kernel_size=3, stride=2, padding=1, rng=0)
    assert conv(Tensor(np.zeros((4, 8, 8, 2), np.float32))).shape == (4, 4, 4, 3)
    with pytest.raises(ValueError, match="expected"):
        conv(Tensor(np.zeros((4, 8, 8, 1), np.float32)))


def test_conv_simclr_loss_passes_gradcheck_and_trains():
    model = cl.SimCLR(36, proj_hidden=(5, 4), proj_dim=3, image_shape=(6, 6), encoder="conv",
                      channels=(2, 3), seed=0, dtype=np.float64)
    assert model.dim == 3 * 2 * 2 and model.encode(np.zeros((2, 36))).shape == (2, 12)
    wrapper = _Loss(model, temperature=0.5)
    rng = np.random.default_rng(2)
    names = [n for n, _ in wrapper.named_parameters()]
    params = [Tensor(p.data + rng.normal(0, 0.1, p.shape), requires_grad=True)
              for _, p in wrapper.named_parameters()]
    v1, v2 = rng.random((3, 36)), rng.random((3, 36))
    assert tr.gradcheck(lambda *ps: nn.functional_call(wrapper, dict(zip(names, ps)), v1, v2), params)
    x, *_ = _digits()
    small = cl.SimCLR(64, proj_hidden=16, proj_dim=8, image_shape=(8, 8), encoder="conv", channels=(8, 4), seed=0)
    fit = cl.train(small, x[:256], augment.preset("digits", (8, 8)), epochs=4, batch_size=64, lr=3e-3,
                   progress=False)
    assert fit["epoch_losses"][-1] < fit["epoch_losses"][0]
    with pytest.raises(ValueError, match="conv encoder needs image_shape"):
        cl.SimCLR(64, encoder="conv")
    with pytest.raises(ValueError, match=r"code size is set by channels and the image: 4 channels x 4 positions = 16, got dim=10"):
        cl.SimCLR(64, dim=10, image_shape=(8, 8), encoder="conv", channels=(8, 4))


@pytest.mark.parametrize("objective", ["info-nce", "triplet"])
def test_other_objectives_train(objective):
    x, *_ = _digits()
    model = cl.SimCLR(64, dim=16, hidden=(32,), proj_hidden=16, proj_dim=8, image_shape=(8, 8), seed=0)
    fit = cl.train(model, x[:512], augment.preset("digits", (8, 8)), epochs=4, batch_size=128, lr=3e-3,
                   objective=objective, progress=False)
    assert np.isfinite(fit["epoch_losses"]).all() and fit["epoch_losses"][-1] < fit["epoch_losses"][0]
    with pytest.raises(ValueError, match="objective"):
        cl.train(model, x[:64], augment.preset("digits", (8, 8)), 1, 32, objective="hinge", progress=False)


def test_results_table_has_a_legend_and_a_reading_computed_from_it():
    from tinygrad_rep.commands.train import contrastive as cmd

    def row(labels, draws, **acc):
        return {"labels": labels, "draws": draws, **{k: {"accuracy": v} for k, v in acc.items()}}
    metrics = {"epoch_losses": [5.0, 4.0], "seconds": 2.0, "samples_per_second": 100.0,
               "settings": {"loss": "nt-xent"},
               "labels": {"all": row(1437, 1, probe=0.95, untrained=0.9, raw_pixels=0.96, pca=0.95),
                          "0.1": row(143, 3, probe=0.90, untrained=0.88, raw_pixels=0.885, pca=0.87)}}
    assert cmd.reading(metrics) == ("with 10% (143 labels) the SimCLR probe is 1.5 points above raw pixels "
                                    "and 2.0 points above the untrained encoder")
    text = cmd.summary(metrics).splitlines()
    assert text[1] == "test accuracy by label budget (the small budget: mean over 3 random draws):"
    assert text[4:6] == ["| all (1437 labels) | 0.9500 | 0.9000 | 0.9600 | 0.9500 |",
                         "| 10% (143 labels) | 0.9000 | 0.8800 | 0.8850 | 0.8700 |"]
    assert text[6].startswith("where probe = a linear probe (softmax regression) on the frozen SimCLR codes; "
                              "untrained = ")
    metrics["labels"]["0.1"]["probe"]["accuracy"] = 0.88
    assert cmd.reading(metrics).endswith("level with the untrained encoder (pretraining did not help in this run)")


def test_fashion_mnist_default_is_short_and_full_keeps_the_long_protocol():
    from tinygrad_rep.cli import build_parser
    from tinygrad_rep.commands.train import contrastive as cmd

    def settings(*extra):
        argv = ["train", "contrastive", "--data", "fashion-mnist", "--out", "x", *extra]
        return cmd.settings(build_parser(argv).parse_args(argv))

    short, full = settings(), settings("--full")
    assert (short["epochs"], short["finetune"], short["autoencoder_epochs"]) == (8, False, 2)
    assert (full["epochs"], full["finetune"], full["autoencoder_epochs"]) == (30, True, None)
    assert settings("--full", "--epochs", "5")["epochs"] == 5  # an explicit option still wins
    digits = cmd.settings(build_parser(["train", "contrastive", "--out", "x", "--full"]).parse_args(
        ["train", "contrastive", "--out", "x", "--full"]))
    assert (digits["epochs"], digits["finetune"]) == (80, True)  # digits' default is already the full protocol
