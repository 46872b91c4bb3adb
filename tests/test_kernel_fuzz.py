"""Fuzz every kernel through both bindings: the answer is the numpy reference's or its exception.

Hypothesis draws batches of cases: random shapes (0-size and mismatched ones included), strides
(sliced, transposed, reversed, read-only and misaligned views), dtypes (float16/32/64, int32, bool), NaN/inf and
extreme values, and in-range, too-large and negative indices, thrown at every kernel of both the
pybind11 and the cffi backend. Each batch runs in a child process (this file run as a script),
so a crash in C fails the test instead of killing pytest; the child reports one line per case,
and when it dies the cases it did not report are rerun one per process to name the culprit.

A case passes when the backend gives the reference's result (same shape and dtype, NaN and inf
in the same places, finite values close relative to the size of the computation) or raises the
same exception class as the reference.
"""
import json
import math
import os
import subprocess
import sys
import warnings

import numpy as np

KERNEL_NAMES = [
    "matmul", "relu_forward", "relu_backward", "softmax_forward", "softmax_backward",
    "log_softmax_forward", "log_softmax_backward", "cross_entropy_forward",
    "cross_entropy_backward", "embedding_gather", "embedding_scatter_add",
]
FLOATS = ["float32", "float64"]
WRONG_DTYPES = ["float16", "int32", "bool", "float32", "float64"]
INDEX_DTYPES = ["int64", "int64", "int32", "uint8", "int16", "bool", "float64"]
SPECIALS = [np.nan, np.inf, -np.inf, 0.0, -0.0, 1000.0, -1000.0, 1e-40, 88.0, -104.0]
BATCH = 40          # cases per child process
TIMEOUT = 120       # seconds for one child (a hang is a failure too)


# ---------------------------------------------------------------- building a case's arguments
# A case is plain JSON (so it can be sent to a child and printed on failure). Array arguments are
# specs that build_array turns into arrays deterministically from their seed.

def build_array(spec):
    if spec is None:
        return None
    rng = np.random.default_rng(spec["seed"])
    shape, dtype, layout = tuple(spec["shape"]), np.dtype(spec["dtype"]), spec["layout"]
    if "index" in spec:  # an index array: values in [0, upper), maybe one out of range
        upper = spec["index"]["upper"]
        vals = np.asarray(rng.integers(0, max(upper, 1), size=shape))  # asarray: 0-d too
        if vals.size and spec["index"]["mode"] == "high":
            vals.flat[rng.integers(vals.size)] = upper + rng.integers(0, 3)
        elif vals.size and spec["index"]["mode"] == "neg":
            vals.flat[rng.integers(vals.size)] = -1 - rng.integers(0, 3)
        if dtype.kind == "u":
            vals = np.abs(vals)
        base = vals.astype(dtype) if dtype.kind != "b" else vals > 0
    elif dtype.kind == "f":
        vals = np.asarray(rng.standard_normal(shape) * spec["scale"])
        if spec["fill"] == "special" and vals.size:
            pick = np.asarray(rng.random(shape) < 0.2)
            vals[pick] = rng.choice(SPECIALS, size=int(pick.sum()))
        with np.errstate(over="ignore"):
            base = vals.astype(dtype)
    elif dtype.kind == "b":
        base = np.asarray(rng.random(shape) < 0.5)
    else:
        base = np.asarray(rng.integers(-5, 5, size=shape)).astype(dtype)
    if layout == "strided" and base.ndim:
        big = np.zeros(shape[:-1] + (2 * shape[-1],), dtype)
        big[..., ::2] = base
        return big[..., ::2]
    if layout == "transposed" and base.ndim >= 2:
        return np.ascontiguousarray(base.T).T
    if layout == "reversed" and base.ndim:
        return np.ascontiguousarray(base[::-1])[::-1]
    if layout == "misaligned":  # data one byte past an aligned address
        buf = np.zeros(base.nbytes + 1, np.uint8)
        view = np.frombuffer(buf.data, dtype=dtype, count=base.size, offset=1).reshape(shape)
        view[...] = base
        return view
    if layout == "readonly":
        base.flags.writeable = False
    return base


