"""The fused Adam / AdamW kernel (csrc/optim.c, `adam_step` in every backend).

The C kernels must equal numpy_ref.adam_step bit for bit (same IEEE operations in the same
order, at the array's precision), numpy_ref.adam_step must equal the multi-pass numpy update
the optimizer used before the kernel existed, every backend must reject the same bad input with
the same error, and the optimizers built on it must still match PyTorch (tests/test_optim.py).
"""
import math

import numpy as np
import pytest

from tinygrad_rep import backend, optim
from tinygrad_rep.backend import numpy_ref as ref
from tinygrad_rep.backend import cffi as cffi_backend
from tinygrad_rep.backend import pybind as pybind_backend
from tinygrad_rep.tensor import Tensor

ALL = {"numpy": ref, "pybind11": pybind_backend, "cffi": cffi_backend}
C_BACKENDS = {"pybind11": pybind_backend, "cffi": cffi_backend}
# sizes around the 16- and 8-lane vector widths, and past the kernel's threading threshold
SIZES = [0, 1, 7, 8, 15, 16, 17, 33, 1000, (1 << 16) + 3]
CASES = [dict(weight_decay=0.0, decoupled=False), dict(weight_decay=0.1, decoupled=False),
         dict(weight_decay=0.05, decoupled=True), dict(weight_decay=0.0, decoupled=True)]


def old_adam_update(p, g, m, v, t, lr, b1, b2, eps, wd, decoupled):
    """The optimizer's update before the fused kernel (optim.Adam._update, verbatim math)."""
    work = np.empty_like(p)
    if wd != 0:
        if decoupled:
            p *= 1.0 - lr * wd
        else:
            np.multiply(p, wd, out=work)
            np.add(g, work, out=work)
            g = work
    m *= b1
    if g is work:
        m += (1.0 - b1) * g
    else:
        np.multiply(g, 1.0 - b1, out=work)
        m += work
    v *= b2
    np.multiply(g, g, out=work)
    work *= 1.0 - b2
    v += work
    step_size = lr / (1.0 - b1 ** t)
    np.sqrt(v, out=work)
    work /= math.sqrt(1.0 - b2 ** t)
    work += eps
    np.divide(m, work, out=work)
    work *= step_size
    p -= work


def arrays(n, dtype, seed=0):
    rng = np.random.default_rng(seed)
    p = rng.standard_normal(n).astype(dtype)
    g = rng.standard_normal(n).astype(dtype)
    m = (0.1 * rng.standard_normal(n)).astype(dtype)
    v = rng.random(n).astype(dtype) * dtype(0.01)
    return p, g, m, v


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("case", CASES)
def test_every_backend_matches_the_old_update_bit_for_bit(dtype, n, case):
    p0, g, m0, v0 = arrays(n, dtype, seed=n)
    want = [a.copy() for a in (p0, m0, v0)]
    for t in (1, 2, 7):
        old_adam_update(*want[:1], g, *want[1:], t, 3e-3, 0.9, 0.999, 1e-8, case["weight_decay"], case["decoupled"])
    for name, be in ALL.items():
        p, m, v = p0.copy(), m0.copy(), v0.copy()
        for t in (1, 2, 7):
            assert be.adam_step(p, g, m, v, t, 3e-3, 0.9, 0.999, 1e-8, **case) is p
        for got, w, what in zip((p, m, v), want, ("param", "exp_avg", "exp_avg_sq")):
            assert got.dtype == dtype
            np.testing.assert_array_equal(got, w, err_msg=f"{name} {what}")


def test_thread_count_does_not_change_results():
    n = (1 << 18) + 5
    p0, g, m0, v0 = arrays(n, np.float32, seed=3)
    for be in C_BACKENDS.values():
        saved = be.get_num_threads()
        results = []
        try:
            for threads in (1, 2):
                be.set_num_threads(threads)
                p, m, v = p0.copy(), m0.copy(), v0.copy()
                be.adam_step(p, g, m, v, 4, 1e-2, 0.8, 0.99, 1e-6, weight_decay=0.01)
                results.append((p, m, v))
        finally:
            be.set_num_threads(saved)
        for a, b in zip(*results):
            np.testing.assert_array_equal(a, b)


def test_nan_and_inf_propagate_like_the_reference():
    p0 = np.array([1.0, 2.0, 3.0, 4.0, 5.0], np.float32)
    g = np.array([np.nan, np.inf, -np.inf, 0.0, 1e30], np.float32)
    m0 = np.zeros(5, np.float32)
    v0 = np.array([0.0, 0.0, 0.0, -1.0, 0.0], np.float32)  # a negative v gives NaN, as numpy's sqrt
    want = None
    for be in ALL.values():
        p, m, v = p0.copy(), m0.copy(), v0.copy()
        with np.errstate(all="ignore"):
            be.adam_step(p, g, m, v, 1, 1e-3)
        if want is None:
            want = (p, m, v)
        for a, b in zip((p, m, v), want):
            np.testing.assert_array_equal(a, b)  # NaN positions equal too


