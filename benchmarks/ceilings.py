"""Measured ceilings, the roofline drawn in the report: the FMA peak of a core and the copy bandwidth.

- FMA peak: a loop of independent fused multiply-adds in C (fma_peak.c, shipped beside this file;
  AVX-512 or AVX2, whichever our kernels dispatch to), compiled at run time with the system C
  compiler (cc, or $CC) into a temporary shared library and timed through ctypes. This is a
  measured peak of this core, not a number computed from a spec sheet (a virtual machine's clock
  and its number of FMA units per core cannot be read reliably). When no C compiler is found it
  is reported as skipped, and the practical ceiling remains: the largest OpenBLAS sgemm of the
  kernel suite, which the report also draws.
- Copy bandwidth: `np.copyto` of a 256 MB array (read + write = 2 x 256 MB moved per call); with
  two threads, two halves copied at once by ctypes.memmove (which releases the GIL). And the same
  copy with streaming stores (copy_peak.c, compiled at run time like fma_peak.c): our kernels
  write outputs larger than the caches with streaming stores, which skip reading the destination
  first, so the ceiling they are held to must be a copy that does the same (np.copyto's ordinary
  stores make it about a third slower on such arrays).
- `copy_like_kernels`: a copy moving the bytes of one kernel call, with the stores our kernels
  would use for its output (streaming from TR_STREAM_MIN_BYTES on, as csrc/softmax_x86.c decides),
  timed beside the kernels in their own rounds.
"""
import ctypes
import os
import shutil
import subprocess
import tempfile
import threading

from timing import clock_for, measure, time_calls

FMA_SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fma_peak.c")
FMA_FUNCTIONS = ("fma_avx512_f32", "fma_avx512_f64", "fma_avx2_f32", "fma_avx2_f64")
COPY_SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "copy_peak.c")
STREAM_MIN_BYTES = 8 << 20  # TR_STREAM_MIN_BYTES in csrc/softmax_x86.c

_libs = {}   # source path -> loaded library (each compiled once per process)


def _compile(source, flags, what, signatures):
    """Compile one of the probe loops (fma_peak.c, copy_peak.c) into a temporary shared library
    and load it, cached per process; signatures: {function: (restype, argtypes)}.
    Returns (ctypes library, None) or (None, reason)."""
    if source in _libs:
        return _libs[source], None
    cc = os.environ.get("CC", "cc")
    if shutil.which(cc) is None:
        return None, f"no C compiler ({cc}) to build the {what}"
    folder = tempfile.mkdtemp(prefix="tinygrad_rep_probe_")
    try:
        lib_path = os.path.join(folder, os.path.basename(source)[:-2] + ".so")
        proc = subprocess.run([cc, *flags, "-shared", "-fPIC", "-o", lib_path, source],
                              capture_output=True, text=True, timeout=120)
        if proc.returncode != 0:
            return None, f"the {what} did not compile: {proc.stderr.strip()[:200]}"
        lib = ctypes.CDLL(lib_path)
    finally:
        shutil.rmtree(folder, ignore_errors=True)  # the loaded library stays mapped
    for name, (restype, argtypes) in signatures.items():
        getattr(lib, name).restype = restype
        getattr(lib, name).argtypes = argtypes
    _libs[source] = lib
    return lib, None


def _compile_fma():
    """The FMA peak loops (fma_peak.c): (library, None) or (None, reason)."""
    return _compile(FMA_SOURCE, ["-O3"], "FMA peak loop",
                    {name: (ctypes.c_long, [ctypes.c_long, ctypes.c_void_p]) for name in FMA_FUNCTIONS})


def _compile_copy():
    """The streaming copy loops (copy_peak.c): (library, None) or (None, reason)."""
    return _compile(COPY_SOURCE, ["-O2"], "streaming copy loop",
                    {name: (None, [ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p])
                     for name in ("copy_stream_avx512", "copy_stream_avx2")})


def stream_copy(simd):
    """fn(dst, src) copying float32 arrays with streaming stores at SIMD level `simd`, or
    (None, reason) when there is none (level "default", or no C compiler)."""
    if simd not in ("avx512f", "avx2"):
        return None, f"no streaming copy loop for SIMD level {simd!r}"
    lib, why = _compile_copy()
    if lib is None:
        return None, why
    fn = lib.copy_stream_avx512 if simd == "avx512f" else lib.copy_stream_avx2
    return (lambda dst, src: fn(dst.size, src.ctypes.data, dst.ctypes.data)), None


