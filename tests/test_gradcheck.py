"""tr.gradcheck itself: it passes correct ops, names the input, element and both values of a
wrong one, applies the looser float32 tolerance, and checks user-defined Functions."""
import re

import numpy as np
import pytest

import tinygrad_rep as tr
import tinygrad_rep.functional as F
from tinygrad_rep import Tensor


# ---------------------------------------------------------------- a user-defined op (README style)

class Cube(tr.Function):
    """y = x^3;  dy/dx = 3 x^2"""
    @staticmethod
    def forward(ctx, x):            # x: numpy array
        ctx.save_for_backward(x)
        return x ** 3

    @staticmethod
    def backward(ctx, grad):        # grad: Tensor shaped like the output
        x, = ctx.saved_tensors      # Tensors again
        return grad * 3 * x * x     # one gradient per Tensor input


class ScaledDot(tr.Function):
    """z = s * sum(a * b) (a, b same shape, s a keyword constant);  dz/da = s b, dz/db = s a"""
    @staticmethod
    def forward(ctx, a, b, scale=1.0):
        ctx.save_for_backward(a, b)
        ctx.scale = scale
        return np.asarray(scale * np.sum(a * b))

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        return (g * ctx.scale * b if ctx.needs_input_grad[0] else None,
                g * ctx.scale * a if ctx.needs_input_grad[1] else None)


def test_user_function_cube():
    x = Tensor(np.array([[0.5, -1.5], [2.0, 0.1]]), requires_grad=True)
    y = Cube.apply(x)
    np.testing.assert_array_equal(y.data, x.data ** 3)
    assert y.grad_fn.name == "Cube"
    y.sum().backward()
    np.testing.assert_allclose(x.grad.data, 3 * x.data ** 2)
    assert tr.gradcheck(Cube.apply, [x])
    assert tr.gradgradcheck(Cube.apply, [x])  # its backward is written in Tensor ops: differentiable


def test_user_function_with_two_inputs_and_keyword_option():
    a = Tensor(np.array([1.0, -2.0, 0.5]), requires_grad=True)
    b = Tensor(np.array([0.3, 0.2, -4.0]), requires_grad=True)
    assert tr.gradcheck(lambda x, y: ScaledDot.apply(x, y, scale=2.5), [a, b])
    c = Tensor(np.array([0.3, 0.2, -4.0]))  # a constant: its gradient is never asked for
    assert tr.gradcheck(lambda x, y: ScaledDot.apply(x, y, scale=-1.0), [a, c])


# ---------------------------------------------------------------- passing

def test_passes_on_correct_ops():
    rng = np.random.default_rng(0)
    x = Tensor(rng.standard_normal((3, 4)), requires_grad=True)
    w = Tensor(rng.standard_normal((4, 2)), requires_grad=True)
    assert tr.gradcheck(lambda x, w: (x @ w).tanh().log_softmax(-1), [x, w]) is True
    assert tr.gradcheck(lambda x: F.cross_entropy(x, np.array([0, 3, 1])), x) is True  # a single Tensor is fine


def test_inputs_without_requires_grad_are_passed_through():
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    idx = Tensor(np.array([1, 1, 0]))
    const = Tensor(np.array([3.0, 4.0]))
    assert tr.gradcheck(lambda x, i, c: (x * c)[i.data], [x, idx, const])


def test_unused_input_has_zero_gradient():
    x, u = Tensor(np.array([1.0]), requires_grad=True), Tensor(np.array([2.0]), requires_grad=True)
    assert tr.gradcheck(lambda x, u: x * 2, [x, u])


# ---------------------------------------------------------------- failing, with a clear message

class WrongSquare(tr.Function):
    """y = x^2 with a wrong backward: returns g * x instead of 2 g x."""
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx, g):
        x, = ctx.saved_tensors
        return g * x


