"""Shared benchmark machinery: timing, thread pinning, machine and load reports, measured ceilings.

Every suite in this folder (bench_kernels.py, bench_ops.py, bench_models.py, bench_word2vec.py)
measures through these helpers, so the method is the same everywhere:

- Timing (`measure_group`): the implementations being compared are warmed up, then timed in
  interleaved rounds (A, B, C, A, B, C, ...) in one process, so a burst of load from another
  process on these shared machines hits all of them alike. Each round times enough calls to last
  at least `target` seconds; the result per implementation is the median, min and max over the
  rounds of the time per call. Garbage collection is paused while timing, as timeit does.
- Clock (`clock_for`): at one thread every library computes in the calling thread, so those
  measurements count that thread's CPU time (CLOCK_THREAD_CPUTIME_ID: user + system time, page
  faults included), not the wall clock. On a shared machine the wall clock mostly measures how
  much of the core the other processes left us (a 50 ms round under a load average of 12 is
  2-3x slower than the same work alone); the thread's CPU time measures the code. The wall time
  of the same rounds is kept in each record ("wall"). Measurements with more threads use the
  wall clock (the work is in other threads too); expect them to be noisier.
- Threads (`threads(n)`): one context manager sets the thread count of every library in the
  process: our two extensions (`set_num_threads`; each extension module has its own count), the
  BLAS that numpy uses (threadpoolctl) and PyTorch (`torch.set_num_threads`).
- Process environment (`prepare_process_env`, called before numpy is imported): OpenBLAS reads
  its environment once, when numpy loads it. Where OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE are set on
  a machine (they keep old OpenBLAS builds correct but slow a current numpy down), both are unset
  for this benchmark process only; OPENBLAS_NUM_THREADS is set to the largest thread count the run
  uses, and threadpoolctl lowers it per measurement. Which OpenBLAS kernel then runs is reported.
- Machine (`machine_info`): CPU model, SIMD level our kernels dispatch to, cores, memory,
  library versions, the OpenBLAS kernel, the git commit.
- Load (`LoadMonitor`): these machines are shared, so every run reports the CPU steal time, the
  CPU time other processes used and which processes they were, and the load average while it ran.
- Ceilings (`fma_peak`, `copy_bandwidth`): the roofline drawn in the report.
  * FMA peak: a loop of independent fused multiply-adds in C (AVX-512 or AVX2, whichever our
    kernels dispatch to), compiled at run time with the system C compiler and timed through
    ctypes. This is a measured peak of this core, not a number computed from a spec sheet (a
    virtual machine's clock and its number of FMA units per core cannot be read reliably). When
    no C compiler is found it is reported as skipped, and the practical ceiling remains: the
    largest OpenBLAS sgemm of the kernel suite, which the report also draws.
  * Copy bandwidth: `np.copyto` of a 256 MB array (read + write = 2 x 256 MB moved per call);
    with two threads, two halves copied at once by ctypes.memmove (which releases the GIL).

Records: each measurement is one dict with the keys of RECORD_KEYS (what, size, backend, threads,
median, min, max, repeats, unit); optional keys add detail: suite, dtype, number (calls per
round), rounds (the value of each round, in order, so two implementations timed in the same
rounds can be paired), flops or bytes per call and the derived rate {unit, median, min, max},
note, skipped. A baseline that is not installed gives a record with `skipped` set to the
reason and null timings: reported, never a failure.

This module imports only the standard library at load time, so run.py can fix the environment
before numpy is imported.
"""
import contextlib
import ctypes
import gc
import importlib
import importlib.metadata
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

RECORD_KEYS = ("what", "size", "backend", "threads", "median", "min", "max", "repeats", "unit")
OPENBLAS_SLOW_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# What prepare_process_env changed, reported in machine_info.
_ENV_CHANGES = {}


# ---------------------------------------------------------------------------------------------
# process environment and threads

