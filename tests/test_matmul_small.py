"""matmul's small-problem path (csrc/matmul_small.c) through both bindings, at every SIMD level.

Problems up to TR_MM_SMALL_MAX multiply-adds (and TR_MM_SMALL_MAX_C elements of C) take register
tiles that read A and B in place; the tests cover every tile the path can pick (each row height of
each panel width, the masked last vector, several column panels), both transpose flags,
accumulate, batches, the size limits on both sides, and the order of operations the file
promises: each element of C is one chain of fused multiply-adds over k, so it is bitwise the same
whatever the tile, the thread count, the batch around it, and the SIMD level (AVX-512 or AVX2; the
portable loop rounds each product and is only close). TINYGRAD_REP_MM_SIMD caps the level: the checks are rerun under each cap in
a child process (the level is decided once per process).

Tolerance: against a float64 product, |got - want| <= c (K + 2) eps (|op(A)| |op(B)| + |C0|),
c = 1 for float32 (the float64 product is exact enough), c = 2 for float64 (the reference has
rounding errors of its own).
"""
import itertools
import json
import os
import re

import numpy as np
import pytest

from test_kernels import BACKENDS, ROOT, restore_threads, run_child  # noqa: F401  (restore_threads: a fixture)

SOURCE = (ROOT / "csrc" / "matmul_small.c").read_text()
SMALL_MAX = int(float(re.search(r"#define TR_MM_SMALL_MAX \(([\d.e+]+)\)", SOURCE).group(1)))
SMALL_MAX_C = int(float(re.search(r"#define TR_MM_SMALL_MAX_C \(([\d.e+]+)\)", SOURCE).group(1)))
PAR_MIN = int(float(re.search(r"#define TR_MM_SMALL_PAR_MIN \(([\d.e+]+)\)", SOURCE).group(1)))
DTYPES = [np.float32, np.float64]
FLAGS = list(itertools.product([False, True], repeat=3))   # (trans_a, trans_b, accumulate)


@pytest.fixture(params=sorted(BACKENDS))
def be(request):
    return BACKENDS[request.param]


def operands(rng, M, N, K, trans_a, trans_b, dtype, batch=None):
    lead = () if batch is None else (batch,)
    a = rng.standard_normal(lead + ((K, M) if trans_a else (M, K))).astype(dtype)
    b = rng.standard_normal(lead + ((N, K) if trans_b else (K, N))).astype(dtype)
    c0 = rng.standard_normal(lead + (M, N)).astype(dtype)
    return a, b, c0


def check(be, a, b, c0, trans_a, trans_b, accumulate, rows=slice(None)):
    """be's product against the float64 one (in `rows` of C), within the K-scaled bound;
    returns it."""
    dtype = a.dtype
    out = c0.copy() if accumulate else np.full(c0.shape, np.nan, dtype)
    got = be.matmul(a, b, out=out, trans_a=trans_a, trans_b=trans_b, accumulate=accumulate)
    assert got is out and got.dtype == dtype
    opa = np.swapaxes(a, -1, -2) if trans_a else a
    opb = np.swapaxes(b, -1, -2) if trans_b else b
    K = opa.shape[-1]
    a64, b64 = opa[..., rows, :].astype(np.float64), opb.astype(np.float64)
    c64 = c0[..., rows, :].astype(np.float64)
    want = a64 @ b64 + (c64 if accumulate else 0)
    bound = np.abs(a64) @ np.abs(b64) + (np.abs(c64) if accumulate else 0)
    c = 1 if dtype == np.float32 else 2
    err = np.abs(got[..., rows, :].astype(np.float64) - want)
    limit = c * (K + 2) * np.finfo(dtype).eps * bound + np.finfo(dtype).tiny
    assert np.all(err <= limit), (be.NAME, dtype, a.shape, b.shape, trans_a, trans_b, accumulate,
                                  float((err / limit).max()))
    return got


