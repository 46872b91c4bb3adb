"""The gradient-testing kit (tr.gradcheck, tr.testing.check_op, the strategies): it catches planted
bugs (wrong sign, 0.1% scale, one wrong element, wrong only under broadcasting, wrong only at a
kink, a backward that cannot be differentiated), accepts correct ops at their kinks, and passes
every op of the library, found from the ops themselves, in full and fast mode on every backend."""

import numpy as np
import pytest
from hypothesis import given, settings

import tinygrad_rep as tr
from tinygrad_rep import Tensor
from tinygrad_rep.testing import check_op, strategies as trst
from tinygrad_rep.testing.op_cases import library_ops, op_cases, op_inputs

BACKENDS = ["numpy", "pybind11", "cffi"]


def T(a, grad=True):
    return Tensor(np.asarray(a, dtype=np.float64), requires_grad=grad)


def _rng(seed=0):
    return np.random.default_rng(seed)


def _away(shape, seed=0, lo=0.2, hi=2.0):
    """Values with |x| in [lo, hi], random signs: away from the kinks at 0."""
    r = _rng(seed)
    return r.uniform(lo, hi, shape) * r.choice([-1.0, 1.0], shape)


# ---------------------------------------------------------------- every op of the library

# the library's table of one gradient case per op (also what `tinygrad-rep gradcheck` checks)
CASES = op_cases()
_inputs = op_inputs


def _graph_classes(t):
    return {type(n.grad_fn) for n in tr.autograd.topological_order([t], follow=lambda n: True)
            if n.grad_fn is not None}


