"""`tinygrad-rep bench`: run the benchmark suites of the repository's benchmarks/ folder, or
compare two runs.

    tinygrad-rep bench [kernels|ops|models|word2vec|all ...] [--quick | --smoke] [--out DIR]
                       [--threads N] [--update-readme] [--no-plots]
    tinygrad-rep bench compare OLD.json NEW.json [--flagged]

The suites live in benchmarks/ next to the package (a clone of the repository with the package
installed editable, `pip install -e .`); they run in a process of their own (benchmarks/run.py),
so the benchmark process starts with its own environment: OpenBLAS's core-type overrides unset
and every library's thread count set before numpy loads (see benchmarks/common.py). It writes
results.json, REPORT.md and plots into --out (default benchmarks/results/<date>_<time>/).
`compare` matches the records of two results.json files and prints the speed ratio of each
measurement, flagging the changes larger than the noise either run measured.
"""
import importlib.util
import os
import subprocess
import sys

SUITES = ("kernels", "ops", "models", "word2vec", "all")
ENV_VAR = "TINYGRAD_REP_BENCHMARKS"  # another benchmarks/ folder, for an installed package


def add_arguments(parser):
    parser.add_argument("what", nargs="*", default=["all"], metavar="SUITE",
                        help="kernels, ops, models, word2vec or all (default); or "
                             "`compare OLD.json NEW.json`")
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="tiny sizes: every suite in under 2 minutes")
    size.add_argument("--smoke", action="store_true", help="smallest sizes, fewest repeats (seconds; for tests)")
    parser.add_argument("--out", help="output folder (default benchmarks/results/<date>_<time>/)")
    parser.add_argument("--threads", type=int, default=1,
                        help="threads of the main measurements, for every library (default 1)")
    parser.add_argument("--update-readme", action="store_true",
                        help="write the headline table of ratios into README.md")
    parser.add_argument("--no-plots", action="store_true", help="tables only")
    parser.add_argument("--flagged", action="store_true", help="compare: print only the flagged changes")


def benchmarks_dir():
    """The repository's benchmarks/ folder, or FileNotFoundError saying where it was looked for."""
    env = os.environ.get(ENV_VAR)
    here = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    folder = env or os.path.join(here, "benchmarks")
    if not os.path.isfile(os.path.join(folder, "run.py")):
        raise FileNotFoundError(
            f"the benchmarks are not installed with the package: they live in the repository's "
            f"benchmarks/ folder, expected at {folder}. Run this from a clone of the repository "
            f"with the package installed editable (`pip install -e .` in the clone), or set "
            f"{ENV_VAR} to a benchmarks/ folder.")
    return folder


def _report_module(folder):
    """benchmarks/report.py, loaded by path (it is not part of the package)."""
    spec = importlib.util.spec_from_file_location("tinygrad_rep_bench_report", os.path.join(folder, "report.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def compare(args, folder):
    if len(args.what) != 3:
        raise ValueError("usage: tinygrad-rep bench compare OLD.json NEW.json")
    report = _report_module(folder)
    old_path, new_path = args.what[1], args.what[2]
    for path in (old_path, new_path):
        if not os.path.isfile(path):
            raise FileNotFoundError(f"no such results file: {path}")
    old, new = report.load_results(old_path), report.load_results(new_path)
    rows, only_old, only_new = report.compare(old, new)
    print(f"old: {old_path} ({report.run_line(old)})\nnew: {new_path} ({report.run_line(new)})")
    print(report.format_compare(rows, only_old, only_new, flagged_only=args.flagged))
    return 0


def run(args):
    folder = benchmarks_dir()
    if args.what and args.what[0] == "compare":
        return compare(args, folder)
    bad = [w for w in args.what if w not in SUITES]
    if bad:
        raise ValueError(f"unknown suite(s) {', '.join(bad)}; choose from {', '.join(SUITES)} "
                         f"or `compare OLD.json NEW.json`")
    cmd = [sys.executable, os.path.join(folder, "run.py")] + list(args.what)
    for flag in ("quick", "smoke", "update_readme", "no_plots"):
        if getattr(args, flag):
            cmd.append("--" + flag.replace("_", "-"))
    # the command as the report and README show it: what was asked, without the output folder
    shown = ["tinygrad-rep", "bench"] + cmd[2:] + (["--threads", str(args.threads)] if args.threads != 1 else [])
    cmd += ["--threads", str(args.threads), "--as-command", " ".join(shown)]
    if args.out:
        cmd += ["--out", args.out]
    # a fresh process: OpenBLAS reads its environment once, when numpy loads it; run.py sets it up
    # (and records what it changed) before it imports numpy
    return subprocess.call(cmd)
