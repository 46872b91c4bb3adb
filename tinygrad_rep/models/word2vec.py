"""Word2vec skip-gram on a text corpus, trained through the engine, with its evaluation and CLI.

    from tinygrad_rep.models import word2vec as w2v
    model = w2v.train(tr.data.load_corpus("sotu"), w2v.Word2VecConfig(epochs=5, seed=1))
    model.wv.neighbors("war")                   # [(word, cosine), ...]
    model.wv.analogy("king", "man", "woman")     # king - man + woman -> [("queen", score), ...]
    model.wv.evaluate()                          # analogy accuracy, WordSim-353, SimLex-999

One epoch, as in the original word2vec:
  corpus ids -> frequent-word subsampling (a word w is kept with probability
                (sqrt(f_w / t) + 1) * t / f_w, t = sample * corpus size)
             -> skip-gram pairs with a dynamic window (each position draws its window b from
                1..window; every word within b positions in the same sentence is a context),
                in the original's order
             -> negatives drawn from unigram^0.75 (Walker alias table, backend kernel
                `sample_negatives`); a draw equal to the true word is drawn again
             -> mini-batches of pairs, each one step of one of three trainers:
  "fused" (default)  SGNSPairs with lr > 0: one C kernel call (`sgns_sgd`) runs the original's
                     inner loop over the batch: per pair, loss, gradient and the SGD update of
                     the rows it touched, before the next pair is read. The same op with lr = 0
                     is a pure engine op (gather -> fused loss kernel; backward scatter-adds),
                     and its gradient is what the update applies (both are tested).
  "engine"           the engine's own path: F.embedding gathers of the rows the batch touches
                     (C gather kernel) -> sgns_loss (a Function on the fused forward/backward
                     kernel `sgns_forward_backward`) -> backward -> sparse SGD
                     W[rows] -= lr * grad (C scatter-add kernel; repeated rows add up; no
                     gradient of a whole matrix is formed). Updates are summed over the batch,
                     all taken at the parameters of the batch's start.
  "composed"         as "engine", with F.skipgram_negative_sampling_loss composed from
                     elementary ops in place of the fused loss kernel (what the profile of the
                     engine path started from).
The learning rate decays linearly from `lr` to `min_lr` over all epochs (per batch). All
randomness comes from one numpy Generator seeded with `seed` (the sampling kernel draws from
counter-based streams keyed by seeds it hands out, and the per-pair kernel is sequential), so
a seed gives the same vectors on every run and thread count.

The full-softmax variant (objective="softmax") scores every word of the vocabulary for each
pair (matmul + the fused log-softmax/cross-entropy C kernel): exact, but O(V) per pair, which
is why negative sampling exists; it is meant for small vocabularies.
"""
from __future__ import annotations

import dataclasses
import itertools
import math
import os
import time
from pathlib import Path

import numpy as np

from .. import backend
from .. import functional as F
from .. import ops
from ..autograd import no_grad
from ..data import text
from ..ops.sgns import SGNSLoss, SGNSPairs, sgns_gradients, sgns_loss, sgns_pairs, sparse_sgd_  # noqa: F401
from ..tensor import Tensor
from .report import Progress, atomic_path, note_once, write_json_atomic

KIND = "word2vec"
FORMAT_VERSION = 1
TRAINERS = ("fused", "engine", "composed")

# ----------------------------------------------------------------------------------------------
# configuration


@dataclasses.dataclass
class Word2VecConfig:
    """Hyper-parameters; the defaults are the original word2vec's skip-gram settings.

    dim: vector size; window: largest context distance (each position draws 1..window);
    negative: negatives per pair; min_count: words seen fewer times are dropped; sample:
    subsampling threshold (0 turns it off); epochs; lr -> min_lr: linear decay over all epochs;
    batch_size: pairs per step (the learning rate is constant within a step; None: 8192 for
    the fused trainer, whose steps are exact per-pair SGD anyway, 1024 for the others, whose
    steps sum gradients taken at the step's start); seed;
    objective: "negative" or "softmax"; trainer (negative sampling): "fused" (SGNSPairs: one
    kernel call per batch runs the original's per-pair SGD in place), "engine" (F.embedding
    gathers -> sgns_loss on the fused forward/backward kernel -> backward -> sparse SGD of the
    summed gradients) or "composed" (as "engine", with F.skipgram_negative_sampling_loss built
    from elementary ops); max_vocab: keep only the most frequent words (None: all);
    chunk_words: corpus tokens turned into pairs at once (memory vs overhead).
    """
    dim: int = 100
    window: int = 5
    negative: int = 5
    min_count: int = 5
    sample: float = 1e-3
    epochs: int = 5
    lr: float = 0.025
    min_lr: float = 0.0001
    batch_size: int | None = None
    seed: int = 1
    objective: str = "negative"
    trainer: str = "fused"
    max_vocab: int | None = None
    chunk_words: int = 1 << 18

    def validate(self):
        """Raise ValueError naming the first bad setting; fill in batch_size when it is None."""
        if self.batch_size is None:
            fused = self.objective == "negative" and self.trainer == "fused"
            self.batch_size = 8192 if fused else 1024
        ints = {"dim": 1, "window": 1, "negative": 0, "min_count": 1, "epochs": 0, "batch_size": 1,
                "chunk_words": 1}
        for name, low in ints.items():
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < low:
                raise ValueError(f"word2vec: {name} must be an integer >= {low}, got {v!r}")
        if self.window > 100:
            raise ValueError(f"word2vec: window must be <= 100, got {self.window}")
        if not (0 <= self.sample < 1):
            raise ValueError(f"word2vec: sample must be in [0, 1), got {self.sample}")
        if not (self.lr > 0 and 0 <= self.min_lr <= self.lr):
            raise ValueError(f"word2vec: need lr > 0 and 0 <= min_lr <= lr, got lr={self.lr}, "
                             f"min_lr={self.min_lr}")
        if self.objective not in ("negative", "softmax"):
            raise ValueError(f"word2vec: objective must be 'negative' or 'softmax', got {self.objective!r}")
        if self.objective == "negative" and self.negative < 1:
            raise ValueError("word2vec: negative sampling needs negative >= 1")
        if self.trainer not in TRAINERS:
            raise ValueError(f"word2vec: trainer must be one of {', '.join(TRAINERS)}, got {self.trainer!r}")
        if self.max_vocab is not None and (not isinstance(self.max_vocab, (int, np.integer)) or self.max_vocab < 1):
            raise ValueError(f"word2vec: max_vocab must be None or an integer >= 1, got {self.max_vocab!r}")
        return self


