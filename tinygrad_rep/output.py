"""The library's small I/O toolbox: the one atomic file writer, JSON, tables, progress and notes.

Every file the library writes goes through `atomic_write`: the data goes to a temporary file with a
unique name in the target's own folder, is flushed and fsync'ed, and is then renamed over the target
(`os.replace`), after which the folder itself is fsync'ed where the platform allows it. A reader
therefore sees the old file or the new one, never half of one; on any error (a failed write, a full
disk, an exception in the caller's block) the temporary file is removed and the target is untouched.
Two writers of the same path never share a temporary name.

    with atomic_write("metrics.json") as f:      # text, UTF-8 by default; mode="wb" for bytes
        f.write(text)
    write_json_atomic("metrics.json", {"loss": np.float32(0.1)})

Optional extras are used when installed and skipped with a one-time note when not: tqdm draws the
progress bar (else a plain line every few seconds).
"""
import contextlib
import json
import math
import os
import stat
import sys
import tempfile
import time

import numpy as np

__all__ = ["atomic_write", "atomic_path", "write_text_atomic", "write_bytes_atomic",
           "write_json_atomic", "json_text", "fsync_directory", "is_temporary_name", "open_regular_file",
           "NotARegularFileError", "Progress", "format_table", "note_once"]

_noted = set()


def note_once(message):
    """Print `message` to stderr once per process (used for missing optional packages)."""
    if message not in _noted:
        _noted.add(message)
        print(message, file=sys.stderr)


# ---------------------------------------------------------------------------- atomic writes

# Temporary names look like ".<target name>.<random>.tmp<extension>": hidden, next to their target,
# recognisable (see is_temporary_name), and ending in the target's extension so tools that pick a
# format from the file name (matplotlib, numpy) still do the right thing.
_TMP_MARK = ".tmp"


def is_temporary_name(name):
    """True when `name` (a file name, not a path) has the form of one of atomic_write's temporaries."""
    return name.startswith(".") and _TMP_MARK in name[1:]


def _new_file_mode(path):
    """The permission bits the finished file should get: the old target's, if there is one (so a
    rewrite keeps them), else what a plain open() would give under the current umask."""
    try:
        return os.stat(path).st_mode & 0o7777
    except OSError:
        pass
    return 0o666 & ~_umask()


def _umask():
    # Reading the umask means setting it; /proc gives it without that race where it exists.
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def fsync_directory(folder):
    """fsync a directory so that a rename inside it is durable (POSIX). Best effort: platforms or
    file systems that cannot open or sync a directory are skipped silently."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            os.close(fd)


@contextlib.contextmanager
def _temporary_beside(path):
    """The single mechanism behind atomic_write and atomic_path: yields (fd, tmp) for a fresh,
    uniquely named file in `path`'s folder; on a clean exit the caller's file is already closed,
    and tmp is fsync'ed, renamed over `path` and the folder fsync'ed; on any error tmp is removed."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    name = os.path.basename(path)
    ext = os.path.splitext(name)[1]
    mode = _new_file_mode(path)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{name}.", suffix=f"{_TMP_MARK}{ext}")
    try:
        if hasattr(os, "fchmod"):  # mkstemp makes 0o600; give the file its normal permissions
            os.fchmod(fd, mode)
        yield fd, tmp
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_directory(folder)