def test_grad_views_and_overlaps():
    p0, g, m0, v0 = arrays(64, np.float64, seed=5)
    wide = np.zeros(128)
    wide[::2] = g  # a non-contiguous grad is copied, not misread
    for be in ALL.values():
        p, m, v = p0.copy(), m0.copy(), v0.copy()
        be.adam_step(p, wide[::2], m, v, 1, 1e-3)
        q, mm, vv = p0.copy(), m0.copy(), v0.copy()
        ref.adam_step(q, g, mm, vv, 1, 1e-3)
        np.testing.assert_array_equal(p, q)
        # grad given as the parameter itself: read as it was before the update
        p, m, v = p0.copy(), m0.copy(), v0.copy()
        be.adam_step(p, p, m, v, 1, 1e-3)
        q, mm, vv = p0.copy(), m0.copy(), v0.copy()
        ref.adam_step(q, p0.copy(), mm, vv, 1, 1e-3)
        np.testing.assert_array_equal(p, q)


def _errors(call):
    """(exception class, message) that call(be) raises, per backend."""
    out = {}
    for name, be in ALL.items():
        with pytest.raises((TypeError, ValueError)) as info:
            call(be)
        out[name] = (type(info.value), str(info.value))
    return out


@pytest.mark.parametrize("bad", [
    "param_list", "param_int", "param_readonly", "param_noncontig", "m_shape", "v_dtype",
    "grad_shape", "grad_dtype", "overlap", "step0", "step_float",
])
def test_bad_input_is_rejected_the_same_way_everywhere(bad):
    p, g, m, v = arrays(6, np.float32)

    def call(be):
        pp, gg, mm, vv, t = p.copy(), g.copy(), m.copy(), v.copy(), 1
        if bad == "param_list":
            pp = [1.0] * 6
        elif bad == "param_int":
            pp = np.arange(6)
        elif bad == "param_readonly":
            pp.setflags(write=False)
        elif bad == "param_noncontig":
            pp = np.zeros(12, np.float32)[::2]
        elif bad == "m_shape":
            mm = np.zeros(5, np.float32)
        elif bad == "v_dtype":
            vv = np.zeros(6, np.float64)
        elif bad == "grad_shape":
            gg = np.zeros(7, np.float32)
        elif bad == "grad_dtype":
            gg = np.zeros(6, np.float64)
        elif bad == "overlap":
            mm = pp
        elif bad == "step0":
            t = 0
        elif bad == "step_float":
            t = 1.5
        be.adam_step(pp, gg, mm, vv, t, 1e-3)
    errors = _errors(call)
    assert len(set(errors.values())) == 1, errors
    assert "adam_step" in next(iter(errors.values()))[1]


def test_raw_bindings_check_sizes_and_overlap():
    from tinygrad_rep import _C
    p, g, m, v = arrays(8, np.float32)
    args = (0.9, 0.999, 1e-8, 0.0, 0, 1e-3, 1e-2, 0.1)
    with pytest.raises(ValueError, match="elements"):
        _C.adam_step_f32(9, p, g, m, v, *args)
    with pytest.raises(ValueError, match="overlap"):
        _C.adam_step_f32(8, p, g, p, v, *args)
    with pytest.raises(TypeError):
        _C.adam_step_f32(8, p.astype(np.float64), g, m, v, *args)


def test_optimizers_use_the_backend_kernel_and_agree_across_backends():
    """Adam and AdamW on float32 parameters give bit-identical trajectories on every backend
    (each runs its own adam_step), including a parameter that is a non-contiguous view."""
    results = {}
    saved = backend.get_backend()
    try:
        for name in ALL:
            backend.set_backend(name)
            for cls, kw in ((optim.Adam, dict(lr=1e-2, weight_decay=0.1)), (optim.AdamW, dict(lr=1e-2))):
                rng = np.random.default_rng(0)
                a = Tensor(rng.standard_normal((5, 3)).astype(np.float32), requires_grad=True)
                b = Tensor(rng.standard_normal(4).astype(np.float32), requires_grad=True)
                b.data = np.zeros(8, np.float32)[::2]  # a view: updated through a dense copy
                b.data[...] = rng.standard_normal(4)
                opt = cls([a, b], **kw)
                for step in range(5):
                    a.grad = Tensor(np.full((5, 3), 0.1 * step - 0.2, np.float32))
                    b.grad = Tensor(np.linspace(-1, 1, 4).astype(np.float32) * step)
                    opt.step()
                results[(name, cls.__name__)] = (a.data.copy(), b.data.copy())
    finally:
        backend.set_backend(saved)
    for cls in ("Adam", "AdamW"):
        base = results[("numpy", cls)]
        for name in C_BACKENDS:
            for x, y in zip(results[(name, cls)], base):
                np.testing.assert_array_equal(x, y)
