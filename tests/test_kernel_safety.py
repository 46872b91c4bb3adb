"""Kernel safety: arrays that share memory, misaligned arrays, and one accept/reject table.

Every array a kernel writes must share no byte with any other array of the call, in the
adapters (numpy_ref, pybind11, cffi) and in the raw pybind11 module tinygrad_rep._C; and the
three backends accept and reject exactly the same inputs, with the same exception and message.
"""
import numpy as np
import pytest

from tinygrad_rep.backend import numpy_ref as ref

pytest.importorskip("tinygrad_rep._C")
pytest.importorskip("tinygrad_rep._C_cffi")
from tinygrad_rep import _C  # noqa: E402
from tinygrad_rep.backend import cffi as cffi_backend  # noqa: E402
from tinygrad_rep.backend import pybind as pybind_backend  # noqa: E402

BACKENDS = [ref, pybind_backend, cffi_backend]


def misaligned(shape, dtype):
    """A C-contiguous array of `shape` whose data pointer is one byte off its dtype's alignment."""
    dtype = np.dtype(dtype)
    n = int(np.prod(shape))
    raw = np.zeros(n * dtype.itemsize + dtype.itemsize + 1, np.uint8)
    start = (-raw.ctypes.data) % dtype.itemsize + 1
    a = raw[start:start + n * dtype.itemsize].view(dtype).reshape(shape)
    assert not a.flags.aligned
    return a


# ---- overlap: sgns_sgd through every adapter ----

def _sgd_case(seed=0):
    rng = np.random.default_rng(seed)
    W_in = rng.standard_normal((6, 4))
    W_out = rng.standard_normal((7, 4))
    inputs = rng.integers(0, 6, 5).astype(np.int64)
    targets = rng.integers(0, 7, (5, 3)).astype(np.int64)
    return W_in, W_out, inputs, targets


@pytest.mark.parametrize("be", BACKENDS, ids=lambda b: b.NAME)
@pytest.mark.parametrize("which", ["targets", "inputs"])
def test_sgns_sgd_losses_overlapping_an_index_array_gives_the_separate_buffer_result(be, which):
    W_in, W_out, inputs, targets = _sgd_case()
    want_in, want_out = W_in.copy(), W_out.copy()
    want = ref.sgns_sgd(want_in, want_out, inputs.copy(), targets.copy(), 0.1)
    # losses (float64, n entries) laid over the index array's own bytes: the kernel writes a loss
    # while the later pairs' indices are still to be read
    idx = targets if which == "targets" else inputs
    losses = idx.reshape(-1).view(np.float64)[:inputs.shape[0]]
    got = be.sgns_sgd(W_in, W_out, inputs, targets, 0.1, losses=losses)
    assert got is losses
    np.testing.assert_allclose(got, want, rtol=1e-12)
    np.testing.assert_allclose(W_in, want_in, rtol=1e-12)
    np.testing.assert_allclose(W_out, want_out, rtol=1e-12)


@pytest.mark.parametrize("be", BACKENDS, ids=lambda b: b.NAME)
def test_sgns_sgd_w_in_is_w_out_is_an_error(be):
    W_in, _, inputs, targets = _sgd_case()
    with pytest.raises(ValueError, match=r"^sgns_sgd: W_in and W_out must not share memory$"):
        be.sgns_sgd(W_in, W_in, inputs, np.zeros((5, 2), np.int64), 0.1)


@pytest.mark.parametrize("be", BACKENDS, ids=lambda b: b.NAME)
def test_sgns_sgd_interleaved_views_that_share_no_byte_are_accepted(be):
    # W_in and W_out as the even and odd columns of one table: bounds overlap, bytes do not,
    # but neither is C-contiguous, so both are refused for that reason (no copy of W is made)
    table = np.zeros((6, 8))
    with pytest.raises(ValueError, match=r"W_in is updated in place and must be C-contiguous"):
        be.sgns_sgd(table[:, ::2], table[:, 1::2], np.zeros(1, np.int64), np.zeros((1, 1), np.int64), 0.1)
    # two halves of one buffer: contiguous, disjoint, accepted
    W_in, W_out = table.reshape(-1)[:24].reshape(6, 4), table.reshape(-1)[24:].reshape(6, 4)
    assert be.sgns_sgd(W_in, W_out, np.zeros(1, np.int64), np.zeros((1, 1), np.int64), 0.1).shape == (1,)


@pytest.mark.parametrize("be", BACKENDS, ids=lambda b: b.NAME)
def test_sgns_sgd_losses_overlapping_a_table_is_an_error(be):
    W_in, W_out, inputs, targets = _sgd_case()
    with pytest.raises(ValueError, match=r"^sgns_sgd: losses must not share memory with W_in or W_out$"):
        be.sgns_sgd(W_in, W_out, inputs, targets, 0.1, losses=W_out.reshape(-1)[:5])


