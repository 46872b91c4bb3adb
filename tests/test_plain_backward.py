"""The fused MSE loss and the array-level ("plain") first-order backward paths.

A first-order, unobserved backward computes its gradients on arrays directly (matmul, relu,
sigmoid, mul, sub, neg, sum, unbroadcast, accumulation) instead of applying ops. These tests
pin that the arithmetic is unchanged: gradients equal, bit for bit, those of the op-by-op path
(taken with create_graph=True, or while a profiler observes), and MSELoss equals the composite
((x - t)^2).mean() it replaces, bit for bit, with its own gradcheck and gradgradcheck.
"""
import numpy as np
import pytest

import tinygrad_rep as tr
from tinygrad_rep import Tensor, nn, ops
from tinygrad_rep import functional as F
from tinygrad_rep.gradcheck import gradcheck, gradgradcheck


def composite_mse(x, t):
    """mse_loss as it was written before the fused op."""
    d = x - t
    return (d * d).mean()


# ------------------------------------------------------------------ MSELoss

@pytest.mark.parametrize("shape", [(), (1,), (5,), (4, 3), (2, 3, 4)])
def test_mse_gradcheck_float64(shape):
    rng = np.random.default_rng(len(shape))
    x = Tensor(rng.standard_normal(shape), requires_grad=True)
    t = Tensor(rng.standard_normal(shape), requires_grad=True)
    assert gradcheck(lambda a, b: ops.MSELoss.apply(a, b), [x, t])
    assert gradgradcheck(lambda a, b: ops.MSELoss.apply(a, b), [x, t])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(7,), (64, 64), (33, 17)])
def test_mse_equals_the_composite_bit_for_bit(dtype, shape):
    rng = np.random.default_rng(1)
    xa, ta = rng.random(shape).astype(dtype), rng.random(shape).astype(dtype)
    results = []
    for fn in (F.mse_loss, composite_mse):
        x, t = Tensor(xa, requires_grad=True), Tensor(ta, requires_grad=True)
        loss = fn(x, t)
        (loss * 3.0).backward()  # an upstream gradient other than 1
        results.append((loss.data, x.grad.data, t.grad.data))
    assert results[0][0].dtype == dtype
    for a, b in zip(*results):
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_array_equal(a, b)


def test_mse_reference_and_fallbacks():
    x = np.array([[0.5, -1.0], [2.0, 0.25]])
    t = np.array([[0.0, 1.0], [1.5, 0.25]])
    loss = F.mse_loss(Tensor(x), Tensor(t))
    assert loss.grad_fn is None and loss.shape == ()
    np.testing.assert_allclose(loss.data, np.mean((x - t) ** 2), rtol=1e-15)
    xt = Tensor(x, requires_grad=True)
    F.mse_loss(xt, Tensor(t)).backward()
    np.testing.assert_allclose(xt.grad.data, 2 * (x - t) / x.size, rtol=1e-15)
    # mixed dtypes keep the composite path (promotion, then each gradient cast back)
    x32 = Tensor(x.astype(np.float32), requires_grad=True)
    mixed = F.mse_loss(x32, Tensor(t))
    assert mixed.dtype == np.float64 and mixed.grad_fn.name != "MSELoss"
    mixed.backward()
    assert x32.grad.dtype == np.float32
    # an empty input: mean of nothing is NaN, as before
    assert np.isnan(F.mse_loss(Tensor(np.zeros((0, 3))), Tensor(np.zeros((0, 3)))).item())
    with pytest.raises(ValueError, match="mse_loss: input has shape"):
        F.mse_loss(Tensor(np.zeros(3)), Tensor(np.zeros(4)))


def test_mse_matches_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(2)
    x, t = rng.standard_normal((6, 5)), rng.standard_normal((6, 5))
    ours_x, ours_t = Tensor(x, requires_grad=True), Tensor(t, requires_grad=True)
    F.mse_loss(ours_x, ours_t).backward()
    tx, tt = torch.tensor(x, requires_grad=True), torch.tensor(t, requires_grad=True)
    want = torch.nn.functional.mse_loss(tx, tt)
    want.backward()
    np.testing.assert_allclose(F.mse_loss(Tensor(x), Tensor(t)).item(), want.item(), rtol=1e-13)
    np.testing.assert_allclose(ours_x.grad.data, tx.grad.numpy(), rtol=1e-13)
    np.testing.assert_allclose(ours_t.grad.data, tt.grad.numpy(), rtol=1e-13)