def prepare_process_env(max_threads):
    """Set up this process's environment for benchmarking; call before numpy is imported.

    Unsets OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE (both together, in this process only), sets
    OPENBLAS_NUM_THREADS to max_threads (the BLAS thread pool's size; `threads()` lowers it per
    measurement) and TINYGRAD_REP_NUM_THREADS to max_threads (our kernels' starting count).
    Returns the dict of changes, also kept for machine_info(). Called after numpy was imported,
    the OpenBLAS part has no effect on numpy, and the report says so.
    """
    changes = {"numpy_already_loaded": "numpy" in sys.modules, "unset": {}, "set": {}}
    for name in OPENBLAS_SLOW_VARS:
        if name in os.environ:
            changes["unset"][name] = os.environ.pop(name)
    for name in ("OPENBLAS_NUM_THREADS", "TINYGRAD_REP_NUM_THREADS"):
        changes["set"][name] = str(max_threads)
        os.environ[name] = str(max_threads)
    _ENV_CHANGES.clear()
    _ENV_CHANGES.update(changes)
    return changes


def cpu_count():
    """The number of cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def optional(module):
    """The module if it can be imported, else None (torch, gensim, threadpoolctl, matplotlib)."""
    try:
        return importlib.import_module(module)
    except Exception:  # an optional baseline that fails to import is absent, whatever the reason
        return None


def _our_backends():
    """Our extension-backed backend modules that are built ({name: module})."""
    found = {}
    for name, mod in (("pybind11", "tinygrad_rep.backend.pybind"), ("cffi", "tinygrad_rep.backend.cffi")):
        m = optional(mod)
        if m is not None:
            found[name] = m
    return found


@contextlib.contextmanager
def threads(n):
    """Run the block with every library limited to n threads: our extensions, numpy's BLAS, torch.

    Torch is set only when it is already imported (a suite that uses it imports it first).
    The previous counts are restored afterwards.
    """
    n = int(n)
    ours = _our_backends()
    before = {name: m.get_num_threads() for name, m in ours.items()}
    for m in ours.values():
        m.set_num_threads(n)
    torch = sys.modules.get("torch")
    torch_before = torch.get_num_threads() if torch is not None else None
    if torch is not None:
        torch.set_num_threads(n)
    tpc = optional("threadpoolctl")
    limiter = (tpc.threadpool_limits(limits=n, user_api="blas") if tpc is not None
               else contextlib.nullcontext())
    try:
        with limiter:
            yield n
    finally:
        for name, m in ours.items():
            m.set_num_threads(before[name])
        if torch is not None:
            torch.set_num_threads(torch_before)


def blas_threads_controllable():
    """True when numpy's BLAS thread count can be changed at run time (threadpoolctl present)."""
    return optional("threadpoolctl") is not None


# ---------------------------------------------------------------------------------------------
# timing

class Stats:
    """Seconds per call of one implementation: median, min, max over `repeats` timed rounds.

    clock: "thread" (the calling thread's CPU time) or "wall"; `wall` holds the wall-clock Stats
    of the same rounds when the clock is not the wall."""

    def __init__(self, samples, number, clock="wall", wall=None):
        self.samples = list(samples)
        self.number = number  # calls per round
        self.repeats = len(self.samples)
        self.median = statistics.median(self.samples)
        self.min = min(self.samples)
        self.max = max(self.samples)
        self.clock = clock
        self.wall = wall

    def __repr__(self):
        return (f"Stats(median={self.median:.3g}s, min={self.min:.3g}s, max={self.max:.3g}s, "
                f"n={self.repeats}, clock={self.clock})")


def _time_calls(fn, number):
    """(wall seconds, calling thread's CPU seconds) per call of fn(), averaged over `number`
    back-to-back calls."""
    c0, t0 = time.thread_time(), time.perf_counter()
    for _ in range(number):
        fn()
    t1, c1 = time.perf_counter(), time.thread_time()
    return (t1 - t0) / number, (c1 - c0) / number


