"""The pytest plugin of tinygrad_rep's testing kit.

Registered as the `pytest11` entry point "tinygrad_rep.testing.plugin", so it is active in every
pytest run once the package is installed; no conftest.py needed. (From a source tree that is not
installed: `pytest -p tinygrad_rep.testing.plugin`. Loading it both ways is harmless: pytest
registers a plugin once per name, and both ways use this module's name.) `-p
no:tinygrad_rep.testing.plugin` switches it off.

What it does:
- Hypothesis profiles "tr-dev" (10 examples), "tr-ci" (25, derandomized: the same examples on every
  run, no example database) and "tr-thorough" (300). All have no deadline (first calls load the C
  kernels and numerical checks vary in cost), print the reproduction blob of a failure, and cap
  shrinking at 30 s (hypothesis' own cap is 5 min). Chosen by `--tr-profile NAME`, else the
  environment variable TINYGRAD_REP_HYPOTHESIS_PROFILE, else "ci" when CI is set, else "dev";
  `--tr-profile none` (or `--hypothesis-profile ...`) leaves hypothesis' settings alone.
- The seed: unless the profile is derandomized or `--hypothesis-seed` is given, one seed is drawn
  per run, shown in the header and, under a failing hypothesis test, as the option that replays it.
- Warm-up: after collection, if the tests import tinygrad_rep, one tiny op on each backend, so
  loading the C extensions is not charged to the first example of the first test.
- `--tr-backend NAME` (repeatable; numpy, pybind11, cffi or all): every test marked
  `@pytest.mark.tr_backend` runs once per backend, with the backend set (and restored) around it;
  the test can take the `tr_backend` fixture to see which. Without the option, marked tests run
  on the current backend; `@pytest.mark.tr_backend("numpy", "cffi")` restricts the set.
- Failure reports trimmed to the user's own frames: frames inside the tinygrad_rep package are
  left out of tracebacks (the frame that raised is kept), `--tr-full-trace` shows them all. Tests
  of the library's own source tree keep them (there they are the developer's own frames); the
  checker's frames (gradcheck, check_op) are hidden everywhere.
"""
import os
import random
import sys

import pytest

_PROFILE_ENV = "TINYGRAD_REP_HYPOTHESIS_PROFILE"
_BACKENDS = ("numpy", "pybind11", "cffi")
_SHRINK_SECONDS = 30
_state = {"profile": None, "seed": None, "full_trace": False}


def pytest_addoption(parser):
    group = parser.getgroup("tinygrad_rep", "tinygrad_rep testing kit")
    group.addoption("--tr-profile", default=None,
                    help="hypothesis profile: dev, ci, thorough or none (default: env "
                         f"{_PROFILE_ENV}, else ci when CI is set, else dev)")
    group.addoption("--tr-backend", action="append", default=None, choices=_BACKENDS + ("all",),
                    help="run tests marked tr_backend on this backend (repeatable; 'all' = every one)")
    group.addoption("--tr-full-trace", action="store_true", default=False,
                    help="show tinygrad_rep's own frames in failure tracebacks")


def _register_profiles():
    from hypothesis import HealthCheck, settings
    common = dict(deadline=None, print_blob=True, suppress_health_check=[HealthCheck.too_slow])
    settings.register_profile("tr-dev", max_examples=10, **common)
    settings.register_profile("tr-ci", max_examples=25, derandomize=True, database=None, **common)
    settings.register_profile("tr-thorough", max_examples=300, **common)
    return settings


def _chosen_profile(config):
    name = config.getoption("tr_profile") or os.environ.get(_PROFILE_ENV) or (
        "ci" if os.environ.get("CI") else "dev")
    name = name[3:] if name.startswith("tr-") else name
    if name not in ("dev", "ci", "thorough", "none"):
        raise pytest.UsageError(f"tinygrad_rep: unknown hypothesis profile {name!r} "
                                f"(choose dev, ci, thorough or none)")
    return name


def pytest_configure(config):
    config.addinivalue_line("markers", "tr_backend(*names): run this test once per backend chosen "
                                       "with --tr-backend (tinygrad_rep)")
    try:
        settings = _register_profiles()
    except ImportError:  # no hypothesis: profiles and seeds do not apply
        return
    name = _chosen_profile(config)
    user_profile = getattr(config.option, "hypothesis_profile", None)
    if name == "none" or user_profile:
        return
    settings.load_profile(f"tr-{name}")
    _state["profile"] = f"tr-{name}"
    try:  # cap shrinking; hypothesis keeps the limit as a module constant
        from hypothesis.internal.conjecture import engine
        if getattr(engine, "MAX_SHRINKING_SECONDS", 0) > _SHRINK_SECONDS:
            engine.MAX_SHRINKING_SECONDS = _SHRINK_SECONDS
    except ImportError:
        pass
    if not settings.default.derandomize and getattr(config.option, "hypothesis_seed", None) is None:
        from hypothesis import core
        seed = random.SystemRandom().randrange(2 ** 32)
        core.global_force_seed = seed
        _state["seed"] = seed