# ---- overlap: the raw _C module refuses, never corrupts ----

def _raw_cases():
    """(name, call(buf) -> None) where buf is one float64 buffer the arrays are carved from."""
    def gather(buf):
        idx = buf[:4].view(np.int64)
        idx[:] = 0
        _C.embedding_gather_f64(4, 2, np.ones((3, 2)), idx, buf[:8])

    def scatter(buf):
        idx = buf[:4].view(np.int64)
        idx[:] = 0
        _C.embedding_scatter_add_f64(4, 2, np.ones((4, 2)), idx, buf[:8])

    def sgd(buf):
        targets = buf[:6].view(np.int64)
        targets[:] = 0
        _C.sgns_sgd_f64(3, 2, 2, np.zeros((3, 2)), np.zeros((3, 2)), np.zeros(3, np.int64),
                        targets, 0.1, buf[:3], np.zeros(4))

    def sgd_inputs(buf):
        inputs = buf[:3].view(np.int64)
        inputs[:] = 0
        _C.sgns_sgd_f64(3, 1, 2, np.zeros((3, 2)), np.zeros((3, 2)), inputs,
                        np.zeros(3, np.int64), 0.1, buf[:3], np.zeros(3))

    def sgd_tables(buf):
        _C.sgns_sgd_f64(1, 1, 2, buf[:4], buf[:4], np.zeros(1, np.int64), np.zeros(1, np.int64),
                        0.1, np.zeros(1), np.zeros(3))

    def sample(buf):
        out = buf[:4].view(np.int64)
        _C.sample_negatives(2, 2, 2, np.full(2, 0.5), out[:2], np.zeros(2, np.int64), 1, out)

    def ce(buf):
        t = buf[:2].view(np.int64)
        t[:] = 0
        _C.cross_entropy_forward_f64(2, 3, np.zeros(6), t, buf[:2], np.zeros(6), np.zeros(()))

    def relu(buf):
        _C.relu_forward_f64(4, buf[:4], buf[2:6])

    def matmul(buf):
        _C.matmul_f64(1, 2, 2, 2, buf[:4], 0, np.eye(2), 0, buf[:4], 0)

    def sgns_fb(buf):
        _C.sgns_forward_backward_f64(1, 1, 2, np.zeros(2), np.zeros(2), np.zeros(1), buf[:2], buf[1:3])

    return {"embedding_gather": gather, "embedding_scatter_add": scatter, "sgns_sgd targets": sgd,
            "sgns_sgd inputs": sgd_inputs, "sgns_sgd tables": sgd_tables, "sample_negatives": sample,
            "cross_entropy_forward": ce, "relu_forward": relu, "matmul": matmul,
            "sgns_forward_backward": sgns_fb}


RAW_MESSAGES = {
    "embedding_gather": "embedding_gather_f64: out and indices must not overlap",
    "embedding_scatter_add": "embedding_scatter_add_f64: out and indices must not overlap",
    "sgns_sgd targets": "sgns_sgd_f64: losses and targets must not overlap",
    "sgns_sgd inputs": "sgns_sgd_f64: losses and inputs must not overlap",
    "sgns_sgd tables": "sgns_sgd_f64: W_in and W_out must not overlap",
    "sample_negatives": "sample_negatives: out and alias must not overlap",
    "cross_entropy_forward": "cross_entropy_forward_f64: losses and targets must not overlap",
    "relu_forward": "relu_forward_f64: out and x must not overlap",
    "matmul": "matmul_f64: C and A must not overlap",
    "sgns_forward_backward": "sgns_forward_backward_f64: grad_center and grad_targets must not overlap",
}


@pytest.mark.parametrize("case", sorted(RAW_MESSAGES))
def test_raw_module_refuses_overlapping_arrays(case):
    buf = np.zeros(16)
    with pytest.raises(ValueError) as info:
        _raw_cases()[case](buf)
    assert str(info.value) == RAW_MESSAGES[case]


# ---- one table of malformed and edge inputs, run against all three backends ----

