"""The blocked matmul path (packed slabs of A, work items handed out to threads) against numpy_ref.

Every shape is past the small path's limits (matmul_small.c takes C of up to 2^18 elements with
M*N*K up to 2^26), and they sit on and around every boundary the blocked path has: micro-tile
tails of each SIMD level (rows MR = 12/8/6/4, columns NR = 32/24/16/8/4), the K block (512 for
AVX-512 float32, 384 for float64, 256 otherwise, split evenly), several A slabs (split along rows
and along K: TINYGRAD_REP_MM_SLAB_BYTES shrinks the slab from its 8 MB in the child runs), narrow
C (work items cut along rows), the halved work items that end a slab, both transposes,
accumulate and batches (whole matrices per thread, or threads sharing each matrix). Each result
is checked against numpy_ref within the float rounding bound of a length-K dot product, and is
the same bit for bit with 1, 2 and 3 threads (every C element is computed by one thread in one
fixed order) through both bindings.
TINYGRAD_REP_MM_SIMD caps the SIMD level (avx2, default), so one machine runs every kernel set.
The checks run in this process with the default slab, and in child processes with small slabs.
"""
import itertools
import os
import sys

import numpy as np
import pytest

from tinygrad_rep.backend import numpy_ref as ref

from test_kernels import BACKENDS, restore_threads, run_child  # noqa: E402, F401  (same module files, child checks; a fixture)
from test_matmul_small import SMALL_MAX, SMALL_MAX_C   # the small path's limits, read from matmul_small.c

# (M, N, K): tile tails, K block edges, narrow C, several slabs. Each runs with every
# combination of transposes and accumulate (A and B alternate between the shapes' roles).
SHAPES = [
    (521, 509, 257),     # one past a 256 K block, tails in M and N at every level
    (528, 528, 512),     # a multiple of every MR, one K block of 512 (two of 256)
    (515, 520, 385),     # one past a 384 K block
    (520, 513, 1025),    # three K blocks of 512 (evenly 342), N one past a float32 panel
    (13, 20200, 300),    # few rows: one or two row tiles, many column items
    (20200, 17, 300),    # few columns: one column item, cut along rows
    (600, 600, 700),
]
DTYPES = [np.float32, np.float64]
# pybind11 at every thread count (3 > cores: uneven shares), cffi (the same C) at two
RUNS = [("pybind11", 1), ("pybind11", 2), ("pybind11", 3), ("cffi", 2)]


def operands(rng, M, N, K, batch, trans_a, trans_b, dtype):
    lead = () if batch is None else (batch,)
    a = rng.standard_normal(lead + ((K, M) if trans_a else (M, K))).astype(dtype)
    b = rng.standard_normal(lead + ((N, K) if trans_b else (K, N))).astype(dtype)
    start = rng.standard_normal(lead + (M, N)).astype(dtype)
    return a, b, start


def past_the_small_path(M, N, K):
    return M * N > SMALL_MAX_C or M * N * K > SMALL_MAX


def check(M, N, K, dtype, trans_a, trans_b, accumulate, batch=None, seed=0):
    """Both bindings at every thread count: within the rounding bound of numpy_ref, and every
    result the same bits as the first."""
    assert past_the_small_path(M, N, K), "the small path would take this shape"
    rng = np.random.default_rng(seed)
    a, b, start = operands(rng, M, N, K, batch, trans_a, trans_b, dtype)
    want = ref.matmul(a, b, out=start.copy() if accumulate else None, trans_a=trans_a, trans_b=trans_b,
                      accumulate=accumulate)
    opa = np.swapaxes(a, -1, -2) if trans_a else a
    opb = np.swapaxes(b, -1, -2) if trans_b else b
    bound = np.abs(opa.astype(np.float64)) @ np.abs(opb.astype(np.float64)) + (np.abs(start) if accumulate else 0)
    eps = np.finfo(dtype).eps
    first = None
    for name, n in RUNS:
        be = BACKENDS[name]
        be.set_num_threads(n)
        out = start.copy() if accumulate else None
        got = be.matmul(a, b, out=out, trans_a=trans_a, trans_b=trans_b, accumulate=accumulate)
        assert got.shape == want.shape and got.dtype == want.dtype
        assert np.all(np.abs(got - want) <= 2 * (K + 2) * eps * bound + 1e-30), (name, n)
        if first is None:
            first = got
        else:
            assert np.array_equal(got, first), f"{name} with {n} threads differs from 1 thread"


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_blocked_matmul_tails_and_blocks(shape, dtype, restore_threads):
    for i, (trans_a, trans_b, accumulate) in enumerate(itertools.product([False, True], repeat=3)):
        check(*shape, dtype, trans_a, trans_b, accumulate, seed=i)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape, batch", [((521, 509, 100), 4),     # under 2^25: whole matrices per thread
                                          ((600, 500, 300), 3)],    # larger: threads share each matrix
                         ids=["per-thread", "shared"])
