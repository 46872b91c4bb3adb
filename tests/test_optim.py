"""Tests for tinygrad_rep.optim: update rules against written-out references, validation, state, schedules."""

import math
import re

import numpy as np
import pytest

import tinygrad_rep as tr
from tinygrad_rep import nn, optim
from tinygrad_rep.tensor import Tensor

SHAPES = [(3, 4), (5,)]


def make_params(dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    return [nn.Parameter(rng.standard_normal(s), dtype=dtype) for s in SHAPES]


def grad_sequence(steps, seed=1):
    rng = np.random.default_rng(seed)
    return [[rng.standard_normal(s) for s in SHAPES] for _ in range(steps)]


def run(opt, params, grads):
    """Feed the given gradients to the optimizer, one step per entry."""
    for gs in grads:
        for p, g in zip(params, gs):
            p.grad = Tensor(g, dtype=p.dtype)
        opt.step()
    return [p.data for p in params]


# ---- references, written from the published algorithms in float64, one step at a time

def ref_sgd(p, grads, lr, momentum=0.0, weight_decay=0.0, nesterov=False, dampening=0.0):
    p, buf = p.astype(np.float64), None
    for g in grads:
        g = g + weight_decay * p
        if momentum:
            buf = g.copy() if buf is None else momentum * buf + (1 - dampening) * g
            g = g + momentum * buf if nesterov else buf
        p = p - lr * g
    return p


def ref_adam(p, grads, lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, decoupled=False):
    b1, b2 = betas
    p, m, v = p.astype(np.float64), 0.0, 0.0
    for t, g in enumerate(grads, start=1):
        if decoupled:
            p = p * (1 - lr * weight_decay)
        else:
            g = g + weight_decay * p
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        m_hat, v_hat = m / (1 - b1 ** t), v / (1 - b2 ** t)
        p = p - lr * m_hat / (np.sqrt(v_hat) + eps)
    return p


SGD_CASES = [
    dict(lr=0.1),
    dict(lr=0.05, momentum=0.9),
    dict(lr=0.05, momentum=0.9, nesterov=True),
    dict(lr=0.05, momentum=0.8, dampening=0.3),
    dict(lr=0.1, weight_decay=0.01),
    dict(lr=0.05, momentum=0.9, weight_decay=0.1, nesterov=True),
    dict(lr=0.05, momentum=0.9, weight_decay=0.1, dampening=0.5),
]


@pytest.mark.parametrize("kw", SGD_CASES, ids=lambda kw: ",".join(f"{k}={v}" for k, v in kw.items()))
def test_sgd_matches_reference(kw):
    params = make_params()
    start = [p.data.copy() for p in params]
    grads = grad_sequence(6)
    got = run(optim.SGD(params, **kw), params, grads)
    for i, (p0, out) in enumerate(zip(start, got)):
        want = ref_sgd(p0, [gs[i] for gs in grads], **kw)
        np.testing.assert_allclose(out, want, rtol=1e-12, atol=1e-14)


ADAM_CASES = [
    dict(lr=1e-2),
    dict(lr=3e-2, betas=(0.8, 0.99), eps=1e-6),
    dict(lr=1e-2, weight_decay=0.1),
]


@pytest.mark.parametrize("kw", ADAM_CASES, ids=lambda kw: ",".join(f"{k}={v}" for k, v in kw.items()))
def test_adam_matches_reference(kw):
    params = make_params()
    start = [p.data.copy() for p in params]
    grads = grad_sequence(8)
    got = run(optim.Adam(params, **kw), params, grads)
    for i, (p0, out) in enumerate(zip(start, got)):
        np.testing.assert_allclose(out, ref_adam(p0, [gs[i] for gs in grads], **kw), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("kw", [dict(lr=1e-2), dict(lr=3e-2, weight_decay=0.5, betas=(0.5, 0.9))])
def test_adamw_matches_reference(kw):
    params = make_params()
    start = [p.data.copy() for p in params]
    grads = grad_sequence(8)
    got = run(optim.AdamW(params, **kw), params, grads)
    kw = dict(kw)
    kw.setdefault("weight_decay", 1e-2)  # AdamW's default
    for i, (p0, out) in enumerate(zip(start, got)):
        want = ref_adam(p0, [gs[i] for gs in grads], decoupled=True, **kw)
        np.testing.assert_allclose(out, want, rtol=1e-12, atol=1e-14)


def test_adam_and_adamw_differ_only_with_decay():
    grads = grad_sequence(3)
    a, b = make_params(), make_params()
    run(optim.Adam(a, lr=0.01), a, grads)
    run(optim.AdamW(b, lr=0.01, weight_decay=0.0), b, grads)
    np.testing.assert_array_equal(a[0].data, b[0].data)


@pytest.mark.parametrize("opt_cls,kw", [(optim.SGD, dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.1)),
                                        (optim.Adam, dict(lr=1e-2, weight_decay=0.1)),
                                        (optim.AdamW, dict(lr=1e-2))])
def test_float32_params_stay_float32_and_in_place(opt_cls, kw):
    params = make_params(dtype=np.float32)
    arrays = [p.data for p in params]
    start = [a.astype(np.float64) for a in arrays]
    grads = grad_sequence(5)
    run(opt_cls(params, **kw), params, grads)
    ref = ref_sgd if opt_cls is optim.SGD else ref_adam
    extra = {"decoupled": True, "weight_decay": 1e-2} if opt_cls is optim.AdamW else {}
    for i, p in enumerate(params):
        assert p.data is arrays[i] and p.dtype == np.float32 and p.grad_fn is None
        want = ref(start[i], [gs[i].astype(np.float32).astype(np.float64) for gs in grads], **kw, **extra)
        np.testing.assert_allclose(p.data, want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name,kw", [("SGD", dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.1)),
                                     ("SGD", dict(lr=0.05, momentum=0.8, dampening=0.3)),
                                     ("Adam", dict(lr=1e-2, weight_decay=0.1)),
                                     ("AdamW", dict(lr=1e-2, weight_decay=0.3))])