def build_args(case):
    """(positional args, keyword args) for the kernel call, freshly built (calls may write)."""
    args = [build_array(s) for s in case["args"]]
    kwargs = {k: (build_array(v) if isinstance(v, dict) else v) for k, v in case["kwargs"].items()}
    return args, kwargs


def error_scale(case, args, kwargs):
    """The size of the numbers behind each result (one value, or one per result), which sets
    how large its rounding error may be: a sum of n terms carries ~n roundings of its largest
    term, and different (equally right) summation orders differ by that much."""
    def amax(x):
        x = np.asarray(x, dtype=np.float64)
        fin = np.abs(x[np.isfinite(x)])
        return float(fin.max()) if fin.size else 0.0

    k = case["kernel"]
    if k == "matmul":
        a, b = args
        K = (a.shape[-2] if kwargs.get("trans_a") else a.shape[-1]) if a.ndim else 1
        out = kwargs.get("out")
        return (K + 2) * max(amax(a), 1) * max(amax(b), 1) + (amax(out) if out is not None else 0)
    if k in ("softmax_forward", "cross_entropy_backward"):
        return max(1.0, amax(args[0]) * (amax(args[2]) if k == "cross_entropy_backward" else 1))
    if k == "log_softmax_forward":
        return max(1.0, 2 * amax(args[0]))
    if k == "cross_entropy_forward":  # (losses, probs, loss)
        return (max(1.0, 2 * amax(args[0])), 1.0, max(1.0, 2 * amax(args[0])))
    if k == "softmax_backward":
        y, g = args
        cols = y.shape[-1] if y.ndim else 1
        return max(1.0, cols * max(amax(g), 1) * max(amax(y), 1) ** 2)
    if k == "log_softmax_backward":
        y, g = args
        cols = y.shape[-1] if y.ndim else 1
        with np.errstate(over="ignore"):
            return max(1.0, cols * max(amax(g), 1) * max(1.0, math.exp(min(amax(y), 700.0))))
    return 1.0  # relu, gather, scatter_add: exact


def results_match(got, want, scale):
    """None when got equals the reference want (within tolerance), else a reason."""
    got = list(got) if isinstance(got, tuple) else [got]
    want = list(want) if isinstance(want, tuple) else [want]
    scales = list(scale) if isinstance(scale, tuple) else [scale] * len(want)
    if len(got) != len(want):
        return f"{len(got)} results, reference has {len(want)}"
    for g, w, scale in zip(got, want, scales):
        if not isinstance(g, np.ndarray) or g.shape != w.shape or g.dtype != w.dtype:
            return f"result {getattr(g, 'shape', g)}/{getattr(g, 'dtype', '')} vs reference {w.shape}/{w.dtype}"
        if not np.array_equal(np.isnan(g), np.isnan(w)):
            return "NaN in different places"
        if not np.array_equal(np.isposinf(g), np.isposinf(w)) or not np.array_equal(np.isneginf(g), np.isneginf(w)):
            return "inf in different places"
        fin = np.isfinite(w)
        rtol = 2e-5 if w.dtype == np.float32 else 1e-12
        if w.dtype.kind == "f" and fin.any():
            err = np.abs(g[fin].astype(np.float64) - w[fin].astype(np.float64))
            allowed = rtol * (np.abs(w[fin].astype(np.float64)) + scale)
            if np.any(err > allowed):
                i = int(np.argmax(err - allowed))
                return f"value {g[fin][i]!r} vs reference {w[fin][i]!r} (allowed error {allowed[i]:.3g})"
    return None


def run_case(case):
    """Run one case against the reference; returns None when it passes, else a reason."""
    from tinygrad_rep.backend import numpy_ref
    backend = __import__(f"tinygrad_rep.backend.{case['backend']}", fromlist=["x"])
    fn_ref, fn = getattr(numpy_ref, case["kernel"]), getattr(backend, case["kernel"])
    args, kwargs = build_args(case)
    try:
        want, want_exc = fn_ref(*args, **kwargs), None
    except Exception as e:  # noqa: BLE001 - any reference exception is the expected outcome
        want, want_exc = None, e
    args2, kwargs2 = build_args(case)
    try:
        got, got_exc = fn(*args2, **kwargs2), None
    except Exception as e:  # noqa: BLE001
        got, got_exc = None, e
    if want_exc is not None or got_exc is not None:
        if type(want_exc) is not type(got_exc):
            return f"reference raised {want_exc!r}, backend raised {got_exc!r}"
        return None
    return results_match(got, want, error_scale(case, args, kwargs))


