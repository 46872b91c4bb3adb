"""Losses against explicit-loop references, and the known traps.

Each reference is written once, as loops over anchors / rows on scalars, against a tiny
`ops` namespace. Run with `MathOps` (Python floats, math.exp/log) it gives the value,
independently of the engine; run with `TensorOps` (scalar Tensor ops, no fused kernels, no
masks) it gives gradients by plain backprop through the loops. F's vectorized losses must
match both to 1e-10 in float64.
"""
import functools
import math

import numpy as np
import pytest
from hypothesis import given, strategies as st

import tinygrad_rep as tr
import tinygrad_rep.functional as F
from tinygrad_rep import Tensor
from tinygrad_rep.testing import strategies as trst

from helpers import capped

TOL = dict(rtol=1e-10, atol=1e-10)


class MathOps:
    """Scalars are Python floats, rows are float64 ndarrays."""
    exp, log, sqrt = staticmethod(math.exp), staticmethod(math.log), staticmethod(math.sqrt)

    @staticmethod
    def row(x, i):
        return np.asarray(x)[i]

    @staticmethod
    def dot(a, b):
        return float(np.dot(a, b))

    @staticmethod
    def value(s):
        return float(s)

    @staticmethod
    def relu(s):
        return s if s > 0 else 0.0

    @staticmethod
    def logsigmoid(s):
        return -float(np.logaddexp(0.0, -s))  # log sigma written with logaddexp: stable


class TensorOps:
    """Scalars and rows are Tensors; every step is an elementary op of the engine."""
    exp, log, sqrt = staticmethod(lambda s: s.exp()), staticmethod(lambda s: s.log()), staticmethod(lambda s: s.sqrt())

    @staticmethod
    def row(x, i):
        return x[i]

    @staticmethod
    def dot(a, b):
        return (a * b).sum()

    @staticmethod
    def value(s):
        return float(s.data)

    @staticmethod
    def relu(s):
        return s.relu()

    @staticmethod
    def logsigmoid(s):
        return -(1 + (-s).exp()).log()


def lse(ops, terms):
    """log sum exp of a list of scalars, shifted by their max (a constant)."""
    m = max(ops.value(t) for t in terms)
    return ops.log(functools.reduce(lambda a, b: a + b, [ops.exp(t - m) for t in terms])) + m


def unit(ops, r):
    return r / ops.sqrt(ops.dot(r, r))


def loop_nt_xent(ops, z1, z2, temperature, include_self=False):
    """SimCLR NT-Xent as a double loop over the 2N anchors; j == i is skipped."""
    n = len(z1)
    rows = [unit(ops, ops.row(z1, i)) for i in range(n)] + [unit(ops, ops.row(z2, i)) for i in range(n)]
    total = 0.0
    for i in range(2 * n):
        pos = (i + n) % (2 * n)
        terms = [ops.dot(rows[i], rows[j]) / temperature for j in range(2 * n) if include_self or j != i]
        total = total + (lse(ops, terms) - ops.dot(rows[i], rows[pos]) / temperature)
    return total / (2 * n)


def loop_info_nce(ops, q, p, negatives, temperature):
    n = len(q)
    qs = [unit(ops, ops.row(q, i)) for i in range(n)]
    ps = [unit(ops, ops.row(p, i)) for i in range(n)]
    total = 0.0
    for i in range(n):
        if negatives is None:   # the other rows' positives are the negatives
            terms = [ops.dot(qs[i], ps[j]) / temperature for j in range(n)]
        else:
            ns = [unit(ops, ops.row(negatives, m)) for m in range(len(negatives))]
            terms = [ops.dot(qs[i], ps[i]) / temperature] + [ops.dot(qs[i], v) / temperature for v in ns]
        total = total + (lse(ops, terms) - ops.dot(qs[i], ps[i]) / temperature)
    return total / n


def loop_triplet(ops, a, p, n, margin):
    total = 0.0
    for i in range(len(a)):
        dap, dan = ops.row(a, i) - ops.row(p, i), ops.row(a, i) - ops.row(n, i)
        total = total + ops.relu(ops.sqrt(ops.dot(dap, dap)) - ops.sqrt(ops.dot(dan, dan)) + margin)
    return total / len(a)


def loop_sgns(ops, c, o, negs):
    total = 0.0
    B, K = negs.shape[0], negs.shape[1]
    for b in range(B):
        cb = ops.row(c, b)
        term = ops.logsigmoid(ops.dot(cb, ops.row(o, b)))
        for k in range(K):
            term = term + ops.logsigmoid(-ops.dot(cb, ops.row(ops.row(negs, b), k)))
        total = total - term
    return total / B


