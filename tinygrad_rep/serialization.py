"""Saving and loading state dicts as .npz files (tr.save / tr.load), written atomically.

    tr.save(model, "model.npz")              # or tr.save(model.state_dict(), path)
    model.load_state_dict(tr.load("model.npz"))

The file is a standard numpy .npz archive (one uncompressed .npy member per key, in order), so
`np.load` reads it too. `save` writes into a temporary file in the target's directory, flushes
it to disk, then renames it over the target: a reader sees the old file or the new one, never a
half-written one, and a failure leaves no temporary file behind. No pickles are written or read.
"""
import collections
import collections.abc
import errno
import os
import secrets
import zipfile

import numpy as np

from .tensor import Tensor

__all__ = ["save", "load", "StateFileError"]


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
    # What np.savez does, written out: np.savez takes keys as keyword arguments, so a key named
    # "file" or "allow_pickle" would collide with its own parameters.
    with zipfile.ZipFile(f, mode="w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for k, arr in arrays.items():
            with zf.open(k + ".npy", mode="w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.asanyarray(arr), allow_pickle=False)


def save(obj, path):
    """Write a state dict (or a Module's state_dict()) to `path` as an .npz archive, atomically.

    Values may be numpy arrays or Tensors; keys are kept in order. The path is used as given
    (no ".npz" is appended). On any error the previous file at `path`, if any, is untouched.
    """
    arrays = _arrays(obj)
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(directory, f".{os.path.basename(path)}.{secrets.token_hex(6)}.tmp")
    # O_EXCL: never clobber anything; mode 0o666 lets the umask decide, as for a normal file
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            _write_npz(f, arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    _fsync_dir(directory)


def _fsync_dir(directory):
    """Make the rename itself durable (POSIX); best effort where directories cannot be opened."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class _Reason(Exception):
    """Internal: a reason found by load itself, reported as written."""


# a zip archive starts with a local file header, or, when it has no members, the end record
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")


def load(path):
    """Read a file written by `save` (or any .npz of numeric arrays) -> dict name -> ndarray,
    in the order saved.

    A missing file raises FileNotFoundError; a file that is truncated, corrupt or not an .npz
    archive raises StateFileError (a ValueError) whose message starts with the path.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(errno.ENOENT, "no such state file", path)
    try:
        with open(path, "rb") as f:
            head = f.read(4)
        if not head:
            raise _Reason("the file is empty")
        if head not in _ZIP_MAGIC:
            raise _Reason(f"not an .npz (zip) archive: it starts with {head!r}")
        npz = np.load(path, allow_pickle=False)
        if not isinstance(npz, np.lib.npyio.NpzFile):
            raise _Reason("numpy did not read it as an .npz archive")
        with npz:
            # reading every member here checks every CRC, so a damaged file fails now, not later
            return {k: npz[k] for k in npz.files}
    except (PermissionError, IsADirectoryError):
        raise  # these already name the file, and their cause is not the file's content
    except Exception as e:
        if isinstance(e, _Reason):
            reason = str(e)
        else:  # numpy's or zipfile's own complaint, with its type (BadZipFile, EOFError, ...)
            reason = f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
        raise StateFileError(f"{path}: not a valid tinygrad_rep state file ({reason})") from e