def test_raises_on_wrong_backward_naming_input_element_and_values():
    x = Tensor(np.array([[0.5, -1.0, 2.0], [1.5, 0.25, -0.75]]), requires_grad=True)
    with pytest.raises(tr.GradcheckError) as info:
        tr.gradcheck(WrongSquare.apply, [x])
    err = info.value
    assert isinstance(err, AssertionError)
    v = np.random.default_rng(0).standard_normal(x.shape)  # gradcheck's default cotangent (seed 0)
    # every element is wrong by |v x|; the error names the worst one relative to its tolerance
    worst = tuple(int(k) for k in np.unravel_index(np.argmax(np.abs(v * x.data)), x.shape))
    assert err.input_index == 0 and tuple(err.element) == worst
    np.testing.assert_allclose(err.analytic, v[worst] * x.data[worst], rtol=1e-12)
    np.testing.assert_allclose(err.numerical, 2 * v[worst] * x.data[worst], rtol=1e-8)
    assert err.compared == "vjp" and np.array_equal(err.v, v)
    msg = str(err)
    assert msg.startswith(f"gradcheck failed for input 0 (shape (2, 3), dtype float64) at element {worst}: ")
    assert f"analytic (vᵀJ) {err.analytic!r}" in msg and f"numerical {err.numerical!r}" in msg
    assert "(atol=1e-06, rtol=0.0001)" in msg and "(central differences)" in msg
    assert "v = [[ 0.1257, -0.1321,  0.6404]," in msg  # a small v is printed
    with pytest.raises(tr.GradcheckError, match=r"v = np.random.default_rng\(0\).standard_normal\(\(3, 4\)\)"):
        tr.gradcheck(WrongSquare.apply, [Tensor(np.ones((3, 4)), requires_grad=True)])


def test_scalar_output_reports_the_plain_derivative():
    x = Tensor(np.array([0.5, -1.0, 2.0]), requires_grad=True)
    with pytest.raises(tr.GradcheckError) as info:
        tr.gradcheck(lambda t: WrongSquare.apply(t).sum(), [x])
    err = info.value
    # d/dx sum(x^2) = 2x; the wrong backward gives x. No random factor in either number.
    assert tuple(err.element) == (2,) and err.analytic == 2.0
    np.testing.assert_allclose(err.numerical, 4.0, rtol=1e-8)
    assert err.compared == "derivative" and err.v is None
    assert "analytic derivative 2.0, numerical " in str(err)
    assert "the plain derivative of the one-element output" in str(err)


def test_small_output_message_shows_v():
    x = Tensor(np.array([0.5, -1.0]), requires_grad=True)
    with pytest.raises(tr.GradcheckError) as info:
        tr.gradcheck(WrongSquare.apply, [x])
    v = np.random.default_rng(0).standard_normal(2)
    assert f"v = {np.array2string(v, precision=4, separator=', ')}" in str(info.value)


def test_fortran_ordered_input_is_perturbed_element_by_element():
    a = np.arange(1.0, 7.0).reshape(2, 3) / 4
    x = Tensor(a.T, requires_grad=True)            # a Fortran-ordered array
    assert tr.gradcheck(lambda t: (t * t).sum(axis=0) * t[0], [x])
    y = Tensor(np.asfortranarray(np.ones((3, 4))), requires_grad=True)
    w = Tensor(np.asfortranarray(np.arange(8.0).reshape(4, 2)), requires_grad=True)
    assert tr.gradcheck(lambda p, q: (p @ q).tanh(), [y, w])
    assert tr.gradgradcheck(lambda p, q: (p @ q).tanh(), [y, w])
    with pytest.raises(tr.GradcheckError) as info:           # and a wrong gradient still fails
        tr.gradcheck(lambda t: WrongSquare.apply(t).sum(), [x])
    assert info.value.numerical != 0.0


def test_the_same_tensor_passed_twice():
    x = Tensor(np.array([0.5, -1.5, 2.0]), requires_grad=True)
    assert tr.gradcheck(lambda a, b: a * b, [x, x])            # d(x*x)/dx = 2x, one variable
    assert tr.gradcheck(lambda a, b, c: a * b - c.exp(), [x, x, x])
    c = Tensor(np.array([1.0, 2.0, 3.0]))
    assert tr.gradcheck(lambda a, k, b: a * k * b, [x, c, x])
    with pytest.raises(tr.GradcheckError, match=r"input 0 \(shape \(3,\), dtype float64, also passed as input 1\)"):
        tr.gradcheck(lambda a, b: WrongSquare.apply(a) + b, [x, x])
    # second derivatives too: the repeated tensor stays one object on the numerical side
    assert tr.gradgradcheck(lambda a, b: (a * b).tanh(), [x, x])
    assert tr.gradgradcheck(lambda a, k, b: (a * k * b).tanh(), [x, c, x])