def test_every_op_of_the_library_has_a_case():
    found = library_ops()
    missing = sorted(set(found) - set(CASES))
    assert not missing, f"ops without a gradient case in tinygrad_rep/testing/op_cases.py: {missing}"
    assert sorted(set(CASES) - set(found)) == []
    for name, (fn, spec) in CASES.items():  # each case really reaches its op
        assert found[name] in _graph_classes(fn(*_inputs(spec, 0))), name


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("fast", [False, True], ids=["full", "fast"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_every_op_passes(name, fast, backend, dtype):
    # the default tolerances of each dtype: no false failure on any op of the library
    fn, spec = CASES[name]
    inputs = [Tensor(t.data.astype(dtype), requires_grad=True) if t.dtype == np.float64 else t
              for t in _inputs(spec, 1)]
    with _backend(backend):
        assert tr.gradcheck(fn, inputs, fast=fast)


class _backend:
    def __init__(self, name):
        self.name = name

    def __enter__(self):
        self.prev = tr.get_backend()
        tr.set_backend(self.name)

    def __exit__(self, *exc):
        tr.set_backend(self.prev)


# ---------------------------------------------------------------- planted bugs

class WrongSign(tr.Function):
    """y = sin x; backward returns -g cos x"""
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return np.sin(x)

    @staticmethod
    def backward(ctx, g):
        x, = ctx.saved_tensors
        return -g * Tensor(np.cos(x.data))


class Scaled(tr.Function):
    """y = x^2 with backward off by a relative `err` (class attribute)"""
    err = 0.0

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx, g):
        x, = ctx.saved_tensors
        return g * x * (2 * (1 + Scaled.err))


class OneWrongElement(tr.Function):
    """y = 3x; the gradient at flat element `at` is off by `by` (class attributes)"""
    at, by = 0, 1.0

    @staticmethod
    def forward(ctx, x):
        return 3 * x

    @staticmethod
    def backward(ctx, g):
        bump = np.zeros(g.shape)
        bump.reshape(-1)[OneWrongElement.at] = OneWrongElement.by
        return g * 3 + bump * g


class MeanInsteadOfSum(tr.Function):
    """z = x + y; y's gradient averages g over the broadcast axes instead of summing: right as
    long as y is not broadcast"""
    @staticmethod
    def forward(ctx, x, y):
        ctx.yshape = y.shape
        return x + y

    @staticmethod
    def backward(ctx, g):
        gy = g
        lead = g.ndim - len(ctx.yshape)
        axes = tuple(range(lead)) + tuple(lead + i for i, n in enumerate(ctx.yshape)
                                          if n == 1 and g.shape[lead + i] != 1)
        if axes:
            gy = g.mean(axis=axes, keepdims=True).reshape(ctx.yshape)
        return g, gy


class BadKinkReLU(tr.Function):
    """relu whose backward gives slope 2 at exactly 0 (outside [0, 1]): wrong only at the kink"""
    @staticmethod
    def forward(ctx, x):
        ctx.slope = (x > 0) + 2.0 * (x == 0)
        return np.maximum(x, 0)

    @staticmethod
    def backward(ctx, g):
        return g * ctx.slope


class ArrayBackward(tr.Function):
    """y = x^3 with the right first derivative computed on arrays: not differentiable again"""
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x ** 3

    @staticmethod
    def backward(ctx, g):
        x, = ctx.saved_tensors
        return g * Tensor(3 * x.numpy() ** 2)


@pytest.mark.parametrize("fast", [False, True], ids=["full", "fast"])
def test_catches_wrong_sign(fast):
    with pytest.raises(tr.GradcheckError):
        tr.gradcheck(WrongSign.apply, [T(_away((4, 5)))], fast=fast)
    with pytest.raises(tr.GradcheckError, match="check_op \\(backend numpy\\)"):
        check_op(WrongSign.apply, _away((4, 5)), reference=np.sin, backends="numpy", fast=fast)


@pytest.mark.parametrize("fast", [False, True], ids=["full", "fast"])
@pytest.mark.parametrize("dtype,err", [(np.float64, 1e-3), (np.float64, -1e-3), (np.float32, 2e-2),
                                       (np.float32, -2e-2)])
def test_catches_a_small_scale_error(dtype, err, fast):
    shape = (80, 80) if fast else (30, 40)  # fast: past the full fallback, so bisection names one
    x = Tensor(_away(shape, 3).astype(dtype), requires_grad=True)
    Scaled.err = 0.0
    assert tr.gradcheck(Scaled.apply, [x], fast=fast)
    Scaled.err = err
    try:
        with pytest.raises(tr.GradcheckError) as info:
            tr.gradcheck(Scaled.apply, [x], fast=fast)
        assert info.value.input_index == 0
        rel = (info.value.analytic - info.value.numerical) / info.value.numerical
        np.testing.assert_allclose(rel, err, rtol=1e-2 if dtype == np.float64 else 0.1)
    finally:
        Scaled.err = 0.0


@pytest.mark.parametrize("fast", [False, True], ids=["full", "fast"])
@pytest.mark.parametrize("by", [1.0, 1e-2])
def test_catches_one_wrong_element_and_names_it(fast, by):
    shape = (70, 90) if fast else (7, 9)   # fast: 6300 elements, past the full fallback: bisection
    x = T(_away(shape, 4))
    OneWrongElement.at, OneWrongElement.by = 4321 if fast else 40, by
    try:
        with pytest.raises(tr.GradcheckError) as info:
            tr.gradcheck(OneWrongElement.apply, [x], fast=fast)
    finally:
        OneWrongElement.at, OneWrongElement.by = 0, 1.0
    flat = 4321 if fast else 40
    assert tuple(info.value.element) == np.unravel_index(flat, shape)
    if fast:
        assert "fast check: projection 1 of 3 failed" in str(info.value)
        assert "bisection narrowed it to" in str(info.value)


def test_catches_an_error_only_under_broadcasting():
    a, b = T(_away((3, 4), 1)), T(_away((3, 4), 2))
    assert tr.gradcheck(MeanInsteadOfSum.apply, [a, b])            # same shapes: right
    with pytest.raises(tr.GradcheckError, match="for input 1 \\(shape \\(4,\\)"):
        tr.gradcheck(MeanInsteadOfSum.apply, [a, T(_away((4,), 2))])
    with pytest.raises(tr.GradcheckError, match="for input 1 \\(shape \\(3, 1\\)"):
        tr.gradcheck(MeanInsteadOfSum.apply, [a, T(_away((3, 1), 2))], fast=True)


def test_catches_an_error_only_at_a_kink():
    assert tr.gradcheck(BadKinkReLU.apply, [T(_away((3, 4)))])
    x = T(np.array([-1.0, 0.0, 0.5, 2.0]))
    with pytest.raises(tr.GradcheckError) as info:
        tr.gradcheck(BadKinkReLU.apply, [x])
    assert tuple(info.value.element) == (1,)
    assert "the function has a kink there: one-sided differences left 0, right " in str(info.value)
    assert "the analytic value is not between them" in str(info.value)


def test_catches_a_backward_that_cannot_be_differentiated():
    x = T(_away((2, 3)))
    assert tr.gradcheck(ArrayBackward.apply, [x])
    with pytest.raises(tr.GradcheckError) as info:
        check_op(ArrayBackward.apply, _away((2, 3)), reference=lambda a: a ** 3, gradgrad=True)
    msg = str(info.value)
    assert "gradgradcheck failed" in msg and "hint: the analytic second derivative is exactly 0" in msg


# ---------------------------------------------------------------- kinks: correct ops pass there

# (name, fn, input, whether the central difference misses there): abs at 0 has central
# difference 0 = sign(0), and ties of two have 1/2 = the shared gradient, so they pass plainly
KINKED = [
    ("relu", lambda t: t.relu(), np.array([-1.0, 0.0, 0.0, 2.0]), True),
    ("abs", lambda t: t.abs(), np.array([-1.0, 0.0, 3.0]), False),
    ("abs shifted", lambda t: (t - 0.5).abs(), np.array([0.5, 0.0, 3.0]), False),
    ("clamp", lambda t: t.clamp(-0.5, 0.5), np.array([-0.5, 0.5, 0.0, -2.0]), True),
    ("max ties", lambda t: t.max(axis=1), np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]]), True),
    ("|x| x", lambda t: (t.abs() * t).sum(), np.array([0.0, 1.0, -2.0]), False),
]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name,fn,x,kinked", KINKED, ids=[k[0] for k in KINKED])
def test_correct_ops_pass_at_their_kinks_and_are_reported(name, fn, x, kinked, backend):
    with _backend(backend):
        rep = tr.gradcheck(fn, [T(x)], report=True)
        assert rep and rep.method == "central differences"
        if kinked:
            assert rep.kink_elements, "the kink elements are listed"
            for i, element, a, left, right in rep.kink_elements:
                assert i == 0 and min(left, right) - 1e-6 <= a <= max(left, right) + 1e-6
                assert x[element] in (0.0, 0.5, -0.5, 2.0, 3.0)
            with pytest.raises(tr.GradcheckError):
                tr.gradcheck(fn, [T(x)], kinks=False)      # the strict check fails there
        else:
            assert rep.kink_elements == []
            assert tr.gradcheck(fn, [T(x)], kinks=False)


