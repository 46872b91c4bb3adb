"""Data for tinygrad_rep: image data sets, minibatches, text corpora and word-vector eval sets.

    from tinygrad_rep import data
    x_train, y_train, x_test, y_test = data.load("digits")        # shipped, 1,437 / 360
    x_train, y_train, x_test, y_test = data.load("fashion-mnist") # Debian dataset-fashion-mnist
    for xb, yb in data.iterate_minibatches(x_train, y_train, batch_size=64, seed=0): ...
    corpus = data.load_corpus("sotu")                              # after `make data`
"""

from .batches import DataLoader, iterate_minibatches, num_batches
from .datasets import KNOWN, fashion_mnist_dir, load, load_digits, load_fashion_mnist, read_idx, write_idx
from .text import (Corpus, CorpusEncodingError, cache_dir, corpus_path, load_analogies, load_corpus,
                   load_similarity, synthetic_corpus, tokenize)

__all__ = [
    "load", "load_digits", "load_fashion_mnist", "fashion_mnist_dir", "read_idx", "write_idx", "KNOWN",
    "iterate_minibatches", "num_batches", "DataLoader",
    "tokenize", "cache_dir", "corpus_path", "Corpus", "CorpusEncodingError", "load_corpus", "load_analogies",
    "load_similarity", "synthetic_corpus",
]
