"""Values and ratios of records, and how a cell of a table shows them.

Ratios are speed ratios throughout: how many times faster ours (the pybind11 backend, the
default) is than the baseline; > 1 means ours is faster. For a time (unit s, us, s/step, ...)
that is baseline / ours; for a rate (unit ending in "/s": GFLOP/s, words/s, ...) ours / baseline.
This module reads only the keys it needs, so the records of every suite fit the same tables.
"""

OUR_NAMES = ("pybind11", "tinygrad_rep", "tinygrad-rep", "ours")  # which backend is "ours" in a row
OUR_BACKENDS = ("pybind11", "cffi", "numpy-ref", "numpy backend")
BASELINES = ("numpy", "numpy-out", "torch", "gensim", "copy")  # copy: the bandwidth ceiling of a memory-bound row


def is_rate(unit):
    """A rate (higher is better) rather than a time (lower is better)."""
    return bool(unit) and unit.endswith("/s")


def speed_ratio(ours, base):
    """How many times faster `ours` is than `base` (two records of the same unit); None if unknown."""
    if not ours or not base or not ours.get("median") or not base.get("median"):
        return None
    if is_rate(ours.get("unit")):
        return ours["median"] / base["median"]
    return base["median"] / ours["median"]


def paired_range(ours, base):
    """(min, max) of the per-round speed ratios when both were timed in the same interleaved
    rounds (same number of samples), else None."""
    a, b = ours.get("rounds"), base.get("rounds")
    if not a or not b or len(a) != len(b):
        return None
    r = [(y / x) if not is_rate(ours.get("unit")) else (x / y) for x, y in zip(a, b) if x and y]
    return (min(r), max(r)) if r else None


def fmt_num(v):
    if v is None:
        return "-"
    if v == 0:
        return "0"
    a = abs(v)
    if a >= 1000:
        return f"{v:,.0f}"
    if a >= 100:
        return f"{v:.0f}"
    if a >= 10:
        return f"{v:.1f}"
    if a >= 1:
        return f"{v:.2f}"
    return f"{v:.3g}"


def time_scale(seconds):
    """(factor, unit) to show durations of about `seconds`: s, ms or us."""
    if seconds is None or seconds >= 0.1:
        return 1.0, "s"
    return (1e3, "ms") if seconds >= 1e-3 else (1e6, "us")


def display(rec, scale=None):
    """(value, min, max, unit) shown for a record: its rate when it has one, else its timing;
    times in seconds are shown in s, ms or us (`scale`: a (factor, unit) pair to use instead of
    the record's own, so that a table row shares one unit)."""
    if rec.get("rate"):
        r = rec["rate"]
        return r["median"], r["min"], r["max"], r["unit"]
    v, lo, hi, unit = rec.get("median"), rec.get("min"), rec.get("max"), rec.get("unit") or ""
    if unit == "s" and v is not None:
        factor, unit = scale or time_scale(v)
        v, lo, hi = (x * factor if x is not None else None for x in (v, lo, hi))
    return v, lo, hi, unit


def cell(rec, with_range=True, scale=None):
    if rec is None:
        return ""
    if rec.get("skipped"):
        return "skipped"
    v, lo, hi, unit = display(rec, scale)
    if v is None:
        return "-"
    if with_range and lo is not None and hi is not None and rec.get("repeats", 0) > 1:
        return f"{fmt_num(v)} ({fmt_num(lo)}-{fmt_num(hi)})"
    return fmt_num(v)


def fmt_ratio(r):
    return "-" if r is None else f"{r:.2f}x"


def size_key(size):
    """Sort sizes like 64x64x64 < 256x784x256 < 4096x4096 by element count, text last."""
    try:
        n = 1
        for part in str(size).replace(" MB", "").split("x"):
            n *= int(part)
        return (0, n, str(size))
    except ValueError:
        return (1, 0, str(size))


def index(records):
    """{(what, size, threads): {backend: record}}"""
    out = {}
    for r in records:
        out.setdefault((r.get("what"), r.get("size"), r.get("threads")), {})[r.get("backend")] = r
    return out


def ours_in(row):
    """The record of our default backend in a {backend: record} row, or None."""
    for name in OUR_NAMES:
        if name in row and row[name].get("median") is not None:
            return row[name]
    return None