def measure_group(fns, repeats=5, warmup=1, target=0.02, clock="wall"):
    """Time several implementations of one thing side by side: {name: fn} -> {name: Stats}.

    A value may also be a pair (setup, fn): setup() runs, untimed, before fn's warm-up and before
    each of its rounds (to choose our backend, for example). A value of None is left out (a
    skipped baseline). Each fn is called `warmup` times, then once more to estimate its cost,
    which fixes its calls per round (enough to last `target` seconds). Then `repeats` rounds run;
    in each round every implementation is timed once, in turn, so slow phases of a shared
    machine fall on all of them alike.

    clock "wall" times with time.perf_counter. clock "thread" reports the calling thread's CPU
    time (user + system, page faults included) instead, and keeps the wall time beside it: for
    work that runs entirely in the calling thread (every library at one thread), it leaves out
    the time the core was given to other processes, which on a busy shared machine is most of the
    noise. It must not be used for work done in other threads (it would not count it).
    """
    if clock not in ("wall", "thread"):
        raise ValueError(f"clock must be 'wall' or 'thread', got {clock!r}")
    fns = {k: (f if isinstance(f, tuple) else (None, f)) for k, f in fns.items() if f is not None}
    numbers = {}
    walls = {name: [] for name in fns}
    cpus = {name: [] for name in fns}
    gc_was_enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        for name, (setup, fn) in fns.items():
            if setup is not None:
                setup()
            for _ in range(warmup):
                fn()
            once = _time_calls(fn, 1)[1 if clock == "thread" else 0]
            numbers[name] = max(1, min(1_000_000, int(math.ceil(target / max(once, 1e-9)))))
        for _ in range(repeats):
            for name, (setup, fn) in fns.items():
                if setup is not None:
                    setup()
                wall, cpu = _time_calls(fn, numbers[name])
                walls[name].append(wall)
                cpus[name].append(cpu)
    finally:
        if gc_was_enabled:
            gc.enable()
    if clock == "wall":
        return {name: Stats(walls[name], numbers[name]) for name in fns}
    return {name: Stats(cpus[name], numbers[name], "thread", Stats(walls[name], numbers[name]))
            for name in fns}


def measure(fn, repeats=5, warmup=1, target=0.02, clock="wall"):
    """Stats of one implementation (see measure_group)."""
    return measure_group({"fn": fn}, repeats, warmup, target, clock)["fn"]


def clock_for(nthreads):
    """The clock for a measurement at `nthreads` threads: the calling thread's CPU time when
    every library runs in the calling thread (one thread), else the wall clock."""
    return "thread" if int(nthreads) == 1 else "wall"


def record(what, size, backend, threads_, stats, unit="s", scale=1.0, **extra):
    """One measurement as a results.json record.

    stats: a Stats (seconds per call, multiplied by `scale`: 1e6 with unit "us"), or None with
    extra["skipped"] set to the reason. Extra keys (suite, dtype, flops, bytes, note ...) are
    copied; a `rate` {unit, median, min, max} is added when flops or bytes are given.
    """
    rec = {"what": what, "size": str(size), "backend": backend, "threads": int(threads_),
           "median": None, "min": None, "max": None, "repeats": 0, "unit": unit}
    if stats is not None:
        rec.update(median=stats.median * scale, min=stats.min * scale, max=stats.max * scale,
                   repeats=stats.repeats, number=stats.number, clock=stats.clock,
                   rounds=[s * scale for s in stats.samples])
        if stats.wall is not None:
            w = stats.wall
            rec["wall"] = {"median": w.median * scale, "min": w.min * scale, "max": w.max * scale}
        work, rate_unit = ((extra["flops"], "GFLOP/s") if extra.get("flops")
                           else (extra.get("bytes"), "GB/s"))
        if work:
            rec["rate"] = {"unit": rate_unit, "median": work / stats.median / 1e9,
                           "min": work / stats.max / 1e9, "max": work / stats.min / 1e9}
    rec.update({k: v for k, v in extra.items() if v is not None})
    return rec


