"""Word2vec's training loop: one epoch is subsampling -> skip-gram pairs -> negatives ->
mini-batch steps of one of three trainers (see the package docstring), with a linear learning-rate
decay over all epochs.

The corpus is cut into chunks that each carry their own random stream, so the fused trainer can
run several chunks at once on worker threads, each calling the GIL-free kernels (sampling,
per-pair SGD) without locks, as the original word2vec's threads do (Hogwild-style SGD). Unlike
the original, each thread trains its own copy of the most frequent words' rows (all rows when
they fit), added into the shared matrices every few steps (_HotRows): shared hot rows made two
cores no faster than one. One thread gives the same vectors for a seed on every run.
"""
import math
import queue
import threading
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


# tells the chunks' seed sequences apart from the initialisation's (seeded by `seed` alone)
_STREAM = 0x77327663
# memory for the worker threads' copies of the most frequent words' rows (all rows when they
# fit), and pairs trained between two merges of a thread's copies per row copied (see _HotRows;
# on the prose corpus, 3 epochs, 2 threads, merging all rows only: 16 trained 10% faster than 4
# but lost 0.7 points of analogy accuracy to the staler rows, 1 kept them and ran 25% slower;
# with the frequent rows also merged on their own, 64 with those every 16,384 pairs ran 11%
# faster than 16 with 8,192 (2-thread speed 1.82x against 1.64x of one thread's), at the same
# accuracy: 2M words x 2 epochs, 3 seeds, analogy 0.020-0.025 and WordSim 0.203-0.212; one
# thread 0.021-0.024 and 0.194-0.205)
HOT_BYTES = 256 << 20
MERGE_PAIRS_PER_ROW = 64
# the most frequent rows of the copies (they move the most) are merged every HOT_MERGE_PAIRS
HOT_MERGE_ROWS, HOT_MERGE_PAIRS = 1024, 16384


def train(corpus, config=None, progress=False, checkpoint=None, threads=None):
    """Train skip-gram word vectors on `corpus` -> Word2Vec (with .stats: times, words/s, loss).

    corpus: an iterable of token lists (data.Corpus, lists) or a (Vocab, EncodedCorpus) pair
    from build_vocab. progress: show a progress bar (words/s, loss) on stderr.
    A run whose loss or vectors stop being finite or explode raises DivergenceError
    (models/training.py). checkpoint: a training.Checkpoint saved after every epoch; one holding
    a loaded state (Checkpoint.load) is resumed, bit-identical to an uninterrupted run (with one
    thread). threads: chunks of the corpus trained at once by the fused trainer, without locks
    (None: the backend's kernel thread count, see set_threads; the other trainers, and a corpus
    of one chunk, use one). With 1 a seed always gives the same vectors; with more the updates
    interleave differently from run to run, so the vectors differ slightly (quality does not).
    """
    config = (config or Word2VecConfig()).validate()
    threads = _worker_count(threads, config)
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
    trainer = _Trainer(model, enc, rng, threads)
    with _kernel_threads(1 if trainer.threads > 1 else None):  # the workers are the parallelism
        trained = trainer.run(progress, checkpoint)
    t2 = time.perf_counter()
    model.stats = {"vocab_seconds": t_vocab, "train_seconds": t2 - t1, "seconds": t2 - t0,
                   "raw_words": enc.raw_words, "corpus_words": len(enc), "vocab_size": len(vocab),
                   "trained_words": trained["words"], "pairs": trained["pairs"],
                   "words_per_second": enc.raw_words * config.epochs / max(t2 - t1, 1e-9),
                   "effective_words_per_second": trained["words"] / max(t2 - t1, 1e-9),
                   "final_loss": trained["final_loss"], "threads": trainer.threads}
    return model


def _worker_count(threads, config):
    """The number of worker threads: `threads`, checked; None: the kernel thread count."""
    if threads is None:
        threads = backend.current().get_num_threads()
    elif isinstance(threads, bool) or not isinstance(threads, (int, np.integer)) or threads < 1:
        raise ValueError(f"word2vec: threads must be an integer >= 1, got {threads!r}")
    if config.objective != "negative" or config.trainer != "fused":
        return 1  # the engine's steps and the softmax's dense update are not lock-free
    return int(threads)


class _kernel_threads:
    """`with _kernel_threads(n):` the backend's kernel thread count is n inside (None: unchanged);
    worker threads each run their kernels on one thread, not on a team of their own."""

    def __init__(self, n):
        be = backend.current()  # every backend has the runtime functions (numpy_ref only keeps the count)
        self.get, self.set, self.n = be.get_num_threads, be.set_num_threads, n

    def __enter__(self):
        if self.n is not None:
            self.before = self.get()
            self.set(self.n)

    def __exit__(self, *exc):
        if self.n is not None:
            self.set(self.before)


