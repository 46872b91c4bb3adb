"""Every C kernel, through both bindings (pybind11 and cffi), against the numpy reference.

Covers odd sizes, both transpose flags, accumulate, non-contiguous and 0-size inputs, extreme and
-inf logits, error classes and messages on bad input, the kernel sets both extensions expose
against the header, thread-count independence (bitwise), and the float32 exp's accuracy.
Tolerances: float32 compares at ~1e-5 relative to the result's magnitude (matmul: an error
bound that grows with K), float64 at ~1e-12.
"""
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinygrad_rep.backend import numpy_ref as ref

ROOT = Path(__file__).resolve().parents[1]
HEADER = ROOT / "csrc" / "tinygrad_rep.h"

# A missing extension must fail these tests (ImportError), never skip them quietly.
from tinygrad_rep.backend import cffi as cffi_backend  # noqa: E402
from tinygrad_rep.backend import pybind as pybind_backend  # noqa: E402

BACKENDS = {"pybind11": pybind_backend, "cffi": cffi_backend}

# The extension files this process loaded. Every child process below must load the very same
# files: under scripts/sanitize.sh they are the sanitized builds inside the sanitize venv, and a
# child that imported the source tree's (unbuilt or unsanitized) modules would test nothing.
import json  # noqa: E402

import tinygrad_rep  # noqa: E402
from tinygrad_rep import _C as _C_module  # noqa: E402
from tinygrad_rep import _C_cffi as _C_cffi_module  # noqa: E402

LOADED = {"tinygrad_rep": tinygrad_rep.__file__, "tinygrad_rep._C": _C_module.__file__,
          "tinygrad_rep._C_cffi": _C_cffi_module.__file__}
_prefix = os.environ.get("TINYGRAD_REP_SANITIZED_PREFIX")  # set by scripts/sanitize.sh
if _prefix:
    for _name, _file in LOADED.items():
        assert os.path.realpath(_file).startswith(os.path.realpath(_prefix) + os.sep), (
            f"{_name} was loaded from {_file}, not from the sanitized install under {_prefix}")
_expected = os.environ.get("TINYGRAD_REP_EXPECT_LOADED")  # set by run_child for a child pytest
if _expected:
    assert json.loads(_expected) == LOADED, f"child loaded {LOADED}, parent {_expected}"

# Appended to every `python -c` child: the modules it imported are the parent's files.
CHILD_CHECK = ("\nimport json as _j, os as _o, sys as _s\n"
               "for _n, _f in _j.loads(_o.environ['TINYGRAD_REP_EXPECT_LOADED']).items():\n"
               "    _m = _s.modules.get(_n)\n"
               "    assert _n != 'tinygrad_rep' or _m is not None, 'tinygrad_rep not imported'\n"
               "    assert _m is None or _m.__file__ == _f, (_n, _m.__file__, _f)\n")


def run_child(args, env=None, **kw):
    """subprocess.run([python, *args]) from a folder outside the source tree, told which module
    files the parent loaded (the child asserts it loaded the same)."""
    env = dict(os.environ if env is None else env, TINYGRAD_REP_EXPECT_LOADED=json.dumps(LOADED))
    if args and args[-2:-1] == ["-c"]:
        args = args[:-1] + [args[-1] + CHILD_CHECK]
    kw.setdefault("cwd", os.path.dirname(os.path.dirname(LOADED["tinygrad_rep"])))
    return subprocess.run([sys.executable, *args], env=env, capture_output=True, text=True, **kw)
SIZES = [1, 7, 33, 65, 129]
DTYPES = [np.float32, np.float64]
FEW = settings(max_examples=15, deadline=None)


@pytest.fixture(params=sorted(BACKENDS))
def be(request):
    return BACKENDS[request.param]


def rng_for(seed):
    return np.random.default_rng(seed)


def rel_tol(dtype):
    return 1e-5 if np.dtype(dtype) == np.float32 else 1e-12


def assert_close(got, want, dtype, scale=None):
    """Same shape and dtype, NaN/inf where the reference has them, finite values within
    rel_tol(dtype) of the reference relative to the magnitude of the result."""
    assert got.shape == want.shape and got.dtype == want.dtype, (got.shape, got.dtype, want.shape, want.dtype)
    finite = want[np.isfinite(want)]
    if scale is None:
        scale = float(np.abs(finite).max()) if finite.size else 1.0
    tol = rel_tol(dtype)
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol * max(scale, 1e-30), equal_nan=True)


def noncontiguous(x):
    """A view with x's values that is not C-contiguous (every other element of a bigger array)."""
    big = np.empty(x.shape[:-1] + (2 * x.shape[-1],) if x.ndim else (), dtype=x.dtype)
    view = big[..., ::2]
    view[...] = x
    assert x.size <= 1 or not view.flags.c_contiguous
    return view


# ---------------------------------------------------------------- matmul

@FEW
@given(M=st.sampled_from(SIZES + [0]), N=st.sampled_from(SIZES + [0]), K=st.sampled_from(SIZES + [0]),
       batch=st.sampled_from([None, 1, 3]), trans_a=st.booleans(), trans_b=st.booleans(),
       accumulate=st.booleans(), strided=st.booleans(), dtype=st.sampled_from(DTYPES),
       seed=st.integers(0, 2**31))
def test_matmul_matches_reference(M, N, K, batch, trans_a, trans_b, accumulate, strided, dtype, seed):
    rng = rng_for(seed)
    lead = () if batch is None else (batch,)
    a = rng.standard_normal(lead + ((K, M) if trans_a else (M, K))).astype(dtype)
    b = rng.standard_normal(lead + ((N, K) if trans_b else (K, N))).astype(dtype)
    if strided:
        a, b = noncontiguous(a), noncontiguous(b)
    start = rng.standard_normal(lead + (M, N)).astype(dtype)
    want = ref.matmul(a, b, out=start.copy() if accumulate else None, trans_a=trans_a, trans_b=trans_b,
                      accumulate=accumulate)
    # each float32 dot product of length K carries up to ~K rounding errors of |a||b|
    opa = np.swapaxes(a, -1, -2) if trans_a else a
    opb = np.swapaxes(b, -1, -2) if trans_b else b
    bound = (np.abs(opa.astype(np.float64)) @ np.abs(opb.astype(np.float64))
             + (np.abs(start) if accumulate else 0))
    eps = np.finfo(dtype).eps
    for be in BACKENDS.values():
        out = start.copy() if accumulate else None
        got = be.matmul(a, b, out=out, trans_a=trans_a, trans_b=trans_b, accumulate=accumulate)
        if accumulate:
            assert got is out
        assert got.shape == want.shape and got.dtype == want.dtype
        assert np.all(np.abs(got - want) <= 2 * (K + 2) * eps * bound + 1e-30), be.NAME


