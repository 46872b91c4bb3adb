"""Saving and loading state dicts as .npz files (tr.save / tr.load), written atomically.

    tr.save(model, "model.npz")              # or tr.save(model.state_dict(), path)
    model.load_state_dict(tr.load("model.npz"))

The file is a standard numpy .npz archive (one uncompressed .npy member per key, in order), so
`np.load` reads it too. Its zip comment seals it: a SHA-256 over every member's name, size and
content, checked by `load`, so a damaged file is refused (naming it) instead of returning fewer
or different arrays; files without the seal (older ones, np.savez) still load. `save` writes
through the library's atomic writer (tinygrad_rep/output.py): a reader sees the old file or the
new one, never a half-written one, and a failure leaves no temporary file behind. No pickles are
written or read.
"""
import collections
import collections.abc
import errno
import hashlib
import io
import os
import zipfile

import numpy as np

from .output import NotARegularFileError, atomic_write, open_regular_file
from .tensor import Tensor

__all__ = ["save", "load", "write_state", "read_state", "StateFileError"]


class StateFileError(ValueError):
    """A file that exists but is not a readable state file (truncated, corrupt, wrong format)."""


def _arrays(obj):
    """The ordered name -> ndarray mapping to write, from a Module or a mapping."""
    if hasattr(obj, "state_dict") and callable(obj.state_dict):
        obj = obj.state_dict()
    if not isinstance(obj, collections.abc.Mapping):
        raise TypeError(f"save: expected a Module or a dict of arrays, got {type(obj).__name__}")
    out = collections.OrderedDict()
    for k, v in obj.items():
        if not isinstance(k, str) or not k:
            raise TypeError(f"save: keys must be non-empty strings, got {k!r}")
        arr = v.data if isinstance(v, Tensor) else np.asarray(v)
        if arr.dtype.hasobject:
            raise TypeError(f"save: value of {k!r} is not a numeric array (dtype {arr.dtype})")
        out[k] = arr
    return out