class _HotRows:
    """Each worker thread's own copies of the most frequent words' rows (all rows when they fit
    in HOT_BYTES), merged into the shared rows every few steps.

    Why: when two cores write the same rows, every access to them moves cache lines between the
    cores; the frequent words are in most pairs (as negatives above all), and with every row
    shared two threads trained no faster than one (1,024 private rows: 1.3x; all: 1.6x, where
    an embarrassingly parallel kernel gets 1.6x). The vocabulary is sorted by count, so they
    are rows 0..H-1. Each matrix becomes one array of V + threads * H rows (the kernel reads the
    rows of one matrix): rows :V are the model's, and thread t's pairs use its own copy of rows
    :H at V + t * H (indices remapped). Every `every` pairs and at the end of each chunk, the
    thread adds what its copy moved since its last merge to the shared rows and takes them
    back, under a lock: those rows see the other threads' updates that many pairs late (as
    data-parallel SGD with summed updates), rows past H at once (Hogwild, as the original). The
    first HOT_MERGE_ROWS, which move the most, are merged every HOT_MERGE_PAIRS pairs too."""

    def __init__(self, model, threads, hot):
        V = model.W_in.shape[0]
        self.V, self.H, self.lock = V, min(hot, V), threading.Lock()
        # a merge costs a few passes over the copies: as many pairs between two as keep it a
        # few percent of the training
        self.every = max(32768, MERGE_PAIRS_PER_ROW * self.H)
        self.full = {}
        for name in ("W_in", "W_out"):
            W = getattr(model, name)
            full = np.empty((V + threads * self.H,) + W.shape[1:], W.dtype)
            full[:V] = W
            full[V:] = np.tile(W[:self.H], (threads, 1))
            self.full[name] = full
            setattr(model, name, full[:V])   # the model's matrices are the shared rows
        # each thread's copies as they were at its last merge
        self.base = [{name: full[:self.H].copy() for name, full in self.full.items()} for _ in range(threads)]

    def remap(self, idx, slot):
        """Row numbers with the frequent words' rows moved to thread `slot`'s copies."""
        return np.where(idx < self.H, idx + (self.V + slot * self.H), idx)

    def merge(self, slot, rows=None):
        """Shared rows += this thread's moves since its last merge; its copies = the shared rows
        (rows: only the first that many)."""
        h = self.H if rows is None else min(rows, self.H)
        lo = self.V + slot * self.H
        with self.lock:
            for name, full in self.full.items():
                shared, mine, base = full[:h], full[lo:lo + h], self.base[slot][name][:h]
                shared += mine
                shared -= base
                mine[...] = shared
                base[...] = shared

    def release(self, model):
        """Give the model matrices of their own again (the copies' memory is freed)."""
        for name, full in self.full.items():
            setattr(model, name, full[:self.V].copy())


class _Workers:
    """A small thread pool for chunks: map(fn, jobs) yields fn(*job, stop, slot) in job order
    while the threads work ahead (slot: the running thread's number, 0..n-1). An exception in
    a job is raised where its result is taken; `stop` (set by the caller on error or Ctrl-C)
    makes the running jobs return early."""

    def __init__(self, n, stop):
        self.stop, self.jobs = stop, queue.Queue()
        self.threads = [threading.Thread(target=self._work, args=(i,), daemon=True, name=f"word2vec-{i}")
                        for i in range(n)]
        for t in self.threads:
            t.start()

    def _work(self, slot):
        while True:
            item = self.jobs.get()
            if item is None:
                return
            fn, job, box, done = item
            try:
                if not self.stop.is_set():
                    box.append((True, fn(*job, self.stop, slot)))
            except BaseException as e:  # handed to the caller, which decides
                box.append((False, e))
            finally:
                done.set()

    def map(self, fn, jobs):
        items = [(fn, job, [], threading.Event()) for job in jobs]
        for item in items:
            self.jobs.put(item)
        for _, _, box, done in items:
            done.wait()
            if not box:
                raise RuntimeError("word2vec: training was stopped")
            ok, value = box[0]
            if not ok:
                raise value
            yield value

    def close(self):
        self.stop.set()
        for _ in self.threads:
            self.jobs.put(None)
        for t in self.threads:
            t.join()