def _fsync_file(name):
    fd = os.open(name, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_write(path, mode="w", encoding=None, newline=None):
    """`with atomic_write(path) as f:` write to the file object `f`; on a clean exit it replaces
    `path` atomically and durably, on any exception `path` is untouched and nothing is left behind.

    mode is "w" (text; `encoding` defaults to UTF-8, `newline` as for open()) or "wb" (bytes).
    The parent folder is created if missing. A rewrite keeps the old file's permission bits.
    """
    if mode in ("w", "wt"):
        kwargs = {"encoding": encoding or "utf-8", "newline": newline}
    elif mode == "wb":
        if encoding is not None or newline is not None:
            raise ValueError("atomic_write: encoding and newline apply to text mode only")
        kwargs = {}
    else:
        raise ValueError(f"atomic_write: mode must be 'w' or 'wb', got {mode!r}")
    with _temporary_beside(path) as (fd, tmp):
        try:
            f = os.fdopen(fd, mode, **kwargs)
        except BaseException:
            os.close(fd)
            raise
        with f:  # closed on every path; a failing close (deferred write error) propagates
            yield f
            f.flush()
            os.fsync(f.fileno())


@contextlib.contextmanager
def atomic_path(path):
    """`with atomic_path(path) as tmp:` for writers that want a file *name* (matplotlib's savefig,
    a library that opens the file itself): write the complete file at `tmp`; on a clean exit it is
    fsync'ed and renamed over `path`, on any error it is removed and `path` is untouched.
    `tmp` is in the same folder and ends with `path`'s extension."""
    with _temporary_beside(path) as (fd, tmp):
        os.close(fd)
        yield tmp
        _fsync_file(tmp)


def write_bytes_atomic(path, data):
    """Write bytes to `path` atomically (see atomic_write). Returns the path."""
    with atomic_write(path, "wb") as f:
        f.write(data)
    return path


def write_text_atomic(path, text, encoding="utf-8"):
    """Write text to `path` atomically, UTF-8 unless told otherwise. Returns the path."""
    with atomic_write(path, "w", encoding=encoding) as f:
        f.write(text)
    return path


def _json_default(obj):
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def json_text(obj, indent=2):
    """`obj` as indented JSON text ending in a newline; numpy scalars and arrays become numbers
    and lists (what write_json_atomic writes)."""
    return json.dumps(obj, indent=indent, default=_json_default) + "\n"


def write_json_atomic(path, obj, indent=2):
    """Write `obj` as indented JSON, atomically; numpy scalars and arrays become numbers and lists.
    Returns the path."""
    return write_text_atomic(path, json_text(obj, indent))


# ---------------------------------------------------------------------------- reading

class NotARegularFileError(ValueError):
    """A path names a FIFO, a device, a socket or a folder where a regular file was expected."""


_KINDS = [(stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket")]


def _refuse_unless_regular(path, mode, what):
    if not stat.S_ISREG(mode):
        kind = next((name for test, name in _KINDS if test(mode)), "not a regular file")
        article = "an" if what[:1] in "aeiouAEIOU" else "a"
        raise NotARegularFileError(f"{path}: {kind}, not {article} {what}; refusing to read it")


def open_regular_file(path, what="file"):
    """Open `path` for binary reading, refusing anything but a regular file before a byte is read
    (a FIFO would block forever, a device never end). FileNotFoundError and PermissionError name
    the path; anything else raises NotARegularFileError (a ValueError) naming it and `what`."""
    path = os.fspath(path)
    _refuse_unless_regular(path, os.stat(path).st_mode, what)
    # O_NONBLOCK: if the path was swapped for a FIFO since the stat, opening it does not wait
    # for a writer; fstat then refuses it. On a regular file the flag changes nothing.
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    try:
        _refuse_unless_regular(path, os.fstat(fd).st_mode, what)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


# ---------------------------------------------------------------------------- tables

def format_table(header, rows):
    """A Markdown table as text; floats are printed with 4 decimals, NaN as "n/a"."""
    def cell(v):
        if isinstance(v, float):
            return "n/a" if math.isnan(v) else f"{v:.4f}"
        return str(v)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


# ---------------------------------------------------------------------------- progress

class Progress:
    """A progress bar over `total` steps showing a description and live values (loss, samples/s).

        bar = Progress(total=steps, desc="train")
        bar.update(1, epoch="1/5", loss=0.03, samples_per_s=12000)
        bar.close()

    Uses tqdm when installed; otherwise prints a plain line at most every `every` seconds (and
    once at the end), after a one-time note that tqdm is missing. disable=True prints nothing.
    """

    def __init__(self, total, desc="", every=2.0, disable=False, file=None):
        self.total, self.desc, self.every, self.disable = int(total), desc, every, disable
        self.file = file or sys.stderr
        self.n, self.values = 0, {}
        self._bar = None
        self._start = self._last = time.perf_counter()
        if disable:
            return
        try:
            from tqdm import tqdm
        except ImportError:
            note_once("note: tqdm is not installed; showing plain progress lines (pip install tqdm)")
        else:
            self._bar = tqdm(total=self.total, desc=desc, file=self.file, dynamic_ncols=True,
                             mininterval=0.5, leave=True)

    def update(self, n=1, **values):
        """Advance by n steps and show `values` (floats are printed with 4 significant digits)."""
        self.n += n
        self.values.update(values)
        if self.disable:
            return
        if self._bar is not None:
            self._bar.set_postfix_str(self._postfix(), refresh=False)
            self._bar.update(n)
            return
        now = time.perf_counter()
        if now - self._last >= self.every or self.n >= self.total:
            self._last = now
            self._print_line(now)

    def _postfix(self):
        return ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                         for k, v in self.values.items())

    def _print_line(self, now):
        pct = 100.0 * self.n / max(self.total, 1)
        print(f"{self.desc} {self.n}/{self.total} ({pct:.0f}%) {now - self._start:.1f}s "
              f"{self._postfix()}", file=self.file, flush=True)

    def close(self):
        """Finish the bar (prints the final state of a plain bar if it was not just printed)."""
        if self.disable:
            return
        if self._bar is not None:
            self._bar.close()
        elif self._last < time.perf_counter() - 1e-3 and self.n < self.total:
            self._print_line(time.perf_counter())

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False
