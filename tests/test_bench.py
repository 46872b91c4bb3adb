"""Tests of the benchmark tooling: `tinygrad-rep bench --quick` (what users run first) writes results.json that fits its
schema plus REPORT.md; compare's flagging and the committed baseline it reads by default; targets; the README
headline; missing suites; the FMA-peak probe shipped as C; grad mode switched off alike for us and PyTorch.

No test asserts a timing: the machines are shared, and the numbers are the benchmark's business.
"""
import importlib.util
import json
import math
import os
import subprocess
import sys

import pytest

from tinygrad_rep import cli

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(REPO, "benchmarks")

# The schema of results.json (JSON Schema, the subset that _validate below understands).
NUMBER_OR_NULL = {"type": ["number", "null"]}
RECORD_SCHEMA = {
    "type": "object",
    "required": ["what", "size", "backend", "threads", "median", "min", "max", "repeats", "unit"],
    "properties": {
        "what": {"type": "string"}, "size": {"type": "string"}, "backend": {"type": "string"},
        "threads": {"type": "integer", "minimum": 1},
        "median": NUMBER_OR_NULL, "min": NUMBER_OR_NULL, "max": NUMBER_OR_NULL,
        "repeats": {"type": "integer", "minimum": 0}, "unit": {"type": "string"},
        "suite": {"type": "string"}, "skipped": {"type": "string"},
        "rounds": {"type": "array", "items": {"type": "number"}},
        "rate": {"type": "object", "required": ["unit", "median", "min", "max"]},
    },
}
RESULTS_SCHEMA = {
    "type": "object",
    "required": ["schema", "created", "command", "mode", "threads", "suites", "records", "machine", "load",
                 "targets", "seconds"],
    "properties": {
        "schema": {"type": "string", "enum": ["tinygrad_rep-bench/1"]},
        "mode": {"type": "string", "enum": ["smoke", "quick", "full"]},
        "threads": {"type": "integer", "minimum": 1},
        "seconds": {"type": "number", "minimum": 0},
        "records": {"type": "array", "items": RECORD_SCHEMA},
        "suites": {"type": "object", "additionalProperties": {
            "type": "object", "required": ["status"],
            "properties": {"status": {"type": "string", "enum": ["ok", "skipped", "failed"]}}}},
        "machine": {"type": "object", "required": ["cpu_model", "cores", "tinygrad_rep", "versions", "blas"],
                    "properties": {"cores": {"type": "integer", "minimum": 1},
                                   "tinygrad_rep": {"type": "object", "required": ["simd", "backends"]}}},
        "load": {"type": "object", "required": ["seconds", "other_processes"]},
        "targets": {"type": "array", "items": {"type": "object", "required": ["label", "want", "value", "met"]}},
    },
}
_TYPES = {"object": dict, "array": list, "string": str, "integer": int, "number": (int, float),
          "null": type(None), "boolean": bool}


def _validate(value, schema, path="$"):
    """Check value against a JSON Schema subset: type, required, properties, items, enum, minimum,
    additionalProperties. Raises AssertionError naming the path of the first mismatch."""
    types = schema.get("type")
    if types is not None:
        types = [types] if isinstance(types, str) else types
        ok = any(isinstance(value, _TYPES[t]) and not (t in ("integer", "number") and isinstance(value, bool))
                 for t in types)
        assert ok, f"{path}: {value!r} is not of type {types}"
    if "enum" in schema:
        assert value in schema["enum"], f"{path}: {value!r} not in {schema['enum']}"
    if "minimum" in schema and isinstance(value, (int, float)):
        assert value >= schema["minimum"], f"{path}: {value} < {schema['minimum']}"
    if isinstance(value, float):
        assert math.isfinite(value), f"{path}: {value} is not finite"
    if isinstance(value, dict):
        for key in schema.get("required", []):
            assert key in value, f"{path}: missing key {key!r}"
        for key, sub in schema.get("properties", {}).items():
            if key in value:
                _validate(value[key], sub, f"{path}.{key}")
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            for key, v in value.items():
                if key not in schema.get("properties", {}):
                    _validate(v, extra, f"{path}.{key}")
    if isinstance(value, list) and "items" in schema:
        for i, v in enumerate(value):
            _validate(v, schema["items"], f"{path}[{i}]")