def _table():
    f32, f64, i64 = np.float32, np.float64, np.int64
    W = np.zeros((5, 3))
    prob, alias = np.full(4, 0.5), np.arange(4, dtype=i64)
    return {
        "sgd misaligned W_in": lambda b: b.sgns_sgd(misaligned((5, 3), f64), W.copy(), np.zeros(2, i64),
                                                   np.zeros((2, 1), i64), 0.1),
        "sgd misaligned W_out": lambda b: b.sgns_sgd(W.copy(), misaligned((5, 3), f64), np.zeros(2, i64),
                                                    np.zeros((2, 1), i64), 0.1),
        "sgd misaligned inputs": lambda b: b.sgns_sgd(W.copy(), W.copy(), misaligned((2,), i64) * 0,
                                                     np.zeros((2, 1), i64), 0.1),
        "sgd misaligned-index views": lambda b: b.sgns_sgd(
            W.copy(), W.copy(), _zeroed(misaligned((2,), i64)), _zeroed(misaligned((2, 1), i64)), 0.1),
        "sgd misaligned losses": lambda b: b.sgns_sgd(W.copy(), W.copy(), np.zeros(2, i64),
                                                     np.zeros((2, 1), i64), 0.1, losses=misaligned((2,), f64)),
        "sgd W_in is W_out": lambda b: b.sgns_sgd(W, W, np.zeros(2, i64), np.zeros((2, 1), i64), 0.1),
        "sgd read-only W_in": lambda b: b.sgns_sgd(_readonly(W.copy()), W.copy(), np.zeros(2, i64),
                                                  np.zeros((2, 1), i64), 0.1),
        "sgd float32 vs float64": lambda b: b.sgns_sgd(W.astype(f32), W.copy(), np.zeros(2, i64),
                                                      np.zeros((2, 1), i64), 0.1),
        "sgd nan lr": lambda b: b.sgns_sgd(W.copy(), W.copy(), np.zeros(2, i64), np.zeros((2, 1), i64), np.nan),
        "sgd index out of range": lambda b: b.sgns_sgd(W.copy(), W.copy(), np.full(2, 5, i64),
                                                      np.zeros((2, 1), i64), 0.1),
        "sample misaligned prob": lambda b: b.sample_negatives(_filled(misaligned((4,), f64), 0.5), alias,
                                                              np.full(3, -1, i64), 2, 7),
        "sample misaligned alias": lambda b: b.sample_negatives(prob, _copied(misaligned((4,), i64), alias),
                                                               np.full(3, -1, i64), 2, 7),
        "sample misaligned avoid": lambda b: b.sample_negatives(prob, alias, _filled(misaligned((3,), i64), -1),
                                                               2, 7),
        "sample int32 avoid": lambda b: b.sample_negatives(prob, alias, np.full(3, -1, np.int32), 2, 7),
        "sample misaligned out": lambda b: b.sample_negatives(prob, alias, np.full(3, -1, i64), 2, 7,
                                                             out=misaligned((3, 2), i64)),
        "sample prob above 1": lambda b: b.sample_negatives(np.full(4, 1.5), alias, np.full(3, -1, i64), 2, 7),
        "sample empty table": lambda b: b.sample_negatives(np.zeros(0), np.zeros(0, i64), np.full(3, -1, i64), 2, 7),
        "sample negative k": lambda b: b.sample_negatives(prob, alias, np.full(3, -1, i64), -1, 7),
        "sample seed too big": lambda b: b.sample_negatives(prob, alias, np.full(3, -1, i64), 2, 2 ** 64),
        "gather misaligned weight": lambda b: b.embedding_gather(misaligned((5, 3), f32), np.zeros(2, i64)),
        "gather misaligned out": lambda b: b.embedding_gather(W, np.zeros(2, i64), out=misaligned((2, 3), f64)),
        "scatter misaligned out": lambda b: b.embedding_scatter_add(np.ones((2, 3)), np.zeros(2, i64),
                                                                   misaligned((5, 3), f64)),
        "relu misaligned x": lambda b: b.relu_forward(misaligned((7,), f32)),
        "relu misaligned out": lambda b: b.relu_forward(np.ones(7, f32), out=misaligned((7,), f32)),
        "softmax 0-d": lambda b: b.softmax_forward(np.float64(1.0) * np.ones(())),
        "matmul misaligned a": lambda b: b.matmul(misaligned((2, 3), f64), np.ones((3, 2))),
        "ce misaligned targets": lambda b: b.cross_entropy_forward(np.ones((2, 3)), misaligned((2,), i64) * 0),
        "adam misaligned param": lambda b: b.adam_step(misaligned((4,), f64), np.ones(4), np.zeros(4),
                                                      np.zeros(4), 1, 0.1),
        "adam misaligned grad": lambda b: b.adam_step(np.ones(4), _filled(misaligned((4,), f64), 1.0),
                                                     np.zeros(4), np.zeros(4), 1, 0.1),
    }


def _zeroed(a):
    a[...] = 0
    return a


def _filled(a, v):
    a[...] = v
    return a


def _copied(a, src):
    a[...] = src
    return a


def _readonly(a):
    a.flags.writeable = False
    return a


