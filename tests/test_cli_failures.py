"""Failures of `tinygrad-rep train ...` are one line and an exit status, never a traceback:
divergence (and NaN data), disk full, permission denied, --out that is a file, out of memory,
Ctrl-C, and options out of range. Each failure is injected (monkeypatch), not provoked by timing."""
import errno
import os

import numpy as np
import pytest

from tinygrad_rep import cli
from tinygrad_rep.data import datasets, text
from tinygrad_rep.models import training

AE = ["train", "autoencoder", "--data", "digits", "--epochs", "2", "--hidden", "16", "--bottleneck", "4",
      "--no-finetune", "--quiet"]
CL = ["train", "contrastive", "--data", "digits", "--epochs", "2", "--batch-size", "256", "--dim", "16",
      "--hidden", "32", "--autoencoder", "none", "--no-finetune", "--no-eval", "--quiet"]
MODEL_FILES = {"model.json", "weights.npz", "vectors.txt", "vocab.txt", "checkpoint.npz"}


@pytest.fixture
def corpus(tmp_path):
    sents, _ = text.synthetic_corpus(1, n_sentences=300)
    path = tmp_path / "corpus.txt"
    path.write_text("\n".join(" ".join(s) for s in sents) + "\n")
    return path


def w2v(corpus):
    return ["train", "word2vec", "--corpus", str(corpus), "--dim", "8", "--epochs", "2", "--min-count", "1",
            "--sample", "0", "--batch-size", "128", "--no-eval", "--quiet"]


def run(capsys, argv):
    """Run the CLI -> (exit status, stdout, stderr lines); asserts no traceback was printed."""
    code = cli.main(argv)
    out, err = capsys.readouterr()
    assert "Traceback" not in err and "Traceback" not in out
    return code, out, err.splitlines()


# ------------------------------------------------------------------------------ 16: divergence

def test_word2vec_divergence_exits_1_and_writes_no_model(tmp_path, capsys, corpus):
    out = tmp_path / "w"
    code, _, err = run(capsys, w2v(corpus) + ["--lr", "1e6", "--out", str(out)])
    assert code == 1
    assert err == ["tinygrad-rep: error: training diverged at epoch 1, step 1: the loss is nan; try a smaller --lr"]
    assert not set(os.listdir(out)) & MODEL_FILES


def test_contrastive_divergence_is_caught_on_the_parameters(tmp_path, capsys):
    # NT-Xent is bounded: the loss stays finite while the weights jump to ~1e6
    out = tmp_path / "c"
    code, _, err = run(capsys, CL + ["--lr", "1e6", "--out", str(out)])
    assert code == 1 and len(err) == 1
    assert err[0].startswith("tinygrad-rep: error: training diverged at epoch 1, step 1: the parameters' norm "
                             "grew from ")
    assert err[0].endswith(" within 1 step; try a smaller --lr or a larger --temperature")
    assert os.listdir(out) == []


def test_autoencoder_divergence_exits_1(tmp_path, capsys):
    code, _, err = run(capsys, AE + ["--lr", "1e6", "--out", str(tmp_path / "a")])
    assert code == 1 and len(err) == 1 and "training diverged at epoch 1, step 1" in err[0]
    assert os.listdir(tmp_path / "a") == []


@pytest.mark.parametrize("argv", [AE, CL])
def test_nan_in_the_data_is_blamed_on_the_data_naming_the_row(tmp_path, capsys, monkeypatch, argv):
    real = datasets.load

    def load(name, path=None):
        x_train, y_train, x_test, y_test = real(name, path)
        x_train = x_train.copy()
        x_train[17, 5] = np.nan
        x_train[40] = np.inf
        return x_train, y_train, x_test, y_test
    monkeypatch.setattr(datasets, "load", load)
    code, _, err = run(capsys, argv + ["--out", str(tmp_path / "o")])
    assert code == 1
    assert err == ["tinygrad-rep: error: training data: row 17 holds nan (column 5); 2 of 1437 rows are not finite"]


