"""`tinygrad-rep train word2vec`: skip-gram word vectors on a text corpus; writes vectors.txt, the
model, metrics.json and a PCA plot of word groups into --out, and prints the analogy and
word-similarity scores.

    tinygrad-rep train word2vec --corpus sotu --out runs/word2vec
"""
import dataclasses
import math
import time
from pathlib import Path

import numpy as np

from ... import backend
from ...data import text
from ...models import plots
from ...models import word2vec as w2v
from ...output import write_json_atomic
from ...report_html import run_page
from .. import options
from . import common


def default_corpus():
    """The largest named corpus present in the data cache ("sotu" if none is: its loader then says
    how to get it)."""
    present = [(p.stat().st_size, name) for name, file in text.CORPORA.items()
               if (p := text.cache_dir() / file).is_file()]
    return max(present)[1] if present else "sotu"


def add_arguments(parser):
    """Options of `tinygrad-rep train word2vec`."""
    d = w2v.Word2VecConfig()
    parser.add_argument("--corpus", default=None, help="a text file, or 'sotu' / 'prose' from the data "
                        "cache (one sentence per line; default: the largest named corpus in the cache, "
                        "prose after `make data`)")
    parser.add_argument("--dim", type=int, default=d.dim, help=f"vector size (default {d.dim})")
    parser.add_argument("--window", type=int, default=d.window, help=f"largest context distance (default {d.window})")
    parser.add_argument("--negative", type=int, default=d.negative, help=f"negatives per pair (default {d.negative})")
    parser.add_argument("--min-count", type=int, default=d.min_count, help=f"drop rarer words (default {d.min_count})")
    parser.add_argument("--sample", type=float, default=d.sample, help=f"subsampling threshold, 0 = off (default {d.sample})")
    parser.add_argument("--epochs", type=int, default=d.epochs, help=f"passes over the corpus (default {d.epochs})")
    parser.add_argument("--batch-size", type=int, default=None,
                        help="pairs per step (default 8192 for the fused trainer, else 1024)")
    parser.add_argument("--lr", type=float, default=d.lr, help=f"starting learning rate (default {d.lr})")
    parser.add_argument("--min-lr", type=float, default=d.min_lr, help=f"final learning rate (default {d.min_lr})")
    parser.add_argument("--seed", type=int, default=d.seed, help=f"random seed (default {d.seed})")
    parser.add_argument("--objective", choices=["negative", "softmax"], default=d.objective,
                        help="negative sampling, or the full softmax (small vocabularies only)")
    parser.add_argument("--trainer", choices=w2v.TRAINERS, default=d.trainer,
                        help="fused: the per-pair SGD kernel (default); engine: gather -> fused loss "
                        "-> backward -> sparse SGD; composed: as engine, loss from elementary ops")
    parser.add_argument("--max-vocab", type=int, default=None, help="keep only the most frequent words")
    parser.add_argument("--max-words", type=int, default=None, help="read only this many tokens of the corpus")
    parser.add_argument("--threads", type=int, default=None,
                        help="threads: the fused trainer trains that many chunks of the corpus at once, "
                        "without locks, and the kernels use them (default: "
                        "TINYGRAD_REP_NUM_THREADS or all cores); only --threads 1 gives the same "
                        "vectors for a seed on every run")
    parser.add_argument("--no-eval", action="store_true", help="skip the analogy / similarity evaluation")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--out", default="runs/word2vec", help="output folder (default runs/word2vec)")
    common.add_run_arguments(parser)


def check(args):
    """Range-check every numeric option, naming it, before anything is read or trained."""
    for name in ("dim", "window", "min_count", "batch_size", "max_vocab", "max_words", "threads"):
        options.positive(name, getattr(args, name), integer=True)
    options.non_negative("negative", args.negative, integer=True)
    if args.objective == "negative" and args.negative < 1:
        raise options.UsageError(f"--negative must be at least 1 for negative sampling, got {args.negative}")
    options.at_most("window", args.window, 100, integer=True)
    options.non_negative("epochs", args.epochs, integer=True)
    options.in_range("sample", args.sample, 0, 1, high_open=True)
    options.positive("lr", args.lr)
    options.in_range("min-lr", args.min_lr, 0, args.lr)
    options.non_negative("seed", args.seed, integer=True)


def metrics_record(model, evaluation, extra=None):
    """The metrics.json dict: speed, sizes, losses, evaluation (headline numbers at top level)."""
    s = model.stats
    rec = {"model": w2v.KIND, "config": dataclasses.asdict(model.config)}
    rec.update({k: s[k] for k in ("seconds", "train_seconds", "vocab_seconds", "words_per_second",
                                  "effective_words_per_second", "vocab_size", "raw_words",
                                  "corpus_words", "trained_words", "pairs", "final_loss", "threads") if k in s})
    if evaluation is not None:
        an = evaluation["analogy"]
        rec["analogy"] = {"accuracy": an["accuracy"], "semantic": an["semantic"]["accuracy"],
                          "syntactic": an["syntactic"]["accuracy"], "covered": an["covered"],
                          "total": an["total"], "coverage": an["coverage"]}
        for name in ("wordsim353", "simlex999"):
            rec[name] = evaluation[name]["spearman"]
            rec[name + "_coverage"] = evaluation[name]["coverage"]
        rec["evaluation"] = evaluation
    rec["loss_history"] = [{"epoch": e, "words": w, "loss": l, "lr": r} for e, w, l, r in model.history]
    info = backend.backend_info()
    rec["backend"] = {k: info.get(k) for k in ("backend", "simd", "threads")}
    if extra:
        rec.update(extra)
    return rec


