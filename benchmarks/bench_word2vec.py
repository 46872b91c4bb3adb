#!/usr/bin/env python3
"""Benchmark word2vec: ours against gensim on one corpus with the same settings, on 1 and 2
threads, and the full softmax against negative sampling (time per epoch as the vocabulary grows).

    python benchmarks/bench_word2vec.py                      # prose corpus, 5 epochs, one thread
    python benchmarks/bench_word2vec.py --corpus sotu --seeds 1 2 3 --threads 1 2 --epochs 3
    python benchmarks/bench_word2vec.py --corpus my_book.txt --no-softmax

Both sides train skip-gram with negative sampling: dim 100, window 5, negative 5, min_count 5,
sample 1e-3, 5 epochs, lr 0.025 -> 0.0001, with the same number of threads (ours: `threads` of
w2v.train, gensim: workers), on the same token lists in memory (tokenized once, with
tinygrad_rep.data.tokenize; that time is reported apart). A run's time is vocabulary building +
training; the training time alone is reported too (words/s of training is what the targets
compare). Both models are scored by the same evaluation code (3CosAdd analogies over the
covered questions, Spearman on WordSim-353 and SimLex-999). Runs alternate, ours first, one
thread count after the other within each seed's round, so load on the machine hits every side.
gensim is optional: without it the comparison is skipped with a message.

As a `tinygrad-rep bench` suite (run()): words/s records of ours and gensim at 1 thread and,
on a machine with 2 cores or more, at 2 threads, with quality beside them, and TARGETS: ours
at 2 threads at least 1.8x ours at 1 thread and at least gensim with workers=2. Beside the
scaling, what 2 threads gain at that moment on an embarrassingly parallel kernel (the
negative sampler): on a shared machine that ceiling is often well under 2x.

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


def run_ours(sentences, seed, batch_size, epochs, threads=1):
    cfg = w2v.Word2VecConfig(seed=seed, batch_size=batch_size, **{**SETTINGS, "epochs": epochs})
    t0 = time.perf_counter()
    vocab, enc = w2v.build_vocab(sentences, cfg.min_count)
    t1 = time.perf_counter()
    model = w2v.train((vocab, enc), cfg, threads=threads)
    seconds = time.perf_counter() - t0
    s = model.stats
    return {"name": "tinygrad_rep", "seed": seed, "threads": threads, "seconds": seconds, "vocab_seconds": t1 - t0,
            "train_seconds": s["train_seconds"], "vocab_size": len(vocab),
            "words_per_second": enc.raw_words * epochs / seconds,
            "train_words_per_second": enc.raw_words * epochs / s["train_seconds"],
            "effective_words": s["trained_words"], **_scores(model.wv)}


def run_gensim(sentences, seed, epochs, workers=1):
    from gensim.models import Word2Vec
    t0 = time.perf_counter()
    m = Word2Vec(vector_size=SETTINGS["dim"], window=SETTINGS["window"], negative=SETTINGS["negative"],
                 min_count=SETTINGS["min_count"], sample=SETTINGS["sample"], alpha=SETTINGS["lr"],
                 min_alpha=SETTINGS["min_lr"], sg=1, hs=0, workers=workers, seed=seed)
    m.build_vocab(sentences)
    t1 = time.perf_counter()
    effective, raw = m.train(sentences, total_examples=m.corpus_count, epochs=epochs)
    seconds = time.perf_counter() - t0
    wv = w2v.WordVectors(m.wv.index_to_key, m.wv.vectors)
    return {"name": "gensim", "seed": seed, "threads": workers, "seconds": seconds, "vocab_seconds": t1 - t0,
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


def comparison_markdown(runs, corpus, tok_seconds, raw_words, epochs=SETTINGS["epochs"]):
    lines = [f"word2vec skip-gram, negative sampling, on `{corpus}` ({raw_words:,} words; tokenizing "
             f"took {tok_seconds:.1f} s, shared, not counted): dim 100, window 5, negative 5, "
             f"min_count 5, sample 1e-3, {epochs} epochs; threads: ours `threads`, gensim workers; "
             "time = vocabulary + training, words/s of training alone beside it.", "",
             "| run | threads | seed | seconds | training words/s | vocab | analogy | semantic | syntactic | "
             "covered | WordSim-353 | SimLex-999 |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in runs:
        lines.append(f"| {r['name']} | {r.get('threads', 1)} | {r['seed']} | {r['seconds']:.1f} | "
                     f"{r['train_words_per_second'] / 1e3:.0f}k | "
                     f"{r['vocab_size']:,} | {_f(r['analogy'], '.4f')} | {_f(r['semantic'], '.4f')} | "
                     f"{_f(r['syntactic'], '.4f')} | {r['analogy_covered']}/{r['analogy_total']} | "
                     f"{_f(r['wordsim353'], '.4f')} | {_f(r['simlex999'], '.4f')} |")
    return lines


def summarize(runs):
    """Mean of each side per thread count and the differences that the targets are stated in:
    {threads: {"tinygrad_rep": ..., "gensim": ..., "speed_ratio": ..., ...}}, and "scaling": ours
    at the most threads over ours at 1 (training words/s, medians)."""
    out = {}
    for threads in sorted({r.get("threads", 1) for r in runs}):
        part = {}
        for name in ("tinygrad_rep", "gensim"):
            rs = [r for r in runs if r["name"] == name and r.get("threads", 1) == threads]
            if rs:
                part[name] = {k: statistics.fmean(r[k] for r in rs if r[k] is not None)
                              for k in ("seconds", "words_per_second", "analogy", "semantic", "syntactic",
                                        "wordsim353", "simlex999")}
                part[name]["train_words_per_second"] = statistics.median(r["train_words_per_second"] for r in rs)
        if len(part) == 2:
            a, b = part["tinygrad_rep"], part["gensim"]
            part["speed_ratio"] = a["train_words_per_second"] / b["train_words_per_second"]  # > 1: ours is faster
            part["analogy_points_behind"] = 100 * (b["analogy"] - a["analogy"])
            part["wordsim353_behind"] = b["wordsim353"] - a["wordsim353"]
            part["simlex999_behind"] = b["simlex999"] - a["simlex999"]
            part["targets_met"] = {"analogy within 2 points": part["analogy_points_behind"] <= 2,
                                   "WordSim-353 within 0.03": part["wordsim353_behind"] <= 0.03,
                                   "training at least as fast as gensim's": part["speed_ratio"] >= 1.0}
        out[threads] = part
    counts = [t for t, part in out.items() if "tinygrad_rep" in part]
    if len(counts) > 1 and 1 in counts:
        top = max(counts)
        out["scaling"] = {"threads": top, "ratio": out[top]["tinygrad_rep"]["train_words_per_second"]
                          / out[1]["tinygrad_rep"]["train_words_per_second"]}
    return out


def summary_lines(summary):
    lines = []
    for threads, part in summary.items():
        if threads == "scaling":
            lines += ["", f"ours on {part['threads']} threads / ours on 1 thread (training words/s): "
                      f"{part['ratio']:.2f}x (target >= 1.8x on 2 threads)"]
        elif "speed_ratio" in part:
            lines += ["", f"{threads} thread(s): our training words/s / gensim's: {part['speed_ratio']:.2f}; "
                      f"analogy: ours {part['analogy_points_behind']:+.2f} points behind gensim; WordSim-353: "
                      f"{part['wordsim353_behind']:+.4f} behind; SimLex-999: {part['simlex999_behind']:+.4f} behind."]
            lines += [f"- {k}: {'yes' if v else 'NO'}" for k, v in part["targets_met"].items()]
    return lines


# ---------------------------------------------------------------------------------------------
# the `tinygrad-rep bench word2vec` suite

# corpus (None: the synthetic one), words kept, epochs, seeds (one round per seed: every side)
PLANS = {"smoke": (None, 20_000, 1, [1]), "quick": ("prose", 50_000, 1, [1, 2]),
         "full": ("prose", 2_000_000, 2, [1, 2, 3])}   # enough text for the quality to mean something
_FULL_SIZE = "prose 2000000 words x 2 epochs"
SCALING = "word2vec training, 2 threads vs 1"
TARGETS = [
    ("word2vec training: 2 threads at least 1.8x 1 thread", SCALING, _FULL_SIZE, 2, "pybind11",
     "pybind11, 1 thread", 1.8),
    ("word2vec training, 2 threads: at least gensim workers=2", "word2vec training, 2 threads", _FULL_SIZE, 2,
     "pybind11", "gensim", 1.0),
]


def run(quick=False, smoke=False, threads=1):
    """The suite: words/s records of ours and gensim (skipped when not installed), same corpus and
    settings, vocabulary + training and training alone, at `threads` thread(s) and, with 2 cores
    or more, at 2 threads too (our 2-thread training also against our 1-thread: the scaling).
    The sides alternate within each seed's round. Without the named corpus (`make data`) a
    synthetic one is used, and the size says so."""
    import numpy as np
    from tinygrad_rep import backend
    from timing import Stats
    from measurements import record, skipped
    import peers
    mode = "smoke" if smoke else "quick" if quick else "full"
    corpus, max_words, epochs, seeds = PLANS[mode]
    name = corpus
    try:
        sentences = list(text.load_corpus(corpus, max_words=max_words)) if corpus else None
    except FileNotFoundError as exc:
        print(f"  {exc}; using a synthetic corpus")
        sentences = None
    if sentences is None:
        n = max_words // 8
        sentences, _ = text.synthetic_corpus(0, n_groups=40, words_per_group=50, n_sentences=n, n_shared=200)
        name = "synthetic"
    words = sum(map(len, sentences))
    batch = w2v.Word2VecConfig().batch_size
    has_gensim = peers.optional("gensim") is not None
    counts = [threads] + ([2] if threads != 2 and (os.cpu_count() or 1) >= 2 else [])
    runs = {(side, t): [] for side in ("ours", "gensim") for t in counts}
    for seed in seeds:
        for t in counts:
            runs["ours", t].append(run_ours(sentences, seed, batch, epochs, threads=t))
            if has_gensim:
                runs["gensim", t].append(run_gensim(sentences, seed, epochs, workers=t))
            print(f"  seed {seed}, {t} thread(s): ours {runs['ours', t][-1]['train_words_per_second']:,.0f} "
                  "training words/s" + (f", gensim {runs['gensim', t][-1]['train_words_per_second']:,.0f}"
                                        if has_gensim else ""), flush=True)
    size = f"{name} {words} words x {epochs} epoch{'s' if epochs > 1 else ''}"
    ours_name = backend.get_backend()
    note = "skip-gram negative sampling, dim 100, window 5, negative 5"

    def side_record(what, t, side, key, label=None):
        rs = runs[side, t]
        label = label or (ours_name if side == "ours" else "gensim")
        if not rs:
            return skipped(what, size, label, t, "gensim is not installed", unit="words/s", suite="word2vec")
        quality = {k: float(np.mean([r[k] for r in rs if r.get(k) is not None] or [np.nan]))
                   for k in ("analogy", "wordsim353")}
        return record(what, size, label, t, Stats([r[key] for r in rs], 1), unit="words/s", suite="word2vec",
                      note=f"{note}; mean analogy {quality['analogy']:.3f}, WordSim-353 {quality['wordsim353']:.3f}",
                      # the quality column of the README's table (mean over seeds)
                      **{k: (v if v == v else None) for k, v in quality.items()})

    records = []
    for t in counts:
        suffix = "" if t == 1 else f", {t} threads"
        for what, key in (("word2vec vocab + training", "words_per_second"),
                          ("word2vec training", "train_words_per_second")):
            if t != 1 and key == "words_per_second":
                continue  # vocabulary building is one thread on both sides
            for side in ("ours", "gensim"):
                records.append(side_record(what + suffix, t, side, key))
    if 1 in counts and 2 in counts:
        records.append(side_record(SCALING, 2, "ours", "train_words_per_second"))
        base = side_record(SCALING, 1, "ours", "train_words_per_second", label=f"{ours_name}, 1 thread")
        base["threads"] = 2  # keyed with the 2-thread record it is compared with
        records.append(base)
        records += ceiling_records(ours_name, rounds=len(seeds))
    return records


CEILING = "2 threads vs 1, embarrassingly parallel kernel (the machine's ceiling)"


def ceiling_records(ours_name, rounds=3, rows=200_000, calls=10):
    """What two threads can gain on this machine at this moment: the negative sampler (pure
    compute, GIL released, nothing shared but a read-only table) on 2 Python threads at once
    against the same calls one after the other. Word2vec's scaling is read against this."""
    import threading
    import numpy as np
    from tinygrad_rep import backend
    from timing import Stats
    from measurements import record
    be = backend.current()
    counts = (1e6 / np.arange(1, 50_001)).astype(np.int64) + 5
    sampler = w2v.UnigramSampler(counts)
    avoid = np.random.default_rng(0).integers(0, len(counts), rows)
    outs = [np.empty((rows, 5), np.int64) for _ in range(2)]

    def work(i):
        for k in range(calls):
            be.sample_negatives(sampler.prob, sampler.alias, avoid, 5, k, outs[i])
    before = be.get_num_threads()
    be.set_num_threads(1)
    one, two = [], []
    try:
        for _ in range(rounds):
            t = time.perf_counter()
            work(0)
            work(1)
            one.append(2 * rows * calls / (time.perf_counter() - t))
            threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
            t = time.perf_counter()
            for th in threads:
                th.start()
            for th in threads:
                th.join()
            two.append(2 * rows * calls / (time.perf_counter() - t))
    finally:
        be.set_num_threads(before)
    note = "sample_negatives, 200,000 rows x 5 draws per call, per thread"
    return [record(CEILING, "sample_negatives", ours_name, 2, Stats(two, 1), unit="rows/s", suite="word2vec", note=note),
            record(CEILING, "sample_negatives", f"{ours_name}, 1 thread", 2, Stats(one, 1), unit="rows/s",
                   suite="word2vec", note=note)]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--corpus", default="prose", help="sotu, prose, or a text file (default prose)")
    p.add_argument("--max-words", type=int, default=None, help="cut the corpus to this many tokens")
    p.add_argument("--epochs", type=int, default=SETTINGS["epochs"])
    p.add_argument("--seeds", type=int, nargs="+", default=[1], help="one run per seed and side")
    p.add_argument("--batch-size", type=int, default=w2v.Word2VecConfig().batch_size)
    p.add_argument("--threads", type=int, nargs="+", default=[1],
                   help="thread counts to run each side at (ours: threads, gensim: workers; default 1)")
    p.add_argument("--no-gensim", action="store_true", help="skip gensim even if it is installed")
    p.add_argument("--no-softmax", action="store_true", help="skip the softmax-vs-negative table")
    p.add_argument("--softmax-only", action="store_true", help="only the softmax-vs-negative table")
    p.add_argument("--softmax-words", type=int, default=100_000, help="corpus tokens for that table")
    p.add_argument("--softmax-vocab", type=int, nargs="+", default=[250, 500, 1000, 2000, 4000, 8000])
    p.add_argument("--out", default="runs/bench", help="folder for bench_word2vec.json / .md")
    args = p.parse_args(argv)
    if min(args.threads) < 1:
        p.error("--threads must be at least 1")

    w2v.set_threads(1)  # the softmax table's kernels; training threads are passed to each run
    info = tr.backend_info()
    print(f"backend {info['backend']}, SIMD {info.get('simd')}, threads {', '.join(map(str, args.threads))}; "
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
        for threads in args.threads:
            sides = [("ours  ", lambda: run_ours(sentences, seed, args.batch_size, args.epochs, threads))]
            if gensim_ok:
                sides.append(("gensim", lambda: run_gensim(sentences, seed, args.epochs, threads)))
            for label, fn in sides:
                r = fn()
                runs.append(r)
                print(f"  {label} seed {seed}, {threads} thread(s): {r['seconds']:.1f} s, "
                      f"{r['train_words_per_second'] / 1e3:.0f}k training words/s, "
                      f"analogy {_f(r['analogy'], '.4f')}, ws353 {_f(r['wordsim353'], '.4f')}, "
                      f"simlex {_f(r['simlex999'], '.4f')}", flush=True)
    summary = summarize(runs)
    lines = comparison_markdown(runs, args.corpus, tok_seconds, raw_words, args.epochs) if runs else []
    lines += summary_lines(summary)
    if runs and not gensim_ok:
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
