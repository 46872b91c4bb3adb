"""Activations and losses built from Tensor ops (import as F).

Every Tensor argument receives its gradient, float targets included. Definitions follow the
usual conventions exactly (see each docstring) so results compare one-to-one with other
libraries. All losses return the mean over the batch.
"""
import numpy as np

from . import ops
from .tensor import Tensor, concat

_max_reduce = np.maximum.reduce


def _t(x, name):
    if isinstance(x, Tensor):
        return x
    if isinstance(x, (np.ndarray, list, float, int, np.generic)):
        return Tensor(x)
    raise TypeError(f"{name}: expected a Tensor or an array, got {type(x).__name__}")


def _same_shape(fn, a, an, b, bn):
    if a.shape != b.shape:
        raise ValueError(f"{fn}: {an} has shape {a.shape} but {bn} has shape {b.shape}")


def _int_indices(x, name, upper):
    """An integer index array with every entry in [0, upper), else IndexError/TypeError."""
    arr = x._data if isinstance(x, Tensor) else np.asarray(x)
    if arr.dtype.kind not in "iu":
        raise TypeError(f"{name} must be integers, got dtype {arr.dtype}")
    idx = arr.astype(np.int64, copy=False)
    # one reduction checks both ends: seen as unsigned, a negative index is larger than any upper
    if idx.size and _max_reduce(idx.view(np.uint64), axis=None) >= upper:
        bad = arr.min() if arr.min() < 0 else arr.max()
        raise IndexError(f"{name} contains {bad}, out of range [0, {upper})")
    return idx


def relu(x):
    """max(x, 0) elementwise (C kernel), as Tensor.relu."""
    return (x if isinstance(x, Tensor) else _t(x, "relu")).relu()


def sigmoid(x):
    """1 / (1 + exp(-x)), as Tensor.sigmoid."""
    return _t(x, "sigmoid").sigmoid()


def logsigmoid(x):
    """log(sigmoid(x)) = -log(1 + exp(-x)), finite for any finite x."""
    return _t(x, "logsigmoid").logsigmoid()


def softmax(x, axis=-1):
    """exp(x) / sum(exp(x)) along `axis` (C kernel for the last axis), as Tensor.softmax."""
    return _t(x, "softmax").softmax(axis)


def log_softmax(x, axis=-1):
    """x - logsumexp(x) along `axis` (C kernel), as Tensor.log_softmax."""
    return _t(x, "log_softmax").log_softmax(axis)


def normalize(x, axis=-1, eps=1e-12):
    """x / max(||x||_2, eps) along axis."""
    x = _t(x, "normalize")
    return x / x.norm(axis=axis, keepdims=True).clamp(lo=eps)


def cosine_similarity(a, b, axis=-1, eps=1e-8):
    """sum(a * b) / max(||a|| * ||b||, eps) along axis (a and b broadcast)."""
    a, b = _t(a, "cosine_similarity"), _t(b, "cosine_similarity")
    denom = (a.norm(axis=axis, keepdims=True) * b.norm(axis=axis, keepdims=True)).clamp(lo=eps)
    return ((a * b) / denom).sum(axis=axis)


def mse_loss(input, target):
    """mean((input - target)^2); both receive gradients."""
    input, target = _t(input, "mse_loss"), _t(target, "mse_loss")
    _same_shape("mse_loss", input, "input", target, "target")
    if input.dtype.kind == "f" and target.dtype == input.dtype:
        return ops.MSELoss.apply(input, target)  # fused: same values, one op instead of four
    d = input - target
    return (d * d).mean()


def binary_cross_entropy_with_logits(logits, target):
    """mean(-t log sigmoid(x) - (1 - t) log sigmoid(-x)), stable for any logits;
    the target receives a gradient too (d/dt = -x / n)."""
    logits, target = _t(logits, "binary_cross_entropy_with_logits"), _t(target, "binary_cross_entropy_with_logits")
    _same_shape("binary_cross_entropy_with_logits", logits, "logits", target, "target")
    return -(target * logits.logsigmoid() + (1 - target) * (-logits).logsigmoid()).mean()


def cross_entropy(logits, targets):
    """mean over rows of -log softmax(logits)[row, target]: logits (B, C), integer targets (B,).

    Runs the fused log-softmax + NLL kernel. A target outside [0, C) raises IndexError.
    """
    logits = logits if isinstance(logits, Tensor) else _t(logits, "cross_entropy")
    shape = logits._data.shape
    if len(shape) != 2:
        raise ValueError(f"cross_entropy: logits must be 2-D (batch, classes), got shape {logits.shape}")
    if logits._data.dtype.kind != "f":
        logits._float("cross_entropy")
    t = targets._data if isinstance(targets, Tensor) else np.asarray(targets)
    if t.dtype.kind not in "iu":
        raise TypeError(f"cross_entropy: targets must be integers, got dtype {t.dtype}")
    if t.shape != shape[:1]:
        raise ValueError(f"cross_entropy: targets must have shape ({shape[0]},), got {t.shape}")
    t = t.astype(np.int64, copy=False)
    try:  # forward keeps a contiguous copy of t
        return ops.CrossEntropy.apply(logits, targets=t)
    except IndexError:
        # the kernel's binding checks the range as it runs (no extra pass over the targets in
        # the common case); say which target, in this function's words
        _int_indices(t, "cross_entropy: targets", shape[1])
        raise


