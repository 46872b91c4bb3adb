"""The graph and the backward walk: accumulation, nodes used many times, no_grad, detach,
hooks, tr.grad, deep graphs, and what backward refuses."""
import gc
import sys

import numpy as np
import pytest

import tinygrad_rep as tr
from tinygrad_rep import Tensor


def leaf(values, dtype=np.float64):
    return Tensor(np.asarray(values, dtype=dtype), requires_grad=True)


def assert_no_graph(t):
    assert isinstance(t, Tensor)
    assert not t.requires_grad and t._ctx is None


# ---------------------------------------------------------------- accumulation and reuse

def test_gradients_accumulate_across_backward_calls():
    x = leaf([1.0, -2.0, 3.0])
    (x * x).sum().backward()
    np.testing.assert_array_equal(x.grad.data, [2, -4, 6])
    (x * x).sum().backward()
    np.testing.assert_array_equal(x.grad.data, [4, -8, 12])
    (3 * x).sum().backward()
    np.testing.assert_array_equal(x.grad.data, [7, -5, 15])
    assert_no_graph(x.grad)
    x.grad = None
    x.sum().backward()
    np.testing.assert_array_equal(x.grad.data, [1, 1, 1])


def test_same_graph_backward_twice_accumulates():
    x = leaf([0.5, 2.0])
    y = (x.exp() * x).sum()
    y.backward()
    first = x.grad.data.copy()
    y.backward()
    np.testing.assert_allclose(x.grad.data, 2 * first, rtol=1e-15)


def test_x_times_x_times_x():
    x = leaf([1.5, -0.5, 2.0])
    (x * x * x).sum().backward()
    np.testing.assert_allclose(x.grad.data, 3 * x.data ** 2, rtol=1e-15)


def test_node_used_in_fifty_places_gets_summed_gradient():
    x = leaf([1.0, 2.0])
    coeffs = np.arange(1.0, 51.0)
    total = x * 0.0
    for c in coeffs:
        total = total + x * c
    total.sum().backward()
    np.testing.assert_allclose(x.grad.data, [coeffs.sum()] * 2, rtol=1e-15)


def test_intermediate_used_many_times():
    x = leaf([0.3, -1.2])
    y = x.tanh()
    out = sum([y * k for k in range(1, 11)], y * 0.0) + y * y
    out.sum().backward()
    t = np.tanh(x.data)
    np.testing.assert_allclose(x.grad.data, (55 + 2 * t) * (1 - t * t), rtol=1e-12)


def test_diamond_graph():
    x = leaf([0.2, 0.7])
    y = x.exp()
    z = (y * y + y) / (y + 1.0)  # = y
    z.sum().backward()
    np.testing.assert_allclose(x.grad.data, np.exp(x.data), rtol=1e-12)


def test_leaf_used_twice_in_one_op():
    x = leaf([[1.0, 2.0], [3.0, 4.0]])
    (x @ x).sum().backward()
    ones = np.ones((2, 2))
    np.testing.assert_allclose(x.grad.data, ones @ x.data.T + x.data.T @ ones, rtol=1e-15)


def test_gradient_reduced_to_input_shape_and_dtype():
    x = leaf(np.ones((3, 1)), dtype=np.float32)
    c = np.arange(12.0).reshape(4, 3, 1) * np.ones((4, 3, 5))  # a float64 constant: result is float64
    y = x * c
    assert y.dtype == np.float64
    y.sum().backward()
    assert x.grad.shape == (3, 1) and x.grad.dtype == np.float32
    np.testing.assert_allclose(x.grad.data, c.sum(axis=(0, 2)).reshape(3, 1))


def test_constant_branches_get_no_gradient():
    x = leaf([1.0, 2.0])
    c = Tensor(np.array([3.0, 4.0]))
    y = (x * c + c * c).sum()
    y.backward()
    np.testing.assert_array_equal(x.grad.data, [3, 4])
    assert c.grad is None and not c.requires_grad


# ---------------------------------------------------------------- grad modes, detach

def test_no_grad_records_nothing():
    x = leaf([1.0, 2.0])
    with tr.no_grad():
        assert not tr.is_grad_enabled()
        y = (x * 2).exp().sum()
        z = x @ x
    assert tr.is_grad_enabled()
    for t in (y, z):
        assert_no_graph(t)
    with pytest.raises(ValueError, match="does not require grad"):
        y.backward()


def test_no_grad_as_decorator_and_nesting():
    x = leaf([1.0])

    @tr.no_grad()
    def f(t):
        """doc kept"""
        return t * 2

    assert_no_graph(f(x))
    assert f.__name__ == "f" and f.__doc__ == "doc kept"
    with tr.no_grad():
        with tr.enable_grad():
            y = x * 2
        z = x * 2
    assert y.requires_grad and y._ctx is not None
    assert_no_graph(z)
    with tr.set_grad_enabled(False):
        assert_no_graph(x * 3)
    assert tr.is_grad_enabled()


def test_grad_mode_restored_after_exception():
    with pytest.raises(RuntimeError):
        with tr.no_grad():
            raise RuntimeError("boom")
    assert tr.is_grad_enabled()


