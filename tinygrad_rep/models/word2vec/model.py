"""The word2vec model object: vocabulary, input vectors W_in (the word vectors) and output vectors
W_out, and its model folder (weights.npz, vocab.txt, vectors.txt, model.json) written and read back.
"""
import dataclasses
from pathlib import Path

import numpy as np

from .config import FORMAT_VERSION, KIND, Word2VecConfig
from .vectors import WordVectors, vectors_writer
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
        """Write the model folder tr.models.load reads back, as one unit (models/folder.py):
        weights.npz (W_in, W_out), vocab.txt ("word count" lines), vectors.txt and model.json
        (kind "word2vec"); an interrupted save leaves the old model or the new one, never a mix."""
        from .. import save_model
        from ..folder import text
        vocab = "".join(f"{w} {c}\n" for w, c in zip(self.vocab.words, self.vocab.counts.tolist()))
        files = {"vocab.txt": vocab, "vectors.txt": text(vectors_writer(self.vocab.words, self.W_in))}
        return save_model(Path(folder), KIND, dataclasses.asdict(self.config),
                          {"W_in": self.W_in, "W_out": self.W_out}, files=files,
                          format=FORMAT_VERSION, vocab="vocab.txt", vectors="vectors.txt",
                          vocab_size=len(self.vocab), dim=self.config.dim)


def _unknown(word):
    raise KeyError(f"word {word!r} is not in the vocabulary")


def load_model(folder):
    """Load a model written by `Word2Vec.save` / `train word2vec` -> Word2Vec (what
    tr.models.load returns for kind "word2vec"). The folder is checked as one unit; a malformed
    model.json, vocab.txt or weights.npz raises ModelFolderError (a ValueError) naming the file."""
    from .. import _open, read_weights
    from ..folder import ModelFolderError, field
    mf = _open(folder)
    meta = mf.meta
    if meta["kind"] != KIND:
        raise ModelFolderError(f"{mf.meta_path}: kind is {meta['kind']!r}, not {KIND!r}")
    stored = field(meta, "config", dict, mf.meta_path, default={})
    fields = {f.name for f in dataclasses.fields(Word2VecConfig)}
    config = Word2VecConfig(**{k: v for k, v in stored.items() if k in fields})
    if isinstance(config.dim, bool) or not isinstance(config.dim, int) or config.dim < 1:
        raise ModelFolderError(f"{mf.meta_path}: key 'config.dim' must be an integer >= 1, got {config.dim!r}")
    vocab_name = mf.name("vocab", "vocab.txt")
    vocab_path = mf.path(vocab_name)
    raw = mf.read_bytes(vocab_name)
    try:
        lines = raw.decode("utf-8").split("\n")
    except UnicodeDecodeError as e:
        raise ModelFolderError(f"{vocab_path}: not valid UTF-8 at byte {e.start}") from None
    words, counts = [], []
    if lines and lines[-1] == "":
        lines.pop()  # the newline that ends the last line
    for lineno, line in enumerate(lines, 1):
        parts = line.split()
        if len(parts) != 2 or not parts[1].isdigit():
            raise ModelFolderError(f"{vocab_path}:{lineno}: expected 'word count', got {line.rstrip()!r}")
        words.append(parts[0])
        counts.append(int(parts[1]))
    arrays = read_weights(mf)
    weights = mf.path(mf.name("weights", "weights.npz"))
    for key in ("W_in", "W_out"):
        if key not in arrays or arrays[key].shape != (len(words), config.dim):
            raise ModelFolderError(f"{weights}: has no {key} of shape ({len(words)}, {config.dim})")
    return Word2Vec(Vocab(words, counts), config, W_in=arrays["W_in"], W_out=arrays["W_out"])