def skipped(what, size, backend, threads_, reason, unit="s", **extra):
    """The record of a baseline that could not run (not installed): reported, not a failure."""
    return record(what, size, backend, threads_, None, unit=unit, skipped=reason, **extra)


def side_by_side(suite, what, size, nthreads, fns, repeats, target, unit="s", scale=1.0, **extra):
    """Time {backend: fn, (setup, fn) or None} side by side with every library at `nthreads`
    threads; returns their records (None: a skipped baseline, recorded with its reason) and
    prints one summary line."""
    missing = [k for k, v in fns.items() if v is None]
    with threads(nthreads):
        stats = measure_group(fns, repeats=repeats, warmup=1, target=target, clock=clock_for(nthreads))
    recs = [record(what, size, name, nthreads, st, unit=unit, scale=scale, suite=suite, **extra)
            for name, st in stats.items()]
    for name in missing:
        why = {"torch": "PyTorch is not installed", "gensim": "gensim is not installed"}.get(
            name, f"{name} is not available")
        recs.append(skipped(what, size, name, nthreads, why, unit=unit, suite=suite, **extra))
    print("  " + summary_line(recs), flush=True)
    return recs


def summary_line(recs):
    """One line for a comparison: each backend's median (and rate); [xR]: its time over
    pybind11's, or pybind11's rate over its rate (> 1: pybind11 is faster)."""
    ours = next((r for r in recs if r["backend"] == "pybind11" and r["median"]), None)
    parts = []
    for r in recs:
        if r["median"] is None:
            parts.append(f"{r['backend']} skipped")
            continue
        t = fmt_time(r["median"]) if r["unit"] == "s" else f"{r['median']:.3g} {r['unit']}"
        if "rate" in r:
            t += f" ({r['rate']['median']:.3g} {r['rate']['unit']})"
        if ours is not None and r is not ours:
            ratio = (ours["median"] / r["median"] if str(r["unit"]).endswith("/s")  # a rate, e.g. words/s
                     else r["median"] / ours["median"])
            t += f" [x{ratio:.2f}]"
        parts.append(f"{r['backend']} {t}")
    r0 = recs[0]
    return f"{r0['what']} {r0['size']} t={r0['threads']}: " + " | ".join(parts)


def fmt_time(seconds):
    """A duration with a readable unit: 1.23 us, 4.56 ms, 7.89 s."""
    if seconds is None:
        return "-"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6), ("ns", 1e-9)):
        if abs(seconds) >= scale or unit == "ns":
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds:.3g} s"


# ---------------------------------------------------------------------------------------------
# machine

def _cpuinfo():
    info = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if ":" in line:
                    key, value = (s.strip() for s in line.split(":", 1))
                    info.setdefault(key, value)
    except OSError:
        pass
    return info


def _version(dist):
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _git_commit():
    try:
        out = subprocess.run(["git", "-C", REPO, "describe", "--always", "--dirty"],
                             capture_output=True, text=True, timeout=10)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def blas_info():
    """numpy's BLAS as threadpoolctl sees it: library, version, kernel (architecture), threads."""
    tpc = optional("threadpoolctl")
    if tpc is None:
        return {"skipped": "threadpoolctl is not installed (pip install threadpoolctl): the OpenBLAS "
                           "kernel cannot be reported and its thread count is only OPENBLAS_NUM_THREADS"}
    import numpy  # noqa: F401  (loads numpy's BLAS so threadpoolctl can see it)
    blas = [lib for lib in tpc.threadpool_info() if lib.get("user_api") == "blas"]
    # torch may load a BLAS of its own (MKL): prefer the one shipped with numpy
    blas.sort(key=lambda lib: ("numpy" not in lib.get("filepath", ""), lib.get("internal_api") != "openblas"))
    if blas:
        lib = blas[0]
        return {"library": lib.get("internal_api"), "version": lib.get("version"),
                "kernel": lib.get("architecture"), "max_threads": lib.get("num_threads"),
                "threading_layer": lib.get("threading_layer"),
                "file": os.path.basename(lib.get("filepath", ""))}
    return {"skipped": "threadpoolctl found no BLAS library loaded by numpy"}


