"""Benchmark reports: results.json (atomic), REPORT.md with tables and PNG plots, the README
headline table, target evaluation, and the comparison of two runs (`tinygrad-rep bench compare`).

Ratios are speed ratios throughout: how many times faster ours (the pybind11 backend, the
default) is than the baseline; > 1 means ours is faster. For a time (unit s, us, s/step, ...)
that is baseline / ours; for a rate (unit ending in "/s": GFLOP/s, words/s, ...) ours / baseline.
Records come from run.py (see common.RECORD_KEYS); this module reads only what it needs, so the
records of every suite, ours or a colleague's, fit the same tables.
"""
import json
import os
import tempfile

OUR_NAMES = ("pybind11", "tinygrad_rep", "tinygrad-rep", "ours")  # which backend is "ours" in a row
OUR_BACKENDS = ("pybind11", "cffi", "numpy-ref", "numpy backend")
BASELINES = ("numpy", "numpy-out", "torch", "gensim")
README_START, README_END = "<!-- bench:start -->", "<!-- bench:end -->"


# ---------------------------------------------------------------------------------------------
# files

def write_json_atomic(path, obj):
    """Write obj as JSON to path through a temporary file and a rename: never half-written."""
    write_text_atomic(path, json.dumps(obj, indent=1, sort_keys=False, default=str) + "\n")


def write_text_atomic(path, text):
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix="." + os.path.basename(path) + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def run_line(results):
    """When and how a run was made, and how busy the machine was: one line."""
    load = results.get("load") or {}
    return (f"{results.get('created')}, {results.get('mode')}, {results.get('threads')} thread(s); other "
            f"processes {load.get('others_cpu_percent', '-')}% of CPU time, steal {load.get('steal_percent', '-')}%")


def load_results(path):
    """A results.json as a dict; a clear error when the file is not one."""
    with open(path) as f:
        try:
            data = json.load(f)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path} is not a JSON file: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("records"), list):
        raise ValueError(f"{path} is not a benchmark results file (no 'records' list)")
    return data


# ---------------------------------------------------------------------------------------------
# values and ratios

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


def _size_key(size):
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


# ---------------------------------------------------------------------------------------------
# targets

def evaluate_targets(results):
    """Every suite's TARGETS (ratios) and LIMITS (absolute values) against the records."""
    idx = index(results.get("records", []))
    out = []
    for suite, status in results.get("suites", {}).items():
        for label, what, size, threads, ours, base, want in status.get("targets", []):
            row = idx.get((what, size, threads), {})
            o, b = row.get(ours), row.get(base)
            r = speed_ratio(o, b)
            entry = {"suite": suite, "label": label, "want": f">= {want}x", "value": r,
                     "shown": "-" if r is None else f"{r:.3f}x", "met": None if r is None else r >= want}
            rng = paired_range(o, b) if o and b else None
            if rng:
                entry["range"] = [rng[0], rng[1]]
            if r is None:
                entry["why"] = (b or {}).get("skipped") or "not measured in this run"
            out.append(entry)
        for label, what, size, threads, backend, unit, limit in status.get("limits", []):
            rec = idx.get((what, size, threads), {}).get(backend)
            v = rec.get("median") if rec else None
            entry = {"suite": suite, "label": label, "want": f"<= {limit} {unit}", "value": v,
                     "shown": "-" if v is None else f"{v:.2f} {unit}", "met": None if v is None else v <= limit}
            if rec and rec.get("repeats", 0) > 1:
                entry["range"] = [rec["min"], rec["max"]]
            out.append(entry)
    return out


def targets_table(targets):
    """The targets that this run measured, and a line on those it did not."""
    lines = ["| target | wanted | measured (median) | per-round range | met |", "|---|---|---|---|---|"]
    unmeasured = [t for t in targets if t["met"] is None]
    for t in targets:
        if t["met"] is None:
            continue
        rng = t.get("range")
        rng = f"{rng[0]:.3g}-{rng[1]:.3g}" if rng else ""
        lines.append(f"| {t['label']} | {t['want']} | {t['shown']} | {rng} | {'yes' if t['met'] else '**no**'} |")
    if unmeasured:
        whys = sorted({t.get("why", "not measured") for t in unmeasured})
        lines += ["", f"{len(unmeasured)} target(s) not measured in this run ({'; '.join(whys)}; "
                      f"the full run measures every size): " + ", ".join(t["label"] for t in unmeasured) + "."]
    return "\n".join(lines)


