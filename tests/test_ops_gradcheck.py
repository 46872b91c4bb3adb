"""Every Tensor op and method of the public API: forward against numpy, backward through
tr.gradcheck in float64, inputs drawn by hypothesis (broadcasting, size-0/1 axes, batched
matmul), kept away from kinks. One `tr.testing.check_op` line per op, as a user would write it."""
import numpy as np
import pytest
from hypothesis import given, strategies as st
from hypothesis.extra import numpy as hnp

import tinygrad_rep as tr
from tinygrad_rep import Tensor
from tinygrad_rep.testing import check_op, strategies as trst

from helpers import (capped, draw_arrays, np_log_softmax, np_logsigmoid, np_logsumexp, np_sigmoid,
                     np_softmax)

# `pytest --tr-backend all` runs every test here once per backend (the kit's pytest plugin)
pytestmark = pytest.mark.tr_backend

# ---------------------------------------------------------------- binary arithmetic, broadcasting

BINARY = [
    ("add", lambda x, y: x + y, np.add),
    ("sub", lambda x, y: x - y, np.subtract),
    ("mul", lambda x, y: x * y, np.multiply),
]


@pytest.mark.parametrize("name,tr_fn,np_fn", BINARY, ids=[b[0] for b in BINARY])
@given(shapes=trst.broadcastable_shapes(n=2, min_side=0), data=st.data())
def test_binary_broadcasting(name, tr_fn, np_fn, shapes, data):
    a, b = draw_arrays(data, shapes)
    check_op(tr_fn, a, b, reference=np_fn)


@given(shapes=trst.broadcastable_shapes(n=2, min_side=0), data=st.data())
def test_div_broadcasting(shapes, data):
    a = data.draw(trst.float_arrays(shapes[0]))
    b = data.draw(trst.away_from_kinks(shapes[1], delta=0.5))  # denominators away from 0
    check_op(lambda x, y: x / y, a, b, reference=np.divide)


@given(shapes=trst.broadcastable_shapes(n=3, min_side=1), data=st.data())
def test_three_way_broadcast_expression(shapes, data):
    a, b, c = draw_arrays(data, shapes)
    check_op(lambda x, y, z: x * y + z - x, a, b, c, reference=lambda x, y, z: x * y + z - x)


SCALARS = [2.5, 3, -1.5, True, np.float64(1.25), np.float32(0.5), np.int64(2), np.array(-0.75)]


@pytest.mark.parametrize("s", SCALARS, ids=lambda s: f"{type(s).__name__}({s})")
@given(x=trst.away_from_kinks(trst.shapes(), delta=0.5))
@capped(8)
def test_scalar_on_either_side(s, x):
    check_op(lambda t: t + s, x, reference=lambda a: a + s)
    check_op(lambda t: s + t, x, reference=lambda a: s + a)
    check_op(lambda t: t - s, x, reference=lambda a: a - s)
    check_op(lambda t: s - t, x, reference=lambda a: s - a)
    check_op(lambda t: t * s, x, reference=lambda a: a * s)
    check_op(lambda t: s * t, x, reference=lambda a: s * a)
    check_op(lambda t: t / s, x, reference=lambda a: a / s)
    check_op(lambda t: s / t, x, reference=lambda a: s / a)  # x is at distance >= 0.5 from 0


@given(shapes=trst.broadcastable_shapes(n=2), data=st.data())
@capped(10)
def test_ndarray_constant_on_either_side(shapes, data):
    x, c = draw_arrays(data, shapes)
    check_op(lambda t: t * c + c, x, reference=lambda a: a * c + c)
    check_op(lambda t: c * t - c / (t * t + 1), x, reference=lambda a: c * a - c / (a * a + 1))


@given(x=trst.float_arrays(trst.shapes(min_side=0)))
def test_neg(x):
    check_op(lambda t: -t, x, reference=np.negative)


@pytest.mark.parametrize("p", [2, 3, 0.5, -1, 1.5, -2.5, 0, 1])
@given(x=trst.float_arrays(trst.shapes(), min_value=0.2, max_value=3.0))
@capped(10)
def test_pow_positive_base(p, x):
    check_op(lambda t: t ** p, x, reference=lambda a: a ** float(p))


@pytest.mark.parametrize("p", [2, 3, 4.0])
@given(x=trst.float_arrays(trst.shapes()))
@capped(10)
def test_pow_integer_exponent_any_sign(p, x):
    check_op(lambda t: t ** p, x, reference=lambda a: a ** float(p))


