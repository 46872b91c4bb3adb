"""Tests for models/folder.py: a model folder is one unit. A save over an existing folder is interrupted
at every file operation (by an exception, and by a simulated kill that lets no cleanup run) and the
folder must then load as wholly the old model or wholly the new one, with no temporary files piling up;
mixed, changed and malformed folders are refused naming the file (and the key)."""
import contextlib
import errno
import json
import os
import re
import shutil
import signal

import numpy as np
import pytest

from tinygrad_rep.models import folder as mfolder
from tinygrad_rep.models.folder import ModelFolder, ModelFolderError, write_files

from faults import Injected, Injector


def _model(tag, n):
    """The files of one model: a JSON header, weights and a vocabulary, all different per tag."""
    meta = {"kind": "test", "tag": tag, "weights": "weights.npz"}
    return {"model.json": json.dumps(meta), "weights.npz": bytes([tag]) * n,
            "vocab.txt": "".join(f"w{tag}_{i} {i}\n" for i in range(n // 10 + 1))}


def _read_all(path):
    mf = ModelFolder(path)
    return {name: mf.read_bytes(name) for name in ("model.json", "weights.npz", "vocab.txt")}


def _as_bytes(files):
    return {k: v.encode() if isinstance(v, str) else v for k, v in files.items()}


OLD, NEW = _model(1, 3000), _model(2, 5000)
MODEL_FILES = {"model.json", "weights.npz", "vocab.txt", "manifest.json"}


def test_round_trip_and_other_files_untouched(tmp_path):
    (tmp_path / "metrics.json").write_text("{}")
    write_files(tmp_path, OLD)
    assert _read_all(tmp_path) == _as_bytes(OLD)
    write_files(tmp_path, NEW)
    assert _read_all(tmp_path) == _as_bytes(NEW)
    assert set(os.listdir(tmp_path)) == MODEL_FILES | {"metrics.json"}
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert [e["name"] for e in manifest["files"]] == ["model.json", "weights.npz", "vocab.txt"]
    assert manifest["files"][1]["size"] == 5000


@pytest.mark.parametrize("kill", [False, True], ids=["exception", "kill"])
def test_a_save_interrupted_at_every_file_operation_loads_as_old_or_new(monkeypatch, tmp_path, kill):
    base = tmp_path / "base"
    write_files(base, OLD)
    with monkeypatch.context() as m:
        counter = Injector(m)
        write_files(tmp_path / "probe", OLD)
        counter.count, counter.names = 0, []  # count only the save over an existing folder
        write_files(tmp_path / "probe", NEW)
    n = counter.count
    assert n > 20 and {"mkstemp", "write", "fsync", "replace"} <= set(counter.names)
    seen = set()
    for k in range(n):
        work = tmp_path / f"k{k}"
        shutil.copytree(base, work)
        with monkeypatch.context() as m:
            Injector(m, fail_at=k, kill=kill)
            try:
                write_files(work, NEW)
                raised = False
            except Injected:
                raised = True
        got = _read_all(work)
        assert got in (_as_bytes(OLD), _as_bytes(NEW)), (k, counter.names[k])
        if not kill:
            if raised and got == _as_bytes(NEW):  # failed after its commit: the new model stands
                assert counter.names[k] in ("replace", "open", "fsync", "close", "unlink", "listdir"), k
            leftovers = set(os.listdir(work)) - MODEL_FILES
            if got == _as_bytes(OLD):  # nothing of an uncommitted save is left behind
                assert leftovers == set(), (k, counter.names[k], leftovers)
        seen.add("new" if got == _as_bytes(NEW) else "old")
        # the next save finishes or clears whatever the interrupted one left
        write_files(work, OLD)
        assert _read_all(work) == _as_bytes(OLD)
        assert set(os.listdir(work)) == MODEL_FILES, (k, counter.names[k])
        shutil.rmtree(work)
    assert seen == {"old", "new"}


def test_a_save_stopped_while_moving_files_is_read_from_its_staging_files(tmp_path, monkeypatch):
    write_files(tmp_path, OLD)
    real_replace, calls = os.replace, []

    def replace(src, dst):  # the manifest rename (the commit) and one file move, then a "kill"
        calls.append(dst)
        if len(calls) > 2:
            raise Injected(errno.EIO, "killed")
        return real_replace(src, dst)
    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(Injected):
        write_files(tmp_path, NEW)
    monkeypatch.undo()
    assert os.path.basename(calls[0]) == "manifest.json"
    assert (tmp_path / "weights.npz").read_bytes() == OLD["weights.npz"]  # not moved yet: mixed on disk
    folder_before = sorted(os.listdir(tmp_path))
    assert _read_all(tmp_path) == _as_bytes(NEW)  # ... but read as the new model
    assert sorted(os.listdir(tmp_path)) == folder_before  # reading changes nothing


def test_repeated_interrupted_saves_do_not_accumulate_files(tmp_path, monkeypatch):
    write_files(tmp_path, OLD)
    for i in range(5):
        with monkeypatch.context() as m:
            Injector(m, fail_at=12 + i, kill=True)
            with pytest.raises(Injected):
                write_files(tmp_path, NEW)
        extra = set(os.listdir(tmp_path)) - MODEL_FILES
        assert len(extra) <= 4, extra  # at most one save's staging files and manifest temporary
    write_files(tmp_path, NEW)
    assert set(os.listdir(tmp_path)) == MODEL_FILES


def test_a_changed_or_mixed_folder_is_refused_naming_the_file(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    write_files(a, OLD)
    write_files(b, NEW)
    shutil.copy(b / "vocab.txt", a / "vocab.txt")  # a vocabulary of another save beside these weights
    with pytest.raises(ModelFolderError, match=f"^{a / 'vocab.txt'}: missing or not the file manifest.json lists"):
        ModelFolder(a)
    data = bytearray((b / "weights.npz").read_bytes())
    data[100] ^= 1
    (b / "weights.npz").write_bytes(bytes(data))
    with pytest.raises(ModelFolderError, match=f"^{b / 'weights.npz'}: missing or not"):
        ModelFolder(b)
    (b / "weights.npz").unlink()
    with pytest.raises(ModelFolderError, match=f"^{b / 'weights.npz'}: missing or not"):
        ModelFolder(b)


@pytest.mark.parametrize("content,message", [
    (b'{"kind": "x", "caf\xe9": 1}', "not valid UTF-8 at byte 18"),
    (b'{"kind": ', "not valid JSON"),
    (b'[1, 2]', "expected a JSON object, got list"),
    (b'{"weights": "w.npz"}', "missing key 'kind'"),
    (b'{"kind": 3}', "key 'kind' must be str, got 3"),
])
def test_malformed_model_json_names_the_file_and_the_key(tmp_path, content, message):
    write_files(tmp_path, {"model.json": content})
    with pytest.raises(ModelFolderError) as info:
        ModelFolder(tmp_path)
    assert str(info.value).startswith(f"{tmp_path / 'model.json'}: ") and message in str(info.value)


@pytest.mark.parametrize("weights", ["../other/weights.npz", "/etc/passwd", "sub/w.npz", "..", "", 7])
def test_names_in_model_json_stay_inside_the_folder(tmp_path, weights):
    write_files(tmp_path, {"model.json": json.dumps({"kind": "k", "weights": weights})})
    mf = ModelFolder(tmp_path)
    with pytest.raises(ModelFolderError, match=f"^{tmp_path / 'model.json'}: key 'weights' must"):
        mf.name("weights", "weights.npz")
    assert mf.name("vocab", "vocab.txt") == "vocab.txt"


def test_a_file_not_in_the_manifest_is_not_read(tmp_path):
    write_files(tmp_path, {"model.json": '{"kind": "k"}'})
    (tmp_path / "weights.npz").write_bytes(b"planted")
    with pytest.raises(ModelFolderError, match=f"^{tmp_path / 'weights.npz'}: not listed in"):
        ModelFolder(tmp_path).read_bytes("weights.npz")


def test_oversized_files_are_refused_before_reading(tmp_path):
    (tmp_path / "model.json").write_bytes(b" " * (mfolder.MAX_META_BYTES + 1))  # a folder without manifest
    with pytest.raises(ModelFolderError, match=f"^{tmp_path / 'model.json'}: 16777217 bytes, more than"):
        ModelFolder(tmp_path)
    write_files(tmp_path / "m", {"model.json": '{"kind": "k"}', "vocab.txt": "x" * 100})
    with pytest.raises(ModelFolderError, match="vocab.txt: 100 bytes, more than such a file can be \\(10\\)"):
        ModelFolder(tmp_path / "m").read_bytes("vocab.txt", limit=10)


def _alarm(seconds):
    def hung(signum, frame):
        raise TimeoutError("blocked reading a FIFO")
    old = signal.signal(signal.SIGALRM, hung)
    signal.alarm(seconds)
    return old


@pytest.mark.parametrize("which", ["model.json", "weights.npz"])
def test_a_fifo_in_the_folder_is_refused_without_blocking(tmp_path, which):
    (tmp_path / "model.json").write_text('{"kind": "k"}')  # no manifest: an older folder
    if which == "model.json":
        (tmp_path / "model.json").unlink()
    os.mkfifo(tmp_path / which)
    old = _alarm(10)
    try:
        with pytest.raises(ModelFolderError, match=f"^{tmp_path / which}: a FIFO, not a"):
            ModelFolder(tmp_path).read_bytes(which)
        write_files(tmp_path / "m", {"model.json": '{"kind": "k"}', "weights.npz": b"w"})
        (tmp_path / "m" / "weights.npz").unlink()
        os.mkfifo(tmp_path / "m" / "weights.npz")
        with pytest.raises(ModelFolderError, match=f"^{tmp_path / 'm' / 'weights.npz'}: a FIFO"):
            ModelFolder(tmp_path / "m")
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def test_a_damaged_manifest_is_refused_and_replaced_by_the_next_save(tmp_path):
    write_files(tmp_path, OLD)
    (tmp_path / "manifest.json").write_text('{"format": "tinygrad_rep model folder", "version": 1, '
                                            '"files": [{"name": "../x", "size": 1, "sha256": "00"}]}')
    with pytest.raises(ModelFolderError, match="manifest.json \\(files\\[0\\]\\): key 'name' must name a file inside"):
        ModelFolder(tmp_path)
    write_files(tmp_path, NEW)
    assert _read_all(tmp_path) == _as_bytes(NEW)


def test_reserved_and_unsafe_names_are_refused_when_writing(tmp_path):
    with pytest.raises(ValueError, match="'manifest.json' is reserved"):
        write_files(tmp_path, {"manifest.json": b""})
    with pytest.raises(ModelFolderError, match="^write_files: a file name must name a file inside the model folder, got '../x'"):
        write_files(tmp_path, {"../x": b""})
    assert os.listdir(tmp_path) == []


# ---------------------------------------------------------------- the models' own folders

def _autoencoder(seed):
    from tinygrad_rep.models.autoencoder import Autoencoder
    return Autoencoder(16, hidden=(8,), bottleneck=3, seed=seed)


def _word2vec(seed, n=6):
    from tinygrad_rep.models.word2vec import Word2Vec, Word2VecConfig
    from tinygrad_rep.models.word2vec.vocabulary import Vocab
    words = [f"w{seed}x{i}" for i in range(n)]
    return Word2Vec(Vocab(words, list(range(n + 10, 10, -1))), Word2VecConfig(dim=4, seed=seed))


def _codes(model):
    return model.encode(np.linspace(0, 1, 32, dtype=np.float32).reshape(2, 16))


def test_a_word2vec_save_interrupted_at_every_file_operation_loads_as_old_or_new(monkeypatch, tmp_path):
    from tinygrad_rep import models
    old, new = _word2vec(1), _word2vec(2, n=9)
    old.save(tmp_path / "base")
    shutil.copytree(tmp_path / "base", tmp_path / "probe")
    with monkeypatch.context() as m:
        counter = Injector(m)
        new.save(tmp_path / "probe")  # count the file operations of a save over an existing folder
    n = counter.count
    assert n > 30
    states = set()
    for k in range(n):
        work = tmp_path / f"k{k}"
        shutil.copytree(tmp_path / "base", work)
        with monkeypatch.context() as m:
            Injector(m, fail_at=k, kill=True)
            with contextlib.suppress(Injected):
                new.save(work)
        back = models.load(work)
        assert back.vocab.words in (old.vocab.words, new.vocab.words), k
        ref = old if back.vocab.words == old.vocab.words else new
        np.testing.assert_array_equal(back.W_in, ref.W_in)
        header = ModelFolder(work).read_bytes("vectors.txt").split(b"\n", 1)[0]
        assert header == (b"9 4" if ref is new else b"6 4"), k  # vectors.txt of the same save
        states.add(ref is new)
        new.save(work)
        assert not [f for f in os.listdir(work) if f.startswith(".")], k  # leftovers cleared
        shutil.rmtree(work)
    assert states == {False, True}


def test_models_load_refuses_a_mixed_folder_and_paths_outside_it(tmp_path):
    from tinygrad_rep import models
    a, b = _autoencoder(1), _autoencoder(2)
    a.save(tmp_path / "a")
    b.save(tmp_path / "b")
    np.testing.assert_array_equal(_codes(models.load(tmp_path / "a")), _codes(a))
    shutil.copy(tmp_path / "b" / "weights.npz", tmp_path / "a" / "weights.npz")  # new weights, old json
    with pytest.raises(ModelFolderError, match=f"^{tmp_path / 'a' / 'weights.npz'}: missing or not the file"):
        models.load(tmp_path / "a")
    for weights in ("../b/weights.npz", str(tmp_path / "b" / "weights.npz")):
        meta = json.loads((tmp_path / "b" / "model.json").read_text())
        meta["weights"] = weights
        write_files(tmp_path / "c", {"model.json": json.dumps(meta)})
        with pytest.raises(ModelFolderError, match=f"^{tmp_path / 'c' / 'model.json'}: key 'weights' must name a file inside"):
            models.load(tmp_path / "c")


@pytest.mark.parametrize("change,message", [
    ({"config": {"input_dim": 10 ** 12, "hidden": [8], "bottleneck": 3}}, "key 'config.input_dim' is 1000000000000, more than"),
    ({"config": {"input_dim": 16, "hidden": [8] * 50, "bottleneck": 3}}, "key 'config.hidden' lists 50 sizes"),
    ({"config": [16, 8]}, "key 'config' must be dict"),
    ({"config": {"input_dim": 16, "hidden": [8], "bottleneck": 3, "variant": "sparse"}}, "key 'config' does not describe"),
    ({"kind": "hologram"}, "unknown model kind 'hologram'"),
])
def test_models_load_refuses_a_bad_config_before_building(tmp_path, change, message):
    from tinygrad_rep import models
    _autoencoder(1).save(tmp_path / "m")
    meta = {**json.loads((tmp_path / "m" / "model.json").read_text()), **change}
    weights = (tmp_path / "m" / "weights.npz").read_bytes()
    write_files(tmp_path / "m", {"model.json": json.dumps(meta), "weights.npz": weights})
    with pytest.raises(ModelFolderError) as info:
        models.load(tmp_path / "m")
    assert str(info.value).startswith(f"{tmp_path / 'm' / 'model.json'}: ") and message in str(info.value)


def test_folders_saved_before_manifests_still_load(tmp_path):
    from tinygrad_rep import models, save
    ae = _autoencoder(4)
    folder = tmp_path / "old"
    folder.mkdir()
    save(ae.state_dict(), folder / "weights.npz")
    (folder / "model.json").write_text(json.dumps({"kind": "autoencoder", "config": ae.config(),
                                                   "weights": "weights.npz"}))
    np.testing.assert_array_equal(_codes(models.load(folder)), _codes(ae))
    ae.save(folder)  # re-saved: now with a manifest
    assert (folder / "manifest.json").exists()
    np.testing.assert_array_equal(_codes(models.load(folder)), _codes(ae))


def test_an_interrupt_just_after_the_commit_keeps_the_new_model(tmp_path, monkeypatch):
    write_files(tmp_path, OLD)
    real_replace = os.replace

    def replace_then_interrupt(src, dst):
        real_replace(src, dst)
        if os.path.basename(dst) == "manifest.json":
            raise KeyboardInterrupt  # delivered right after the rename that commits the save
    monkeypatch.setattr(os, "replace", replace_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        write_files(tmp_path, NEW)
    monkeypatch.undo()
    assert _read_all(tmp_path) == _as_bytes(NEW)  # from the staging files, which were kept
    write_files(tmp_path, NEW)
    assert set(os.listdir(tmp_path)) == MODEL_FILES


def test_a_word2vec_vocabulary_that_is_not_utf8_names_the_file_and_byte(tmp_path):
    from tinygrad_rep import models
    model = _word2vec(3)
    model.save(tmp_path / "m")
    vocab = (tmp_path / "m" / "vocab.txt").read_bytes()
    bad = vocab[:5] + b"\xff" + vocab[6:]
    files = {name: (tmp_path / "m" / name).read_bytes() for name in ("model.json", "weights.npz", "vectors.txt")}
    write_files(tmp_path / "m", {**files, "vocab.txt": bad})  # consistent manifest, bad content
    with pytest.raises(ModelFolderError, match=re.escape(f"{tmp_path / 'm' / 'vocab.txt'}: not valid UTF-8 at byte 5")):
        models.load(tmp_path / "m")


def test_a_save_waiting_on_a_held_folder_lock_gives_up_with_an_error(tmp_path, monkeypatch):
    """A lock nobody releases (another process, or a descriptor an injected failure left open)
    makes a save fail in one line after LOCK_TIMEOUT, never hang."""
    import fcntl
    import os
    from tinygrad_rep.models import folder as model_folder
    monkeypatch.setattr(model_folder, "LOCK_TIMEOUT", 0.2)
    fd = os.open(tmp_path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        with pytest.raises(model_folder.ModelFolderError, match="another save of this model folder"):
            with model_folder._folder_lock(str(tmp_path)):
                pass
    finally:
        os.close(fd)
    with model_folder._folder_lock(str(tmp_path)):  # released: the next save proceeds
        pass
