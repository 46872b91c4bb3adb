"""tinygrad_rep.functional: every activation and loss, forward against a vectorized numpy
reference and every Tensor argument's gradient through tr.gradcheck (float64), on
hypothesis-drawn inputs kept away from kinks. (Explicit-loop references: test_losses_reference.)"""
import numpy as np
import pytest
from hypothesis import assume, given, strategies as st

import tinygrad_rep as tr
import tinygrad_rep.functional as F
from tinygrad_rep import Tensor
from tinygrad_rep.testing import strategies as trst

from tinygrad_rep.testing import check_op

from helpers import (capped, np_log_softmax, np_logsigmoid, np_sigmoid, np_softmax)


def away(shape, **kw):
    return trst.away_from_kinks(shape, **kw)


def np_normalize(x, axis=-1, eps=1e-12):
    return x / np.maximum(np.sqrt(np.sum(x * x, axis=axis, keepdims=True)), eps)


# ---------------------------------------------------------------- activations

@given(x=away(trst.shapes(min_dims=1, min_side=0)))
def test_relu(x):
    check_op(F.relu, x, reference=lambda a: np.maximum(a, 0))


@given(x=trst.float_arrays(trst.shapes(min_side=0), min_value=-10, max_value=10))
def test_sigmoid_logsigmoid(x):
    check_op(F.sigmoid, x, reference=np_sigmoid)
    check_op(F.logsigmoid, x, reference=np_logsigmoid)


@given(data=st.data())
def test_softmax_log_softmax_any_axis(data):
    x = data.draw(trst.float_arrays(trst.shapes(min_dims=1), min_value=-5, max_value=5))
    axis = data.draw(st.integers(-x.ndim, x.ndim - 1))
    check_op(lambda t: F.softmax(t, axis=axis), x, reference=lambda a: np_softmax(a, axis))
    check_op(lambda t: F.log_softmax(t, axis=axis), x, reference=lambda a: np_log_softmax(a, axis))


def test_functions_accept_arrays_and_return_constants():
    x = np.array([[-1.0, 2.0]])
    for fn in (F.relu, F.sigmoid, F.logsigmoid, F.softmax, F.log_softmax, F.normalize):
        y = fn(x)
        assert isinstance(y, Tensor) and not y.requires_grad and y._ctx is None


# ---------------------------------------------------------------- normalize, cosine similarity

@given(data=st.data())
def test_normalize(data):
    x = data.draw(away(trst.shapes(min_dims=1)))
    axis = data.draw(st.integers(-x.ndim, x.ndim - 1))
    check_op(lambda t: F.normalize(t, axis=axis), x, reference=lambda a: np_normalize(a, axis))
    np.testing.assert_allclose(np.linalg.norm(F.normalize(Tensor(x), axis=axis).data, axis=axis), 1.0, rtol=1e-6)


def test_normalize_zero_vector_gives_zero_not_nan():
    x = Tensor(np.zeros((2, 3)), requires_grad=True)
    y = F.normalize(x, axis=1)
    np.testing.assert_array_equal(y.data, 0.0)
    (y * Tensor(np.arange(6.0).reshape(2, 3))).sum().backward()
    assert np.all(np.isfinite(x.grad.data))


@given(shapes=trst.broadcastable_shapes(n=2, min_dims=1), data=st.data())
def test_cosine_similarity_broadcasting(shapes, data):
    a = data.draw(away(shapes[0]))
    b = data.draw(away(shapes[1]))
    nd = max(a.ndim, b.ndim)
    axis = data.draw(st.integers(-min(a.ndim, b.ndim), -1))  # an axis both operands have

    def ref(x, y):
        return np.sum(x * y, axis=axis) / np.maximum(np.sqrt(np.sum(x * x, axis=axis)) *
                                                    np.sqrt(np.sum(y * y, axis=axis)), 1e-8)
    assert nd >= 1
    check_op(lambda x, y: F.cosine_similarity(x, y, axis=axis), a, b, reference=ref)


def test_cosine_similarity_default_axis_and_range():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((5, 4)), rng.standard_normal((5, 4))
    c = F.cosine_similarity(Tensor(a), Tensor(b)).data
    assert c.shape == (5,) and np.all(np.abs(c) <= 1 + 1e-12)
    np.testing.assert_allclose(F.cosine_similarity(Tensor(a), Tensor(2.5 * a)).data, 1.0, rtol=1e-12)
    np.testing.assert_allclose(F.cosine_similarity(Tensor(a), Tensor(-a)).data, -1.0, rtol=1e-12)


# ---------------------------------------------------------------- regression / binary losses

