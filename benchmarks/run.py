"""Benchmark runner: runs the chosen suites and writes results.json, REPORT.md and plots into --out.

    python benchmarks/run.py [kernels|ops|models|word2vec|all ...] [--quick | --smoke] [--out DIR]
                             [--threads N] [--update-readme]

`tinygrad-rep bench ...` and `make bench` run this file in a process of its own. Each suite is a
module here with `run(quick: bool) -> list[record]` (it may also accept `smoke` and `threads`):
    kernels   bench_kernels.py   C kernels beside numpy/OpenBLAS and PyTorch, roofline ceilings
    ops       bench_ops.py       per-op overhead on tiny tensors; a tiny MLP's forward + backward
    models    bench_models.py    a training step of the autoencoder and SimCLR beside PyTorch
    word2vec  bench_word2vec.py  word2vec training steps and words/s beside gensim
--quick runs tiny sizes (the whole set in under 2 minutes); --smoke runs even smaller ones, for
the test. A suite whose optional baseline is missing reports it as skipped; a suite that raises
is reported as failed (the other suites still run, and the exit code is 1).

Before numpy is imported, the process environment is fixed up for benchmarking (see
peers.prepare_process_env): OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE unset, thread counts set.

The folder is installed with the package as tinygrad_rep.benchmarks, so `tinygrad-rep bench` runs
it from anywhere; its modules import each other as siblings (this folder is put first on
sys.path), because the process must fix its environment before anything imports numpy, which
importing the tinygrad_rep package does.
"""
import argparse
import datetime
import importlib
import importlib.util
import inspect
import os
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import measurements  # noqa: E402  (standard library only)
import peers  # noqa: E402  (standard library only: safe before the environment is set)
from machine import REPO  # noqa: E402  (standard library only)

SUITES = {"kernels": "bench_kernels", "ops": "bench_ops", "models": "bench_models", "word2vec": "bench_word2vec"}
# optional baselines: a suite that cannot import one of these is skipped, not failed
OPTIONAL = {"torch", "gensim", "sklearn", "scikit-learn", "threadpoolctl", "matplotlib"}


def parse_args(argv):
    p = argparse.ArgumentParser(prog="benchmarks/run.py", description=__doc__.splitlines()[0])
    p.add_argument("suites", nargs="*", default=["all"], metavar="SUITE",
                   help=f"any of {', '.join(SUITES)}, or all (default)")
    size = p.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="tiny sizes: every suite in under 2 minutes")
    size.add_argument("--smoke", action="store_true", help="smallest sizes and fewest repeats (for tests)")
    p.add_argument("--out", default=None,
                   help="output folder (default: benchmarks/results/<date>_<time>/ in a clone of the "
                        "repository, else bench_results/<date>_<time>/ in the current folder)")
    p.add_argument("--threads", type=int, default=1,
                   help="thread count of the main measurements, for every library (default 1); "
                        "the scaling section uses every core")
    p.add_argument("--update-readme", action="store_true",
                   help="write the headline table into README.md between its bench markers, and "
                        "this run's results.json as the baseline that `bench compare` reads by default")
    p.add_argument("--readme", default=os.path.join(REPO, "README.md"), help=argparse.SUPPRESS)
    p.add_argument("--no-plots", action="store_true", help="tables only, no PNG plots")
    p.add_argument("--as-command", help=argparse.SUPPRESS)  # the command line to report (tinygrad-rep bench ...)
    args = p.parse_args(argv)
    unknown = [s for s in args.suites if s != "all" and s not in SUITES]
    if unknown:
        p.error(f"unknown suite(s) {', '.join(unknown)}; choose from {', '.join(SUITES)} or all")
    args.suites = list(SUITES) if "all" in args.suites else list(dict.fromkeys(args.suites))
    if args.threads < 1:
        p.error("--threads must be at least 1")
    return args


def default_out():
    """benchmarks/results/<date>_<time>/ in a clone of the repository (ignored by git); installed
    with the package, bench_results/<date>_<time>/ in the current folder."""
    stamp = datetime.datetime.now().strftime("%Y-%m-%d_%H%M%S")
    if os.path.isfile(os.path.join(os.path.dirname(HERE), "pyproject.toml")):
        return os.path.join(HERE, "results", stamp)
    return os.path.join(os.getcwd(), "bench_results", stamp)


def _call_suite(module, mode, threads):
    """Call module.run with what it accepts: quick (always), smoke and threads when it takes them.
    A suite without a smoke mode runs its quick mode under --smoke."""
    fn = getattr(module, "run", None)
    if fn is None:
        raise AttributeError(f"{module.__name__.rsplit('.', 1)[-1]}.py has no run(quick) function")
    params = inspect.signature(fn).parameters
    takes_all = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    kwargs = {"quick": mode in ("quick", "smoke")}
    if "smoke" in params or takes_all:
        kwargs["smoke"] = mode == "smoke"
    if "threads" in params or takes_all:
        kwargs["threads"] = threads
    return fn(**kwargs)


