"""Optional parity with PyTorch: every public op and loss, forward and every input gradient,
in float64 (rtol 1e-6) and float32. Skipped when torch is not installed (it is not a
dependency of the library; `pip install torch` to run these)."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")
TF = torch.nn.functional

import tinygrad_rep as tr  # noqa: E402
import tinygrad_rep.functional as F  # noqa: E402
from tinygrad_rep import Tensor  # noqa: E402

TOL = {np.float64: dict(rtol=1e-6, atol=1e-8), np.float32: dict(rtol=2e-4, atol=2e-5)}
DTYPES = [np.float64, np.float32]


def rnd(*shape, low=-2.0, high=2.0, seed=None, away=0.0, distinct=False):
    """Uniform values; away > 0 keeps |x| >= away (kinks), distinct spreads values apart (max)."""
    rng = np.random.default_rng(seed if seed is not None else hash(shape) % 2**32)
    if distinct:
        n = int(np.prod(shape))
        return (rng.permutation(n) * 0.37 - n * 0.15).reshape(shape).astype(np.float64)
    x = rng.uniform(low, high, size=shape)
    if away:
        x = np.where(np.abs(x) < away, np.sign(x + 1e-300) * away + x, x)
    return x


def parity(tr_fn, torch_fn, arrays, dtype, const=(), grads=True, tol=None):
    """Same inputs through both libraries; compare the output and, for a random cotangent v,
    the gradient of every float input."""
    tol = tol or TOL[dtype]
    ours = [Tensor(a.astype(dtype), requires_grad=True) for a in arrays]
    theirs = [torch.tensor(a.astype(dtype), requires_grad=True) for a in arrays]
    y, ty = tr_fn(*ours, *const), torch_fn(*theirs, *const)
    assert y.dtype == dtype, f"output dtype {y.dtype}"
    assert y.shape == tuple(ty.shape), f"shape {y.shape} vs torch {tuple(ty.shape)}"
    np.testing.assert_allclose(y.data, ty.detach().numpy(), err_msg="forward", **tol)
    if not grads:
        return
    v = np.random.default_rng(7).standard_normal(y.shape).astype(dtype)
    y.backward(v)
    ty.backward(torch.tensor(v))
    for i, (a, b) in enumerate(zip(ours, theirs)):
        assert a.grad is not None and b.grad is not None, f"input {i}: a gradient is missing"
        np.testing.assert_allclose(a.grad.data, b.grad.numpy(), err_msg=f"gradient of input {i}", **tol)


def I(a):  # integer index arrays go to torch as int64 tensors
    return torch.tensor(a) if isinstance(a, np.ndarray) else a


CASES = {
    # elementwise, broadcasting, scalars either side
    "add_bcast": (lambda a, b: a + b, lambda a, b: a + b, [rnd(2, 1, 3), rnd(4, 1)]),
    "sub_bcast": (lambda a, b: a - b, lambda a, b: a - b, [rnd(3, 1), rnd(1, 4)]),
    "mul_bcast": (lambda a, b: a * b, lambda a, b: a * b, [rnd(2, 3, 4), rnd(3, 1)]),
    "div_bcast": (lambda a, b: a / b, lambda a, b: a / b, [rnd(2, 3), rnd(3, away=0.5)]),
    "scalars": (lambda a: (2.5 - a) * 3 / (a * a + 1) + 1.5 / (a + 4) - a / 2,
                lambda a: (2.5 - a) * 3 / (a * a + 1) + 1.5 / (a + 4) - a / 2, [rnd(3, 2)]),
    "neg": (lambda a: -a, lambda a: -a, [rnd(4)]),
    "pow": (lambda a: a ** 2.5 + a ** -1 + a ** 3, lambda a: a ** 2.5 + a ** -1 + a ** 3, [rnd(2, 3, low=0.2, high=2)]),
    # matmul
    "matmul_2d": (lambda a, b: a @ b, lambda a, b: a @ b, [rnd(3, 4), rnd(4, 5)]),
    "matmul_1d_1d": (lambda a, b: a @ b, lambda a, b: a @ b, [rnd(4), rnd(4, seed=1)]),
    "matmul_1d_2d": (lambda a, b: a @ b, lambda a, b: a @ b, [rnd(4), rnd(4, 3)]),
    "matmul_2d_1d": (lambda a, b: a @ b, lambda a, b: a @ b, [rnd(3, 4), rnd(4)]),
    "matmul_batched": (lambda a, b: a @ b, lambda a, b: a @ b, [rnd(5, 2, 3), rnd(5, 3, 4)]),
    "matmul_batch_bcast": (lambda a, b: a @ b, lambda a, b: a @ b, [rnd(2, 1, 3, 4), rnd(3, 4, 2)]),
    "matmul_batched_2d": (lambda a, b: a @ b, lambda a, b: a @ b, [rnd(2, 3, 4), rnd(4, 2)]),
    "matmul_1d_batched": (lambda a, b: a @ b, lambda a, b: a @ b, [rnd(3), rnd(2, 3, 4)]),
    # unary
    "exp": (lambda a: a.exp(), torch.exp, [rnd(2, 3)]),
    "log": (lambda a: a.log(), torch.log, [rnd(2, 3, low=0.1, high=3)]),
    "sqrt": (lambda a: a.sqrt(), torch.sqrt, [rnd(2, 3, low=0.1, high=3)]),
    "relu": (lambda a: a.relu(), torch.relu, [rnd(3, 4, away=0.05)]),
    "F.relu": (F.relu, TF.relu, [rnd(3, 4, away=0.05)]),
    "sigmoid": (lambda a: a.sigmoid(), torch.sigmoid, [rnd(3, 4, low=-8, high=8)]),
    "F.sigmoid": (F.sigmoid, torch.sigmoid, [rnd(3, 4, low=-8, high=8)]),
    "F.logsigmoid": (F.logsigmoid, TF.logsigmoid, [rnd(3, 4, low=-30, high=30)]),
    "tanh": (lambda a: a.tanh(), torch.tanh, [rnd(3, 4)]),
    "abs": (lambda a: a.abs(), torch.abs, [rnd(3, 4, away=0.05)]),
    # softmax family
    "softmax_last": (lambda a: a.softmax(-1), lambda a: torch.softmax(a, -1), [rnd(3, 5, low=-5, high=5)]),
    "softmax_axis0": (lambda a: a.softmax(0), lambda a: torch.softmax(a, 0), [rnd(3, 5, 2)]),
    "log_softmax_axis1": (lambda a: a.log_softmax(1), lambda a: torch.log_softmax(a, 1), [rnd(3, 5, 2)]),
    "F.softmax": (lambda a: F.softmax(a, axis=1), lambda a: TF.softmax(a, dim=1), [rnd(2, 4)]),
    "F.log_softmax": (lambda a: F.log_softmax(a, axis=-1), lambda a: TF.log_softmax(a, dim=-1), [rnd(2, 4)]),
    "softmax_huge": (lambda a: a.softmax(-1), lambda a: torch.softmax(a, -1),
                     [np.array([[1000.0, -1000.0, 0.0], [1000.0, 999.0, -1000.0], [-50.0, 50.0, 0.0]])]),
    "log_softmax_huge": (lambda a: a.log_softmax(-1), lambda a: torch.log_softmax(a, -1),
                         [np.array([[1000.0, -1000.0, 0.0], [1000.0, 999.0, -1000.0]])]),
    # reductions
    "sum_all": (lambda a: a.sum(), lambda a: a.sum(), [rnd(2, 3, 4)]),
    "sum_tuple_keep": (lambda a: a.sum(axis=(0, 2), keepdims=True), lambda a: a.sum(dim=(0, 2), keepdim=True),
                       [rnd(2, 3, 4)]),
    "mean_neg_axis": (lambda a: a.mean(axis=-1), lambda a: a.mean(dim=-1), [rnd(2, 3, 4)]),
    "mean_all": (lambda a: a.mean(), lambda a: a.mean(), [rnd(2, 3)]),
    "max_axis": (lambda a: a.max(axis=1), lambda a: a.amax(dim=1), [rnd(3, 4, distinct=True)]),
    "max_tuple_keep": (lambda a: a.max(axis=(0, 2), keepdims=True), lambda a: a.amax(dim=(0, 2), keepdim=True),
                       [rnd(2, 3, 4, distinct=True)]),
    "max_all": (lambda a: a.max(), lambda a: a.max(), [rnd(3, 4, distinct=True)]),
    "logsumexp": (lambda a: a.logsumexp(axis=-1), lambda a: torch.logsumexp(a, dim=-1), [rnd(3, 4)]),
    "logsumexp_tuple": (lambda a: a.logsumexp(axis=(0, 1), keepdims=True),
                        lambda a: torch.logsumexp(a, dim=(0, 1), keepdim=True), [rnd(3, 4)]),
    "logsumexp_huge": (lambda a: a.logsumexp(axis=-1), lambda a: torch.logsumexp(a, dim=-1),
                       [np.array([[1000.0, -1000.0, 0.0], [-1000.0, -1000.0, -999.0]])]),
    "norm": (lambda a: a.norm(axis=1), lambda a: torch.linalg.vector_norm(a, dim=1), [rnd(3, 4, away=0.1)]),
    # movement
    "reshape": (lambda a: a.reshape(4, -1) * 1.0, lambda a: a.reshape(4, -1) * 1.0, [rnd(2, 3, 2)]),
    "transpose": (lambda a: a.transpose(2, 0, 1), lambda a: a.permute(2, 0, 1), [rnd(2, 3, 4)]),
    "T": (lambda a: a.T, lambda a: a.permute(2, 1, 0), [rnd(2, 3, 4)]),
    "slices": (lambda a: a[1:, ::2, -1], lambda a: a[1:, ::2, -1], [rnd(3, 4, 2)]),
    "int_index_repeats": (lambda a: a[np.array([2, 0, 2, 2, -1])], lambda a: a[torch.tensor([2, 0, 2, 2, -1])],
                          [rnd(3, 4)]),
    "int_index_2d": (lambda a: a[np.array([[0, 1], [1, 1]]), np.array([3, 3])],
                     lambda a: a[torch.tensor([[0, 1], [1, 1]]), torch.tensor([3, 3])], [rnd(3, 4)]),
    "mixed_index": (lambda a: a[:, np.array([0, 0, 2])], lambda a: a[:, torch.tensor([0, 0, 2])], [rnd(2, 3)]),
    "concat": (lambda a, b: tr.concat([a, b, a], axis=1), lambda a, b: torch.cat([a, b, a], dim=1),
               [rnd(2, 3), rnd(2, 1)]),
    "stack": (lambda a, b: tr.stack([a, b], axis=-1), lambda a, b: torch.stack([a, b], dim=-1), [rnd(2, 3), rnd(2, 3, seed=3)]),
    "expand": (lambda a: a.expand(4, 2, 3), lambda a: a.expand(4, 2, 3), [rnd(2, 1)]),
    # functional
    "F.normalize": (lambda a: F.normalize(a, axis=1), lambda a: TF.normalize(a, dim=1), [rnd(3, 4, away=0.1)]),
    "F.normalize_axis0": (lambda a: F.normalize(a, axis=0), lambda a: TF.normalize(a, dim=0), [rnd(3, 4, away=0.1)]),
    "F.cosine_similarity": (lambda a, b: F.cosine_similarity(a, b), lambda a, b: TF.cosine_similarity(a, b, dim=-1),
                            [rnd(3, 4, away=0.1), rnd(3, 4, away=0.1, seed=5)]),
    "F.mse_loss": (F.mse_loss, TF.mse_loss, [rnd(3, 4), rnd(3, 4, seed=2)]),
    "F.bce_with_logits": (F.binary_cross_entropy_with_logits, TF.binary_cross_entropy_with_logits,
                          [rnd(3, 4, low=-10, high=10), rnd(3, 4, low=0, high=1)]),
    "F.bce_with_logits_huge": (F.binary_cross_entropy_with_logits, TF.binary_cross_entropy_with_logits,
                               [np.array([1000.0, -1000.0, 30.0]), np.array([0.0, 0.3, 1.0])]),
}


@pytest.mark.parametrize("dtype", DTYPES, ids=["float64", "float32"])
@pytest.mark.parametrize("name", list(CASES))
def test_op_parity(name, dtype):
    tr_fn, torch_fn, arrays = CASES[name]
    parity(tr_fn, torch_fn, arrays, dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=["float64", "float32"])
def test_cross_entropy_parity(dtype):
    t = np.array([2, 0, 4, 4])
    parity(F.cross_entropy, lambda x, t: TF.cross_entropy(x, I(t)), [rnd(4, 5, low=-4, high=4)], dtype, const=(t,))
    big = np.array([[1000.0, -1000.0, 0.0], [-1000.0, 1000.0, 0.0]])
    parity(F.cross_entropy, lambda x, t: TF.cross_entropy(x, I(t)), [big], dtype, const=(np.array([1, 1]),))


@pytest.mark.parametrize("dtype", DTYPES, ids=["float64", "float32"])
def test_embedding_parity(dtype):
    idx = np.array([[0, 3, 3], [1, 3, 0]])
    parity(F.embedding, lambda w, i: TF.embedding(I(i), w), [rnd(5, 4)], dtype, const=(idx,))


def torch_nt_xent(z1, z2, temperature):
    """SimCLR's NT-Xent, written for torch from the same definition."""
    n = z1.shape[0]
    z = TF.normalize(torch.cat([z1, z2]), dim=1)
    s = z @ z.T / temperature
    s = s.masked_fill(torch.eye(2 * n, dtype=torch.bool), float("-inf"))
    targets = torch.cat([torch.arange(n, 2 * n), torch.arange(n)])
    return TF.cross_entropy(s, targets)


