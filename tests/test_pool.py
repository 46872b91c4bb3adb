"""The output pool never hands back an array whose metadata a user changed: reshaped or retyped
in place (`y.shape = ...`, `y.dtype = ...`), resized with refcheck=False (which moves its memory)
or made read-only. Each case once came back wrong-shaped, or made a C kernel write past the end."""
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import tinygrad_rep as tr
from tinygrad_rep.backend import pool

BACKENDS = ["pybind11", "cffi"]
SHAPE = (256, 256)  # 256 KiB of float32: large enough to be pooled


@pytest.fixture(params=BACKENDS)
def kernels(request):
    before = tr.get_backend()
    tr.set_backend(request.param)
    pool.clear()
    was = pool.set_enabled(True)
    yield tr.backend.current()
    pool.set_enabled(was)
    tr.set_backend(before)


def _x():
    return np.linspace(-1, 1, SHAPE[0] * SHAPE[1], dtype=np.float32).reshape(SHAPE)


def test_the_pool_reuses_a_free_array(kernels):
    if not pool.enabled:
        pytest.skip("pool calibration failed on this interpreter")
    y = kernels.relu_forward(_x())
    address = y.ctypes.data
    del y
    assert kernels.relu_forward(_x()).ctypes.data == address


@pytest.mark.parametrize("change", ["shape", "dtype", "readonly"])
def test_a_changed_array_is_not_reused(kernels, change):
    x = _x()
    y = kernels.relu_forward(x)
    if change == "shape":
        y.shape = (SHAPE[0] * SHAPE[1],)
    elif change == "dtype":
        y.dtype = np.int32
    else:
        y.flags.writeable = False
    del y
    z = kernels.relu_forward(x)
    assert z.shape == SHAPE and z.dtype == np.float32 and z.flags.writeable
    np.testing.assert_array_equal(z, np.maximum(x, 0))


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_resized_array_is_not_written_past_its_end(backend):
    # in a child process: before the fix the kernel wrote 256 KiB into a 40-byte buffer and the
    # process aborted
    code = textwrap.dedent(f"""
        import numpy as np, tinygrad_rep as tr
        from tinygrad_rep.backend import pool
        tr.set_backend({backend!r})
        pool.set_enabled(True)
        be = tr.backend.current()
        x = np.linspace(-1, 1, {SHAPE[0] * SHAPE[1]}, dtype=np.float32).reshape({SHAPE})
        for _ in range(3):
            y = be.relu_forward(x)
            y.resize((10,), refcheck=False)
            del y
            z = be.relu_forward(x)
            assert z.shape == {SHAPE} and np.array_equal(z, np.maximum(x, 0))
            del z
        print("ok")
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]