def loaded_extensions():
    """{module name: file} of the package and both extension modules this process imported."""
    import tinygrad_rep
    from tinygrad_rep import _C, _C_cffi
    return {m.__name__: m.__file__ for m in (tinygrad_rep, _C, _C_cffi)}


def child_main():
    """Read a JSON list of cases on stdin; print one JSON line per case as it finishes."""
    # the child must run the parent's build (the sanitized one under scripts/sanitize.sh)
    expected = json.loads(os.environ["TINYGRAD_REP_EXPECT_LOADED"])
    assert loaded_extensions() == expected, (loaded_extensions(), expected)
    warnings.simplefilter("ignore")  # the reference warns about overflow/invalid values
    np.seterr(all="ignore")
    cases = json.load(sys.stdin)
    for i, case in enumerate(cases):
        try:
            why = run_case(case)
        except Exception as e:  # noqa: BLE001 - a harness error is reported, not swallowed
            why = f"harness error: {e!r}"
        print(json.dumps({"i": i, "why": why}), flush=True)


def run_in_child(cases):
    """{case index: reason or None}; a case missing from the dict was not reported (crash)."""
    env = dict(os.environ, TINYGRAD_REP_EXPECT_LOADED=json.dumps(loaded_extensions()))
    proc = subprocess.run([sys.executable, __file__], input=json.dumps(cases), capture_output=True,
                          text=True, timeout=TIMEOUT, env=env)
    done = {}
    for line in proc.stdout.splitlines():
        if line.startswith("{"):
            rec = json.loads(line)
            done[rec["i"]] = rec["why"]
    return done, proc


# ---------------------------------------------------------------- the hypothesis side

