"""PNG plots of a run (matplotlib): matmul GFLOP/s with the roofline, memory-bound kernels' GB/s
against the copy bandwidth, per-op microseconds, and a bar chart per comparison of the other suites."""
import os

from values import display, index, size_key

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
        sizes = sorted(dict.fromkeys(r["size"] for r in rows), key=size_key)
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