def test_against_torch(name, kw):
    torch = pytest.importorskip("torch")
    params = make_params()
    tparams = [torch.tensor(p.data.copy(), requires_grad=True) for p in params]
    grads = grad_sequence(6)
    got = run(getattr(optim, name)(params, **kw), params, grads)
    topt = getattr(torch.optim, name)(tparams, **kw)
    for gs in grads:
        for tp, g in zip(tparams, gs):
            tp.grad = torch.tensor(g)
        topt.step()
    for out, tp in zip(got, tparams):
        np.testing.assert_allclose(out, tp.detach().numpy(), rtol=1e-10, atol=1e-12)


# ---------------------------------------------------------------- behaviour

def test_params_without_grad_are_skipped():
    params = make_params()
    before = params[1].data.copy()
    opt = optim.Adam(params, lr=0.1)
    params[0].grad = Tensor(np.ones(SHAPES[0]))
    opt.step()
    np.testing.assert_array_equal(params[1].data, before)
    assert params[1] not in opt.state and opt.state[params[0]]["step"] == 1


def test_zero_grad_sets_none():
    model = nn.Linear(3, 2, rng=0)
    opt = optim.SGD(model.parameters(), lr=0.1)
    model(Tensor(np.ones((1, 3), dtype=np.float32))).sum().backward()
    assert model.weight.grad is not None
    opt.zero_grad()
    assert model.weight.grad is None and model.bias.grad is None


def test_step_uses_backward_gradients():
    model = nn.Linear(2, 1, rng=0, dtype=np.float64)
    w0 = model.weight.data.copy()
    opt = optim.SGD(model.parameters(), lr=0.5)
    x = np.array([[1.0, 2.0]])
    model(Tensor(x)).sum().backward()
    loss = opt.step(closure=lambda: 42.0)
    assert loss == 42.0
    np.testing.assert_allclose(model.weight.data, w0 - 0.5 * x.T)
    np.testing.assert_allclose(model.bias.data, [-0.5])


