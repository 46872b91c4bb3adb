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

from . import numpy_ref

BACKENDS = {"pybind11": ".pybind", "cffi": ".cffi", "numpy": ".numpy_ref"}
ENV_VAR = "TINYGRAD_REP_BACKEND"

_current = None


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
    return _current


def backend_info():
    """Backend name, SIMD level in use, thread count and compiler flags of the current backend."""
    return current().info()
