"""Word2vec's vocabulary: words counted and sorted by frequency, and the corpus encoded as word ids.

build_vocab reads the corpus once (count, then drop rare words); encode maps a corpus through an
existing vocabulary. Windows never cross sentences, so the encoded corpus keeps sentence numbers.
"""
import itertools

import numpy as np


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