def test_param_groups_have_their_own_hyperparameters():
    a, b = make_params()
    opt = optim.SGD([{"params": [a]}, {"params": [b], "lr": 1.0}], lr=0.1, momentum=0.5)
    assert opt.param_groups[1]["momentum"] == 0.5 and opt.param_groups[1]["lr"] == 1.0
    a0, b0 = a.data.copy(), b.data.copy()
    a.grad, b.grad = Tensor(np.ones(a.shape)), Tensor(np.ones(b.shape))
    opt.step()
    np.testing.assert_allclose(a.data, a0 - 0.1)
    np.testing.assert_allclose(b.data, b0 - 1.0)


# ---------------------------------------------------------------- validation

def test_validation_messages():
    ps = make_params()
    with pytest.raises(ValueError, match=r"invalid lr: -0\.1 \(must be a number >= 0\)"):
        optim.SGD(ps, lr=-0.1)
    with pytest.raises(ValueError, match="invalid lr: nan"):
        optim.Adam(ps, lr=float("nan"))
    with pytest.raises(ValueError, match="SGD: got an empty parameter list"):
        optim.SGD([], lr=0.1)
    with pytest.raises(ValueError, match="Adam: got an empty parameter list"):
        optim.Adam(iter(()))
    with pytest.raises(TypeError, match="not one Tensor"):
        optim.SGD(ps[0], lr=0.1)
    with pytest.raises(TypeError, match="SGD: parameter 1 is a ndarray, not a Tensor"):
        optim.SGD([ps[0], np.zeros(3)], lr=0.1)
    with pytest.raises(ValueError, match="Nesterov momentum needs momentum > 0 and dampening = 0"):
        optim.SGD(ps, lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match=r"invalid beta parameter at index 1: 1\.0"):
        optim.Adam(ps, betas=(0.9, 1.0))
    with pytest.raises(ValueError, match="invalid momentum: -1"):
        optim.SGD(ps, lr=0.1, momentum=-1)
    with pytest.raises(ValueError, match="appears more than once"):
        optim.SGD([ps[0], ps[0]], lr=0.1)


def test_non_float_and_frozen_params_named():
    with pytest.raises(ValueError, match=re.escape(
            "SGD: parameter 0 of shape (3,) and dtype int64 is not floating-point")):
        optim.SGD([Tensor(np.arange(3))], lr=0.1)
    model = nn.Sequential(nn.Linear(2, 2, rng=0), nn.Linear(2, 1, rng=1))
    model[1].weight.requires_grad_(False)
    with pytest.raises(ValueError, match=re.escape(
            "Adam: parameter 2 ('1.weight') of shape (2, 1) and dtype float32 does not require grad")):
        optim.Adam(model.parameters())


# ---------------------------------------------------------------- state

@pytest.mark.parametrize("make", [lambda ps: optim.SGD(ps, lr=0.05, momentum=0.9, nesterov=True),
                                  lambda ps: optim.Adam(ps, lr=0.01, weight_decay=0.1),
                                  lambda ps: optim.AdamW(ps, lr=0.01)])
def test_optimizer_state_dict_resumes_exactly(make):
    grads = grad_sequence(6)
    a = make_params()
    opt_a = make(a)
    run(opt_a, a, grads[:3])
    saved = opt_a.state_dict()
    b = [nn.Parameter(p.data.copy(), dtype=np.float64) for p in a]
    opt_b = make(b)
    opt_b.load_state_dict(saved)
    run(opt_a, a, grads[3:])
    run(opt_b, b, grads[3:])
    for pa, pb in zip(a, b):
        np.testing.assert_array_equal(pa.data, pb.data)


def test_optimizer_state_dict_is_a_copy_and_checks_shapes():
    ps = make_params()
    opt = optim.SGD(ps, lr=0.1, momentum=0.9)
    run(opt, ps, grad_sequence(1))
    sd = opt.state_dict()
    assert sd["param_groups"][0]["params"] == [0, 1] and sd["param_groups"][0]["lr"] == 0.1
    sd["state"][0]["momentum_buffer"][:] = 123
    assert not np.any(opt.state[ps[0]]["momentum_buffer"] == 123)
    sd["state"][0]["momentum_buffer"] = np.zeros((2, 2))
    with pytest.raises(ValueError, match=r"state 'momentum_buffer' of parameter 0 .* has shape \(2, 2\)"):
        opt.load_state_dict(sd)