# ----------------------------------------------------------------------------------------------
# vocabulary and the encoded corpus


class Vocab:
    """Words sorted by descending count (ties: first appearance), with their counts.

    words[i] has id i; `index` maps a word to its id.
    """

    def __init__(self, words, counts):
        self.words = list(words)
        self.counts = np.asarray(counts, dtype=np.int64)
        if len(self.words) != len(self.counts):
            raise ValueError(f"Vocab: {len(self.words)} words but {len(self.counts)} counts")
        self.index = {w: i for i, w in enumerate(self.words)}
        if len(self.index) != len(self.words):
            raise ValueError("Vocab: words must be distinct")

    def __len__(self):
        return len(self.words)

    def __contains__(self, word):
        return word in self.index

    @property
    def total(self):
        """Occurrences of vocabulary words in the corpus."""
        return int(self.counts.sum())

    def __repr__(self):
        return f"Vocab({len(self)} words, {self.total} occurrences)"


class EncodedCorpus:
    """The corpus as word ids: `ids` (int32, the in-vocabulary tokens in order), `sentence`
    (int32, the sentence number of each id: windows never cross sentences), `raw_words`
    (tokens read, out-of-vocabulary ones included)."""

    def __init__(self, ids, sentence, raw_words):
        self.ids = np.ascontiguousarray(ids, dtype=np.int32)
        self.sentence = np.ascontiguousarray(sentence, dtype=np.int32)
        if self.ids.shape != self.sentence.shape:
            raise ValueError("EncodedCorpus: ids and sentence must have the same length")
        self.raw_words = int(raw_words)
        # positions where a new sentence starts (chunks of an epoch end there)
        self.starts = np.flatnonzero(np.diff(self.sentence)) + 1 if len(self.ids) else np.zeros(0, np.int64)

    def __len__(self):
        return len(self.ids)


def _blocks(iterable, size):
    it = iter(iterable)
    while True:
        block = list(itertools.islice(it, size))
        if not block:
            return
        yield block


def build_vocab(sentences, min_count=5, max_vocab=None):
    """Count words and encode the corpus in one pass -> (Vocab, EncodedCorpus).

    sentences: an iterable of token lists (a data.Corpus, or lists). Words seen fewer than
    min_count times are dropped (as are all but the max_vocab most frequent, when given); the
    tokens of dropped words are removed before windows are formed, as in the original.
    Work per token happens in C-level builtins (itertools.chain, dict lookups through map,
    numpy), not in a Python loop.
    """
    if min_count < 1:
        raise ValueError(f"build_vocab: min_count must be >= 1, got {min_count}")
    first_id = {}             # word -> id in order of first appearance
    id_parts, len_parts = [], []
    for block in _blocks(sentences, 4096):
        flat = list(itertools.chain.from_iterable(block))
        new = [w for w in dict.fromkeys(flat) if w not in first_id]   # distinct new words only
        first_id.update(zip(new, range(len(first_id), len(first_id) + len(new))))
        id_parts.append(np.fromiter(map(first_id.__getitem__, flat), dtype=np.int64, count=len(flat)))
        len_parts.append(np.fromiter(map(len, block), dtype=np.int64, count=len(block)))
    prov = np.concatenate(id_parts) if id_parts else np.zeros(0, np.int64)
    lengths = np.concatenate(len_parts) if len_parts else np.zeros(0, np.int64)
    counts = np.bincount(prov, minlength=len(first_id))
    order = np.lexsort((np.arange(len(counts)), -counts))        # count desc, then first seen
    order = order[counts[order] >= min_count]
    if max_vocab is not None:
        order = order[:max_vocab]
    words_by_first = np.array(list(first_id), dtype=object) if first_id else np.zeros(0, object)
    vocab = Vocab(words_by_first[order].tolist(), counts[order])
    remap = np.full(len(counts), -1, dtype=np.int64)
    remap[order] = np.arange(len(order))
    ids = remap[prov]
    sentence = np.repeat(np.arange(len(lengths), dtype=np.int64), lengths)
    keep = ids >= 0
    return vocab, EncodedCorpus(ids[keep], sentence[keep], raw_words=len(prov))


