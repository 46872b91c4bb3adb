"""Tests for tinygrad_rep.data: digits, IDX/Fashion-MNIST reading, minibatches, text and eval sets."""

import collections
import gzip
import importlib.util
import os
import re
import signal
from pathlib import Path

import numpy as np
import pytest

from tinygrad_rep import data
from tinygrad_rep.data import datasets, text

REPO = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------- digits

def test_digits_shapes_dtypes_range():
    x_tr, y_tr, x_te, y_te = data.load("digits")
    assert x_tr.shape == (1437, 64) and x_te.shape == (360, 64)
    assert y_tr.shape == (1437,) and y_te.shape == (360,)
    assert x_tr.dtype == np.float32 and x_te.dtype == np.float32
    assert y_tr.dtype == np.int64 and y_te.dtype == np.int64
    assert x_tr.min() == 0.0 and x_tr.max() == 1.0 and x_te.min() >= 0.0 and x_te.max() <= 1.0
    assert np.all((x_tr * 16) == np.round(x_tr * 16))  # pixel counts 0..16, scaled


def test_digits_labels_and_stratified_split():
    _, y_tr, _, y_te = data.load("digits")
    assert len(y_tr) + len(y_te) == 1797
    assert set(np.unique(y_tr)) == set(range(10)) == set(np.unique(y_te))
    counts_all = np.bincount(np.concatenate([y_tr, y_te]), minlength=10)
    assert counts_all.tolist() == [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]
    test_counts = np.bincount(y_te, minlength=10)
    assert np.all(np.abs(test_counts - counts_all / 5) <= 1)  # every class ~20% in test


def test_digits_split_is_a_partition_of_the_shipped_rows():
    x_tr, y_tr, x_te, y_te = data.load("digits")
    with np.load(datasets.DIGITS_FILE) as f:
        images, labels = f["images"], f["labels"]
    rows = np.hstack([np.rint(np.vstack([x_tr, x_te]) * 16), np.concatenate([y_tr, y_te])[:, None]])
    orig = np.hstack([images, labels[:, None]]).astype(np.float64)
    key = lambda a: a[np.lexsort(a.T[::-1])]
    np.testing.assert_array_equal(key(rows), key(orig))


def test_digits_deterministic_and_fresh_arrays():
    a, b = data.load("digits"), data.load("Digits")
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)
    a[0][0, 0] = 99.0
    assert data.load("digits")[0][0, 0] != 99.0


def test_digits_from_csv_path(tmp_path):
    with np.load(datasets.DIGITS_FILE) as f:
        rows = np.hstack([f["images"].astype(np.int64), f["labels"][:, None]])
    csv = tmp_path / "digits.csv.gz"
    with gzip.open(csv, "wt") as fh:
        np.savetxt(fh, rows, fmt="%d", delimiter=",")
    for u, v in zip(data.load("digits", path=csv), data.load("digits")):
        np.testing.assert_array_equal(u, v)


def test_unknown_name_lists_known_names():
    with pytest.raises(ValueError, match="digits.*fashion-mnist"):
        data.load("mnist")


# ---------------------------------------------------------------- IDX files

@pytest.mark.parametrize("fname", ["a-idx3-ubyte.gz", "a-idx3-ubyte"])
@pytest.mark.parametrize("dtype", [np.uint8, np.int32, np.float32])
def test_idx_round_trip(tmp_path, fname, dtype):
    arr = (np.arange(2 * 3 * 4) * 7 % 251).astype(dtype).reshape(2, 3, 4)
    data.write_idx(tmp_path / fname, arr)
    back = data.read_idx(tmp_path / fname)
    assert back.dtype == np.dtype(dtype) and back.dtype.isnative
    np.testing.assert_array_equal(back, arr)


def test_idx_header_bytes_are_the_standard_magic(tmp_path):
    data.write_idx(tmp_path / "l.idx", np.arange(5, dtype=np.uint8))
    raw = (tmp_path / "l.idx").read_bytes()
    assert raw[:8] == bytes([0, 0, 8, 1, 0, 0, 0, 5]) and raw[8:] == bytes(range(5))


