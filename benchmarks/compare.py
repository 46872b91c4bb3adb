"""The comparison of two runs (`tinygrad-rep bench compare`): the speed ratio of each measurement
both made, with the changes larger than the noise either run measured flagged."""
from values import display, fmt_num, fmt_ratio, is_rate


def shown_values(rec):
    """(median, min, max, unit) that a record is compared by: its rate when it has one (the work
    per call may differ between runs, e.g. a calibrated loop), else its own values."""
    if rec.get("rate"):
        r = rec["rate"]
        return r["median"], r["min"], r["max"], r["unit"]
    return rec["median"], rec.get("min", rec["median"]), rec.get("max", rec["median"]), rec.get("unit")


def compare(old, new, min_change=0.05):
    """Match the records of two runs and flag changes beyond the measured noise.

    A record pairs with the one of the same (what, size, backend, threads, unit). change is the
    speed ratio new against old (> 1: the new run is faster), computed on the rate when the
    records have one. A pair is flagged when the two runs' [min, max] ranges do not overlap (the
    difference is larger than the spread either run measured) and the medians differ by at least
    `min_change` (so runs with one repeat, or with very tight ranges, are not flagged for a
    trivial difference). Returns (rows, only_old, only_new); each row is a dict with key, old,
    new, change and flag ("faster", "slower" or "").
    """
    def key(r):
        return (r.get("what"), r.get("size"), r.get("backend"), r.get("threads"), r.get("unit"))

    olds = {key(r): r for r in old.get("records", []) if r.get("median") is not None}
    news = {key(r): r for r in new.get("records", []) if r.get("median") is not None}
    rows = []
    for k in [k for k in news if k in olds]:
        o_med, o_lo, o_hi, unit = shown_values(olds[k])
        n_med, n_lo, n_hi, _ = shown_values(news[k])
        change = None
        if o_med and n_med:
            change = n_med / o_med if is_rate(unit) else o_med / n_med
        disjoint = n_hi < o_lo or n_lo > o_hi
        flag = ""
        if change is not None and disjoint and abs(change - 1) >= min_change:
            flag = "faster" if change > 1 else "slower"
        rows.append({"key": k, "old": olds[k], "new": news[k], "change": change, "flag": flag})
    only_old = [k for k in olds if k not in news]
    only_new = [k for k in news if k not in olds]
    return rows, only_old, only_new


def format_compare(rows, only_old=(), only_new=(), flagged_only=False):
    """The comparison as a plain-text table, flagged rows marked."""
    lines = [f"{'what':34} {'size':16} {'backend':14} {'thr':>3} {'old':>12} {'new':>12} {'change':>8}  flag"]
    for row in rows:
        if flagged_only and not row["flag"]:
            continue
        what, size, be, thr, unit = row["key"]
        mark = {"faster": "FASTER", "slower": "SLOWER"}.get(row["flag"], "")
        lines.append(f"{str(what)[:34]:34} {str(size)[:16]:16} {str(be)[:14]:14} {thr!s:>3} "
                     f"{_compare_cell(row['old']):>12} {_compare_cell(row['new']):>12} "
                     f"{fmt_ratio(row['change']):>8}  {mark}")
    n_f = sum(1 for r in rows if r["flag"] == "faster")
    n_s = sum(1 for r in rows if r["flag"] == "slower")
    lines.append(f"{len(rows)} measurements in both runs: {n_f} faster, {n_s} slower beyond the measured "
                 f"noise (change = speed new/old, > 1: new is faster)")
    if only_old or only_new:
        lines.append(f"{len(only_old)} only in the old run, {len(only_new)} only in the new run")
    return "\n".join(lines)


def _compare_cell(rec):
    v, _, _, unit = display(rec)
    return f"{fmt_num(v)} {unit}"
