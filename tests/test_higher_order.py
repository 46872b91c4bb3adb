"""Higher-order gradients: gradgradcheck on a small MLP and on every op's backward,
Hessian-vector products against finite differences of gradients, and first-order backward
recording no graph."""
import numpy as np
import pytest
from hypothesis import given

import tinygrad_rep as tr
import tinygrad_rep.functional as F
from tinygrad_rep import Tensor
from tinygrad_rep.testing import strategies as trst

from helpers import capped

rng = np.random.default_rng(1234)


def T(*shape, low=-1.0, high=1.0, grad=True):
    return Tensor(rng.uniform(low, high, size=shape), requires_grad=grad)


def softplus(x):
    return -(-x).logsigmoid()  # log(1 + exp(x)), smooth


def mlp(x, w1, b1, w2, b2, act):
    return (act(x @ w1 + b1) @ w2 + b2).sum(axis=-1)


@pytest.mark.parametrize("act", [lambda h: h.tanh(), softplus, lambda h: h.sigmoid()],
                         ids=["tanh", "softplus", "sigmoid"])
def test_gradgradcheck_small_mlp(act):
    params = [T(3, 4), T(4, 5), T(5), T(5, 2), T(2)]
    assert tr.gradgradcheck(lambda *p: mlp(*p, act=act), params)


def test_gradgradcheck_mlp_with_loss():
    x, w1, b1, w2 = T(4, 3), T(3, 5), T(5), T(5, 3)
    targets = np.array([0, 2, 1, 2])
    assert tr.gradgradcheck(lambda x, w1, b1, w2: F.cross_entropy(softplus(x @ w1 + b1) @ w2, targets),
                            [x, w1, b1, w2])


OPS = {
    "add_broadcast": (lambda a, b: a + b, lambda: [T(2, 3), T(3)]),
    "sub": (lambda a, b: a - b, lambda: [T(2, 3), T(2, 1)]),
    "mul": (lambda a, b: a * b, lambda: [T(2, 3), T(1, 3)]),
    "div": (lambda a, b: a / b, lambda: [T(2, 3), T(2, 3, low=0.5, high=2.0)]),
    "pow": (lambda a: a ** 3.5, lambda: [T(2, 3, low=0.3, high=2.0)]),
    "pow_neg": (lambda a: a ** -1.5, lambda: [T(4, low=0.5, high=2.0)]),
    "exp": (lambda a: a.exp(), lambda: [T(2, 3)]),
    "log": (lambda a: a.log(), lambda: [T(2, 3, low=0.3, high=2.0)]),
    "sqrt": (lambda a: a.sqrt(), lambda: [T(2, 3, low=0.3, high=2.0)]),
    "sigmoid": (lambda a: a.sigmoid(), lambda: [T(2, 3, low=-3, high=3)]),
    "logsigmoid": (lambda a: a.logsigmoid(), lambda: [T(2, 3, low=-3, high=3)]),
    "tanh": (lambda a: a.tanh(), lambda: [T(2, 3)]),
    "relu_quadratic": (lambda a: a.relu() * a, lambda: [Tensor(np.array([[-1.0, 0.5, 2.0], [0.3, -0.7, 1.1]]),
                                                               requires_grad=True)]),
    "abs_quadratic": (lambda a: a.abs() * a, lambda: [Tensor(np.array([-1.0, 0.5, 2.0]), requires_grad=True)]),
    "softmax": (lambda a: a.softmax(-1), lambda: [T(2, 4)]),
    "softmax_axis0": (lambda a: a.softmax(0), lambda: [T(3, 2)]),
    "log_softmax": (lambda a: a.log_softmax(-1), lambda: [T(2, 4)]),
    "logsumexp": (lambda a: a.logsumexp(axis=(0, 1)), lambda: [T(2, 3)]),
    "sum_mean": (lambda a: (a * a).sum(axis=0) + (a * a).mean(), lambda: [T(2, 3)]),
    "max": (lambda a: a.max(axis=1) ** 2, lambda: [Tensor(np.array([[1.0, -2.0, 0.5], [0.1, 0.9, 3.0]]),
                                                           requires_grad=True)]),
    "norm": (lambda a: a.norm(axis=-1), lambda: [T(2, 3, low=0.3, high=1.0)]),
    "matmul": (lambda a, b: a @ b, lambda: [T(2, 3), T(3, 2)]),
    "matmul_batched": (lambda a, b: a @ b, lambda: [T(2, 1, 2, 3), T(3, 3, 2)]),
    "matmul_vec": (lambda a, b: a @ b, lambda: [T(3), T(2, 3, 2)]),
    "reshape_transpose": (lambda a: (a.reshape(3, 2).T * a.T.T.reshape(2, 3)), lambda: [T(2, 3)]),
    "getitem": (lambda a: a[np.array([0, 0, 1]), 1:] ** 2, lambda: [T(2, 3)]),
    "concat_stack": (lambda a, b: tr.concat([a * b, tr.stack([a, b], axis=0).sum(0)], axis=1), lambda: [T(2, 2), T(2, 2)]),
    "expand": (lambda a: a.expand(2, 3) * a, lambda: [T(1, 3)]),
    "cross_entropy": (lambda a: F.cross_entropy(a, np.array([1, 0, 2])), lambda: [T(3, 4)]),
    "embedding": (lambda w: F.embedding(w, np.array([[0, 2], [2, 2]])) ** 2, lambda: [T(3, 2)]),
    "normalize": (lambda a: F.normalize(a), lambda: [T(2, 3, low=0.3, high=1.0)]),
    "cosine_similarity": (lambda a, b: F.cosine_similarity(a, b), lambda: [T(2, 3), T(2, 3)]),
    "mse": (F.mse_loss, lambda: [T(2, 3), T(2, 3)]),
    "bce_with_logits": (F.binary_cross_entropy_with_logits, lambda: [T(2, 3), T(2, 3, low=0, high=1)]),
    "nt_xent": (lambda a, b: F.nt_xent_loss(a, b, temperature=0.5), lambda: [T(2, 3), T(2, 3)]),
    "info_nce": (lambda a, b, c: F.info_nce_loss(a, b, c, temperature=0.5), lambda: [T(2, 3), T(2, 3), T(2, 3)]),
    "triplet": (lambda a, b, c: F.triplet_margin_loss(a, b, c, margin=5.0), lambda: [T(2, 3), T(2, 3), T(2, 3)]),
    "sgns": (F.skipgram_negative_sampling_loss, lambda: [T(2, 3), T(2, 3), T(2, 2, 3)]),
}