def torch_info_nce(q, p, negatives, temperature):
    q, p = TF.normalize(q, dim=1), TF.normalize(p, dim=1)
    if negatives is None:
        return TF.cross_entropy(q @ p.T / temperature, torch.arange(q.shape[0]))
    n = TF.normalize(negatives, dim=1)
    logits = torch.cat([(q * p).sum(1, keepdim=True), q @ n.T], dim=1) / temperature
    return TF.cross_entropy(logits, torch.zeros(q.shape[0], dtype=torch.long))


def torch_sgns(c, o, negs):
    pos = TF.logsigmoid((c * o).sum(1))
    neg = TF.logsigmoid(-torch.bmm(negs, c.unsqueeze(2)).squeeze(2)).sum(1)
    return -(pos + neg).mean()


@pytest.mark.parametrize("dtype", DTYPES, ids=["float64", "float32"])
@pytest.mark.parametrize("temperature", [0.07, 0.5])
@pytest.mark.parametrize("n", [1, 4, 5])
def test_nt_xent_parity(n, temperature, dtype):
    parity(lambda a, b: F.nt_xent_loss(a, b, temperature=temperature),
           lambda a, b: torch_nt_xent(a, b, temperature), [rnd(n, 6, seed=n), rnd(n, 6, seed=n + 10)], dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=["float64", "float32"])
