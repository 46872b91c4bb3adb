"""`tinygrad-rep bench`: run the benchmark suites shipped with the package, or compare two runs.

    tinygrad-rep bench [kernels|ops|models|word2vec|all ...] [--quick | --smoke] [--out DIR]
                       [--threads N] [--update-readme] [--no-plots]
    tinygrad-rep bench compare [OLD.json] NEW.json [--flagged]

The suites live in the repository's benchmarks/ folder, installed with the package as
tinygrad_rep.benchmarks, so the command works from any directory after `pip install .`. They run
in a process of their own (benchmarks/run.py), so the benchmark process starts with its own
environment: OpenBLAS's core-type overrides unset and every library's thread count set before
numpy loads (see benchmarks/peers.py). It writes results.json, REPORT.md and plots into --out
(default benchmarks/results/<date>_<time>/ in a clone of the repository, else
bench_results/<date>_<time>/ in the current folder).
`compare` matches the records of two results.json files and prints the speed ratio of each
measurement, flagging the changes larger than the noise either run measured. With one file, the
old run is the baseline of the README's published table (benchmarks/baseline.json,
written by `--update-readme`).
"""
import importlib
import importlib.util
import os
import subprocess
import sys

SUITES = ("kernels", "ops", "models", "word2vec", "all")
ENV_VAR = "TINYGRAD_REP_BENCHMARKS"  # another benchmarks/ folder to run instead of the shipped one


def add_arguments(parser):
    parser.add_argument("what", nargs="*", default=["all"], metavar="SUITE",
                        help="kernels, ops, models, word2vec or all (default); or "
                             "`compare [OLD.json] NEW.json` (OLD: the README's baseline)")
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="tiny sizes: every suite in under 2 minutes")
    size.add_argument("--smoke", action="store_true", help="smallest sizes, fewest repeats (seconds; for tests)")
    parser.add_argument("--out", help="output folder (default benchmarks/results/<date>_<time>/ in a clone, "
                                      "else bench_results/<date>_<time>/ here)")
    parser.add_argument("--threads", type=int, default=1,
                        help="threads of the main measurements, for every library (default 1)")
    parser.add_argument("--update-readme", action="store_true",
                        help="write the headline table into README.md and this run as its baseline")
    parser.add_argument("--no-plots", action="store_true", help="tables only")
    parser.add_argument("--flagged", action="store_true", help="compare: print only the flagged changes")


def benchmarks_dir():
    """The benchmarks folder: $TINYGRAD_REP_BENCHMARKS, else the one installed with the package
    (tinygrad_rep.benchmarks), else the repository's benchmarks/ beside the package (an editable
    install made before the benchmarks were part of the package). FileNotFoundError naming where
    it looked when none has run.py."""
    env = os.environ.get(ENV_VAR)
    if env:
        candidates = [env]
    else:
        candidates = []
        spec = importlib.util.find_spec("tinygrad_rep.benchmarks")
        if spec is not None and spec.submodule_search_locations:
            candidates += list(spec.submodule_search_locations)
        package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        candidates.append(os.path.join(os.path.dirname(package), "benchmarks"))
    for folder in candidates:
        if os.path.isfile(os.path.join(folder, "run.py")):
            return folder
    raise FileNotFoundError(
        f"no benchmarks/ folder with run.py at {' or '.join(candidates)}: "
        + (f"{ENV_VAR} must name a benchmarks/ folder" if env else
           "the package was installed without its benchmarks; reinstall it (pip install .)"))


def _bench_module(folder, name):
    """A module of the benchmarks folder. Its modules import each other as siblings (run.py must
    set the process environment before the tinygrad_rep package, and so numpy, is imported), so
    the folder is on sys.path while it loads."""
    sys.path.insert(0, folder)
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(folder)


def compare(args, folder):
    files = args.what[1:]
    if len(files) not in (1, 2):
        raise ValueError("usage: tinygrad-rep bench compare [OLD.json] NEW.json")
    results = _bench_module(folder, "results")
    report = _bench_module(folder, "compare")
    if len(files) == 1:
        files = [results.BASELINE] + files
        if not os.path.isfile(files[0]):
            raise FileNotFoundError(f"no baseline results file at {files[0]}: name the old run "
                                    f"(tinygrad-rep bench compare OLD.json NEW.json)")
    old_path, new_path = files
    for path in (old_path, new_path):
        if not os.path.isfile(path):
            raise FileNotFoundError(f"no such results file: {path}")
    old, new = results.load_results(old_path), results.load_results(new_path)
    rows, only_old, only_new = report.compare(old, new)
    print(f"old: {old_path} ({results.run_line(old)})\nnew: {new_path} ({results.run_line(new)})")
    print(report.format_compare(rows, only_old, only_new, flagged_only=args.flagged))
    return 0


def run(args):
    folder = benchmarks_dir()
    if args.what and args.what[0] == "compare":
        return compare(args, folder)
    bad = [w for w in args.what if w not in SUITES]
    if bad:
        raise ValueError(f"unknown suite(s) {', '.join(bad)}; choose from {', '.join(SUITES)} "
                         f"or `compare [OLD.json] NEW.json`")
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