# ---------------------------------------------------------------- matmul

@given(ab=trst.matmul_pairs(max_batch_dims=2))
def test_matmul(ab):
    a, b = ab
    check_op(lambda x, y: x @ y, a, b, reference=np.matmul)
    check_op(lambda x, y: tr.matmul(x, y), a, b, reference=np.matmul)


@given(ab=trst.matmul_pairs(max_batch_dims=2, min_side=0, max_side=3))
@capped(15)
def test_matmul_size_zero_axes(ab):
    a, b = ab
    out = check_op(lambda x, y: x @ y, a, b, reference=np.matmul)  # gradcheck covers every non-empty input
    ta, tb = Tensor(a, requires_grad=True), Tensor(b, requires_grad=True)
    y = ta @ tb
    y.backward(np.ones(out.shape))
    assert ta.grad.shape == a.shape and tb.grad.shape == b.shape
    assert np.all(np.isfinite(ta.grad.data)) and np.all(np.isfinite(tb.grad.data))


@pytest.mark.parametrize("sa,sb", [
    ((3,), (3,)), ((3,), (3, 2)), ((2, 3), (3,)), ((2, 3), (3, 4)),
    ((5, 2, 3), (3, 4)), ((2, 3), (5, 3, 4)), ((5, 2, 3), (5, 3, 4)), ((5, 1, 2, 3), (4, 3, 2)),
    ((3,), (2, 3, 4)), ((2, 2, 3), (3,)), ((1, 2, 3), (4, 3, 2)),
])
def test_matmul_fixed_shapes(sa, sb):
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal(sa), rng.standard_normal(sb)
    check_op(lambda x, y: x @ y, a, b, reference=np.matmul, backends="all")


def test_matmul_with_ndarray_either_side():
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((2, 3)), rng.standard_normal((3, 4))
    check_op(lambda x: x @ b, a, reference=lambda x: x @ b)
    check_op(lambda y: a @ y, b, reference=lambda y: a @ y)


# ---------------------------------------------------------------- unary math

UNARY = [
    ("exp", lambda t: t.exp(), np.exp, trst.float_arrays(trst.shapes(min_side=0))),
    ("log", lambda t: t.log(), np.log, trst.float_arrays(trst.shapes(min_side=0), min_value=0.1)),
    ("sqrt", lambda t: t.sqrt(), np.sqrt, trst.float_arrays(trst.shapes(min_side=0), min_value=0.1)),
    # 0-d relu: see test_relu_zero_dimensional
    ("relu", lambda t: t.relu(), lambda a: np.maximum(a, 0), trst.away_from_kinks(trst.shapes(min_dims=1, min_side=0))),
    ("sigmoid", lambda t: t.sigmoid(), np_sigmoid, trst.float_arrays(trst.shapes(min_side=0), min_value=-8, max_value=8)),
    ("logsigmoid", lambda t: t.logsigmoid(), np_logsigmoid, trst.float_arrays(trst.shapes(), min_value=-8, max_value=8)),
    ("tanh", lambda t: t.tanh(), np.tanh, trst.float_arrays(trst.shapes(min_side=0))),
    ("abs", lambda t: t.abs(), np.abs, trst.away_from_kinks(trst.shapes())),
    ("clamp", lambda t: t.clamp(-1.0, 1.5), lambda a: np.clip(a, -1.0, 1.5),
     trst.away_from_kinks(trst.shapes(), kinks=(-1.0, 1.5))),
    ("clamp_lo", lambda t: t.clamp(lo=0.5), lambda a: np.maximum(a, 0.5),
     trst.away_from_kinks(trst.shapes(), kinks=(0.5,))),
]


@pytest.mark.parametrize("name,tr_fn,np_fn,arrays", UNARY, ids=[u[0] for u in UNARY])
@given(data=st.data())
def test_unary(name, tr_fn, np_fn, arrays, data):
    check_op(tr_fn, data.draw(arrays), reference=np_fn, backends="all")


KINKED = [
    ("relu", lambda t: t.relu(), lambda a: np.maximum(a, 0)),
    ("abs", lambda t: t.abs(), np.abs),
    ("clamp", lambda t: t.clamp(-0.5, 0.5), lambda a: np.clip(a, -0.5, 0.5)),
    ("max", lambda t: t.max(axis=-1), lambda a: np.max(a, axis=-1)),
]


