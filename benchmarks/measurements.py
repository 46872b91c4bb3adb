"""Measurements: each as one record (a dict of results.json), and the side-by-side helper that
times a comparison (timing.py) with every library at a thread count (peers.py) and records it.

A record has the keys of RECORD_KEYS (what, size, backend, threads, median, min, max, repeats,
unit); optional keys add detail: suite, dtype, number (calls per round), rounds (the value of each
round, in order, so two implementations timed in the same rounds can be paired), flops or bytes
per call and the derived rate {unit, median, min, max}, note, skipped. A baseline that is not
installed gives a record with `skipped` set to the reason and null timings: reported, never a
failure.
"""
from peers import threads
from timing import clock_for, fmt_time, measure_group

RECORD_KEYS = ("what", "size", "backend", "threads", "median", "min", "max", "repeats", "unit")


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
        # several threads: each round starts on idle cores (OpenBLAS's workers spin ~0.1 s after
        # a call, and would share the cores with whatever is timed next; see timing.settle)
        stats = measure_group(fns, repeats=repeats, warmup=1, target=target, clock=clock_for(nthreads),
                              settled=int(nthreads) > 1)
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