@pytest.mark.parametrize("dtype", DTYPES)
def test_matmul_zero_inner_dimension_gives_zeros_or_keeps_out(be, dtype):
    a, b = np.ones((3, 0), dtype), np.ones((0, 4), dtype)
    assert np.array_equal(be.matmul(a, b), np.zeros((3, 4), dtype))
    out = np.full((3, 4), 7, dtype)
    assert be.matmul(a, b, out=out, accumulate=True) is out
    assert np.all(out == 7)


def test_matmul_out_aliasing_an_input_is_safe(be):
    a = rng_for(1).standard_normal((5, 5))
    want = a @ a
    got = be.matmul(a, a, out=a)
    np.testing.assert_allclose(got, want, rtol=1e-12)


# ---------------------------------------------------------------- ReLU

@FEW
@given(n=st.sampled_from(SIZES + [0, 1000]), dtype=st.sampled_from(DTYPES), strided=st.booleans(),
       seed=st.integers(0, 2**31))
def test_relu_matches_reference_exactly(n, dtype, strided, seed):
    rng = rng_for(seed)
    x = rng.standard_normal(n).astype(dtype)
    x[rng.random(n) < 0.1] = 0.0
    x[rng.random(n) < 0.05] = -0.0
    x[rng.random(n) < 0.05] = np.nan
    g = rng.standard_normal(n).astype(dtype)
    if strided:
        x, g = noncontiguous(x), noncontiguous(g)
    for be in BACKENDS.values():
        y = be.relu_forward(x)
        want = ref.relu_forward(x)
        assert y.dtype == dtype
        # bitwise where not NaN (+0, never -0, for x <= 0), NaN where x is NaN
        nan = np.isnan(want)
        assert np.array_equal(np.isnan(y), nan)
        assert np.array_equal(y[~nan].tobytes(), want[~nan].tobytes())
        assert np.array_equal(be.relu_backward(x, g), ref.relu_backward(x, g), equal_nan=True)


def test_zero_dim_arrays_keep_their_shape(be):
    y = be.relu_forward(np.array(-2.0))
    assert y.shape == () and y == 0
    assert be.relu_backward(np.array(1.0), np.array(3.0)) == 3.0


def test_relu_in_place(be):
    x = np.array([-1.0, 2.0, np.nan, 0.0], np.float32)
    assert be.relu_forward(x, out=x) is x
    assert np.array_equal(x, [0.0, 2.0, np.nan, 0.0], equal_nan=True)


# ---------------------------------------------------------------- softmax family

ROW_SHAPES = st.one_of(
    st.tuples(st.sampled_from(SIZES + [0])),
    st.tuples(st.sampled_from(SIZES + [0]), st.sampled_from(SIZES + [0])),
    st.tuples(st.sampled_from([1, 2, 3]), st.sampled_from([1, 7, 33]), st.sampled_from(SIZES)),
)


@pytest.mark.filterwarnings("ignore:divide by zero:RuntimeWarning")  # the reference, on 0 columns
@FEW
@given(shape=ROW_SHAPES, dtype=st.sampled_from(DTYPES), strided=st.booleans(), scale=st.sampled_from([1.0, 30.0]),
       seed=st.integers(0, 2**31))
def test_softmax_family_matches_reference(shape, dtype, strided, scale, seed):
    rng = rng_for(seed)
    x = (rng.standard_normal(shape) * scale).astype(dtype)
    g = rng.standard_normal(shape).astype(dtype)
    if strided:
        x, g = noncontiguous(x), noncontiguous(g)
    y = ref.softmax_forward(x)
    ly = ref.log_softmax_forward(x)
    for be in BACKENDS.values():
        assert_close(be.softmax_forward(x), y, dtype)
        assert_close(be.log_softmax_forward(x), ly, dtype)
        assert_close(be.softmax_backward(y, g), ref.softmax_backward(y, g), dtype,
                     scale=float(np.abs(g).max(initial=1.0)))
        assert_close(be.log_softmax_backward(ly, g), ref.log_softmax_backward(ly, g), dtype,
                     scale=float(np.abs(g).sum(axis=-1).max(initial=1.0)))


@pytest.mark.parametrize("dtype", DTYPES)
def test_softmax_extreme_logits_are_finite_and_right(be, dtype):
    x = np.array([[1000.0, -1000.0, 0.0, 999.0],
                  [-np.inf, 0.0, -np.inf, 1.0],
                  [-1000.0, -1000.0, -1000.0, -1000.0],
                  [-np.inf, -np.inf, -np.inf, 5.0]], dtype)
    y = be.softmax_forward(x)
    ly = be.log_softmax_forward(x)
    assert np.all(np.isfinite(y))
    assert_close(y, ref.softmax_forward(x), dtype)
    # -inf inputs give exactly probability 0 and log-probability -inf; other entries finite
    assert y[1, 0] == 0 and y[1, 2] == 0 and ly[1, 0] == -np.inf and ly[1, 2] == -np.inf
    assert np.all(np.isfinite(ly[np.isfinite(x)]))
    assert_close(ly, ref.log_softmax_forward(x), dtype, scale=2000.0)
    np.testing.assert_allclose(y[3], [0, 0, 0, 1])
    np.testing.assert_allclose(y.sum(axis=-1), 1, rtol=rel_tol(dtype) * 10)


def test_softmax_all_minus_inf_row_is_nan_like_reference(be):
    x = np.array([[-np.inf, -np.inf], [0.0, 1.0]], np.float32)
    assert np.array_equal(np.isnan(be.softmax_forward(x)), np.isnan(ref.softmax_forward(x)))
    assert np.isnan(be.softmax_forward(x)[0]).all() and not np.isnan(be.softmax_forward(x)[1]).any()


@pytest.mark.parametrize("kernel", ["softmax_forward", "log_softmax_forward"])
def test_softmax_in_place(be, kernel):
    x = rng_for(3).standard_normal((4, 9))
    want = getattr(ref, kernel)(x)
    assert getattr(be, kernel)(x, out=x) is x
    np.testing.assert_allclose(x, want, rtol=1e-12, atol=1e-12)


def misaligned(x):
    """A writeable copy of x whose data starts one byte past an aligned address."""
    buf = np.zeros(x.nbytes + 1, np.uint8)
    view = np.frombuffer(buf.data, dtype=x.dtype, count=x.size, offset=1).reshape(x.shape)
    view[...] = x
    assert not view.flags.aligned
    return view


@pytest.mark.parametrize("dtype", DTYPES)
def test_misaligned_inputs_are_copied_and_misaligned_outputs_refused(be, dtype):
    rng = rng_for(9)
    x = rng.standard_normal((3, 37)).astype(dtype)
    assert_close(be.softmax_forward(misaligned(x)), ref.softmax_forward(x), dtype)
    w = rng.standard_normal((5, 37)).astype(dtype)
    idx = np.array([4, 0, 2])
    assert np.array_equal(be.embedding_gather(misaligned(w), misaligned(idx)), w[idx])
    with pytest.raises(ValueError, match="aligned"):
        be.relu_forward(x, out=misaligned(np.empty_like(x)))