def test_blocked_matmul_batches(shape, batch, dtype, restore_threads):
    check(*shape, dtype, trans_a=False, trans_b=True, accumulate=False, batch=batch)
    check(*shape, dtype, trans_a=True, trans_b=False, accumulate=True, batch=batch, seed=1)


@pytest.mark.parametrize("level", ["highest", "avx2", "default"])
def test_blocked_matmul_at_every_simd_level_over_small_slabs(level):
    """TINYGRAD_REP_MM_SIMD caps the level the matmul kernels dispatch to and
    TINYGRAD_REP_MM_SLAB_BYTES shrinks the A slab (both read once, at the first matmul), so the
    AVX2 and portable kernel sets run the same checks here, over many slabs: split along rows
    and along K (64 KB holds a few row tiles of one K block)."""
    env = dict(os.environ, TINYGRAD_REP_MM_SLAB_BYTES="65536")
    if level != "highest":
        env["TINYGRAD_REP_MM_SIMD"] = level
    run = run_child(["-m", "pytest", "-q", "-p", "no:cacheprovider", __file__,
                     "-k", "tails_and_blocks and (521x509 or 20200x17-float32) or shared-float64"], env=env)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert " passed" in run.stdout


@pytest.mark.parametrize("preset, want", [({}, "PASSIVE"), ({"OMP_WAIT_POLICY": "active"}, "active"),
                                          ({"GOMP_SPINCOUNT": "1000"}, None)])
def test_openmp_threads_wait_passively_unless_the_user_chose(preset, want):
    """Importing the package sets OMP_WAIT_POLICY=PASSIVE before the extensions load libgomp (so
    our idle threads leave the cores to numpy's and torch's), unless a wait policy was set."""
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    env.update(preset)
    run = run_child(["-c", "import os, tinygrad_rep.backend.pybind\n"
                           "print(os.environ.get('OMP_WAIT_POLICY'))"], env=env)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.split()[0] == str(want)


_PIN_PROBE = """
import os, threading, numpy as np
from tinygrad_rep.backend import pybind as be
def masks():
    out = {}
    for tid in os.listdir('/proc/self/task'):
        with open(f'/proc/self/task/{tid}/status') as f:
            for line in f:
                if line.startswith('Cpus_allowed_list'):
                    out[int(tid)] = line.split()[1]
    return out
before = os.sched_getaffinity(0)
be.set_num_threads(2)
a = np.ones((512, 512), np.float32)
c = be.matmul(a, a)
assert float(c[0, 0]) == 512.0
seen = []
t = threading.Thread(target=lambda: seen.append(os.sched_getaffinity(0)))
t.start(); t.join()
print(os.sched_getaffinity(0) == before, seen[0] == before,
      sum(1 for m in masks().values() if '-' not in m and ',' not in m))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux") or len(os.sched_getaffinity(0)) < 2,
                    reason="pinning is Linux-only and needs 2 CPUs")
@pytest.mark.parametrize("setting, pinned_workers", [(None, 1), ("0", 0)])
def test_large_threaded_matmul_pins_its_team_for_the_call_only(setting, pinned_workers):
    """A threaded product of 2**27 multiply-adds pins its OpenMP worker to a CPU of its own; the
    calling thread's mask is back as it was afterwards, and a thread it starts then is not
    confined. TINYGRAD_REP_PIN_THREADS=0 leaves every thread free."""
    env = {k: v for k, v in os.environ.items() if k != "TINYGRAD_REP_PIN_THREADS"}
    if setting is not None:
        env["TINYGRAD_REP_PIN_THREADS"] = setting
    run = run_child(["-c", _PIN_PROBE], env=env)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.split() == ["True", "True", str(pinned_workers)]


@pytest.mark.parametrize("name", sorted(BACKENDS))
def test_packed_matmuls_from_many_python_threads_match_sequential_runs(name, restore_threads):
    """The packing buffer kept between calls is taken by one call at a time: products of
    different sizes run at once from four Python threads (the GIL is released in C), so calls
    find it busy, take it, or grow it, and each result equals the same product run alone."""
    import threading
    be = BACKENDS[name]
    be.set_num_threads(2)
    rng = np.random.default_rng(7)
    shapes = [(600, 300, 600), (520, 700, 530), (1024, 64, 300), (700, 500, 410)]  # past the small path
    pairs = [(rng.standard_normal((m, k)).astype(np.float32), rng.standard_normal((k, n)).astype(np.float32))
             for m, k, n in shapes]
    want = [be.matmul(a, b) for a, b in pairs]
    got = [[] for _ in pairs]

    def work(i):
        for _ in range(6):
            got[i].append(be.matmul(*pairs[i]))
    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(pairs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for w, results in zip(want, got):
        assert len(results) == 6
        for r in results:
            assert np.array_equal(r.view(np.uint32), w.view(np.uint32))