def test_watch_names_a_non_finite_gradient_and_parameter():
    from tinygrad_rep import Tensor
    w = Tensor(np.ones(3, np.float32), requires_grad=True)
    watch = training.DivergenceWatch([("w", w)], hint="try less")
    w.grad = Tensor(np.array([0.0, np.inf, 0.0], np.float32))
    with pytest.raises(training.DivergenceError, match=r"^training diverged at epoch 2, step 0: the gradient "
                                                       r"of w is not finite; try less$"):
        watch.gradients(epoch=2)
    w.data[1] = np.nan
    with pytest.raises(training.DivergenceError, match=r"^training diverged at step 1: parameter w is not finite"):
        watch.step(0.5)


def test_watch_allows_steady_growth_but_not_a_jump():
    p = np.ones(4, np.float32)
    watch = training.DivergenceWatch([("p", p)], window=3)
    for _ in range(20):
        p *= 2.0  # 1000x over ten steps, never within three
        watch.step(1.0)
    p *= 1001.0
    with pytest.raises(training.DivergenceError, match="norm grew from 5.24e\\+05 to 2.1e\\+09 within 3 steps"):
        watch.step(1.0)


# ------------------------------------------------------------------------- 17: expected failures

@pytest.mark.parametrize("argv", [AE, CL, "w2v"])
def test_disk_full_during_a_save_is_one_line(tmp_path, capsys, monkeypatch, corpus, argv):
    argv = w2v(corpus) if argv == "w2v" else argv

    def replace(src, dst):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    monkeypatch.setattr(os, "replace", replace)
    out = tmp_path / "a"
    code, _, err = run(capsys, argv + ["--out", str(out)])
    assert code == 1
    assert err == [f"tinygrad-rep: error: No space left on device (writing into {out})"]
    assert os.listdir(out) == []  # the temporary file of the failed write is gone too


def test_permission_denied_names_the_path(tmp_path, capsys, monkeypatch):
    def replace(src, dst):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), os.fspath(dst))
    monkeypatch.setattr(os, "replace", replace)
    out = tmp_path / "a"
    code, _, err = run(capsys, AE + ["--out", str(out)])
    assert code == 1
    assert err == [f"tinygrad-rep: error: {out / 'checkpoint.npz'}: Permission denied"]


def test_an_output_folder_that_cannot_be_created_fails_before_training(tmp_path, capsys, monkeypatch):
    def makedirs(path, *a, **k):  # the tests run as root, where chmod stops nothing
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), path)
    monkeypatch.setattr(os, "makedirs", makedirs)
    out = tmp_path / "ro" / "a"
    code, printed, err = run(capsys, AE + ["--out", str(out)])
    assert code == 1 and printed == ""
    assert err == [f"tinygrad-rep: error: cannot create the output folder {out}: Permission denied"]


@pytest.mark.parametrize("argv", [AE, CL, "w2v"])
def test_out_that_is_a_file_is_refused_before_training(tmp_path, capsys, corpus, argv):
    argv = w2v(corpus) if argv == "w2v" else argv
    target = tmp_path / "file"
    target.write_text("keep me")
    code, printed, err = run(capsys, argv + ["--out", str(target)])
    assert code == 2
    assert err == [f"tinygrad-rep: error: --out {target} exists and is not a folder"]
    assert "epoch" not in printed and target.read_text() == "keep me"


def test_out_of_memory_is_one_line(tmp_path, capsys, monkeypatch):
    from tinygrad_rep.models import contrastive

    def loss(*a, **k):
        raise MemoryError("Unable to allocate 1.00 GiB for an array with shape (512, 524288) and data type float32")
    monkeypatch.setattr(contrastive.SimCLR, "loss", loss)
    code, _, err = run(capsys, CL + ["--out", str(tmp_path / "c")])
    assert code == 1
    assert err == ["tinygrad-rep: error: out of memory: Unable to allocate 1.00 GiB for an array with shape "
                   "(512, 524288) and data type float32; try smaller settings"]


def test_ctrl_c_before_the_first_checkpoint(tmp_path, capsys, monkeypatch):
    from tinygrad_rep.models import autoencoder

    def loss(*a, **k):
        raise KeyboardInterrupt
    monkeypatch.setattr(autoencoder.Autoencoder, "loss", loss)
    code, _, err = run(capsys, AE + ["--out", str(tmp_path / "a")])
    assert code == 130
    assert err == ["tinygrad-rep: interrupted before the first epoch ended; no checkpoint was written"]