class _Trainer:
    """The training loop (one object per run; see the module docstring for the steps)."""

    def __init__(self, model, enc, rng, threads=1):
        self.m, self.enc, self.rng, self.c = model, enc, rng, model.config
        self.threads = threads
        self.keep = keep_probabilities(model.vocab.counts, self.c.sample)
        self.sampler = UnigramSampler(model.vocab.counts) if self.c.objective == "negative" else None
        if self.c.objective == "softmax":
            self.step = self._step_softmax
        else:
            self.step = self._step_fused if self.c.trainer == "fused" else self._step_engine

    def _chunks(self):
        """Chunk boundaries of the encoded corpus, at sentence starts near every chunk_words.
        With several threads the chunks are evened out to a multiple of the thread count, so
        the threads finish an epoch together (an epoch ends when all its chunks are done)."""
        n, size = len(self.enc), self.c.chunk_words
        if self.threads > 1 and n > size:
            # a quarter of the size: the threads hold that many chunks' pairs at once, and
            # arrays this small are reused by malloc; big ones are mapped and unmapped each
            # time, and an unmap stalls every thread of the process
            size = max(1, size // 4)
            rounds = -(-n // (self.threads * size))
            size = -(-n // (self.threads * rounds))
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
        chunks = self._chunks()
        stop = threading.Event()
        # a corpus of one chunk has nothing to share out
        pool = _Workers(self.threads, stop) if self.threads > 1 and len(chunks) > 1 else None
        if pool is not None:
            V, d = m.W_in.shape
            # two matrices, two copies (the rows and their value at the last merge) per thread
            rows = HOT_BYTES // (4 * self.threads * d * m.W_in.itemsize)
            self.hot = _HotRows(m, self.threads, min(V, max(rows, 1024)))
        # the loss is checked every step (one float); the vectors (the model's rows), a pass over
        # both matrices, once per chunk of the corpus
        watch = DivergenceWatch([("W_in", m.W_in), ("W_out", m.W_out)], hint="try a smaller --lr")
        try:
            for epoch in range(first_epoch, c.epochs):
                # the chunks of an epoch run in order on one thread, or all at once on the
                # workers (each chunk's randomness is its own, so only the interleaving of the
                # updates differs); results are taken in chunk order either way, and every
                # chunk of an epoch is done before its checkpoint
                jobs = [(epoch, i, a, b) for i, (a, b) in enumerate(chunks)]
                if pool is None:
                    results = (self._chunk(*job, stop) for job in jobs)
                else:
                    results = pool.map(self._chunk, jobs)
                for (_, _, a, b), (kept, npairs, steps) in zip(jobs, results):
                    words += kept
                    pairs += npairs
                    for value, count, lr in steps:
                        watch.loss(value, epoch + 1)
                        loss_sum += value
                        loss_n += count
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
            stop.set()   # an error or Ctrl-C: the workers stop after their current step
            if pool is not None:
                pool.close()
                self.hot.release(m)
            bar.close()
        return {"words": words, "pairs": pairs, "final_loss": last}

    def _chunk(self, epoch, index, a, b, stop, slot=None):
        """Train on corpus tokens a:b in epoch `epoch` (index: the chunk's number in the epoch):
        subsampling -> pairs -> negatives -> steps. Runs on any thread: its randomness comes
        from its own Generator, seeded by (seed, epoch, index), and it writes nothing but the
        two matrices. Returns (tokens kept, pairs, [(step loss, pairs in step, lr), ...])."""
        c = self.c
        rng = np.random.default_rng([c.seed, _STREAM, epoch, index])
        ids, sent = self.enc.ids[a:b], self.enc.sentence[a:b]
        if c.sample > 0:
            kept = subsample(ids, self.keep, rng)
            ids, sent = ids[kept], sent[kept]
        inputs, outputs = skipgram_pairs(ids, sent, c.window, rng)
        if c.objective == "negative":
            targets = np.empty((len(outputs), 1 + c.negative), dtype=np.int64)
            targets[:, 0] = outputs
            targets[:, 1:] = self.sampler.sample(outputs, c.negative, rng.integers(0, 2 ** 63))
        else:
            targets = outputs
        # this thread's own Tensor views of the shared matrices (an op marks them dirty)
        if slot is None:
            W_in_t, W_out_t = Tensor._wrap(self.m.W_in), Tensor._wrap(self.m.W_out)
        else:   # a worker: the matrices with every thread's copies of the frequent rows
            W_in_t, W_out_t = Tensor._wrap(self.hot.full["W_in"]), Tensor._wrap(self.hot.full["W_out"])
            inputs, targets = self.hot.remap(inputs, slot), self.hot.remap(targets, slot)
            # no merge here: this thread's copies were merged at the end of its last chunk, and
            # the periodic merges bring in the other threads' moves (a merge here cost 6% of
            # the 2-thread speed for no measurable quality)
        done0, total = epoch * len(self.enc) + a, len(self.enc) * c.epochs
        P, B = len(inputs), c.batch_size
        steps = []
        for s in range(0, P, B):
            if stop.is_set():
                break
            lr = max(c.lr - (c.lr - c.min_lr) * (done0 + (b - a) * (s / P)) / total, c.min_lr)
            value = self.step(W_in_t, W_out_t, inputs[s:s + B], targets[s:s + B], lr)
            if slot is not None:
                done = (s // B + 1) * B
                if done % self.hot.every < B or s + B >= P:
                    self.hot.merge(slot)   # every `every` pairs and at the chunk's end
                elif done % HOT_MERGE_PAIRS < B:
                    self.hot.merge(slot, HOT_MERGE_ROWS)
            steps.append((value, min(B, P - s), lr))
        return len(ids), P, steps

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
    """Set the kernel thread count of the current backend (numpy_ref only records it)."""
    if n is not None:
        if n < 1:
            raise ValueError(f"--threads must be >= 1, got {n}")
        backend.current().set_num_threads(n)
