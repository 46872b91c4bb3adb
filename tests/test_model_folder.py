"""Tests for models/folder.py: a model folder is one unit. A save over an existing folder is interrupted
at every file operation (by an exception, and by a simulated kill that lets no cleanup run) and the
folder must then load as wholly the old model or wholly the new one, with no temporary files piling up;
mixed, changed and malformed folders are refused naming the file (and the key)."""
import errno
import json
import os
import shutil
import signal
import tempfile

import numpy as np
import pytest

from tinygrad_rep.models import folder as mfolder
from tinygrad_rep.models.folder import ModelFolder, ModelFolderError, write_files


class Injected(OSError):
    """The injected failure (an OSError, as a full disk or an I/O error would be)."""


class _CountingFile:
    def __init__(self, f, tick):
        self._f, self._tick = f, tick

    def write(self, data):
        self._tick("write")
        return self._f.write(data)

    def flush(self):
        self._tick("flush")
        return self._f.flush()

    def close(self):
        try:
            self._tick("close")
        finally:
            self._f.close()

    def __getattr__(self, name):
        return getattr(self._f, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


class Injector:
    """Counts file-system operations; raises Injected at the fail_at-th one, and with kill=True at
    every one after it too (a killed process runs no cleanup)."""

    OPS = [(os, "open"), (os, "close"), (os, "fsync"), (os, "fchmod"), (os, "replace"), (os, "unlink"),
           (os, "makedirs"), (os, "listdir"), (tempfile, "mkstemp")]

    def __init__(self, monkeypatch, fail_at=None, kill=False):
        self.count, self.fail_at, self.kill, self.names = 0, fail_at, kill, []
        for module, name in self.OPS:
            monkeypatch.setattr(module, name, self._wrap(name, getattr(module, name)))
        real_fdopen = os.fdopen

        def fdopen(*args, **kwargs):
            self.tick("fdopen")
            return _CountingFile(real_fdopen(*args, **kwargs), self.tick)
        monkeypatch.setattr(os, "fdopen", fdopen)

    def tick(self, name):
        k = self.count
        self.count += 1
        self.names.append(name)
        if self.fail_at is not None and (k == self.fail_at or (self.kill and k > self.fail_at)):
            raise Injected(errno.EIO, f"injected failure at operation {k} ({name})")

    def _wrap(self, name, fn):
        def wrapper(*args, **kwargs):
            if name == "close":  # a failing close still releases the descriptor (as on Linux)
                try:
                    self.tick(name)
                finally:
                    fn(*args, **kwargs)
                return None
            self.tick(name)
            return fn(*args, **kwargs)
        return wrapper


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
MODEL_FILES = {"model.json", "weights.npz", "vocab.txt", "manifest.json", mfolder.LOCK_FILE}


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