def test_output_overlapping_the_input_is_safe(be):
    """out shares memory with x, shifted by one row: the adapter must copy x first."""
    big = rng_for(4).standard_normal((5, 4)).astype(np.float32)
    x, out = big[:4], big[1:]
    want = ref.log_softmax_forward(x.copy())
    assert be.log_softmax_forward(x, out=out) is out
    assert_close(out, want, np.float32)


def test_float32_exp_within_two_ulp(be):
    """log_softmax_backward with grad row [0, 1] and y row [t, 0] returns exactly -exp(t) in
    column 0, which exposes the kernel's own float32 exp to a float64 comparison."""
    rng = rng_for(7)
    t = np.concatenate([rng.uniform(-110, 90, 200_000), rng.uniform(-2, 2, 20_000),
                        [-np.inf, np.inf, 0.0, -0.0, -103.97, -87.4, 88.72, 88.7229]]).astype(np.float32)
    y = np.stack([t, np.zeros_like(t)], axis=1)
    g = np.tile(np.array([0.0, 1.0], np.float32), (t.size, 1))
    got = -be.log_softmax_backward(y, g)[:, 0]
    want = np.exp(t.astype(np.float64))
    with np.errstate(over="ignore"):
        want32 = want.astype(np.float32)
    assert np.array_equal(np.isinf(got), np.isinf(want32))
    fin = np.isfinite(want32)
    # ulp of the float32 result; below the normal range the spacing is 2**-149
    ulp = np.maximum(np.spacing(np.abs(want32[fin])).astype(np.float64), 2.0**-149)
    err = np.abs(got[fin].astype(np.float64) - want[fin]) / ulp
    assert err.max() <= 2.0, f"max error {err.max():.2f} ulp at t={t[fin][err.argmax()]!r}"
    assert np.isnan(-be.log_softmax_backward(np.array([[np.nan, 0]], np.float32),
                                             np.array([[0, 1]], np.float32))[0, 0])


# ---------------------------------------------------------------- cross-entropy

@FEW
@given(B=st.sampled_from(SIZES + [0]), C=st.sampled_from(SIZES), dtype=st.sampled_from(DTYPES),
       strided=st.booleans(), scale=st.sampled_from([1.0, 1000.0]), seed=st.integers(0, 2**31))
def test_cross_entropy_matches_reference(B, C, dtype, strided, scale, seed):
    rng = rng_for(seed)
    logits = (rng.standard_normal((B, C)) * scale).astype(dtype)
    targets = rng.integers(0, C, B)
    grad = rng.standard_normal(B).astype(dtype)
    if strided:
        logits, targets, grad = noncontiguous(logits), noncontiguous(targets), noncontiguous(grad)
    want_l, want_p, _ = ref.cross_entropy_forward(logits, targets)
    want_g = ref.cross_entropy_backward(want_p, targets, grad)
    for be in BACKENDS.values():
        losses, probs, loss = be.cross_entropy_forward(logits, targets)
        assert_close(probs, want_p, dtype, scale=1.0)
        assert_close(losses, want_l, dtype, scale=max(1.0, float(np.abs(logits).max(initial=0)) * 2))
        assert loss.shape == () and loss.dtype == dtype
        if B:  # the kernel's mean is ndarray.mean of its own losses, bit for bit
            assert loss.tobytes() == np.asarray(losses.mean(), dtype).tobytes()
        else:
            assert np.isnan(loss)
        assert_close(be.cross_entropy_backward(want_p, targets, grad), want_g, dtype,
                     scale=float(np.abs(grad).max(initial=1.0)))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("B", [1, 7, 8, 9, 15, 16, 17, 127, 128, 129, 136, 255, 256, 257, 1000, 4099])
def test_cross_entropy_mean_is_ndarray_mean_bit_for_bit(B, dtype):
    """The fused kernel's mean loss sums in numpy's pairwise order (runs of 8, blocks of 128 split
    in halves), so it is losses.mean() exactly; losses spread over many magnitudes make any other
    order round differently."""
    rng = rng_for(B)
    logits = (rng.standard_normal((B, 5)) * 10.0 ** rng.integers(-3, 4, (B, 1))).astype(dtype)
    targets = rng.integers(0, 5, B)
    for be in BACKENDS.values():
        losses, _, loss = be.cross_entropy_forward(logits, targets)
        assert loss.tobytes() == np.asarray(losses.mean(), dtype).tobytes(), (be.NAME, loss, losses.mean())


def test_cross_entropy_uses_given_buffers_and_int32_targets(be):
    logits = rng_for(5).standard_normal((6, 4)).astype(np.float32)
    t = np.array([0, 3, 1, 2, 3, 0], np.int32)
    losses, probs, loss = np.empty(6, np.float32), np.empty((6, 4), np.float32), np.empty((), np.float32)
    lo, pr, lm = be.cross_entropy_forward(logits, t, losses=losses, probs=probs, loss=loss)
    assert lo is losses and pr is probs and lm is loss
    assert loss == losses.mean()
    assert_close(losses, ref.cross_entropy_forward(logits, t)[0], np.float32)
    out = np.empty((6, 4), np.float32)
    assert be.cross_entropy_backward(probs, t, np.ones(6, np.float32), out=out) is out


# ---------------------------------------------------------------- embedding

@FEW
@given(V=st.sampled_from(SIZES), d=st.sampled_from(SIZES + [0]), n=st.sampled_from(SIZES + [0, 500]),
       dtype=st.sampled_from(DTYPES), strided=st.booleans(), seed=st.integers(0, 2**31))
def test_embedding_matches_reference_exactly(V, d, n, dtype, strided, seed):
    rng = rng_for(seed)
    weight = rng.standard_normal((V, d)).astype(dtype)
    idx = rng.integers(0, V, n)  # repeated indices are the point of scatter_add's ordering
    grad = rng.standard_normal((n, d)).astype(dtype)
    if strided:
        weight, idx, grad = noncontiguous(weight), noncontiguous(idx), noncontiguous(grad)
    want_rows = ref.embedding_gather(weight, idx)
    start = rng.standard_normal((V, d)).astype(dtype)
    want_acc = ref.embedding_scatter_add(grad, idx, start.copy())
    for be in BACKENDS.values():
        assert np.array_equal(be.embedding_gather(weight, idx), want_rows)
        acc = start.copy()
        assert be.embedding_scatter_add(grad, idx, acc) is acc
        # same additions in the same order as np.add.at: bitwise equal
        assert np.array_equal(acc, want_acc)


# ---------------------------------------------------------------- zero sizes

