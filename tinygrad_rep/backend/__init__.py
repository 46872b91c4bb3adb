"""Backend selection: which implementation of the kernels the ops call.

Three backends expose the same functions (see numpy_ref.KERNELS):
  "pybind11"  tinygrad_rep._C       (the default when built)
  "cffi"      tinygrad_rep._C_cffi
  "numpy"     numpy_ref, the reference and oracle
Ops reach kernels only through `current()`. The starting choice comes from the environment
variable TINYGRAD_REP_BACKEND; a backend that is not built raises ImportError naming what is
missing: there is never a silent fallback to numpy.
"""
import importlib
import os
import time

from . import numpy_ref

BACKENDS = {"pybind11": ".pybind", "cffi": ".cffi", "numpy": ".numpy_ref"}
ENV_VAR = "TINYGRAD_REP_BACKEND"

_current = None
# Kernel timers (the profiler): callables timer(kernel_name, start, seconds). While the list
# is non-empty, current() returns a proxy of the backend whose kernels report their duration;
# when it is empty, current() returns the module itself (one extra truth test).
_kernel_timers = []
_timed = None  # (backend module, its timing proxy), rebuilt when the backend changes


def _load(name):
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}; choose one of {sorted(BACKENDS)}")
    return importlib.import_module(BACKENDS[name], __name__)


def set_backend(name):
    """Make `name` ("pybind11", "cffi" or "numpy") the backend every op uses from now on."""
    global _current
    _current = _load(name)
    return _current


def get_backend():
    """The name of the backend in use."""
    return current().NAME


def current():
    """The backend module in use (chosen lazily from TINYGRAD_REP_BACKEND, default pybind11)."""
    if _current is None:
        set_backend(os.environ.get(ENV_VAR, "pybind11"))
    if _kernel_timers:
        return _timed_proxy()
    return _current


class _TimedBackend:
    """The current backend seen through a stopwatch: each kernel call is timed and reported to
    every registered kernel timer; any other attribute is the module's own."""

    def __init__(self, module):
        self._module = module
        for name in numpy_ref.KERNELS:
            fn = getattr(module, name, None)
            if fn is not None:
                setattr(self, name, _timed_kernel(name, fn))

    def __getattr__(self, name):
        return getattr(self._module, name)


def _timed_kernel(name, fn):
    def timed(*args, **kwargs):
        t0 = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            seconds = time.perf_counter() - t0
            for timer in list(_kernel_timers):
                timer(name, t0, seconds)
    timed.__name__, timed.__doc__ = name, fn.__doc__
    return timed


def _timed_proxy():
    global _timed
    if _timed is None or _timed[0] is not _current:
        _timed = (_current, _TimedBackend(_current))
    return _timed[1]


def add_kernel_timer(timer):
    """Time every kernel call from now on: timer(kernel_name, start, seconds) is called after each
    (start from time.perf_counter). Used by tr.profile(); costs nothing while no timer is set."""
    _kernel_timers.append(timer)


def remove_kernel_timer(timer):
    """Stop reporting kernel calls to `timer` (no error if it is not registered)."""
    if timer in _kernel_timers:
        _kernel_timers.remove(timer)


def backend_info():
    """Backend name, SIMD level in use, thread count and compiler flags of the current backend."""
    return current().info()