if __name__ != "__main__":  # the child process needs none of this (and starts faster without)
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import strategies as st

    DIMS = st.sampled_from([0, 1, 2, 3, 7, 17, 33])

    @st.composite
    def float_spec(draw, shape, dtype):
        return {"shape": list(shape), "dtype": dtype,
                "layout": draw(st.sampled_from(["c", "c", "strided", "transposed", "reversed", "readonly",
                                                "misaligned"])),
                "fill": draw(st.sampled_from(["normal", "special", "special"])),
                "scale": draw(st.sampled_from([1.0, 10.0, 1000.0])),
                "seed": draw(st.integers(0, 2**32 - 1))}

    @st.composite
    def out_spec(draw, shape, dtype):
        """None (let the kernel allocate) or a buffer, usually right, sometimes wrong."""
        kind = draw(st.sampled_from(["none"] * 3 + ["good"] * 3 + ["bad_shape", "bad_dtype", "strided",
                                                                 "misaligned"]))
        if kind == "none":
            return None
        spec = draw(float_spec(shape, dtype))
        spec["layout"] = kind if kind in ("strided", "misaligned") else "c"
        if kind == "bad_shape":
            spec["shape"] = list(shape) + [2]
        if kind == "bad_dtype":
            spec["dtype"] = draw(st.sampled_from(WRONG_DTYPES))
        return spec

    @st.composite
    def index_spec(draw, shape, upper):
        return {"shape": list(shape), "dtype": draw(st.sampled_from(INDEX_DTYPES)),
                "layout": draw(st.sampled_from(["c", "c", "strided", "reversed", "misaligned"])),
                "index": {"upper": upper, "mode": draw(st.sampled_from(["in", "in", "in", "high", "neg"]))},
                "seed": draw(st.integers(0, 2**32 - 1))}

    @st.composite
    def any_shape(draw):
        ndim = draw(st.sampled_from([0, 1, 1, 2, 2, 2, 3]))  # 0-d now and then (rejected by softmax)
        return tuple(draw(DIMS) for _ in range(ndim))

    @st.composite
    def cases(draw):
        kernel = draw(st.sampled_from(KERNEL_NAMES))
        dt = draw(st.sampled_from(FLOATS))
        M, N, K, d = draw(DIMS), draw(DIMS), draw(DIMS), draw(DIMS)
        args, kwargs = [], {}
        if kernel == "matmul":
            lead = draw(st.sampled_from([(), (1,), (2,)]))
            ta, tb, acc = draw(st.booleans()), draw(st.booleans()), draw(st.booleans())
            args = [draw(float_spec(lead + ((K, M) if ta else (M, K)), dt)),
                    draw(float_spec(lead + ((N, K) if tb else (K, N)), dt))]
            kwargs = {"trans_a": ta, "trans_b": tb, "accumulate": acc, "out": draw(out_spec(lead + (M, N), dt))}
        elif kernel in ("relu_forward", "softmax_forward", "log_softmax_forward"):
            shape = draw(any_shape())
            args = [draw(float_spec(shape, dt))]
            kwargs = {"out": draw(out_spec(shape, dt))}
        elif kernel in ("relu_backward", "softmax_backward", "log_softmax_backward"):
            shape = draw(any_shape())
            args = [draw(float_spec(shape, dt)), draw(float_spec(shape, dt))]
            kwargs = {"out": draw(out_spec(shape, dt))}
        elif kernel == "cross_entropy_forward":
            args = [draw(float_spec((M, N), dt)), draw(index_spec((M,), N))]
            kwargs = {"losses": draw(out_spec((M,), dt)), "probs": draw(out_spec((M, N), dt)),
                      "loss": draw(out_spec((), dt))}
        elif kernel == "cross_entropy_backward":
            args = [draw(float_spec((M, N), dt)), draw(index_spec((M,), N)), draw(float_spec((M,), dt))]
            kwargs = {"out": draw(out_spec((M, N), dt))}
        elif kernel == "embedding_gather":
            args = [draw(float_spec((M, d), dt)), draw(index_spec((N,), M))]
            kwargs = {"out": draw(out_spec((N, d), dt))}
        else:  # embedding_scatter_add: out is required and accumulated into
            out = draw(out_spec((M, d), dt)) or draw(float_spec((M, d), dt))
            args = [draw(float_spec((N, d), dt)), draw(index_spec((N,), M)), out]
        # now and then break one float argument: another shape or a dtype kernels refuse
        floats = [a for a in args if isinstance(a, dict) and "index" not in a]
        if floats and draw(st.integers(0, 4)) == 0:
            victim = draw(st.sampled_from(floats))
            if draw(st.booleans()):
                victim["shape"] = list(draw(any_shape()))
            else:
                victim["dtype"] = draw(st.sampled_from(WRONG_DTYPES))
        return {"kernel": kernel, "backend": draw(st.sampled_from(["pybind", "cffi"])),
                "args": args, "kwargs": kwargs}

    # No shrinking: every failing case is reported whole, and shrinking a batch would rerun a
    # child process hundreds of times.
    @settings(max_examples=12, deadline=None, phases=[Phase.explicit, Phase.reuse, Phase.generate],
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(st.lists(cases(), min_size=BATCH, max_size=BATCH))
    def test_kernels_give_the_reference_answer_or_its_exception(batch):
        done, proc = run_in_child(batch)
        if len(done) < len(batch):
            # the child died: rerun each unreported case alone to find the one that kills it
            for i, case in enumerate(batch):
                if i in done:
                    continue
                alone, p = run_in_child([case])
                if 0 not in alone:
                    raise AssertionError(f"case crashed the process (exit code {p.returncode}):\n"
                                         f"{json.dumps(case)}\nstderr:\n{p.stderr[-3000:]}")
                done[i] = alone[0]
        failures = [(batch[i], why) for i, why in sorted(done.items()) if why]
        assert not failures, "\n".join(f"{why}\n  case: {json.dumps(c)}" for c, why in failures[:5])


if __name__ == "__main__":
    child_main()
