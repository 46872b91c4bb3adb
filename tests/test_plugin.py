"""The kit's pytest plugin (tinygrad_rep/testing/plugin.py), run the way a user's project runs it: a
separate pytest process on a small test folder without conftest.py."""
import os
import subprocess
import sys
from pathlib import Path

import pytest


ROOT = Path(__file__).resolve().parents[1]

USER_TESTS = '''
import numpy as np, pytest
import tinygrad_rep as tr
from hypothesis import given, strategies as st

class Square(tr.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x
    @staticmethod
    def backward(ctx, g):
        x, = ctx.saved_tensors
        if BROKEN:
            raise ValueError("user backward exploded")
        return g * x * 2.02

BROKEN = False

@pytest.mark.tr_backend
def test_marked(tr_backend):
    with open("seen.txt", "a") as f:
        f.write(tr.get_backend() + "\\n")
    assert tr.get_backend() == tr_backend

def test_unmarked():
    with open("seen.txt", "a") as f:
        f.write("unmarked:" + tr.get_backend() + "\\n")

def test_gradcheck_fails():
    tr.gradcheck(Square.apply, [tr.Tensor(np.array([1.0, 2.0]), requires_grad=True)])

def test_backward_raises():
    global BROKEN
    BROKEN = True
    try:
        Square.apply(tr.Tensor(np.array([1.0]), requires_grad=True)).sum().backward()
    finally:
        BROKEN = False

@given(st.integers(0, 10))
def test_hypothesis_fails(n):
    assert n < 0  # fails on every example
'''


def _run(tmp_path, *args, env=None):
    (tmp_path / "test_user.py").write_text(USER_TESTS)
    full_env = dict(os.environ, PYTHONPATH=str(ROOT), **(env or {}))
    full_env.pop("CI", None)
    full_env.pop("TINYGRAD_REP_HYPOTHESIS_PROFILE", None)
    full_env.update(env or {})
    proc = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p",
                           "tinygrad_rep.testing.plugin", "test_user.py", *args],
                          cwd=tmp_path, env=full_env, capture_output=True, text=True, timeout=300)
    return proc.returncode, proc.stdout + proc.stderr


def test_tr_backend_runs_marked_tests_on_every_backend_and_restores(tmp_path):
    code, out = _run(tmp_path, "-k", "marked", "--tr-backend", "all", "-v")
    assert code == 0, out
    for name in ("numpy", "pybind11", "cffi"):
        assert f"test_marked[{name}] PASSED" in out
    seen = (tmp_path / "seen.txt").read_text().split()
    assert sorted(s for s in seen if not s.startswith("unmarked")) == ["cffi", "numpy", "pybind11"]
    assert [s for s in seen if s.startswith("unmarked")] == ["unmarked:pybind11"]  # run once, default backend


def test_failure_reports_are_trimmed_to_the_users_frames(tmp_path):
    code, out = _run(tmp_path, "-k", "gradcheck_fails or backward_raises", env={"TINYGRAD_REP_BACKEND": "numpy"})
    assert code == 1 and "2 failed" in out
    assert "gradcheck failed for input 0 (shape (2,), dtype float64)" in out
    assert "user backward exploded" in out and "raise ValueError" in out  # the user's own frame
    assert "tinygrad_rep/gradcheck.py" not in out and "tinygrad_rep/autograd.py" not in out
    code, full = _run(tmp_path, "-k", "backward_raises", "--tr-full-trace")
    assert code == 1 and "tinygrad_rep/autograd.py" in full


def test_profiles_and_the_seed(tmp_path):
    code, out = _run(tmp_path, "-k", "hypothesis_fails")
    assert code == 1
    assert "tinygrad_rep: hypothesis profile tr-dev, seed " in out
    seed = out.split("tinygrad_rep: hypothesis profile tr-dev, seed ")[1].split()[0]
    assert f"replay this run's examples with: pytest test_user.py::test_hypothesis_fails --hypothesis-seed={seed}" in out
    code, out = _run(tmp_path, "-k", "hypothesis_fails", env={"TINYGRAD_REP_HYPOTHESIS_PROFILE": "ci"})
    assert "tinygrad_rep: hypothesis profile tr-ci\n" in out and "--hypothesis-seed=" not in out
    code, out = _run(tmp_path, "-k", "unmarked", "--tr-profile", "none")
    assert code == 0 and "tinygrad_rep: hypothesis profile" not in out
    code, out = _run(tmp_path, "--tr-profile", "fast")
    assert code != 0 and "unknown hypothesis profile 'fast'" in out


def test_registered_as_a_pytest11_entry_point_named_after_the_module():
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
    plugins = meta["project"]["entry-points"]["pytest11"]
    assert plugins == {"tinygrad_rep.testing.plugin": "tinygrad_rep.testing.plugin"}
    import tinygrad_rep.testing.plugin as plugin
    assert plugin.__name__ == "tinygrad_rep.testing.plugin"