ZERO_CALLS = {
    "relu_forward": lambda be, z: be.relu_forward(z),
    "relu_backward": lambda be, z: be.relu_backward(z, z),
    "softmax_forward": lambda be, z: be.softmax_forward(z),
    "softmax_backward": lambda be, z: be.softmax_backward(z, z),
    "log_softmax_forward": lambda be, z: be.log_softmax_forward(z),
    "log_softmax_backward": lambda be, z: be.log_softmax_backward(z, z),
    "matmul": lambda be, z: be.matmul(z, z.T),
    "cross_entropy_forward": lambda be, z: be.cross_entropy_forward(z, np.zeros(0, np.int64))[1],
    "cross_entropy_backward": lambda be, z: be.cross_entropy_backward(z, np.zeros(0, np.int64), np.zeros(0, z.dtype)),
    "embedding_gather": lambda be, z: be.embedding_gather(z.T, np.zeros(0, np.int64)),
    "embedding_scatter_add": lambda be, z: be.embedding_scatter_add(np.zeros((0, 0), z.dtype), np.zeros(0, np.int64), z.T.copy()),
}


@pytest.mark.parametrize("kernel", sorted(ZERO_CALLS))
@pytest.mark.parametrize("dtype", DTYPES)
def test_zero_size_inputs_work(be, kernel, dtype):
    z = np.zeros((0, 3), dtype)
    got = ZERO_CALLS[kernel](be, z)
    want = ZERO_CALLS[kernel](ref, z)
    assert got.shape == want.shape and got.dtype == want.dtype
    assert np.array_equal(got, want)


def test_zero_size_rows_with_columns_and_columns_without_rows(be):
    assert be.softmax_forward(np.zeros((4, 0), np.float32)).shape == (4, 0)
    assert be.log_softmax_forward(np.zeros((0, 4), np.float64)).shape == (0, 4)
    assert be.embedding_gather(np.zeros((3, 0)), np.array([0, 2])).shape == (2, 0)


# ---------------------------------------------------------------- bad input

BAD_CALLS = [
    # (call, exception, message pattern)
    (lambda be: be.relu_forward(np.ones(3, np.float16)), TypeError, "float16"),
    (lambda be: be.relu_forward(np.ones(3, np.int32)), TypeError, "int32"),
    (lambda be: be.relu_forward(np.ones(3, bool)), TypeError, "bool"),
    (lambda be: be.relu_forward([1.0, 2.0]), TypeError, "numpy.ndarray"),
    (lambda be: be.relu_backward(np.ones(3), np.ones(4)), ValueError, r"shape \(3,\).*\(4,\)"),
    (lambda be: be.relu_backward(np.ones(3), np.ones(3, np.float32)), TypeError, "float32"),
    (lambda be: be.relu_forward(np.ones(3), out=np.ones(4)), ValueError, "shape"),
    (lambda be: be.relu_forward(np.ones(3), out=np.ones(3, np.float32)), TypeError, "float32"),
    (lambda be: be.relu_forward(np.ones(4), out=np.ones(8)[::2]), ValueError, "C-contiguous"),
    (lambda be: be.matmul(np.ones((2, 3)), np.ones((4, 5))), ValueError, "inner dimensions"),
    (lambda be: be.matmul(np.ones(3), np.ones(3)), ValueError, "2-D or both 3-D"),
    (lambda be: be.matmul(np.ones((2, 3)), np.ones((3, 2), np.float32)), TypeError, "float32"),
    (lambda be: be.matmul(np.ones((2, 2, 3)), np.ones((3, 3, 2))), ValueError, "batch"),
    (lambda be: be.matmul(np.ones((2, 3)), np.ones((3, 2)), accumulate=True), ValueError, "accumulate"),
    (lambda be: be.matmul(np.ones((2, 3)), np.ones((3, 2)), out=np.ones((2, 3))), ValueError, "shape"),
    (lambda be: be.softmax_forward(np.array(1.0)), ValueError, "0-d"),
    (lambda be: be.softmax_forward(np.ones(3, np.int64)), TypeError, "int64"),
    (lambda be: be.log_softmax_backward(np.ones((2, 3)), np.ones((3, 2))), ValueError, "shape"),
    (lambda be: be.cross_entropy_forward(np.ones(3), np.zeros(3, int)), ValueError, "2-D"),
    (lambda be: be.cross_entropy_forward(np.ones((2, 3)), np.array([0, 3])), IndexError, "index 3 is out of range"),
    (lambda be: be.cross_entropy_forward(np.ones((2, 3)), np.array([-1, 0])), IndexError, "index -1"),
    (lambda be: be.cross_entropy_forward(np.ones((2, 3)), np.array([0.0, 1.0])), TypeError, "float64 is not an integer"),
    (lambda be: be.cross_entropy_forward(np.ones((2, 3)), np.array([0, 1, 2])), ValueError, r"targets must have shape \(2,\)"),
    (lambda be: be.cross_entropy_backward(np.ones((2, 3)), np.array([0, 1]), np.ones(3)), ValueError, "grad must have shape"),
    (lambda be: be.embedding_gather(np.ones((4, 2)), np.array([4])), IndexError, "index 4 is out of range for size 4"),
    (lambda be: be.embedding_gather(np.ones((4, 2)), np.array([[1]])), ValueError, "1-D"),
    (lambda be: be.embedding_gather(np.ones(4), np.array([1])), ValueError, "2-D"),
    (lambda be: be.embedding_scatter_add(np.ones((2, 2)), np.array([0, 5]), np.zeros((3, 2))), IndexError, "index 5"),
    (lambda be: be.embedding_scatter_add(np.ones((2, 2)), np.array([0, 1]), None), ValueError, "required"),
    (lambda be: be.embedding_scatter_add(np.ones((2, 2)), np.array([0, 1]), np.zeros((3, 3))), ValueError, "shape"),
    (lambda be: be.embedding_scatter_add(np.ones((2, 2)), np.array([0, 1, 2]), np.zeros((3, 2))), ValueError, "indices must have shape"),
]


@pytest.mark.parametrize("case", range(len(BAD_CALLS)))
def test_bad_input_raises_the_reference_error(be, case):
    call, exc, pattern = BAD_CALLS[case]
    with pytest.raises(exc, match=pattern):
        call(ref)
    with pytest.raises(exc, match=pattern):
        call(be)


def test_outputs_untouched_when_input_is_rejected(be):
    out = np.full(3, 5.0)
    with pytest.raises(IndexError):
        be.embedding_gather(np.ones((2, 1)), np.array([0, 1, 2]), out=out.reshape(3, 1))
    assert np.all(out == 5.0)


