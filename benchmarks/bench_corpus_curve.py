#!/usr/bin/env python3
"""How word2vec's analogy accuracy grows with corpus size: ours and gensim side by side, trained
on the first N words of one corpus for several N, with the same settings.

    python benchmarks/bench_corpus_curve.py                          # prose, 6 sizes, 5 epochs
    python benchmarks/bench_corpus_curve.py --sizes 250000 1000000 0 --epochs 3
    python benchmarks/bench_corpus_curve.py --no-gensim
    python benchmarks/bench_corpus_curve.py --replot runs/bench/corpus_curve.json   # plot only

The corpus is read and tokenized once (tinygrad_rep.data.tokenize); each size N takes its first N
tokens (the last line cut), so a larger run sees everything a smaller one saw and more. Both sides
train skip-gram with negative sampling with bench_word2vec's settings (dim 100, window 5, negative 5,
min_count 5, sample 1e-3, lr 0.025 -> 0.0001, 5 epochs), one thread each; ours is the default fused
trainer. The default curve (6 sizes, 8M words per side in all) takes about 5-10 minutes on two shared cores.
Both are scored by the same code: Google analogies by 3CosAdd over the questions whose four words
are in the vocabulary (the coverage is reported: a question with an unknown word is not counted,
neither right nor wrong), and Spearman's correlation on WordSim-353.

At the largest size it also lists, per analogy section, a few questions each side gets right and
wrong (with the word it answered). Writes corpus_curve.json and corpus_curve.png (accuracy and
coverage against corpus size, both libraries) into --out, atomically, and prints a table.
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import tinygrad_rep as tr  # noqa: E402
from tinygrad_rep.data import text  # noqa: E402
from tinygrad_rep.models import word2vec as w2v  # noqa: E402
from tinygrad_rep.output import atomic_path, format_table  # noqa: E402
import bench_word2vec  # noqa: E402
from bench_word2vec import SETTINGS, run_gensim, run_ours  # noqa: E402
from results import write_results  # noqa: E402

DEFAULT_SIZES = [125_000, 250_000, 500_000, 1_000_000, 2_000_000, 0]   # 0: the whole corpus
FAMOUS = [("man", "king", "woman", "queen"), ("france", "paris", "italy", "rome"),
          ("man", "he", "woman", "she"), ("good", "better", "bad", "worse"),
          ("england", "london", "japan", "tokyo"), ("walk", "walked", "go", "went")]


def _keep_vectors(runner):
    """Run one of bench_word2vec's runners and return (its result, the WordVectors it scored):
    its scoring function is wrapped for the call so the vectors can be looked at afterwards."""
    seen, scores = [], bench_word2vec._scores
    bench_word2vec._scores = lambda wv: (seen.append(wv), scores(wv))[1]
    try:
        return runner(), seen[-1]
    finally:
        bench_word2vec._scores = scores


def first_words(sentences, n):
    """The first n tokens of a list of token lists (the last list cut); n = 0 or None: all."""
    if not n:
        return sentences
    out, have = [], 0
    for s in sentences:
        if have >= n:
            break
        out.append(s[:n - have])
        have += len(out[-1])
    return out


def analogy_answers(wv, questions, batch=512):
    """For each question whose four words are known: (section, a, b, c, expected, answered), with
    the same 3CosAdd search as the evaluation (nearest unit vector to b - a + c, a b c excluded)."""
    from tinygrad_rep.models.word2vec.evaluation import analogy_nearest
    known = [q for q in questions if all(w in wv.index for w in q[1:])]
    if not known:
        return []
    abc = np.array([[wv.index[w] for w in q[1:4]] for q in known], dtype=np.int64)
    return [(*q, wv.words[j]) for q, j in zip(known, analogy_nearest(wv, abc, batch))]


def examples(answers, per_section=2):
    """Per section: a few questions answered right and a few answered wrong (first in file order)."""
    out = {}
    for sec, a, b, c, d, got in answers:
        e = out.setdefault(sec, {"right": [], "wrong": []})
        kind = "right" if got == d else "wrong"
        if len(e[kind]) < per_section:
            e[kind].append(f"{a}:{b} :: {c}:{d}" + ("" if got == d else f" (answered {got})"))
    return out


def famous(wv):
    """The classic analogies: the answer, or why there is none (a word not in the vocabulary)."""
    out = {}
    for a, b, c, d in FAMOUS:
        key = f"{a}:{b} :: {c}:{d}"
        missing = [w for w in (a, b, c, d) if w not in wv.index]
        out[key] = (f"not in vocabulary: {', '.join(missing)}" if missing
                    else wv.analogy(b, a, c, k=1)[0][0])
    return out


def _pct(x, digits=1):
    """A share as a percentage; n/a when no question was covered (there is nothing to score)."""
    return "n/a" if x is None else f"{100 * x:.{digits}f}"


def plot(rows, path, corpus, epochs):
    """Analogy accuracy (left) and analogy coverage (right) against corpus size, both libraries."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.6))
    for name, style in (("tinygrad_rep", "o-"), ("gensim", "s--")):
        rs = [r for r in rows if r["name"] == name]
        if not rs:
            continue
        x = [r["words"] for r in rs]
        ax1.plot(x, [np.nan if r["analogy"] is None else 100 * r["analogy"] for r in rs], style, label=name)
        ax2.plot(x, [100 * r["analogy_covered"] / r["analogy_total"] for r in rs], style, label=name)
    sizes = sorted({r["words"] for r in rows})
    for ax, ylabel, title in ((ax1, "analogy accuracy (% of covered questions)", "Accuracy"),
                              (ax2, "questions with all 4 words known (%)", "Coverage")):
        ax.set_xscale("log")
        ax.set_xticks(sizes, [f"{n / 1e6:.1f}M" if n >= 1e6 else f"{n // 1000}k" for n in sizes])
        ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
        ax.set_xlabel(f"corpus size (first N words of {corpus})")
        ax.set_ylabel(ylabel, fontsize=8)
        ax.set_title(title)
        ax.grid(True, alpha=0.3)
        ax.legend()
    fig.suptitle(f"Google analogies vs corpus size: skip-gram, negative sampling, {epochs} epochs")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=80)
    plt.close(fig)
    return path


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--corpus", default="prose", help="prose (the largest `make data` makes), sotu, or a text file")
    p.add_argument("--sizes", type=int, nargs="+", default=DEFAULT_SIZES,
                   help="corpus sizes in words; 0 = the whole corpus (default 125k 250k 500k 1M 2M all)")
    p.add_argument("--epochs", type=int, default=SETTINGS["epochs"], help="epochs at every size (default 5)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--no-gensim", action="store_true", help="skip gensim even if it is installed")
    p.add_argument("--out", default="runs/bench", help="folder for corpus_curve.json / .png")
    p.add_argument("--replot", metavar="JSON", help="only redraw corpus_curve.png in --out from a "
                   "corpus_curve.json written earlier (no training)")
    args = p.parse_args(argv)
    if args.replot:
        import json
        with open(args.replot) as f:
            old = json.load(f)
        Path(args.out).mkdir(parents=True, exist_ok=True)
        print("wrote", plot(old["runs"], Path(args.out) / "corpus_curve.png", old["corpus"],
                            old["settings"]["epochs"]))
        return 0

    w2v.set_threads(1)
    info = tr.backend_info()
    print(f"backend {info['backend']}, SIMD {info.get('simd')}; {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} cores; one thread each", flush=True)
    t0 = time.perf_counter()
    sentences = list(text.load_corpus(args.corpus))
    total = sum(map(len, sentences))
    print(f"corpus {args.corpus}: {total:,} words, tokenized in {time.perf_counter() - t0:.1f} s", flush=True)
    gensim_ok = not args.no_gensim
    if gensim_ok:
        try:
            import gensim  # noqa: F401
        except ImportError:
            gensim_ok = False
            print("gensim comparison skipped: gensim is not installed (pip install gensim)", flush=True)
    questions = text.load_analogies()

    sizes = sorted({min(n, total) if n else total for n in args.sizes})
    rows, detail = [], {}
    for n in sizes:
        sub = first_words(sentences, n)
        words = sum(map(len, sub))
        runners = [("tinygrad_rep", lambda: run_ours(sub, args.seed, w2v.Word2VecConfig().batch_size, args.epochs))]
        if gensim_ok:
            runners.append(("gensim", lambda: run_gensim(sub, args.seed, args.epochs)))
        for name, run in runners:
            r, wv = _keep_vectors(run)
            r["words"] = words
            rows.append(r)
            print(f"  {words:>9,} words  {name:<12} vocab {r['vocab_size']:>6,}  analogy "
                  f"{_pct(r['analogy'], 2):>5}% of {r['analogy_covered']:>5}/{r['analogy_total']}  "
                  f"WordSim-353 {r['wordsim353'] if r['wordsim353'] is None else round(r['wordsim353'], 3)}  "
                  f"({r['seconds']:.0f} s)", flush=True)
            if n == sizes[-1]:
                detail[name] = {"examples": examples(analogy_answers(wv, questions)), "famous": famous(wv)}

    header = ["words", "library", "vocabulary", "analogy covered", "analogy %", "semantic %",
              "syntactic %", "WordSim-353", "seconds"]
    table = [[f"{r['words']:,}", r["name"], f"{r['vocab_size']:,}",
              f"{r['analogy_covered']:,} / {r['analogy_total']:,}",
              _pct(r["analogy"]), _pct(r["semantic"]), _pct(r["syntactic"]),
              "n/a" if r["wordsim353"] is None else f"{r['wordsim353']:.3f}", f"{r['seconds']:.0f}"]
             for r in rows]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    result = {"corpus": args.corpus, "corpus_words": total, "settings": {**SETTINGS, "epochs": args.epochs},
              "seed": args.seed, "backend": info, "gensim": gensim_ok, "runs": rows, "largest": detail}
    write_results(out / "corpus_curve.json", result)
    png = plot(rows, out / "corpus_curve.png", args.corpus, args.epochs)
    print("\n" + format_table(header, table))
    for name, d in detail.items():
        print(f"\n{name} at {sizes[-1]:,} words:")
        for k, v in d["famous"].items():
            print(f"  {k:<32} -> {v}")
        for sec, e in d["examples"].items():
            print(f"  {sec}: right {e['right']}; wrong {e['wrong']}")
    print(f"\nwrote {out / 'corpus_curve.json'} and {png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