def test_detach_cuts_the_graph_and_shares_memory():
    x = leaf([1.0, 2.0])
    y = x * 3
    d = y.detach()
    assert_no_graph(d)
    assert np.shares_memory(d.data, y.data)
    (d * x).sum().backward()  # d is a constant here
    np.testing.assert_array_equal(x.grad.data, y.data)


# ---------------------------------------------------------------- backward arguments

def test_backward_on_non_scalar_needs_grad():
    x = leaf([1.0, 2.0])
    y = x * 2
    with pytest.raises(ValueError) as e:
        y.backward()
    assert str(e.value) == ("backward: a gradient is needed for a non-scalar output of shape (2,); "
                            "pass grad= with that shape")
    y.backward(np.array([1.0, 10.0]))
    np.testing.assert_array_equal(x.grad.data, [2, 20])
    y.backward(Tensor(np.array([1.0, 1.0])))
    np.testing.assert_array_equal(x.grad.data, [4, 22])


def test_backward_grad_shape_mismatch():
    y = leaf([1.0, 2.0]) * 2
    with pytest.raises(ValueError) as e:
        y.backward(np.ones(3))
    assert str(e.value) == "backward: grad has shape (3,) but the output has shape (2,)"


def test_backward_single_element_non_scalar_needs_no_grad():
    x = leaf([[2.0]])
    (x * x).backward()
    np.testing.assert_array_equal(x.grad.data, [[4.0]])


def test_backward_without_requires_grad():
    with pytest.raises(ValueError) as e:
        Tensor([1.0, 2.0]).sum().backward()
    assert str(e.value).startswith("backward: the output does not require grad")


# ---------------------------------------------------------------- hooks, retain_grad, tr.grad

def test_register_hook_sees_and_replaces_gradient():
    x = leaf([1.0, 2.0])
    seen = []
    h = x.register_hook(lambda g: seen.append(g.data.copy()))
    (x * 3).sum().backward()
    np.testing.assert_array_equal(seen[0], [3, 3])
    h.remove()
    y = x * 1.0
    y.register_hook(lambda g: g * 10)  # a non-None return replaces the gradient
    y.sum().backward()
    assert len(seen) == 1
    np.testing.assert_array_equal(x.grad.data, [13, 13])


def test_retain_grad_on_non_leaf():
    x = leaf([1.0, 2.0])
    y = x * x
    y.retain_grad()
    z = y * 4
    z.sum().backward()
    np.testing.assert_array_equal(y.grad.data, [4, 4])
    np.testing.assert_array_equal(x.grad.data, [8, 16])
    assert z.grad is None  # other non-leaves keep nothing


def test_tr_grad_returns_gradients_without_touching_dot_grad():
    x, w = leaf([1.0, 2.0]), leaf([3.0, -1.0])
    out = (x * w).sum()
    gx, gw = tr.grad(out, [x, w])
    np.testing.assert_array_equal(gx.data, w.data)
    np.testing.assert_array_equal(gw.data, x.data)
    assert x.grad is None and w.grad is None
    assert_no_graph(gx)
    single = tr.grad(out, x)
    assert isinstance(single, tuple) and len(single) == 1


def test_tr_grad_unused_input():
    x, u = leaf([1.0]), leaf([2.0])
    out = (x * 2).sum()
    with pytest.raises(ValueError, match=r"grad: input 1 \(shape \(1,\)\) was not used"):
        tr.grad(out, [x, u])
    gx, gu = tr.grad(out, [x, u], allow_unused=True)
    assert gu is None
    with pytest.raises(ValueError, match="grad: input 0 is not a Tensor that requires grad"):
        tr.grad(out, [Tensor([1.0])])


def test_tr_grad_of_several_outputs():
    x = leaf([1.0, 2.0])
    y1, y2 = (x * x).sum(), (x * 3).sum()
    g, = tr.grad([y1, y2], [x])
    np.testing.assert_array_equal(g.data, 2 * x.data + 3)


# ---------------------------------------------------------------- deep graphs

def test_deep_chain_of_100000_ops():
    n = 100_000
    x = leaf([1.0, 2.0])
    y = x
    for _ in range(n):
        y = y * 1.00001  # one Mul node per step
    assert n > sys.getrecursionlimit()
    y.sum().backward()
    np.testing.assert_allclose(x.grad.data, [1.00001 ** n] * 2, rtol=1e-9)
    np.testing.assert_allclose(y.data, x.data * 1.00001 ** n, rtol=1e-9)
    del y
    gc.collect()  # freeing the deep graph must not overflow the stack either


def test_deep_chain_tr_grad_and_topological_order():
    x = leaf([0.5])
    y = x
    for _ in range(20_000):
        y = -y
    g, = tr.grad(y.sum(), [x])
    np.testing.assert_array_equal(g.data, [1.0])
    order = tr.autograd.topological_order([y])
    assert order[0] is x and order[-1] is y and len(order) == 20_001


def test_function_apply_rejects_non_tensor_positional():
    with pytest.raises(TypeError, match="Neg.apply: positional arguments must be Tensors, got ndarray"):
        tr.ops.Neg.apply(np.ones(2))
