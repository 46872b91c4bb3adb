"""REPORT.md: the report of one run, with its machine, the load while it ran, the targets, a table
per suite and the plots (plots.py).

    python benchmarks/report.py RESULTS.json [--out DIR] [--update-readme README.md]

rewrites REPORT.md and the plots from a results.json (and the README's headline table, if asked).
Ratios are speed ratios, > 1 = ours faster (see values.py).
"""
import os

from plots import make_plots
from results import load_results, write_text_atomic
from targets import targets_table
from values import BASELINES, OUR_NAMES, cell, display, fmt_ratio, index, ours_in, size_key, speed_ratio, time_scale


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
    keys = sorted(idx, key=lambda k: (_first_seen(records, k[0]), k[2] or 0, size_key(k[1])))
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


SECTION_NOTES = {
    "kernels": ("Our kernels (pybind11, cffi: the C kernels; numpy-ref: our numpy backend) beside numpy "
                "(OpenBLAS for matmul), numpy with preallocated out= buffers (numpy-out) and PyTorch CPU. "
                "matmul through `Tensor @ Tensor` under no_grad; softmax, log-softmax and ReLU forward through "
                "the Tensor methods, backward through the backend function the op calls. GFLOP/s = 2MNK / time; "
                "GB/s = bytes of the arrays read and written once / time. Ceilings (backend `measured`): `fma "
                "peak` (an FMA loop in C at the SIMD level our kernels use, compiled at run time; with 2 "
                "threads, one loop per thread) and `copy bandwidth` (np.copyto, with 2 threads ctypes.memmove "
                "of two halves; read + write; backend `streaming stores`: the same copy with the streaming stores "
                "our kernels use for outputs larger than the caches, copy_peak.c). Memory-bound rows: `pybind11 out=` "
                "is our backend function with a preallocated output, like numpy-out; `copy` moves the same bytes "
                "in the same rounds with the stores our kernels would use, so `pybind11 out=` over `copy` is the "
                "fraction of the copy bandwidth reached. Call overhead in microseconds: `raw` is the extension function without "
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
             f"per round, in turn, the order rotating from round to round); cells are median (min-max) "
             f"over the rounds. One-thread measurements "
             f"count the calling thread's CPU time (the time other processes held the core left out; the "
             f"wall time is in results.json), measurements with more threads the wall clock, each of their "
             f"rounds started once the process's other threads are idle (OpenBLAS's spin ~0.1 s after a "
             f"call). Ratios: how "
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
    # the same report as one page to look at (tables and plots), beside REPORT.md
    from tinygrad_rep.report_html import from_markdown
    page = from_markdown("\n".join(lines), "Benchmark report", out).write(os.path.join(out, "report.html"))
    return [report, page] + written


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
        from readme import update_readme
        update_readme(args.update_readme, results)
        print(f"updated {args.update_readme}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