def targets_text(targets):
    met = sum(1 for t in targets if t["met"] is True)
    missed = [t for t in targets if t["met"] is False]
    unmeasured = sum(1 for t in targets if t["met"] is None)
    lines = [f"targets: {met} met, {len(missed)} missed, {unmeasured} not measured in this run"]
    lines += [f"  missed: {t['label']}: {t['shown']} (wanted {t['want']})" for t in missed]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# tables

def machine_line(m):
    """One line: CPU, SIMD level in use, cores, BLAS kernel, library versions."""
    blas = m.get("blas", {})
    blas_s = (f"{blas.get('library')} {blas.get('version')} kernel {blas.get('kernel')}"
              if "library" in blas else blas.get("skipped", "unknown"))
    v = m.get("versions", {})
    libs = ", ".join(f"{k} {val}" for k, val in v.items() if val)
    return (f"machine: {m.get('cpu_model')}, {m.get('cores')} cores, SIMD in use "
            f"{m.get('tinygrad_rep', {}).get('simd')}; numpy BLAS: {blas_s}; {libs}")


def machine_table(m):
    tr = m.get("tinygrad_rep", {})
    blas = m.get("blas", {})
    env = m.get("env", {})
    rows = [("CPU", f"{m.get('cpu_model')} ({m.get('cpu_mhz')} MHz nominal"
                    f"{', virtual machine' if m.get('hypervisor') else ''})"),
            ("cores available", m.get("cores")), ("memory", f"{m.get('memory_gib')} GiB"),
            ("SIMD on the CPU", ", ".join(m.get("cpu_simd_available", []))),
            ("SIMD our kernels use", tr.get("simd")),
            ("our compiler flags", next((b.get("compiler_flags") for b in tr.get("backends", {}).values()), None)),
            ("numpy BLAS", (f"{blas.get('library')} {blas.get('version')}, kernel {blas.get('kernel')}, "
                            f"{blas.get('threading_layer')}") if "library" in blas else blas.get("skipped")),
            ("PyTorch", (f"{m['torch']['version']}, CPU capability {m['torch']['cpu_capability']}"
                         if m.get("torch") else "not loaded")),
            ("versions", ", ".join(f"{k} {v}" for k, v in m.get("versions", {}).items() if v)),
            ("not installed", ", ".join(k for k, v in m.get("versions", {}).items() if not v) or "-"),
            ("environment", "unset for this run: " + (", ".join(env.get("unset", {})) or "nothing") + "; set: "
             + ", ".join(f"{k}={v}" for k, v in env.get("set", {}).items())
             + ("; numpy was loaded before these were set, so OpenBLAS kept its own settings"
                if env.get("numpy_already_loaded") else "")),
            ("OS, Python", f"{m.get('os')}, Python {m.get('python')}"),
            ("git", m.get("git"))]
    return "\n".join(["| | |", "|---|---|"] + [f"| {k} | {v} |" for k, v in rows])


def _one_line(text):
    """Text fit for a markdown table cell: one line, no cell separators."""
    return " ".join(str(text).split()).replace("|", "/").replace("`", "'")


def load_table(results):
    lines = ["| part | seconds | CPU steal | other processes' CPU | load average (start, end, max) | busiest other processes |",
             "|---|---|---|---|---|---|"]
    parts = [(name, s.get("load")) for name, s in results.get("suites", {}).items()] + [("whole run", results.get("load"))]
    for name, load in parts:
        if not load:
            continue
        la = load.get("loadavg_1min", {})
        busiest = "; ".join(f"`{_one_line(p['command'])[:40]}` {p['cpu_seconds']} s"
                            for p in load.get("other_processes", [])[:3])
        lines.append(f"| {name} | {load.get('seconds')} | {load.get('steal_percent', '-')}% | "
                     f"{load.get('others_cpu_percent', '-')}% | {la.get('start', '-')}, {la.get('end', '-')}, "
                     f"{la.get('max', '-')} | {busiest or '-'} |")
    return "\n".join(lines)