@pytest.mark.parametrize("name,tr_fn,np_fn", KINKED, ids=[k[0] for k in KINKED])
@given(x=trst.float_arrays(trst.shapes(min_dims=1), elements=st.sampled_from([-1.0, -0.5, 0.0, 0.5, 1.0])))
def test_kinked_ops_at_their_kinks(name, tr_fn, np_fn, x):
    # values on the kinks (0, the clamp bounds) and ties for max: gradcheck accepts an analytic
    # value between the one-sided differences there (tests/test_kit.py: and only there)
    check_op(tr_fn, x, reference=np_fn, backends="all")


def test_relu_zero_dimensional():
    # 0-d arrays must stay 0-d through the kernel checks (np.ascontiguousarray would make them (1,))
    for v in (-1.5, 2.0):
        check_op(lambda t: t.relu(), np.array(v), reference=lambda a: np.maximum(a, 0))


# ---------------------------------------------------------------- softmax family, any axis

@st.composite
def array_and_axis(draw, min_side=1, **kw):
    x = draw(trst.float_arrays(trst.shapes(min_dims=1, min_side=min_side), **kw))
    axis = draw(st.integers(-x.ndim, x.ndim - 1))
    return x, axis


@given(xa=array_and_axis(min_value=-5, max_value=5))
def test_softmax_any_axis(xa):
    x, axis = xa
    check_op(lambda t: t.softmax(axis), x, reference=lambda a: np_softmax(a, axis), backends="all")


@given(xa=array_and_axis(min_value=-5, max_value=5))
def test_log_softmax_any_axis(xa):
    x, axis = xa
    check_op(lambda t: t.log_softmax(axis), x, reference=lambda a: np_log_softmax(a, axis), backends="all")


def test_softmax_default_axis_is_last():
    x = np.random.default_rng(2).standard_normal((3, 4, 5))
    check_op(lambda t: t.softmax(), x, reference=lambda a: np_softmax(a, -1))
    check_op(lambda t: t.log_softmax(), x, reference=lambda a: np_log_softmax(a, -1))


@given(x=trst.float_arrays(trst.shapes(min_dims=1, min_side=0)))
@capped(10)
def test_softmax_size_zero(x):
    # rows of length 0 or zero rows: an empty result, no error
    y = Tensor(x, requires_grad=True).softmax(-1)
    assert y.shape == x.shape
    if x.shape[-1] > 0:
        check_op(lambda t: t.softmax(-1), x, reference=lambda a: np_softmax(a, -1))


# ---------------------------------------------------------------- reductions

@st.composite
def reduce_args(draw, min_side=1, distinct=False):
    shape = draw(trst.shapes(min_side=min_side))
    if distinct:
        x = draw(trst.away_from_kinks(shape, kinks=(), distinct=True))
    else:
        x = draw(trst.float_arrays(shape))
    return x, draw(trst.valid_axes(x.ndim)), draw(st.booleans())


@given(args=reduce_args(min_side=0))
def test_sum(args):
    x, axis, keepdims = args
    check_op(lambda t: t.sum(axis=axis, keepdims=keepdims), x,
             reference=lambda a: np.sum(a, axis=axis, keepdims=keepdims))


@given(args=reduce_args())
def test_mean(args):
    x, axis, keepdims = args
    check_op(lambda t: t.mean(axis=axis, keepdims=keepdims), x,
             reference=lambda a: np.mean(a, axis=axis, keepdims=keepdims))


@given(args=reduce_args(distinct=True))
def test_max(args):
    x, axis, keepdims = args
    check_op(lambda t: t.max(axis=axis, keepdims=keepdims), x,
             reference=lambda a: np.max(a, axis=axis, keepdims=keepdims))


def test_max_ties_share_gradient():
    x = Tensor(np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]]), requires_grad=True)
    x.max(axis=1).sum().backward()
    np.testing.assert_array_equal(x.grad.data, [[0, 0.5, 0.5], [1 / 3, 1 / 3, 1 / 3]])


@given(args=reduce_args())
def test_logsumexp(args):
    x, axis, keepdims = args
    check_op(lambda t: t.logsumexp(axis=axis, keepdims=keepdims), x,
             reference=lambda a: np_logsumexp(a, axis=axis, keepdims=keepdims))


def test_logsumexp_default_axis_is_last():
    x = np.random.default_rng(3).standard_normal((2, 5))
    check_op(lambda t: t.logsumexp(), x, reference=lambda a: np_logsumexp(a, axis=-1))


