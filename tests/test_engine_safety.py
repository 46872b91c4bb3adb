"""No silent wrong answers from the engine: per-thread grad mode, versioned saved values,
explicit saved-tensor links, gradients that never alias, dtype promotion, and numerics that stay
finite where the math is. Each test pins the exact value or message of a case that once went wrong."""
import threading

import numpy as np
import pytest

import tinygrad_rep as tr
from tinygrad_rep import Tensor, nn
from tinygrad_rep import functional as F


# ------------------------------------------------------------------ grad mode is per thread

def _train(seed, steps=30):
    model = nn.Sequential(nn.Linear(5, 8, rng=seed, dtype=np.float64), nn.ReLU(),
                          nn.Linear(8, 1, rng=seed + 1, dtype=np.float64))
    opt = tr.optim.SGD(model.parameters(), lr=0.05)
    rng = np.random.default_rng(seed)
    x, y = rng.standard_normal((16, 5)), rng.standard_normal((16, 1))
    for _ in range(steps):
        opt.zero_grad()
        loss = F.mse_loss(model(Tensor(x)), Tensor(y))
        loss.backward()  # backward switches grad mode off while it runs: in its own thread only
        opt.step()
        with tr.no_grad():
            model(Tensor(x))  # an interleaved no_grad evaluation
    return [p.data.copy() for p in model.parameters()]