def test_bad_option_types_are_one_line(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["train", "autoencoder", "--epochs", "two", "--out", "x"])
    assert e.value.code == 2
    assert capsys.readouterr().err.splitlines() == [
        "tinygrad-rep train autoencoder: error: argument --epochs: invalid int value: 'two' "
        "(see tinygrad-rep train autoencoder --help)"]


# ------------------------------------------------------------------------ 19: option validation

@pytest.mark.parametrize("extra, message", [
    (["--finetune-steps", "-5"], "--finetune-steps must be positive, got -5"),
    (["--finetune-steps", "0"], "--finetune-steps must be positive, got 0"),
    (["--noise", "nan"], "--noise must be a finite number, got nan"),
    (["--noise", "-0.1"], "--noise must be non-negative, got -0.1"),
    (["--mask-ratio", "1"], "--mask-ratio must be in (0, 1), got 1.0"),
    (["--lr", "inf"], "--lr must be a finite number, got inf"),
    (["--batch-size", "0"], "--batch-size must be positive, got 0"),
    (["--seed", "-1"], "--seed must be non-negative, got -1"),
    (["--hidden", "16,0"], "--hidden must list positive widths, got '16,0'"),
])
def test_autoencoder_options_are_checked_before_training(tmp_path, capsys, extra, message):
    code, printed, err = run(capsys, AE + ["--out", str(tmp_path / "a")] + extra)
    assert code == 2 and printed == ""
    assert err == [f"tinygrad-rep: error: {message}"]
    assert not (tmp_path / "a").exists()


@pytest.mark.parametrize("extra, message", [
    (["--temperature", "nan"], "--temperature must be a finite number, got nan"),
    (["--margin", "-1"], "--margin must be non-negative, got -1.0"),
    (["--label-draws", "0"], "--label-draws must be positive, got 0"),
    (["--finetune-steps", "-5"], "--finetune-steps must be positive, got -5"),
    (["--warmup-epochs", "nan"], "--warmup-epochs must be a finite number, got nan"),
    (["--autoencoder-epochs", "0"], "--autoencoder-epochs must be positive, got 0"),
    (["--out", ""], "--out must name a folder, got ''"),
])
def test_contrastive_options_are_checked_before_training(tmp_path, capsys, extra, message):
    argv = CL + ["--out", str(tmp_path / "c")] + extra
    code, printed, err = run(capsys, argv)
    assert code == 2 and "epoch" not in printed
    assert err == [f"tinygrad-rep: error: {message}"]


@pytest.mark.parametrize("extra, message", [
    (["--window", "0"], "--window must be positive, got 0"),
    (["--window", "101"], "--window must be at most 100, got 101"),
    (["--sample", "1"], "--sample must be in [0, 1), got 1.0"),
    (["--sample", "nan"], "--sample must be a finite number, got nan"),
    (["--min-lr", "0.5"], "--min-lr must be in [0, 0.025], got 0.5"),
    (["--negative", "0"], "--negative must be at least 1 for negative sampling, got 0"),
    (["--threads", "0"], "--threads must be positive, got 0"),
    (["--max-words", "-3"], "--max-words must be positive, got -3"),
])
def test_word2vec_options_are_checked_before_training(tmp_path, capsys, corpus, extra, message):
    code, printed, err = run(capsys, w2v(corpus) + ["--out", str(tmp_path / "w")] + extra)
    assert code == 2 and printed == ""
    assert err == [f"tinygrad-rep: error: {message}"]


def test_query_and_graph_options_use_the_same_checks(tmp_path, capsys):
    code, _, err = run(capsys, ["word2vec", "neighbors", "war", "-k", "0", "--vectors", str(tmp_path)])
    assert code == 2 and err == ["tinygrad-rep: error: -k must be positive, got 0"]
    code, _, err = run(capsys, ["graph", "--batch-size", "0", "--out", str(tmp_path / "g")])
    assert code == 2 and err == ["tinygrad-rep: error: --batch-size must be positive, got 0"]