def _threads():
    """How many threads the run uses, as the summary line says it."""
    n = backend.current().get_num_threads()
    return f"{n} thread" + ("s" if n != 1 else "")


def _fmt(x, spec=".3f"):
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, spec)


def run(args):
    """`tinygrad-rep train word2vec`: train, then write vectors.txt, the model, metrics.json and
    the PCA plot into --out, and print a summary."""
    check(args)
    config = w2v.Word2VecConfig(dim=args.dim, window=args.window, negative=args.negative,
                                min_count=args.min_count, sample=args.sample, epochs=args.epochs,
                                lr=args.lr, min_lr=args.min_lr, batch_size=args.batch_size, seed=args.seed,
                                objective=args.objective, trainer=args.trainer,
                                max_vocab=args.max_vocab).validate()
    w2v.set_threads(args.threads)
    out = Path(options.output_folder(args.out))
    t0 = time.perf_counter()
    corpus = text.load_corpus(args.corpus or default_corpus(), max_words=args.max_words)
    print(f"word2vec: {config.objective} skip-gram on {corpus.path} (dim {config.dim}, window "
          f"{config.window}, negative {config.negative}, min_count {config.min_count}, sample "
          f"{config.sample}, {config.epochs} epochs, batch {config.batch_size}, seed {config.seed}; "
          f"backend {backend.get_backend()}, {_threads()})", flush=True)
    vocab, enc = w2v.build_vocab(corpus, config.min_count, config.max_vocab)
    t_read = time.perf_counter() - t0
    print(f"  read {enc.raw_words:,} words in {t_read:.1f} s; vocabulary {len(vocab):,} words "
          f"(min_count {config.min_count}), {len(enc):,} tokens kept", flush=True)
    if config.objective == "softmax" and len(vocab) > 20_000:
        print(f"  note: the full softmax costs O(vocabulary) per pair; with {len(vocab):,} words "
              "consider --max-vocab or negative sampling", flush=True)
    ckpt = common.checkpoint_for(args, out, {"corpus": str(corpus.path), "max_words": args.max_words,
                                             "corpus_words": enc.raw_words, "vocab_size": len(vocab),
                                             **dataclasses.asdict(config)})
    with common.interruptible(ckpt, config.epochs):
        model = w2v.train((vocab, enc), config, progress=not args.quiet, checkpoint=ckpt)
        seconds = time.perf_counter() - t0
        model.stats["vocab_seconds"] += t_read
        model.stats["seconds"] = seconds
        model.save(out)
        write_json_atomic(out / "metrics.json", metrics_record(model, None, {"corpus": str(corpus.path)}))
        evaluation = None if args.no_eval else model.wv.evaluate()
        plot = out / "word_groups_pca.png"
        drawn = plots.plot_word_groups(model.wv, plot, title=f"word2vec on {Path(str(corpus.path)).name}: "
                                       "2-D PCA of word groups")
        words = [w for _, w, _, _ in model.history]
        loss_plot = plots.save_loss_png(out / "loss.png", [h[2] for h in model.history],
                                        f"word2vec on {Path(str(corpus.path)).name}",
                                        "mean SGNS loss per pair" if config.objective == "negative"
                                        else "mean cross-entropy per pair",
                                        x=np.asarray(words) * enc.raw_words / max(len(enc), 1),
                                        xlabel="corpus words trained")
        rec = metrics_record(model, evaluation, {"corpus": str(corpus.path),
                                                 "plot": plot.name if drawn is not None else None,
                                                 "loss_plot": "loss.png" if loss_plot else None})
        write_json_atomic(out / "metrics.json", rec)
        print(f"  trained in {model.stats['train_seconds']:.1f} s: {rec['words_per_second'] / 1e3:.1f}k words/s "
              f"({rec['effective_words_per_second'] / 1e3:.1f}k after subsampling), final loss "
              f"{_fmt(rec['final_loss'])}; whole run {seconds:.1f} s")
        if evaluation is not None:
            an = rec["analogy"]
            print(f"  analogy accuracy {_fmt(an['accuracy'])}: the share of Google analogy questions "
                  "a : b :: c : d answered d (the nearest word to b - a + c, a, b, c excluded), over the "
                  f"{an['covered']}/{an['total']} questions whose four words are in the vocabulary "
                  f"({_fmt(an['coverage'], '.1%')} covered); semantic (capitals, family...) "
                  f"{_fmt(an['semantic'])}, syntactic (plurals, tenses...) {_fmt(an['syntactic'])}")
            print(f"  word similarity, Spearman rank correlation of cosine similarity with human ratings "
                  f"(1 = same order, 0 = none): WordSim-353 {_fmt(rec['wordsim353'])} "
                  f"({_fmt(rec['wordsim353_coverage'], '.1%')} of pairs covered), SimLex-999 "
                  f"{_fmt(rec['simlex999'])} ({_fmt(rec['simlex999_coverage'], '.1%')} covered)")
        print(f"  wrote {out}/: vectors.txt, model.json, vocab.txt, weights.npz, metrics.json"
              + (f", {plot.name}" if drawn is not None else "") + (", loss.png" if loss_plot else "")
              + ", report.html")
        ckpt.remove()  # the run is complete: nothing to resume
        run_page(str(out), f"train word2vec ({Path(str(corpus.path)).name})")
    return 0