def test_idx_truncated_payload_names_file(tmp_path):
    path = tmp_path / "train-images-idx3-ubyte.gz"
    data.write_idx(path, np.zeros((3, 28, 28), np.uint8))
    raw = gzip.decompress(path.read_bytes())
    path.write_bytes(gzip.compress(raw[:-10]))
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte\.gz.*truncated"):
        data.read_idx(path)


def test_idx_truncated_gzip_stream_names_file(tmp_path):
    path = tmp_path / "t10k-labels-idx1-ubyte.gz"
    data.write_idx(path, np.arange(1000, dtype=np.uint8) % 10)
    path.write_bytes(path.read_bytes()[:-30])
    with pytest.raises(ValueError, match=r"t10k-labels-idx1-ubyte\.gz.*(corrupt|truncated)"):
        data.read_idx(path)


def test_idx_trailing_bytes_and_short_header(tmp_path):
    path = tmp_path / "x.idx"
    data.write_idx(path, np.zeros((2, 2), np.uint8))
    path.write_bytes(path.read_bytes() + b"\0")
    with pytest.raises(ValueError, match="trailing"):
        data.read_idx(path)
    path.write_bytes(bytes([0, 0, 8, 3, 0, 0]))
    with pytest.raises(ValueError, match="header"):
        data.read_idx(path)


@pytest.mark.parametrize("magic", [b"\x1f\x8b\x08\x03", b"\x00\x01\x08\x03", b"\x00\x00\x07\x03", b"\x00\x00\x08\x00"])
def test_idx_wrong_magic(tmp_path, magic):
    path = tmp_path / "bad-idx3-ubyte"
    path.write_bytes(magic + bytes(8))
    with pytest.raises(ValueError, match=r"bad-idx3-ubyte.*magic"):
        data.read_idx(path)


def make_fake_fashion(folder, n_train=12, n_test=5, image_shape=(28, 28), n_train_labels=None):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    for split, n in (("train", n_train), ("t10k", n_test)):
        data.write_idx(folder / f"{split}-images-idx3-ubyte.gz",
                       rng.integers(0, 256, size=(n, *image_shape), dtype=np.uint8))
        n_lab = n_train_labels if (split == "train" and n_train_labels is not None) else n
        data.write_idx(folder / f"{split}-labels-idx1-ubyte.gz", (np.arange(n_lab) % 10).astype(np.uint8))
    return folder


def test_fashion_mnist_from_path_and_env(tmp_path, monkeypatch):
    folder = make_fake_fashion(tmp_path / "fm")
    x_tr, y_tr, x_te, y_te = data.load("fashion-mnist", path=folder)
    assert x_tr.shape == (12, 784) and x_te.shape == (5, 784)
    assert x_tr.dtype == np.float32 and y_tr.dtype == np.int64
    assert 0.0 <= x_tr.min() and x_tr.max() <= 1.0
    raw = data.read_idx(folder / "train-images-idx3-ubyte.gz")
    np.testing.assert_array_equal(x_tr, raw.reshape(12, -1) / np.float32(255))
    np.testing.assert_array_equal(y_te, np.arange(5) % 10)
    monkeypatch.setenv(datasets.FASHION_ENV, str(folder))
    np.testing.assert_array_equal(data.load("fashion_mnist")[2], x_te)


def test_fashion_mnist_uncompressed_files_are_accepted(tmp_path):
    folder = make_fake_fashion(tmp_path / "fm")
    for p in folder.glob("*.gz"):
        p.with_suffix("").write_bytes(gzip.decompress(p.read_bytes()))
        p.unlink()
    assert data.load("fashion-mnist", path=folder)[0].shape == (12, 784)


def test_fashion_mnist_inconsistent_files(tmp_path):
    with pytest.raises(ValueError, match=r"train-images.*12 images.*train-labels.*11 labels"):
        data.load("fashion-mnist", path=make_fake_fashion(tmp_path / "a", n_train_labels=11))
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte\.gz.*28, 28"):
        data.load("fashion-mnist", path=make_fake_fashion(tmp_path / "b", image_shape=(27, 28)))


