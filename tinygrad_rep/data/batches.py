"""Minibatches over aligned numpy arrays, with seeded shuffling.

    for xb, yb in iterate_minibatches(x, y, batch_size=64, seed=0): ...

Each step yields a tuple with one slice per input array, always a tuple (also for one array).
Every row appears exactly once per pass; the last batch is smaller unless drop_last=True.
"""

from __future__ import annotations

import numbers

import numpy as np


def _check(arrays, batch_size):
    if not arrays:
        raise ValueError("iterate_minibatches needs at least one array")
    if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral):
        raise TypeError(f"batch_size must be an int, got {type(batch_size).__name__}")
    if batch_size <= 0:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    arrays = tuple(np.asarray(a) if not hasattr(a, "shape") else a for a in arrays)
    for i, a in enumerate(arrays):
        if len(a.shape) == 0:
            raise ValueError(f"array {i} is a scalar (shape ()); batches need a first axis")
    lengths = [a.shape[0] for a in arrays]
    if len(set(lengths)) > 1:
        raise ValueError(f"arrays must have the same length along axis 0, got lengths {lengths}")
    return arrays, lengths[0], int(batch_size)


def iterate_minibatches(*arrays, batch_size, shuffle=True, seed=None, drop_last=False):
    """An iterator of tuples of aligned batches from `arrays` (same length along axis 0).

    Bad arguments (no arrays, mismatched lengths, batch_size not a positive int) raise at once.

    shuffle: a new random order per call, drawn from np.random.default_rng(seed); `seed` may be
    an int (the same order every call), None (fresh entropy) or a np.random.Generator (a different
    order each call, reproducible as a sequence). Without shuffle, batches are views in order.
    """
    arrays, n, batch_size = _check(arrays, batch_size)  # raises here, not at the first next()
    order = np.random.default_rng(seed).permutation(n) if shuffle else None
    return _batches(arrays, n, batch_size, order, drop_last)


def _batches(arrays, n, batch_size, order, drop_last):
    stop = n - n % batch_size if drop_last else n
    for start in range(0, stop, batch_size):
        end = min(start + batch_size, n)
        if order is None:
            yield tuple(a[start:end] for a in arrays)
        else:
            idx = order[start:end]
            yield tuple(a[idx] for a in arrays)


def num_batches(n, batch_size, drop_last=False):
    """How many batches one pass over n rows gives."""
    return n // batch_size if drop_last else -(-n // batch_size)


class DataLoader:
    """Re-iterable minibatches: each `for` over it is one epoch, shuffled anew from one generator.

    The sequence of epochs is reproducible for a given integer seed.
    """

    def __init__(self, *arrays, batch_size, shuffle=True, seed=None, drop_last=False):
        self.arrays, self.n, self.batch_size = _check(arrays, batch_size)
        self.shuffle, self.drop_last = shuffle, drop_last
        self.rng = np.random.default_rng(seed)

    def __iter__(self):
        return iterate_minibatches(*self.arrays, batch_size=self.batch_size, shuffle=self.shuffle,
                                   seed=self.rng, drop_last=self.drop_last)

    def __len__(self):
        return num_batches(self.n, self.batch_size, self.drop_last)
