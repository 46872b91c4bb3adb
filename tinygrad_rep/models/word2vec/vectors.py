"""Word vectors: lookup, cosine neighbours, 3CosAdd analogies, and the standard word2vec text
format (vectors.txt: a "count dim" line, then "word v1 ... vdim" per word) read and written.

Any tool's vectors.txt loads here (WordVectors.load), and ours load in other tools.
"""
from pathlib import Path

import numpy as np

from ...output import atomic_write
from .evaluation import analogy_accuracy, similarity_correlation


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
        """The vectors' dimension."""
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
        """Google analogy accuracy by 3CosAdd over the questions whose four words are known
        (see evaluation.analogy_accuracy: accuracy overall, semantic, syntactic, per section)."""
        return analogy_accuracy(self, questions, batch)

    def evaluate_similarity(self, pairs="wordsim353"):
        """Spearman correlation between cosine similarity and human scores over the known pairs
        (see evaluation.similarity_correlation)."""
        return similarity_correlation(self, pairs)

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


def _atomic_text(path, write):
    """Call write(f) on a text file that replaces `path` only once complete (output.atomic_write)."""
    with atomic_write(path, "w", newline="\n") as f:
        write(f)


def write_vectors(path, words, vectors):
    """Write the standard word2vec text format: "count dim", then "word v1 ... vdim" per line.

    Values are written with 9 significant digits, so float32 vectors read back exactly.
    Written to a temporary file and renamed: a reader never sees half a file.
    """
    write = vectors_writer(words, vectors)
    _atomic_text(path, write)


def vectors_writer(words, vectors):
    """The checked words and vectors as a function write(f) that writes the word2vec text format
    into the text file f (what write_vectors writes; a model folder writes it this way)."""
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
    return write


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