@given(shape=trst.shapes(min_side=1), data=st.data())
def test_mse_loss_both_arguments_get_gradients(shape, data):
    x = data.draw(trst.float_arrays(shape))
    y = data.draw(trst.float_arrays(shape))
    check_op(F.mse_loss, x, y, reference=lambda a, b: np.mean((a - b) ** 2))
    xt, yt = Tensor(x, requires_grad=True), Tensor(y, requires_grad=True)
    F.mse_loss(xt, yt).backward()
    np.testing.assert_allclose(xt.grad.data, 2 * (x - y) / x.size, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(yt.grad.data, -2 * (x - y) / x.size, rtol=1e-12, atol=1e-15)


@given(shape=trst.shapes(min_side=1), data=st.data())
def test_bce_with_logits_both_arguments_get_gradients(shape, data):
    x = data.draw(trst.float_arrays(shape, min_value=-8, max_value=8))
    t = data.draw(trst.float_arrays(shape, min_value=0, max_value=1))

    def ref(a, b):
        return np.mean(-b * np_logsigmoid(a) - (1 - b) * np_logsigmoid(-a))
    check_op(F.binary_cross_entropy_with_logits, x, t, reference=ref)
    xt, tt = Tensor(x, requires_grad=True), Tensor(t, requires_grad=True)
    F.binary_cross_entropy_with_logits(xt, tt).backward()
    np.testing.assert_allclose(xt.grad.data, (np_sigmoid(x) - t) / x.size, rtol=1e-10, atol=1e-15)
    np.testing.assert_allclose(tt.grad.data, -x / x.size, rtol=1e-10, atol=1e-15)


def test_bce_with_logits_constant_target():
    x = Tensor(np.array([0.5, -2.0, 3.0]), requires_grad=True)
    assert tr.gradcheck(lambda a: F.binary_cross_entropy_with_logits(a, np.array([1.0, 0.0, 0.5])), [x])


# ---------------------------------------------------------------- classification, embeddings

@st.composite
def logits_targets(draw, min_batch=1):
    B = draw(st.integers(min_batch, 5))
    C = draw(st.integers(1, 5))
    logits = draw(trst.float_arrays((B, C), min_value=-6, max_value=6))
    targets = np.array(draw(st.lists(st.integers(0, C - 1), min_size=B, max_size=B)), dtype=np.int64)
    return logits, targets


@given(lt=logits_targets())
def test_cross_entropy(lt):
    logits, targets = lt
    ref = lambda x, t: -np.mean(np_log_softmax(x, -1)[np.arange(len(t)), t])
    check_op(F.cross_entropy, logits, targets, reference=ref)
    x = Tensor(logits, requires_grad=True)
    F.cross_entropy(x, targets).backward()
    onehot = np.eye(logits.shape[1])[targets]
    np.testing.assert_allclose(x.grad.data, (np_softmax(logits, -1) - onehot) / len(targets), rtol=1e-10, atol=1e-15)


@pytest.mark.parametrize("tdtype", [np.int64, np.int32, np.uint8])
def test_cross_entropy_target_containers(tdtype):
    logits = np.random.default_rng(1).standard_normal((3, 4))
    t = np.array([3, 0, 3], dtype=tdtype)
    expected = -np.mean(np_log_softmax(logits, -1)[np.arange(3), t.astype(np.int64)])
    for targets in (t, Tensor(t), list(t.astype(int))):
        np.testing.assert_allclose(F.cross_entropy(Tensor(logits), targets).item(), expected, rtol=1e-12)


def test_cross_entropy_float32_stays_float32():
    logits = Tensor(np.random.default_rng(2).standard_normal((4, 3)).astype(np.float32), requires_grad=True)
    loss = F.cross_entropy(logits, np.array([0, 1, 2, 1]))
    assert loss.dtype == np.float32 and loss.shape == ()
    loss.backward()
    assert logits.grad.dtype == np.float32


@given(data=st.data())
def test_embedding(data):
    V = data.draw(st.integers(1, 6))
    d = data.draw(st.integers(1, 4))
    W = data.draw(trst.float_arrays((V, d)))
    idx_shape = data.draw(trst.shapes(min_dims=0, max_dims=2, min_side=0))
    idx = np.array(data.draw(st.lists(st.integers(0, V - 1), min_size=int(np.prod(idx_shape)),
                                      max_size=int(np.prod(idx_shape)))), dtype=np.int64).reshape(idx_shape)
    check_op(F.embedding, W, idx, reference=lambda w, i: w[i])
    w = Tensor(W, requires_grad=True)
    F.embedding(w, idx).sum().backward()
    counts = np.bincount(idx.reshape(-1), minlength=V).astype(np.float64)
    np.testing.assert_array_equal(w.grad.data, np.repeat(counts[:, None], d, axis=1))  # repeats add up


# ---------------------------------------------------------------- contrastive and word2vec losses

def np_nt_xent(z1, z2, temperature):
    z = np_normalize(np.concatenate([z1, z2]), axis=1)
    n = len(z1)
    s = z @ z.T / temperature
    np.fill_diagonal(s, -np.inf)
    pos = np.concatenate([np.arange(n, 2 * n), np.arange(n)])
    return -np.mean(np_log_softmax(s, -1)[np.arange(2 * n), pos])


@st.composite
def pairs(draw, max_n=4, max_d=4):
    n = draw(st.integers(1, max_n))
    d = draw(st.integers(1, max_d))
    return draw(away((n, d), delta=0.2)), draw(away((n, d), delta=0.2))


@given(zz=pairs(), temperature=st.sampled_from([0.1, 0.5, 1.0]))
@capped(15)
def test_nt_xent(zz, temperature):
    z1, z2 = zz
    check_op(lambda a, b: F.nt_xent_loss(a, b, temperature=temperature), z1, z2,
             reference=lambda a, b: np_nt_xent(a, b, temperature))


def np_info_nce(q, p, negs, temperature):
    q, p = np_normalize(q, 1), np_normalize(p, 1)
    if negs is None:
        logits = q @ p.T / temperature
        return -np.mean(np_log_softmax(logits, -1)[np.arange(len(q)), np.arange(len(q))])
    negs = np_normalize(negs, 1)
    logits = np.concatenate([np.sum(q * p, 1, keepdims=True), q @ negs.T], axis=1) / temperature
    return -np.mean(np_log_softmax(logits, -1)[:, 0])


@given(zz=pairs(), temperature=st.sampled_from([0.1, 0.5]))
@capped(15)
def test_info_nce_without_negatives(zz, temperature):
    q, p = zz
    check_op(lambda a, b: F.info_nce_loss(a, b, temperature=temperature), q, p,
             reference=lambda a, b: np_info_nce(a, b, None, temperature))


@given(zz=pairs(), m=st.integers(1, 4), data=st.data())
@capped(15)
def test_info_nce_with_negatives(zz, m, data):
    q, p = zz
    negs = data.draw(away((m, q.shape[1]), delta=0.2))
    check_op(lambda a, b, c: F.info_nce_loss(a, b, c, temperature=0.2), q, p, negs,
             reference=lambda a, b, c: np_info_nce(a, b, c, 0.2))


@given(data=st.data())
def test_triplet_margin_loss(data):
    shape = data.draw(trst.shapes(min_dims=1, max_dims=3))
    a, p, n = (data.draw(trst.float_arrays(shape)) for _ in range(3))
    margin = data.draw(st.sampled_from([0.0, 0.5, 1.0, 2.0]))
    dp = np.sqrt(np.sum((a - p) ** 2, -1))
    dn = np.sqrt(np.sum((a - n) ** 2, -1))
    assume(np.all(dp > 0.1) and np.all(dn > 0.1) and np.all(np.abs(dp - dn + margin) > 0.05))  # no kinks
    check_op(lambda x, y, z: F.triplet_margin_loss(x, y, z, margin=margin), a, p, n,
             reference=lambda x, y, z: np.mean(np.maximum(np.sqrt(np.sum((x - y) ** 2, -1)) -
                                                np.sqrt(np.sum((x - z) ** 2, -1)) + margin, 0)))


@given(data=st.data())
def test_skipgram_negative_sampling_loss(data):
    B, K, d = data.draw(st.integers(1, 4)), data.draw(st.integers(1, 4)), data.draw(st.integers(1, 4))
    c = data.draw(trst.float_arrays((B, d), min_value=-2, max_value=2))
    o = data.draw(trst.float_arrays((B, d), min_value=-2, max_value=2))
    neg = data.draw(trst.float_arrays((B, K, d), min_value=-2, max_value=2))

    def ref(c, o, neg):
        return -np.mean(np_logsigmoid(np.sum(c * o, 1)) + np.sum(np_logsigmoid(-np.einsum("bkd,bd->bk", neg, c)), 1))
    check_op(F.skipgram_negative_sampling_loss, c, o, neg, reference=ref)


def test_every_loss_argument_receives_a_gradient():
    rng = np.random.default_rng(3)
    T = lambda *shape: Tensor(rng.standard_normal(shape), requires_grad=True)
    cases = [
        (F.mse_loss, (T(3, 2), T(3, 2))),
        (F.binary_cross_entropy_with_logits, (T(4), Tensor(rng.uniform(size=4), requires_grad=True))),
        (lambda a, b: F.nt_xent_loss(a, b), (T(3, 4), T(3, 4))),
        (lambda a, b: F.info_nce_loss(a, b), (T(3, 4), T(3, 4))),
        (lambda a, b, c: F.info_nce_loss(a, b, c), (T(3, 4), T(3, 4), T(5, 4))),
        (lambda a, b, c: F.triplet_margin_loss(a, b, c, margin=10.0), (T(3, 4), T(3, 4), T(3, 4))),
        (F.skipgram_negative_sampling_loss, (T(3, 4), T(3, 4), T(3, 2, 4))),
        (lambda a, b: F.cosine_similarity(a, b).sum(), (T(3, 4), T(3, 4))),
        (lambda w: F.embedding(w, np.array([0, 2, 2])).sum(), (T(4, 3),)),
        (lambda x: F.cross_entropy(x, np.array([1, 0])), (T(2, 3),)),
    ]
    for fn, args in cases:
        loss = fn(*args)
        assert loss.shape == () and loss.requires_grad
        loss.backward()
        for i, a in enumerate(args):
            assert a.grad is not None, f"{fn}: argument {i} got no gradient"
            assert a.grad.shape == a.shape and np.any(a.grad.data != 0), f"{fn}: argument {i}"
        assert tr.gradcheck(fn, list(args))