def test_pybind_module_checks_sizes_itself():
    """_C is safe to call directly: wrong sizes, dtypes, layouts and indices raise, never crash."""
    from tinygrad_rep import _C
    x = np.ones(4, np.float32)
    with pytest.raises(ValueError, match="out has 3 elements, expected 4"):
        _C.relu_forward_f32(4, x, np.empty(3, np.float32))
    with pytest.raises(ValueError, match="sizes must be >= 0"):
        _C.relu_forward_f32(-1, x, x)
    with pytest.raises(ValueError, match="overflow"):
        _C.softmax_forward_f32(2**62, 2**62, x, x)
    with pytest.raises(TypeError):
        _C.relu_forward_f32(4, x.astype(np.float64), np.empty(4, np.float32))
    with pytest.raises(TypeError):  # no silent copy of a non-contiguous array
        _C.relu_forward_f32(2, x[::2], np.empty(2, np.float32))
    with pytest.raises(ValueError, match="read-only"):
        ro = np.empty(4, np.float32)
        ro.flags.writeable = False
        _C.relu_forward_f32(4, x, ro)
    with pytest.raises(IndexError, match="index 9 is out of range for size 2"):
        _C.embedding_gather_f64(1, 2, np.ones(4), np.array([9], np.int64), np.empty(2))
    with pytest.raises(IndexError):
        _C.cross_entropy_forward_f32(1, 2, np.ones(2, np.float32), np.array([-1], np.int64),
                                     np.empty(1, np.float32), np.empty(2, np.float32), np.empty((), np.float32))
    with pytest.raises(ValueError, match="multiple"):
        _C.embedding_scatter_add_f64(1, 2, np.ones(2), np.array([0], np.int64), np.zeros(3))
    with pytest.raises(ValueError, match="A has"):
        _C.matmul_f64(1, 2, 2, 2, np.ones(3), 0, np.ones(4), 0, np.empty(4), 0)
    with pytest.raises(ValueError, match="not aligned"):
        _C.relu_forward_f32(4, misaligned(x), np.empty(4, np.float32))
    with pytest.raises(ValueError, match="not aligned"):
        _C.embedding_gather_f64(1, 2, np.ones(4), misaligned(np.array([1], np.int64)), np.empty(2))


# ---------------------------------------------------------------- the kernel sets

def header_kernels():
    text = re.sub(r"/\*.*?\*/", "", HEADER.read_text(), flags=re.S)
    return set(re.findall(r"\btr_(\w+)\s*\(", text))


def test_both_extensions_expose_exactly_the_header_kernels():
    from tinygrad_rep import _C
    from tinygrad_rep._C_cffi import lib
    declared = header_kernels()
    assert "matmul_f32" in declared and "set_num_threads" in declared
    pybind_names = {n for n in dir(_C) if not n.startswith("_")}
    cffi_names = {n[3:] for n in dir(lib) if n.startswith("tr_")}
    assert pybind_names == declared, (pybind_names ^ declared)
    assert cffi_names == declared, (cffi_names ^ declared)


def test_adapters_expose_the_reference_interface():
    import inspect
    for be in BACKENDS.values():
        assert be.KERNELS == ref.KERNELS
        for name in ref.KERNELS:
            assert inspect.signature(getattr(be, name)) == inspect.signature(getattr(ref, name)), (be.NAME, name)
        info = be.info()
        assert set(info) == {"backend", "simd", "threads", "compiler_flags"}
        assert info["backend"] == be.NAME and info["simd"] in ("avx512f", "avx2", "default")
        assert "-O3" in info["compiler_flags"] and "-march=native" not in info["compiler_flags"]


# ---------------------------------------------------------------- threads

@pytest.fixture
def restore_threads():
    saved = {name: be.get_num_threads() for name, be in BACKENDS.items()}
    yield
    for name, be in BACKENDS.items():
        be.set_num_threads(saved[name])


def test_set_and_get_num_threads(be, restore_threads):
    be.set_num_threads(3)
    assert be.get_num_threads() == 3 and be.info()["threads"] == 3
    be.set_num_threads(0)
    assert be.get_num_threads() == 1


def test_results_do_not_depend_on_thread_count(be, restore_threads):
    rng = rng_for(11)
    x = (rng.standard_normal((300, 517)) * 5).astype(np.float32)  # > 2**16 elements: threaded
    g = rng.standard_normal((300, 517)).astype(np.float32)
    a = rng.standard_normal((160, 300)).astype(np.float32)
    b = rng.standard_normal((300, 520)).astype(np.float32)
    t = rng.integers(0, 517, 300)
    idx = rng.integers(0, 50, 300)

    def run():
        y = be.softmax_forward(x)
        acc = np.zeros((50, 517), np.float32)
        return [y, be.log_softmax_forward(x), be.softmax_backward(y, g), be.log_softmax_backward(x, g),
                be.matmul(a, b), be.matmul(b, a, trans_a=True, trans_b=True), be.relu_forward(x),
                *be.cross_entropy_forward(x, t), be.embedding_scatter_add(g, idx, acc),
                be.embedding_gather(x, idx)]

    be.set_num_threads(1)
    one = run()
    be.set_num_threads(2)
    two = run()
    for r1, r2 in zip(one, two):
        assert np.array_equal(r1.view(np.uint32), r2.view(np.uint32))


def test_num_threads_env_var_is_read_at_first_use():
    code = "from tinygrad_rep.backend import pybind, cffi; print(pybind.get_num_threads(), cffi.get_num_threads())"
    env = dict(os.environ, TINYGRAD_REP_NUM_THREADS="3")
    out = run_child(["-c", code], env=env, check=True)
    assert out.stdout.split() == ["3", "3"]
    env["TINYGRAD_REP_NUM_THREADS"] = "lots"
    out = run_child(["-W", "always", "-c", code], env=env, check=True)
    assert "TINYGRAD_REP_NUM_THREADS" in out.stderr and int(out.stdout.split()[0]) >= 1


# ---------------------------------------------------------------- a missing extension

@pytest.mark.parametrize("adapter,module", [("pybind", "tinygrad_rep._C"), ("cffi", "tinygrad_rep._C_cffi")])
def test_missing_extension_is_an_import_error_that_says_how_to_build(adapter, module):
    code = (f"import sys; sys.modules[{module!r}] = None\n"
            "try:\n"
            f"    import tinygrad_rep.backend.{adapter}\n"
            "except ImportError as e:\n"
            "    print('IMPORT-ERROR', e.name, '|', e)\n")
    out = run_child(["-c", code], check=True).stdout
    assert out.startswith(f"IMPORT-ERROR {module} |"), out
    assert "pip install -e ." in out


# ---------------------------------------------------------------- the pybind11 fast path

FAST = ["relu_forward", "relu_backward", "softmax_forward", "log_softmax_forward",
        "softmax_backward", "log_softmax_backward"]


def _fast_args(name, x, out, g=None):
    return (x, out) if name in ("relu_forward", "softmax_forward", "log_softmax_forward") \
        else (x, x.copy() if g is None else g, out)


