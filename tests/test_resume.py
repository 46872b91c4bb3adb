"""Every trainer checkpoints at the end of each epoch and resumes from it to the same result, bit for
bit, as the uninterrupted run with the same seed (optimizer and random state included). Interruptions
are injected (a KeyboardInterrupt raised at the start of an epoch), never timed."""
import json
import os

import numpy as np
import pytest

from tinygrad_rep import cli
from tinygrad_rep.data import augment, datasets, text
from tinygrad_rep.models import autoencoder as ae
from tinygrad_rep.models import contrastive as cl
from tinygrad_rep.models import training
from tinygrad_rep.models import word2vec as w2v
from tinygrad_rep.models.word2vec import trainer as w2v_trainer


@pytest.fixture(scope="module")
def digits():
    x_train, *_ = datasets.load("digits")
    return x_train[:300]


def _interrupt_at_call(monkeypatch, module, name, k):
    """Make module.name raise KeyboardInterrupt on its k-th call (calls before pass through)."""
    real, calls = getattr(module, name), [0]

    def wrapper(*a, **kw):
        calls[0] += 1
        if calls[0] == k:
            raise KeyboardInterrupt
        return real(*a, **kw)
    monkeypatch.setattr(module, name, wrapper)


def _same_state(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb)
    for k in sa:
        np.testing.assert_array_equal(np.asarray(sa[k].data if hasattr(sa[k], "data") else sa[k]),
                                      np.asarray(sb[k].data if hasattr(sb[k], "data") else sb[k]), err_msg=k)


def test_autoencoder_resume_is_bit_identical(tmp_path, monkeypatch, digits):
    def new():
        return ae.Autoencoder(64, hidden=(16,), bottleneck=4, variant="denoising", seed=0)
    args = dict(epochs=3, batch_size=64, lr=3e-3, seed=5, progress=False)
    whole = new()
    fit = ae.train(whole, digits, **args, checkpoint=training.Checkpoint(tmp_path / "whole.npz", {"a": 1}))
    plain = new()
    assert ae.train(plain, digits, **args)["epoch_losses"] == fit["epoch_losses"]  # checkpoints change nothing
    _same_state(whole, plain)

    path = tmp_path / "ckpt.npz"
    with monkeypatch.context() as m:
        _interrupt_at_call(m, ae, "iterate_minibatches", 3)  # the start of epoch 3
        with pytest.raises(KeyboardInterrupt):
            ae.train(new(), digits, **args, checkpoint=training.Checkpoint(path, {"a": 1}))
    ckpt = training.Checkpoint(path, {"a": 1}).load()
    assert ckpt.epoch == 2 and len(ckpt.state[1]["history"]) == 2
    assert {k for k in ckpt.state[0] if k.startswith("opt.")}  # Adam's moments are in it
    resumed = new()
    fit2 = ae.train(resumed, digits, **args, checkpoint=ckpt)
    assert fit2["epoch_losses"] == fit["epoch_losses"]
    _same_state(resumed, whole)


def test_contrastive_resume_is_bit_identical(tmp_path, monkeypatch, digits):
    def new():
        return cl.SimCLR(64, dim=8, hidden=(16,), proj_hidden=8, proj_dim=4, image_shape=(8, 8), seed=1)
    aug = augment.preset("digits", (8, 8))
    args = dict(epochs=3, batch_size=100, lr=2e-3, weight_decay=1e-4, warmup_epochs=1, seed=2, progress=False)
    whole = new()
    fit = cl.train(whole, digits, aug, **args, checkpoint=training.Checkpoint(tmp_path / "w.npz"))
    path = tmp_path / "ckpt.npz"
    with monkeypatch.context() as m:
        _interrupt_at_call(m, cl, "iterate_minibatches", 3)
        with pytest.raises(KeyboardInterrupt):
            cl.train(new(), digits, aug, **args, checkpoint=training.Checkpoint(path))
    resumed = new()
    fit2 = cl.train(resumed, digits, aug, **args, checkpoint=training.Checkpoint(path).load())
    assert fit2["epoch_losses"] == fit["epoch_losses"] and fit2["lrs"] == fit["lrs"]
    _same_state(resumed, whole)


def _corpus():
    sents, _ = text.synthetic_corpus(1, n_sentences=400)
    return sents


@pytest.mark.parametrize("trainer", ["fused", "engine"])
def test_word2vec_resume_is_bit_identical(tmp_path, monkeypatch, trainer):
    config = dict(dim=8, epochs=3, min_count=1, sample=1e-2, batch_size=64, seed=4, trainer=trainer)
    whole = w2v.train(_corpus(), w2v.Word2VecConfig(**config))
    path = tmp_path / "ckpt.npz"
    with monkeypatch.context() as m:
        _interrupt_at_call(m, w2v_trainer, "skipgram_pairs", 3)  # one chunk per epoch here
        with pytest.raises(KeyboardInterrupt):
            w2v.train(_corpus(), w2v.Word2VecConfig(**config), checkpoint=training.Checkpoint(path))
    resumed = w2v.train(_corpus(), w2v.Word2VecConfig(**config), checkpoint=training.Checkpoint(path).load())
    np.testing.assert_array_equal(resumed.W_in, whole.W_in)
    np.testing.assert_array_equal(resumed.W_out, whole.W_out)
    assert resumed.history == whole.history
    assert resumed.stats["pairs"] == whole.stats["pairs"] and resumed.stats["final_loss"] == whole.stats["final_loss"]


