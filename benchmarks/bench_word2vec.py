#!/usr/bin/env python3
"""Benchmark word2vec: ours against gensim on one corpus with the same settings, and the full
softmax against negative sampling (time per epoch as the vocabulary grows).

    python benchmarks/bench_word2vec.py                      # prose corpus, 5 epochs, one thread
    python benchmarks/bench_word2vec.py --corpus sotu --seeds 1 2 3
    python benchmarks/bench_word2vec.py --corpus my_book.txt --no-softmax

Both sides train skip-gram with negative sampling: dim 100, window 5, negative 5, min_count 5,
sample 1e-3, 5 epochs, lr 0.025 -> 0.0001, one thread each (our kernels set to 1 thread; gensim
workers=1), on the same token lists (tokenized once, with tinygrad_rep.data.tokenize; that time
is reported apart). A run's time is vocabulary building + training. Both models are scored by
the same evaluation code (3CosAdd analogies over the covered questions, Spearman on
WordSim-353 and SimLex-999). Runs alternate, ours first, so load on the machine hits both.
gensim is optional: without it the comparison is skipped with a message.

Writes bench_word2vec.json and bench_word2vec.md into --out and prints the tables.
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import tinygrad_rep as tr  # noqa: E402
from tinygrad_rep.data import text  # noqa: E402
from tinygrad_rep.models import word2vec as w2v  # noqa: E402
from results import write_results, write_text_atomic  # noqa: E402

SETTINGS = dict(dim=100, window=5, negative=5, min_count=5, sample=1e-3, epochs=5, lr=0.025, min_lr=0.0001)


def _scores(wv):
    ev = wv.evaluate()
    an = ev["analogy"]
    return {"analogy": an["accuracy"], "semantic": an["semantic"]["accuracy"],
            "syntactic": an["syntactic"]["accuracy"], "analogy_covered": an["covered"],
            "analogy_total": an["total"], "wordsim353": ev["wordsim353"]["spearman"],
            "wordsim353_covered": ev["wordsim353"]["covered"], "simlex999": ev["simlex999"]["spearman"],
            "simlex999_covered": ev["simlex999"]["covered"]}


def run_ours(sentences, seed, batch_size, epochs):
    cfg = w2v.Word2VecConfig(seed=seed, batch_size=batch_size, **{**SETTINGS, "epochs": epochs})
    t0 = time.perf_counter()
    vocab, enc = w2v.build_vocab(sentences, cfg.min_count)
    t1 = time.perf_counter()
    model = w2v.train((vocab, enc), cfg)
    seconds = time.perf_counter() - t0
    s = model.stats
    return {"name": "tinygrad_rep", "seed": seed, "seconds": seconds, "vocab_seconds": t1 - t0,
            "train_seconds": s["train_seconds"], "vocab_size": len(vocab),
            "words_per_second": enc.raw_words * epochs / seconds,
            "train_words_per_second": enc.raw_words * epochs / s["train_seconds"],
            "effective_words": s["trained_words"], **_scores(model.wv)}


def run_gensim(sentences, seed, epochs):
    from gensim.models import Word2Vec
    t0 = time.perf_counter()
    m = Word2Vec(vector_size=SETTINGS["dim"], window=SETTINGS["window"], negative=SETTINGS["negative"],
                 min_count=SETTINGS["min_count"], sample=SETTINGS["sample"], alpha=SETTINGS["lr"],
                 min_alpha=SETTINGS["min_lr"], sg=1, hs=0, workers=1, seed=seed)
    m.build_vocab(sentences)
    t1 = time.perf_counter()
    effective, raw = m.train(sentences, total_examples=m.corpus_count, epochs=epochs)
    seconds = time.perf_counter() - t0
    wv = w2v.WordVectors(m.wv.index_to_key, m.wv.vectors)
    return {"name": "gensim", "seed": seed, "seconds": seconds, "vocab_seconds": t1 - t0,
            "train_seconds": seconds - (t1 - t0), "vocab_size": len(wv),
            "words_per_second": raw / seconds, "train_words_per_second": raw / (seconds - (t1 - t0)),
            "effective_words": effective, **_scores(wv)}


def softmax_table(sentences, vocab_sizes, words, batch_size):
    """Seconds per epoch of the full softmax and of negative sampling as the vocabulary grows
    (the corpus is cut to `words` tokens; only the V most frequent words are kept)."""
    sub, n = [], 0
    for s in sentences:
        if n >= words:
            break
        sub.append(s[:words - n])
        n += len(sub[-1])
    rows = []
    for V in vocab_sizes:
        row = {"vocab_size": V}
        for objective in ("softmax", "negative"):
            cfg = w2v.Word2VecConfig(**{**SETTINGS, "epochs": 1, "min_count": 1}, max_vocab=V,
                                     objective=objective, batch_size=batch_size, seed=1)
            vocab, enc = w2v.build_vocab(sub, 1, V)
            row["vocab_size"] = len(vocab)
            model = w2v.train((vocab, enc), cfg)
            row[objective + "_seconds"] = model.stats["train_seconds"]
            row["pairs"] = model.stats["pairs"]
        row["ratio"] = row["softmax_seconds"] / row["negative_seconds"]
        rows.append(row)
        print(f"  V={row['vocab_size']:>6}: softmax {row['softmax_seconds']:7.2f} s/epoch, "
              f"negative sampling {row['negative_seconds']:6.2f} s/epoch ({row['ratio']:.1f}x)", flush=True)
    return rows


def _f(x, spec):
    return "n/a" if x is None else format(x, spec)


def comparison_markdown(runs, corpus, tok_seconds, raw_words):
    lines = [f"word2vec skip-gram, negative sampling, on `{corpus}` ({raw_words:,} words; tokenizing "
             f"took {tok_seconds:.1f} s, shared, not counted): dim 100, window 5, negative 5, "
             "min_count 5, sample 1e-3, 5 epochs, one thread each; time = vocabulary + training.", "",
             "| run | seed | seconds | words/s | vocab | analogy | semantic | syntactic | covered | "
             "WordSim-353 | SimLex-999 |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in runs:
        lines.append(f"| {r['name']} | {r['seed']} | {r['seconds']:.1f} | {r['words_per_second'] / 1e3:.0f}k | "
                     f"{r['vocab_size']:,} | {_f(r['analogy'], '.4f')} | {_f(r['semantic'], '.4f')} | "
                     f"{_f(r['syntactic'], '.4f')} | {r['analogy_covered']}/{r['analogy_total']} | "
                     f"{_f(r['wordsim353'], '.4f')} | {_f(r['simlex999'], '.4f')} |")
    return lines


def summarize(runs):
    """Mean of each side and the differences that the targets are stated in."""
    out = {}
    for name in ("tinygrad_rep", "gensim"):
        rs = [r for r in runs if r["name"] == name]
        if rs:
            out[name] = {k: statistics.fmean(r[k] for r in rs if r[k] is not None)
                         for k in ("seconds", "words_per_second", "analogy", "semantic", "syntactic",
                                   "wordsim353", "simlex999")}
    if len(out) == 2:
        a, b = out["tinygrad_rep"], out["gensim"]
        out["speed_ratio"] = b["seconds"] / a["seconds"]      # > 1: ours is faster
        out["analogy_points_behind"] = 100 * (b["analogy"] - a["analogy"])
        out["wordsim353_behind"] = b["wordsim353"] - a["wordsim353"]
        out["simlex999_behind"] = b["simlex999"] - a["simlex999"]
        out["targets_met"] = {"analogy within 2 points": out["analogy_points_behind"] <= 2,
                              "WordSim-353 within 0.03": out["wordsim353_behind"] <= 0.03,
                              "time no more than gensim's": a["seconds"] <= b["seconds"]}
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--corpus", default="prose", help="sotu, prose, or a text file (default prose)")
    p.add_argument("--max-words", type=int, default=None, help="cut the corpus to this many tokens")
    p.add_argument("--epochs", type=int, default=SETTINGS["epochs"])
    p.add_argument("--seeds", type=int, nargs="+", default=[1], help="one run per seed and side")
    p.add_argument("--batch-size", type=int, default=w2v.Word2VecConfig().batch_size)
    p.add_argument("--threads", type=int, default=1, help="our kernel threads (gensim: workers=1)")
    p.add_argument("--no-gensim", action="store_true", help="skip gensim even if it is installed")
    p.add_argument("--no-softmax", action="store_true", help="skip the softmax-vs-negative table")
    p.add_argument("--softmax-only", action="store_true", help="only the softmax-vs-negative table")
    p.add_argument("--softmax-words", type=int, default=100_000, help="corpus tokens for that table")
    p.add_argument("--softmax-vocab", type=int, nargs="+", default=[250, 500, 1000, 2000, 4000, 8000])
    p.add_argument("--out", default="runs/bench", help="folder for bench_word2vec.json / .md")
    args = p.parse_args(argv)

    w2v.set_threads(args.threads)
    info = tr.backend_info()
    print(f"backend {info['backend']}, SIMD {info.get('simd')}, threads {info.get('threads')}; "
          f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores", flush=True)
    t0 = time.perf_counter()
    sentences = list(text.load_corpus(args.corpus, max_words=args.max_words))
    tok_seconds = time.perf_counter() - t0
    raw_words = sum(map(len, sentences))
    print(f"corpus {args.corpus}: {raw_words:,} words in {len(sentences):,} lines, tokenized in "
          f"{tok_seconds:.1f} s", flush=True)

    gensim_ok = not (args.no_gensim or args.softmax_only)
    why = "--softmax-only given" if args.softmax_only else "--no-gensim given"
    if gensim_ok:
        try:
            from gensim.models.word2vec_inner import FAST_VERSION
            if FAST_VERSION < 0:
                print("note: gensim runs without its compiled routines (FAST_VERSION < 0)")
        except ImportError:
            gensim_ok, why = False, "gensim is not installed (pip install gensim: an optional baseline)"
    if not gensim_ok and not args.softmax_only:
        print(f"gensim comparison skipped: {why}", flush=True)

    runs = []
    for seed in ([] if args.softmax_only else args.seeds):
        r = run_ours(sentences, seed, args.batch_size, args.epochs)
        runs.append(r)
        print(f"  ours   seed {seed}: {r['seconds']:.1f} s, {r['words_per_second'] / 1e3:.0f}k words/s, "
              f"analogy {_f(r['analogy'], '.4f')}, ws353 {_f(r['wordsim353'], '.4f')}, "
              f"simlex {_f(r['simlex999'], '.4f')}", flush=True)
        if gensim_ok:
            r = run_gensim(sentences, seed, args.epochs)
            runs.append(r)
            print(f"  gensim seed {seed}: {r['seconds']:.1f} s, {r['words_per_second'] / 1e3:.0f}k words/s, "
                  f"analogy {_f(r['analogy'], '.4f')}, ws353 {_f(r['wordsim353'], '.4f')}, "
                  f"simlex {_f(r['simlex999'], '.4f')}", flush=True)
    summary = summarize(runs)
    lines = comparison_markdown(runs, args.corpus, tok_seconds, raw_words) if runs else []
    if "speed_ratio" in summary:
        lines += ["", f"gensim time / our time: {summary['speed_ratio']:.2f}; analogy: ours "
                  f"{summary['analogy_points_behind']:+.2f} points behind gensim; WordSim-353: "
                  f"{summary['wordsim353_behind']:+.4f} behind; SimLex-999: {summary['simlex999_behind']:+.4f} behind."]
        lines += [f"- {k}: {'yes' if v else 'NO'}" for k, v in summary["targets_met"].items()]
    elif runs and not gensim_ok:
        lines += ["", f"gensim comparison skipped: {why}"]

    table = None
    if not args.no_softmax:
        print(f"full softmax vs negative sampling, first {args.softmax_words:,} words, 1 epoch:", flush=True)
        table = softmax_table(sentences, args.softmax_vocab, args.softmax_words, args.batch_size)
        lines += ["", f"Full softmax vs negative sampling (first {args.softmax_words:,} words of "
                  f"`{args.corpus}`, one epoch, the V most frequent words kept):", "",
                  "| vocabulary | pairs | full softmax s/epoch | negative sampling s/epoch | ratio |",
                  "|---|---|---|---|---|"]
        lines += [f"| {r['vocab_size']:,} | {r['pairs']:,} | {r['softmax_seconds']:.2f} | "
                  f"{r['negative_seconds']:.2f} | {r['ratio']:.1f}x |" for r in table]

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    result = {"corpus": args.corpus, "raw_words": raw_words, "tokenize_seconds": tok_seconds,
              "settings": SETTINGS, "batch_size": args.batch_size, "backend": info,
              "gensim": gensim_ok or why, "runs": runs, "summary": summary, "softmax_vs_negative": table}
    write_results(out / "bench_word2vec.json", result)
    write_text_atomic(out / "bench_word2vec.md", "\n".join(lines) + "\n")
    print("\n" + "\n".join(lines))
    print(f"\nwrote {out / 'bench_word2vec.json'} and {out / 'bench_word2vec.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