def encode(sentences, vocab):
    """Encode token lists with an existing vocabulary -> EncodedCorpus (unknown words dropped)."""
    id_parts, len_parts, raw = [], [], 0
    get = vocab.index.get
    for block in _blocks(sentences, 4096):
        flat = list(itertools.chain.from_iterable(block))
        raw += len(flat)
        id_parts.append(np.fromiter(map(get, flat, itertools.repeat(-1)), dtype=np.int64, count=len(flat)))
        len_parts.append(np.fromiter(map(len, block), dtype=np.int64, count=len(block)))
    ids = np.concatenate(id_parts) if id_parts else np.zeros(0, np.int64)
    lengths = np.concatenate(len_parts) if len_parts else np.zeros(0, np.int64)
    sentence = np.repeat(np.arange(len(lengths), dtype=np.int64), lengths)
    keep = ids >= 0
    return EncodedCorpus(ids[keep], sentence[keep], raw_words=raw)


# ----------------------------------------------------------------------------------------------
# samplers


def keep_probabilities(counts, sample):
    """Probability that one occurrence of each word survives subsampling (the original's rule):
    min(1, (sqrt(c / t) + 1) * t / c) with t = sample * sum(counts); all ones when sample == 0."""
    counts = np.asarray(counts, dtype=np.float64)
    if sample <= 0 or not len(counts):
        return np.ones(len(counts))
    t = sample * counts.sum()
    with np.errstate(divide="ignore"):
        p = (np.sqrt(counts / t) + 1) * t / counts
    return np.minimum(p, 1.0)


def alias_table(weights):
    """Walker's alias table for drawing i with probability weights[i] / sum(weights).

    Returns (prob float64 (V,), alias int64 (V,)): pick a bucket i uniformly, return i with
    probability prob[i], else alias[i]. Built exactly as Vose's sequential algorithm would
    (small buckets in order, each topped up by the current large one; an exhausted large
    bucket becomes a small one topped up by the next), but with cumulative sums instead of a
    loop over words: small bucket i takes its deficit from the large bucket whose cumulative
    excess first exceeds the deficit accumulated before i.
    """
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim != 1 or not len(w) or np.any(w < 0) or not np.isfinite(w).all() or w.sum() <= 0:
        raise ValueError("alias_table: weights must be a non-empty 1-D array of finite values >= 0 "
                         "with a positive sum")
    V = len(w)
    q = w * (V / w.sum())
    prob = np.ones(V)
    alias = np.arange(V, dtype=np.int64)
    small = np.flatnonzero(q < 1.0)
    large = np.flatnonzero(q >= 1.0)
    if not len(small) or not len(large):
        return prob, alias
    deficit = np.cumsum(1.0 - q[small])            # CS_i
    excess = np.cumsum(q[large] - 1.0)             # CE_j
    before = np.concatenate(([0.0], deficit[:-1]))  # CS_{i-1}
    j = np.minimum(np.searchsorted(excess, before, side="right"), len(large) - 1)
    prob[small] = q[small]
    alias[small] = large[j]
    # a large bucket j (not the last) runs out when the cumulative deficit first passes CE_j;
    # its own shortfall, deficit-at-that-point - CE_j, is filled by large bucket j + 1
    if len(large) > 1:
        cross = np.searchsorted(deficit, excess[:-1], side="right")
        ran_out = cross < len(deficit)
        jj = np.flatnonzero(ran_out)
        short = deficit[cross[jj]] - excess[jj]
        prob[large[jj]] = np.clip(1.0 - short, 0.0, 1.0)
        alias[large[jj]] = large[jj + 1]
    return prob, alias


def alias_probabilities(prob, alias):
    """The distribution an alias table draws from (for tests): p[w] = (prob[w] + sum over
    buckets b aliased to w of (1 - prob[b])) / V."""
    V = len(prob)
    return (prob + np.bincount(alias, weights=1.0 - prob, minlength=V)) / V


class UnigramSampler:
    """Negative sampler: word w with probability proportional to count_w ** power (0.75)."""

    def __init__(self, counts, power=0.75):
        counts = np.asarray(counts, dtype=np.float64)
        self.probs = counts ** power
        self.probs /= self.probs.sum()
        self.prob, self.alias = alias_table(self.probs)

    def sample(self, avoid, k, seed):
        """(len(avoid), k) int64 word ids; row r never draws avoid[r] unless nothing else can
        be drawn (see the backend's sample_negatives for the exact stream)."""
        return backend.current().sample_negatives(self.prob, self.alias, np.asarray(avoid, np.int64),
                                                  int(k), int(seed))


