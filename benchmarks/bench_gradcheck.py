"""Gradient-check cost: tr.gradcheck's full element-by-element check against its fast mode.

    python benchmarks/bench_gradcheck.py [--quick | --smoke] [--out FILE.json]

The checked function is f(A, B) = tanh(A @ B) with A, B of shape (n, n), float64, both requiring
grad, on the default backend at one thread. The full check evaluates the forward twice per input
element (4 n^2 forwards); fast mode (random projections uᵀJd against the analytic VJP, k = 3)
needs one backward and two forwards per projection, whatever n is. Times are seconds per check
(median, min and max over rounds, the calling thread's CPU time; see timing.py), and each record
says how many forward evaluations the numerical side made. The full check is timed only up to the
size where it still takes seconds; beyond that its cost is the per-forward time times 4 n^2.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import machine  # noqa: E402
import measurements  # noqa: E402
import peers  # noqa: E402
import timing  # noqa: E402

SUITE = "gradcheck"
PLANS = {
    "smoke": dict(repeats=1, full=(8, 16), fast=(8, 16, 64)),
    "quick": dict(repeats=3, full=(8, 16, 32), fast=(8, 16, 32, 64, 256)),
    "full": dict(repeats=3, full=(8, 16, 32, 64), fast=(8, 16, 32, 64, 128, 256, 512, 1024)),
}


def _case(np, tr, n):
    rng = np.random.default_rng(n)
    a = tr.Tensor(rng.standard_normal((n, n)) / np.sqrt(n), requires_grad=True)
    b = tr.Tensor(rng.standard_normal((n, n)), requires_grad=True)
    return (lambda x, y: (x @ y).tanh()), [a, b]


def run(quick=False, smoke=False, threads=1):
    """Full and fast gradcheck of tanh(A @ B) at several sizes; returns the records."""
    import numpy as np

    import tinygrad_rep as tr
    plan = PLANS["smoke" if smoke else "quick" if quick else "full"]
    records = []
    print(f"gradcheck of tanh(A @ B), A and B (n, n) float64, backend {tr.get_backend()}, 1 thread")
    for mode, sizes in (("full", plan["full"]), ("fast", plan["fast"])):
        for n in sizes:
            fn, inputs = _case(np, tr, n)
            report = tr.gradcheck(fn, inputs, fast=mode == "fast", report=True)
            with peers.threads(1):
                stats = timing.measure(lambda: tr.gradcheck(fn, inputs, fast=mode == "fast"),
                                       repeats=plan["repeats"], warmup=0, target=0.0,
                                       clock=timing.clock_for(1))
            rec = measurements.record(f"gradcheck {mode}", f"{n}x{n}", tr.get_backend(), 1, stats,
                                      suite=SUITE, dtype="float64", evaluations=report.evaluations,
                                      elements=2 * n * n, method=report.method)
            records.append(rec)
            print(f"  {mode:4s} n={n:5d}  {2 * n * n:8d} elements  {report.evaluations:7d} forwards  "
                  f"{timing.fmt_time(rec['median']):>10s}  (min {timing.fmt_time(rec['min'])}, "
                  f"max {timing.fmt_time(rec['max'])})", flush=True)
    return records


def main(argv=None):
    import argparse
    import json
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="fewer sizes (about half a minute)")
    p.add_argument("--smoke", action="store_true", help="the smallest sizes only (seconds)")
    p.add_argument("--out", help="also write the records as JSON to this file")
    args = p.parse_args(argv)
    records = run(quick=args.quick, smoke=args.smoke)
    if args.out:
        payload = {"suite": SUITE, "machine": machine.machine_info(), "records": records}
        try:
            from tinygrad_rep.output import write_json_atomic
        except ImportError:  # older trees without the shared writer: temp file + rename
            import tempfile
            folder = os.path.dirname(os.path.abspath(args.out))
            fd, tmp = tempfile.mkstemp(dir=folder, prefix=".bench_gradcheck.", suffix=".tmp")
            try:
                with os.fdopen(fd, "w") as f:
                    json.dump(payload, f, indent=1)
                os.replace(tmp, args.out)
            except BaseException:
                os.unlink(tmp)
                raise
        else:
            write_json_atomic(args.out, payload)
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
