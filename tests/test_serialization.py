"""Tests for tr.save / tr.load: exact round trips of any key, atomic writes, every single-bit flip
refused or harmless, and errors that name the file."""

import io
import os
import re
import signal
import zipfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tinygrad_rep import nn, serialization
from tinygrad_rep.serialization import StateFileError, load, save
from tinygrad_rep.tensor import Tensor


def model():
    return nn.Sequential(nn.Linear(4, 8, rng=0), nn.ReLU(), nn.Linear(8, 3, rng=1, dtype=np.float64),
                         nn.Sequential(nn.Embedding(5, 2, rng=2)))


def test_module_round_trip_is_exact(tmp_path):
    a = model()
    path = tmp_path / "model.npz"
    save(a, path)
    loaded = load(path)
    sd = a.state_dict()
    assert list(loaded) == list(sd) == ["0.weight", "0.bias", "2.weight", "2.bias", "3.0.weight"]
    for k in sd:
        assert loaded[k].dtype == sd[k].dtype and loaded[k].shape == sd[k].shape
        np.testing.assert_array_equal(loaded[k], sd[k])
    b = nn.Sequential(nn.Linear(4, 8, rng=5), nn.ReLU(), nn.Linear(8, 3, rng=6, dtype=np.float64),
                      nn.Sequential(nn.Embedding(5, 2, rng=7)))
    b.load_state_dict(load(str(path)))
    x = Tensor(np.random.default_rng(0).standard_normal((2, 4)).astype(np.float32))
    np.testing.assert_array_equal(a[:3](x).data, b[:3](x).data)


def test_dict_of_arrays_and_tensors_keeps_order_and_odd_keys(tmp_path):
    sd = {"z": np.arange(3, dtype=np.int64), "file": Tensor(np.ones((2, 2))),
          "allow_pickle": np.float32(1.5), "a.b/c": np.zeros((0, 3)), "scalar": 3.0}
    path = tmp_path / "state.npz"
    save(sd, path)
    out = load(path)
    assert list(out) == list(sd)
    np.testing.assert_array_equal(out["file"], np.ones((2, 2)))
    assert out["allow_pickle"].dtype == np.float32 and out["allow_pickle"] == 1.5
    assert out["a.b/c"].shape == (0, 3) and out["scalar"].shape == ()
    assert sorted(np.load(path).files) == sorted(sd)  # a plain .npz that numpy reads too


def test_save_overwrites_and_leaves_no_temp_files(tmp_path):
    path = tmp_path / "m.npz"
    save({"a": np.zeros(2)}, path)
    save({"a": np.ones(3)}, path)
    assert os.listdir(tmp_path) == ["m.npz"]
    np.testing.assert_array_equal(load(path)["a"], np.ones(3))


def test_save_rejects_bad_input(tmp_path):
    with pytest.raises(TypeError, match="expected a Module or a dict of arrays, got list"):
        save([np.zeros(2)], tmp_path / "x.npz")
    with pytest.raises(TypeError, match="keys must be non-empty strings, got 3"):
        save({3: np.zeros(2)}, tmp_path / "x.npz")
    with pytest.raises(TypeError, match=r"value of 'o' is not a numeric array \(dtype object\)"):
        save({"o": np.array([{}], dtype=object)}, tmp_path / "x.npz")
    assert os.listdir(tmp_path) == []


def test_failure_during_write_leaves_target_untouched(tmp_path, monkeypatch):
    path = tmp_path / "model.npz"
    save({"w": np.arange(4.0)}, path)
    original = path.read_bytes()
    real_write = np.lib.format.write_array
    calls = []

    def write_then_fail(fp, array, **kw):
        calls.append(1)
        if len(calls) == 2:  # the first member is on disk, the second half-written: then it fails
            fp.write(b"\x93NUMPY partial")
            raise OSError("disk full (simulated)")
        return real_write(fp, array, **kw)

    monkeypatch.setattr(np.lib.format, "write_array", write_then_fail)
    with pytest.raises(OSError, match=r"disk full \(simulated\)"):
        save({"w": np.ones(1000), "v": np.ones(1000)}, path)
    assert len(calls) == 2
    assert path.read_bytes() == original
    assert os.listdir(tmp_path) == ["model.npz"]