def subsample(ids, keep_prob, rng):
    """Boolean mask of the tokens that survive subsampling (token i kept w.p. keep_prob[ids[i]])."""
    return rng.random(len(ids), dtype=np.float32) < keep_prob.astype(np.float32)[ids]


def skipgram_pairs(ids, sentence, window, rng):
    """Skip-gram (input, output) word-id pairs of a token sequence, with a dynamic window.

    Each position i draws b_i uniformly from 1..window; for every j with 0 < |i - j| <= b_i in
    the same sentence, (ids[j], ids[i]) is a pair: the context word j is the input whose
    vector is trained to predict the word i, as in the original's skip-gram loop. Pairs come
    in the original's order (i ascending, then j from left to right), computed for all
    positions at once from an (n, 2 * window) mask. Returns two int64 arrays.
    """
    ids = np.asarray(ids)
    sentence = np.asarray(sentence)
    n = len(ids)
    b = rng.integers(1, window + 1, size=n, dtype=np.int16)
    offsets = np.concatenate((np.arange(-window, 0), np.arange(1, window + 1)))
    j = np.arange(n)[:, None] + offsets[None, :]                     # (n, 2 * window)
    valid = (np.abs(offsets)[None, :] <= b[:, None]) & (j >= 0) & (j < n)
    valid &= sentence[np.clip(j, 0, max(n - 1, 0))] == sentence[:, None]
    i, slot = np.nonzero(valid)                                       # row-major: i, then j
    return (ids[i + offsets[slot]].astype(np.int64, copy=False),
            ids[i].astype(np.int64, copy=False))


# ----------------------------------------------------------------------------------------------
# word vectors: lookup, neighbours, analogies, evaluation, vectors.txt


class WordVectors:
    """Word vectors (one row per word) with cosine neighbours, 3CosAdd analogies and evaluation."""

    def __init__(self, words, vectors):
        self.words = list(words)
        self.vectors = np.asarray(vectors)
        if self.vectors.ndim != 2 or len(self.words) != self.vectors.shape[0]:
            raise ValueError(f"WordVectors: {len(self.words)} words but vectors of shape {self.vectors.shape}")
        self.index = {w: i for i, w in enumerate(self.words)}
        self._unit = None

    def __len__(self):
        return len(self.words)

    def __contains__(self, word):
        return word in self.index

    def __getitem__(self, word):
        return self.vectors[self._id(word)]

    @property
    def dim(self):
        return self.vectors.shape[1]

    @property
    def unit(self):
        """Rows scaled to unit length (zero rows stay zero), float32."""
        if self._unit is None:
            v = self.vectors.astype(np.float32)
            n = np.linalg.norm(v, axis=1, keepdims=True)
            self._unit = v / np.where(n > 0, n, 1)
        return self._unit

    def _id(self, word):
        try:
            return self.index[word]
        except KeyError:
            raise KeyError(f"word {word!r} is not in the vocabulary ({len(self)} words)") from None

    def similarity(self, w1, w2):
        """Cosine similarity of two words."""
        return float(self.unit[self._id(w1)] @ self.unit[self._id(w2)])

    def _top(self, query, k, exclude):
        scores = self.unit @ query
        scores[list(exclude)] = -np.inf
        k = min(k, len(scores) - len(set(exclude)))
        if k <= 0:
            return []
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top], kind="stable")]
        return [(self.words[i], float(scores[i])) for i in top]

    def neighbors(self, word, k=10):
        """The k words closest to `word` by cosine similarity (the word itself excluded)."""
        i = self._id(word)
        return self._top(self.unit[i], k, {i})

    def analogy(self, a, b, c, k=1):
        """3CosAdd: the words closest to a - b + c (unit vectors), a, b, c excluded.

        analogy("king", "man", "woman") -> queen; analogy("paris", "france", "italy") -> rome.
        """
        ia, ib, ic = self._id(a), self._id(b), self._id(c)
        u = self.unit
        return self._top(u[ia] - u[ib] + u[ic], k, {ia, ib, ic})

    def evaluate_analogies(self, questions=None, batch=512):
        """Google analogy accuracy by 3CosAdd over the questions whose four words are known.

        questions: (section, a, b, c, d) tuples ("a is to b as c is to d"; d should be the
        nearest word to b - a + c); default: data.load_analogies(). Returns accuracy overall,
        for the semantic and syntactic ("gram*") sections and per section, with coverage.
        """
        if questions is None:
            questions = text.load_analogies()
        known = [q for q in questions if all(w in self.index for w in q[1:])]
        per = {}
        for q in questions:
            per.setdefault(q[0], [0, 0, 0])[2] += 1
        correct = np.zeros(len(known), dtype=bool)
        if known:
            ids = np.array([[self.index[w] for w in q[1:]] for q in known], dtype=np.int64)
            u = self.unit
            for s in range(0, len(known), batch):
                a, b, c, d = ids[s:s + batch].T
                scores = (u[b] - u[a] + u[c]) @ u.T
                rows = np.arange(len(a))
                for col in (a, b, c):
                    scores[rows, col] = -np.inf
                correct[s:s + batch] = scores.argmax(axis=1) == d
        for q, ok in zip(known, correct):
            per[q[0]][0] += int(ok)
            per[q[0]][1] += 1

        def summary(names):
            ok = sum(per[n][0] for n in names)
            seen = sum(per[n][1] for n in names)
            total = sum(per[n][2] for n in names)
            return {"accuracy": ok / seen if seen else None, "correct": ok, "covered": seen,
                    "total": total, "coverage": seen / total if total else None}

        sections = list(per)
        syn = [s for s in sections if s.startswith("gram")]
        sem = [s for s in sections if not s.startswith("gram")]
        out = summary(sections)
        out["semantic"] = summary(sem)
        out["syntactic"] = summary(syn)
        out["sections"] = {s: summary([s]) for s in sections}
        return out

    def evaluate_similarity(self, pairs="wordsim353"):
        """Spearman correlation between cosine similarity and human scores, over the pairs
        whose two words are known. pairs: a set name ("wordsim353", "simlex999"), a path, or
        (w1, w2, score) tuples. Returns spearman, covered, total, coverage."""
        if isinstance(pairs, (str, os.PathLike)):
            pairs = text.load_similarity(pairs)
        known = [p for p in pairs if p[0] in self.index and p[1] in self.index]
        rho = None
        if len(known) >= 2:
            i = np.array([self.index[p[0]] for p in known])
            j = np.array([self.index[p[1]] for p in known])
            cos = np.einsum("nd,nd->n", self.unit[i], self.unit[j])
            rho = spearman(cos, np.array([p[2] for p in known]))
        return {"spearman": rho, "covered": len(known), "total": len(pairs),
                "coverage": len(known) / len(pairs) if pairs else None}

    def evaluate(self):
        """Analogies, WordSim-353 and SimLex-999 in one dict."""
        return {"analogy": self.evaluate_analogies(),
                "wordsim353": self.evaluate_similarity("wordsim353"),
                "simlex999": self.evaluate_similarity("simlex999")}

    def save(self, path):
        """Write vectors.txt (standard word2vec text format) atomically."""
        write_vectors(path, self.words, self.vectors)

    @classmethod
    def load(cls, path):
        """Read a word2vec text-format file."""
        return cls(*read_vectors(path))


