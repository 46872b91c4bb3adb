"""Tests for the autoencoder: gradients of the full loss, the variants' objectives, training on
digits, saving and reloading, and the `train autoencoder` command with its errors."""
import json
import os
import time

import numpy as np
import pytest

import tinygrad_rep as tr
from tinygrad_rep import Tensor, cli, nn
from tinygrad_rep import models
from tinygrad_rep.data import datasets, iterate_minibatches
from tinygrad_rep.models import evaluation as ev
from tinygrad_rep.models.autoencoder import Autoencoder, train


class _Loss(nn.Module):
    """Wraps an autoencoder so functional_call can swap its parameters for gradcheck's copies."""

    def __init__(self, ae, mask):
        super().__init__()
        self.ae, self.mask = ae, mask

    def forward(self, inputs, target):
        return self.ae.loss_on(inputs, target, self.mask)


def _tiny(variant, seed=0):
    return Autoencoder(6, hidden=(5, 4), bottleneck=2, variant=variant, dtype=np.float64, seed=seed)


@pytest.mark.parametrize("variant", ["plain", "denoising", "masked"])
def test_full_loss_passes_gradcheck_float64(variant):
    ae = _tiny(variant)
    rng = np.random.default_rng(1)
    x = rng.random((4, 6))
    inputs, mask = ae.corrupt(x, rng)
    wrapper = _Loss(ae, mask)
    names = [n for n, _ in wrapper.named_parameters()]
    # random biases too: with zero biases a row whose ReLUs are all off puts the next layer
    # exactly on the kink, where central differences disagree with any subgradient
    params = [Tensor(p.data + rng.normal(0, 0.1, p.shape), requires_grad=True)
              for _, p in wrapper.named_parameters()]
    assert all(p.dtype == np.float64 for p in params) and len(params) == 12  # 6 Linear layers

    def loss(inp, target, *ps):
        return nn.functional_call(wrapper, dict(zip(names, ps)), inp, target)

    # every weight and bias, the network input and the target (which also gets a gradient)
    assert tr.gradcheck(loss, [Tensor(inputs, requires_grad=True), Tensor(x, requires_grad=True)] + params)


def test_masked_loss_puts_gradient_only_on_masked_entries():
    ae = Autoencoder(10, hidden=(8,), bottleneck=3, variant="masked", mask_ratio=0.4, seed=0)
    rng = np.random.default_rng(0)
    x = rng.random((16, 10)).astype(np.float32)
    inputs, mask = ae.corrupt(x, np.random.default_rng(5))
    assert mask.dtype == bool and 0 < mask.mean() < 1
    np.testing.assert_array_equal(inputs[mask], 0)          # hidden entries are zeroed ...
    np.testing.assert_array_equal(inputs[~mask], x[~mask])  # ... the rest is the input itself
    seen = {}

    def keep_output(module, args, out):
        out.retain_grad()
        seen["out"] = out

    handle = ae.register_forward_hook(keep_output)
    loss = ae.loss_on(Tensor(inputs), Tensor(x), mask)
    handle.remove()
    loss.backward()
    g = seen["out"].grad.data
    assert np.all(g[~mask] == 0)
    assert np.count_nonzero(g[mask]) == mask.sum()
    recon = seen["out"].data
    np.testing.assert_allclose(loss.item(), np.mean((recon[mask] - x[mask]) ** 2), rtol=1e-5)


def test_denoising_corrupts_the_input_and_reconstructs_the_clean_one():
    ae = Autoencoder(10, hidden=(8,), bottleneck=3, variant="denoising", noise=0.3, seed=0)
    x = np.random.default_rng(0).random((32, 10)).astype(np.float32)
    inputs, mask = ae.corrupt(x, np.random.default_rng(1))
    assert mask is None and inputs.dtype == np.float32
    assert 0.2 < np.std(inputs - x) < 0.4
    loss = ae.loss_on(Tensor(inputs), Tensor(x))
    np.testing.assert_allclose(loss.item(), np.mean((ae.reconstruct(inputs) - x) ** 2), rtol=1e-5)
    plain = Autoencoder(10, hidden=(8,), bottleneck=3, variant="plain")
    same, _ = plain.corrupt(x, np.random.default_rng(1))
    assert same is x