def pytest_report_header(config):
    if _state["profile"] is None:
        return None
    seed = "" if _state["seed"] is None else f", seed {_state['seed']} (--hypothesis-seed={_state['seed']} replays)"
    return f"tinygrad_rep: hypothesis profile {_state['profile']}{seed}"


def pytest_collection_finish(session):
    if "tinygrad_rep" not in sys.modules:
        return
    _warm_up()


def _warm_up():
    """One tiny op through each backend's kernels, so the first example does not pay for loading."""
    import numpy as np

    import tinygrad_rep as tr
    prev = tr.get_backend()
    try:
        for name in _BACKENDS:
            try:
                tr.set_backend(name)
            except ImportError:  # an unbuilt backend is the tests' business, not the warm-up's
                continue
            x = tr.Tensor(np.ones((2, 3)), requires_grad=True)
            (x @ x.T).relu().log_softmax(-1).sum().backward()
    finally:
        tr.set_backend(prev)


# ---------------------------------------------------------------- backends

def _selected_backends(config, marker):
    chosen = config.getoption("tr_backend")
    if not chosen:
        return [None]
    names = []
    for c in chosen:
        for n in (_BACKENDS if c == "all" else (c,)):
            if n not in names:
                names.append(n)
    if marker.args:
        names = [n for n in names if n in marker.args]
    return names


def pytest_generate_tests(metafunc):
    marker = metafunc.definition.get_closest_marker("tr_backend")
    if marker is None:
        return
    names = _selected_backends(metafunc.config, marker)
    if names == [None]:
        if "tr_backend" in metafunc.fixturenames:
            metafunc.parametrize("tr_backend", [None], indirect=True, ids=["current"])
        return
    if "tr_backend" not in metafunc.fixturenames:
        metafunc.fixturenames.append("tr_backend")
    metafunc.parametrize("tr_backend", names, indirect=True, ids=names)


@pytest.fixture
def tr_backend(request):
    """The backend this test runs on (set for the test and restored afterwards)."""
    import tinygrad_rep as tr
    name = getattr(request, "param", None)
    prev = tr.get_backend()
    if name is not None:
        tr.set_backend(name)
    try:
        yield tr.get_backend()
    finally:
        tr.set_backend(prev)


# ---------------------------------------------------------------- failure reports

class _HideLibraryFrame:
    """pytest's __tracebackhide__ protocol, set on tinygrad_rep's modules: hide their frames in a
    failure's traceback, except the frame that raised (its line says what went wrong)."""

    def __init__(self, module_globals):
        self.module_globals = module_globals

    def __call__(self, excinfo):
        if _state["full_trace"]:
            return False
        tb = excinfo.tb
        while tb.tb_next is not None:
            tb = tb.tb_next
        return tb.tb_frame.f_globals is not self.module_globals


def _inside_library_checkout(item):
    """True for tests of tinygrad_rep's own source tree (the folder holding the package): there the
    library's frames are the developer's own, so they stay."""
    mod = sys.modules.get("tinygrad_rep")
    if mod is None or getattr(mod, "__file__", None) is None:
        return False
    root = os.path.dirname(os.path.dirname(os.path.abspath(mod.__file__))) + os.sep
    return os.path.abspath(str(item.path)).startswith(root)


def _install_frame_hiding():
    for name, mod in list(sys.modules.items()):
        if mod is None or not (name == "tinygrad_rep" or name.startswith("tinygrad_rep.")):
            continue
        d = getattr(mod, "__dict__", None)
        if d is not None and "__tracebackhide__" not in d:
            d["__tracebackhide__"] = _HideLibraryFrame(d)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    if call.excinfo is not None:
        _state["full_trace"] = item.config.getoption("tr_full_trace") or _inside_library_checkout(item)
        _install_frame_hiding()
    outcome = yield
    report = outcome.get_result()
    if report.failed and _state["seed"] is not None and _is_hypothesis_test(item):
        report.sections.append(("tinygrad_rep", f"replay this run's examples with: pytest "
                                                f"{item.nodeid} --hypothesis-seed={_state['seed']}"))


def _is_hypothesis_test(item):
    try:
        from hypothesis import is_hypothesis_test
    except ImportError:
        return False
    return is_hypothesis_test(getattr(item, "obj", None))
