"""Tests for tinygrad_rep.output: the atomic writer under a failure injected at every step, two
writers of one path, permissions, and the JSON, table and note helpers."""
import errno
import json
import os
import stat

import numpy as np
import pytest

from tinygrad_rep import output

from faults import Injected, Injector


def _write_new(path):
    with output.atomic_write(path, "wb") as f:
        f.write(b"new-")
        f.write(b"content")


def test_a_failure_at_every_step_leaves_the_old_file_or_the_new_and_no_temporary(monkeypatch, tmp_path):
    target = tmp_path / "t.bin"
    target.write_bytes(b"old")
    with monkeypatch.context() as m:
        counter = Injector(m)
        _write_new(target)
    n = counter.count
    assert {"mkstemp", "fdopen", "write", "flush", "fsync", "close", "replace"} <= set(counter.names)
    assert target.read_bytes() == b"new-content"
    outcomes = set()
    for k in range(n):
        target.write_bytes(b"old")
        with monkeypatch.context() as m:
            Injector(m, fail_at=k)
            try:
                _write_new(target)
                raised = False
            except Injected:
                raised = True
        content = target.read_bytes()
        # an error before the rename leaves the old file; the folder fsync after it is best effort
        assert content == (b"old" if raised else b"new-content"), (k, counter.names[k])
        assert os.listdir(tmp_path) == ["t.bin"], (k, counter.names[k])
        outcomes.add(raised)
    assert outcomes == {True, False}  # some steps are fatal (write, replace), the folder fsync is not


def test_an_exception_in_the_callers_block_leaves_the_target_untouched(tmp_path):
    target = tmp_path / "m.txt"
    target.write_text("old")
    with pytest.raises(KeyboardInterrupt):
        with output.atomic_write(target) as f:
            f.write("half of the new")
            raise KeyboardInterrupt
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["m.txt"]


def test_a_full_disk_during_the_write_is_reported_and_cleaned_up(tmp_path):
    target = tmp_path / "big.bin"
    with pytest.raises(OSError) as info:
        with output.atomic_write(target, "wb") as f:
            f.write(b"x" * 10)
            raise OSError(errno.ENOSPC, "No space left on device")
    assert info.value.errno == errno.ENOSPC
    assert os.listdir(tmp_path) == []


def test_two_writers_of_one_path_use_distinct_temporaries(tmp_path):
    target = tmp_path / "shared.json"
    with output.atomic_write(target) as a, output.atomic_write(target) as b:
        temps = sorted(os.listdir(tmp_path))
        assert len(temps) == 2 and all(output.is_temporary_name(t) for t in temps)
        assert all(t.startswith(".shared.json.") and t.endswith(".tmp.json") for t in temps)
        a.write("from a")
        b.write("from b")
    # b is committed first (inner context), then a: the last rename wins, nothing is mixed
    assert target.read_text() == "from a"
    assert os.listdir(tmp_path) == ["shared.json"]


def test_permissions_are_kept_on_rewrite_and_follow_the_umask_for_a_new_file(tmp_path):
    old = tmp_path / "kept"
    old.write_text("x")
    old.chmod(0o640)
    output.write_text_atomic(old, "y")
    assert stat.S_IMODE(old.stat().st_mode) == 0o640 and old.read_text() == "y"
    mask = os.umask(0o027)
    try:
        fresh = output.write_text_atomic(tmp_path / "fresh", "z")
    finally:
        os.umask(mask)
    assert stat.S_IMODE(os.stat(fresh).st_mode) == 0o640  # 0o666 & ~0o027


def test_text_mode_encoding_and_the_helpers(tmp_path):
    output.write_text_atomic(tmp_path / "u.txt", "naïve ☃")
    assert (tmp_path / "u.txt").read_bytes() == "naïve ☃".encode("utf-8")
    output.write_text_atomic(tmp_path / "l.txt", "naïve", encoding="latin-1")
    assert (tmp_path / "l.txt").read_bytes() == b"na\xefve"
    output.write_bytes_atomic(tmp_path / "sub" / "b.bin", b"\x00\x01")  # the folder is created
    assert (tmp_path / "sub" / "b.bin").read_bytes() == b"\x00\x01"
    output.write_json_atomic(tmp_path / "m.json", {"a": np.float32(0.5), "b": np.arange(2), "c": np.int64(3)})
    assert json.loads((tmp_path / "m.json").read_text()) == {"a": 0.5, "b": [0, 1], "c": 3}
    with pytest.raises(TypeError, match="not JSON serialisable: object"):
        output.write_json_atomic(tmp_path / "bad.json", {"a": object()})
    assert not (tmp_path / "bad.json").exists()
    with pytest.raises(ValueError, match="mode must be 'w' or 'wb', got 'a'"):
        with output.atomic_write(tmp_path / "x", "a"):
            pass
    with pytest.raises(ValueError, match="text mode only"):
        with output.atomic_write(tmp_path / "x", "wb", encoding="utf-8"):
            pass
    assert sorted(os.listdir(tmp_path)) == ["l.txt", "m.json", "sub", "u.txt"]


def test_writing_over_a_directory_fails_and_leaves_nothing(tmp_path):
    (tmp_path / "d").mkdir()
    with pytest.raises(IsADirectoryError):
        output.write_text_atomic(tmp_path / "d", "x")
    assert os.listdir(tmp_path) == ["d"] and os.listdir(tmp_path / "d") == []


def test_atomic_path_for_writers_that_want_a_file_name(tmp_path):
    target = tmp_path / "plot.png"
    with output.atomic_path(target) as tmp:
        assert os.path.dirname(tmp) == str(tmp_path) and tmp.endswith(".png")
        with open(tmp, "wb") as f:
            f.write(b"png")
    assert target.read_bytes() == b"png"
    with pytest.raises(RuntimeError):
        with output.atomic_path(target) as tmp:
            open(tmp, "wb").close()
            raise RuntimeError("interrupted")
    assert target.read_bytes() == b"png" and os.listdir(tmp_path) == ["plot.png"]


def test_note_once_and_format_table(capsys):
    output._noted.discard("note: hello")
    output.note_once("note: hello")
    output.note_once("note: hello")
    assert capsys.readouterr().err == "note: hello\n"
    text = output.format_table(["a", "b"], [["x", 0.5], ["y", float("nan")]])
    assert text.splitlines() == ["| a | b |", "|---|---|", "| x | 0.5000 |", "| y | n/a |"]