def machine_info():
    """What the numbers were measured on: CPU, SIMD level in use, cores, memory, versions."""
    cpu = _cpuinfo()
    flags = set(cpu.get("flags", "").split())
    mem_gib = None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    mem_gib = round(int(line.split()[1]) / 2 ** 20, 1)
    except OSError:
        pass
    info = {
        "cpu_model": cpu.get("model name") or platform.processor() or platform.machine(),
        "cpu_mhz": float(cpu["cpu MHz"]) if "cpu MHz" in cpu else None,
        "cpu_simd_available": [f for f in ("sse4_2", "avx", "fma", "avx2", "avx512f", "avx512_fp16")
                               if f in flags],
        "hypervisor": "hypervisor" in flags,
        "cores": cpu_count(),
        "memory_gib": mem_gib,
        "os": platform.platform(),
        "python": platform.python_version(),
        "git": _git_commit(),
        "env": dict(_ENV_CHANGES),
    }
    import tinygrad_rep as tr
    ours = {}
    for name, m in _our_backends().items():
        i = m.info()
        ours[name] = {"simd": i.get("simd"), "threads": i.get("threads"), "compiler_flags": i.get("compiler_flags")}
    info["tinygrad_rep"] = {"version": tr.__version__, "backends": ours,
                            "simd": next((v["simd"] for v in ours.values()), None)}
    info["versions"] = {d: _version(d) for d in ("numpy", "cffi", "threadpoolctl", "torch", "gensim",
                                                 "matplotlib")}
    info["blas"] = blas_info()
    torch = sys.modules.get("torch")
    if torch is not None:
        try:
            cap = torch.backends.cpu.get_cpu_capability()
        except Exception:  # older torch: no such query
            cap = None
        info["torch"] = {"version": torch.__version__, "cpu_capability": cap,
                         "mkl": bool(torch.backends.mkl.is_available())}
    return info


# ---------------------------------------------------------------------------------------------
# load while the run goes on

def _proc_stat_cpu():
    """Aggregate CPU jiffies from /proc/stat: dict of user, nice, system, idle, iowait, irq,
    softirq, steal (None where /proc is absent)."""
    try:
        with open("/proc/stat") as f:
            parts = f.readline().split()
    except OSError:
        return None
    names = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")
    return {n: int(v) for n, v in zip(names, parts[1:1 + len(names)])}


def _loadavg():
    try:
        with open("/proc/loadavg") as f:
            parts = f.read().split()
        running = int(parts[3].split("/")[0])
        return float(parts[0]), running
    except (OSError, ValueError, IndexError):
        return None, None


def _process_times():
    """{pid: (cpu seconds used so far, command)} for every process readable in /proc."""
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    out = {}
    try:
        pids = [p for p in os.listdir("/proc") if p.isdigit()]
    except OSError:
        return out
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                stat = f.read()
            comm = stat[stat.index("(") + 1:stat.rindex(")")]
            fields = stat[stat.rindex(")") + 2:].split()
            ppid = int(fields[1])
            cpu = (int(fields[11]) + int(fields[12])) / tick  # utime + stime
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    cmd = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
            except OSError:
                cmd = ""
            words = (cmd or comm).split() or [comm]
            words[0] = os.path.basename(words[0])  # "python script.py", not the interpreter's path
            out[int(pid)] = (cpu, " ".join(words)[:80], ppid)  # one line
        except (OSError, ValueError, IndexError):
            continue
    return out