def rankdata(x):
    """Ranks 1..n of x, ties given the average of the ranks they span."""
    x = np.asarray(x, dtype=np.float64)
    n = len(x)
    order = np.argsort(x, kind="mergesort")
    xs = x[order]
    new_group = np.concatenate(([True], xs[1:] != xs[:-1])) if n else np.zeros(0, bool)
    group = np.cumsum(new_group) - 1
    starts = np.flatnonzero(new_group)
    ends = np.concatenate((starts[1:], [n]))
    avg = (starts + ends + 1) / 2.0                 # mean of ranks start+1 .. end
    ranks = np.empty(n)
    ranks[order] = avg[group]
    return ranks


def spearman(x, y):
    """Spearman's rank correlation: Pearson's r of the tie-averaged ranks (nan if a side is constant)."""
    x, y = np.asarray(x), np.asarray(y)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"spearman: need two 1-D arrays of the same length, got {x.shape} and {y.shape}")
    rx, ry = rankdata(x), rankdata(y)
    rx -= rx.mean()
    ry -= ry.mean()
    den = math.sqrt(float(rx @ rx) * float(ry @ ry))
    return float(rx @ ry / den) if den > 0 else math.nan


def _atomic_text(path, write):
    """Call write(f) on a text file that replaces `path` only once complete (atomic rename)."""
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8", newline="\n") as f:
            write(f)


def write_vectors(path, words, vectors):
    """Write the standard word2vec text format: "count dim", then "word v1 ... vdim" per line.

    Values are written with 9 significant digits, so float32 vectors read back exactly.
    Written to a temporary file and renamed: a reader never sees half a file.
    """
    vectors = np.asarray(vectors)
    if vectors.ndim != 2 or len(words) != vectors.shape[0]:
        raise ValueError(f"write_vectors: {len(words)} words but vectors of shape {vectors.shape}")
    for w in words:
        if not w or any(ch.isspace() for ch in w):
            raise ValueError(f"write_vectors: word {w!r} is empty or contains whitespace")
    fmt = " ".join(["%.9g"] * vectors.shape[1])

    def write(f):
        f.write(f"{vectors.shape[0]} {vectors.shape[1]}\n")
        for s in range(0, len(words), 4096):
            rows = vectors[s:s + 4096].astype(np.float64).tolist()
            f.write("".join(f"{w} {fmt % tuple(r)}\n" for w, r in zip(words[s:s + 4096], rows)))

    _atomic_text(path, write)