def test_fashion_mnist_missing_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.delenv(datasets.FASHION_ENV, raising=False)
    with pytest.raises(FileNotFoundError) as e:
        data.load("fashion-mnist", path=tmp_path / "nowhere")
    msg = str(e.value)
    assert "apt-get install dataset-fashion-mnist" in msg and "make data" in msg
    assert "path=" in msg and datasets.FASHION_ENV in msg and "nowhere" in msg


@pytest.mark.skipif(not (datasets.FASHION_DIR / "train-images-idx3-ubyte.gz").exists(),
                    reason="Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)")
def test_fashion_mnist_real_files(monkeypatch):
    monkeypatch.delenv(datasets.FASHION_ENV, raising=False)
    x_tr, y_tr, x_te, y_te = data.load("fashion-mnist")
    assert x_tr.shape == (60000, 784) and x_te.shape == (10000, 784)
    assert np.bincount(y_tr).tolist() == [6000] * 10 and np.bincount(y_te).tolist() == [1000] * 10
    assert x_tr.dtype == np.float32 and x_tr.min() == 0.0 and x_tr.max() == 1.0


# ---------------------------------------------------------------- minibatches

@pytest.mark.parametrize("shuffle", [True, False])
@pytest.mark.parametrize("n,bs,drop_last", [(10, 3, False), (10, 3, True), (9, 3, False), (2, 5, False), (0, 4, False)])
def test_batches_cover_every_index_once(n, bs, drop_last, shuffle):
    x = np.arange(n) * 10
    y = np.arange(n)
    batches = list(data.iterate_minibatches(x, y, batch_size=bs, shuffle=shuffle, seed=3, drop_last=drop_last))
    assert len(batches) == data.num_batches(n, bs, drop_last)
    seen = np.concatenate([b[1] for b in batches]) if batches else np.array([], int)
    for xb, yb in batches:
        np.testing.assert_array_equal(xb, yb * 10)  # rows stay aligned
        assert len(yb) == bs or (not drop_last and yb is batches[-1][1])
    expected = n - n % bs if drop_last else n
    assert len(seen) == expected and len(set(seen.tolist())) == expected
    if not shuffle:
        np.testing.assert_array_equal(seen, np.arange(expected))


def test_batches_seeded_shuffle_is_reproducible():
    x = np.arange(100)
    order = lambda seed: np.concatenate([b for (b,) in data.iterate_minibatches(x, batch_size=7, seed=seed)])
    np.testing.assert_array_equal(order(5), order(5))
    assert not np.array_equal(order(5), order(6))
    assert not np.array_equal(order(5), x)
    rng_a, rng_b = np.random.default_rng(1), np.random.default_rng(1)
    a1, a2 = order(rng_a), order(rng_a)
    assert not np.array_equal(a1, a2)  # a Generator moves on between epochs
    np.testing.assert_array_equal(a1, order(rng_b))


def test_dataloader_epochs():
    x = np.arange(20).reshape(10, 2)
    loader = data.DataLoader(x, np.arange(10), batch_size=4, seed=0)
    assert len(loader) == 3
    e1 = np.concatenate([yb for _, yb in loader])
    e2 = np.concatenate([yb for _, yb in loader])
    assert sorted(e1.tolist()) == sorted(e2.tolist()) == list(range(10))
    assert not np.array_equal(e1, e2)
    again = data.DataLoader(x, np.arange(10), batch_size=4, seed=0)
    np.testing.assert_array_equal(np.concatenate([yb for _, yb in again]), e1)


def test_batches_bad_arguments_raise_at_call():
    x = np.zeros(5)
    with pytest.raises(ValueError, match=r"same length.*\[5, 4\]"):
        data.iterate_minibatches(x, np.zeros(4), batch_size=2)
    for bad in (0, -3):
        with pytest.raises(ValueError, match="positive"):
            data.iterate_minibatches(x, batch_size=bad)
    with pytest.raises(TypeError, match="int"):
        data.iterate_minibatches(x, batch_size=2.5)
    with pytest.raises(ValueError, match="at least one"):
        data.iterate_minibatches(batch_size=2)
    with pytest.raises(ValueError, match="scalar"):
        data.iterate_minibatches(np.float32(1.0), batch_size=1)