def embedding(weight, indices):
    """weight[indices] for a (V, d) weight and integer indices of any shape -> indices.shape + (d,).

    Repeated indices accumulate gradient; an index outside [0, V) raises IndexError.
    """
    weight = _t(weight, "embedding")
    if weight.ndim != 2:
        raise ValueError(f"embedding: weight must be 2-D (num_embeddings, dim), got shape {weight.shape}")
    weight._float("embedding")
    idx = _int_indices(indices, "embedding: indices", weight.shape[0])
    # reshape back: np.ascontiguousarray turns a 0-d index into shape (1,)
    return ops.Gather.apply(weight, indices=np.ascontiguousarray(idx).reshape(idx.shape))


def _rows(x, name, fn):
    x = _t(x, fn)
    if x.ndim != 2:
        raise ValueError(f"{fn}: {name} must be 2-D (batch, dim), got shape {x.shape}")
    x._float(fn)
    return x


def nt_xent_loss(z1, z2, temperature=0.5):
    """SimCLR's normalized-temperature cross-entropy over 2N anchors.

    z = concat(z1, z2) (2N x d), rows L2-normalized; s = z z^T / temperature; for anchor i the
    positive is i + N (or i - N); loss_i = -s[i, pos] + logsumexp over j != i of s[i, j];
    returns the mean over the 2N anchors. The self-pair is excluded by setting its logit to
    -inf, so it receives exactly zero gradient.
    """
    z1, z2 = _rows(z1, "z1", "nt_xent_loss"), _rows(z2, "z2", "nt_xent_loss")
    _same_shape("nt_xent_loss", z1, "z1", z2, "z2")
    if temperature <= 0:
        raise ValueError(f"nt_xent_loss: temperature must be positive, got {temperature}")
    n = z1.shape[0]
    z = normalize(concat([z1, z2], axis=0), axis=1)
    # s = (z @ z.T) * (1 / temperature) with -inf on the diagonal, as one node (ops.SelfMaskedGram)
    s = ops.SelfMaskedGram.apply(z, Tensor._wrap(np.array(-np.inf, dtype=z.dtype)), scale=1.0 / temperature)
    targets = np.concatenate([np.arange(n, 2 * n), np.arange(0, n)])
    return cross_entropy(s, targets)


def info_nce_loss(query, positive, negatives=None, temperature=0.1):
    """InfoNCE with L2-normalized rows.

    Without negatives: logits = q p^T / temperature, row i's target is i (the other rows'
    positives are the negatives). With negatives (M x d): row i's logits are
    [q_i . p_i, q_i . n_1, ..., q_i . n_M] / temperature with target 0. Mean over rows.
    """
    q, p = _rows(query, "query", "info_nce_loss"), _rows(positive, "positive", "info_nce_loss")
    _same_shape("info_nce_loss", q, "query", p, "positive")
    if temperature <= 0:
        raise ValueError(f"info_nce_loss: temperature must be positive, got {temperature}")
    q, p = normalize(q, axis=1), normalize(p, axis=1)
    if negatives is None:
        logits = (q @ p.T) * (1.0 / temperature)
        return cross_entropy(logits, np.arange(q.shape[0]))
    n = _rows(negatives, "negatives", "info_nce_loss")
    if n.shape[1] != q.shape[1]:
        raise ValueError(f"info_nce_loss: negatives have dim {n.shape[1]} but query has dim {q.shape[1]}")
    n = normalize(n, axis=1)
    pos = (q * p).sum(axis=1, keepdims=True)
    logits = concat([pos, q @ n.T], axis=1) * (1.0 / temperature)
    return cross_entropy(logits, np.zeros(q.shape[0], dtype=np.int64))


def triplet_margin_loss(anchor, positive, negative, margin=1.0):
    """mean(max(||a - p||_2 - ||a - n||_2 + margin, 0)) over rows (the last axis is the vector)."""
    a, p, n = (_t(x, "triplet_margin_loss") for x in (anchor, positive, negative))
    _same_shape("triplet_margin_loss", a, "anchor", p, "positive")
    _same_shape("triplet_margin_loss", a, "anchor", n, "negative")
    return ((a - p).norm(axis=-1) - (a - n).norm(axis=-1) + margin).relu().mean()


def skipgram_negative_sampling_loss(center, context, negatives):
    """Word2vec's SGNS loss: center (B, d), context (B, d), negatives (B, K, d) ->
    mean over B of -[log sigmoid(c . o) + sum_k log sigmoid(-c . n_k)]."""
    c = _rows(center, "center", "skipgram_negative_sampling_loss")
    o = _rows(context, "context", "skipgram_negative_sampling_loss")
    _same_shape("skipgram_negative_sampling_loss", c, "center", o, "context")
    neg = _t(negatives, "skipgram_negative_sampling_loss")
    if neg.ndim != 3 or neg.shape[0] != c.shape[0] or neg.shape[2] != c.shape[1]:
        raise ValueError(f"skipgram_negative_sampling_loss: negatives must have shape "
                         f"({c.shape[0]}, K, {c.shape[1]}), got {neg.shape}")
    pos = (c * o).sum(axis=1).logsigmoid()
    negs = -(neg @ c.reshape(c.shape[0], c.shape[1], 1)).reshape(neg.shape[0], neg.shape[1])
    return -(pos + negs.logsigmoid().sum(axis=1)).mean()