def test_two_threads_training_concurrently_match_sequential_runs_bit_for_bit():
    sequential = [_train(1), _train(11)]
    results, errors = [None, None], []

    def run(i, seed):
        try:
            results[i] = _train(seed)
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)
    threads = [threading.Thread(target=run, args=(i, s)) for i, s in enumerate((1, 11))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    for want, got in zip(sequential, results):
        for a, b in zip(want, got):
            np.testing.assert_array_equal(a, b)


def test_no_grad_in_one_thread_does_not_switch_recording_off_in_another():
    entered, release = threading.Event(), threading.Event()

    def other():
        with tr.no_grad():
            entered.set()
            release.wait(10)
    t = threading.Thread(target=other)
    t.start()
    entered.wait(10)
    try:
        assert tr.is_grad_enabled()
        x = Tensor([1.0, 2.0], requires_grad=True)
        assert (x * 3).requires_grad
    finally:
        release.set()
        t.join()


# ------------------------------------------------------------------ saved values are versioned

def test_writing_x_data_after_forward_makes_backward_refuse():
    x = Tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = (x * x).sum()
    x.data[...] = 10
    with pytest.raises(RuntimeError, match=r"Mul: input 0 \(shape \(3,\)\) was modified in place "
                                           r"after the forward pass"):
        y.backward()


def test_reading_data_between_forward_and_backward_is_fine():
    x = Tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = (x * x).sum()
    assert float(np.asarray(x).sum() + x.data.sum() + x.numpy().sum()) == 18.0
    y.backward()
    np.testing.assert_array_equal(x.grad.data, [2.0, 4.0, 6.0])


def test_a_modified_output_is_refused_too():
    x = Tensor([0.0, 1.0], requires_grad=True)
    y = x.exp()  # Exp saves its output
    y.name = "y"
    z = y.sum()
    y.data[0] = 5.0
    with pytest.raises(RuntimeError, match=r"Exp: its output 'y' \(shape \(2,\)\) was modified in place"):
        z.backward()


def test_optimizer_step_between_forward_and_backward_is_refused():
    lin = nn.Linear(3, 2, rng=0, dtype=np.float64)
    opt = tr.optim.SGD(lin.parameters(), lr=0.1)
    x = Tensor(np.ones((4, 3)))
    loss = lin(x).sum()
    loss.backward()
    loss2 = lin(x).sum()
    opt.step()  # changes the weights that loss2's graph saved
    with pytest.raises(RuntimeError, match="MatMul: input 1 .* was modified in place"):
        loss2.backward()


def test_training_loops_that_update_in_place_between_iterations_still_work():
    lin = nn.Linear(3, 1, rng=0, dtype=np.float64)
    opt = tr.optim.Adam(lin.parameters(), lr=0.1)
    x, y = Tensor(np.eye(3)), Tensor(np.array([[1.0], [2.0], [3.0]]))
    losses = []
    for i in range(40):
        opt.zero_grad()
        loss = F.mse_loss(lin(x), y)
        loss.backward()
        opt.step()
        if i == 20:
            lin.load_state_dict(lin.state_dict())  # in place, between iterations
        losses.append(loss.item())
    assert losses[-1] < 0.01 * losses[0]


def test_the_pytorch_style_manual_update_under_no_grad_works():
    w = Tensor(np.array([3.0, -2.0]), requires_grad=True)
    for _ in range(100):
        loss = (w * w).sum()
        loss.backward()
        with tr.no_grad():
            w -= 0.1 * w.grad
        w.grad.zero_()
    np.testing.assert_allclose(w.data, np.array([3.0, -2.0]) * 0.8 ** 100, rtol=1e-12)
    np.testing.assert_array_equal(w.grad.data, [0.0, 0.0])


def test_in_place_update_of_a_leaf_while_recording_is_refused():
    w = Tensor([1.0], requires_grad=True)
    with pytest.raises(RuntimeError, match=r"x -= y on a leaf tensor that requires grad while the graph "
                                           r"is being recorded: wrap the update in `with tr.no_grad\(\):`"):
        w -= 1.0


def test_index_and_target_arrays_are_captured_at_forward_time():
    rng = np.random.default_rng(0)
    # x[idx]
    x = Tensor(rng.standard_normal(5), requires_grad=True)
    idx = np.array([0, 1])
    y = x[idx].sum()
    idx[:] = [3, 4]
    y.backward()
    np.testing.assert_array_equal(x.grad.data, [1, 1, 0, 0, 0])
    # F.embedding
    w = Tensor(rng.standard_normal((4, 2)), requires_grad=True)
    idx = np.array([0, 0, 2])
    e = F.embedding(w, idx).sum()
    idx[:] = 3
    e.backward()
    np.testing.assert_array_equal(w.grad.data, [[2, 2], [0, 0], [1, 1], [0, 0]])
    # F.cross_entropy
    logits = Tensor(np.zeros((2, 3)), requires_grad=True)
    t = np.array([0, 1])
    loss = F.cross_entropy(logits, t)
    t[:] = 2
    loss.backward()
    third = 1.0 / 3.0
    np.testing.assert_allclose(logits.grad.data, [[(third - 1) / 2, third / 2, third / 2],
                                                  [third / 2, (third - 1) / 2, third / 2]], rtol=1e-15)


# ------------------------------------------------------------------ explicit saved links

def test_two_inputs_sharing_one_array_keep_their_own_roles():
    """x * x.detach(): the detached operand is a constant, also for second derivatives."""
    x = Tensor(np.array([1.0, 2.0, 3.0]), requires_grad=True)
    y = (x * x.detach() * x).sum()           # dy/dx = 2 x x_d
    g, = tr.grad(y, x, create_graph=True)
    np.testing.assert_allclose(g.data, 2 * x.data ** 2)
    penalty = (g * g).sum()                  # sum (2 x x_d)^2 -> d/dx = 8 x x_d^2 (x_d constant)
    gp, = tr.grad(penalty, x)
    np.testing.assert_allclose(gp.data, 8 * x.data ** 3)


@pytest.mark.parametrize("op, second", [
    (lambda t: t.exp(), lambda v: np.exp(v)),
    (lambda t: t.sqrt(), lambda v: -0.25 * v ** -1.5),
    (lambda t: t.tanh(), lambda v: -2 * np.tanh(v) * (1 - np.tanh(v) ** 2)),
])
def test_second_derivative_of_a_0d_input(op, second):
    x = Tensor(np.float64(0.7), requires_grad=True)
    g, = tr.grad(op(x), x, create_graph=True)
    gg, = tr.grad(g, x)
    np.testing.assert_allclose(gg.item(), second(0.7), rtol=1e-12)


# ------------------------------------------------------------------ gradients never alias

def test_leaf_gradients_do_not_share_memory():
    a = Tensor([1.0, 2.0], requires_grad=True)
    b = Tensor([3.0, 4.0], requires_grad=True)
    (a + b).sum().backward()
    assert not np.shares_memory(a.grad.data, b.grad.data)
    a.grad.data *= 5
    np.testing.assert_array_equal(b.grad.data, [1.0, 1.0])
    # slices of one gradient reach the inputs of a concat; a view of b's gradient reaches c
    p, q = Tensor([1.0, 2.0], requires_grad=True), Tensor([3.0], requires_grad=True)
    tr.concat([p, q]).sum().backward()
    assert not np.shares_memory(p.grad.data, q.grad.data)
    c = Tensor([1.0, 2.0], requires_grad=True)
    d = Tensor([[1.0], [1.0]], requires_grad=True)
    (c.reshape(2, 1) + d).sum().backward()
    assert not np.shares_memory(c.grad.data, d.grad.data) and c.grad.data.flags.writeable
    # the caller's gradient is not kept as a .grad
    e = Tensor([1.0, 2.0], requires_grad=True)
    upstream = Tensor([5.0, 6.0])
    (e * 1.0).backward(upstream)
    e2 = Tensor([1.0, 2.0], requires_grad=True)
    e2.reshape(2).backward(upstream)
    assert not np.shares_memory(e2.grad.data, upstream.data)


def test_grad_of_the_same_input_twice_returns_it_twice():
    x = Tensor([1.0, 2.0], requires_grad=True)
    g1, g2 = tr.grad((x * x).sum(), [x, x])
    np.testing.assert_array_equal(g1.data, [2.0, 4.0])
    np.testing.assert_array_equal(g2.data, [2.0, 4.0])
    assert not np.shares_memory(g1.data, g2.data)


# ------------------------------------------------------------------ dtype of mixed operands

def test_mixed_operand_dtypes():
    r = Tensor(np.arange(4)) ** 0.5
    assert r.dtype == np.float32
    np.testing.assert_allclose(r.data, np.sqrt(np.arange(4)), rtol=1e-7)
    assert (Tensor(np.arange(4)) ** 2).dtype == np.int64
    b = Tensor(np.array([True, False])) * np.array([2, 3])
    assert b.dtype == np.int64 and b.data.tolist() == [2, 0]
    w = Tensor(np.array([1], dtype=np.int8)) + np.array([1000])
    assert w.dtype == np.int64 and w.data.tolist() == [1001]
    assert (Tensor(np.array([1], dtype=np.int8)) + 1000).data.tolist() == [1001]
    f = Tensor(np.ones(2, np.float32), requires_grad=True)
    s = f + Tensor(np.arange(2))
    assert s.dtype == np.float32
    s.sum().backward()
    assert f.grad.dtype == np.float32
    assert (Tensor(np.ones(2, np.float32)) + Tensor(np.ones(2, np.float64))).dtype == np.float64
    assert (Tensor(np.ones(2, np.float32)) * 2.5).dtype == np.float32


# ------------------------------------------------------------------ numerics

def test_log_sigmoid_far_in_the_tails_float32():
    x = Tensor(np.array([-20.0, -80.0, 20.0], dtype=np.float32), requires_grad=True)
    y = x.sigmoid().log()
    np.testing.assert_allclose(y.data[:2], [-20.0, -80.0], rtol=1e-6)
    assert y.data[2] == np.float32(0.0) or abs(y.data[2]) < 1e-8
    y.sum().backward()
    assert np.all(np.isfinite(x.grad.data))
    np.testing.assert_allclose(x.grad.data[:2], [1.0, 1.0], rtol=1e-6)


@pytest.mark.parametrize("dtype, tiny", [(np.float32, 1e-30), (np.float64, 1e-200)])
def test_norm_gradient_of_a_tiny_vector(dtype, tiny):
    x = Tensor(np.array([3 * tiny, 4 * tiny], dtype=dtype), requires_grad=True)
    n = x.norm()
    np.testing.assert_allclose(n.item(), 5 * tiny, rtol=1e-6)
    n.backward()
    np.testing.assert_allclose(x.grad.data, [0.6, 0.8], rtol=1e-6)


def test_div_gradient_for_tiny_divisors_float32():
    x = Tensor(np.array([1e-23], dtype=np.float32), requires_grad=True)
    y = Tensor(np.array([1e-23], dtype=np.float32), requires_grad=True)
    (x / y).sum().backward()
    np.testing.assert_allclose(y.grad.data, [-1e23], rtol=1e-6)
    np.testing.assert_allclose(x.grad.data, [1e23], rtol=1e-6)


def test_retain_graph_is_accepted_and_the_graph_can_be_walked_twice():
    x = Tensor([1.0, 2.0], requires_grad=True)
    y = (x * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_array_equal(x.grad.data, [4.0, 8.0])