def _load(name):
    """A module of benchmarks/ by path, its folder on sys.path (its modules import each other as
    siblings, as in the benchmark process)."""
    if BENCH not in sys.path:
        sys.path.insert(0, BENCH)
    spec = importlib.util.spec_from_file_location(f"bench_{name}", os.path.join(BENCH, f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _rec(what, median, lo, hi, backend="pybind11", unit="s", size="64", threads=1, **extra):
    return dict(what=what, size=size, backend=backend, threads=threads, median=median, min=lo, max=hi,
                repeats=5, unit=unit, **extra)


# ---------------------------------------------------------------------------------------------
# the command, end to end

@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    env = dict(os.environ)
    env["OPENBLAS_CORETYPE"] = env.get("OPENBLAS_CORETYPE", "Haswell")  # must be unset for the benchmark
    proc = subprocess.run([sys.executable, "-m", "tinygrad_rep", "bench", "kernels", "ops", "models",
                           "word2vec", "--quick", "--out", str(out)],
                          capture_output=True, text=True, timeout=600, cwd=str(out.parent), env=env)
    return out, proc


def test_quick_run_writes_results_that_fit_the_schema(quick_run):
    out, proc = quick_run
    assert (out / "results.json").exists(), proc.stdout[-3000:] + proc.stderr[-3000:]
    with open(out / "results.json") as f:
        results = json.load(f)
    failed = {name: (s.get("error") or "").strip().splitlines()[-1:]
              for name, s in results["suites"].items() if s["status"] == "failed"}
    assert not failed, f"benchmark suites failed: {failed}"  # optional baselines skip, never fail
    assert proc.returncode == 0, proc.stderr[-3000:]
    _validate(results, RESULTS_SCHEMA)
    assert results["mode"] == "quick"
    assert results["suites"]["kernels"]["status"] == "ok"
    assert results["suites"]["ops"]["status"] == "ok"
    for rec in results["records"]:
        timed = rec["median"] is not None
        assert timed != ("skipped" in rec), rec  # null timings exactly when skipped, with a reason
        if timed:
            assert rec["min"] <= rec["median"] <= rec["max"] and rec["repeats"] >= 1, rec
    whats = {r["what"] for r in results["records"]}
    assert {"sgemm", "dgemm", "softmax fwd f32", "log_softmax bwd f32", "relu bwd f32",
            "call overhead relu_forward", "copy bandwidth", "tiny MLP fwd+bwd"} <= whats
    backends = {r["backend"] for r in results["records"] if r["what"] == "sgemm"}
    assert {"pybind11", "cffi", "numpy-ref", "numpy", "torch"} <= backends  # torch timed or skipped
    assert "OPENBLAS_CORETYPE" in results["machine"]["env"]["unset"]
    assert results["machine"]["tinygrad_rep"]["simd"] in ("avx512f", "avx2", "default")


def test_quick_run_writes_a_report(quick_run):
    out, proc = quick_run
    text = (out / "REPORT.md").read_text()
    for heading in ("# Benchmark report", "## Machine", "## Load while it ran", "## Targets", "## kernels", "## ops"):
        assert heading in text
    assert "sgemm" in text and "pybind11 vs numpy" in text
    if importlib.util.find_spec("matplotlib") is not None:
        assert (out / "kernels_matmul.png").stat().st_size > 1000
        assert "![kernels](kernels_matmul.png)" in text
    page = (out / "report.html").read_text()  # the same report as one page, beside REPORT.md
    assert "<h2>Machine</h2>" in page and "<h2>kernels</h2>" in page and "<th>what</th>" in page
    if importlib.util.find_spec("matplotlib") is not None:
        assert 'src="kernels_matmul.png"' in page


def test_optional_baselines_are_skipped_not_failed(tmp_path):
    """A suite module that is missing, or that needs an optional library that is not installed,
    is reported as skipped; one that raises is reported as failed."""
    run = _load("run")
    (tmp_path / "bench_needs_gensim.py").write_text("import gensim_not_installed_here as gensim\n")
    (tmp_path / "bench_broken.py").write_text("def run(quick):\n    raise RuntimeError('boom')\n")
    (tmp_path / "bench_ok.py").write_text(
        "def run(quick):\n    return [dict(what='w', size=3, backend='torch', threads=1, median=None, min=None,"
        " max=None, repeats=0, unit='s', skipped='PyTorch is not installed')]\n")
    sys.path.insert(0, str(tmp_path))
    try:
        run.SUITES.update(ok="bench_ok", broken="bench_broken", absent="bench_absent_module",
                          needs="bench_needs_gensim")
        run.OPTIONAL.add("gensim_not_installed_here")
        assert run.run_suite("absent", "smoke", 1)[0]["status"] == "skipped"
        assert run.run_suite("needs", "smoke", 1)[0]["status"] == "skipped"
        status, recs = run.run_suite("broken", "smoke", 1)
        assert status["status"] == "failed" and "boom" in status["error"]
        status, recs = run.run_suite("ok", "smoke", 1)
        assert status["status"] == "ok" and recs[0]["size"] == "3" and recs[0]["suite"] == "ok"
    finally:
        sys.path.remove(str(tmp_path))


def test_compare_flags_changes_beyond_the_measured_noise():
    report = _load("compare")
    old = {"records": [
        _rec("a", 1.00, 0.95, 1.05),                 # new 0.80 (0.78-0.82): disjoint, faster
        _rec("b", 1.00, 0.90, 1.10),                 # new 1.05 (1.00-1.12): overlapping: noise
        _rec("c", 1.00, 0.999, 1.001),               # new 1.01: disjoint but 1%: not flagged
        _rec("d", 50.0, 49.0, 51.0, unit="GFLOP/s"),  # a rate: 40 GFLOP/s is slower
        _rec("e", 2.0, 1.9, 2.1),                    # only in the old run
        _rec("f", None, None, None, backend="torch", skipped="PyTorch is not installed"),
    ]}
    new = {"records": [
        _rec("a", 0.80, 0.78, 0.82), _rec("b", 1.05, 1.00, 1.12), _rec("c", 1.01, 1.009, 1.011),
        _rec("d", 40.0, 39.0, 41.0, unit="GFLOP/s"), _rec("g", 1.0, 1.0, 1.0),
        _rec("f", None, None, None, backend="torch", skipped="PyTorch is not installed"),
    ]}
    rows, only_old, only_new = report.compare(old, new)
    flags = {r["key"][0]: r["flag"] for r in rows}
    assert flags == {"a": "faster", "b": "", "c": "", "d": "slower"}
    change = {r["key"][0]: r["change"] for r in rows}
    assert change["a"] == pytest.approx(1.25) and change["d"] == pytest.approx(0.8)
    assert [k[0] for k in only_old] == ["e"] and [k[0] for k in only_new] == ["g"]
    text = report.format_compare(rows, only_old, only_new)
    assert "FASTER" in text and "SLOWER" in text and "1 faster, 1 slower" in text


def test_compare_command(tmp_path, capsys):
    old, new = tmp_path / "old.json", tmp_path / "new.json"
    old.write_text(json.dumps({"records": [_rec("sgemm", 0.010, 0.009, 0.011)]}))
    new.write_text(json.dumps({"records": [_rec("sgemm", 0.020, 0.019, 0.021)]}))
    assert cli.main(["bench", "compare", str(old), str(new)]) == 0
    out = capsys.readouterr().out
    assert "SLOWER" in out and "0.50x" in out
    assert cli.main(["bench", "compare", str(old), str(tmp_path / "missing.json")]) == 2
    assert "no such results file" in capsys.readouterr().err
    (tmp_path / "bad.json").write_text("{}")
    assert cli.main(["bench", "compare", str(old), str(tmp_path / "bad.json")]) == 2


def test_missing_benchmarks_folder_is_explained(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("TINYGRAD_REP_BENCHMARKS", str(tmp_path / "nowhere"))
    assert cli.main(["bench", "kernels", "--smoke"]) == 2
    err = capsys.readouterr().err
    assert "no benchmarks/ folder with run.py at " + str(tmp_path / "nowhere") in err
    assert "TINYGRAD_REP_BENCHMARKS must name a benchmarks/ folder" in err
    assert len(err.strip().splitlines()) == 1


def test_the_benchmarks_are_part_of_the_package(monkeypatch):
    """Without the environment variable the command runs the folder installed as
    tinygrad_rep.benchmarks (the repository's benchmarks/ in this editable install) with its
    FMA probe and baseline beside it, so it needs no clone and no particular working directory."""
    import importlib.util

    from tinygrad_rep.commands import bench
    monkeypatch.delenv("TINYGRAD_REP_BENCHMARKS", raising=False)
    folder = bench.benchmarks_dir()
    assert os.path.samefile(folder, BENCH)
    spec = importlib.util.find_spec("tinygrad_rep.benchmarks")
    if spec is not None:  # an install made since the benchmarks joined the package
        assert os.path.samefile(spec.submodule_search_locations[0], BENCH)
    for name in ("run.py", "fma_peak.c", "baseline.json", "__init__.py"):
        assert os.path.isfile(os.path.join(folder, name)), name


# ---------------------------------------------------------------------------------------------
# targets and the README headline

def _synthetic_results():
    return {
        "command": "benchmarks/run.py kernels", "mode": "full", "created": "2026-01-01T00:00:00",
        "machine": {"cpu_model": "cpu", "cores": 2, "tinygrad_rep": {"simd": "avx2"}, "blas": {"kernel": "Haswell"}},
        "load": {"steal_percent": 1.0, "others_cpu_percent": 5.0},
        "suites": {"kernels": {"status": "ok",
                               "targets": [["sgemm 512", "sgemm", "512x512x512", 1, "pybind11", "numpy", 0.9],
                                           ["softmax vs torch", "softmax fwd f32", "256x1000", 1, "pybind11", "torch", 1.0]],
                               "limits": [["overhead", "call overhead relu_forward", "8", 1, "pybind11", "us", 2.0]]}},
        "records": [
            _rec("sgemm", 0.010, 0.009, 0.011, size="512x512x512", suite="kernels", rounds=[0.01, 0.009, 0.011]),
            _rec("sgemm", 0.0095, 0.009, 0.010, backend="numpy", size="512x512x512", suite="kernels",
                 rounds=[0.0095, 0.009, 0.010]),
            _rec("softmax fwd f32", None, None, None, backend="torch", size="256x1000", suite="kernels",
                 skipped="PyTorch is not installed"),
            _rec("softmax fwd f32", 0.001, 0.001, 0.001, size="256x1000", suite="kernels"),
            _rec("call overhead relu_forward", 1.5, 1.4, 1.7, unit="us", size="8", suite="kernels"),
        ]}


def test_targets_are_evaluated_and_a_missing_baseline_is_not_a_failure():
    report = _load("targets")
    t = {x["label"]: x for x in report.evaluate_targets(_synthetic_results())}
    assert t["sgemm 512"]["value"] == pytest.approx(0.95) and t["sgemm 512"]["met"] is True
    assert t["sgemm 512"]["range"] == [pytest.approx(0.010 / 0.011), pytest.approx(1.0)]  # per round
    assert t["softmax vs torch"]["met"] is None and "not installed" in t["softmax vs torch"]["why"]
    assert t["overhead"]["met"] is True


def test_readme_headline_goes_between_the_markers(tmp_path):
    report = _load("readme")
    readme = tmp_path / "README.md"
    readme.write_text("# x\n\n## Benchmarks\n\ntext\n\n<!-- bench:start -->\nold\n<!-- bench:end -->\n\n## After\n")
    report.update_readme(str(readme), _synthetic_results())
    text = readme.read_text()
    assert "old" not in text and text.startswith("# x\n") and text.endswith("## After\n")
    assert "| sgemm, 1 thread | 512x512x512 |" in text and "0.95x" in text
    report.update_readme(str(readme), _synthetic_results())  # idempotent
    assert readme.read_text() == text
    readme.write_text("no markers\n")
    with pytest.raises(ValueError, match="markers"):
        report.update_readme(str(readme), _synthetic_results())


# ---------------------------------------------------------------------------------------------
# the committed baseline, the shipped FMA probe, grad mode, where results go

def test_the_committed_baseline_is_a_full_run_of_the_headline_table():
    """benchmarks/baseline.json is the run the README's table was made from: a full run
    of every suite that fits the schema and holds every headline row the table shows."""
    results = _load("results")
    readme = _load("readme")
    with open(results.BASELINE) as f:
        baseline = json.load(f)
    _validate(baseline, RESULTS_SCHEMA)
    assert baseline["mode"] == "full"
    assert {"kernels", "ops", "models", "word2vec"} <= set(baseline["suites"])
    labels = {row[0] for row in readme.headline_rows(baseline)}
    assert {label for label, *_ in readme.HEADLINE} <= labels


def test_compare_with_one_file_reads_the_baseline(tmp_path, capsys, monkeypatch):
    results = _load("results")
    old = tmp_path / "baseline.json"
    new = tmp_path / "new.json"
    old.write_text(json.dumps({"records": [_rec("sgemm", 0.010, 0.009, 0.011)]}))
    new.write_text(json.dumps({"records": [_rec("sgemm", 0.005, 0.0049, 0.0051)]}))
    import importlib
    results = importlib.import_module("results")  # the module the command loads (benchmarks/ is on sys.path)
    monkeypatch.setattr(results, "BASELINE", str(old))
    assert cli.main(["bench", "compare", str(new)]) == 0
    out = capsys.readouterr().out
    assert f"old: {old}" in out and "FASTER" in out and "2.00x" in out
    monkeypatch.setattr(results, "BASELINE", str(tmp_path / "none.json"))
    assert cli.main(["bench", "compare", str(new)]) == 2
    assert "no baseline results file at" in capsys.readouterr().err


def test_the_fma_probe_is_a_shipped_c_file_that_compiles():
    """ceilings.py compiles fma_peak.c with the system compiler; each loop reports the flops of
    one iteration: 12 accumulators x lanes x 2."""
    import ctypes
    import shutil
    ceilings = _load("ceilings")
    assert ceilings.FMA_SOURCE == os.path.join(BENCH, "fma_peak.c")
    if shutil.which(os.environ.get("CC", "cc")) is None:
        pytest.skip("no C compiler")
    lib, why = ceilings._compile_fma()
    assert lib is not None, why
    sink = (ctypes.c_double * 8)()
    flops = {name: getattr(lib, name)(1, sink) for name in ceilings.FMA_FUNCTIONS}
    assert flops == {"fma_avx512_f32": 12 * 16 * 2, "fma_avx512_f64": 12 * 8 * 2,
                     "fma_avx2_f32": 12 * 8 * 2, "fma_avx2_f64": 12 * 4 * 2}


def test_forward_rows_time_ours_and_torch_with_grad_mode_off_alike(monkeypatch):
    """bench_ops' forward rows run every side with grad mode off, entered once around the
    measurement (no side enters it inside its timed calls); forward + backward rows with it on."""
    import tinygrad_rep as tr
    bench_ops = _load("bench_ops")
    torch = bench_ops.peers.optional("torch")
    seen = {}

    def fake_side_by_side(suite, what, size, nthreads, fns, *args, **kwargs):
        for name, fn in fns.items():
            if fn is None:
                continue
            setup, call = fn if isinstance(fn, tuple) else (None, fn)
            if setup:
                setup()
            call()
        seen[what] = (tr.is_grad_enabled(), torch.is_grad_enabled() if torch is not None else None)
        return []

    monkeypatch.setattr(bench_ops.measurements, "side_by_side", fake_side_by_side)
    ctx = bench_ops.Ctx(bench_ops.PLANS["smoke"])
    bench_ops.bench_op_overhead(ctx, ("add", "cross_entropy"))
    off = (False, False if torch is not None else None)
    on = (True, True if torch is not None else None)
    assert seen == {"add fwd": off, "add fwd+bwd": on, "cross_entropy fwd": off, "cross_entropy fwd+bwd": on}
    assert tr.is_grad_enabled()


def test_interleaved_rounds_rotate_the_order():
    """measure_group times every implementation once per round, each round starting one place
    further on, so each takes every place in turn; skipped baselines (None) are left out."""
    timing = _load("timing")
    calls = []
    fns = {name: (lambda name=name: calls.append(name)) for name in "ABC"}
    fns["skipped"] = None
    stats = timing.measure_group(fns, repeats=4, warmup=1, target=0.0)
    assert set(stats) == {"A", "B", "C"}
    assert all(s.repeats == 4 for s in stats.values())
    warm = ["A", "A", "B", "B", "C", "C"]   # warm-up call, then the one that sizes a round
    assert calls == warm + list("ABC" "BCA" "CAB" "ABC")
    assert timing.measure_group({"A": None}, repeats=3) == {}


def test_results_go_to_the_current_folder_outside_a_clone(tmp_path, monkeypatch):
    run = _load("run")
    assert run.default_out().startswith(os.path.join(BENCH, "results") + os.sep)
    installed = tmp_path / "site-packages" / "tinygrad_rep" / "benchmarks"
    installed.mkdir(parents=True)
    monkeypatch.setattr(run, "HERE", str(installed))
    monkeypatch.chdir(tmp_path)
    assert run.default_out().startswith(os.path.join(str(tmp_path), "bench_results") + os.sep)


def test_the_headline_shows_word2vec_quality_beside_its_speed():
    readme = _load("readme")
    results = _synthetic_results()
    size = "prose 500000 words x 1 epoch"
    results["records"] += [
        _rec("word2vec training", 300_000.0, 290_000.0, 310_000.0, unit="words/s", size=size, suite="word2vec",
             analogy=0.412, wordsim353=0.55),
        _rec("word2vec training", 200_000.0, 190_000.0, 210_000.0, backend="gensim", unit="words/s", size=size,
             suite="word2vec", analogy=0.40, wordsim353=0.561)]
    text = readme.headline_markdown(results)
    assert ("| word2vec training | prose 500000 words x 1 epoch | 300,000 words/s | gensim | 200,000 words/s | "
            "1.50x | ours: analogy 0.412, WordSim-353 0.550; gensim: analogy 0.400, WordSim-353 0.561 |") in text
    assert "| sgemm, 1 thread | 512x512x512 |" in text and text.count("| quality |") == 1