def suite_tables(records):
    """Markdown tables for a suite's records: one table per set of `what`s measured with the
    same backends; a row per (what, size, threads), a column per backend with cells
    'median (min-max)' in the row's unit (a rate when the record has one), and the speed ratio of
    ours (pybind11) against each baseline (numpy, numpy-out, torch, gensim) in the block."""
    blocks = {}  # {tuple of backends: [what, ...]}, in order of first appearance
    for what in dict.fromkeys(r.get("what") for r in records):
        backends = tuple(dict.fromkeys(r.get("backend") for r in records if r.get("what") == what))
        blocks.setdefault(backends, []).append(what)
    blocks = [(list(b), whats) for b, whats in blocks.items()]
    return "\n\n".join(_block_table([r for r in records if r.get("what") in whats], backends)
                       for backends, whats in blocks)


def _block_table(records, backends):
    idx = index(records)
    keys = sorted(idx, key=lambda k: (_first_seen(records, k[0]), k[2] or 0, _size_key(k[1])))
    ours_name = next((n for n in OUR_NAMES if n in backends), None)
    ratio_cols = [b for b in backends if b in BASELINES] if ours_name else []
    head = ["what", "size", "threads", "unit"] + backends + [f"{ours_name} vs {b}" for b in ratio_cols]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for key in keys:
        row = idx[key]
        timed = [r for r in row.values() if r.get("median") is not None]
        # one unit per row: durations scaled by the row's fastest entry
        scale = time_scale(min(r["median"] for r in timed)) if timed else None
        unit = display(timed[0], scale)[3] if timed else next(iter(row.values())).get("unit")
        cells = [str(key[0]), str(key[1]), str(key[2]), unit] + [cell(row.get(b), scale=scale) for b in backends]
        o = ours_in(row)
        cells += [fmt_ratio(speed_ratio(o, row.get(b))) if row.get(b) else "" for b in ratio_cols]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _first_seen(records, what):
    for i, r in enumerate(records):
        if r.get("what") == what:
            return i
    return len(records)


# ---------------------------------------------------------------------------------------------
# headline (README)

# (label, what, size or None for the largest measured (square if any), threads, baseline)
HEADLINE = [
    ("sgemm, 1 thread", "sgemm", None, 1, "numpy"),
    ("sgemm, 1 thread", "sgemm", None, 1, "torch"),
    ("sgemm MLP layer, 1 thread", "sgemm", "256x784x256", 1, "numpy"),
    ("dgemm, 1 thread", "dgemm", None, 1, "numpy"),
    ("sgemm, 2 threads", "sgemm", None, 2, "numpy"),
    ("softmax fwd f32", "softmax fwd f32", None, 1, "numpy"),
    ("softmax fwd f32", "softmax fwd f32", None, 1, "torch"),
    ("log_softmax bwd f32", "log_softmax bwd f32", None, 1, "numpy"),
    ("log_softmax bwd f32", "log_softmax bwd f32", None, 1, "torch"),
    ("relu fwd f32", "relu fwd f32", None, 1, "numpy"),
    ("call overhead (8 floats)", "call overhead relu_forward", "8", 1, "numpy"),
    ("tiny MLP forward + backward", "tiny MLP fwd+bwd", None, 1, "torch"),
]