class ThresholdReLU(tr.Function):
    """relu whose backward switches at 1e-6 instead of 0: wrong for 0 < x < 1e-6 only"""
    @staticmethod
    def forward(ctx, x):
        ctx.slope = (x > 1e-6).astype(x.dtype)
        return np.maximum(x, 0)

    @staticmethod
    def backward(ctx, g):
        return g * ctx.slope


def test_a_kink_closer_than_the_step_is_checked_at_a_finer_step():
    x = T(np.array([3e-7, -4e-7, 5e-7, 2.0]))      # within eps = 1e-6 of relu's kink
    rep = tr.gradcheck(lambda t: t.relu(), [x], report=True)
    assert rep.near_kink_elements == [(0, (0,)), (0, (1,)), (0, (2,))] and rep.kink_elements == []
    with pytest.raises(tr.GradcheckError) as info:
        tr.gradcheck(ThresholdReLU.apply, [x])
    assert tuple(info.value.element) in ((0,), (2,)) and info.value.analytic == 0.0


def test_kink_rule_does_not_accept_a_jump():
    class Step(tr.Function):
        """y = x + (x >= 0): a jump at 0, with backward 1 (wrong at the jump: no derivative)"""
        @staticmethod
        def forward(ctx, x):
            return x + (x >= 0)

        @staticmethod
        def backward(ctx, g):
            return g

    with pytest.raises(tr.GradcheckError, match="change with the step: not a kink"):
        tr.gradcheck(Step.apply, [T(np.array([0.0, 1.0]))])