def test_info_nce_parity(dtype):
    parity(lambda q, p: F.info_nce_loss(q, p, temperature=0.1), lambda q, p: torch_info_nce(q, p, None, 0.1),
           [rnd(4, 5, seed=1), rnd(4, 5, seed=2)], dtype)
    parity(lambda q, p, m: F.info_nce_loss(q, p, m, temperature=0.2), lambda q, p, m: torch_info_nce(q, p, m, 0.2),
           [rnd(4, 5, seed=1), rnd(4, 5, seed=2), rnd(7, 5, seed=3)], dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=["float64", "float32"])
def test_triplet_parity(dtype):
    a, p, n = rnd(5, 4, seed=1), rnd(5, 4, seed=2), rnd(5, 4, seed=3)
    # torch's pairwise_distance adds eps=1e-6 inside the norm, hence the looser tolerance
    parity(lambda a, p, n: F.triplet_margin_loss(a, p, n, margin=1.0),
           lambda a, p, n: TF.triplet_margin_loss(a, p, n, margin=1.0), [a, p, n], dtype,
           tol=dict(rtol=1e-4, atol=1e-5))
    parity(lambda a, p, n: F.triplet_margin_loss(a, p, n, margin=1.0),
           lambda a, p, n: TF.relu((a - p).norm(dim=-1) - (a - n).norm(dim=-1) + 1.0).mean(), [a, p, n], dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=["float64", "float32"])