def headline_rows(results):
    """(label, size, ours cell, baseline name, baseline cell, ratio) for the README table: the
    picks of HEADLINE found in the run, then every models / word2vec comparison with PyTorch or
    gensim."""
    records = [r for r in results.get("records", []) if r.get("median") is not None or r.get("skipped")]
    idx = index(records)
    rows = []
    for label, what, size, threads, base in HEADLINE:
        cands = [k for k, row in idx.items() if k[0] == what and k[2] == threads and (size is None or k[1] == size)
                 and ours_in(row) and row.get(base, {}).get("median") is not None]
        if not cands:
            continue
        square = [k for k in cands if len(set(str(k[1]).split("x"))) == 1]
        key = max(square or cands, key=lambda k: _size_key(k[1]))  # the largest n x n x n when any
        row = idx[key]
        o, b = ours_in(row), row[base]
        rows.append((label, key[1], cell(o, False) + " " + display(o)[3], base,
                     cell(b, False) + " " + display(b)[3], speed_ratio(o, b)))
    for key, row in idx.items():
        suite = next(iter(row.values())).get("suite")
        if suite not in ("models", "word2vec") or "phase" in str(key[0]):  # phases: the report has them
            continue
        o = ours_in(row)
        for base in ("torch", "gensim"):
            b = row.get(base)
            if o and b and b.get("median") is not None:
                rows.append((key[0], key[1], cell(o, False) + " " + display(o)[3], base,
                             cell(b, False) + " " + display(b)[3], speed_ratio(o, b)))
    return rows


def headline_markdown(results):
    m = results.get("machine", {})
    lines = [f"Latest run: `{results.get('command')}` ({results.get('mode')}), {results.get('created', '')[:10]}, "
             f"{m.get('cpu_model')}, {m.get('cores')} cores, SIMD {m.get('tinygrad_rep', {}).get('simd')}, "
             f"numpy BLAS kernel {m.get('blas', {}).get('kernel')}. Ratio: how many times faster ours "
             f"(pybind11) is, medians measured side by side in one process; > 1 means ours is faster. "
             f"Shared machine: CPU steal {results.get('load', {}).get('steal_percent', '-')}%, other "
             f"processes {results.get('load', {}).get('others_cpu_percent', '-')}% of CPU time.", "",
             "| benchmark | size | ours | baseline | baseline's | ratio |", "|---|---|---|---|---|---|"]
    for label, size, o, base, b, r in headline_rows(results):
        lines.append(f"| {label} | {size} | {o} | {base} | {b} | {fmt_ratio(r)} |")
    return "\n".join(lines)


def update_readme(path, results):
    """Replace the text between the bench markers of README.md by the headline table."""
    with open(path) as f:
        text = f.read()
    if README_START not in text or README_END not in text:
        raise ValueError(f"{path} has no '{README_START}' ... '{README_END}' markers for the headline table")
    head, rest = text.split(README_START, 1)
    _, tail = rest.split(README_END, 1)
    body = ("\n<!-- written by `tinygrad-rep bench --update-readme`; do not edit by hand -->\n"
            + headline_markdown(results) + "\n")
    write_text_atomic(path, head + README_START + body + README_END + tail)


# ---------------------------------------------------------------------------------------------
# REPORT.md and plots

SECTION_NOTES = {
    "kernels": ("Our kernels (pybind11, cffi: the C kernels; numpy-ref: our numpy backend) beside numpy "
                "(OpenBLAS for matmul), numpy with preallocated out= buffers (numpy-out) and PyTorch CPU. "
                "matmul through `Tensor @ Tensor` under no_grad; softmax, log-softmax and ReLU forward through "
                "the Tensor methods, backward through the backend function the op calls. GFLOP/s = 2MNK / time; "
                "GB/s = bytes of the arrays read and written once / time. Ceilings (backend `measured`): `fma "
                "peak` (an FMA loop in C at the SIMD level our kernels use, compiled at run time; with 2 "
                "threads, one loop per thread) and `copy bandwidth` (np.copyto, with 2 threads ctypes.memmove "
                "of two halves; read + write). Call overhead in microseconds: `raw` is the extension function without "
                "argument checks, `alloc` allocates its output per call; the checked call takes the binding's C++ fast path "
                "(checks done on the buffers directly), which is why it can beat `raw`, whose generic "
                "pybind11 signature converts each argument. The plots draw each ceiling's best "
                "round. Arrays that fit in the caches (256x1000 is 1 MB) can go faster than the copy "
                "bandwidth, which is measured on arrays far larger than the caches. Allocation: the same "
                "call with a fresh output array per call (pool off), with a pooled output (the default, "
                "tinygrad_rep/backend/pool.py) and with a preallocated out= buffer; forward rows also show "
                "'pybind11 no pool'."),
    "ops": "Per-op cost on tiny tensors (microseconds per call), forward under no_grad and forward + backward.",
}