def test_training_on_digits_beats_the_mean_image_within_seconds():
    x_train, _, x_test, _ = datasets.load("digits")
    baseline = ev.mean_image_mse(x_train, x_test)
    ae = Autoencoder(64, hidden=(64, 32), bottleneck=8, seed=0)
    before = ae.reconstruction_mse(x_test)
    t0 = time.process_time()
    fit = train(ae, x_train, epochs=15, batch_size=64, lr=3e-3, seed=0, progress=False)
    cpu = time.process_time() - t0
    after = ae.reconstruction_mse(x_test)
    assert after < 0.5 * baseline < before, (after, baseline, before)
    assert fit["epoch_losses"][-1] < fit["epoch_losses"][0]
    assert cpu < 30, f"15 epochs on digits took {cpu:.1f} s of CPU time"  # a sanity bound, not a benchmark


@pytest.mark.parametrize("variant", ["plain", "masked"])
def test_saved_model_reloads_to_identical_codes(tmp_path, variant):
    x_train, _, x_test, _ = datasets.load("digits")
    ae = Autoencoder(64, hidden=(16,), bottleneck=4, variant=variant, mask_ratio=0.3, seed=3)
    train(ae, x_train[:256], epochs=2, batch_size=64, lr=1e-3, progress=False)
    ae.save(tmp_path / "m")
    meta = json.loads((tmp_path / "m" / "model.json").read_text())
    assert meta["kind"] == "autoencoder" and meta["config"]["variant"] == variant
    back = tr.models.load(tmp_path / "m") if hasattr(tr, "models") else models.load(tmp_path / "m")
    assert isinstance(back, Autoencoder) and back.config() == ae.config()
    np.testing.assert_array_equal(back.encode(x_test), ae.encode(x_test))
    np.testing.assert_array_equal(back.reconstruct(x_test), ae.reconstruct(x_test))
    codes = back.encode(x_test[0])  # one image (1-D) works too
    assert codes.shape == (1, 4) and codes.dtype == np.float32


def test_models_load_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        models.load(tmp_path / "nothing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="model.json"):
        models.load(tmp_path / "empty")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "model.json").write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        models.load(bad)
    (bad / "model.json").write_text('{"kind": "hologram", "config": {}}')
    with pytest.raises(ValueError, match="unknown model kind 'hologram'"):
        models.load(bad)


def test_autoencoder_rejects_bad_configuration_and_input():
    with pytest.raises(ValueError, match="variant"):
        Autoencoder(8, variant="sparse")
    with pytest.raises(ValueError, match="mask_ratio"):
        Autoencoder(8, variant="masked", mask_ratio=1.0)
    with pytest.raises(ValueError, match="positive"):
        Autoencoder(8, hidden=(4,), bottleneck=0)
    ae = Autoencoder(8, hidden=(4,), bottleneck=2)
    with pytest.raises(ValueError, match="8 values per row"):
        ae.encode(np.zeros((3, 9), np.float32))


# ---------------------------------------------------------------- command line