def test_failure_during_rename_leaves_no_temp_file(tmp_path, monkeypatch):
    path = tmp_path / "new.npz"

    def broken_replace(src, dst):
        raise PermissionError("rename refused (simulated)")

    monkeypatch.setattr(serialization.os, "replace", broken_replace)
    with pytest.raises(PermissionError):
        save({"w": np.zeros(2)}, path)
    assert os.listdir(tmp_path) == []


def test_missing_file(tmp_path):
    path = tmp_path / "nowhere.npz"
    with pytest.raises(FileNotFoundError, match=re.escape(str(path))) as info:
        load(path)
    assert info.value.filename == str(path)


def test_truncated_file_names_the_file(tmp_path):
    path = tmp_path / "model.npz"
    save(model(), path)
    data = path.read_bytes()
    cut = tmp_path / "cut.npz"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(StateFileError, match=re.escape(f"{cut}: not a valid tinygrad_rep state file (")):
        load(cut)
    with pytest.raises(ValueError, match=re.escape(str(cut))):  # StateFileError is a ValueError
        load(cut)


def test_corrupt_member_is_caught_by_crc(tmp_path):
    path = tmp_path / "model.npz"
    save({"w": np.zeros(1000)}, path)
    data = bytearray(path.read_bytes())
    data[600] ^= 0xFF  # inside the array's bytes: the zip structure is intact, the CRC is not
    path.write_bytes(bytes(data))
    with pytest.raises(StateFileError, match=re.escape(f"{path}: not a valid tinygrad_rep state file") + ".*CRC"):
        load(path)


@pytest.mark.parametrize("content,reason", [
    (b"this is not an npz file at all", "not an .npz (zip) archive: it starts with b'this'"),
    (b"", "the file is empty"),
])
def test_garbage_file_names_the_file(tmp_path, content, reason):
    path = tmp_path / "garbage.npz"
    path.write_bytes(content)
    with pytest.raises(StateFileError, match=re.escape(f"{path}: not a valid tinygrad_rep state file ({reason})")):
        load(path)


def test_npy_and_pickled_members_refused(tmp_path):
    npy = tmp_path / "single.npy"
    np.save(npy, np.zeros(3))
    with pytest.raises(StateFileError, match=re.escape(f"{npy}: not a valid tinygrad_rep state file")):
        load(npy)
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, o=np.array([{"a": 1}], dtype=object))
    with pytest.raises(StateFileError, match=re.escape(f"{pickled}: not a valid tinygrad_rep state file")):
        load(pickled)


def test_directory_is_not_a_state_file(tmp_path):
    with pytest.raises(IsADirectoryError):
        load(tmp_path)


def test_empty_state_dict_round_trips(tmp_path):
    path = tmp_path / "empty.npz"
    save({}, path)
    assert load(path) == {}
    assert zipfile.is_zipfile(path)


# ---------------------------------------------------------------- damage, odd keys, non-regular files

def _same(out, sd):
    return list(out) == list(sd) and all(
        out[k].dtype == sd[k].dtype and out[k].shape == sd[k].shape and out[k].tobytes() == sd[k].tobytes()
        for k in sd)


def test_every_single_bit_flip_is_refused_naming_the_file_or_loads_exactly(tmp_path):
    sd = {"w": np.arange(6, dtype=np.float32).reshape(2, 3), "a": np.array([1, 2], np.int64),
          "a.npy": np.array(3.0)}
    path = tmp_path / "s.npz"
    save(sd, path)
    data = path.read_bytes()
    outcomes = {"refused": 0, "exact": 0}
    fd = os.open(path, os.O_WRONLY)  # flip in place: rewriting the file 7,000 times is slow on some disks
    try:
        for bit in range(len(data) * 8):
            i = bit // 8
            os.pwrite(fd, bytes([data[i] ^ (1 << (bit % 8))]), i)
            try:
                out = load(path)
            except StateFileError as e:
                assert str(e).startswith(f"{path}: not a valid tinygrad_rep state file ("), bit
                outcomes["refused"] += 1
            else:
                # only a flip in a field zipfile does not use (a local header's copy of a size, ...)
                assert _same(out, sd), f"bit {bit} gave {list(out)} silently"
                outcomes["exact"] += 1
            finally:
                os.pwrite(fd, data[i:i + 1], i)
    finally:
        os.close(fd)
    assert outcomes["refused"] > len(data) * 4  # most flips hit the arrays, names or zip structure
    assert _same(load(path), sd)