def test_a_failed_checkpoint_write_keeps_the_previous_one(tmp_path, monkeypatch, digits):
    path = tmp_path / "ckpt.npz"
    real = os.replace

    def replace(src, dst):
        if os.path.basename(dst) == "ckpt.npz" and os.path.exists(dst):  # the second save fails
            raise OSError(28, "No space left on device")
        return real(src, dst)
    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(OSError, match="No space left"):
        ae.train(ae.Autoencoder(64, hidden=(16,), bottleneck=4, seed=0), digits, epochs=3, batch_size=64,
                 lr=3e-3, progress=False, checkpoint=training.Checkpoint(path))
    assert sorted(os.listdir(tmp_path)) == ["ckpt.npz"]  # no temporary file left behind
    assert training.Checkpoint(path).load().epoch == 1


# ---------------------------------------------------------------------------------- command line

def _w2v_argv(tmp_path, out):
    corpus = tmp_path / "corpus.txt"
    if not corpus.exists():
        corpus.write_text("\n".join(" ".join(s) for s in _corpus()) + "\n")
    return ["train", "word2vec", "--corpus", str(corpus), "--dim", "8", "--epochs", "3", "--min-count", "1",
            "--batch-size", "64", "--seed", "4", "--no-eval", "--quiet", "--out", str(out)]


def test_cli_ctrl_c_names_the_checkpoint_and_resume_finishes_the_same_run(tmp_path, capsys, monkeypatch):
    assert cli.main(_w2v_argv(tmp_path, tmp_path / "whole")) == 0
    out = tmp_path / "cut"
    with monkeypatch.context() as m:
        _interrupt_at_call(m, w2v_trainer, "skipgram_pairs", 3)
        capsys.readouterr()
        assert cli.main(_w2v_argv(tmp_path, out)) == 130
    assert capsys.readouterr().err.splitlines() == [
        f"tinygrad-rep: interrupted; the last checkpoint is {out / 'checkpoint.npz'} (after epoch 2 of 3); "
        "run the same command with --resume to continue"]
    assert not (out / "model.json").exists()
    assert cli.main(_w2v_argv(tmp_path, out) + ["--resume"]) == 0
    assert f"resuming from {out / 'checkpoint.npz'} (after epoch 2)" in capsys.readouterr().out
    assert (out / "vectors.txt").read_bytes() == (tmp_path / "whole" / "vectors.txt").read_bytes()
    assert not (out / "checkpoint.npz").exists()  # removed once the model is saved


def test_cli_resume_refuses_a_missing_or_foreign_checkpoint(tmp_path, capsys, monkeypatch):
    out = tmp_path / "run"
    assert cli.main(_w2v_argv(tmp_path, out) + ["--resume"]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"tinygrad-rep: error: --resume: no checkpoint to resume from in {out} (no checkpoint.npz)"]
    with monkeypatch.context() as m:
        _interrupt_at_call(m, w2v_trainer, "skipgram_pairs", 2)
        assert cli.main(_w2v_argv(tmp_path, out)) == 130
    capsys.readouterr()
    argv = _w2v_argv(tmp_path, out)
    argv[argv.index("--seed") + 1] = "5"
    assert cli.main(argv + ["--resume"]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"tinygrad-rep: error: --resume: {out / 'checkpoint.npz'}: the checkpoint was made with seed = 4, "
        "this run has 5; resume with the same settings"]


def test_cli_ctrl_c_during_the_evaluation_resumes_without_training_again(tmp_path, capsys, monkeypatch):
    argv = ["train", "autoencoder", "--data", "digits", "--epochs", "2", "--hidden", "16", "--bottleneck", "4",
            "--no-finetune", "--quiet"]
    assert cli.main(argv + ["--out", str(tmp_path / "whole")]) == 0
    out = tmp_path / "cut"
    with monkeypatch.context() as m:
        _interrupt_at_call(m, ae, "evaluate", 1)
        capsys.readouterr()
        assert cli.main(argv + ["--out", str(out)]) == 130
    assert capsys.readouterr().err.splitlines() == [
        f"tinygrad-rep: interrupted; the last checkpoint is {out / 'checkpoint.npz'} (after epoch 2 of 2); "
        "run the same command with --resume to continue"]
    with monkeypatch.context() as m:
        _interrupt_at_call(m, ae, "iterate_minibatches", 1)  # training again would be interrupted
        assert cli.main(argv + ["--out", str(out), "--resume"]) == 0
    whole = json.loads((tmp_path / "whole" / "metrics.json").read_text())
    cut = json.loads((out / "metrics.json").read_text())
    assert cut["epoch_losses"] == whole["epoch_losses"] and cut["recon_mse"] == whole["recon_mse"]
    assert sorted(os.listdir(out)) == sorted(os.listdir(tmp_path / "whole"))


def test_cli_resume_from_a_damaged_checkpoint_is_refused_in_one_line(tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "checkpoint.npz").write_bytes(b"PK\x03\x04 not really a zip archive")
    assert cli.main(_w2v_argv(tmp_path, out) + ["--resume"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith(f"tinygrad-rep: error: --resume: {out / 'checkpoint.npz'}")
