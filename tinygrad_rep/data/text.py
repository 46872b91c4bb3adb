"""Text for word2vec: tokenizer, corpora from the data cache, evaluation sets, a synthetic corpus.

Tokenization (`tokenize`): lowercase the text; fold non-ASCII letters to ASCII (accents dropped
by NFKD, so "café" -> "cafe"; æ -> ae, œ -> oe, ß -> ss; typographic apostrophes ’ ‘ -> ');
keep every match of ``[a-z]+(?:'[a-z]+)?``: runs of letters with at most one inner apostrophe
("don't", "ishmael's"). Digits, punctuation, hyphens and any other character split words. A corpus
file is read line by line; each non-empty line is one "sentence" (a list of tokens), so a window never
crosses a line. Corpora are decoded strictly (UTF-8 unless an encoding is given): bytes that are not
valid text are an error naming the file and the byte offset, never silently replaced.

Named corpora ("sotu", "prose") live in the cache folder that `make data` fills
($TINYGRAD_REP_CACHE, else .data/ in a source checkout, else ~/.cache/tinygrad_rep).
"""

from __future__ import annotations

import codecs
import io
import os
import re
import unicodedata
from pathlib import Path

import numpy as np

TOKEN_RE = re.compile(r"[a-z]+(?:'[a-z]+)?")
_COMBINING = re.compile(r"[\u0300-\u036f]")
_FOLD = str.maketrans({"\u2019": "'", "\u2018": "'", "\u00e6": "ae", "\u0153": "oe", "\u00df": "ss"})
CACHE_ENV = "TINYGRAD_REP_CACHE"
CORPORA = {"sotu": "sotu.txt", "prose": "prose.txt"}
EVAL_DIR = Path(__file__).with_name("eval")
SIMILARITY_SETS = {"wordsim353": "wordsim353.tsv", "simlex999": "simlex999.txt"}


def tokenize(text: str) -> list[str]:
    """Lowercase word tokens of `text` (see the module docstring for the exact rule)."""
    text = text.lower()
    if not text.isascii():
        text = _COMBINING.sub("", unicodedata.normalize("NFKD", text.translate(_FOLD)))
    return TOKEN_RE.findall(text)