def _outcome(fn, be):
    try:
        result = fn(be)
    except Exception as exc:  # the outcome under test is the exception itself
        return ("raised", type(exc).__name__, str(exc))
    results = result if isinstance(result, tuple) else (result,)
    return ("ok", tuple(np.asarray(r).shape for r in results), tuple(str(np.asarray(r).dtype) for r in results))


@pytest.mark.parametrize("case", sorted(_table()))
def test_all_backends_accept_and_reject_the_same_inputs(case):
    fn = _table()[case]
    outcomes = {be.NAME: _outcome(fn, be) for be in BACKENDS}
    assert outcomes["pybind11"] == outcomes["numpy"], outcomes
    assert outcomes["cffi"] == outcomes["numpy"], outcomes


def test_table_rejections_name_the_argument():
    # a few of the table's rejections, spelled out (the table only asserts agreement)
    t = _table()
    for case, exc, msg in [
        ("sgd misaligned W_in", ValueError,
         "sgns_sgd: W_in is updated in place and must be C-contiguous, aligned and writeable"),
        ("sgd W_in is W_out", ValueError, "sgns_sgd: W_in and W_out must not share memory"),
        ("sample misaligned out", ValueError,
         "sample_negatives: out: output buffer must be C-contiguous, aligned and writeable"),
    ]:
        for be in BACKENDS:
            with pytest.raises(exc) as info:
                t[case](be)
            assert str(info.value) == msg, (be.NAME, case)


# ---- the output pool: a returned array whose metadata a user changed is never reused ----
# (tests/test_pool.py covers shape, dtype, read-only and resize; these are the remaining tricks)

@pytest.fixture(params=["pybind11", "cffi"])
def pooled(request):
    from tinygrad_rep.backend import pool
    be = {"pybind11": pybind_backend, "cffi": cffi_backend}[request.param]
    pool.clear()
    was = pool.set_enabled(True)
    yield be
    pool.set_enabled(was)


_POOL_SHAPE = (256, 256)  # 256 KiB of float32: pooled


def _pool_x():
    return np.linspace(-1, 1, _POOL_SHAPE[0] * _POOL_SHAPE[1], dtype=np.float32).reshape(_POOL_SHAPE)


@pytest.mark.filterwarnings("ignore:Setting the strides:DeprecationWarning")
@pytest.mark.parametrize("trick", ["strides", "resize and back", "shape and back with new strides"])
def test_pool_never_reuses_an_array_whose_layout_was_changed(pooled, trick):
    x = _pool_x()
    y = pooled.relu_forward(x)
    if trick == "strides":
        y.strides = (4, 4 * _POOL_SHAPE[0])  # same shape and memory, transposed layout
    elif trick == "resize and back":
        y.resize((10,), refcheck=False)
        y.resize(_POOL_SHAPE, refcheck=False)  # the right shape again, in other memory
    else:
        y.shape = (_POOL_SHAPE[1], _POOL_SHAPE[0])
        y.strides = (4, 4 * _POOL_SHAPE[1])
        y.shape = _POOL_SHAPE[::-1]
    del y
    z = pooled.relu_forward(x)
    assert z.shape == _POOL_SHAPE and z.flags.c_contiguous and z.strides == (4 * _POOL_SHAPE[1], 4)
    np.testing.assert_array_equal(z, np.maximum(x, 0))


@pytest.mark.parametrize("backend_name", ["numpy", "pybind11", "cffi"])
@pytest.mark.parametrize("name, value, message", [
    ("lr", float("nan"), "adam_step: lr must be a finite number >= 0, got nan"),
    ("lr", -1e-3, "adam_step: lr must be a finite number >= 0, got -0.001"),
    ("beta1", 1.0, r"adam_step: beta1 must be in \[0, 1\), got 1.0"),
    ("beta2", float("nan"), r"adam_step: beta2 must be in \[0, 1\), got nan"),
    ("eps", float("inf"), "adam_step: eps must be a finite number >= 0, got inf"),
    ("weight_decay", float("nan"), "adam_step: weight_decay must be a finite number >= 0, got nan"),
])
def test_adam_step_refuses_non_finite_or_out_of_range_hyperparameters(backend_name, name, value, message):
    import tinygrad_rep as tr
    before = tr.get_backend()
    tr.set_backend(backend_name)
    try:
        be = tr.backend.current()
        p, g = np.zeros(4, np.float32), np.ones(4, np.float32)
        m, v = np.zeros(4, np.float32), np.zeros(4, np.float32)
        kw = dict(lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0)
        kw[name] = value
        with pytest.raises(ValueError, match=message):
            be.adam_step(p, g, m, v, 1, kw["lr"], kw["beta1"], kw["beta2"], kw["eps"], kw["weight_decay"], False)
        assert not p.any()  # nothing written
    finally:
        tr.set_backend(before)
