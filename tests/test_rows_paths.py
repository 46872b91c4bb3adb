"""The paths of the memory-bound kernels (ReLU, softmax and log-softmax, forward and backward)
against the numpy reference, through both bindings, at every SIMD level and with and without
streaming stores.

Outputs much larger than the last-level cache are written with streaming (non-temporal) stores
(csrc/softmax_x86.c, stream_stores), and the float32 kernels have AVX-512, AVX2 and portable
paths (row_level). TINYGRAD_REP_STREAM_BYTES and TINYGRAD_REP_ROW_SIMD choose between them, once
per process, so each combination runs in a child process (this file run as a script) on arrays
small enough to be quick: row lengths around every vector tail, inputs and outputs at every
float offset from a 64-byte line (streaming stores start at the first whole line, and the
forward kernels write a row while they compute the next), NaN, +inf, -inf and all -inf rows, -0,
and one problem large enough to be split over 2 threads. The child saves every result; the
parent checks them against numpy_ref and checks that neither streaming, nor the thread count,
nor the binding changes a single bit. A last child runs the default threshold on outputs just
below and at it.
"""
import os
import sys
import tempfile
import zlib

import numpy as np
import pytest

from tinygrad_rep.backend import numpy_ref as ref

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_kernel_fuzz import error_scale, results_match  # noqa: E402
from test_kernels import assert_close, run_child  # noqa: E402

KERNELS = ("relu_forward", "relu_backward", "softmax_forward", "softmax_backward",
           "log_softmax_forward", "log_softmax_backward")
COLS = [1, 2, 7, 8, 9, 15, 16, 17, 31, 32, 33, 47, 48, 63, 64, 65, 100, 1000, 1027]
ROWS = [1, 2, 5]
DEFAULT_THRESHOLD = 8 << 20  # TR_STREAM_MIN_BYTES in csrc/softmax_x86.c


def _at_offset(a, offset):
    """A C-contiguous copy of a whose data starts `offset` elements (modulo a 64-byte line) past
    a 64-byte boundary."""
    offset %= 64 // a.itemsize
    buf = np.empty(a.size + 32, dtype=a.dtype)
    skip = (-buf.ctypes.data % 64) // a.itemsize + offset
    view = buf[skip:skip + a.size].reshape(a.shape)
    view[...] = a
    assert view.ctypes.data % 64 == offset * a.itemsize
    return view


def cases():
    """[(name, dtype, shape, out offset, in offset, threads)]: deterministic, shared by parent and child."""
    out, k = [], 0
    for dtype in ("float32", "float64"):
        for rows in ROWS:
            for cols in COLS if dtype == "float32" else COLS[::4]:
                out.append((f"{dtype}-{rows}x{cols}", dtype, (rows, cols), k % 16, (k * 7) % 16, 1))
                k += 1
    for threads in (1, 2):  # above the 65536 elements from which the kernels use threads
        out.append((f"float32-300x257-t{threads}", "float32", (300, 257), 5, 11, threads))
    return out