# ------------------------------------------------------------------ plain vs op-by-op backward

def _model_loss(seed, dtype):
    """A model exercising every plain path: Linear (matmul + broadcast bias), ReLU, Sigmoid,
    Mul, Sub, Neg, Sum, a tensor used twice (accumulation) and a dtype cast."""
    model = nn.Sequential(nn.Linear(6, 5, rng=seed, dtype=dtype), nn.ReLU(),
                          nn.Linear(5, 4, rng=seed + 1, dtype=dtype), nn.Sigmoid())
    x = Tensor(np.random.default_rng(seed).standard_normal((3, 6)).astype(dtype), requires_grad=True)
    scale = Tensor(np.linspace(0.5, 1.5, 4), requires_grad=True)  # float64: cast on the way back

    def loss():
        y = model(x)
        z = y * y - (-y) * scale.astype(dtype)
        return F.mse_loss(z, Tensor(np.full(z.shape, 0.25, dtype))) + z.sum(axis=0).sum() * 0.1
    return model, [x, scale] + list(model.parameters()), loss


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("mode", ["create_graph", "profiled"])
def test_plain_backward_equals_op_by_op_backward(dtype, mode):
    _, leaves, loss = _model_loss(3, dtype)
    loss().backward()
    plain = [p.grad.data.copy() for p in leaves]
    for p in leaves:
        p.grad = None
    if mode == "create_graph":
        loss().backward(create_graph=True)
    else:
        with tr.profile():
            loss().backward()
    for p, want in zip(leaves, plain):
        got = p.grad.data
        assert got.dtype == want.dtype and got.shape == want.shape
        np.testing.assert_array_equal(got, want)


def test_matmul_plain_backward_covers_transposes_and_batches():
    rng = np.random.default_rng(4)
    cases = [((4, 3), (3, 5), {}), ((3, 4), (3, 5), dict(trans_a=True)),
             ((4, 3), (5, 3), dict(trans_b=True)), ((3, 4), (5, 3), dict(trans_a=True, trans_b=True)),
             ((2, 4, 3), (3, 5), {}), ((2, 4, 3), (2, 3, 5), {}), ((1, 4, 3), (2, 3, 5), {})]
    for sa, sb, kw in cases:
        grads = []
        for create_graph in (False, True):
            a = Tensor(rng.standard_normal(sa) if not grads else a0, requires_grad=True)
            b = Tensor(rng.standard_normal(sb) if not grads else b0, requires_grad=True)
            a0, b0 = a.data, b.data
            out = ops.MatMul.apply(a, b, **kw)
            out.backward(np.linspace(-1, 1, out.size).reshape(out.shape), create_graph=create_graph)
            grads.append((a.grad.data, b.grad.data))
        for x, y in zip(*grads):
            np.testing.assert_array_equal(x, y)
    assert gradcheck(lambda a, b: ops.MatMul.apply(a, b, trans_a=True),
                     [Tensor(rng.standard_normal((3, 2)), requires_grad=True),
                      Tensor(rng.standard_normal((3, 4)), requires_grad=True)])


def test_second_derivatives_still_flow_through_the_fast_ops():
    """create_graph=True takes the op-by-op path, so gradients of gradients stay correct."""
    rng = np.random.default_rng(5)
    w = Tensor(rng.standard_normal((3, 2)), requires_grad=True)
    b = Tensor(rng.standard_normal(2), requires_grad=True)
    x = Tensor(rng.standard_normal((4, 3)), requires_grad=True)
    assert gradgradcheck(lambda x, w, b: ((x @ w + b).sigmoid() * x.sum(axis=1, keepdims=True)).relu(), [x, w, b])