def read_vectors(path):
    """Read a word2vec text-format file -> (words, float32 array (count, dim)).

    Raises ValueError naming the file and line when the header or a row is malformed.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no vectors file at {path}")
    with open(path, encoding="utf-8", errors="strict") as f:
        header = f.readline().split()
        if len(header) != 2 or not all(h.isdigit() for h in header):
            raise ValueError(f"{path}:1: expected the header 'count dim', got {' '.join(header)!r}")
        count, dim = int(header[0]), int(header[1])
        words, values = [], []
        for lineno, line in enumerate(f, 2):
            parts = line.rstrip("\n").rstrip(" ").split(" ")
            if line.strip() == "":
                continue
            if len(parts) != dim + 1:
                raise ValueError(f"{path}:{lineno}: expected a word and {dim} numbers, got {len(parts) - 1} fields")
            words.append(parts[0])
            values.append(parts[1:])
    if len(words) != count:
        raise ValueError(f"{path}: the header says {count} words but the file has {len(words)}")
    try:
        vectors = np.array(values, dtype=np.float32).reshape(count, dim)
    except ValueError as e:
        raise ValueError(f"{path}: a vector holds something that is not a number ({e})") from None
    return words, vectors


# ----------------------------------------------------------------------------------------------
# the model and its training


class Word2Vec:
    """A trained (or training) skip-gram model: vocabulary, input vectors W_in (the word
    vectors) and output vectors W_out, plus the settings and the training record."""

    def __init__(self, vocab, config, W_in=None, W_out=None, rng=None):
        self.vocab, self.config = vocab, config
        V, d = len(vocab), config.dim
        if W_in is None:
            rng = rng if rng is not None else np.random.default_rng(config.seed)
            # the original's initialisation: input rows uniform in [-0.5, 0.5) / dim, outputs zero
            W_in = ((rng.random((V, d), dtype=np.float32) - 0.5) / d).astype(np.float32)
        if W_out is None:
            W_out = np.zeros((V, d), dtype=np.float32)
        self.W_in = np.ascontiguousarray(W_in)
        self.W_out = np.ascontiguousarray(W_out)
        self.history = []  # (epoch, words done, mean loss since the last record, lr)
        self.stats = {}

    @property
    def wv(self):
        """The word vectors (rows of W_in) as WordVectors."""
        return WordVectors(self.vocab.words, self.W_in)

    def encode(self, words):
        """Vectors of a list of words -> (n, dim) float32 (KeyError for unknown words)."""
        return self.W_in[[self.vocab.index[w] if w in self.vocab.index else _unknown(w) for w in words]]

    def neighbors(self, word, k=10):
        """The k nearest words by cosine (see WordVectors.neighbors)."""
        return self.wv.neighbors(word, k)

    def analogy(self, a, b, c, k=1):
        """3CosAdd: the words nearest to a - b + c (see WordVectors.analogy)."""
        return self.wv.analogy(a, b, c, k)

    def evaluate(self):
        """Analogy accuracy, WordSim-353 and SimLex-999 Spearman (see WordVectors.evaluate)."""
        return self.wv.evaluate()

    def save(self, folder):
        """Write weights.npz (W_in, W_out), vocab.txt ("word count" lines), vectors.txt and, last,
        model.json (kind "word2vec"): the folder tr.models.load reads back."""
        from . import save_model
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        _atomic_text(folder / "vocab.txt", lambda f: f.write("".join(
            f"{w} {c}\n" for w, c in zip(self.vocab.words, self.vocab.counts.tolist()))))
        write_vectors(folder / "vectors.txt", self.vocab.words, self.W_in)
        save_model(folder, KIND, dataclasses.asdict(self.config), {"W_in": self.W_in, "W_out": self.W_out},
                   format=FORMAT_VERSION, vocab="vocab.txt", vectors="vectors.txt",
                   vocab_size=len(self.vocab), dim=self.config.dim)
        return folder


def _unknown(word):
    raise KeyError(f"word {word!r} is not in the vocabulary")


def load_model(folder):
    """Load a model written by `Word2Vec.save` / `train word2vec` -> Word2Vec (what
    tr.models.load returns for kind "word2vec")."""
    from . import read_meta
    from ..serialization import load as load_arrays
    folder = Path(folder)
    meta = read_meta(folder)
    if meta.get("kind") != KIND:
        raise ValueError(f"{folder / 'model.json'}: kind is {meta.get('kind')!r}, not {KIND!r}")
    fields = {f.name for f in dataclasses.fields(Word2VecConfig)}
    config = Word2VecConfig(**{k: v for k, v in meta.get("config", {}).items() if k in fields})
    words, counts = [], []
    vocab_path = folder / meta.get("vocab", "vocab.txt")
    with open(vocab_path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            parts = line.split()
            if len(parts) != 2 or not parts[1].isdigit():
                raise ValueError(f"{vocab_path}:{lineno}: expected 'word count', got {line.rstrip()!r}")
            words.append(parts[0])
            counts.append(int(parts[1]))
    arrays = load_arrays(folder / meta.get("weights", "weights.npz"))
    for key in ("W_in", "W_out"):
        if key not in arrays or arrays[key].shape != (len(words), config.dim):
            raise ValueError(f"{folder}: weights.npz has no {key} of shape ({len(words)}, {config.dim})")
    return Word2Vec(Vocab(words, counts), config, W_in=arrays["W_in"], W_out=arrays["W_out"])


def train(corpus, config=None, progress=False):
    """Train skip-gram word vectors on `corpus` -> Word2Vec (with .stats: times, words/s, loss).

    corpus: an iterable of token lists (data.Corpus, lists) or a (Vocab, EncodedCorpus) pair
    from build_vocab. progress: show a progress bar (words/s, loss) on stderr.
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
    trained = _Trainer(model, enc, rng).run(progress)
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

    def run(self, progress):
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
        chunks = self._chunks()
        W_in_t, W_out_t = Tensor._wrap(m.W_in), Tensor._wrap(m.W_out)
        for epoch in range(c.epochs):
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
                    loss_sum += step(W_in_t, W_out_t, inputs[s:s + B], targets[s:s + B], lr)
                    loss_n += min(B, P - s)
                if loss_n:
                    last = loss_sum / loss_n
                done = round((epoch * n + b) * raw_per_token)
                bar.update(done - shown, epoch=f"{epoch + 1}/{c.epochs}", loss=last, lr=lr,
                           words_per_s=f"{done / max(time.perf_counter() - t0, 1e-9) / 1e3:.0f}k")
                shown = done
                if loss_n >= 1_000_000 or (epoch == c.epochs - 1 and b == n):
                    m.history.append((epoch + 1, epoch * n + b, last, lr))
                    loss_sum, loss_n = 0.0, 0
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


