"""Tensor basics: construction and dtypes, properties, conversion, scalars, comparisons."""
import numpy as np
import pytest

import tinygrad_rep as tr
from tinygrad_rep import Tensor


@pytest.mark.parametrize("data", [[1, 2, 3], [[1.5, 2.0]], 3, 2.5, True, [[True, False]]])
def test_python_data_defaults_to_float32(data):
    t = Tensor(data)
    assert t.dtype == np.float32
    np.testing.assert_array_equal(t.data, np.array(data, dtype=np.float32))


def test_numpy_dtypes():
    assert Tensor(np.ones(2, np.float64)).dtype == np.float64     # float64 kept
    assert Tensor(np.ones(2, np.float32)).dtype == np.float32
    assert Tensor(np.ones(2, np.float16)).dtype == np.float32     # float16 widened
    assert Tensor(np.float64(1.0)).dtype == np.float64            # numpy scalars too
    assert Tensor(np.float16(1.0)).dtype == np.float32
    assert Tensor(np.arange(3)).dtype == np.arange(3).dtype       # integers stay (indices, targets)
    assert Tensor(np.array([True])).dtype == np.bool_
    assert Tensor([1, 2], dtype=np.float64).dtype == np.float64
    assert Tensor(np.ones(2), dtype="float32").dtype == np.float32
    assert tr.tensor([1.0], dtype=np.float64).dtype == np.float64


def test_float16_widened_with_requires_grad():
    t = Tensor(np.array([0.5, 1.5], dtype=np.float16), requires_grad=True)
    assert t.dtype == np.float32 and t.requires_grad
    (t * t).sum().backward()
    assert t.grad.dtype == np.float32
    np.testing.assert_array_equal(t.grad.data, [1.0, 3.0])


@pytest.mark.parametrize("arr", [np.arange(3), np.arange(3, dtype=np.int32), np.array([True, False]),
                                 np.arange(3, dtype=np.uint8)])
def test_integer_and_bool_cannot_require_grad(arr):
    with pytest.raises(TypeError) as e:
        Tensor(arr, requires_grad=True)
    assert str(e.value) == f"only floating-point tensors can require gradients, got dtype {arr.dtype}"
    t = Tensor(arr)
    with pytest.raises(TypeError, match="only floating-point tensors can require gradients"):
        t.requires_grad_()


def test_tensor_copies_its_data():
    a = np.array([1.0, 2.0])
    t = Tensor(a)
    a[0] = 100.0
    assert t.data[0] == 1.0
    u = Tensor(t)
    assert u.data is not t.data and u.dtype == t.dtype


def test_properties_and_conversions():
    a = np.arange(6.0).reshape(2, 3)
    t = Tensor(a, requires_grad=True)
    assert t.shape == (2, 3) and t.ndim == 2 and t.size == 6 and len(t) == 2
    assert t.dtype == np.float64 and t.is_leaf and t.grad_fn is None and t.grad is None
    assert t.numpy() is t.data
    np.testing.assert_array_equal(np.asarray(t), a)
    assert np.asarray(t, dtype=np.float32).dtype == np.float32
    assert Tensor(np.array([[4.5]])).item() == 4.5
    with pytest.raises(ValueError, match=r"item\(\) needs a tensor with one element, got shape \(2, 3\)"):
        t.item()
    with pytest.raises(TypeError, match="len\\(\\) of a 0-d tensor"):
        len(Tensor(1.0))
    y = t * 2
    assert not y.is_leaf and y.grad_fn.name == "Mul"
    assert "requires_grad=True" in repr(t) and "grad_fn=Mul" in repr(y) and "float64" in repr(t)


def test_requires_grad_flag():
    t = Tensor([1.0, 2.0])
    assert not t.requires_grad
    assert t.requires_grad_() is t and t.requires_grad
    t.requires_grad_(False)
    assert not t.requires_grad


@pytest.mark.parametrize("scalar", [2, 2.5, np.float64(2.5), np.float32(2.5), np.int64(2), True])
def test_python_and_numpy_scalars_keep_the_tensor_dtype(scalar):
    for dtype in (np.float32, np.float64):
        t = Tensor(np.array([1.0, 2.0], dtype=dtype), requires_grad=True)
        for y in (t + scalar, scalar + t, t - scalar, scalar - t, t * scalar, scalar * t, t / scalar,
                  scalar / t, t ** 2):
            assert y.dtype == dtype, (scalar, dtype, y.dtype)


def test_mixed_tensor_dtypes_promote_and_grads_keep_input_dtype():
    a = Tensor(np.array([1.0, 2.0], dtype=np.float32), requires_grad=True)
    b = Tensor(np.array([3.0, 4.0], dtype=np.float64), requires_grad=True)
    y = a * b
    assert y.dtype == np.float64
    y.sum().backward()
    assert a.grad.dtype == np.float32 and b.grad.dtype == np.float64
    m = a.reshape(1, 2) @ b.reshape(2, 1)
    assert m.dtype == np.float64


def test_ndarray_operands_on_either_side():
    t = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    c = np.array([10.0, 20.0])
    for y, expected in ((c * t, c * t.data), (t * c, t.data * c), (c - t, c - t.data), (c / t, c / t.data),
                        (c + t, c + t.data)):
        assert isinstance(y, Tensor)
        np.testing.assert_array_equal(y.data, expected)


def test_comparisons_give_bool_tensors_outside_the_graph():
    t = Tensor(np.array([1.0, 2.0, 3.0]), requires_grad=True)
    for m, expected in ((t > 2, [0, 0, 1]), (t >= 2, [0, 1, 1]), (t < 2, [1, 0, 0]), (t <= 2, [1, 1, 0])):
        assert m.dtype == np.bool_ and not m.requires_grad and m._ctx is None
        np.testing.assert_array_equal(m.data, np.array(expected, dtype=bool))
    assert (t == t) is True and (t == Tensor([1.0, 2.0, 3.0])) is False  # identity, hashable
    assert len({t, t}) == 1


def test_positive_and_flatten():
    t = Tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    assert +t is t
    f = t.flatten()
    assert f.shape == (6,)
    (f * Tensor(np.arange(6.0))).sum().backward()
    np.testing.assert_array_equal(t.grad.data, np.arange(6.0).reshape(2, 3))


def test_zero_dimensional_reductions_accept_axis_0_and_minus_1():
    t = Tensor(np.array(2.0), requires_grad=True)
    for y in (t.sum(axis=0), t.sum(axis=-1), t.max(axis=0), t.mean(axis=-1), t.logsumexp(), t.sum(axis=()),
              t.sum(keepdims=True)):
        assert y.shape == ()
    t.sum(axis=0).backward()
    assert t.grad.item() == 1.0