@pytest.mark.parametrize("name", FAST)
def test_fast_path_declines_anything_unusual(name):
    """_C._fast_<kernel> runs only on exactly-right arguments; otherwise it returns None and
    leaves the output untouched, so the adapter's checked path decides (copy or numpy_ref's error)."""
    from tinygrad_rep import _C
    fn = getattr(_C, "_fast_" + name)
    x = np.linspace(-2, 2, 12, dtype=np.float32).reshape(3, 4)
    out = np.full_like(x, 7.0)
    assert fn(*_fast_args(name, x, out)) is out and not np.all(out == 7.0)
    ro = np.full_like(x, 7.0)
    ro.flags.writeable = False
    big = np.zeros(8, np.float32)
    bad_outs = [np.full((4, 3), 7.0, np.float32), np.full((3, 4), 7.0), np.full((3, 4), 7.0, ">f4"),
                np.full((12,), 7.0, np.float32), ro, np.full((4, 3), 7.0, np.float32).T,
                misaligned(np.full_like(x, 7.0)), [[7.0] * 4] * 3]
    for bad in bad_outs:
        before = np.array(bad, copy=True)
        assert fn(*_fast_args(name, x, bad)) is None
        assert np.array_equal(np.asarray(bad), before)
    out = np.full_like(x, 7.0)
    for bad_x in (x.astype(np.float64), x.astype(np.float16), x.T.copy().T, misaligned(x), x.tolist(),
                  x.astype(">f4"), x.astype(np.int64)):
        assert fn(*_fast_args(name, bad_x, out)) is None and np.all(out == 7.0)
    # any overlap between out and an input (in place, or a shifted view of one buffer) declines
    assert fn(*_fast_args(name, x, x)) is None
    assert fn(*_fast_args(name, big[:6].reshape(2, 3), big[2:8].reshape(2, 3))) is None
    if len(_fast_args(name, x, out)) == 3:
        assert fn(x, x[:, :3].copy(), out) is None and np.all(out == 7.0)  # grad shape differs
        assert fn(x, out, out) is None
    if name in ("softmax_forward", "log_softmax_forward", "softmax_backward", "log_softmax_backward"):
        z = np.array(3.0, np.float32)
        assert fn(*_fast_args(name, z, np.empty_like(z))) is None  # 0-d: the checked path raises


def test_fast_path_of_matmul_and_cross_entropy():
    """The fast path binds shapes from the table's patterns: matmul's optional batch axis and
    transposes, cross-entropy's index range; anything else declines (None) for the checks."""
    from tinygrad_rep import _C
    rng = rng_for(3)
    a, b = rng.standard_normal((2, 5, 3)), rng.standard_normal((2, 4, 3))
    got = _C._fast_matmul(a, False, b, True, None, False)
    np.testing.assert_allclose(got, a @ np.swapaxes(b, 1, 2), rtol=1e-12)
    assert _C._fast_matmul(a, False, b, False, None, False) is None           # inner sizes differ
    assert _C._fast_matmul(a[0], False, b, True, None, False) is None         # 2-D with 3-D
    assert _C._fast_matmul(a, False, b, True, None, True) is None             # accumulate, no out
    assert _C._fast_matmul(a, False, b, 1, None, False) is None               # a flag that is no bool
    out = np.ones((2, 5, 4))
    assert _C._fast_matmul(a, False, b, True, out, True) is out
    np.testing.assert_allclose(out, 1 + a @ np.swapaxes(b, 1, 2), rtol=1e-12)
    logits = rng.standard_normal((4, 3)).astype(np.float32)
    losses, probs, loss = _C._fast_cross_entropy_forward(logits, np.array([0, 2, 1, 2]), None, None, None)
    want = ref.cross_entropy_forward(logits, np.array([0, 2, 1, 2]))
    np.testing.assert_allclose(losses, want[0], rtol=1e-6)
    np.testing.assert_allclose(probs, want[1], rtol=1e-6)
    assert loss == losses.mean()
    for bad_targets in (np.array([0, 3, 1, 2]), np.array([0, -1, 1, 2]), np.array([0, 2, 1], np.int64),
                        np.array([0, 2, 1, 2], np.int32)):
        assert _C._fast_cross_entropy_forward(logits, bad_targets, None, None, None) is None


@pytest.mark.parametrize("dtype", DTYPES)
def test_adapter_fast_and_checked_paths_agree(dtype):
    """Same results through the fast path and through a layout that forces the checked path."""
    rng = rng_for(11)
    x = rng.standard_normal((5, 33)).astype(dtype)
    g = rng.standard_normal((5, 33)).astype(dtype)
    fortran = np.asfortranarray
    be = pybind_backend
    for fn, args in ((be.relu_forward, (x,)), (be.relu_backward, (x, g)), (be.softmax_forward, (x,)),
                     (be.log_softmax_forward, (x,)), (be.softmax_backward, (x, g)),
                     (be.log_softmax_backward, (x, g))):
        fast = fn(*args)
        checked = fn(*[fortran(a) for a in args])
        assert np.array_equal(fast, checked), fn.__name__
        out = np.empty_like(x)
        assert fn(*args, out=out) is out and np.array_equal(out, fast)
        # in place: the checked path copies the input first
        inplace = args[0].copy()
        assert np.array_equal(fn(inplace, *args[1:], out=inplace), fast)


# ---------------------------------------------------------------- the output buffer pool

def test_pool_never_hands_out_a_buffer_still_referenced():
    from tinygrad_rep.backend import pool
    was = pool.set_enabled(True)
    try:
        pool.clear()
        x = np.ones((256, 256), np.float32)  # 256 KB: pooled
        a = pybind_backend.relu_forward(x)
        for holder in (lambda arr: arr[1:], lambda arr: arr.reshape(-1), lambda arr: memoryview(arr),
                       lambda arr: [arr], lambda arr: np.frombuffer(arr, np.float32)):
            keep = holder(a)
            b = pybind_backend.relu_forward(-x)
            assert b is not a and np.all(a == 1.0), "a referenced buffer was reused"
            del keep, b
        addr = a.__array_interface__["data"][0]
        del a  # now only the pool holds it: the next output of that shape and dtype reuses it
        c = pybind_backend.softmax_forward(x)
        assert c.__array_interface__["data"][0] == addr and np.allclose(c, 1 / 256)
        assert c.flags.c_contiguous and c.flags.writeable and c.flags.owndata
        # other shapes or dtypes, and small arrays, never share it
        d = pybind_backend.relu_forward(np.ones((256, 256)))
        e = pybind_backend.relu_forward(np.ones((8,), np.float32))
        assert d.__array_interface__["data"][0] != addr and e.__array_interface__["data"][0] != addr
        # a buffer its last user made read-only is dropped, not made writeable again (also when
        # it is not the first of its shape in the pool)
        del c
        pool.clear()
        first, second = pybind_backend.relu_forward(x), pybind_backend.relu_forward(x)
        second.flags.writeable = False
        del second
        f = pybind_backend.relu_forward(x)
        assert f.flags.writeable and f is not first and pool.stats()["arrays"] == 2
        s = pool.stats()
        assert s["hits"] >= 1 and s["pooled_bytes"] <= s["limit_bytes"]
    finally:
        pool.set_enabled(was)