def test_a_central_directory_that_lost_a_member_is_refused(tmp_path):
    path = tmp_path / "s.npz"
    save({"a": np.zeros(2), "b": np.ones(2)}, path)
    with zipfile.ZipFile(path) as zf:
        comment, first = zf.comment, zf.read("a.npy")
    with zipfile.ZipFile(path, "w") as zf:  # the same seal over an archive without "b"
        zf.writestr("a.npy", first)
        zf.comment = comment
    with pytest.raises(StateFileError, match=re.escape(f"{path}: not a valid tinygrad_rep state file (its "
                                                       "contents do not match the checksum written with it")):
        load(path)


def test_keys_that_differ_by_a_npy_suffix_do_not_collide(tmp_path):
    sd = {"a": np.zeros(1), "a.npy": np.ones(2), "a.npy.npy": np.full(3, 2.0), "b/a.npy": np.arange(4.0)}
    save(sd, tmp_path / "s.npz")
    assert _same(load(tmp_path / "s.npz"), sd)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(keys=st.lists(
    st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), min_size=1, max_size=12)
    | st.sampled_from(["a", "a.npy", "a/b", "/lead", "trail/", "../up", "ü/☃.npy", "..", ".", " "]),
    min_size=1, max_size=6, unique=True))
def test_every_key_round_trips(tmp_path, keys):
    sd = {k: np.full((i + 1,), i, dtype=np.int32) for i, k in enumerate(keys)}
    path = tmp_path / "keys.npz"
    save(sd, path)
    assert _same(load(path), sd)


def test_keys_a_zip_member_name_cannot_hold_are_refused_before_writing(tmp_path):
    with pytest.raises(ValueError, match=re.escape("save: key 'a\\x00b' contains a NUL character")):
        save({"ok": np.zeros(1), "a\x00b": np.zeros(1)}, tmp_path / "x.npz")
    with pytest.raises(ValueError, match="save: key '\\\\ud800' is not valid Unicode"):
        save({"\ud800": np.zeros(1)}, tmp_path / "x.npz")
    assert os.listdir(tmp_path) == []


def test_older_unsealed_files_still_load(tmp_path):
    path = tmp_path / "old.npz"
    np.savez(path, w=np.arange(3.0), b=np.int64(7))  # what earlier versions (and numpy) write
    out = load(path)
    assert list(out) == ["w", "b"] and out["w"].tolist() == [0.0, 1.0, 2.0] and out["b"] == 7
    with zipfile.ZipFile(tmp_path / "odd.npz", "w") as zf:
        zf.writestr("w.npy", _npy(np.zeros(2)))
        zf.writestr("notes.txt", b"hello")
    with pytest.raises(StateFileError, match=re.escape("member 'notes.txt' is not one array of a state file")):
        load(tmp_path / "odd.npz")


def _npy(arr):
    buf = io.BytesIO()
    np.lib.format.write_array(buf, arr)
    return buf.getvalue()


def test_a_fifo_is_refused_without_waiting_for_a_writer(tmp_path):
    fifo = tmp_path / "pipe.npz"
    os.mkfifo(fifo)

    def hung(signum, frame):
        raise TimeoutError("load blocked on a FIFO")
    old = signal.signal(signal.SIGALRM, hung)
    signal.alarm(10)
    try:
        with pytest.raises(StateFileError, match=re.escape(f"{fifo}: a FIFO, not a state file; refusing to read it")):
            load(fifo)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def test_a_header_claiming_a_huge_shape_is_refused_before_allocating(tmp_path):
    header = np.lib.format.header_data_from_array_1_0(np.zeros(1, np.float64))
    header["shape"] = (1 << 40,)  # 8 TiB of float64 claimed by a 100-byte member
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, header)
    buf.write(bytes(8))
    path = tmp_path / "huge.npz"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("w.npy", buf.getvalue())
    with pytest.raises(StateFileError, match=re.escape(f"{path}: not a valid tinygrad_rep state file (member 'w.npy': "
                                                       "its header says shape (1099511627776,) of float64")):
        load(path)