def test_sgns_parity(dtype):
    parity(F.skipgram_negative_sampling_loss, torch_sgns, [rnd(4, 3, seed=1), rnd(4, 3, seed=2), rnd(4, 5, 3, seed=3)],
           dtype)


def test_mlp_training_step_parity():
    """One SGD step of a 2-layer MLP with cross-entropy gives the same parameters in both."""
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((8, 5)), rng.integers(0, 3, size=8)
    w1, b1, w2 = rng.standard_normal((5, 7)) * 0.5, np.zeros(7), rng.standard_normal((7, 3)) * 0.5
    ours = [Tensor(p, requires_grad=True) for p in (w1, b1, w2)]
    theirs = [torch.tensor(p, requires_grad=True) for p in (w1, b1, w2)]
    loss = F.cross_entropy((Tensor(x) @ ours[0] + ours[1]).tanh() @ ours[2], y)
    tloss = TF.cross_entropy(torch.tanh(torch.tensor(x) @ theirs[0] + theirs[1]) @ theirs[2], torch.tensor(y))
    loss.backward()
    tloss.backward()
    np.testing.assert_allclose(loss.item(), tloss.item(), rtol=1e-12)
    for o, t in zip(ours, theirs):
        np.testing.assert_allclose(o.grad.data, t.grad.numpy(), rtol=1e-10, atol=1e-12)