def test_pool_through_tensors_and_autograd():
    """Tensors and saved-for-backward arrays keep their buffers; gradients match without pool."""
    import tinygrad_rep as tr
    from tinygrad_rep.backend import pool, set_backend
    rng = rng_for(5)
    x = rng.standard_normal((300, 257)).astype(np.float32)

    def run():
        X = tr.Tensor(x, requires_grad=True)
        ys = [X.relu().softmax(-1), X.log_softmax(-1).relu()]
        loss = (ys[0] * ys[1]).sum()
        loss.backward()
        return [y.data.copy() for y in ys], X.grad.copy() if hasattr(X.grad, "copy") else X.grad.data.copy()

    was = pool.set_enabled(True)
    try:
        set_backend("pybind11")
        pool.clear()
        with_pool = [run() for _ in range(3)]
        pool.set_enabled(False)
        without = run()
    finally:
        pool.set_enabled(was)
    for ys, grad in with_pool:
        for a, b in zip(ys, without[0]):
            assert np.array_equal(a, b)
        assert np.array_equal(grad, without[1])


def test_pool_limit_and_off_switch():
    from tinygrad_rep.backend import pool
    was = pool.set_enabled(True, limit_mb=1)
    try:
        pool.clear()
        keep = [pybind_backend.relu_forward(np.ones((128, 1024), np.float32)) for _ in range(4)]  # 512 KB each
        assert pool.stats()["pooled_bytes"] <= 2 ** 20
        assert len({k.__array_interface__["data"][0] for k in keep}) == 4
        pool.set_enabled(False)
        assert pool.stats()["pooled_bytes"] == 0 and not pool.stats()["enabled"]
        a = pybind_backend.relu_forward(np.ones((128, 1024), np.float32))
        assert pool.stats()["arrays"] == 0 and a.flags.owndata
    finally:
        pool.set_enabled(was, limit_mb=256)
    code = ("from tinygrad_rep.backend import pool; print(pool.enabled)")
    env = dict(os.environ, TINYGRAD_REP_POOL="0")
    out = run_child(["-c", code], check=True, env=env)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("dtype", DTYPES)
def test_row_kernels_every_row_length(be, dtype):
    """Row lengths 1..70 reach every loop of the vector row kernels (blocks of 32 and 16 floats,
    and every masked tail), with -inf entries and a NaN row mixed in."""
    rng = rng_for(13)
    for cols in range(1, 71):
        x = (rng.standard_normal((3, cols)) * 5).astype(dtype)
        x[0, rng.integers(cols)] = -np.inf
        x[2, rng.integers(cols)] = np.nan
        g = rng.standard_normal((3, cols)).astype(dtype)
        y = ref.softmax_forward(x)
        ly = ref.log_softmax_forward(x)
        assert_close(be.softmax_forward(x), y, dtype)
        assert_close(be.log_softmax_forward(x), ly, dtype)
        assert_close(be.softmax_backward(y, g), ref.softmax_backward(y, g), dtype)
        assert_close(be.log_softmax_backward(ly, g), ref.log_softmax_backward(ly, g), dtype)
        t = rng.integers(0, cols, 3)
        for got, want in zip(be.cross_entropy_forward(x, t), ref.cross_entropy_forward(x, t)):
            assert_close(got, want, dtype)


@pytest.mark.parametrize("level", ["avx2", "default"])
def test_float32_row_kernels_at_every_simd_level(level):
    """TINYGRAD_REP_ROW_SIMD caps the level of the float32 row kernels (AVX-512 intrinsics, AVX2
    intrinsics, target_clones loops), so one machine runs every path through the same checks."""
    env = dict(os.environ, TINYGRAD_REP_ROW_SIMD=level)
    run = run_child(["-m", "pytest", "-q", "-p", "no:cacheprovider", __file__,
                     "-k", "every_row_length or two_ulp or softmax or cross_entropy or thread"], env=env)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert " passed" in run.stdout


def test_every_backend_exposes_exactly_the_same_functions():
    import inspect

    def public(m):
        return {n: inspect.signature(v) for n, v in vars(m).items()
                if inspect.isfunction(v) and v.__module__ == m.__name__ and not n.startswith("_")}
    want = public(ref)
    assert set(want) == set(ref.KERNELS) | set(ref.RUNTIME)
    for be in BACKENDS.values():
        assert public(be) == want, be.NAME
    ref.set_num_threads(3)
    try:
        assert ref.get_num_threads() == 3
    finally:
        ref.set_num_threads(1)


def header_prototypes():
    """{name without tr_: (return type, [(type, arg name), ...])} from the header."""
    text = re.sub(r"/\*.*?\*/", "", HEADER.read_text(), flags=re.S)
    protos = {}
    for ret, name, args in re.findall(r"^\s*([\w ]+?\**)\s*\btr_(\w+)\s*\(([^)]*)\)\s*;", text, flags=re.M):
        params = []
        for a in args.split(","):
            a = a.strip()
            if a in ("", "void"):
                continue
            m = re.fullmatch(r"(.+?)\s*(\w+)", a)
            params.append((" ".join(m.group(1).replace("*", " * ").split()), m.group(2)))
        protos[name] = (" ".join(ret.replace("*", " * ").split()), params)
    return protos


def _ctype(t):
    """A C type as cffi spells it, without const."""
    return " ".join(t.replace("const", "").replace("*", " * ").split())


_PYBIND_TYPE = {"float *": "NDArray[numpy.float32]", "double *": "NDArray[numpy.float64]",
                "int64_t *": "NDArray[numpy.int64]", "int64_t": "SupportsInt", "uint64_t": "SupportsInt",
                "int": "SupportsInt", "double": "SupportsFloat", "float": "SupportsFloat"}
_PYBIND_RESULT = {"void": "None", "int": "int", "const char *": "str"}