# ----------------------------------------------------------------------------------------------
# plot: 2-D PCA of chosen word groups

WORD_GROUPS = {
    "countries and capitals": [("france", "paris"), ("italy", "rome"), ("germany", "berlin"),
                               ("spain", "madrid"), ("russia", "moscow"), ("japan", "tokyo"),
                               ("china", "beijing"), ("england", "london"), ("egypt", "cairo"),
                               ("greece", "athens")],
    "gender pairs": [("king", "queen"), ("man", "woman"), ("he", "she"), ("father", "mother"),
                     ("son", "daughter"), ("brother", "sister"), ("boy", "girl"),
                     ("husband", "wife"), ("his", "her"), ("men", "women")],
    "verb tenses": [("go", "went"), ("take", "took"), ("see", "saw"), ("make", "made"),
                    ("give", "gave"), ("come", "came"), ("know", "knew"), ("write", "wrote"),
                    ("speak", "spoke"), ("find", "found")],
}


def pca_2d(x):
    """Rows of x projected on their first two principal components (centered)."""
    x = np.asarray(x, dtype=np.float64)
    x = x - x.mean(axis=0)
    if len(x) < 2:
        return np.zeros((len(x), 2))
    _, _, vt = np.linalg.svd(x, full_matrices=False)
    out = x @ vt[:2].T
    return np.pad(out, ((0, 0), (0, 2 - out.shape[1])))


