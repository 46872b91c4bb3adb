"""Timing: implementations of one thing timed side by side, in interleaved rounds, in one process.

- `measure_group`: the implementations being compared are warmed up, then timed in interleaved
  rounds with a rotating order (A B C, B C A, C A B, ...), so a burst of load from another
  process on these shared machines hits all of them alike. Each round times enough calls to last at least `target`
  seconds; the result per implementation is the median, min and max over the rounds of the time
  per call. Garbage collection is paused while timing, as timeit does.
- Clock (`clock_for`): at one thread every library computes in the calling thread, so those
  measurements count that thread's CPU time (CLOCK_THREAD_CPUTIME_ID: user + system time, page
  faults included), not the wall clock. On a shared machine the wall clock mostly measures how
  much of the core the other processes left us (a 50 ms round under a load average of 12 is
  2-3x slower than the same work alone); the thread's CPU time measures the code. The wall time
  of the same rounds is kept in each record ("wall"). Measurements with more threads use the
  wall clock (the work is in other threads too); expect them to be noisier.

Standard library only.
"""
import gc
import math
import statistics
import time


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


def time_calls(fn, number):
    """(wall seconds, calling thread's CPU seconds) per call of fn(), averaged over `number`
    back-to-back calls."""
    c0, t0 = time.thread_time(), time.perf_counter()
    for _ in range(number):
        fn()
    t1, c1 = time.perf_counter(), time.thread_time()
    return (t1 - t0) / number, (c1 - c0) / number


def settle(limit=1.0, step=0.01, busy=0.001):
    """Wait (up to `limit` seconds) until no other thread of this process uses the CPU: True when
    a `step`-second sleep passed with under `busy` seconds of CPU used by the other threads.

    Why: some libraries' worker threads keep spinning after a call returns (OpenBLAS's for about
    0.1 s: 2**28 cycles, its OPENBLAS_THREAD_TIMEOUT), and whatever runs next in the process then
    shares its cores with them. Multi-thread rounds settle first, so every implementation's round
    starts on idle cores, none in the wake of another's threads."""
    end = time.perf_counter() + limit
    while True:
        before = time.process_time() - time.thread_time()
        time.sleep(step)
        if time.process_time() - time.thread_time() - before < busy:
            return True
        if time.perf_counter() >= end:
            return False


def measure_group(fns, repeats=5, warmup=1, target=0.02, clock="wall", settled=False):
    """Time several implementations of one thing side by side: {name: fn} -> {name: Stats}.

    A value may also be a pair (setup, fn): setup() runs, untimed, before fn's warm-up and before
    each of its rounds (to choose our backend, for example). A value of None is left out (a
    skipped baseline). Each fn is called `warmup` times, then once more to estimate its cost,
    which fixes its calls per round (enough to last `target` seconds). Then `repeats` rounds run;
    in each round every implementation is timed once, in turn, so slow phases of a shared
    machine fall on all of them alike. The order rotates from round to round (A B C, B C A,
    C A B, ...), so each implementation takes each place equally often. Why: sgemm 1024^3 at
    2 threads, the same build timed three times in a row before numpy (OpenBLAS), was 1.5-3%
    slower in first place than in second or third in 5 of 6 runs; without numpy, or with
    0.3 s more of idle time after settle, no place was slower. (The cause is not pinned down:
    timing calls one by one right after numpy's showed no penalty.)

    settled: before each implementation's warm-up and each of its rounds, wait until the other
    threads of the process are idle (see settle); for measurements with several threads.

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
            if settled:
                settle()
            for _ in range(warmup):
                fn()
            once = time_calls(fn, 1)[1 if clock == "thread" else 0]
            numbers[name] = max(1, min(1_000_000, int(math.ceil(target / max(once, 1e-9)))))
        names = list(fns)
        for r in range(repeats if names else 0):
            # Round r starts at the r-th implementation: each takes every place in turn
            # (see the docstring).
            for name in names[r % len(names):] + names[:r % len(names)]:
                setup, fn = fns[name]
                if setup is not None:
                    setup()
                if settled:
                    settle()
                wall, cpu = time_calls(fn, numbers[name])
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


def fmt_time(seconds):
    """A duration with a readable unit: 1.23 us, 4.56 ms, 7.89 s."""
    if seconds is None:
        return "-"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6), ("ns", 1e-9)):
        if abs(seconds) >= scale or unit == "ns":
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds:.3g} s"