class WrongAtOneElement(tr.Function):
    """y = a * b; b's Jacobian is off by 1 at element (1, 2) only."""
    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a * b

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        bump = np.zeros(b.shape)
        bump[1, 2] = 1.0
        return g * b, g * a + g * bump


def test_names_the_right_input_and_element():
    rng = np.random.default_rng(1)
    a = Tensor(rng.standard_normal((2, 4)), requires_grad=True)
    b = Tensor(rng.standard_normal((2, 4)), requires_grad=True)
    with pytest.raises(tr.GradcheckError) as info:
        tr.gradcheck(WrongAtOneElement.apply, [a, b])
    err = info.value
    assert err.input_index == 1 and tuple(err.element) == (1, 2)
    assert re.search(r"for input 1 \(shape \(2, 4\), dtype float64\) at element \(1, 2\): analytic .*, numerical ",
                     str(err))
    v = np.random.default_rng(0).standard_normal((2, 4))  # the cotangent: the error is v[1, 2] * 1
    np.testing.assert_allclose(err.analytic - err.numerical, v[1, 2], rtol=1e-6)
    # a constant in that position is not checked at all
    assert tr.gradcheck(WrongAtOneElement.apply, [a, Tensor(b.data)])


def test_input_index_counts_constant_inputs():
    a = Tensor(np.ones((2, 4)))  # input 0 is a constant, the wrong gradient belongs to input 1
    b = Tensor(np.full((2, 4), 0.5), requires_grad=True)
    with pytest.raises(tr.GradcheckError, match=r"for input 1 .* at element \(1, 2\)"):
        tr.gradcheck(WrongAtOneElement.apply, [a, b])


class SlightlyOff(tr.Function):
    """y = 3 x with a backward that is off by a relative `err` (class attribute)."""
    err = 0.0

    @staticmethod
    def forward(ctx, x):
        return 3 * x

    @staticmethod
    def backward(ctx, g):
        return g * (3 * (1 + SlightlyOff.err))


@pytest.mark.parametrize("err,float64_ok,float32_ok", [(0.0, True, True), (1e-3, False, True),
                                                       (-1e-3, False, True), (2e-2, False, False),
                                                       (-2e-2, False, False)])
def test_float32_is_checked_with_the_looser_tolerance(err, float64_ok, float32_ok):
    SlightlyOff.err = err
    try:
        x = np.array([1.0, -2.0, 0.5, 4.0])
        for dtype, ok in ((np.float64, float64_ok), (np.float32, float32_ok)):
            t = Tensor(x.astype(dtype), requires_grad=True)
            if ok:
                assert tr.gradcheck(SlightlyOff.apply, [t])
            else:
                with pytest.raises(tr.GradcheckError) as info:
                    tr.gradcheck(SlightlyOff.apply, [t])
                stated = "(atol=1e-06, rtol=0.0001)" if dtype == np.float64 else "(atol=0.0001, rtol=0.005)"
                assert stated in str(info.value) and f"dtype {np.dtype(dtype)}" in str(info.value)
    finally:
        SlightlyOff.err = 0.0


def test_float32_ops_pass_with_default_tolerance():
    rng = np.random.default_rng(2)
    x = Tensor(rng.standard_normal((3, 4)).astype(np.float32), requires_grad=True)
    w = Tensor(rng.standard_normal((4, 5)).astype(np.float32), requires_grad=True)
    assert tr.gradcheck(lambda x, w: F.cross_entropy((x @ w).tanh(), np.array([0, 4, 2])), [x, w])
    assert tr.gradcheck(lambda x: x.softmax(-1) * x.sigmoid(), [x])