def plot_word_groups(wv, path, groups=None, title=None):
    """A PNG with one panel per word group: a 2-D PCA of the group's (unit) vectors, each pair
    joined by an arrow (first -> second word). Pairs with an unknown word are left out.
    Returns the number of pairs drawn, or None when matplotlib is not installed."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        note_once("note: matplotlib is not installed; the word-group plot is skipped (pip install matplotlib)")
        return None
    groups = WORD_GROUPS if groups is None else groups
    fig, axes = plt.subplots(1, len(groups), figsize=(5.5 * len(groups), 5.2), squeeze=False)
    drawn = 0
    for ax, (name, pairs) in zip(axes[0], groups.items()):
        pairs = [p for p in pairs if p[0] in wv and p[1] in wv]
        ax.set_title(f"{name} ({len(pairs)} pairs)")
        ax.set_xticks([])
        ax.set_yticks([])
        if not pairs:
            ax.text(0.5, 0.5, "no pair in the vocabulary", ha="center", va="center", transform=ax.transAxes)
            continue
        words = [w for p in pairs for w in p]
        xy = pca_2d(wv.unit[[wv.index[w] for w in words]])
        ax.scatter(xy[0::2, 0], xy[0::2, 1], c="tab:blue", s=18, label="first")
        ax.scatter(xy[1::2, 0], xy[1::2, 1], c="tab:red", s=18, label="second")
        for k in range(len(pairs)):
            a, b = xy[2 * k], xy[2 * k + 1]
            ax.annotate("", xy=b, xytext=a, arrowprops=dict(arrowstyle="->", color="0.6", lw=0.8))
        for w, (x, y) in zip(words, xy):
            ax.annotate(w, (x, y), fontsize=8, xytext=(3, 3), textcoords="offset points")
        drawn += len(pairs)
    fig.suptitle(title or "word vectors: 2-D PCA of word groups")
    fig.tight_layout()
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=110, format="png")
    finally:
        plt.close(fig)
    return drawn


# ----------------------------------------------------------------------------------------------
# command line: tinygrad-rep train word2vec ...


def add_arguments(parser):
    """Options of `tinygrad-rep train word2vec`."""
    d = Word2VecConfig()
    parser.add_argument("--corpus", default="sotu", help="a text file, or 'sotu' / 'prose' from the data "
                        "cache (one sentence per line; default: sotu)")
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
    parser.add_argument("--trainer", choices=TRAINERS, default=d.trainer,
                        help="fused: the per-pair SGD kernel (default); engine: gather -> fused loss "
                        "-> backward -> sparse SGD; composed: as engine, loss from elementary ops")
    parser.add_argument("--max-vocab", type=int, default=None, help="keep only the most frequent words")
    parser.add_argument("--max-words", type=int, default=None, help="read only this many tokens of the corpus")
    parser.add_argument("--threads", type=int, default=None,
                        help="kernel threads (default: TINYGRAD_REP_NUM_THREADS or all cores)")
    parser.add_argument("--no-eval", action="store_true", help="skip the analogy / similarity evaluation")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--out", default="runs/word2vec", help="output folder (default runs/word2vec)")


def set_threads(n):
    """Set the kernel thread count of the current backend (the numpy backend has none)."""
    if n is not None:
        if n < 1:
            raise ValueError(f"--threads must be >= 1, got {n}")
        setter = getattr(backend.current(), "set_num_threads", None)
        if setter is not None:
            setter(n)


def metrics_record(model, evaluation, extra=None):
    """The metrics.json dict: speed, sizes, losses, evaluation (headline numbers at top level)."""
    s = model.stats
    rec = {"model": KIND, "config": dataclasses.asdict(model.config)}
    rec.update({k: s[k] for k in ("seconds", "train_seconds", "vocab_seconds", "words_per_second",
                                  "effective_words_per_second", "vocab_size", "raw_words",
                                  "corpus_words", "trained_words", "pairs", "final_loss") if k in s})
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


def _fmt(x, spec=".3f"):
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, spec)


def run(args):
    """`tinygrad-rep train word2vec`: train, then write vectors.txt, the model, metrics.json and
    the PCA plot into --out, and print a summary."""
    config = Word2VecConfig(dim=args.dim, window=args.window, negative=args.negative,
                            min_count=args.min_count, sample=args.sample, epochs=args.epochs,
                            lr=args.lr, min_lr=args.min_lr, batch_size=args.batch_size, seed=args.seed,
                            objective=args.objective, trainer=args.trainer, max_vocab=args.max_vocab).validate()
    set_threads(args.threads)
    out = Path(args.out)
    t0 = time.perf_counter()
    corpus = text.load_corpus(args.corpus, max_words=args.max_words)
    print(f"word2vec: {config.objective} skip-gram on {corpus.path} (dim {config.dim}, window "
          f"{config.window}, negative {config.negative}, min_count {config.min_count}, sample "
          f"{config.sample}, {config.epochs} epochs, batch {config.batch_size}, seed {config.seed}; "
          f"backend {backend.get_backend()})", flush=True)
    vocab, enc = build_vocab(corpus, config.min_count, config.max_vocab)
    t_read = time.perf_counter() - t0
    print(f"  read {enc.raw_words:,} words in {t_read:.1f} s; vocabulary {len(vocab):,} words "
          f"(min_count {config.min_count}), {len(enc):,} tokens kept", flush=True)
    if config.objective == "softmax" and len(vocab) > 20_000:
        print(f"  note: the full softmax costs O(vocabulary) per pair; with {len(vocab):,} words "
              "consider --max-vocab or negative sampling", flush=True)
    model = train((vocab, enc), config, progress=not args.quiet)
    seconds = time.perf_counter() - t0
    model.stats["vocab_seconds"] += t_read
    model.stats["seconds"] = seconds
    model.save(out)
    evaluation = None if args.no_eval else model.wv.evaluate()
    plot = out / "word_groups_pca.png"
    drawn = plot_word_groups(model.wv, plot, title=f"word2vec on {Path(str(corpus.path)).name}: "
                             "2-D PCA of word groups")
    rec = metrics_record(model, evaluation, {"corpus": str(corpus.path),
                                             "plot": plot.name if drawn is not None else None})
    write_json_atomic(out / "metrics.json", rec)
    print(f"  trained in {model.stats['train_seconds']:.1f} s: {rec['words_per_second'] / 1e3:.1f}k words/s "
          f"({rec['effective_words_per_second'] / 1e3:.1f}k after subsampling), final loss "
          f"{_fmt(rec['final_loss'])}; whole run {seconds:.1f} s")
    if evaluation is not None:
        an = rec["analogy"]
        print(f"  analogy accuracy {_fmt(an['accuracy'])} (semantic {_fmt(an['semantic'])}, syntactic "
              f"{_fmt(an['syntactic'])}) on {an['covered']}/{an['total']} questions "
              f"({_fmt(an['coverage'], '.1%')} covered)")
        print(f"  WordSim-353 Spearman {_fmt(rec['wordsim353'])} ({_fmt(rec['wordsim353_coverage'], '.1%')} "
              f"of pairs covered); SimLex-999 {_fmt(rec['simlex999'])} "
              f"({_fmt(rec['simlex999_coverage'], '.1%')})")
    print(f"  wrote {out}/: vectors.txt, model.json, vocab.txt, weights.npz, metrics.json"
          + (f", {plot.name}" if drawn is not None else ""))
    return 0