def loop_cross_entropy(ops, logits, targets):
    total = 0.0
    for i, t in enumerate(targets):
        r = ops.row(logits, i)
        terms = [ops.row(r, c) for c in range(logits.shape[1])]
        total = total + (lse(ops, terms) - terms[int(t)])
    return total / len(targets)


def compare(f_loss, loop, arrays, consts=()):
    """F's value vs the MathOps loop, F's gradients vs the TensorOps loop (all 1e-10)."""
    ts = [Tensor(a, requires_grad=True) for a in arrays]
    loss = f_loss(*ts, *consts)
    loss.backward()
    np.testing.assert_allclose(loss.item(), loop(MathOps, *arrays, *consts), **TOL)
    rs = [Tensor(a, requires_grad=True) for a in arrays]
    ref = loop(TensorOps, *rs, *consts)
    ref.backward()
    np.testing.assert_allclose(ref.item(), loss.item(), **TOL)
    for i, (t, r) in enumerate(zip(ts, rs)):
        assert t.grad is not None and r.grad is not None, f"argument {i} got no gradient"
        np.testing.assert_allclose(t.grad.data, r.grad.data, err_msg=f"gradient of argument {i}", **TOL)
    return loss, ts


@st.composite
def views(draw, min_n=1, max_n=5, max_d=4):
    n, d = draw(st.integers(min_n, max_n)), draw(st.integers(1, max_d))
    return draw(trst.away_from_kinks((n, d), delta=0.2)), draw(trst.away_from_kinks((n, d), delta=0.2))


# ---------------------------------------------------------------- NT-Xent

@given(zz=views(), temperature=st.sampled_from([0.05, 0.1, 0.5, 1.0]))
@capped(12)
def test_nt_xent_matches_double_loop(zz, temperature):
    compare(lambda a, b, t: F.nt_xent_loss(a, b, temperature=t), loop_nt_xent, zz, (temperature,))


def test_nt_xent_self_pair_gets_exactly_zero_gradient(monkeypatch):
    rng = np.random.default_rng(0)
    z1, z2 = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    captured = {}
    real_ce = F.cross_entropy

    def spy(logits, targets):  # nt_xent's similarity logits, the self-pair masked to -inf
        captured["logits"] = logits
        logits.register_hook(lambda g: captured.__setitem__("grad", g.data.copy()))
        return real_ce(logits, targets)

    monkeypatch.setattr(F, "cross_entropy", spy)
    a, b = Tensor(z1, requires_grad=True), Tensor(z2, requires_grad=True)
    loss = F.nt_xent_loss(a, b, temperature=0.5)
    loss.backward()
    s, g = captured["logits"].data, captured["grad"]
    assert np.all(np.isneginf(np.diag(s)))            # the self-pair is masked out of the logits...
    assert np.all(np.diag(g) == 0.0)                   # ...and d loss / d s_ii is exactly zero
    off = ~np.eye(8, dtype=bool)
    assert np.all(g[off] != 0.0)                       # every other pair does receive gradient
    # the loop that skips j == i agrees; one that keeps the self-pair does not
    np.testing.assert_allclose(loss.item(), loop_nt_xent(MathOps, z1, z2, 0.5), **TOL)
    assert abs(loop_nt_xent(MathOps, z1, z2, 0.5, include_self=True) - loss.item()) > 1e-3