# ---------------------------------------------------------------- text

def test_tokenize_rule():
    assert data.tokenize("Call me Ishmael’s—DON'T 1790 Fellow-Citizens, naïve encyclopædia 'quoted'") == [
        "call", "me", "ishmael's", "don't", "fellow", "citizens", "naive", "encyclopaedia", "quoted"]
    assert data.tokenize("") == [] and data.tokenize("123 ... --") == []


def test_corpus_from_path_is_reiterable(tmp_path):
    path = tmp_path / "c.txt"
    path.write_text("The cat sat.\n\n  \nOn the MAT, the cat's hat!\n", encoding="utf-8")
    corpus = data.load_corpus(path)
    expected = [["the", "cat", "sat"], ["on", "the", "mat", "the", "cat's", "hat"]]
    assert list(corpus) == expected and list(corpus) == expected
    assert list(data.load_corpus(str(path), max_words=5)) == [["the", "cat", "sat"], ["on", "the"]]
    assert list(data.load_corpus(path, max_words=0)) == []
    assert len(list(corpus.words())) == 9


def test_named_corpus_missing_and_present(tmp_path, monkeypatch):
    monkeypatch.setenv(text.CACHE_ENV, str(tmp_path))
    assert data.cache_dir() == tmp_path
    with pytest.raises(FileNotFoundError, match="make data"):
        data.load_corpus("sotu")
    (tmp_path / "prose.txt").write_text("Hello world.\n", encoding="utf-8")
    assert list(data.load_corpus("prose")) == [["hello", "world"]]
    with pytest.raises(FileNotFoundError, match="no text file"):
        data.load_corpus(tmp_path / "missing.txt")


def test_synthetic_corpus_structure():
    sents, groups = data.synthetic_corpus(seed=0, n_groups=3, words_per_group=4, n_sentences=200,
                                          sentence_len=6, n_shared=5, p_shared=0.25)
    again, _ = data.synthetic_corpus(seed=0, n_groups=3, words_per_group=4, n_sentences=200,
                                     sentence_len=6, n_shared=5, p_shared=0.25)
    other, _ = data.synthetic_corpus(seed=1, n_groups=3, words_per_group=4, n_sentences=200,
                                     sentence_len=6, n_shared=5, p_shared=0.25)
    assert sents == again and sents != other
    assert len(sents) == 200 and all(len(s) == 6 for s in sents)
    assert len(groups) == 3 and all(len(g) == 4 for g in groups)
    group_of = {w: i for i, g in enumerate(groups) for w in g}
    assert len(group_of) == 12  # groups are disjoint
    for s in sents:  # the planted structure: one group per sentence, the rest shared fillers
        assert len({group_of[w] for w in s if w in group_of}) <= 1
        assert data.tokenize(" ".join(s)) == s
    shared = collections.Counter(w for s in sents for w in s if w not in group_of)
    assert 0.15 < sum(shared.values()) / (200 * 6) < 0.35 and len(shared) == 5


# ---------------------------------------------------------------- evaluation sets

def test_analogies():
    qs = data.load_analogies()
    assert len(qs) == 19544
    sections = collections.Counter(q[0] for q in qs)
    assert len(sections) == 14
    assert sections["capital-common-countries"] == 506 and sections["gram9-plural-verbs"] == 870
    assert sum(v for k, v in sections.items() if not k.startswith("gram")) == 8869
    assert qs[0] == ("capital-common-countries", "athens", "greece", "baghdad", "iraq")
    assert all(w == w.lower() for q in qs for w in q[1:])


@pytest.mark.parametrize("name,n,first", [("wordsim353", 353, ("love", "sex", 6.77)),
                                          ("simlex999", 999, ("old", "new", 1.58))])
def test_similarity_sets(name, n, first):
    pairs = data.load_similarity(name)
    assert len(pairs) == n and pairs[0] == first
    assert all(0.0 <= s <= 10.0 for _, _, s in pairs)
    assert all(isinstance(a, str) and a == a.lower() and b == b.lower() for a, b, _ in pairs)


