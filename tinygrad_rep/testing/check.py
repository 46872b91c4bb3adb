"""`check_op`: test an op (the library's or your own) in one line: forward against a reference,
gradients by gradcheck, second derivatives by gradgradcheck, on one or every backend.

    import numpy as np
    import tinygrad_rep as tr
    from tinygrad_rep.testing import check_op, strategies as trst

    def test_tanh():                                    # a plain call with arrays
        check_op(lambda t: t.tanh(), np.random.default_rng(0).standard_normal((3, 4)),
                 reference=np.tanh, gradgrad=True, backends="all")

    def test_tanh_drawn():                              # strategies: check_op draws the inputs
        check_op(lambda t: t.tanh(), trst.float_arrays(trst.shapes()), reference=np.tanh)

Inside a hypothesis `@given` test it works the same: arrays are checked as given, strategies are
drawn from the running test (the drawn values show up in hypothesis' failure report).
"""
import hashlib
import os

import numpy as np

from .. import backend as _backend
from ..gradcheck import GradcheckError, gradcheck, gradgradcheck
from ..tensor import Tensor

__tracebackhide__ = True  # pytest: failures point at the user's test line

ALL_BACKENDS = ("numpy", "pybind11", "cffi")
FAST_ABOVE = 2048  # fast=None: the random-projection check above this many checked elements


def _is_strategy(a):
    try:
        from hypothesis.strategies import SearchStrategy
    except ImportError:  # no hypothesis: nothing can be a strategy
        return False
    return isinstance(a, SearchStrategy)


def _backends(backends):
    if backends is None:
        return [None]
    if isinstance(backends, str):
        return list(ALL_BACKENDS) if backends == "all" else [backends]
    return list(backends)


def _to_tensors(args, dtype, nondiff, grad):
    out = []
    for i, a in enumerate(args):
        if isinstance(a, np.ndarray) and a.dtype.kind == "f":
            out.append(Tensor(a.astype(dtype), requires_grad=grad and i not in nondiff))
        elif isinstance(a, np.ndarray):
            out.append(Tensor(a))
        else:
            out.append(a)
    return out


def _reference_args(args):
    ref = []
    for a in args:
        if isinstance(a, Tensor):
            a = np.array(a.data)
        if isinstance(a, np.ndarray) and a.dtype.kind == "f":
            a = a.astype(np.float64)
        ref.append(a)
    return ref


def _prefixed(e, prefix):
    err = GradcheckError(prefix + str(e), input_index=e.input_index, element=e.element,
                         analytic=e.analytic, numerical=e.numerical, tolerance=e.tolerance,
                         method=e.method, compared=e.compared, v=e.v, left=e.left, right=e.right)
    err.analytic_array = e.analytic_array
    return err


def check_op(fn, *args, reference=None, grad=True, gradgrad=False, backends=None, dtype=np.float64,
             nondiff=(), rtol=None, atol=None, eps=None, grad_rtol=None, grad_atol=None, kinks=True,
             fast=None, expect_dtype=True, seed=0, max_examples=None):
    """Check an op in one line; return its output Tensor (from the last backend), or raise
    AssertionError / tr.GradcheckError saying what differs, on which backend.

    fn: called with one argument per entry of `args`: float ndarrays become Tensors of `dtype`
      (float64 by default) that require grad (except positions in `nondiff`), integer/bool
      ndarrays constant Tensors (indices, targets); Tensors and anything else (scalars, axes) are
      passed unchanged. An argument may also be a hypothesis strategy: it is drawn (inside a
      running @given test from that test; otherwise check_op runs its own hypothesis loop of
      `max_examples` examples, default the active profile's).
    reference: optional callable given the same arguments as float64 ndarrays (Tensors unwrapped);
      the output must match it in shape, dtype (`dtype`, unless expect_dtype=False) and values
      (assert_allclose with rtol/atol: 1e-7/1e-9 for float64, 2e-5/1e-6 for float32). Without
      one, several backends must agree with the first.
    grad: check every input that requires grad with tr.gradcheck (eps, grad_atol, grad_rtol,
      kinks as there; fast=None uses the random-projection check above 2048 checked elements,
      True/False forces it). gradgrad: also tr.gradgradcheck.
    backends: None (the current backend), "all" (numpy, pybind11, cffi), a name, or a list; the
      backend in use before the call is restored afterwards, also on failure.
    """
    __tracebackhide__ = True
    options = dict(reference=reference, grad=grad, gradgrad=gradgrad, backends=backends, dtype=dtype,
                   nondiff=nondiff, rtol=rtol, atol=atol, eps=eps, grad_rtol=grad_rtol,
                   grad_atol=grad_atol, kinks=kinks, fast=fast, expect_dtype=expect_dtype, seed=seed)
    if any(_is_strategy(a) for a in args):
        return _check_drawn(fn, args, options, max_examples)
    return _check(fn, args, **options)