def test_bindings_follow_the_header_signatures():
    from tinygrad_rep import _C
    from tinygrad_rep._C_cffi import ffi, lib
    protos = header_prototypes()
    assert set(protos) == header_kernels()
    for name, (ret, params) in protos.items():
        # cffi: the same C types in the same order
        t = ffi.typeof(getattr(lib, "tr_" + name))
        assert [_ctype(a.cname) for a in t.args] == [_ctype(p) for p, _ in params], name
        assert _ctype(t.result.cname) == _ctype(ret), name
        # pybind11: the header's argument names, in order, each of the matching kind
        doc = getattr(_C, name).__doc__.splitlines()[0]
        m = re.fullmatch(rf"{name}\((.*)\) -> (\w+)", doc)
        assert m, doc
        got = re.findall(r"(\w+): ([^,]+)", m.group(1))
        assert [n for n, _ in got] == [n for _, n in params], name
        for (_, kind), (ctype, arg) in zip(got, params):
            assert _PYBIND_TYPE[_ctype(ctype)] in kind, (name, arg, kind)
        assert m.group(2) == _PYBIND_RESULT[ret], name
    # numpy_ref (and through test_every_backend_exposes_exactly_the_same_functions, every
    # adapter): one Python function per kernel family of the header, none missing or extra
    families = {re.sub(r"_f(32|64)$", "", n) for n in protos}
    assert families == set(ref.KERNELS) | {"set_num_threads", "get_num_threads", "simd_level", "build_flags"}


# ---------------------------------------------------------------- the kernel table

def header_kernel_list():
    """The names in the header's TR_KERNELS(X) list."""
    text = HEADER.read_text()
    m = re.search(r"#define TR_KERNELS\(X\)((?:[^\n]*\\\n)*[^\n]*)", text)
    assert m, "the header has no TR_KERNELS list"
    return re.findall(r"\bX\((\w+)\)", m.group(1))


RUNTIME_C = {"set_num_threads", "get_num_threads", "simd_level", "build_flags"}


def _table_ctype(arg, suffix):
    """The C type a table argument must have in the header (suffix: "f32", "f64" or None)."""
    from tinygrad_rep.backend import kernels as K
    T = {"f32": "float", "f64": "double", None: None}[suffix]
    if arg.role == K.SIZE:
        return "int64_t"
    if arg.role == K.FLAG:
        return "int"
    if arg.role == K.SEED:
        return "uint64_t"
    if arg.role == K.DERIVED:
        return "double"
    if arg.role == K.SCALAR:
        return {T, "double"}
    elem = {"T": T, "f64": "double", "i64": "int64_t"}[arg.dtype]
    return ("const " if arg.role not in K.WRITTEN else "") + elem + " *"


def test_the_table_the_header_and_numpy_ref_agree():
    """Every header kernel is in TR_KERNELS and has a table row, every row a prototype per
    variant with the row's argument names and matching types, and numpy_ref a function per row
    whose parameters feed the row's Python-side arguments."""
    import inspect

    from tinygrad_rep.backend import kernels as K
    protos = header_prototypes()
    listed = header_kernel_list()
    assert len(listed) == len(set(listed))
    assert set(listed) == set(protos) - RUNTIME_C, set(listed) ^ (set(protos) - RUNTIME_C)
    assert set(K.BY_C_NAME) == set(listed), set(K.BY_C_NAME) ^ set(listed)
    assert tuple(k.name for k in K.KERNELS) == ref.KERNELS
    for row in K.KERNELS:
        for c_name, suffix in zip(row.c_names, row.variants or (None,)):
            ret, params = protos[c_name]
            assert ret == "void", c_name
            assert [a.name for a in row.args] == [n for _, n in params], c_name
            for a, (ctype, _) in zip(row.args, params):
                want = _table_ctype(a, suffix)
                got = " ".join(ctype.split())
                assert got in want if isinstance(want, set) else got == want, (c_name, a.name, got, want)
        py = list(inspect.signature(getattr(ref, row.name)).parameters)
        assert all(a.py in py for a in row.args if a.py is not None), row.name
        assert all(r in [a.name for a in row.args] for r in row.returns), row.name


def test_every_row_has_a_fast_path_unless_it_derives_numbers():
    from tinygrad_rep import _C
    from tinygrad_rep.backend import kernels as K
    fast = {n[len("_fast_"):] for n in dir(_C) if n.startswith("_fast_")}
    assert fast == {k.name for k in K.KERNELS if k.fast}
    assert {k.name for k in K.KERNELS if not k.fast} == {"adam_step"}


def test_generic_checks_word_errors_like_the_named_ones():
    """The checks a new kernel gets from its row alone (no named check function) raise the
    messages the named functions raise for relu, softmax, cross-entropy and gather."""
    from tinygrad_rep.backend import _adapter, _checks
    from tinygrad_rep.backend import kernels as K

    def both(name, *args):
        row = K.BY_NAME[name]
        out = []
        for fn in (getattr(_checks, row.check), _checks.generic_prepare(row, _adapter.params(row))):
            try:
                got = fn(*args)
                out.append(("ok", [getattr(v, "shape", v) for v in got]))
            except (TypeError, ValueError, IndexError) as exc:
                out.append((type(exc).__name__, str(exc)))
        assert out[0] == out[1], out
        return out[0]

    f32, f64 = np.ones((2, 3), np.float32), np.ones((2, 3))
    assert both("relu_forward", f64, None)[0] == "ok"
    assert both("relu_forward", np.ones(3, np.int32), None)[0] == "TypeError"
    assert both("relu_forward", f64, np.ones(4))[0] == "ValueError"
    assert both("relu_forward", f64, f32)[0] == "TypeError"
    assert both("relu_backward", f64, np.ones(4), None)[1] == "relu_backward: x has shape (2, 3) but grad has shape (4,)"
    assert both("relu_backward", f64, f32, None)[0] == "TypeError"
    assert both("softmax_forward", np.ones(()), None)[1] == "softmax_forward: needs at least 1 dimension, got a 0-d array"
    assert both("log_softmax_backward", f64, f64.T, None)[0] == "ValueError"
    assert both("cross_entropy_forward", np.ones(3), np.zeros(3, int), None, None)[1] == \
        "cross_entropy_forward: logits must be 2-D (B, C), got shape (3,)"
    assert both("cross_entropy_forward", f64, np.array([0, 3]), None, None)[0] == "IndexError"
    assert both("cross_entropy_forward", f64, np.array([0, 1, 2]), None, None)[1] == \
        "cross_entropy_forward: targets must have shape (2,), got (3,)"
    assert both("cross_entropy_forward", f64, np.array([0, 1]), np.ones(3), None)[0] == "ValueError"
    assert both("cross_entropy_backward", f64, np.array([0, 1]), np.ones(2, np.float32), None)[0] == "TypeError"
    assert both("cross_entropy_backward", f64, np.array([0, 1]), np.ones(3), None)[1] == \
        "cross_entropy_backward: grad must have shape (2,), got (3,)"
    assert both("embedding_gather", np.ones(4), np.array([1]), None)[1] == \
        "embedding_gather: weight must be 2-D (V, d), got shape (4,)"
    assert both("embedding_gather", f64, np.array([[1]]), None)[1] == "embedding_gather: indices must be 1-D, got shape (1, 1)"
    assert both("embedding_gather", f64, np.array([2]), None)[0] == "IndexError"