# ---------------------------------------------------------------- fast mode

def test_fast_mode_passes_a_large_matmul_with_few_evaluations():
    a, b = T(_rng(5).standard_normal((200, 150))), T(_rng(6).standard_normal((150, 100)))
    rep = tr.gradcheck(lambda x, y: (x @ y).tanh(), [a, b], fast=True, report=True)
    assert rep.method == "random projection (k=3, central differences)"
    assert rep.evaluations == 1 + 2 * 3 and rep.projections == 3


def test_fast_mode_falls_back_to_the_full_check_on_small_inputs_at_kinks():
    x = T(np.array([[-1.0, 0.0, 2.0], [0.0, 0.5, -0.25]]))
    rep = tr.gradcheck(lambda t: t.relu() * 2, [x], fast=True, report=True)
    assert rep  # the projection through the kinks may disagree; the element check accepts them


def test_fast_mode_on_a_large_input_through_kinks():
    a = _rng(8).standard_normal((100, 80))
    a.reshape(-1)[[10, 5000, 7000]] = 0.0           # three exact kinks in 8000 elements
    rep = tr.gradcheck(lambda t: t.relu() * 3, [T(a)], fast=True, report=True)
    assert {e for _, e, *_ in rep.kink_elements} <= {(0, 10), (62, 40), (87, 40)}
    assert rep.kink_elements and rep.evaluations < 2 * a.size / 4
    with pytest.raises(tr.GradcheckError) as info:  # slope 2 at the kinks: outside [0, 1]
        tr.gradcheck(BadKinkReLU.apply, [T(a)], fast=True)
    assert tuple(info.value.element) in {(0, 10), (62, 40), (87, 40)}
    assert "the analytic value is not between them" in str(info.value)


# ---------------------------------------------------------------- complex step

class XExp(tr.Function):
    """y = x exp(x), forward written for complex input;  dy/dx = (1 + x) exp(x)"""
    complex_step = True

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * np.exp(x)

    @staticmethod
    def backward(ctx, g):
        x, = ctx.saved_tensors
        return g * (1 + x) * x.exp()


class XExpWrong(XExp):
    err = 1e-9

    @staticmethod
    def backward(ctx, g):
        x, = ctx.saved_tensors
        return g * (1 + x) * x.exp() * (1 + XExpWrong.err)


def test_complex_step_is_used_when_declared_and_is_exact():
    x = T(_rng(7).uniform(-2, 3, (4, 5)))
    rep = tr.gradcheck(XExp.apply, [x], report=True)
    assert rep.method == "complex step"
    from tinygrad_rep.gradcheck import max_gradient_error
    # error of the numerical side against the exact (1 + x) e^x (values up to ~80): ~1e-14
    assert max_gradient_error(XExp.apply, [x], method="auto") < 1e-13
    assert max_gradient_error(XExp.apply, [x], method="central") > 1e-11
    # exact to rounding: a tolerance no central difference can meet
    assert tr.gradcheck(XExp.apply, [x], atol=1e-13, rtol=1e-13)
    with pytest.raises(tr.GradcheckError, match="\\(central differences\\)"):
        tr.gradcheck(XExp.apply, [x], atol=1e-13, rtol=1e-13, method="central")
    with pytest.raises(tr.GradcheckError, match="\\(complex step\\)"):   # a 1e-9 error is seen
        tr.gradcheck(XExpWrong.apply, [x], atol=1e-13, rtol=1e-12)
    XExpWrong.err = 1e-7                    # the exact method's defaults catch 1e-7 ...
    with pytest.raises(tr.GradcheckError, match="\\(complex step\\)"):
        tr.gradcheck(XExpWrong.apply, [x])
    assert tr.gradcheck(XExpWrong.apply, [x], method="central")   # ... central differences' do not
    XExpWrong.err = 1e-9
    fast = tr.gradcheck(XExp.apply, [x], fast=True, report=True)
    assert fast.method == "random projection (k=3, complex step)"


