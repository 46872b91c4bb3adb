"""What word2vec draws at random: subsampling of frequent words, skip-gram pairs with a dynamic
window, and negatives from unigram^0.75 through a Walker alias table.

UnigramSampler calls the backend's `sample_negatives` kernel directly: it is a sampling kernel,
not a differentiable op, so there is no Function for it to live in (a deliberate exception to
"only ops/ touches a backend", written down in DESIGN.md).
"""
import numpy as np

from ... import backend


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