def write_report(results, out, plots=True):
    """Write REPORT.md (and PNG plots when matplotlib is installed) into `out`; returns the paths."""
    records = results.get("records", [])
    written = []
    images, plot_note = {}, None
    if plots:
        try:
            images = make_plots(results, out)
            for paths in images.values():
                written += paths
        except ImportError:
            plot_note = "matplotlib is not installed: no plots (pip install matplotlib)"
    lines = ["# Benchmark report", "",
             f"`{results.get('command')}`, mode {results.get('mode')}, started {results.get('created')}, "
             f"{results.get('seconds', 0):.0f} s. Main measurements with {results.get('threads')} thread(s) "
             f"for every library. Method: warm-up, then interleaved rounds (each implementation timed once "
             f"per round, in turn); cells are median (min-max) over the rounds. One-thread measurements "
             f"count the calling thread's CPU time (the time other processes held the core left out; the "
             f"wall time is in results.json), measurements with more threads the wall clock. Ratios: how "
             f"many times faster ours (pybind11) is than the baseline, > 1 = ours faster.", "",
             "## Machine", "", machine_table(results.get("machine", {})), "",
             "## Load while it ran", "",
             "These machines are shared: CPU steal is time the hypervisor gave our virtual CPUs to others; "
             "other processes' CPU is the share of all CPU time that processes outside this run used.", "",
             load_table(results), ""]
    if results.get("targets"):
        lines += ["## Targets", "", targets_table(results["targets"]), ""]
    if plot_note:
        lines += [f"_{plot_note}_", ""]
    for suite, status in results.get("suites", {}).items():
        lines += [f"## {suite}", ""]
        if status["status"] != "ok":
            why = status.get("reason") or (status.get("error", "").strip().splitlines() or ["?"])[-1]
            lines += [f"{status['status']}: {why}", ""]
            continue
        if suite in SECTION_NOTES:
            lines += [SECTION_NOTES[suite], ""]
        recs = [r for r in records if r.get("suite") == suite]
        skipped_baselines = sorted({f"{r['backend']} ({r['skipped']})" for r in recs if r.get("skipped")})
        if skipped_baselines:
            lines += ["Skipped baselines: " + "; ".join(skipped_baselines), ""]
        lines += [suite_tables(recs), ""]
        for path in images.get(suite, []):
            lines += [f"![{suite}]({os.path.basename(path)})", ""]
    report = os.path.join(out, "REPORT.md")
    write_text_atomic(report, "\n".join(lines))
    return [report] + written


BACKEND_ORDER = ("pybind11", "cffi", "numpy-ref", "numpy", "numpy-out", "torch", "gensim")


def _color(backend):
    """The same colour for a backend in every plot."""
    if backend in BACKEND_ORDER:
        return f"C{BACKEND_ORDER.index(backend)}"
    return f"C{7 + sum(map(ord, str(backend))) % 3}"


def _ordered(backends):
    """Backends in the canonical order (ours first), the others after, as found."""
    backends = list(dict.fromkeys(backends))
    known = [b for b in BACKEND_ORDER if b in backends]
    return known + [b for b in backends if b not in known]


def _plt():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _ceiling(records, what, threads):
    """A measured ceiling: the best round (a peak is what the machine can do when the other
    processes on it leave it alone; slow rounds measure them, not it)."""
    for r in records:
        if r.get("what") == what and r.get("threads") == threads and r.get("rate"):
            return r["rate"]["max"]
    return None


def make_plots(results, out):
    """PNG plots per suite: {suite: [paths]}. Raises ImportError without matplotlib."""
    plt = _plt()
    records = [r for r in results.get("records", []) if r.get("median") is not None]
    images = {}
    kern = [r for r in records if r.get("suite") == "kernels"]
    if kern:
        images["kernels"] = [p for p in (_plot_matmul(plt, kern, out), _plot_bandwidth(plt, kern, out)) if p]
    ops = [r for r in records if r.get("suite") == "ops"]
    if ops:
        images["ops"] = [_plot_ops(plt, ops, os.path.join(out, "ops.png"))]
    for suite in results.get("suites", {}):
        if suite in ("kernels", "ops"):
            continue
        recs = [r for r in records if r.get("suite") == suite]
        if recs:
            p = _plot_bars(plt, recs, suite, os.path.join(out, f"{suite}.png"))
            if p:
                images[suite] = [p]
    return images