@given(zz=views(min_n=2), data=st.data())
@capped(10)
def test_nt_xent_invariant_to_permuting_pairs(zz, data):
    z1, z2 = zz
    perm = np.array(data.draw(st.permutations(range(len(z1)))))
    a, b = Tensor(z1, requires_grad=True), Tensor(z2, requires_grad=True)
    pa, pb = Tensor(z1[perm], requires_grad=True), Tensor(z2[perm], requires_grad=True)
    l1, l2 = F.nt_xent_loss(a, b), F.nt_xent_loss(pa, pb)
    np.testing.assert_allclose(l1.item(), l2.item(), rtol=1e-12, atol=1e-12)
    l1.backward()
    l2.backward()
    np.testing.assert_allclose(pa.grad.data, a.grad.data[perm], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(pb.grad.data, b.grad.data[perm], rtol=1e-10, atol=1e-12)
    # swapping the two views is a permutation of the anchors too
    np.testing.assert_allclose(F.nt_xent_loss(Tensor(z2), Tensor(z1)).item(), l1.item(), rtol=1e-12)


def test_nt_xent_partial_last_batch():
    rng = np.random.default_rng(1)
    data1, data2 = rng.standard_normal((11, 4)), rng.standard_normal((11, 4))
    for start in range(0, 11, 4):                      # batches of 4, 4 and a partial 3
        z1, z2 = data1[start:start + 4], data2[start:start + 4]
        compare(lambda a, b: F.nt_xent_loss(a, b, temperature=0.3),
                lambda ops, a, b: loop_nt_xent(ops, a, b, 0.3), (z1, z2))


def test_nt_xent_single_pair_is_zero():
    # N = 1: each anchor's only candidate is its positive, so the loss is log(1) = 0
    a, b = Tensor([[1.0, 2.0]], requires_grad=True, dtype=np.float64), Tensor([[-3.0, 0.5]], requires_grad=True, dtype=np.float64)
    loss = F.nt_xent_loss(a, b)
    loss.backward()
    assert loss.item() == 0.0
    np.testing.assert_array_equal(a.grad.data, 0.0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("scale", [1.0, 1e3])
def test_nt_xent_tiny_temperature_and_huge_logits_stay_finite(dtype, scale):
    rng = np.random.default_rng(2)
    z1 = rng.standard_normal((5, 8)) * scale
    z2 = z1 + 0.3 * scale * rng.standard_normal((5, 8))
    a, b = Tensor(z1.astype(dtype), requires_grad=True), Tensor(z2.astype(dtype), requires_grad=True)
    loss = F.nt_xent_loss(a, b, temperature=0.01)      # logits up to 1/0.01 = 100: exp(100) overflows float32
    loss.backward()
    assert loss.dtype == dtype and np.isfinite(loss.item())
    assert np.all(np.isfinite(a.grad.data)) and np.all(np.isfinite(b.grad.data))
    ref = loop_nt_xent(MathOps, z1.astype(dtype).astype(np.float64), z2.astype(dtype).astype(np.float64), 0.01)
    assert ref > 1e-3  # a loss of O(1), not a trivially tiny one
    np.testing.assert_allclose(loss.item(), ref, rtol=1e-10 if dtype == np.float64 else 1e-4)


# ---------------------------------------------------------------- InfoNCE, triplet, SGNS, cross-entropy

@given(zz=views(), temperature=st.sampled_from([0.07, 0.1, 1.0]))
@capped(12)
def test_info_nce_without_negatives_matches_loop(zz, temperature):
    compare(lambda q, p, t: F.info_nce_loss(q, p, temperature=t),
            lambda ops, q, p, t: loop_info_nce(ops, q, p, None, t), zz, (temperature,))


@given(zz=views(), m=st.integers(1, 5), data=st.data())
@capped(12)
def test_info_nce_with_negatives_matches_loop(zz, m, data):
    negs = data.draw(trst.away_from_kinks((m, zz[0].shape[1]), delta=0.2))
    compare(lambda q, p, n: F.info_nce_loss(q, p, n, temperature=0.1),
            lambda ops, q, p, n: loop_info_nce(ops, q, p, n, 0.1), (*zz, negs))


@given(data=st.data())
@capped(12)
def test_triplet_matches_loop(data):
    B, d = data.draw(st.integers(1, 5)), data.draw(st.integers(1, 4))
    a, p, n = (data.draw(trst.float_arrays((B, d))) for _ in range(3))
    margin = data.draw(st.sampled_from([0.2, 1.0, 3.0]))
    dp, dn = np.linalg.norm(a - p, axis=1), np.linalg.norm(a - n, axis=1)
    if np.any(dp < 0.1) or np.any(dn < 0.1) or np.any(np.abs(dp - dn + margin) < 0.05):
        return  # too close to a kink: the hinge or a norm at 0 (rare)
    compare(lambda a, p, n: F.triplet_margin_loss(a, p, n, margin=margin),
            lambda ops, a, p, n: loop_triplet(ops, a, p, n, margin), (a, p, n))


@given(data=st.data())
@capped(12)
def test_sgns_matches_loop(data):
    B, K, d = data.draw(st.integers(1, 4)), data.draw(st.integers(1, 4)), data.draw(st.integers(1, 4))
    c, o = (data.draw(trst.float_arrays((B, d), min_value=-2, max_value=2)) for _ in range(2))
    negs = data.draw(trst.float_arrays((B, K, d), min_value=-2, max_value=2))
    compare(F.skipgram_negative_sampling_loss, loop_sgns, (c, o, negs))


def test_sgns_large_scores_stay_finite():
    c = Tensor(np.full((2, 3), 30.0), requires_grad=True)
    o = Tensor(np.full((2, 3), -30.0), requires_grad=True)       # c.o = -2700: log sigma = -2700
    negs = Tensor(np.full((2, 2, 3), -30.0), requires_grad=True)  # c.n = -2700: log sigma(2700) = 0
    loss = F.skipgram_negative_sampling_loss(c, o, negs)
    loss.backward()
    np.testing.assert_allclose(loss.item(), 2700.0, rtol=1e-12)
    np.testing.assert_allclose(loss.item(), loop_sgns(MathOps, c.data, o.data, negs.data), rtol=1e-12)
    for t in (c, o, negs):
        assert np.all(np.isfinite(t.grad.data))


@given(data=st.data())
@capped(15)
def test_cross_entropy_matches_loop(data):
    B, C = data.draw(st.integers(1, 5)), data.draw(st.integers(1, 5))
    logits = data.draw(trst.float_arrays((B, C), min_value=-10, max_value=10))
    targets = np.array(data.draw(st.lists(st.integers(0, C - 1), min_size=B, max_size=B)))
    compare(F.cross_entropy, loop_cross_entropy, (logits,), (targets,))


# ---------------------------------------------------------------- extreme logits, -inf entries

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softmax_family_with_huge_and_minus_inf_logits(dtype):
    x = np.array([[1000.0, -1000.0, 0.0], [1000.0, 1000.0, -np.inf], [-np.inf, 0.0, 0.0]], dtype=dtype)
    w = np.array([[1.0, 2.0, 3.0], [-1.0, 4.0, 2.0], [5.0, 1.0, -2.0]], dtype=dtype)
    t = Tensor(x, requires_grad=True)
    y = t.softmax(-1)
    np.testing.assert_allclose(y.data, [[1, 0, 0], [0.5, 0.5, 0], [0, 0.5, 0.5]], atol=1e-7)
    (y * Tensor(w)).sum().backward()
    p = y.data.astype(np.float64)
    expected = p * (w - (w * p).sum(-1, keepdims=True))
    assert np.all(np.isfinite(t.grad.data))
    np.testing.assert_allclose(t.grad.data, expected, atol=1e-6)

    t = Tensor(x, requires_grad=True)
    y = t.log_softmax(-1)
    np.testing.assert_allclose(y.data, [[0, -2000, -1000], [-math.log(2), -math.log(2), -np.inf],
                                        [-np.inf, -math.log(2), -math.log(2)]], rtol=1e-6)
    (y * Tensor(w)).sum().backward()
    assert np.all(np.isfinite(t.grad.data))
    np.testing.assert_allclose(t.grad.data, w - p * w.sum(-1, keepdims=True), atol=1e-5)

    t = Tensor(x, requires_grad=True)
    y = t.logsumexp(-1)
    np.testing.assert_allclose(y.data, [1000, 1000 + math.log(2), math.log(2)], rtol=1e-6)
    y.sum().backward()
    # exp(x - logsumexp(x)) with logsumexp ~ 1000 carries float32 rounding of 1000 (~6e-5), as in PyTorch
    np.testing.assert_allclose(t.grad.data, p, atol=1e-7 if dtype == np.float64 else 1e-4)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cross_entropy_with_huge_and_minus_inf_logits(dtype):
    x = np.array([[1000.0, -1000.0, 0.0], [1000.0, -1000.0, 0.0], [-np.inf, 0.0, 0.0]], dtype=dtype)
    targets = np.array([1, 0, 2])
    t = Tensor(x, requires_grad=True)
    loss = F.cross_entropy(t, targets)
    np.testing.assert_allclose(loss.item(), (2000.0 + 0.0 + math.log(2)) / 3, rtol=1e-6)
    loss.backward()
    expected = np.array([[1, -1, 0], [0, 0, 0], [0, 0.5, -0.5]]) / 3
    assert np.all(np.isfinite(t.grad.data))
    np.testing.assert_allclose(t.grad.data, expected, atol=1e-7)
    # the -inf entry is not the target: the value is finite too when computed row by row
    np.testing.assert_allclose(loop_cross_entropy(MathOps, x[2:].astype(np.float64), [2]), math.log(2))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bce_with_logits_huge_logits(dtype):
    x = Tensor(np.array([1000.0, 1000.0, -1000.0, -1000.0], dtype=dtype), requires_grad=True)
    y = Tensor(np.array([1.0, 0.0, 1.0, 0.0], dtype=dtype), requires_grad=True)
    loss = F.binary_cross_entropy_with_logits(x, y)
    np.testing.assert_allclose(loss.item(), (0 + 1000 + 1000 + 0) / 4, rtol=1e-6)
    loss.backward()
    np.testing.assert_allclose(x.grad.data, np.array([0.0, 1.0, -1.0, 0.0]) / 4, atol=1e-7)
    np.testing.assert_allclose(y.grad.data, -x.data / 4, rtol=1e-6)
    assert x.grad.dtype == dtype and y.grad.dtype == dtype