def copy_like_kernels(nbytes_moved, simd):
    """(fn, how): a copy that moves `nbytes_moved` bytes (half read, half written) between two
    fresh float32 arrays allocated like the kernels' (np.empty, touched once), with the stores
    our kernels use for an output of that size: streaming stores from STREAM_MIN_BYTES of output
    on (when the loop compiles), np.copyto below."""
    import numpy as np
    n = max(1, nbytes_moved // 8)
    src = np.ones(n, dtype=np.float32)
    dst = np.empty(n, dtype=np.float32)
    dst.fill(0.0)
    fn, _ = stream_copy(simd) if dst.nbytes >= STREAM_MIN_BYTES else (None, None)
    if fn is not None:
        return (lambda: fn(dst, src)), "streaming stores"
    return (lambda: np.copyto(dst, src)), "np.copyto"


def fma_peak(dtype="f32", simd="avx512f", nthreads=1, repeats=5, seconds=0.05):
    """Measured FMA peak in GFLOP/s: (Stats of seconds per call, flops per call) or (None, reason).

    simd: the level our kernels dispatch to ("avx512f" or "avx2"); "default" has no FMA loop.
    With nthreads > 1 the loop runs in that many threads at once (ctypes releases the GIL) and
    the flops of all of them count.
    """
    if simd not in ("avx512f", "avx2"):
        return None, f"no FMA peak loop for SIMD level {simd!r}"
    lib, why = _compile_fma()
    if lib is None:
        return None, why
    fn = getattr(lib, f"fma_{'avx512' if simd == 'avx512f' else 'avx2'}_{dtype}")
    sink = (ctypes.c_double * 8)()
    flops_per_iter = fn(1, sink)
    one = min(time_calls(lambda: fn(100_000, sink), 1)[1] for _ in range(3))  # also warms the core up
    iters = max(1000, int(100_000 * seconds / max(one, 1e-9)))
    flops = flops_per_iter * iters * nthreads

    def run_threads():
        ts = [threading.Thread(target=fn, args=(iters, (ctypes.c_double * 8)())) for _ in range(nthreads)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()

    call = (lambda: fn(iters, sink)) if nthreads == 1 else run_threads
    return measure(call, repeats=repeats, warmup=1, target=0, clock=clock_for(nthreads)), flops


def copy_bandwidth(nbytes=256 * 2 ** 20, nthreads=1, repeats=5, stores="numpy", simd="avx512f"):
    """Measured copy bandwidth: (Stats of seconds per copy, bytes moved per copy = 2 * nbytes),
    or (None, reason) when the streaming loop is not available.

    stores "numpy": np.copyto with one thread; with more, the halves (thirds ...) copied at once
    by ctypes.memmove in separate threads. stores "streaming": the streaming-store loop of
    copy_peak.c at SIMD level `simd`, one part per thread the same way.
    """
    import numpy as np
    n = nbytes // 4
    src = np.ones(n, dtype=np.float32)
    dst = np.zeros(n, dtype=np.float32)  # zeros() may be lazily mapped: the warm-up touches it
    if stores == "streaming":
        copy, why = stream_copy(simd)
        if copy is None:
            return None, why
        one = copy
    else:
        one = lambda d, s: ctypes.memmove(d.ctypes.data, s.ctypes.data, d.nbytes)  # noqa: E731
    if nthreads == 1:
        call = (lambda: np.copyto(dst, src)) if stores != "streaming" else (lambda: one(dst, src))  # noqa: E731
    else:
        chunk = -(-n // nthreads)
        parts = [(dst[i:i + chunk], src[i:i + chunk]) for i in range(0, n, chunk)]

        def call():
            ts = [threading.Thread(target=one, args=(d, s)) for d, s in parts]
            for t in ts:
                t.start()
            for t in ts:
                t.join()
    return measure(call, repeats=repeats, warmup=1, target=0, clock=clock_for(nthreads)), 2 * n * 4