def test_tolerance_overrides():
    SlightlyOff.err = 1e-3
    try:
        x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
        assert tr.gradcheck(SlightlyOff.apply, [x], rtol=1e-2)
        assert tr.gradcheck(SlightlyOff.apply, [x], atol=0.1)
        with pytest.raises(tr.GradcheckError, match=r"\(atol=0.0, rtol=1e-06\)"):
            tr.gradcheck(SlightlyOff.apply, [x], atol=0.0, rtol=1e-6)
    finally:
        SlightlyOff.err = 0.0


class ConstantGradient(tr.Function):
    """y = x^2 whose backward is right to first order but built from a constant copy of x,
    so the second derivative is lost: only gradgradcheck sees it."""
    @staticmethod
    def forward(ctx, x):
        ctx.x = x.copy()
        return x * x

    @staticmethod
    def backward(ctx, g):
        return g * Tensor(2 * ctx.x)


def test_gradgradcheck_catches_a_non_differentiable_backward():
    x = Tensor(np.array([0.5, -1.0, 2.0]), requires_grad=True)
    assert tr.gradcheck(ConstantGradient.apply, [x])
    with pytest.raises(tr.GradcheckError) as info:
        tr.gradgradcheck(ConstantGradient.apply, [x])
    msg = str(info.value)
    assert msg.startswith("gradgradcheck failed: second derivatives disagree, for input 0 (shape (3,)")
    assert info.value.analytic == 0.0
    assert "hint: the analytic second derivative is exactly 0 there" in msg and ".numpy(), .data" in msg


class WrongSecondDerivative(tr.Function):
    """y = x^3 whose backward adds 5 g (x - x_detached): zero in value (first order right) but
    with derivative 5 g, so the second derivative is off by 5 v: only gradgradcheck sees it."""
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x ** 3

    @staticmethod
    def backward(ctx, g):
        x, = ctx.saved_tensors
        return g * 3 * x * x + g * (x - Tensor(x.data)) * 5


def test_gradgradcheck_names_itself_without_the_zero_hint_when_the_value_is_wrong():
    x = Tensor(np.array([0.5, -1.0, 2.0]), requires_grad=True)
    assert tr.gradcheck(WrongSecondDerivative.apply, [x])
    with pytest.raises(tr.GradcheckError) as info:
        tr.gradgradcheck(WrongSecondDerivative.apply, [x])
    assert str(info.value).startswith("gradgradcheck failed")
    assert "hint:" not in str(info.value)


def test_gradcheck_frames_are_hidden_from_pytest_tracebacks():
    x = Tensor(np.array([0.5, -1.0]), requires_grad=True)
    with pytest.raises(tr.GradcheckError) as info:
        tr.gradgradcheck(ConstantGradient.apply, [x])
    frames = [e for e in info.traceback if "gradcheck.py" in str(e.path) and "tinygrad_rep" in str(e.path)]
    assert frames and all(e.ishidden(info) for e in frames)


def test_argument_errors():
    x = Tensor(np.array([1.0]), requires_grad=True)
    with pytest.raises(TypeError, match="gradcheck: input 1 is a ndarray, expected a Tensor"):
        tr.gradcheck(lambda a, b: a, [x, np.ones(1)])
    with pytest.raises(ValueError, match="gradcheck: no input requires grad; nothing to check"):
        tr.gradcheck(lambda a: a * 2, [Tensor([1.0])])
    with pytest.raises(TypeError, match="gradcheck: fn must return a Tensor, got ndarray"):
        tr.gradcheck(lambda a: a.data * 2, [x])


def test_a_float32_cast_inside_fn_is_pointed_out():
    x = Tensor(np.linspace(-1, 1, 4), requires_grad=True)
    with pytest.raises(tr.GradcheckError, match="note: fn returned float32 on the float64 copies"):
        tr.gradcheck(lambda t: t.astype(np.float32).exp(), [x])
    assert tr.gradcheck(lambda t: t.astype(np.float32).exp(), [x], eps=1e-3, atol=1e-3, rtol=1e-3)