def test_complex_step_needs_a_declaring_function():
    with pytest.raises(TypeError, match="method='complex' needs fn to be SomeFunction.apply"):
        tr.gradcheck(lambda t: t.exp(), [T([1.0])], method="complex")
    assert tr.gradcheck(lambda t: t.exp(), [T([1.0])], report=True).method == "central differences"
    assert tr.gradcheck(WrongSign.apply, [T([1.0])], fast=False, kinks=False, atol=10,
                        report=True).method == "central differences"   # no complex_step declared


# ---------------------------------------------------------------- check_op

def test_check_op_on_every_backend_restores_the_backend():
    prev = tr.get_backend()
    tr.set_backend("cffi")
    try:
        seen = []

        def fn(t):
            seen.append(tr.get_backend())
            return t.softmax(-1)
        ref = lambda a: np.exp(a) / np.exp(a).sum(-1, keepdims=True)
        out = check_op(fn, _away((3, 4)), reference=ref, backends="all", gradgrad=True)
        assert isinstance(out, Tensor) and out.shape == (3, 4)
        assert set(seen) == set(BACKENDS) and tr.get_backend() == "cffi"
        with pytest.raises(AssertionError, match="check_op \\(backend numpy\\): forward differs from the reference"):
            check_op(fn, _away((3, 4)), reference=lambda a: ref(a) * 1.01, backends=["numpy", "pybind11"])
        assert tr.get_backend() == "cffi"
    finally:
        tr.set_backend(prev)


def test_check_op_argument_kinds():
    x = _away((3, 4))
    idx = np.array([2, 0, 2])
    out = check_op(lambda t, i, s: t[i.data] * s, x, idx, 2.5, reference=lambda a, i, s: a[i] * s)
    assert out.shape == (3, 4)
    # a float array listed in nondiff is a constant; dtype float32 is checked in float32
    check_op(lambda a, b: a * b, x, x + 1, nondiff=(1,), reference=np.multiply, dtype=np.float32)
    with pytest.raises(AssertionError, match="output dtype float64 != float32"):
        check_op(lambda a: a.astype(np.float64), x, reference=lambda a: a, dtype=np.float32)
    with pytest.raises(AssertionError, match="fn cut the graph"):
        check_op(lambda a: Tensor(a.data * 2), x)


def test_check_op_with_strategies_runs_its_own_examples():
    calls = []

    def fn(a, b):
        calls.append(a.shape)
        return a * b
    check_op(fn, trst.float_arrays((2, 3)), trst.float_arrays((3,)), reference=np.multiply, max_examples=5)
    assert len(calls) >= 5 and set(calls) == {(2, 3)}


@given(x=trst.float_arrays(trst.shapes(min_dims=1)))
@settings(max_examples=5)
def test_check_op_inside_given_with_arrays_and_strategies(x):
    check_op(lambda a: a.tanh(), x, reference=np.tanh)
    out = check_op(lambda a, b: a * b, x, trst.float_arrays(x.shape[-1:]), reference=np.multiply)
    assert out.shape == x.shape


# ---------------------------------------------------------------- strategies

@given(x=trst.float_arrays(trst.shapes(), dtype=np.float32, min_value=0.1, max_value=0.3))
def test_float32_arrays_are_float32_values_without_subnormals(x):
    assert x.dtype == np.float32 and np.all((x >= np.float32(0.1)) & (x <= np.float32(0.3)))


@given(x=trst.float_arrays(trst.shapes(min_dims=1, max_side=6), dtype=np.float32, min_value=-1e-30,
                           max_value=1e-30))
def test_no_subnormals_by_default(x):
    tiny = np.finfo(np.float32).tiny
    assert np.all((x == 0) | (np.abs(x) >= tiny))