def cache_dir() -> Path:
    """Where `make data` puts corpora: $TINYGRAD_REP_CACHE, else <checkout>/.data, else ~/.cache."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    checkout = Path(__file__).resolve().parents[2]
    if (checkout / "pyproject.toml").exists() or (checkout / ".git").exists():
        return checkout / ".data"
    return Path.home() / ".cache" / "tinygrad_rep"


def corpus_path(name_or_path) -> Path:
    """Resolve a corpus name ("sotu", "prose") or a path to an existing plain-text file."""
    if isinstance(name_or_path, str) and name_or_path in CORPORA:
        path = cache_dir() / CORPORA[name_or_path]
        if not path.is_file():
            raise FileNotFoundError(f"corpus {name_or_path!r} not found at {path}: run `make data` "
                                    f"(python scripts/make_data.py), or set {CACHE_ENV} to the "
                                    "folder that holds it, or pass a path to a text file")
        return path
    path = Path(name_or_path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"no text file at {path} (named corpora: {', '.join(CORPORA)})")
    return path


class CorpusEncodingError(ValueError):
    """A corpus file that is not valid text in its encoding; the message names the file, the line
    and the byte offset of the first bad byte."""


class Corpus:
    """A plain-text corpus on disk; each iteration re-reads it and yields one token list per line.

    max_words stops after that many tokens (the last line is cut), for quick runs. The file is
    decoded strictly as `encoding` (UTF-8 unless told otherwise; any encoding in which a newline is
    the byte 0x0A, such as "latin-1" or "cp1252"): a byte sequence that is not valid text raises
    CorpusEncodingError naming the file, the line and the byte offset, instead of being mangled.
    """

    def __init__(self, path, max_words: int | None = None, encoding: str = "utf-8"):
        self.path = Path(path)
        if max_words is not None and max_words < 0:
            raise ValueError(f"max_words must be >= 0, got {max_words}")
        self.max_words = max_words
        self.encoding = _line_encoding(encoding)

    def __iter__(self):
        left = self.max_words
        offset = 0  # of the current line's first byte, for error messages
        with open(self.path, "rb") as f:
            for lineno, raw in enumerate(f, 1):
                if left is not None and left <= 0:
                    return
                try:
                    line = raw.decode(self.encoding)
                except UnicodeDecodeError as e:
                    raise CorpusEncodingError(
                        f"{self.path}: not valid {self.encoding} text at byte offset {offset + e.start} "
                        f"(line {lineno}: {e.reason}); pass the file's encoding "
                        f"(e.g. encoding=\"latin-1\") or convert it to UTF-8") from None
                offset += len(raw)
                tokens = tokenize(line)
                if left is not None:
                    tokens = tokens[:left]
                    left -= len(tokens)
                if tokens:
                    yield tokens

    def words(self):
        """All tokens in order, as one stream."""
        for sentence in self:
            yield from sentence

    def __repr__(self):
        return f"Corpus({str(self.path)!r}, max_words={self.max_words})"


def load_corpus(name_or_path, max_words: int | None = None, encoding: str = "utf-8") -> Corpus:
    """A re-iterable `Corpus` for "sotu", "prose" (from the cache) or any plain-text file, decoded
    strictly as `encoding` (see Corpus)."""
    return Corpus(corpus_path(name_or_path), max_words=max_words, encoding=encoding)


def _line_encoding(encoding):
    """The codec's canonical name, if the file can be split into lines at the byte 0x0A before
    decoding (true of UTF-8, ASCII and the 8-bit code pages; not of UTF-16 or UTF-32)."""
    try:
        info = codecs.lookup(encoding)
    except (LookupError, TypeError):
        raise ValueError(f"unknown text encoding {encoding!r}") from None
    if "a\nb".encode(info.name) != b"a\nb":
        raise ValueError(f"encoding {encoding!r} is not supported for corpora (a newline is not the "
                         "byte 0x0A in it); convert the file to UTF-8")
    return info.name


def load_analogies(path=None) -> list[tuple[str, str, str, str, str]]:
    """Google analogy questions as (section, a, b, c, d), lowercase: a is to b as c is to d.

    19,544 questions in 14 sections; sections "gram*" are syntactic, the others semantic.
    """
    path = Path(path) if path is not None else EVAL_DIR / "questions-words.txt"
    out, section = [], None
    for lineno, line in enumerate(_utf8_lines(path), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith(":"):
            section = line[1:].strip()
            continue
        words = line.lower().split()
        if len(words) != 4 or section is None:
            raise ValueError(f"{path}:{lineno}: expected 4 words after a ': section' line, "
                             f"got {line!r}")
        out.append((section, *words))
    return out


def load_similarity(name_or_path="wordsim353") -> list[tuple[str, str, float]]:
    """Word-pair similarity scores (w1, w2, score), lowercase: "wordsim353", "simlex999" or a path.

    Lines starting with # are comments; fields are tab- or space-separated.
    """
    if name_or_path in SIMILARITY_SETS:
        path = EVAL_DIR / SIMILARITY_SETS[name_or_path]
    elif isinstance(name_or_path, str) and os.sep not in name_or_path and "." not in name_or_path:
        raise ValueError(f"unknown similarity set {name_or_path!r}; known: {', '.join(SIMILARITY_SETS)}")
    else:
        path = Path(name_or_path)
    out = []
    for lineno, line in enumerate(_utf8_lines(path), 1):
        if not line.strip() or line.startswith("#"):
            continue
        fields = line.split()
        try:
            out.append((fields[0].lower(), fields[1].lower(), float(fields[2])))
        except (IndexError, ValueError):
            raise ValueError(f"{path}:{lineno}: expected 'word word score', got {line.rstrip()!r}") from None
    return out


def _utf8_lines(path):
    """The lines of a small UTF-8 text file; bytes that are not UTF-8 raise CorpusEncodingError
    naming the file and the byte offset."""
    raw = Path(path).read_bytes()
    try:
        return list(io.StringIO(raw.decode("utf-8"), newline=None))  # lines as open() splits them
    except UnicodeDecodeError as e:
        raise CorpusEncodingError(f"{path}: not valid utf-8 text at byte offset {e.start} ({e.reason})") from None


def _letters(i: int, width: int = 2) -> str:
    """i as `width` base-26 letters: 0 -> 'aa', 1 -> 'ab', ..."""
    s = ""
    for _ in range(width):
        i, r = divmod(i, 26)
        s = chr(ord("a") + r) + s
    return s


def synthetic_corpus(seed, n_groups=4, words_per_group=6, n_sentences=2000, sentence_len=8,
                     n_shared=10, p_shared=0.2):
    """A corpus with planted structure: words of one group share contexts, other groups' don't.

    Each sentence belongs to one random group; each token is, with probability p_shared, a
    "shared" filler word used by all groups, else a word of that sentence's group. Words are
    letter strings that the tokenizer keeps: group g word i is "g" + 2 letters(g) + 2 letters(i)
    (e.g. "gaaab"), filler j is "f" + 2 letters(j). Returns (sentences, groups): a list of token
    lists and the list of each group's words. Same seed, same corpus.
    """
    if min(n_groups, words_per_group, sentence_len) < 1 or n_sentences < 0 or n_shared < 0:
        raise ValueError("n_groups, words_per_group, sentence_len must be >= 1; counts >= 0")
    if not 0.0 <= p_shared <= 1.0 or (p_shared > 0 and n_shared == 0):
        raise ValueError("p_shared must be in [0, 1] and needs n_shared >= 1 when positive")
    if max(n_groups, words_per_group, n_shared) > 26 * 26:
        raise ValueError("at most 676 groups, words per group and shared words")
    rng = np.random.default_rng(seed)
    groups = [["g" + _letters(g) + _letters(i) for i in range(words_per_group)] for g in range(n_groups)]
    shared = ["f" + _letters(j) for j in range(n_shared)]
    sentences = []
    for g in rng.integers(0, n_groups, size=n_sentences):
        own = rng.integers(0, words_per_group, size=sentence_len)
        use_shared = rng.random(sentence_len) < p_shared
        filler = rng.integers(0, max(n_shared, 1), size=sentence_len)
        sentences.append([shared[f] if s else groups[g][w] for w, s, f in zip(own, use_shared, filler)])
    return sentences, groups