def _check_drawn(fn, args, options, max_examples):
    __tracebackhide__ = True
    from hypothesis import HealthCheck, given, settings, strategies as st
    from hypothesis.control import currently_in_test_context

    if currently_in_test_context():
        from hypothesis import note
        from hypothesis.control import current_build_context
        data = current_build_context().data
        drawn = []
        for k, a in enumerate(args):
            if _is_strategy(a):
                a = data.draw(a)
                note(f"check_op argument {k}: {a!r}")  # shown in hypothesis' failure report
            drawn.append(a)
        return _check(fn, drawn, **options)
    result = []

    @settings(max_examples=max_examples or settings.default.max_examples, deadline=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(st.tuples(*[a if _is_strategy(a) else st.just(a) for a in args]))
    def run(drawn):
        __tracebackhide__ = True
        result[:] = [_check(fn, list(drawn), **options)]

    # one example-database entry per calling test, function and strategies (they all share the
    # inner function `run`, whose source would otherwise be the key)
    key = (os.environ.get("PYTEST_CURRENT_TEST", "").rsplit(" (", 1)[0],
           getattr(fn, "__module__", None), getattr(fn, "__qualname__", repr(fn)), repr(args))
    run._hypothesis_internal_database_key = hashlib.sha256(repr(key).encode()).digest()
    run()
    return result[0] if result else None


def _check(fn, args, reference, grad, gradgrad, backends, dtype, nondiff, rtol, atol, eps,
           grad_rtol, grad_atol, kinks, fast, expect_dtype, seed):
    __tracebackhide__ = True
    dtype = np.dtype(dtype)
    if rtol is None:
        rtol = 1e-7 if dtype == np.float64 else 2e-5
    if atol is None:
        atol = 1e-9 if dtype == np.float64 else 1e-6
    expected = None
    if reference is not None:
        expected = np.asarray(reference(*_reference_args(args)))
    floats = any(isinstance(a, np.ndarray) and a.dtype.kind == "f" for a in args)
    previous = _backend.get_backend()
    out = first = None
    try:
        for name in _backends(backends):
            if name is not None:
                _backend.set_backend(name)
            where = f"check_op (backend {_backend.get_backend()}): "
            tensors = _to_tensors(args, dtype, nondiff, grad)
            out = fn(*tensors)
            if not isinstance(out, Tensor):
                raise AssertionError(f"{where}fn must return a Tensor, got {type(out).__name__}")
            if expected is None and first is not None:
                # no reference: the backends must agree with the first one
                try:
                    np.testing.assert_allclose(np.asarray(out.data, dtype=np.float64), first[1],
                                               rtol=rtol, atol=atol, equal_nan=True)
                except AssertionError as e:
                    raise AssertionError(f"{where}forward differs from backend {first[0]}'s{e}") from None
            if first is None:
                first = (_backend.get_backend(), np.array(out.data, dtype=np.float64))
            if expected is not None:
                if out.shape != expected.shape:
                    raise AssertionError(f"{where}output shape {out.shape} != reference shape {expected.shape}")
                if expect_dtype and floats and out.dtype != dtype:
                    raise AssertionError(f"{where}output dtype {out.dtype} != {dtype} (the inputs' dtype)")
                try:
                    np.testing.assert_allclose(np.asarray(out.data, dtype=np.float64), expected,
                                               rtol=rtol, atol=atol, equal_nan=True)
                except AssertionError as e:
                    raise AssertionError(f"{where}forward differs from the reference{e}") from None
            checked = [t for t in tensors if isinstance(t, Tensor) and t.requires_grad]
            if not checked:
                continue
            if not out.requires_grad:
                raise AssertionError(f"{where}the output does not require grad although input(s) do: "
                                     f"fn cut the graph (computed on .data / .numpy()?)")
            n = sum(t.size for t in {id(t): t for t in checked}.values())
            use_fast = n > FAST_ABOVE if fast is None else bool(fast)
            positions = [k for k, t in enumerate(tensors) if isinstance(t, Tensor)]
            if len(positions) == len(tensors):
                gfn, gargs = fn, tensors
            else:  # gradcheck takes Tensors only: put the other arguments back around them
                where += (f"input numbers count the Tensor arguments only (argument positions "
                          f"{positions}): ")

                def gfn(*ts, _fn=fn, _args=tensors, _pos=positions):
                    full = list(_args)
                    for k, t in zip(_pos, ts):
                        full[k] = t
                    return _fn(*full)
                gargs = [tensors[k] for k in positions]
            try:
                gradcheck(gfn, gargs, eps=eps, atol=grad_atol, rtol=grad_rtol, seed=seed,
                          kinks=kinks, fast=use_fast)
                if gradgrad:
                    gradgradcheck(gfn, gargs, eps=eps, atol=grad_atol, rtol=grad_rtol, seed=seed,
                                  kinks=kinks)
            except GradcheckError as e:
                raise _prefixed(e, where) from None
    finally:
        _backend.set_backend(previous)
    return out