def test_cli_train_autoencoder_writes_metrics_plots_and_model(tmp_path, capsys):
    out = tmp_path / "run"
    code = cli.main(["train", "autoencoder", "--data", "digits", "--epochs", "3", "--bottleneck", "4",
                     "--hidden", "16", "--finetune-steps", "20", "--quiet", "--out", str(out)])
    assert code == 0
    metrics = json.loads((out / "metrics.json").read_text())
    for key in ("recon_mse", "pca_mse", "mean_image_mse", "probe_accuracy", "pca_probe_accuracy",
                "fine_tune_accuracy", "scratch_accuracy", "epochs", "seconds", "samples_per_second"):
        assert key in metrics, key
    assert metrics["epochs"] == 3 and metrics["bottleneck"] == 4
    assert set(metrics["labels"]) == {"all", "1%"}
    assert metrics["labels"]["1%"]["labels"] >= 10  # at least one per class
    assert (out / "reconstructions.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (out / "codes.png").exists() or "matplotlib is not installed" in capsys.readouterr().err
    model = models.load(out)
    assert model.encode(np.zeros((2, 64), np.float32)).shape == (2, 4)
    assert not [f for f in os.listdir(out) if f.endswith(".tmp") or ".tmp." in f]
    page = (out / "report.html").read_text()  # one page: results table, every figure, the files
    assert "recon_mse" in page or "Results" in page
    assert 'src="reconstructions.png"' in page and 'href="metrics.json"' in page


@pytest.mark.parametrize("argv, message", [
    (["--bottleneck", "0"], "--bottleneck must be positive"),
    (["--bottleneck", "64"], "smaller than the input size 64"),
    (["--epochs", "-1"], "--epochs must be positive"),
    (["--label-fraction", "0"], "--label-fraction"),
])
def test_cli_rejects_bad_options(tmp_path, capsys, argv, message):
    code = cli.main(["train", "autoencoder", "--data", "digits", "--quiet", "--out", str(tmp_path / "x")] + argv)
    assert code == 2
    assert message in capsys.readouterr().err


def test_cli_missing_fashion_mnist_names_the_fix(tmp_path, capsys):
    code = cli.main(["train", "autoencoder", "--data", "fashion-mnist", "--data-path", str(tmp_path),
                     "--quiet", "--out", str(tmp_path / "x")])
    assert code == 2
    err = capsys.readouterr().err
    assert "Fashion-MNIST not found" in err and "dataset-fashion-mnist" in err


# ---------------------------------------------------------------- data loader errors

def test_data_loader_errors(tmp_path):
    with pytest.raises(ValueError, match="unknown data set 'mnist3d'"):
        datasets.load("mnist3d")
    with pytest.raises(FileNotFoundError, match="train-images-idx3-ubyte.gz"):
        datasets.load("fashion-mnist", path=tmp_path)
    with pytest.raises(ValueError, match="same length"):
        iterate_minibatches(np.zeros((4, 2)), np.zeros(3), batch_size=2)
    with pytest.raises(ValueError, match="positive"):
        iterate_minibatches(np.zeros((4, 2)), batch_size=0)
    broken = tmp_path / "digits.npz"
    np.savez(broken, images=np.full((3, 64), 99), labels=np.zeros(3, int))
    with pytest.raises(ValueError, match="0..16"):
        datasets.load("digits", path=broken)


def test_results_table_has_a_legend_and_a_reading_computed_from_it():
    from tinygrad_rep.commands.train import autoencoder as cmd
    metrics = {"recon_mse": 0.02, "pca_mse": 0.03, "mean_image_mse": 0.07, "bottleneck": 8, "epochs": 3,
               "seconds": 1.0, "samples_per_second": 10.0,
               "labels": {"all": {"labels": 1437, "probe": 0.9, "pca_probe": 0.91, "fine_tune": 0.97, "scratch": 0.96},
                          "1%": {"labels": 18, "probe": 0.6, "pca_probe": 0.55, "fine_tune": 0.5, "scratch": 0.52}}}
    assert cmd.reading(metrics) == ("with 1% (18 labels) the probe on the codes is 5.0 points above PCA codes of "
                                    "the same size; with all labels 1.0 points below PCA codes; fine-tuning with "
                                    "18 labels is 2.0 points below training from scratch")
    lines = cmd.summary(metrics).splitlines()
    assert lines[-3] == "| 1% (18 labels) | 0.6000 | 0.5500 | 0.5000 | 0.5200 |"
    assert lines[-2].startswith("where probe = a linear probe (softmax regression) on the frozen autoencoder codes;")


def test_decode_is_the_decoder_half_of_reconstruct():
    from tinygrad_rep.models.autoencoder import Autoencoder
    ae = Autoencoder(64, hidden=(16,), bottleneck=4, dtype=np.float64)
    x = np.random.default_rng(0).random((5, 64))
    np.testing.assert_allclose(ae.decode(ae.encode(x)), ae.reconstruct(x), rtol=1e-12)
    assert ae.decode(np.zeros(4)).shape == (1, 64)
    with pytest.raises(ValueError, match=r"Autoencoder.decode: expected codes of shape \(n, 4\), got \(2, 5\)"):
        ae.decode(np.zeros((2, 5)))
