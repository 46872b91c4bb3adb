"""Kernel benchmark: our C kernels (pybind11, cffi) beside numpy/OpenBLAS and PyTorch CPU, one run.

    python benchmarks/bench_kernels.py [--quick | --smoke] [--out DIR]    (or `make bench-kernels`,
    `tinygrad-rep bench kernels`): writes results.json, REPORT.md and plots like `run.py kernels`.

What is measured, each comparison side by side in one process (see timing.py for the method):
- ceilings: the FMA peak of one core (a C loop compiled at run time) and the copy bandwidth
  (np.copyto of 256 MB, and the same copy with streaming stores, "streaming stores"), with 1
  thread and with every core; drawn as the roofline in the report.
- matmul: sgemm and dgemm at square sizes n and at the MLP layer shape 256x784x256, through the
  public API (`Tensor @ Tensor` under no_grad) with each of our three backends, beside `a @ b` in
  numpy (OpenBLAS) and `torch.mm`; one thread, then every core at the largest sizes (15
  interleaved rounds: multi-thread timings swing more). GFLOP/s. "sgemm vs FMA peak": ours beside
  the time at 80% of the measured FMA peak.
- matmul kernel: the backend function `backend.current().matmul(a, b, out=c, trans_a, trans_b)`
  (checks included; "pybind11 raw": the extension function alone) beside `np.matmul(a, b, out=c)`
  and `torch.matmul(a, b, out=c)`, every output preallocated, at the small sizes 16-256 and the
  MLP layers' forward and backward products (grad_W = x^T g: "tA", grad_x = g W^T: "tB").
- softmax and log-softmax, forward and backward, and ReLU forward and backward, float32, at
  4096x4096 and 256x1000: forward through the public API (`Tensor.softmax(-1)` under no_grad),
  backward through the backend function the op calls; beside plain numpy, numpy with
  preallocated out= buffers, and PyTorch (torch.softmax and its backward, torch.relu and
  threshold_backward). GB/s against the copy bandwidth (bytes = arrays read + written once).
  "pybind11 out=" is our backend function with a preallocated out= buffer, the same allocation
  as numpy-out; "copy" is a copy that moves the same bytes in the same rounds, with the stores
  our kernels use for that size (ceilings.copy_like_kernels: streaming stores from 8 MB of
  output on), so ours over copy is the fraction of the copy bandwidth a kernel reaches.
- call overhead: each binding's cost per call on an 8-float array, beside a numpy ufunc call
  and a PyTorch op, in microseconds.
- allocation: the same kernels with a fresh output array per call, with an output from the
  buffer pool (tinygrad_rep/backend/pool.py, what ops get by default), and with a preallocated
  out= buffer, at 4096x4096 (64 MB: every fresh array costs page faults), plus the first write
  to a fresh array of that size against a write to a reused one.

Pool: outputs the C backends allocate come from a caching allocator (pool.py) unless
TINYGRAD_REP_POOL=0. The "pybind11" numbers of the forward ops are with the pool on (the
default); "pybind11 no pool" is the same call with the pool off, i.e. a fresh np.empty output
per call; the "alloc:" records show the same split for the bare backend functions. Backward
entries call the backend function directly, with the pool on.

TARGETS lists the ratios issues 3 and 14 ask for; report.py evaluates them against the records.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ceilings  # noqa: E402
import measurements  # noqa: E402
import peers  # noqa: E402

SUITE = "kernels"
OURS = ("pybind11", "cffi", "numpy-ref")  # our three backends; "numpy-ref" is tinygrad_rep's numpy backend

# Sizes and repeats per mode. smoke: seconds, for the test; quick: under a minute; full: minutes.
PLANS = {
    "smoke": dict(sgemm=[32, 64], dgemm=[32], mlp=False, rows=[(64, 100)], alloc=(256, 256),
                  multi=[], repeats=2, target=0.002, copy_mb=8, fma_seconds=0.005, overhead_target=0.002),
    "quick": dict(sgemm=[64, 256], dgemm=[64], mlp=True, rows=[(256, 1000)], alloc=(1024, 1024),
                  multi=[256], repeats=3, target=0.005, copy_mb=32, fma_seconds=0.01, overhead_target=0.005),
    "full": dict(sgemm=[64, 128, 256, 512, 1024, 2048], dgemm=[64, 128, 256, 512, 1024], mlp=True,
                 rows=[(4096, 4096), (256, 1000)], alloc=(4096, 4096), multi=[512, 1024, 2048], multi_repeats=15,
                 repeats=7, target=0.05, copy_mb=256, fma_seconds=0.02, overhead_target=0.02),
}
MLP_SHAPE = (256, 784, 256)  # M x K x N: a batch of 256 images through a 784 -> 256 layer
# The matmul kernel rows (M, K, N, trans_a, trans_b) per mode: square sizes, then the tiny MLP's
# 32x64 -> 64 layer and the 784 -> 256 and 1024 -> 256 layers of a batch of 256, each forward
# (x W), grad_W = x^T g (trans_a) and grad_x = g W^T (trans_b).
_SQUARE = [(n, n, n, False, False) for n in (16, 32, 64, 128, 256)]
_LAYERS = [s for (b, i, o) in ((32, 64, 64), (256, 784, 256), (256, 1024, 256))
           for s in ((b, i, o, False, False), (i, b, o, True, False), (b, o, i, False, True))]
KERNEL_SHAPES = {"smoke": [(16, 16, 16, False, False), (32, 64, 64, False, False), (64, 32, 64, True, False)],
                 "quick": _SQUARE + _LAYERS[:3] + [_LAYERS[3]],
                 "full": _SQUARE + _LAYERS}


def kernel_size(M, K, N, trans_a, trans_b):
    """The size label of a matmul kernel row: MxKxN, with tA / tB when an operand is transposed."""
    return f"{M}x{K}x{N}" + (" tA" if trans_a else "") + (" tB" if trans_b else "")

# (label, what, size, threads, ours, baseline, lowest acceptable ratio). The ratio is the
# baseline's median time over ours (> 1: ours is faster). threads None: the run's main count.
TARGETS = []
for _n in ("512x512x512", "1024x1024x1024", "256x784x256"):
    TARGETS.append((f"sgemm {_n}, 1 thread, vs numpy/OpenBLAS", "sgemm", _n, 1, "pybind11", "numpy", 0.9))
for _n in ("512x512x512", "1024x1024x1024", "256x784x256"):
    TARGETS.append((f"dgemm {_n}, 1 thread, vs numpy/OpenBLAS", "dgemm", _n, 1, "pybind11", "numpy", 0.8))
# issue 14, large matrices: sgemm at least PyTorch and 80% of the measured FMA peak (the record
# "sgemm vs FMA peak" holds ours beside the time 80% of the peak would take, see fma_share);
# dgemm at least PyTorch; with two threads, sgemm at least OpenBLAS with two threads (median
# over MULTI_REPEATS interleaved rounds).
FMA_SHARE = 0.8
for _n in ("1024x1024x1024", "2048x2048x2048"):
    TARGETS.append((f"sgemm {_n}, 1 thread, vs PyTorch", "sgemm", _n, 1, "pybind11", "torch", 1.0))
    TARGETS.append((f"sgemm {_n}, 1 thread, vs 80% of the FMA peak", "sgemm vs FMA peak", _n, 1,
                    "pybind11", f"{FMA_SHARE:.0%} of FMA peak", 1.0))
for _n in ("512x512x512", "1024x1024x1024"):
    TARGETS.append((f"dgemm {_n}, 1 thread, vs PyTorch", "dgemm", _n, 1, "pybind11", "torch", 1.0))
for _n in ("1024x1024x1024", "2048x2048x2048"):
    TARGETS.append((f"sgemm {_n}, 2 threads, vs numpy/OpenBLAS (2 threads)", "sgemm", _n, 2, "pybind11",
                    "numpy", 1.0))
for _shape in KERNEL_SHAPES["full"]:  # small matrices: at least the faster of numpy and PyTorch
    for _kind in ("sgemm", "dgemm"):
        for _peer, _name in (("numpy", "numpy/OpenBLAS"), ("torch", "PyTorch")):
            TARGETS.append((f"{_kind} kernel {kernel_size(*_shape)}, 1 thread, vs {_name}", f"{_kind} kernel",
                            kernel_size(*_shape), 1, "pybind11", _peer, 1.0))
for _k in ("softmax fwd", "softmax bwd", "log_softmax fwd", "log_softmax bwd"):
    for _s in ("4096x4096", "256x1000"):
        TARGETS.append((f"{_k} f32 {_s} vs plain numpy", f"{_k} f32", _s, 1, "pybind11", "numpy", 2.0))
        TARGETS.append((f"{_k} f32 {_s} vs numpy out=", f"{_k} f32", _s, 1, "pybind11", "numpy-out",
                        2.0 if _s == "256x1000" else 1.0))
        TARGETS.append((f"{_k} f32 {_s} vs PyTorch (1 thread)", f"{_k} f32", _s, 1, "pybind11", "torch", 1.0))
for _k in ("relu fwd", "relu bwd"):
    for _s in ("4096x4096", "256x1000"):
        TARGETS.append((f"{_k} f32 {_s} vs numpy", f"{_k} f32", _s, 1, "pybind11", "numpy", 1.0))
# memory-bound kernels with the same output allocation on both sides (out= given), and the
# fraction of the copy bandwidth they reach: the "copy" entry of a row moves the kernel's bytes,
# so its time over ours is ours in GB/s over the copy's (arrays far larger than the caches)
for _k in ("relu fwd", "relu bwd", "softmax fwd", "softmax bwd", "log_softmax fwd", "log_softmax bwd"):
    for _s in ("4096x4096", "256x1000"):
        TARGETS.append((f"{_k} f32 {_s} vs numpy out=, both with an out= buffer", f"{_k} f32", _s, 1,
                        "pybind11 out=", "numpy-out", 1.0))
    TARGETS.append((f"{_k} f32 4096x4096 at least 60% of the copy bandwidth (ours out= / copy)",
                    f"{_k} f32", "4096x4096", 1, "pybind11 out=", "copy", 0.6))
# absolute target: (label, what, size, threads, backend, unit, highest acceptable median)
LIMITS = [("pybind11 call overhead (checked path, out=)", "call overhead relu_forward", "8", 1,
           "pybind11", "us", 2.0)]


def plan_for(quick=False, smoke=False):
    return PLANS["smoke" if smoke else "quick" if quick else "full"]


# ---------------------------------------------------------------------------------------------

class Ctx:
    """What every section needs: numpy, our library, the optional baselines and the plan."""

    def __init__(self, plan, main_threads):
        import numpy as np
        import tinygrad_rep as tr
        from tinygrad_rep import backend
        self.np, self.tr, self.backend = np, tr, backend
        self.torch = peers.optional("torch")
        self.plan, self.threads = plan, main_threads
        self.rng = np.random.default_rng(0)
        self.records = []
        self.ours = {}
        for name in OURS:  # a backend that is not built is reported, never silently replaced
            try:
                self.ours[name] = backend.set_backend(name.replace("numpy-ref", "numpy"))
            except ImportError as exc:
                self.ours[name] = None
                print(f"  backend {name} is not available: {exc}")
        backend.set_backend("pybind11" if self.ours.get("pybind11") else "numpy")

    def use(self, name, pool=True):
        """A setup function that makes `name` the backend of the public API, with the output
        buffer pool on (the default) or off (a fresh array per output)."""
        from tinygrad_rep.backend import pool as pool_module
        target = name.replace("numpy-ref", "numpy")

        def setup():
            self.backend.set_backend(target)
            pool_module.set_enabled(pool)
        return setup

    def measure(self, what, size, nthreads, fns, unit="s", scale=1.0, target=None, repeats=None, **extra):
        """Time {backend: fn or (setup, fn) or None} side by side; record and print one line."""
        recs = measurements.side_by_side(SUITE, what, size, nthreads, fns, repeats or self.plan["repeats"],
                                         self.plan["target"] if target is None else target, unit=unit,
                                         scale=scale, **extra)
        from tinygrad_rep.backend import pool
        pool.set_enabled(True)  # a "no pool" entry may have switched it off: back to the default
        self.records += recs
        return recs


# ---------------------------------------------------------------------------------------------
# sections

def _simd(c):
    """The SIMD level our kernels dispatch to, so a ceiling is the one they can reach."""
    return c.ours["pybind11"].info()["simd"] if c.ours.get("pybind11") else "default"


def bench_ceilings(c):
    """FMA peak and copy bandwidth, with one thread and with every core."""
    simd = _simd(c)
    counts = [1] + ([peers.cpu_count()] if peers.cpu_count() > 1 and c.plan["multi"] else [])
    for dtype in ("f32", "f64"):
        for n in counts:
            # many short rounds: on a shared machine the best of them is the peak (see report.py)
            stats, work = ceilings.fma_peak(dtype, simd, n, repeats=2 * c.plan["repeats"] + 1,
                                            seconds=c.plan["fma_seconds"])
            what = f"fma peak {dtype}"
            if stats is None:
                c.records.append(measurements.skipped(what, "-", "measured", n, work, suite=SUITE))
                print(f"  {what}: skipped ({work})")
                continue
            rec = measurements.record(what, "-", "measured", n, stats, suite=SUITE, flops=work, simd=simd,
                                      note=f"{simd} FMA loop in C (independent chains in registers), compiled at run time")
            c.records.append(rec)
            print("  " + measurements.summary_line([rec]))
    nbytes = c.plan["copy_mb"] * 2 ** 20
    for n in counts:
        stats, moved = ceilings.copy_bandwidth(nbytes, n, repeats=c.plan["repeats"])
        rec = measurements.record("copy bandwidth", f"{c.plan['copy_mb']} MB", "measured", n, stats, suite=SUITE,
                                  bytes=moved, note=("np.copyto" if n == 1 else f"ctypes.memmove in {n} threads")
                                  + "; bytes = read + write of the array")
        c.records.append(rec)
        print("  " + measurements.summary_line([rec]))
        # the same copy with the streaming stores our kernels use for outputs this large
        stats, moved = ceilings.copy_bandwidth(nbytes, n, repeats=c.plan["repeats"], stores="streaming", simd=simd)
        if stats is None:
            rec = measurements.skipped("copy bandwidth", f"{c.plan['copy_mb']} MB", "streaming stores", n, moved,
                                       suite=SUITE)
        else:
            rec = measurements.record("copy bandwidth", f"{c.plan['copy_mb']} MB", "streaming stores", n, stats,
                                      suite=SUITE, bytes=moved, note=f"{simd} streaming-store copy loop in C "
                                      f"(copy_peak.c), {n} thread(s); bytes = read + write of the array")
        c.records.append(rec)
        print("  " + measurements.summary_line([rec]))


def bench_matmul(c, dtype_name, shapes, nthreads, repeats=None):
    """C = A @ B through the public API with each backend, beside numpy and torch."""
    np, tr, torch = c.np, c.tr, c.torch
    dtype = np.float32 if dtype_name == "sgemm" else np.float64
    for (M, K, N) in shapes:
        a = c.rng.standard_normal((M, K)).astype(dtype)
        b = c.rng.standard_normal((K, N)).astype(dtype)
        A, B = tr.Tensor(a, dtype=dtype), tr.Tensor(b, dtype=dtype)
        fns = {name: (c.use(name), lambda: A @ B) if c.ours[name] else None for name in OURS}
        fns["numpy"] = lambda: a @ b
        if torch is not None:
            ta, tb = torch.from_numpy(a), torch.from_numpy(b)
            fns["torch"] = lambda: torch.mm(ta, tb)
        else:
            fns["torch"] = None
        with peers.grad_off(torch):
            c.measure(dtype_name, f"{M}x{K}x{N}", nthreads, fns, flops=2 * M * N * K,
                      dtype=np.dtype(dtype).name, repeats=repeats)
    c.backend.set_backend("pybind11")


def fma_share(c):
    """Records "sgemm vs FMA peak" at one thread: our sgemm beside the time the same flops take
    at FMA_SHARE of the measured FMA peak (the best round of the peak loop), so a TARGETS row
    can ask for that share of the peak."""
    peak = next((r for r in c.records if r["what"] == "fma peak f32" and r["threads"] == 1
                 and r.get("rate")), None)
    if peak is None:
        return
    rate = FMA_SHARE * peak["rate"]["max"] * 1e9
    for rec in [r for r in c.records if r["what"] == "sgemm" and r["threads"] == 1
                and r["backend"] == "pybind11" and r.get("median")]:
        t = rec["flops"] / rate
        at_peak = measurements.record("sgemm vs FMA peak", rec["size"], f"{FMA_SHARE:.0%} of FMA peak", 1,
                                      None, suite=SUITE, flops=rec["flops"], dtype="float32",
                                      note=f"the time at {FMA_SHARE:.0%} of {peak['rate']['max']:.1f} GFLOP/s")
        at_peak.update(median=t, min=t, max=t, repeats=1, rate={"unit": "GFLOP/s", "median": rate / 1e9,
                                                                "min": rate / 1e9, "max": rate / 1e9})
        c.records += [dict(rec, what="sgemm vs FMA peak"), at_peak]
        print("  " + measurements.summary_line(c.records[-2:]))


def bench_matmul_kernel(c, dtype_name, shapes, nthreads):
    """The backend's matmul function with a preallocated output, beside numpy's and torch's
    matmul into a preallocated output (the same work: no allocation on any side)."""
    np, torch = c.np, c.torch
    dtype = np.float32 if dtype_name == "sgemm" else np.float64
    suffix = "f32" if dtype_name == "sgemm" else "f64"
    for (M, K, N, ta, tb) in shapes:
        a = c.rng.standard_normal((K, M) if ta else (M, K)).astype(dtype)
        b = c.rng.standard_normal((N, K) if tb else (K, N)).astype(dtype)
        av, bv = (a.T if ta else a), (b.T if tb else b)
        out = {name: np.empty((M, N), dtype) for name in ("ours", "raw", "numpy", "torch")}
        fns = {}
        for name in ("pybind11", "cffi"):
            be = c.ours[name]
            fns[name] = ((lambda f=be.matmul: f(a, b, out=out["ours"], trans_a=ta, trans_b=tb))
                         if be is not None else None)
        if c.ours["pybind11"] is not None:
            from tinygrad_rep import _C
            raw = getattr(_C, f"matmul_{suffix}")
            fns["pybind11 raw"] = lambda: raw(1, M, N, K, a, ta, b, tb, out["raw"], False)
        fns["numpy"] = lambda: np.matmul(av, bv, out=out["numpy"])
        if torch is not None:
            ta_, tb_ = torch.from_numpy(a), torch.from_numpy(b)
            tav, tbv = (ta_.T if ta else ta_), (tb_.T if tb else tb_)
            tout = torch.from_numpy(out["torch"])
            fns["torch"] = lambda: torch.matmul(tav, tbv, out=tout)
        else:
            fns["torch"] = None
        with peers.grad_off(torch):
            c.measure(f"{dtype_name} kernel", kernel_size(M, K, N, ta, tb), nthreads, fns, flops=2 * M * N * K,
                      dtype=np.dtype(dtype).name,
                      note="backend matmul with out= (checks included); raw: the extension function alone")


def _numpy_rows(np, x, y, g):
    """Plain numpy and numpy-with-out= versions of the four row kernels: {kernel: (plain, out)}."""
    o, t = np.empty_like(x), np.empty_like(x)
    s = np.empty(x.shape[:-1] + (1,), dtype=x.dtype)

    def softmax_plain():
        e = np.exp(x - x.max(-1, keepdims=True))
        return e / e.sum(-1, keepdims=True)

    def softmax_out():
        np.max(x, axis=-1, keepdims=True, out=s)
        np.subtract(x, s, out=o)
        np.exp(o, out=o)
        np.sum(o, axis=-1, keepdims=True, out=s)
        np.divide(o, s, out=o)
        return o

    def log_softmax_plain():
        z = x - x.max(-1, keepdims=True)
        return z - np.log(np.exp(z).sum(-1, keepdims=True))

    def log_softmax_out():
        # o = z = x - max; s = log(sum(exp(z))) computed in a second buffer; o -= s
        np.max(x, axis=-1, keepdims=True, out=s)
        np.subtract(x, s, out=o)
        np.exp(o, out=t)
        np.sum(t, axis=-1, keepdims=True, out=s)
        np.log(s, out=s)
        np.subtract(o, s, out=o)
        return o

    def softmax_bwd_plain():
        return y["softmax"] * (g - (g * y["softmax"]).sum(-1, keepdims=True))

    def softmax_bwd_out():
        yy = y["softmax"]
        np.multiply(g, yy, out=o)
        np.sum(o, axis=-1, keepdims=True, out=s)
        np.subtract(g, s, out=o)
        np.multiply(o, yy, out=o)
        return o

    def log_softmax_bwd_plain():
        return g - np.exp(y["log_softmax"]) * g.sum(-1, keepdims=True)

    def log_softmax_bwd_out():
        np.sum(g, axis=-1, keepdims=True, out=s)
        np.exp(y["log_softmax"], out=o)
        np.multiply(o, s, out=o)
        np.subtract(g, o, out=o)
        return o

    return {"softmax fwd": (softmax_plain, softmax_out), "log_softmax fwd": (log_softmax_plain, log_softmax_out),
            "softmax bwd": (softmax_bwd_plain, softmax_bwd_out),
            "log_softmax bwd": (log_softmax_bwd_plain, log_softmax_bwd_out)}


def bench_rows(c, shape, nthreads):
    """softmax / log-softmax forward and backward, float32, along the last axis of `shape`."""
    np, tr, torch = c.np, c.tr, c.torch
    x = (c.rng.standard_normal(shape) * 3).astype(np.float32)
    g = c.rng.standard_normal(shape).astype(np.float32)
    ref = c.ours["numpy-ref"] or c.backend.set_backend("numpy")
    y = {"softmax": ref.softmax_forward(x), "log_softmax": ref.log_softmax_forward(x)}
    X = tr.Tensor(x)
    numpy_impls = _numpy_rows(np, x, y, g)
    o_ours = np.zeros_like(x)  # preallocated and touched, like numpy-out's buffers
    size = "x".join(map(str, shape))
    nbytes = x.nbytes
    if torch is not None:
        tx, tg = torch.from_numpy(x), torch.from_numpy(g)
        ty = {k: torch.from_numpy(v) for k, v in y.items()}
    for kernel in ("softmax fwd", "softmax bwd", "log_softmax fwd", "log_softmax bwd"):
        op, direction = kernel.split()
        fns = {}
        for name in OURS:
            be = c.ours[name]
            if be is None:
                fns[name] = None
            elif direction == "fwd":  # the public API: Tensor.softmax / Tensor.log_softmax
                method = getattr(X, op)
                fns[name] = (c.use(name), lambda m=method: m(-1))
                if name == "pybind11":  # the same call with a fresh output each time
                    fns["pybind11 no pool"] = (c.use(name, pool=False), lambda m=method: m(-1))
            else:  # the backend function the op's backward calls
                fn = getattr(be, f"{op}_backward")
                fns[name] = (lambda f=fn, yy=y[op]: f(yy, g))
        pb = c.ours.get("pybind11")
        if pb is not None:  # our backend function with an out= buffer, as numpy-out has
            if direction == "fwd":
                fns["pybind11 out="] = lambda f=getattr(pb, f"{op}_forward"): f(x, o_ours)
            else:
                fns["pybind11 out="] = lambda f=getattr(pb, f"{op}_backward"), yy=y[op]: f(yy, g, o_ours)
        fns["numpy"], fns["numpy-out"] = numpy_impls[kernel]
        moved = (2 if direction == "fwd" else 3) * nbytes
        fns["copy"], how = ceilings.copy_like_kernels(moved, _simd(c))
        if torch is None:
            fns["torch"] = None
        elif direction == "fwd":
            tfn = torch.softmax if op == "softmax" else torch.log_softmax
            fns["torch"] = lambda f=tfn: f(tx, -1)
        else:
            tfn = torch._softmax_backward_data if op == "softmax" else torch._log_softmax_backward_data
            fns["torch"] = lambda f=tfn, yy=ty[op]: f(tg, yy, -1, torch.float32)
        with peers.grad_off(torch):
            c.measure(f"{kernel} f32", size, nthreads, fns, bytes=moved, dtype="float32",
                      note=f"copy: the same bytes moved by a copy ({how})")
    c.backend.set_backend("pybind11")


def bench_relu(c, shape, nthreads):
    """ReLU forward (public API) and backward (backend function), float32."""
    np, tr, torch = c.np, c.tr, c.torch
    x = c.rng.standard_normal(shape).astype(np.float32)
    g = c.rng.standard_normal(shape).astype(np.float32)
    X = tr.Tensor(x)
    o = np.empty_like(x)
    mask = np.empty(shape, dtype=bool)
    size = "x".join(map(str, shape))

    def relu_bwd_out():
        np.greater(x, 0, out=mask)
        return np.multiply(g, mask, out=o)

    fwd = {name: ((c.use(name), X.relu) if c.ours[name] else None) for name in OURS}
    if c.ours["pybind11"]:  # the same call with a fresh output each time (the pool off)
        fwd["pybind11 no pool"] = (c.use("pybind11", pool=False), X.relu)
    bwd = {name: ((lambda f=c.ours[name].relu_backward: f(x, g)) if c.ours[name] else None) for name in OURS}
    pb = c.ours.get("pybind11")
    if pb is not None:  # our backend function with an out= buffer, as numpy-out has
        o_ours = np.zeros_like(x)
        fwd["pybind11 out="] = lambda: pb.relu_forward(x, o_ours)
        bwd["pybind11 out="] = lambda: pb.relu_backward(x, g, o_ours)
    fwd["numpy"] = lambda: np.maximum(x, 0)
    fwd["numpy-out"] = lambda: np.maximum(x, 0, out=o)
    bwd["numpy"] = lambda: np.where(x > 0, g, 0)
    bwd["numpy-out"] = relu_bwd_out
    fwd["copy"], how_fwd = ceilings.copy_like_kernels(2 * x.nbytes, _simd(c))
    if torch is not None:
        tx, tg = torch.from_numpy(x), torch.from_numpy(g)
        fwd["torch"] = lambda: torch.relu(tx)
        bwd["torch"] = lambda: torch.ops.aten.threshold_backward(tg, tx, 0)
    else:
        fwd["torch"] = bwd["torch"] = None
    with peers.grad_off(torch):
        c.measure("relu fwd f32", size, nthreads, fwd, bytes=2 * x.nbytes, dtype="float32",
                  note=f"copy: the same bytes moved by a copy ({how_fwd})")
        fwd.clear()  # frees the forward copy's arrays before the backward's
        bwd["copy"], how_bwd = ceilings.copy_like_kernels(3 * x.nbytes, _simd(c))
        c.measure("relu bwd f32", size, nthreads, bwd, bytes=3 * x.nbytes, dtype="float32",
                  note=f"copy: the same bytes moved by a copy ({how_bwd})")
    c.backend.set_backend("pybind11")


def bench_call_overhead(c):
    """Cost of one call through each binding on an 8-float array (output preallocated)."""
    np, torch = c.np, c.torch
    x = np.linspace(-1, 1, 8, dtype=np.float32)
    o = np.empty_like(x)
    fns = {}
    pb, cf, ref = c.ours["pybind11"], c.ours["cffi"], c.ours["numpy-ref"]
    if pb is not None:
        from tinygrad_rep import _C
        raw = _C.relu_forward_f32
        fns["pybind11"] = lambda: pb.relu_forward(x, o)
        fns["pybind11 raw"] = lambda: raw(8, x, o)
        fns["pybind11 alloc"] = lambda: pb.relu_forward(x)
    if cf is not None:
        from tinygrad_rep._C_cffi import ffi, lib
        fb, rawc = ffi.from_buffer, lib.tr_relu_forward_f32
        fns["cffi"] = lambda: cf.relu_forward(x, o)
        fns["cffi raw"] = lambda: rawc(8, fb("float[]", x), fb("float[]", o, require_writable=True))
    if ref is not None:
        fns["numpy-ref"] = lambda: ref.relu_forward(x, o)
    fns["numpy"] = lambda: np.maximum(x, 0, out=o)
    if torch is not None:
        tx, to = torch.from_numpy(x), torch.from_numpy(o)
        fns["torch"] = lambda: torch.clamp_min(tx, 0, out=to)
        fns["torch alloc"] = lambda: torch.relu(tx)
    else:
        fns["torch"] = None
    c.measure("call overhead relu_forward", "8", 1, fns, unit="us", scale=1e6,
              target=c.plan["overhead_target"], dtype="float32",
              note="raw: the extension function without argument checks; alloc: output allocated per call")


def bench_allocation(c, shape):
    """Fresh output per call vs a pooled output vs a preallocated out= buffer, at a size where
    pages fault.

    Records: what "alloc: <implementation>", backends "fresh output" (pool off), "pooled output"
    (pool on, the default; our kernels only) and "out= buffer"; times. "first write" is
    np.empty(shape).fill(1) against filling a reused array: the cost of the page faults of a
    fresh array alone."""
    np = c.np
    from tinygrad_rep.backend import pool
    x = (c.rng.standard_normal(shape) * 3).astype(np.float32)
    o = np.empty_like(x)
    size = "x".join(map(str, shape))
    pb = c.ours["pybind11"]
    pairs = [("numpy first write (fill)", lambda: np.empty(shape, np.float32).fill(1.0), lambda: o.fill(1.0)),
             ("numpy maximum(x, 0)", lambda: np.maximum(x, 0), lambda: np.maximum(x, 0, out=o))]
    if pb is not None:
        pairs += [("pybind11 relu_forward f32", lambda: pb.relu_forward(x), lambda: pb.relu_forward(x, o)),
                  ("pybind11 softmax_forward f32", lambda: pb.softmax_forward(x), lambda: pb.softmax_forward(x, o))]
    for what, fresh, reused in pairs:
        fns = {"fresh output": (lambda: pool.set_enabled(False), fresh), "out= buffer": reused}
        if what.startswith("pybind11"):
            fns["pooled output"] = (lambda: pool.set_enabled(True), fresh)
        c.measure(f"alloc: {what}", size, c.threads, fns, dtype="float32",
                  note="fresh output: pool off (TINYGRAD_REP_POOL=0); pooled output: pool on (default)")
    pool.set_enabled(True)


# ---------------------------------------------------------------------------------------------

def run(quick=False, smoke=False, threads=1):
    """Run every section; returns the records (see measurements.RECORD_KEYS)."""
    plan = plan_for(quick, smoke)
    c = Ctx(plan, threads)
    print("ceilings (FMA peak, copy bandwidth)")
    bench_ceilings(c)
    for kind in ("sgemm", "dgemm"):
        shapes = [(n, n, n) for n in plan[kind]] + ([MLP_SHAPE] if plan["mlp"] else [])
        print(f"{kind}, {threads} thread(s)")
        bench_matmul(c, kind, shapes, threads)
    fma_share(c)
    for kind in ("sgemm", "dgemm"):
        print(f"{kind} kernel (out= preallocated), {threads} thread(s)")
        bench_matmul_kernel(c, kind, KERNEL_SHAPES["smoke" if smoke else "quick" if quick else "full"], threads)
    ncores = peers.cpu_count()
    if plan["multi"] and ncores > 1:
        if peers.blas_threads_controllable():
            print(f"sgemm, {ncores} threads")
            bench_matmul(c, "sgemm", [(n, n, n) for n in plan["multi"]], ncores, plan.get("multi_repeats"))
        else:
            print(f"sgemm with {ncores} threads skipped: threadpoolctl is needed to change numpy's BLAS threads")
    for shape in plan["rows"]:
        print(f"softmax / log-softmax {shape}")
        bench_rows(c, shape, threads)
        print(f"relu {shape}")
        bench_relu(c, shape, threads)
    print("call overhead (8 floats)")
    bench_call_overhead(c)
    print(f"allocation: fresh output vs out= at {plan['alloc']}")
    bench_allocation(c, plan["alloc"])
    return c.records


if __name__ == "__main__":
    import run as runner
    sys.exit(runner.main(["kernels"] + sys.argv[1:]))