def _plot_matmul(plt, recs, out):
    """GFLOP/s against n for sgemm and dgemm, with the roofline: min(FMA peak, copy BW x intensity)."""
    threads = sorted({r["threads"] for r in recs if r["what"] in ("sgemm", "dgemm")})
    panels = [(w, t) for w in ("sgemm", "dgemm") for t in threads
              if any(r["what"] == w and r["threads"] == t for r in recs)]
    if not panels:
        return None
    fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 4.5), squeeze=False)
    for ax, (what, t) in zip(axes[0], panels):
        rows = [r for r in recs if r["what"] == what and r["threads"] == t and r.get("rate")]
        square = [r for r in rows if len(set(r["size"].split("x"))) == 1]
        for be in _ordered(r["backend"] for r in square):
            pts = sorted((int(r["size"].split("x")[0]), r["rate"]) for r in square if r["backend"] == be)
            xs = [p[0] for p in pts]
            ax.errorbar(xs, [p[1]["median"] for p in pts],
                        yerr=[[p[1]["median"] - p[1]["min"] for p in pts], [p[1]["max"] - p[1]["median"] for p in pts]],
                        marker="o", capsize=3, label=be, color=_color(be))
        nsz = sorted({int(r["size"].split("x")[0]) for r in square})
        dt = "f32" if what == "sgemm" else "f64"
        peak = _ceiling(recs, f"fma peak {dt}", t)
        bw = _ceiling(recs, "copy bandwidth", t)
        if nsz and peak:
            ax.axhline(peak, color="k", ls="--", lw=1, label=f"FMA peak {dt}, best round ({peak:.0f})")
        if nsz and bw:
            width = 4 if what == "sgemm" else 8
            grid = [nsz[0] * (2 ** (i / 8)) for i in range(int(8 * (len(nsz) - 1)) + 1)] if len(nsz) > 1 else nsz
            # intensity of an n x n x n product moving A, B and C once: 2n^3 / (3 n^2 width) flop/byte
            roof = [min(peak or float("inf"), bw * 2 * n / (3 * width)) for n in grid]
            ax.plot(grid, roof, color="grey", lw=2, alpha=0.6, label=f"roofline (copy {bw:.0f} GB/s)")
        ax.set_xscale("log", base=2)
        ax.set_xlabel("n (n x n x n)")
        ax.set_ylabel("GFLOP/s")
        ax.set_title(f"{what}, {t} thread{'s' if t > 1 else ''}")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    path = os.path.join(out, "kernels_matmul.png")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _plot_bandwidth(plt, recs, out):
    """GB/s against size for the memory-bound kernels, with the copy bandwidth drawn in."""
    whats = [w for w in dict.fromkeys(r["what"] for r in recs if (r.get("rate") or {}).get("unit") == "GB/s")
             if w != "copy bandwidth"]
    if not whats:
        return None
    cols = 3
    rows_n = -(-len(whats) // cols)
    fig, axes = plt.subplots(rows_n, cols, figsize=(5 * cols, 3.8 * rows_n), squeeze=False)
    bw = _ceiling(recs, "copy bandwidth", 1)
    for ax, what in zip(axes.flat, whats):
        rows = [r for r in recs if r["what"] == what and r.get("rate") and r["threads"] == 1]
        sizes = sorted(dict.fromkeys(r["size"] for r in rows), key=_size_key)
        backends = _ordered(r["backend"] for r in rows)
        width = 0.8 / max(1, len(backends))
        for i, be in enumerate(backends):
            rates = [next((r["rate"] for r in rows if r["backend"] == be and r["size"] == s), None) for s in sizes]
            med = [r["median"] if r else 0 for r in rates]
            err = [[r["median"] - r["min"] if r else 0 for r in rates], [r["max"] - r["median"] if r else 0 for r in rates]]
            ax.bar([j + i * width for j in range(len(sizes))], med, width, yerr=err, capsize=2, label=be,
                   color=_color(be))
        if bw:
            ax.axhline(bw, color="k", ls="--", lw=1, label=f"copy bandwidth, best round ({bw:.1f})")
        ax.set_xticks([j + 0.4 - width / 2 for j in range(len(sizes))])
        ax.set_xticklabels(sizes)
        ax.set_ylabel("GB/s")
        ax.set_title(what)
        ax.grid(alpha=0.3, axis="y")
    for ax in list(axes.flat)[len(whats):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7)
    fig.tight_layout()
    path = os.path.join(out, "kernels_bandwidth.png")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _plot_ops(plt, recs, path):
    """Microseconds per call of each op, forward (no_grad) and forward + backward, one bar per
    backend, log scale."""
    panels = [("forward (no_grad)", [r for r in recs if not r["what"].endswith("fwd+bwd")]),
              ("forward + backward", [r for r in recs if r["what"].endswith("fwd+bwd")])]
    panels = [(title, rows) for title, rows in panels if rows]
    fig, axes = plt.subplots(1, len(panels), figsize=(7 * len(panels), 6), squeeze=False)
    for ax, (title, rows) in zip(axes[0], panels):
        whats = list(dict.fromkeys(r["what"] for r in rows))
        backends = _ordered(r["backend"] for r in rows)
        h = 0.8 / len(backends)
        for i, be in enumerate(backends):
            vals = [next((r["median"] for r in rows if r["what"] == w and r["backend"] == be), 0) for w in whats]
            ax.barh([j + i * h for j in range(len(whats))], vals, h, label=be, color=_color(be))
        ax.set_yticks([j + 0.4 - h / 2 for j in range(len(whats))])
        ax.set_yticklabels([w.replace(" fwd+bwd", "").replace(" fwd", "") for w in whats])
        ax.invert_yaxis()
        ax.set_xscale("log")
        ax.set_xlabel(f"{rows[0]['unit']} per call (log scale)")
        ax.set_title(title)
        ax.grid(alpha=0.3, axis="x")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _plot_bars(plt, recs, suite, path):
    """One panel per (what, size, threads): a bar per backend, median with min-max whiskers."""
    idx = index(recs)
    keys = list(idx)[:12]
    if not keys:
        return None
    cols = min(3, len(keys))
    rows_n = -(-len(keys) // cols)
    fig, axes = plt.subplots(rows_n, cols, figsize=(5 * cols, 3.2 * rows_n), squeeze=False)
    for ax, key in zip(axes.flat, keys):
        row = idx[key]
        names = _ordered(row)
        vals = [display(row[n]) for n in names]
        ax.bar(range(len(names)), [v[0] for v in vals],
               yerr=[[v[0] - (v[1] if v[1] is not None else v[0]) for v in vals],
                     [(v[2] if v[2] is not None else v[0]) - v[0] for v in vals]], capsize=3,
               color=[_color(n) for n in names])
        ax.set_xticks(range(len(names)))
        ax.set_xticklabels(names, rotation=30, ha="right", fontsize=8)
        ax.set_ylabel(vals[0][3])
        ax.set_title(f"{key[0]} {key[1]} t={key[2]}", fontsize=9)
        ax.grid(alpha=0.3, axis="y")
    for ax in list(axes.flat)[len(keys):]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


# ---------------------------------------------------------------------------------------------
# compare two runs

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


def main(argv=None):
    """Rewrite REPORT.md and the plots from a results.json (and the README table, if asked)."""
    import argparse
    p = argparse.ArgumentParser(description="rewrite REPORT.md and plots from a results.json")
    p.add_argument("results", help="a results.json written by benchmarks/run.py")
    p.add_argument("--out", help="folder for REPORT.md and plots (default: the results file's folder)")
    p.add_argument("--update-readme", metavar="README", help="also write the headline table into this README")
    args = p.parse_args(argv)
    results = load_results(args.results)
    out = args.out or os.path.dirname(os.path.abspath(args.results))
    os.makedirs(out, exist_ok=True)
    print("wrote " + ", ".join(write_report(results, out)))
    if args.update_readme:
        update_readme(args.update_readme, results)
        print(f"updated {args.update_readme}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
