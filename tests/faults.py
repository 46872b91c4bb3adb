"""Failure injection for the file-writing tests: count every file-system operation of a block,
and raise at the k-th (and, in kill mode, at every one after it: a killed process runs no
cleanup). Tests then run the block once per k and check what is left on disk."""
import errno
import os
import tempfile


class Injected(OSError):
    """The injected failure (an OSError, as a full disk or an I/O error would be)."""


class _CountingFile:
    """A file object whose write, flush and close count as operations of the injector."""

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

    def fileno(self):
        return self._f.fileno()

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