def test_similarity_unknown_and_bad_file(tmp_path):
    with pytest.raises(ValueError, match="wordsim353"):
        data.load_similarity("men3000")
    bad = tmp_path / "bad.tsv"
    bad.write_text("# header\ncat\tdog\tsimilar\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad\.tsv:2"):
        data.load_similarity(bad)


def test_shipped_data_files_are_small_and_noticed():
    pkg = REPO / "tinygrad_rep" / "data"
    for p in [pkg / "digits.npz", *(pkg / "eval").iterdir()]:
        assert p.stat().st_size < 1_000_000, p
    assert "CC BY 4.0" in (pkg / "DIGITS_NOTICE.txt").read_text()
    notice = (pkg / "eval" / "README.txt").read_text()
    assert all(f in notice for f in ("questions-words.txt", "wordsim353.tsv", "simlex999.txt"))


# ---------------------------------------------------------------- make_data helpers (no network)

def _make_data_module():
    spec = importlib.util.spec_from_file_location("make_data", REPO / "scripts" / "make_data.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_make_data_wiki_cleanup_and_sentences(tmp_path):
    md = _make_data_module()
    markup = ("{{Infobox|name={{nested}}}}'''Anarchism''' is a [[political philosophy]] that "
              "advocates [[self-governance|self-governed]] societies.<ref>Cite</ref> It is old.\n"
              "[[File:A.jpg|thumb|A [[caption]]]]\n{| class=x\n|-\n| cell\n|}\n== History ==\n"
              "Text &amp; more [http://example.org label].\n== References ==\nGone.")
    out = md.wiki_to_text(markup)
    assert "Anarchism is a political philosophy that advocates self-governed societies. It is old." in out
    for junk in ("{{", "[[", "File:", "cell", "Cite", "Gone", "http"):
        assert junk not in out
    assert "History." in out and "Text & more label." in out
    assert list(md.sentences("One  two. Three!\nFour? five")) == ["One two.", "Three!", "Four? five"]
    md.write_atomic(tmp_path / "a.txt", ["x", "y"])
    assert (tmp_path / "a.txt").read_text() == "x\ny\n" and list(tmp_path.iterdir()) == [tmp_path / "a.txt"]


# ---------------------------------------------------------------- values that would be mangled silently

@pytest.mark.parametrize("labels,message", [
    (np.array([1.0, np.nan, 3.0], np.float32), "labels must be integers in 0..9; entry 1 is nan"),
    (np.array([1, 12, 3], np.uint8), "labels must be integers in 0..9; entry 1 is 12"),
    (np.array([1, -1, 3], np.int8), "labels must be integers in 0..9; entry 1 is -1"),
    (np.array([1.0, 2.5, 3.0], np.float64), "labels must be integers in 0..9; entry 1 is 2.5"),
])
def test_fashion_labels_nan_out_of_range_or_fractional_are_refused(tmp_path, labels, message):
    folder = make_fake_fashion(tmp_path / "fm", n_test=3)
    data.write_idx(folder / "t10k-labels-idx1-ubyte.gz", labels)
    with pytest.raises(ValueError) as info:
        data.load("fashion-mnist", path=folder)
    assert str(info.value) == f"{folder / 't10k-labels-idx1-ubyte.gz'}: {message}"


@pytest.mark.parametrize("bad,shown", [(np.nan, "nan"), (np.inf, "inf"), (-1.0, "-1.0"), (300.0, "300.0")])
def test_fashion_pixels_nan_inf_or_out_of_range_are_refused(tmp_path, bad, shown):
    folder = make_fake_fashion(tmp_path / "fm", n_test=3)
    images = np.zeros((3, 28, 28), np.float32)
    images[2, 5, 7] = bad
    data.write_idx(folder / "t10k-images-idx3-ubyte.gz", images)
    with pytest.raises(ValueError) as info:
        data.load("fashion-mnist", path=folder)
    assert str(info.value) == (f"{folder / 't10k-images-idx3-ubyte.gz'}: pixels must be in 0..255; "
                               f"entry (2, 5, 7) is {shown}")


def test_digits_with_nan_pixels_or_labels_are_refused(tmp_path):
    images = np.zeros((4, 64), np.float64)
    images[3, 9] = np.nan
    np.savez(tmp_path / "d.npz", images=images, labels=np.arange(4))
    with pytest.raises(ValueError, match=re.escape(f"{tmp_path / 'd.npz'}: pixels must be in 0..16; entry (3, 9) is nan")):
        datasets._read_digits(tmp_path / "d.npz")
    np.savez(tmp_path / "l.npz", images=np.zeros((2, 64)), labels=np.array([1.0, np.nan]))
    with pytest.raises(ValueError, match=re.escape(f"{tmp_path / 'l.npz'}: labels must be integers in 0..9; entry 1 is nan")):
        datasets._read_digits(tmp_path / "l.npz")


@pytest.mark.parametrize("dims", [[0xFFFFFFFF] * 3, [1 << 16, 1 << 16, 1 << 16], [0x80000000, 16]])
def test_idx_dimensions_whose_product_overflows_are_refused_before_reading(tmp_path, dims):
    header = bytes([0, 0, 0x0E, len(dims)]) + np.asarray(dims, ">u4").tobytes()
    for name, blob in (("big-idx3-ubyte", header + bytes(16)), ("big-idx3-ubyte.gz", gzip.compress(header + bytes(16)))):
        path = tmp_path / name
        path.write_bytes(blob)
        with pytest.raises(ValueError, match=re.escape(f"{path}: dimensions {tuple(dims)} describe ") + ".*a damaged header"):
            data.read_idx(path)


def test_idx_product_that_wraps_int64_is_not_taken_for_a_small_file(tmp_path):
    dims = [1 << 31, 1 << 31, 4]  # 2**64 elements: wraps to 0 in int64
    path = tmp_path / "wrap-idx1-ubyte"
    path.write_bytes(bytes([0, 0, 0x08, 3]) + np.asarray(dims, ">u4").tobytes())
    with pytest.raises(ValueError, match="a damaged header"):
        data.read_idx(path)


def test_idx_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "pipe-idx1-ubyte"
    os.mkfifo(fifo)

    def hung(signum, frame):
        raise TimeoutError("read_idx blocked on a FIFO")
    old = signal.signal(signal.SIGALRM, hung)
    signal.alarm(10)
    try:
        with pytest.raises(ValueError, match=re.escape(f"{fifo}: a FIFO, not an IDX file")):
            data.read_idx(fifo)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def test_a_corpus_that_is_not_utf8_is_refused_naming_the_file_and_byte_offset(tmp_path):
    path = tmp_path / "c.txt"
    path.write_bytes("first line\nsecond caf".encode() + b"\xe9 line\n")
    with pytest.raises(text.CorpusEncodingError) as info:
        list(data.load_corpus(path))
    assert str(info.value).startswith(f"{path}: not valid utf-8 text at byte offset 21 (line 2: ")
    assert list(data.load_corpus(path, encoding="latin-1")) == [["first", "line"], ["second", "cafe", "line"]]
    with pytest.raises(ValueError, match="unknown text encoding 'no-such-codec'"):
        data.load_corpus(path, encoding="no-such-codec")
    with pytest.raises(ValueError, match="encoding 'utf-16' is not supported for corpora"):
        data.load_corpus(path, encoding="utf-16")


def test_a_bad_byte_after_max_words_is_not_read(tmp_path):
    path = tmp_path / "c.txt"
    path.write_bytes(b"one two three\n\xff\xfe\n")
    assert list(data.load_corpus(path, max_words=3)) == [["one", "two", "three"]]


def test_evaluation_sets_that_are_not_utf8_name_the_file_and_byte(tmp_path):
    path = tmp_path / "sim.tsv"
    path.write_bytes(b"# comment\ncat dog 7.5\ncaf\xe9 tea 2\n")
    with pytest.raises(text.CorpusEncodingError, match=re.escape(f"{path}: not valid utf-8 text at byte offset 25")):
        data.load_similarity(path)
    (tmp_path / "q.txt").write_bytes(b": capital\nathens greece \xff oslo norway\n")
    with pytest.raises(text.CorpusEncodingError, match="q.txt: not valid utf-8 text at byte offset 24"):
        data.load_analogies(tmp_path / "q.txt")