def _write_npz(f, arrays):
    """Write the archive; returns nothing. Each member is hashed as it is written, and the archive
    comment gets the seal over all members (see _seal)."""
    # What np.savez does, written out: np.savez takes keys as keyword arguments, so a key named
    # "file" or "allow_pickle" would collide with its own parameters.
    entries = []
    with zipfile.ZipFile(f, mode="w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for k, arr in arrays.items():
            name = _member_name(k)
            with zf.open(name, mode="w", force_zip64=True) as member:
                hashing = _Hashing(member)
                np.lib.format.write_array(hashing, np.asanyarray(arr), allow_pickle=False)
            entries.append((name, hashing.size, hashing.sha.digest()))
        zf.comment = _seal(entries)


class _Hashing:
    """A write-only file object that hashes and counts what passes through it."""

    def __init__(self, f):
        self.f, self.sha, self.size = f, hashlib.sha256(), 0

    def write(self, data):
        self.sha.update(data)
        self.size += len(data)
        return self.f.write(data)


def _member_name(key):
    """The zip member name of a key: key + ".npy", as np.savez names it (so np.load reads the same
    keys). Keys that a zip member name cannot hold exactly are refused here, not mangled."""
    if "\x00" in key:
        raise ValueError(f"save: key {key!r} contains a NUL character, which a zip member name cannot hold")
    if os.sep != "/" and os.sep in key:  # zipfile would turn it into "/" on this platform
        raise ValueError(f"save: key {key!r} contains {os.sep!r}, which zip member names cannot hold here")
    try:
        size = len((key + ".npy").encode("utf-8"))
    except UnicodeEncodeError as e:
        raise ValueError(f"save: key {key!r} is not valid Unicode ({e.reason})") from None
    if size > 0xFFFF:
        raise ValueError(f"save: key of {size - 4} bytes is longer than a zip member name can be")
    return key + ".npy"


# The archive comment of a state file written here: this marker, then the hex SHA-256 over every
# member's name, size and content in order. A damaged archive (a member missing from the central
# directory, renamed, resized or changed) no longer matches it, so load refuses it instead of
# returning fewer or different arrays. Files without the comment (older files, np.savez) are read
# as plain .npz archives, checked by the zip CRCs alone.
_SEAL = b"tinygrad_rep state v2 sha256="


def _seal(entries):
    """The archive comment for members entries = [(name, size, sha256 digest), ...]."""
    top = hashlib.sha256(len(entries).to_bytes(8, "little"))
    for name, size, digest in entries:
        raw = name.encode("utf-8")
        top.update(len(raw).to_bytes(8, "little") + raw + size.to_bytes(8, "little") + digest)
    return _SEAL + top.hexdigest().encode("ascii")


def save(obj, path):
    """Write a state dict (or a Module's state_dict()) to `path` as an .npz archive, atomically.

    Values may be numpy arrays or Tensors; keys are kept in order and come back exactly (a key
    that a zip member name cannot hold, such as one with a NUL character, is refused with a
    ValueError). The path is used as given (no ".npz" is appended). On any error the previous
    file at `path`, if any, is untouched, and no temporary file is left.
    """
    arrays = _arrays(obj)
    for k in arrays:
        _member_name(k)  # refuse a bad key before the file is created
    with atomic_write(path, "wb") as f:
        _write_npz(f, arrays)


class _Reason(Exception):
    """Internal: a reason found by load itself, reported as written."""


# a zip archive starts with a local file header, or, when it has no members, the end record
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")


def load(path):
    """Read a file written by `save` (or any .npz of numeric arrays) -> dict name -> ndarray,
    in the order saved.

    A missing file raises FileNotFoundError; a file that is truncated, damaged, sealed by `save`
    but no longer matching its seal, or not an .npz archive raises StateFileError (a ValueError)
    whose message starts with the path. Anything that is not a regular file (a folder, a FIFO, a
    device) is refused without reading it.
    """
    path = os.fspath(path)
    try:
        f = open_regular_file(path, "state file")
    except FileNotFoundError:
        raise FileNotFoundError(errno.ENOENT, "no such state file", path) from None
    except NotARegularFileError as e:
        if os.path.isdir(path):
            raise IsADirectoryError(errno.EISDIR, "a folder, not a state file", path) from None
        raise StateFileError(str(e)) from None
    with f:
        return read_state(f, path)


def write_state(f, obj):
    """Write `obj` (a Module or a dict of arrays, as for `save`) as a sealed .npz archive into the
    open binary file `f` (for writers that manage the file themselves, such as a model folder)."""
    arrays = _arrays(obj)
    for k in arrays:
        _member_name(k)
    _write_npz(f, arrays)


def read_state(f, path):
    """Read a state file from the open binary file `f` (seekable); `path` names it in errors.
    See `load`."""
    path = os.fspath(path)
    try:
        return _read_archive(f)
    except (PermissionError, IsADirectoryError, MemoryError):
        raise  # these already name the file, or their cause is not the file's content
    except Exception as e:
        if isinstance(e, _Reason):
            reason = str(e)
        else:  # numpy's or zipfile's own complaint, with its type (BadZipFile, EOFError, ...)
            reason = f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
        raise StateFileError(f"{path}: not a valid tinygrad_rep state file ({reason})") from e


def _read_archive(f):
    head = f.read(4)
    if not head:
        raise _Reason("the file is empty")
    if head not in _ZIP_MAGIC:
        raise _Reason(f"not an .npz (zip) archive: it starts with {head!r}")
    file_size = f.seek(0, os.SEEK_END)
    f.seek(0)
    with zipfile.ZipFile(f) as zf:
        sealed = zf.comment.startswith(_SEAL[:12])  # a damaged seal still counts as sealed
        members, entries = {}, []
        for info in zf.infolist():
            name = info.filename
            if not name.endswith(".npy") or name in members:
                raise _Reason(f"member {name!r} is not one array of a state file")
            # sizes are checked against the file before anything of that size is read
            if info.header_offset + info.compress_size > file_size:
                raise _Reason(f"member {name!r} claims {info.compress_size} bytes, more than the file holds")
            if info.compress_type != zipfile.ZIP_STORED and (sealed or info.file_size > 1032 * info.compress_size):
                raise _Reason(f"member {name!r} has an unexpected compression or size")
            if info.compress_type == zipfile.ZIP_STORED and info.file_size != info.compress_size:
                raise _Reason(f"member {name!r} has inconsistent sizes")
            members[name] = data = zf.read(info)  # checks the member's CRC
            entries.append((name, len(data), hashlib.sha256(data).digest()))
        if sealed and zf.comment != _seal(entries):
            raise _Reason("its contents do not match the checksum written with it "
                          "(the file is damaged or was changed)")
    return {name[:-4]: _parse_npy(name, data) for name, data in members.items()}


def _parse_npy(name, data):
    """One .npy member's bytes -> a new array; the shape the header claims must match the bytes
    there are, checked before anything is allocated."""
    buf = io.BytesIO(data)
    version = np.lib.format.read_magic(buf)
    if version == (1, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_1_0(buf)
    elif version in ((2, 0), (3, 0)):  # 3.0 differs from 2.0 only in allowing UTF-8 field names
        shape, fortran, dtype = np.lib.format.read_array_header_2_0(buf) if version == (2, 0) else \
            _read_header_3_0(buf)
    else:
        raise _Reason(f"member {name!r}: unsupported .npy version {version}")
    if dtype.hasobject:
        raise _Reason(f"member {name!r} holds Python objects (dtype {dtype}), which are never unpickled")
    count = 1
    for n in shape:
        count *= n
    offset = buf.tell()
    if count * dtype.itemsize != len(data) - offset:
        raise _Reason(f"member {name!r}: its header says shape {shape} of {dtype} "
                      f"({count * dtype.itemsize} bytes) but it holds {len(data) - offset}")
    arr = np.frombuffer(data, dtype=dtype, count=count, offset=offset)
    arr = arr.reshape(shape[::-1]).T if fortran else arr.reshape(shape)
    return arr.copy(order="K")


def _read_header_3_0(buf):
    import ast
    import struct
    (length,) = struct.unpack("<I", buf.read(4))
    header = buf.read(length).decode("utf-8")
    d = ast.literal_eval(header)
    if not isinstance(d, dict) or set(d) != {"descr", "fortran_order", "shape"}:
        raise _Reason("a .npy header without descr, fortran_order and shape")
    shape = d["shape"]
    if not isinstance(shape, tuple) or not all(isinstance(n, int) and n >= 0 for n in shape):
        raise _Reason(f"a .npy header with a bad shape {shape!r}")
    return shape, bool(d["fortran_order"]), np.lib.format.descr_to_dtype(d["descr"])
