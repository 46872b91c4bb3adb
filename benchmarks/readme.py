"""The README's headline table: picked rows of a run, written between the README's bench markers.

`tinygrad-rep bench --update-readme` (what `make bench` runs) writes this table and, beside it,
the run's results.json as the committed baseline (results.BASELINE), so the published table and
the file `tinygrad-rep bench compare` measures against come from one run. To rewrite the table
from the committed baseline alone:

    python benchmarks/readme.py [RESULTS.json] [README.md]
"""
from results import BASELINE, load_results, write_text_atomic
from values import cell, display, fmt_ratio, index, ours_in, size_key, speed_ratio

README_START, README_END = "<!-- bench:start -->", "<!-- bench:end -->"

# (label, what, size or None for the largest measured (square if any), threads, baseline)
HEADLINE = [
    ("sgemm, 1 thread", "sgemm", None, 1, "numpy"),
    ("sgemm, 1 thread", "sgemm", None, 1, "torch"),
    ("sgemm small, 1 thread", "sgemm", "64x64x64", 1, "numpy"),
    ("sgemm small, 1 thread", "sgemm", "64x64x64", 1, "torch"),
    ("sgemm small, 1 thread", "sgemm", "128x128x128", 1, "torch"),
    ("sgemm MLP layer, 1 thread", "sgemm", "256x784x256", 1, "numpy"),
    ("dgemm, 1 thread", "dgemm", None, 1, "numpy"),
    ("dgemm, 1 thread", "dgemm", None, 1, "torch"),
    ("sgemm, 2 threads", "sgemm", None, 2, "numpy"),
    ("softmax fwd f32", "softmax fwd f32", None, 1, "numpy"),
    ("softmax fwd f32", "softmax fwd f32", None, 1, "torch"),
    ("log_softmax bwd f32", "log_softmax bwd f32", None, 1, "numpy"),
    ("log_softmax bwd f32", "log_softmax bwd f32", None, 1, "torch"),
    ("relu fwd f32", "relu fwd f32", None, 1, "numpy"),
    ("call overhead (8 floats)", "call overhead relu_forward", "8", 1, "numpy"),
    ("Tensor matmul forward, no_grad", "matmul fwd", "8x8", 1, "torch"),
    ("F.cross_entropy forward, no_grad", "cross_entropy fwd", "8x8", 1, "torch"),
    ("tiny MLP forward, no_grad", "tiny MLP fwd", None, 1, "torch"),
    ("tiny MLP forward + backward", "tiny MLP fwd+bwd", None, 1, "torch"),
]
QUALITY = (("analogy", "analogy"), ("wordsim353", "WordSim-353"))  # record keys shown in the quality column


def quality(rec):
    """The quality a record carries (word2vec: analogy accuracy, WordSim-353 Spearman), or ''."""
    parts = [f"{name} {rec[key]:.3f}" for key, name in QUALITY if isinstance(rec.get(key), (int, float))]
    return ", ".join(parts)


def headline_rows(results):
    """(label, size, ours cell, baseline name, baseline cell, ratio, quality) for the README table:
    the picks of HEADLINE found in the run, then every models / word2vec comparison with PyTorch
    or gensim. quality: ours and the baseline's, where the records measure it (word2vec)."""
    records = [r for r in results.get("records", []) if r.get("median") is not None or r.get("skipped")]
    idx = index(records)
    rows = []
    for label, what, size, threads, base in HEADLINE:
        cands = [k for k, row in idx.items() if k[0] == what and k[2] == threads and (size is None or k[1] == size)
                 and ours_in(row) and row.get(base, {}).get("median") is not None]
        if not cands:
            continue
        square = [k for k in cands if len(set(str(k[1]).split("x"))) == 1]
        key = max(square or cands, key=lambda k: size_key(k[1]))  # the largest n x n x n when any
        row = idx[key]
        o, b = ours_in(row), row[base]
        rows.append((label, key[1], cell(o, False) + " " + display(o)[3], base,
                     cell(b, False) + " " + display(b)[3], speed_ratio(o, b), ""))
    for key, row in idx.items():
        suite = next(iter(row.values())).get("suite")
        if suite not in ("models", "word2vec") or "phase" in str(key[0]):  # phases: the report has them
            continue
        o = ours_in(row)
        for base in ("torch", "gensim"):
            b = row.get(base)
            if o and b and b.get("median") is not None:
                q = (f"ours: {quality(o)}; {base}: {quality(b)}" if quality(o) or quality(b) else "")
                rows.append((key[0], key[1], cell(o, False) + " " + display(o)[3], base,
                             cell(b, False) + " " + display(b)[3], speed_ratio(o, b), q))
    return rows


def headline_markdown(results):
    m = results.get("machine", {})
    lines = [f"Latest run: `{results.get('command')}` ({results.get('mode')}), {results.get('created', '')[:10]}, "
             f"{m.get('cpu_model')}, {m.get('cores')} cores, SIMD {m.get('tinygrad_rep', {}).get('simd')}, "
             f"numpy BLAS kernel {m.get('blas', {}).get('kernel')}. Ratio: how many times faster ours "
             f"(pybind11) is, medians measured side by side in one process; > 1 means ours is faster. "
             f"Shared machine: CPU steal {results.get('load', {}).get('steal_percent', '-')}%, other "
             f"processes {results.get('load', {}).get('others_cpu_percent', '-')}% of CPU time.", "",
             "| benchmark | size | ours | baseline | baseline's | ratio | quality |", "|---|---|---|---|---|---|---|"]
    for label, size, o, base, b, r, q in headline_rows(results):
        lines.append(f"| {label} | {size} | {o} | {base} | {b} | {fmt_ratio(r)} | {q} |")
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


def main(argv=None):
    """Write the headline table of a results.json (default: the baseline) into a README."""
    import argparse
    import os
    p = argparse.ArgumentParser(description="write the README's headline table from a results.json")
    p.add_argument("results", nargs="?", default=BASELINE, help="default: the committed baseline")
    p.add_argument("readme", nargs="?", help="default: the README.md of the repository this folder is in",
                   default=os.path.join(os.path.dirname(os.path.dirname(BASELINE)), "README.md"))
    args = p.parse_args(argv)
    update_readme(args.readme, load_results(args.results))
    print(f"wrote the headline table of {args.results} into {os.path.normpath(args.readme)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
