"""Optional parity with PyTorch where libraries usually go silently wrong: extreme values (every
op's forward and gradient finite wherever PyTorch's are), 0-d tensors, higher-order gradients,
tensors shared between operands, and result dtypes, on all three backends. Skipped without torch."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")
TF = torch.nn.functional

import tinygrad_rep as tr  # noqa: E402
import tinygrad_rep.functional as F  # noqa: E402
from tinygrad_rep import Tensor  # noqa: E402

# extreme inputs overflow on purpose (exp(1e30), 1/1e-30): numpy's warnings say what the test checks
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")

BACKENDS = ["numpy", "pybind11", "cffi"]
EXTREMES = [-1e30, -1e4, -100.0, -20.0, -1.5, -1e-30, 1e-30, 0.7, 20.0, 100.0, 1e4, 1e30]
POSITIVE = [1e-30, 1e-20, 1e-5, 0.7, 3.0, 1e5, 1e30]


@pytest.fixture(params=BACKENDS)
def backend(request):
    before = tr.get_backend()
    tr.set_backend(request.param)
    yield request.param
    tr.set_backend(before)


# name -> (ours, theirs, values)
UNARY = {
    "exp": (lambda x: x.exp(), torch.exp, EXTREMES),
    "log": (lambda x: x.log(), torch.log, POSITIVE),
    "sqrt": (lambda x: x.sqrt(), torch.sqrt, POSITIVE),
    "sigmoid": (lambda x: x.sigmoid(), torch.sigmoid, EXTREMES),
    "log_of_sigmoid": (lambda x: x.sigmoid().log(), lambda x: torch.sigmoid(x).log(), EXTREMES),
    "logsigmoid": (lambda x: x.logsigmoid(), TF.logsigmoid, EXTREMES),
    "tanh": (lambda x: x.tanh(), torch.tanh, EXTREMES),
    "abs": (lambda x: x.abs(), torch.abs, EXTREMES),
    "relu": (lambda x: x.relu(), torch.relu, EXTREMES),
    "pow_half": (lambda x: x ** 0.5, lambda x: x ** 0.5, POSITIVE),
    "pow_3": (lambda x: x ** 3, lambda x: x ** 3, EXTREMES),
    "reciprocal": (lambda x: 1.0 / x, lambda x: 1.0 / x, EXTREMES),
    "norm_each": (lambda x: x.reshape(-1, 1).norm(axis=1), lambda x: x.reshape(-1, 1).norm(dim=1), EXTREMES),
    "softmax_pairs": (lambda x: x.reshape(-1, 2).softmax(-1), lambda x: x.reshape(-1, 2).softmax(-1), EXTREMES),
    "log_softmax_pairs": (lambda x: x.reshape(-1, 2).log_softmax(-1),
                          lambda x: x.reshape(-1, 2).log_softmax(-1), EXTREMES),
    "logsumexp_pairs": (lambda x: x.reshape(-1, 2).logsumexp(axis=-1),
                        lambda x: x.reshape(-1, 2).logsumexp(dim=-1), EXTREMES),
    "normalize_rows": (lambda x: F.normalize(x.reshape(-1, 2), axis=1),
                       lambda x: TF.normalize(x.reshape(-1, 2), dim=1, eps=1e-12), EXTREMES),
    "bce_logits": (lambda x: F.binary_cross_entropy_with_logits(x, Tensor(np.full(x.shape, 0.3, x.dtype))),
                   lambda x: TF.binary_cross_entropy_with_logits(x, torch.full(x.shape, 0.3, dtype=x.dtype)),
                   EXTREMES),
}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", sorted(UNARY))
def test_finite_wherever_torch_is(name, dtype, backend):
    ours_fn, theirs_fn, values = UNARY[name]
    a = np.array(values, dtype=dtype)
    if dtype == np.float32:
        a = a[np.abs(a) < 1e38]
    x = Tensor(a, requires_grad=True)
    tx = torch.tensor(a, requires_grad=True)
    y, ty = ours_fn(x), theirs_fn(tx)
    y.sum().backward()
    ty.sum().backward()
    # the values in float64 (PyTorch again), cast: where PyTorch's float32 result is itself off
    # (an overflowing sum of squares, rounding noise where the exact gradient is 0), ours may be
    # closer to this than to PyTorch's
    t64 = torch.tensor(a.astype(np.float64), requires_grad=True)
    theirs_fn(t64).sum().backward()
    truth = {"forward": theirs_fn(t64.detach()).numpy().astype(dtype), "gradient": t64.grad.numpy().astype(dtype)}
    rtol = 2e-4 if dtype == np.float32 else 1e-9
    for what, got, want in (("forward", y.data, ty.detach().numpy()), ("gradient", x.grad.data, tx.grad.numpy())):
        bad = np.isfinite(want) & ~np.isfinite(got)
        assert not bad.any(), f"{name} {what}: not finite where PyTorch gives {want[bad]} (inputs {a})"
        both = np.isfinite(want) & np.isfinite(got)
        close = (np.isclose(got, want, rtol=rtol, atol=1e-30)
                 | np.isclose(got, truth[what], rtol=rtol, atol=1e-30, equal_nan=True))
        assert close[both].all(), (f"{name} {what}: {got[both & ~close]} where PyTorch gives "
                                   f"{want[both & ~close]} (float64: {truth[what][both & ~close]})")


def test_divisor_gradient_with_tiny_operands(backend):
    for dtype in (np.float32, np.float64):
        a = np.array([1e-23, 3e-20, -2e-30], dtype=dtype)
        b = np.array([1e-23, -1e-20, 5e-30], dtype=dtype)
        x, y = Tensor(a, requires_grad=True), Tensor(b, requires_grad=True)
        tx, ty = torch.tensor(a, requires_grad=True), torch.tensor(b, requires_grad=True)
        (x / y).sum().backward()
        (tx / ty).sum().backward()
        assert np.all(np.isfinite(y.grad.data))
        np.testing.assert_allclose(y.grad.data, ty.grad.numpy(), rtol=1e-5)


def test_higher_order_and_shared_operands_match_torch(backend):
    a = np.array([0.5, -1.25, 2.0])
    x, tx = Tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    # a gradient penalty through an operand that shares memory with a detached copy
    y = (x * x.detach() * x.sigmoid()).sum()
    ty = (tx * tx.detach() * tx.sigmoid()).sum()
    g, = tr.grad(y, x, create_graph=True)
    tg, = torch.autograd.grad(ty, tx, create_graph=True)
    gp, = tr.grad((g * g).sum(), x)
    tgp, = torch.autograd.grad((tg * tg).sum(), tx)
    np.testing.assert_allclose(g.data, tg.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(gp.data, tgp.numpy(), rtol=1e-12)
    # 0-d tensors, third derivatives
    for ours, theirs in ((lambda t: t.exp() * t.tanh(), lambda t: t.exp() * t.tanh()),
                         (lambda t: t.sqrt() / (t + 1), lambda t: t.sqrt() / (t + 1))):
        s, ts = Tensor(np.float64(0.8), requires_grad=True), torch.tensor(0.8, dtype=torch.float64, requires_grad=True)
        d, td = ours(s), theirs(ts)
        for _ in range(3):
            d, = tr.grad(d, s, create_graph=True)
            td, = torch.autograd.grad(td, ts, create_graph=True)
            np.testing.assert_allclose(d.item(), td.item(), rtol=1e-12)


def test_mutation_after_forward_is_refused_as_in_torch(backend):
    a = np.array([1.0, 2.0, 3.0])
    x, tx = Tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    y, ty = x.exp().sum(), tx.exp().sum()
    with torch.no_grad():
        tx.mul_(2)
    with tr.no_grad():
        x *= 2
    y.backward()  # exp saves its output, not x: both libraries accept this one
    ty.backward()
    np.testing.assert_allclose(x.grad.data, tx.grad.numpy(), rtol=1e-15)
    z, tz = (x * x).sum(), (tx * tx).sum()
    with torch.no_grad():
        tx.add_(1)
    with tr.no_grad():
        x += 1
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        tz.backward()
    with pytest.raises(RuntimeError, match="Mul: input 0 .* was modified in place"):
        z.backward()


@pytest.mark.parametrize("ours, theirs", [
    (lambda: Tensor(np.ones(2, np.float32)) + Tensor(np.arange(2)),
     lambda: torch.ones(2, dtype=torch.float32) + torch.arange(2)),
    (lambda: Tensor(np.ones(2, np.float32)) * Tensor(np.array([True, False])),
     lambda: torch.ones(2, dtype=torch.float32) * torch.tensor([True, False])),
    (lambda: Tensor(np.array([1, 2], np.int8)) + Tensor(np.array([1000, 1])),
     lambda: torch.tensor([1, 2], dtype=torch.int8) + torch.tensor([1000, 1])),
    (lambda: Tensor(np.arange(4)) ** 0.5, lambda: torch.arange(4) ** 0.5),
    (lambda: Tensor(np.ones(2, np.float32)) + Tensor(np.ones(2, np.float64)),
     lambda: torch.ones(2, dtype=torch.float32) + torch.ones(2, dtype=torch.float64)),
])
def test_result_dtypes_match_torch(ours, theirs):
    got, want = ours(), theirs()
    assert str(got.dtype) == str(want.dtype).replace("torch.", "")
    np.testing.assert_array_equal(got.data, want.numpy())