@given(args=reduce_args())
@capped(15)
def test_norm(args):
    x, axis, keepdims = args
    x = np.where(np.abs(x) < 0.1, 0.5, x)  # the norm is not differentiable at 0
    check_op(lambda t: t.norm(axis=axis, keepdims=keepdims), x,
             reference=lambda a: np.sqrt(np.sum(a * a, axis=axis, keepdims=keepdims)))


# ---------------------------------------------------------------- movement

@given(data=st.data())
def test_reshape(data):
    x = data.draw(trst.float_arrays(trst.shapes(max_dims=4, min_side=0)))
    target = data.draw(trst.compatible_shapes(x.shape))
    check_op(lambda t: t.reshape(target), x, reference=lambda a: a.reshape(target))
    check_op(lambda t: t.reshape(*target), x, reference=lambda a: a.reshape(target))


@given(data=st.data())
def test_transpose(data):
    x = data.draw(trst.float_arrays(trst.shapes(max_dims=4, min_side=0)))
    perm = data.draw(st.permutations(range(x.ndim)))
    check_op(lambda t: t.transpose(*perm), x, reference=lambda a: a.transpose(perm))
    check_op(lambda t: t.transpose(tuple(perm)), x, reference=lambda a: a.transpose(perm))
    check_op(lambda t: t.T, x, reference=lambda a: a.T)
    check_op(lambda t: t.transpose(), x, reference=lambda a: a.transpose())


@given(data=st.data())
def test_basic_indexing(data):
    x = data.draw(trst.float_arrays(trst.shapes(min_dims=1, max_dims=3, min_side=0)))
    index = data.draw(hnp.basic_indices(x.shape, allow_newaxis=True, allow_ellipsis=True))
    check_op(lambda t: t[index], x, reference=lambda a: np.array(a[index]))


@given(data=st.data())
def test_integer_array_indexing(data):
    x = data.draw(trst.float_arrays(trst.shapes(min_dims=1, max_dims=3)))
    index = data.draw(hnp.integer_array_indices(x.shape, result_shape=trst.shapes(min_dims=1, max_dims=2,
                                                                                   max_side=6)))
    check_op(lambda t: t[index], x, reference=lambda a: a[index])


@given(data=st.data())
def test_integer_array_indexing_with_repeats(data):
    x = data.draw(trst.float_arrays(trst.shapes(min_dims=1, max_dims=3)))
    n = x.shape[0]
    idx = np.array(data.draw(st.lists(st.integers(-n, n - 1), min_size=1, max_size=8)) + [0, 0, -1])
    check_op(lambda t: t[idx], x, reference=lambda a: a[idx])
    check_op(lambda t: t[Tensor(idx)], x, reference=lambda a: a[idx])  # an integer Tensor as index
    check_op(lambda t: t[list(idx)], x, reference=lambda a: a[idx])     # a Python list as index
    t = Tensor(x, requires_grad=True)
    t[idx].sum().backward()
    counts = np.bincount(idx % n, minlength=n).astype(np.float64)
    np.testing.assert_array_equal(t.grad.data, np.broadcast_to(counts.reshape((n,) + (1,) * (x.ndim - 1)), x.shape))


def test_mixed_and_mask_indexing():
    x = np.random.default_rng(4).standard_normal((4, 5, 3))
    rows = np.array([3, 0, 3])
    check_op(lambda t: t[rows, 1:4], x, reference=lambda a: a[rows, 1:4])
    check_op(lambda t: t[:, np.array([[0, 4], [4, 4]]), -1], x,
             reference=lambda a: a[:, np.array([[0, 4], [4, 4]]), -1])
    check_op(lambda t: t[1, ..., None, ::-2], x, reference=lambda a: a[1, ..., None, ::-2])
    mask = x[..., 0] > 0
    check_op(lambda t: t[mask], x, reference=lambda a: a[mask])


@st.composite
def concat_args(draw, stacking=False):
    base = list(draw(trst.shapes(min_dims=1, max_dims=3, min_side=0)))
    axis = draw(st.integers(-len(base) - stacking, len(base) - 1 + stacking))
    k = draw(st.integers(1, 4))
    arrays = []
    for _ in range(k):
        shape = list(base)
        if not stacking:
            shape[axis] = draw(st.integers(0, 3))
        arrays.append(draw(trst.float_arrays(tuple(shape))))
    return arrays, axis