@given(shapes=trst.broadcastable_shapes(n=3, max_dims=3, max_side=500, max_size=20000))
def test_sized_broadcastable_shapes(shapes):
    result = np.broadcast_shapes(*shapes)
    assert int(np.prod(result)) <= 20000 and len(shapes) == 3


@given(shapes=trst.broadcastable_shapes(n=2, min_dims=2, max_dims=2, min_side=200, max_side=1000,
                                        max_size=10 ** 6))
def test_sized_broadcastable_shapes_reach_big_sides(shapes):
    # hypothesis' mutually_broadcastable_shapes keeps sides tiny; here the user sets the size
    result = np.broadcast_shapes(*shapes)
    assert all(n == 1 or 200 <= n <= 1000 for n in result) and int(np.prod(result)) <= 10 ** 6
    assert all(n in (1, m) for s in shapes for n, m in zip(s[::-1], result[::-1]))


@given(a=trst.seeded_arrays(trst.shapes(min_dims=2, max_dims=2, min_side=50, max_side=400), dtype=np.float32))
@settings(max_examples=5)
def test_seeded_arrays(a):
    assert a.dtype == np.float32 and a.shape[0] >= 50 and np.all(np.abs(a) <= 3)


@given(idx=trst.index_arrays(5, shape=(12,)))
def test_index_arrays_repeat(idx):
    assert idx.dtype == np.int64 and np.all((idx >= -5) & (idx < 5))
    assert len(np.unique(idx % 5)) < idx.size   # with 12 draws from a pool of < 12 values


@given(x=trst.layouts(trst.float_arrays((3, 4))), p=trst.axis_permutations(3), s=trst.edge_shapes())
def test_layouts_permutations_edge_shapes(x, p, s):
    assert x.shape == (3, 4)
    assert sorted(p) == [0, 1, 2]
    assert len(s) <= 3
    np.testing.assert_array_equal(Tensor(x).transpose(1, 0).data, x.T)


@pytest.mark.parametrize("kind,c,f,positive", [("C", True, False, True), ("F", False, True, True),
                                               ("strided", False, False, True),
                                               ("reversed", False, False, False)])
def test_layouts_give_each_memory_layout(kind, c, f, positive):
    @given(trst.layouts(trst.float_arrays((3, 4)), kinds=(kind,)))
    @settings(max_examples=3, database=None)
    def check(x):
        assert (x.flags.c_contiguous, x.flags.f_contiguous) == (c, f)
        assert all(st > 0 for st in x.strides) == positive
    check()


class ForgetsGrad(tr.Function):
    """loss = sum(x^2) whose backward returns 2x without multiplying by the incoming gradient:
    exact when the loss is the last op (grad = 1), wrong inside any larger graph"""
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return np.asarray(np.sum(x * x))

    @staticmethod
    def backward(ctx, g):
        x, = ctx.saved_tensors
        return 2 * x


@pytest.mark.parametrize("fast", [False, True], ids=["full", "fast"])
def test_catches_a_backward_that_ignores_its_gradient(fast):
    x = T(_away((3, 4)))
    with pytest.raises(tr.GradcheckError) as info:
        tr.gradcheck(ForgetsGrad.apply, [x], fast=fast)   # a one-element output: grad is 1
    assert "backward is not linear in the gradient it receives" in str(info.value)
    assert info.value.compared == "linearity"
    with pytest.raises(tr.GradcheckError):
        tr.gradcheck(lambda t: ForgetsGrad.apply(t) * 3, [x], fast=fast)  # not last: plainly wrong


def test_check_op_without_reference_compares_the_backends():
    class BackendDependent(tr.Function):
        """y = 2x, except on the cffi backend (a planted binding bug)"""
        @staticmethod
        def forward(ctx, x):
            return x * (2.0 if tr.get_backend() != "cffi" else 2.001)

        @staticmethod
        def backward(ctx, g):
            return g * 2.0

    x = _away((2, 3))
    check_op(BackendDependent.apply, x, backends=["numpy", "pybind11"], grad=False)
    with pytest.raises(AssertionError, match="check_op \\(backend cffi\\): forward differs from backend numpy's"):
        check_op(BackendDependent.apply, x, backends="all", grad=False)