@pytest.mark.parametrize("name", list(OPS))
def test_gradgradcheck_every_op(name):
    fn, make = OPS[name]
    assert tr.gradgradcheck(fn, make())


def test_gradgradcheck_cast_round_trip():
    # through float32 the function itself is rounded (~6e-8 relative): differences need a larger eps
    assert tr.gradgradcheck(lambda a: a.astype(np.float32).astype(np.float64) * a, [T(3)], eps=1e-3, rtol=1e-2)


@given(x=trst.tensors(shape=trst.shapes(min_dims=1, max_dims=2, max_side=3)))
@capped(10)
def test_gradgradcheck_softmax_family_drawn(x):
    assert tr.gradgradcheck(lambda t: t.log_softmax(-1) * t.softmax(0), [x])


def _grad(f, x):
    xt = Tensor(x, requires_grad=True)
    g, = tr.grad(f(xt), [xt])
    return g.data


def test_hessian_vector_product_against_finite_differences():
    A = rng.standard_normal((4, 3))

    def f(x):
        h = (x @ Tensor(A)).tanh()
        return (h * h).sum() + softplus(x).sum() + (x * x * x).sum()

    x0 = rng.standard_normal((2, 4))
    v = rng.standard_normal((2, 4))
    x = Tensor(x0, requires_grad=True)
    g, = tr.grad(f(x), [x], create_graph=True)
    assert g.requires_grad and g._ctx is not None      # the gradient is part of a graph
    hv, = tr.grad((g * Tensor(v)).sum(), [x])
    eps = 1e-5
    fd = (_grad(f, x0 + eps * v) - _grad(f, x0 - eps * v)) / (2 * eps)
    np.testing.assert_allclose(hv.data, fd, rtol=1e-6, atol=1e-7)


def test_full_hessian_of_quadratic_form():
    M = rng.standard_normal((3, 3))
    x = Tensor(rng.standard_normal(3), requires_grad=True)
    g, = tr.grad((x @ Tensor(M) @ x), [x], create_graph=True)
    H = np.stack([tr.grad(g[i], [x])[0].data for i in range(3)])
    np.testing.assert_allclose(H, M + M.T, rtol=1e-12)


def test_backward_create_graph_then_differentiate_the_gradient():
    x = Tensor(np.array([1.0, -2.0, 0.5]), requires_grad=True)
    (x ** 3).sum().backward(create_graph=True)
    g = x.grad
    assert g.requires_grad and g._ctx is not None
    np.testing.assert_allclose(g.data, 3 * x.data ** 2)
    x.grad = None
    g.sum().backward()
    np.testing.assert_allclose(x.grad.data, 6 * x.data)


def test_first_order_backward_records_no_graph():
    x, w = T(3, 4), T(4, 2)
    loss = F.cross_entropy((x @ w).tanh(), np.array([0, 1, 1]))
    loss.backward()
    for t in (x, w):
        assert not t.grad.requires_grad and t.grad._ctx is None
    gx, gw = tr.grad(F.mse_loss(x @ w, Tensor(np.zeros((3, 2)))), [x, w])
    for g in (gx, gw):
        assert not g.requires_grad and g._ctx is None
    gx, = tr.grad((x.exp() * x).sum(), [x], create_graph=True)
    assert gx.requires_grad and gx._ctx is not None
