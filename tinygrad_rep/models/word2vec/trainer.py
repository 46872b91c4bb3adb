"""Word2vec's training loop: one epoch is subsampling -> skip-gram pairs -> negatives ->
mini-batch steps of one of three trainers (see the package docstring), with a linear learning-rate
decay over all epochs.
"""
import math
import time

import numpy as np

from ... import backend
from ... import functional as F
from ... import ops
from ...autograd import no_grad
from ...ops.sgns import sgns_loss, sgns_pairs, sparse_sgd_
from ...tensor import Tensor
from ...output import Progress
from ..training import DivergenceWatch, rng_state, set_rng_state
from .config import Word2VecConfig
from .model import Word2Vec
from .sampling import UnigramSampler, keep_probabilities, skipgram_pairs, subsample
from .vocabulary import EncodedCorpus, build_vocab


def train(corpus, config=None, progress=False, checkpoint=None):
    """Train skip-gram word vectors on `corpus` -> Word2Vec (with .stats: times, words/s, loss).

    corpus: an iterable of token lists (data.Corpus, lists) or a (Vocab, EncodedCorpus) pair
    from build_vocab. progress: show a progress bar (words/s, loss) on stderr.
    A run whose loss or vectors stop being finite or explode raises DivergenceError
    (models/training.py). checkpoint: a training.Checkpoint saved after every epoch; one holding
    a loaded state (Checkpoint.load) is resumed, bit-identical to an uninterrupted run.
    """
    config = (config or Word2VecConfig()).validate()
    t0 = time.perf_counter()
    if isinstance(corpus, tuple) and len(corpus) == 2 and isinstance(corpus[1], EncodedCorpus):
        vocab, enc = corpus
    else:
        vocab, enc = build_vocab(corpus, config.min_count, config.max_vocab)
    if not len(vocab):
        raise ValueError(f"word2vec: no word occurs at least min_count={config.min_count} times")
    t_vocab = time.perf_counter() - t0
    rng = np.random.default_rng(config.seed)
    model = Word2Vec(vocab, config, rng=rng)
    t1 = time.perf_counter()
    trained = _Trainer(model, enc, rng).run(progress, checkpoint)
    t2 = time.perf_counter()
    model.stats = {"vocab_seconds": t_vocab, "train_seconds": t2 - t1, "seconds": t2 - t0,
                   "raw_words": enc.raw_words, "corpus_words": len(enc), "vocab_size": len(vocab),
                   "trained_words": trained["words"], "pairs": trained["pairs"],
                   "words_per_second": enc.raw_words * config.epochs / max(t2 - t1, 1e-9),
                   "effective_words_per_second": trained["words"] / max(t2 - t1, 1e-9),
                   "final_loss": trained["final_loss"]}
    return model