class LoadMonitor:
    """Measures how busy the machine was while a block ran (use as a context manager).

    result() gives: wall seconds; CPU steal as a percentage of all CPU time (time the hypervisor
    gave our virtual CPUs to someone else); the share of CPU time used by other processes; the
    1-minute load average at start, end and its largest sample; the largest number of runnable
    processes seen (sampled every `interval` seconds); and the other processes that used the most
    CPU time during the block.
    """

    def __init__(self, interval=1.0, top=5):
        self.interval, self.top = interval, top
        self._stop = threading.Event()
        self._samples = []
        self._thread = None
        self.summary = None

    def __enter__(self):
        self._t0 = time.perf_counter()
        self._cpu0 = _proc_stat_cpu()
        self._procs0 = _process_times()
        self._self0 = os.times()
        self._sample()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def _sample(self):
        load1, running = _loadavg()
        if load1 is not None:
            self._samples.append((load1, running))

    def _loop(self):
        while not self._stop.wait(self.interval):
            self._sample()

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self._sample()
        self.summary = self._summarize()
        return False

    def _summarize(self):
        wall = time.perf_counter() - self._t0
        cpu1, procs1, self1 = _proc_stat_cpu(), _process_times(), os.times()
        mine = (self1.user - self._self0.user) + (self1.system - self._self0.system) \
            + (self1.children_user - self._self0.children_user) \
            + (self1.children_system - self._self0.children_system)
        out = {"seconds": round(wall, 2), "our_cpu_seconds": round(mine, 2)}
        if self._cpu0 and cpu1:
            d = {k: cpu1[k] - self._cpu0[k] for k in cpu1}
            total = sum(d.values()) or 1
            tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
            busy = total - d["idle"] - d["iowait"] - d["steal"]
            out["steal_percent"] = round(100.0 * d["steal"] / total, 2)
            out["busy_percent"] = round(100.0 * busy / total, 1)
            out["others_cpu_percent"] = round(max(0.0, 100.0 * (busy / tick - mine) / (total / tick)), 1)
        if self._samples:
            loads = [s[0] for s in self._samples]
            out["loadavg_1min"] = {"start": loads[0], "end": loads[-1], "max": max(loads)}
            out["runnable_max"] = max(s[1] for s in self._samples)
        me = os.getpid()
        others = []
        for pid, (cpu, cmd, ppid) in procs1.items():
            if pid == me or ppid == me:
                continue
            used = cpu - self._procs0.get(pid, (0.0, "", 0))[0]
            if used > 0.05 * wall and used > 0.2:
                others.append({"pid": pid, "cpu_seconds": round(used, 1), "command": cmd})
        others.sort(key=lambda p: -p["cpu_seconds"])
        out["other_processes"] = others[:self.top]
        return out


def describe_load(load):
    """One line for a LoadMonitor summary."""
    if not load:
        return "load: not measured"
    parts = [f"{load['seconds']:.0f} s"]
    if "steal_percent" in load:
        parts.append(f"CPU steal {load['steal_percent']:.1f}%")
        parts.append(f"other processes {load['others_cpu_percent']:.0f}% of CPU time")
    if "loadavg_1min" in load:
        la = load["loadavg_1min"]
        parts.append(f"load average {la['start']:.1f} -> {la['end']:.1f} (max {la['max']:.1f})")
    if load.get("other_processes"):
        top = load["other_processes"][0]
        parts.append(f"busiest other process: {top['command'][:50]!r} ({top['cpu_seconds']} CPU s)")
    return "; ".join(parts)


# ---------------------------------------------------------------------------------------------
# ceilings: FMA peak and copy bandwidth