# Column counts around every vector width (4, 8, 16 lanes) and panel width (up to 4 vectors of
# 16 floats / 8 doubles): full and masked last vectors, one and several panels.
COLS = [2, 3, 4, 5, 7, 8, 9, 12, 15, 16, 17, 24, 31, 32, 33, 40, 47, 48, 49, 63, 64, 65, 80, 97, 129]


@pytest.mark.parametrize("dtype", DTYPES)
def test_every_tile_height_and_width(be, dtype):
    """M = 2..40 splits into row tiles of every height up to 16 for each panel width; the flags
    and K cycle so every combination meets many shapes."""
    rng = np.random.default_rng(1)
    ks = itertools.cycle([1, 2, 3, 8, 17, 40])
    flags = itertools.cycle(FLAGS)
    for M in range(2, 41):
        for N in COLS:
            ta, tb, acc = next(flags)
            a, b, c0 = operands(rng, M, N, next(ks), ta, tb, dtype)
            check(be, a, b, c0, ta, tb, acc)


SHAPES = [(2, 2, 1), (2, 3, 5), (16, 16, 16), (32, 32, 32), (64, 64, 64), (33, 65, 17),
          (12, 6, 64), (6, 96, 7), (32, 64, 10), (64, 10, 32), (32, 10, 64), (31, 33, 129)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("trans_a,trans_b,accumulate", FLAGS)
def test_shapes_the_models_use_with_every_flag(be, dtype, trans_a, trans_b, accumulate):
    """Square sizes, the tiny MLP's forward and backward products, odd sizes; 2-D and batched."""
    rng = np.random.default_rng(2)
    for M, N, K in SHAPES:
        for batch in (None, 3):
            a, b, c0 = operands(rng, M, N, K, trans_a, trans_b, dtype, batch)
            check(be, a, b, c0, trans_a, trans_b, accumulate)


@pytest.mark.parametrize("dtype", DTYPES)
def test_both_sides_of_the_size_limits(be, dtype):
    """The largest problems the small path takes (M*N*K and M*N at their limits) and the next
    sizes up (the packed path), plus the matrix-vector products it leaves to matmul.c. Large
    products are checked on a sample of rows, including the first and last."""
    rng = np.random.default_rng(3)
    N = 256
    M = SMALL_MAX_C // N
    K = SMALL_MAX // (M * N)
    rows = np.r_[0:7, rng.integers(0, M + 1, 20), M - 7:M]
    for m, n, k in [(M, N, K), (M, N, K + 1), (M, N, 3), (M + 1, N, 3), (1, 33, 17), (33, 1, 17), (1, 1, 5)]:
        for ta, tb, acc in [(False, False, False), (True, True, True)]:
            a, b, c0 = operands(rng, m, n, k, ta, tb, dtype)
            check(be, a, b, c0, ta, tb, acc, rows=rows[rows < m])


@pytest.mark.parametrize("dtype", DTYPES)
def test_each_element_is_one_chain_whatever_the_tiling(be, dtype):
    """Rows of C computed inside a tall product, a batch, or alone: bitwise the same (the tiles
    and the batch around an element do not change its operations)."""
    rng = np.random.default_rng(4)
    for ta, tb in itertools.product([False, True], repeat=2):
        a, b, c0 = operands(rng, 37, 70, 23, ta, tb, dtype, batch=4)
        whole = be.matmul(a, b, trans_a=ta, trans_b=tb)
        for i in range(4):
            one = be.matmul(a[i], b[i], trans_a=ta, trans_b=tb)
            assert np.array_equal(one, whole[i])
            for r0, r1 in [(0, 2), (5, 18), (30, 37)]:
                part = be.matmul(a[i][:, r0:r1] if ta else a[i][r0:r1], b[i], trans_a=ta, trans_b=tb)
                assert np.array_equal(part, whole[i][r0:r1])
        acc = c0.copy()
        be.matmul(a, b, out=acc, trans_a=ta, trans_b=tb, accumulate=True)
        assert np.array_equal(acc, c0 + whole)   # C + (the chain), one rounding


@pytest.mark.parametrize("dtype", DTYPES)
def test_results_do_not_depend_on_thread_count(be, dtype, restore_threads):
    """Products with enough work for several threads (one matrix split by rows, a batch split
    by matrices) are bitwise the same with 1, 2 and 3 threads."""
    rng = np.random.default_rng(5)
    M, N, K = 200, 70, PAR_MIN // (200 * 70) + 1
    cases = [operands(rng, M, N, K, False, True, dtype)[:2] + (False, True),
             operands(rng, 64, 150, 64, True, False, dtype, batch=5)[:2] + (True, False)]
    for a, b, ta, tb in cases:
        results = []
        for n in (1, 2, 3):
            be.set_num_threads(n)
            results.append(be.matmul(a, b, trans_a=ta, trans_b=tb))
        assert all(np.array_equal(results[0], r) for r in results[1:])
        check(be, a, b, np.zeros_like(results[0]), ta, tb, False)


# ---------------------------------------------------------------- every SIMD level

LEVEL_PRODUCTS = """
import hashlib, json, sys
import numpy as np
from tinygrad_rep.backend import pybind
out = {}
rng = np.random.default_rng(6)
for dt in ("float32", "float64"):
    for (M, N, K, ta, tb) in [(16, 16, 16, 0, 0), (37, 70, 23, 1, 0), (64, 33, 64, 0, 1), (5, 129, 9, 1, 1)]:
        a = rng.standard_normal((K, M) if ta else (M, K)).astype(dt)
        b = rng.standard_normal((N, K) if tb else (K, N)).astype(dt)
        c = pybind.matmul(a, b, trans_a=bool(ta), trans_b=bool(tb))
        out[f"{dt} {M}x{N}x{K} {ta}{tb}"] = c.tolist()
print(json.dumps(out))
"""


def products_at(level):
    env = dict(os.environ)
    env.pop("TINYGRAD_REP_MM_SIMD", None)
    if level is not None:
        env["TINYGRAD_REP_MM_SIMD"] = level
    run = run_child(["-c", LEVEL_PRODUCTS], env=env)
    assert run.returncode == 0, run.stderr[-3000:]
    return {k: np.array(v) for k, v in json.loads(run.stdout).items()}


def test_avx512_and_avx2_tiles_agree_bitwise_and_the_portable_loop_runs():
    """The AVX-512 and AVX2 tiles run the same chains (bitwise equal results); the portable
    loop, without fused multiply-adds, rounds differently somewhere, which shows the cap really
    switches the code (on a CPU with AVX2 + FMA; on one without, all three are the portable loop)."""
    top, avx2, portable = products_at(None), products_at("avx2"), products_at("default")
    for key in top:
        assert np.array_equal(top[key], avx2[key]), key
        np.testing.assert_allclose(portable[key], avx2[key], rtol=1e-4 if "float32" in key else 1e-12,
                                   atol=1e-4 if "float32" in key else 1e-12)
    probe = ("import sys; from tinygrad_rep import _C; "
             "sys.exit(0 if _C.simd_level() in ('avx2', 'avx512f') else 1)")
    if run_child(["-c", probe]).returncode == 0:
        assert any(not np.array_equal(portable[k], avx2[k]) for k in top)


@pytest.mark.parametrize("level", ["avx2", "default"])
def test_every_check_at_each_simd_level(level):
    """The checks above, rerun with TINYGRAD_REP_MM_SIMD capping the level."""
    env = dict(os.environ, TINYGRAD_REP_MM_SIMD=level)
    run = run_child(["-m", "pytest", "-q", "-p", "no:cacheprovider", __file__,
                     "-k", "not simd_level and not bitwise_and_the_portable"], env=env)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert " passed" in run.stdout and " failed" not in run.stdout