class _Trainer:
    """The training loop (one object per run; see the module docstring for the steps)."""

    def __init__(self, model, enc, rng):
        self.m, self.enc, self.rng, self.c = model, enc, rng, model.config
        self.keep = keep_probabilities(model.vocab.counts, self.c.sample)
        self.sampler = UnigramSampler(model.vocab.counts) if self.c.objective == "negative" else None

    def _chunks(self):
        """Chunk boundaries of the encoded corpus, at sentence starts near every chunk_words."""
        n, size = len(self.enc), self.c.chunk_words
        cuts = [0]
        starts = self.enc.starts
        while cuts[-1] < n:
            target = cuts[-1] + size
            if target >= n:
                cuts.append(n)
                break
            k = np.searchsorted(starts, target)
            nxt = int(starts[k]) if k < len(starts) and starts[k] < target + size else target
            cuts.append(max(nxt, cuts[-1] + 1))
        return list(zip(cuts[:-1], cuts[1:]))

    def run(self, progress, checkpoint=None):
        c, m = self.c, self.m
        n = len(self.enc)
        total = n * c.epochs
        raw_per_token = self.enc.raw_words / max(n, 1)   # progress is shown in corpus words
        bar = Progress(total=round(total * raw_per_token), desc="word2vec", disable=not progress)
        shown = 0
        t0 = time.perf_counter()
        if c.objective == "softmax":
            step = self._step_softmax
        else:
            step = self._step_fused if c.trainer == "fused" else self._step_engine
        words = pairs = 0
        loss_sum, loss_n = 0.0, 0
        last, lr = math.nan, c.lr
        first_epoch = 0
        if checkpoint is not None and checkpoint.state is not None:
            arrays, meta = checkpoint.state
            m.W_in[...], m.W_out[...] = arrays["W_in"], arrays["W_out"]
            set_rng_state(self.rng, meta["rng"])
            m.history = [tuple(h) for h in meta["history"]]
            first_epoch, words, pairs = meta["epoch"], meta["words"], meta["pairs"]
            loss_sum, loss_n, last, lr = meta["loss_sum"], meta["loss_n"], meta["last"], meta["lr"]
            shown = round(first_epoch * n * raw_per_token)
            bar.update(shown)
            t0 -= meta["seconds"]
        # the loss is checked every step (one float); the vectors, a pass over both matrices,
        # once per chunk of the corpus
        watch = DivergenceWatch([("W_in", m.W_in), ("W_out", m.W_out)], hint="try a smaller --lr")
        chunks = self._chunks()
        W_in_t, W_out_t = Tensor._wrap(m.W_in), Tensor._wrap(m.W_out)
        try:
            for epoch in range(first_epoch, c.epochs):
                for a, b in chunks:
                    ids, sent = self.enc.ids[a:b], self.enc.sentence[a:b]
                    if c.sample > 0:
                        kept = subsample(ids, self.keep, self.rng)
                        ids, sent = ids[kept], sent[kept]
                    inputs, outputs = skipgram_pairs(ids, sent, c.window, self.rng)
                    words += len(ids)
                    pairs += len(inputs)
                    if c.objective == "negative":
                        targets = np.empty((len(outputs), 1 + c.negative), dtype=np.int64)
                        targets[:, 0] = outputs
                        targets[:, 1:] = self.sampler.sample(outputs, c.negative, self.rng.integers(0, 2 ** 63))
                    else:
                        targets = outputs
                    done0 = epoch * n + a
                    P, B = len(inputs), c.batch_size
                    for s in range(0, P, B):
                        lr = max(c.lr - (c.lr - c.min_lr) * (done0 + (b - a) * (s / P)) / total, c.min_lr)
                        value = step(W_in_t, W_out_t, inputs[s:s + B], targets[s:s + B], lr)
                        watch.loss(value, epoch + 1)
                        loss_sum += value
                        loss_n += min(B, P - s)
                    watch.parameters(epoch + 1)
                    if loss_n:
                        last = loss_sum / loss_n
                    done = round((epoch * n + b) * raw_per_token)
                    bar.update(done - shown, epoch=f"{epoch + 1}/{c.epochs}", loss=last, lr=lr,
                               words_per_s=f"{done / max(time.perf_counter() - t0, 1e-9) / 1e3:.0f}k")
                    shown = done
                    if loss_n >= 1_000_000 or (epoch == c.epochs - 1 and b == n):
                        m.history.append((epoch + 1, epoch * n + b, last, lr))
                        loss_sum, loss_n = 0.0, 0
                if checkpoint is not None:
                    checkpoint.save({"W_in": m.W_in, "W_out": m.W_out},
                                    {"rng": rng_state(self.rng), "epoch": epoch + 1, "history": m.history,
                                     "words": words, "pairs": pairs, "loss_sum": loss_sum, "loss_n": loss_n,
                                     "last": last, "lr": lr, "seconds": time.perf_counter() - t0})
        finally:
            bar.close()
        return {"words": words, "pairs": pairs, "final_loss": last}

    def _step_fused(self, W_in_t, W_out_t, inp, tgt, lr):
        """The original's per-pair SGD over a batch, in one kernel call. Returns the summed loss."""
        with no_grad():
            return float(sgns_pairs(W_in_t, W_out_t, inp, tgt, lr=lr).data)

    def _step_engine(self, W_in_t, W_out_t, inp, tgt, lr):
        """One engine step: gather -> SGNS loss -> backward -> sparse SGD. Returns the summed loss."""
        center = F.embedding(W_in_t, inp).requires_grad_()     # (B, d): this step's leaves
        rows = F.embedding(W_out_t, tgt).requires_grad_()      # (B, 1 + K, d)
        if self.c.trainer == "engine":
            loss = sgns_loss(center, rows, reduction="sum")
        else:
            loss = F.skipgram_negative_sampling_loss(center, rows[:, 0], rows[:, 1:]) * len(inp)
        loss.backward()
        d = self.c.dim
        sparse_sgd_(self.m.W_in, inp, center.grad.data, lr)
        sparse_sgd_(self.m.W_out, tgt.reshape(-1), rows.grad.data.reshape(-1, d), lr)
        return float(loss.data)

    def _step_softmax(self, W_in_t, W_out_t, inp, out, lr):
        """Full softmax: logits = W_in[inp] @ W_out^T over the whole vocabulary, cross-entropy
        on the fused C kernel; W_out's gradient is dense (that is the cost being measured)."""
        center = F.embedding(W_in_t, inp).requires_grad_()
        W_out = Tensor._wrap(self.m.W_out).requires_grad_()
        logits = ops.MatMul.apply(center, W_out, trans_b=True)   # (B, V)
        loss = F.cross_entropy(logits, out) * len(inp)
        loss.backward()
        sparse_sgd_(self.m.W_in, inp, center.grad.data, lr)
        self.m.W_out -= lr * W_out.grad.data
        return float(loss.data)


def set_threads(n):
    """Set the kernel thread count of the current backend (the numpy backend has none)."""
    if n is not None:
        if n < 1:
            raise ValueError(f"--threads must be >= 1, got {n}")
        setter = getattr(backend.current(), "set_num_threads", None)
        if setter is not None:
            setter(n)
