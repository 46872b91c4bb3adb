"""The word2vec model object: vocabulary, input vectors W_in (the word vectors) and output vectors
W_out, and its model folder (weights.npz, vocab.txt, vectors.txt, model.json) written and read back.
"""
import dataclasses
from pathlib import Path

import numpy as np

from .config import FORMAT_VERSION, KIND, Word2VecConfig
from .vectors import WordVectors, _atomic_text, write_vectors
from .vocabulary import Vocab


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
        from .. import save_model
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
    from .. import read_meta
    from ...serialization import load as load_arrays
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
