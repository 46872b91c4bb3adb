"""A small caching allocator for the output arrays the C backends allocate.

Why: once the kernels are fast, a large fresh output is where the time goes. A new array of a
few MB comes from mmap, and its first write costs a page fault per 4 KB page (at 4096x4096
float32, 64 MB, that is as long as the ReLU itself). Handing back an array of the same shape
and dtype that nobody uses any more skips both the mmap and the faults; see the "alloc:"
records of benchmarks/bench_kernels.py for what it buys.

How it stays correct: a pooled array is handed out again only when nothing but the pool
references it, checked with sys.getrefcount. Every way Python code can reach an array's memory
holds a reference to the array object: a view (through .base), a Tensor, a saved-for-backward
tuple, a memoryview or buffer export, torch.from_numpy. So while any of these exists the
array counts as in use and is skipped. (A raw address taken with arr.ctypes.data holds no
reference; it is as unsafe here as after numpy frees an array, and no code in this package
keeps one. Likewise a weakref to a pooled array does not die when its last user lets go: it
then sees the array's next contents. The package keeps weakrefs to Tensors, never to arrays.) The reference count a free array has inside the scan is measured at import, and
the pool switches itself off if that measurement does not behave (e.g. an interpreter whose
getrefcount does not count every reference).

Bounds: only arrays of at least MIN_BYTES are pooled (smaller ones come from malloc's heap
without page faults, and numpy caches the smallest itself); at most PER_KEY arrays are kept
per (shape, dtype), and at most `limit` bytes in all (TINYGRAD_REP_POOL_MB, default 256).
When a new array would pass the limit, the oldest entries are forgotten: the pool drops its
reference, so a free array is released at once and an array in use lives on with its users.

Metadata: a user may change a returned array's metadata in place (`y.shape = ...`,
`y.dtype = ...`, `y.resize(..., refcheck=False)`, which even moves its memory). So each entry
keeps what the pool handed out (shape, strides, dtype) and a free array is reused only if it
still has exactly that, and is still C-contiguous, writeable and its own memory; otherwise the
pool forgets it. (Its data address is not compared: an array resized away and back owns a
buffer of the right size wherever it now is, and reading the address cost 0.8 us a call.)

Off switch: TINYGRAD_REP_POOL=0 in the environment, or set_enabled(False) (which also empties
the pool). Every array the pool returns is C-contiguous, aligned and writeable, with
uninitialized contents, as np.empty's.
"""
import os
import sys
import threading

import numpy as np

MIN_BYTES = 1 << 17   # 128 KiB: glibc's default mmap threshold
PER_KEY = 8           # arrays kept per (shape, dtype): the scan checks each one

_getrefcount = sys.getrefcount
_np_empty = np.empty
_lock = threading.Lock()
_lists = {}           # (shape, dtype) -> [(array, strides), ...], oldest first
_bytes = 0            # bytes of every array in _lists (free or in use)
_stats = {"hits": 0, "misses": 0}


def _first_free(entries):
    """The index of the first entry whose array only the pool references, else None.
    Calibration below runs this same code, so _FREE is the count an unreferenced array has at
    the test."""
    for i, entry in enumerate(entries):
        if _getrefcount(entry[0]) <= _FREE:
            return i
    return None


def _count_in_scan(entries):
    for i, entry in enumerate(entries):
        return _getrefcount(entry[0])


def _entry(a):
    return (a, a.strides)


def _unchanged(entry, shape, dtype):
    """Whether a pooled array still is exactly what the pool handed out."""
    a, strides = entry
    f = a.flags
    return (a.shape == shape and a.dtype == dtype and a.strides == strides and a.base is None
            and f.c_contiguous and f.writeable and f.owndata and f.aligned)


def _calibrate():
    """The reference count of a free array inside the scan, or None when getrefcount does not
    see an extra reference (then the pool cannot tell free from used and stays off)."""
    probe = [_entry(_np_empty(1))]
    free = _count_in_scan(probe)
    extra = probe[0][0]
    used = _count_in_scan(probe)
    del extra
    if used != free + 1 or _count_in_scan(probe) != free:
        return None
    return free


_FREE = _calibrate()


def _env_enabled():
    return os.environ.get("TINYGRAD_REP_POOL", "1").strip().lower() not in ("0", "off", "false", "no")


def _env_limit():
    try:
        return max(0, int(float(os.environ.get("TINYGRAD_REP_POOL_MB", "256")) * 2 ** 20))
    except ValueError:
        return 256 * 2 ** 20


limit = _env_limit()
enabled = _FREE is not None and _env_enabled() and limit > 0


def empty(shape, dtype):
    """An uninitialized C-contiguous array of `shape` (a tuple) and `dtype` (a numpy dtype):
    a free pooled one when there is one, else a new one (kept in the pool when it is large)."""
    if not enabled:
        return _np_empty(shape, dtype)
    n = dtype.itemsize
    for s in shape:
        n *= s
    if n < MIN_BYTES:
        return _np_empty(shape, dtype)
    return _pooled(shape, dtype, n)


def empty_like(x):
    """empty(x.shape, x.dtype) for an ndarray x (its byte count is already known)."""
    if not enabled or x.nbytes < MIN_BYTES:
        return _np_empty(x.shape, x.dtype)
    return _pooled(x.shape, x.dtype, x.nbytes)


def _pooled(shape, dtype, nbytes):
    global _bytes
    key = (shape, dtype)
    with _lock:
        entries = _lists.get(key)
        if entries:
            i = _first_free(entries)
            if i is not None:
                if _unchanged(entries[i], shape, dtype):
                    _stats["hits"] += 1
                    return entries[i][0]
                # reshaped, retyped, resized or made read-only by its last user: forget it
                del entries[i]
                _bytes -= nbytes
        _stats["misses"] += 1
        a = _np_empty(shape, dtype)
        if nbytes > limit:
            return a
        if entries and len(entries) >= PER_KEY:
            entries.pop(0)  # forget the oldest: its users (if any) keep it alive
            _bytes -= nbytes
        _make_room(nbytes)
        _lists.setdefault(key, []).append(_entry(a))  # (_make_room may have dropped this key's list)
        _bytes += nbytes
        return a


def _make_room(nbytes):
    """Forget the oldest entries until nbytes more fit under the limit (lock held)."""
    global _bytes
    for key in list(_lists):
        if _bytes + nbytes <= limit:
            return
        entries = _lists[key]
        while entries and _bytes + nbytes > limit:
            shape, dtype = key
            _bytes -= int(np.prod(shape, dtype=np.int64)) * dtype.itemsize  # as counted when pooled
            entries.pop(0)
        if not entries:
            del _lists[key]


def clear():
    """Forget every pooled array (arrays still in use live on with their users)."""
    global _bytes
    with _lock:
        _lists.clear()
        _bytes = 0


def set_enabled(on, limit_mb=None):
    """Switch the pool on or off (off also empties it); optionally set its byte limit in MB.
    Returns the previous on/off state. The pool stays off if calibration failed."""
    global enabled, limit
    previous = enabled
    if limit_mb is not None:
        limit = max(0, int(limit_mb * 2 ** 20))
    enabled = bool(on) and _FREE is not None and limit > 0
    if not enabled:
        clear()
    return previous


def stats():
    """{"enabled", "limit_bytes", "pooled_bytes", "arrays", "hits", "misses"} for reports."""
    with _lock:
        return {"enabled": enabled, "limit_bytes": limit, "pooled_bytes": _bytes,
                "arrays": sum(len(v) for v in _lists.values()), **_stats}