def normalize(rec, suite):
    """A suite's record with every required key present (missing ones None) and its suite named."""
    out = dict(rec)
    for key in measurements.RECORD_KEYS:
        out.setdefault(key, None)
    out.setdefault("suite", suite)
    out["size"] = None if out["size"] is None else str(out["size"])
    return out


def run_suite(name, mode, threads):
    """Import and run one suite: (status dict, records)."""
    module_name = SUITES[name]
    t0 = time.perf_counter()
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        missing = (exc.name or "").split(".")[0]
        if missing == module_name:
            return {"status": "skipped", "reason": f"benchmarks/{module_name}.py is not there"}, []
        if missing in OPTIONAL:
            return {"status": "skipped", "reason": f"{missing} is not installed"}, []
        return {"status": "failed", "error": traceback.format_exc()}, []
    try:
        with peers.threads(threads):
            records = _call_suite(module, mode, threads) or []
    except Exception:  # one suite's failure is reported, the others still run
        traceback.print_exc()
        return {"status": "failed", "error": traceback.format_exc(),
                "seconds": round(time.perf_counter() - t0, 1)}, []
    records = [normalize(r, name) for r in records]
    status = {"status": "ok", "seconds": round(time.perf_counter() - t0, 1), "records": len(records)}
    targets = [list(t) for t in getattr(module, "TARGETS", [])]
    limits = [list(t) for t in getattr(module, "LIMITS", [])]
    if targets or limits:
        status["targets"], status["limits"] = targets, limits
    return status, records


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    mode = "smoke" if args.smoke else "quick" if args.quick else "full"
    # before numpy loads OpenBLAS: its environment and the thread pools' sizes. Without
    # threadpoolctl numpy's BLAS threads cannot be changed later, so its pool gets the main count.
    can_limit = importlib.util.find_spec("threadpoolctl") is not None
    peers.prepare_process_env(max(args.threads, peers.cpu_count()) if can_limit else args.threads)
    import load
    import machine
    import readme
    import report
    import results as results_file
    import targets

    out = os.path.abspath(args.out or default_out())
    os.makedirs(out, exist_ok=True)
    started = datetime.datetime.now().astimezone()
    print(f"benchmarks: {', '.join(args.suites)} ({mode}), {args.threads} thread(s) for the main "
          f"measurements, results in {out}")
    print(report.machine_line(machine.machine_info()))
    print("each line: median per call (rate) of every implementation, measured side by side; [xR] = its "
          "time / pybind11's time (> 1: pybind11 is faster)")
    results = {"schema": results_file.SCHEMA, "created": started.isoformat(timespec="seconds"),
               "command": args.as_command or " ".join(["benchmarks/run.py"] + (sys.argv[1:] if argv is None
                                                                               else list(argv))),
               "mode": mode, "threads": args.threads, "suites": {}, "records": []}
    with load.LoadMonitor() as total:
        for name in args.suites:
            print(f"\n== {name}")
            with load.LoadMonitor() as suite_load:
                status, records = run_suite(name, mode, args.threads)
            status["load"] = suite_load.summary
            results["suites"][name] = status
            results["records"] += records
            reason = status.get("reason") or (status.get("error", "").strip().splitlines() or [""])[-1]
            print(f"== {name}: {status['status']}" + (f" ({reason})" if status["status"] != "ok" else
                                                      f"; {load.describe_load(suite_load.summary)}"))
    results["load"] = total.summary
    results["seconds"] = total.summary["seconds"]
    results["machine"] = machine.machine_info()  # after the suites: torch's details if it was loaded
    results["targets"] = targets.evaluate_targets(results)

    results_file.write_results(os.path.join(out, "results.json"), results)
    written = report.write_report(results, out, plots=not args.no_plots)
    print(f"\nwrote {os.path.join(out, 'results.json')} and {', '.join(os.path.basename(w) for w in written)}")
    if results["targets"]:
        print(targets.targets_text(results["targets"]))
    if args.update_readme:
        readme.update_readme(args.readme, results)
        results_file.write_results(results_file.BASELINE, results)
        print(f"README headline table updated: {args.readme}; its baseline: {results_file.BASELINE}")
    print(f"total {results['seconds']:.0f} s; {load.describe_load(total.summary)}")
    failed = [n for n, s in results["suites"].items() if s["status"] == "failed"]
    if failed:
        print(f"FAILED suites: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