@given(args=concat_args())
def test_concat(args):
    arrays, axis = args
    check_op(lambda *ts: tr.concat(list(ts), axis=axis), *arrays,
             reference=lambda *a: np.concatenate(a, axis=axis))


@given(args=concat_args(stacking=True))
def test_stack(args):
    arrays, axis = args
    check_op(lambda *ts: tr.stack(list(ts), axis=axis), *arrays, reference=lambda *a: np.stack(a, axis=axis))


def test_concat_mixed_requires_grad():
    a = Tensor(np.ones((2, 2)), requires_grad=True)
    b = Tensor(np.full((1, 2), 2.0))  # a constant
    y = tr.concat([a, b, a], axis=0)
    (y * Tensor(np.arange(10.0).reshape(5, 2))).sum().backward()
    np.testing.assert_array_equal(a.grad.data, [[0 + 6, 1 + 7], [2 + 8, 3 + 9]])
    assert b.grad is None


def test_expand_and_astype():
    x = np.random.default_rng(5).standard_normal((3, 1))
    check_op(lambda t: t.expand(2, 3, 4), x, reference=lambda a: np.broadcast_to(a, (2, 3, 4)))
    t = Tensor(x, requires_grad=True)
    y = t.astype(np.float32)
    assert y.dtype == np.float32
    (y * 3).sum().backward()
    assert t.grad.dtype == np.float64
    np.testing.assert_array_equal(t.grad.data, np.full(x.shape, 3.0))


# ---------------------------------------------------------------- compositions

@given(data=st.data())
@capped(15)
def test_composite_expression(data):
    x = data.draw(trst.float_arrays((3, 4)))
    w = data.draw(trst.float_arrays((4, 2)))
    b = data.draw(trst.float_arrays((2,)))
    check_op(lambda x, w, b: ((x @ w + b).tanh() ** 2).sum(axis=0).log_softmax(), x, w, b,
             reference=lambda x, w, b: np_log_softmax((np.tanh(x @ w + b) ** 2).sum(axis=0)))


# ---------------------------------------------------------------- the shipped strategies keep their promises

@given(shapes=trst.broadcastable_shapes(n=3, min_side=0))
def test_strategy_broadcastable_shapes(shapes):
    assert len(shapes) == 3
    np.broadcast_shapes(*shapes)  # raises if they do not broadcast


@given(data=st.data())
def test_strategy_valid_axes(data):
    x = data.draw(trst.float_arrays(trst.shapes(min_dims=0, max_dims=4)))
    axis = data.draw(trst.valid_axes(x.ndim))
    np.sum(x, axis=axis)  # numpy accepts every drawn axis
    Tensor(x).sum(axis=axis)


@given(data=st.data())
def test_strategy_compatible_shapes(data):
    shape = data.draw(trst.shapes(max_dims=4, min_side=0))
    target = data.draw(trst.compatible_shapes(shape))
    assert np.empty(shape).reshape(target).size == int(np.prod(shape))


@given(ab=trst.matmul_pairs(max_batch_dims=3))
def test_strategy_matmul_pairs(ab):
    a, b = ab
    np.matmul(a, b)
    assert a.dtype == b.dtype == np.float64 and np.all(np.abs(a) <= 3) and np.all(np.abs(b) <= 3)


@given(x=trst.away_from_kinks(trst.shapes(max_side=5), delta=0.25, kinks=(0.0, 1.0)))
def test_strategy_away_from_kinks(x):
    assert np.all(np.abs(x) >= 0.25) and np.all(np.abs(x - 1.0) >= 0.25)
    assert np.all((x >= -3) & (x <= 3))


@given(x=trst.away_from_kinks(trst.shapes(min_dims=1, max_side=5), distinct=True, dtype=np.float32))
def test_strategy_away_from_kinks_distinct(x):
    assert x.dtype == np.float32 and np.all(np.abs(x) >= 0.1)
    v = np.sort(x.ravel())
    assert np.all(np.diff(v) > 1e-3)  # no ties, far apart compared with gradcheck's eps


@given(t=trst.tensors(shape=trst.shapes(min_dims=1), dtype=np.float32, min_value=0.5, max_value=1.0))
def test_strategy_tensors(t):
    assert isinstance(t, Tensor) and t.requires_grad and t.dtype == np.float32
    assert np.all((t.data >= 0.5) & (t.data <= 1.0))