# ---------------------------------------------------------------- schedules

def test_step_lr():
    opt = optim.SGD(make_params(), lr=1.0)
    sched = optim.StepLR(opt, step_size=2, gamma=0.5)
    lrs = [sched.get_last_lr()[0]]
    for _ in range(5):
        sched.step()
        lrs.append(opt.param_groups[0]["lr"])
    assert lrs == [1.0, 1.0, 0.5, 0.5, 0.25, 0.25]


def test_linear_lr_decays_to_zero_and_holds():
    opt = optim.SGD(make_params(), lr=0.025)
    sched = optim.LinearLR(opt, start_factor=1.0, end_factor=0.0, total_iters=4)
    lrs = [opt.param_groups[0]["lr"]]
    for _ in range(5):
        sched.step()
        lrs.append(opt.param_groups[0]["lr"])
    np.testing.assert_allclose(lrs, [0.025, 0.01875, 0.0125, 0.00625, 0.0, 0.0])


def test_cosine_and_lambda_lr():
    opt = optim.Adam(make_params(), lr=0.1)
    sched = optim.CosineAnnealingLR(opt, T_max=4, eta_min=0.01)
    got = []
    for _ in range(4):
        sched.step()
        got.append(sched.get_last_lr()[0])
    want = [0.01 + 0.09 * (1 + math.cos(math.pi * e / 4)) / 2 for e in range(1, 5)]
    np.testing.assert_allclose(got, want)
    opt2 = optim.SGD(make_params(), lr=2.0)
    sched2 = optim.LambdaLR(opt2, lambda e: 1 / (e + 1))
    sched2.step()
    assert opt2.param_groups[0]["lr"] == 1.0


# ---------------------------------------------------------------- training end to end

def toy_regression(n=256, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-2, 2, size=(n, 2)).astype(np.float32)
    y = (np.sin(x[:, :1]) + 0.5 * x[:, 1:] ** 2).astype(np.float32)
    return Tensor(x), Tensor(y)


@pytest.mark.parametrize("make_opt,steps", [
    (lambda ps: optim.SGD(ps, lr=0.05, momentum=0.9), 300),
    (lambda ps: optim.Adam(ps, lr=0.01), 300),
    (lambda ps: optim.AdamW(ps, lr=0.01, weight_decay=1e-4), 300),
])
def test_tiny_mlp_learns(make_opt, steps):
    x, y = toy_regression()
    model = nn.Sequential(nn.Linear(2, 32, rng=0), nn.Tanh(), nn.Linear(32, 1, rng=1, init="xavier"))
    opt = make_opt(model.parameters())
    first = None
    for _ in range(steps):
        opt.zero_grad()
        loss = tr.functional.mse_loss(model(x), y)
        loss.backward()
        opt.step()
        first = loss.item() if first is None else first
    final = tr.functional.mse_loss(model(x), y).item()
    assert final < first / 20, (first, final)


@pytest.mark.parametrize("name,kw", [("StepLR", dict(step_size=3, gamma=0.5)),
                                     ("LinearLR", dict(start_factor=0.25, end_factor=1.0, total_iters=4)),
                                     ("CosineAnnealingLR", dict(T_max=6, eta_min=0.001))])
def test_schedules_against_torch(name, kw):
    torch = pytest.importorskip("torch")
    opt = optim.SGD(make_params(), lr=0.1)
    topt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    sched, tsched = getattr(optim, name)(opt, **kw), getattr(torch.optim.lr_scheduler, name)(topt, **kw)
    for _ in range(8):
        np.testing.assert_allclose(sched.get_last_lr(), tsched.get_last_lr(), rtol=1e-12, atol=1e-15)
        topt.step()
        sched.step()
        tsched.step()