_FMA_SOURCE = r"""
/* Peak fused multiply-add throughput of one core: NACC independent accumulator registers, so
 * the FMA latency is hidden and only the FMA units' throughput limits the loop. */
#include <immintrin.h>
#define NACC 12

#define FMA_LOOP(NAME, TARGET, VEC, SET1, FMADD, ADD, STORE, LANES, T)                    \
__attribute__((target(TARGET))) long NAME(long iters, T *sink)                          \
{                                                                                         \
    VEC acc[NACC];                                                                        \
    for (int i = 0; i < NACC; i++) acc[i] = SET1((T)1 + (T)i * (T)1e-3);                \
    const VEC m = SET1((T)0.9999999), a = SET1((T)1e-7);                                  \
    for (long it = 0; it < iters; it++) {                                                 \
        for (int i = 0; i < NACC; i++) acc[i] = FMADD(acc[i], m, a);                     \
    }                                                                                     \
    VEC s = acc[0];                                                                       \
    for (int i = 1; i < NACC; i++) s = ADD(s, acc[i]);                                   \
    STORE(sink, s);                                                                       \
    return iters * NACC * LANES * 2;                                                      \
}

FMA_LOOP(fma_avx512_f32, "avx512f", __m512, _mm512_set1_ps, _mm512_fmadd_ps, _mm512_add_ps, _mm512_storeu_ps, 16, float)
FMA_LOOP(fma_avx512_f64, "avx512f", __m512d, _mm512_set1_pd, _mm512_fmadd_pd, _mm512_add_pd, _mm512_storeu_pd, 8, double)
FMA_LOOP(fma_avx2_f32, "avx2,fma", __m256, _mm256_set1_ps, _mm256_fmadd_ps, _mm256_add_ps, _mm256_storeu_ps, 8, float)
FMA_LOOP(fma_avx2_f64, "avx2,fma", __m256d, _mm256_set1_pd, _mm256_fmadd_pd, _mm256_add_pd, _mm256_storeu_pd, 4, double)
"""

_fma_lib = None


def _compile_fma():
    """Compile the FMA loop into a temporary shared library and load it (cached per process).
    Returns (ctypes library, None) or (None, reason)."""
    global _fma_lib
    if _fma_lib is not None:
        return _fma_lib, None
    cc = os.environ.get("CC", "cc")
    if shutil.which(cc) is None:
        return None, f"no C compiler ({cc}) to build the FMA peak loop"
    folder = tempfile.mkdtemp(prefix="tinygrad_rep_fma_")
    try:
        src, lib = os.path.join(folder, "fma.c"), os.path.join(folder, "fma.so")
        with open(src, "w") as f:
            f.write(_FMA_SOURCE)
        proc = subprocess.run([cc, "-O3", "-shared", "-fPIC", "-o", lib, src],
                              capture_output=True, text=True, timeout=120)
        if proc.returncode != 0:
            return None, f"the FMA peak loop did not compile: {proc.stderr.strip()[:200]}"
        _fma_lib = ctypes.CDLL(lib)
    finally:
        shutil.rmtree(folder, ignore_errors=True)  # the loaded library stays mapped
    for name in ("fma_avx512_f32", "fma_avx512_f64", "fma_avx2_f32", "fma_avx2_f64"):
        getattr(_fma_lib, name).restype = ctypes.c_long
        getattr(_fma_lib, name).argtypes = [ctypes.c_long, ctypes.c_void_p]
    return _fma_lib, None


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
    one = min(_time_calls(lambda: fn(100_000, sink), 1)[1] for _ in range(3))  # also warms the core up
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


def copy_bandwidth(nbytes=256 * 2 ** 20, nthreads=1, repeats=5):
    """Measured copy bandwidth: (Stats of seconds per copy, bytes moved per copy = 2 * nbytes).

    One thread: np.copyto(dst, src). More: the halves (thirds ...) copied at once by
    ctypes.memmove in separate threads.
    """
    import numpy as np
    n = nbytes // 4
    src = np.ones(n, dtype=np.float32)
    dst = np.zeros(n, dtype=np.float32)  # zeros() may be lazily mapped: the warm-up touches it
    if nthreads == 1:
        call = lambda: np.copyto(dst, src)  # noqa: E731
    else:
        chunk = -(-n // nthreads)
        parts = [(dst[i:i + chunk], src[i:i + chunk]) for i in range(0, n, chunk)]

        def call():
            ts = [threading.Thread(target=ctypes.memmove, args=(d.ctypes.data, s.ctypes.data, d.nbytes))
                  for d, s in parts]
            for t in ts:
                t.start()
            for t in ts:
                t.join()
    return measure(call, repeats=repeats, warmup=1, target=0, clock=clock_for(nthreads)), 2 * n * 4