def inputs(name, dtype, shape):
    """x (with special values in its first rows) and grad for a case; the softmax backward inputs
    are the reference's forward outputs of x."""
    rng = np.random.default_rng(zlib.crc32(f"{name.split('-t')[0]}".encode()))
    x = (rng.standard_normal(shape) * 4).astype(dtype)
    g = rng.standard_normal(shape).astype(dtype)
    rows, cols = shape
    if rows >= 5:
        x[1, rng.integers(cols)] = np.nan
        x[2, rng.integers(cols)] = np.inf
        x[3, :] = -np.inf
        x[4, rng.integers(cols, size=max(1, cols // 3))] = -np.inf
    if x.size > 1:
        x.flat[rng.integers(x.size)] = -0.0
    return x, g


def compute(be, name, dtype, shape, out_off, in_off):
    """{kernel: result} of one backend on one case, inputs and outputs at the case's offsets."""
    x, g = inputs(name, dtype, shape)
    y = {"softmax": ref.softmax_forward(x), "log_softmax": ref.log_softmax_forward(x)}
    res = {}
    for kernel in KERNELS:
        out = _at_offset(np.zeros(shape, dtype), out_off)
        xi, gi = _at_offset(x, in_off), _at_offset(g, in_off)
        if kernel == "relu_forward":
            got = be.relu_forward(xi, out)
        elif kernel == "relu_backward":
            got = be.relu_backward(xi, gi, out)
        elif kernel.endswith("_forward"):
            got = getattr(be, kernel)(xi, out)
        else:
            op = kernel[:-len("_backward")]
            got = getattr(be, kernel)(_at_offset(y[op], in_off), gi, out)
        assert got is out
        res[kernel] = np.array(got)
    return res


def child_main(path):
    """Run every case with both bindings and save the results to `path` (an .npz)."""
    from tinygrad_rep.backend import cffi as cffi_backend
    from tinygrad_rep.backend import pybind as pybind_backend
    saved = {}
    for bname, be in (("pybind11", pybind_backend), ("cffi", cffi_backend)):
        for name, dtype, shape, out_off, in_off, threads in cases():
            be.set_num_threads(threads)
            for kernel, value in compute(be, name, dtype, shape, out_off, in_off).items():
                saved[f"{bname}/{name}/{kernel}"] = value
        be.set_num_threads(1)
    np.savez(path, **saved)


def threshold_main(path):
    """Outputs just below and at the default streaming threshold (relu, softmax forward)."""
    from tinygrad_rep.backend import pybind as be
    n = DEFAULT_THRESHOLD // 4
    saved = {}
    for label, shape in (("at", (n // 1024, 1024)), ("below", (n // 1024 - 1, 1024))):
        x, _ = inputs(label, "float32", shape)
        out = _at_offset(np.zeros(shape, np.float32), 3)
        saved[f"relu/{label}"] = np.array(be.relu_forward(x, out))
        saved[f"softmax/{label}"] = np.array(be.softmax_forward(x, out))
    np.savez(path, **saved)


_RUNS = {}


def run(level, stream):
    """The child's results for a SIMD level (None: the CPU's best) and streaming on or off."""
    key = (level, stream)
    if key not in _RUNS:
        env = dict(os.environ)
        env.pop("TINYGRAD_REP_ROW_SIMD", None)
        if level is not None:
            env["TINYGRAD_REP_ROW_SIMD"] = level
        env["TINYGRAD_REP_STREAM_BYTES"] = "0" if stream else str(1 << 62)
        folder = tempfile.mkdtemp(prefix="tr_rows_paths_")
        path = os.path.join(folder, "out.npz")
        proc = run_child([os.path.abspath(__file__), "child", path], env=env, timeout=300)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        with np.load(path) as data:
            _RUNS[key] = {k: data[k] for k in data.files}
        os.remove(path)
        os.rmdir(folder)
    return _RUNS[key]


def bits(a):
    return a.view(np.uint32 if a.dtype == np.float32 else np.uint64)


LEVELS = [None, "avx2", "default"]


@pytest.mark.parametrize("level", LEVELS)
def test_streaming_stores_match_the_reference_at_every_level(level):
    """Streaming on: every kernel, both bindings, against numpy_ref (ReLU exactly; the others
    within the rounding error the fuzz tests allow, see test_kernel_fuzz.error_scale)."""
    got = run(level, True)
    for name, dtype, shape, out_off, in_off, threads in cases():
        x, g = inputs(name, dtype, shape)
        sy, ly = ref.softmax_forward(x), ref.log_softmax_forward(x)
        args = {"relu_forward": (x,), "relu_backward": (x, g), "softmax_forward": (x,),
                "log_softmax_forward": (x,), "softmax_backward": (sy, g), "log_softmax_backward": (ly, g)}
        for kernel in KERNELS:
            want = getattr(ref, kernel)(*args[kernel])
            scale = error_scale({"kernel": kernel}, args[kernel], {})
            for bname in ("pybind11", "cffi"):
                value = got[f"{bname}/{name}/{kernel}"]
                if kernel.startswith("relu"):
                    assert np.array_equal(bits(value), bits(want)), (bname, name, kernel)
                else:
                    assert results_match(value, want, scale) is None, (bname, name, kernel)


@pytest.mark.parametrize("level", LEVELS)
def test_streaming_threads_and_binding_change_no_bit(level):
    """The same results, bit for bit, with and without streaming stores, with 1 and 2 threads,
    and through either binding."""
    on, off = run(level, True), run(level, False)
    assert on.keys() == off.keys()
    for key in on:
        assert np.array_equal(bits(on[key]), bits(off[key])), key
        if key.startswith("pybind11/"):
            assert np.array_equal(bits(on[key]), bits(on["cffi/" + key[len("pybind11/"):]])), key
    for kernel in KERNELS:
        one = on[f"pybind11/float32-300x257-t1/{kernel}"]
        assert np.array_equal(bits(one), bits(on[f"pybind11/float32-300x257-t2/{kernel}"])), kernel


def test_outputs_around_the_default_streaming_threshold():
    """With the default threshold, an output of exactly TR_STREAM_MIN_BYTES streams and one a row
    smaller does not; both give the reference's results."""
    env = dict(os.environ)
    env.pop("TINYGRAD_REP_STREAM_BYTES", None)
    folder = tempfile.mkdtemp(prefix="tr_rows_paths_")
    path = os.path.join(folder, "out.npz")
    proc = run_child([os.path.abspath(__file__), "threshold", path], env=env, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    with np.load(path) as data:
        got = {k: data[k] for k in data.files}
    os.remove(path)
    os.rmdir(folder)
    n = DEFAULT_THRESHOLD // 4
    for label, shape in (("at", (n // 1024, 1024)), ("below", (n // 1024 - 1, 1024))):
        x, _ = inputs(label, "float32", shape)
        assert np.array_equal(bits(got[f"relu/{label}"]), bits(ref.relu_forward(x)))
        assert_close(got[f"softmax/{label}"], ref.softmax_forward(x), np.float32)


if __name__ == "__main__":
    {"child": child_main, "threshold": threshold_main}[sys.argv[1]](sys.argv[2])
