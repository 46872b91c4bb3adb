"""The pybind11 backend: numpy_ref's functions, computed by the C kernels in tinygrad_rep._C.

Every function has numpy_ref's name, arguments, return value and errors, and is built from its
row of the kernel table (kernels.py) by _adapter.define, with this body (relu_forward's):

    r = _fast(x, out)                 # _C._fast_relu_forward: the C++ fast path
    if r is not None:
        return r
    c = _check(x, out)                # _checks.prepare_relu_forward -> (n, x, out)
    _kernel[c[1].dtype.char](*c)      # _C.relu_forward_f32 or _f64, checked again in C++
    return c[2]

The fast path runs the kernel straight from the caller's arrays when they pass every check in
C++ (dtype, layout, shapes, writeable, no overlap, index ranges; see csrc/pybind_fast.h) and
returns None otherwise; only then the Python checks run, which raise numpy_ref's errors or copy
what needs copying. The work per call is kept small on purpose because the autograd engine calls
these on tiny arrays too. Outputs not given come from the buffer pool (pool.py) in both paths.
"""
import os
import warnings

import numpy as np

from . import _adapter
from . import _checks as ck
from . import kernels
from . import numpy_ref

try:
    from .. import _C
except ImportError as exc:  # never fall back silently: say what is missing and how to build it
    raise ImportError(
        f"the pybind11 backend needs the compiled extension module tinygrad_rep._C, which could "
        f"not be imported ({exc}); build it with `pip install -e .` in the repository root",
        name="tinygrad_rep._C") from exc

NAME = "pybind11"
KERNELS = numpy_ref.KERNELS

_problem = ck.env_num_threads_problem(os.environ.get("TINYGRAD_REP_NUM_THREADS"))
if _problem:
    warnings.warn(_problem, RuntimeWarning, stacklevel=2)




def _function(row):
    """The backend function of one table row (see the module docstring)."""
    names = [a.py for a in row.args if a.py is not None]
    run = "_kernel(*c)" if not row.variants else f"_kernel[c[{_adapter.lead(row)}].dtype.char](*c)"
    body = ([f"r = _fast({', '.join(names)})", "if r is not None:", "    return r"]
            if hasattr(_C, "_fast_" + row.name) else [])
    body += [f"c = _check({', '.join(_adapter.params(row))})", run, f"return {_adapter.result(row)}"]
    kernel = (getattr(_C, row.c_names[0]) if not row.variants
              else {"f": getattr(_C, row.c_names[0]), "d": getattr(_C, row.c_names[1])})
    return _adapter.define(__name__, row, body, {
        "_fast": getattr(_C, "_fast_" + row.name, None), "_check": _adapter.check_function(row),
        "_kernel": kernel})


for _row in kernels.KERNELS:
    globals()[_row.name] = _function(_row)
del _row


def set_num_threads(n):
    """Set the number of OpenMP threads this extension's kernels may use (n < 1 means 1)."""
    _C.set_num_threads(max(0, min(int(n), 1 << 20)))  # into C int range; C clamps further


def get_num_threads():
    """The number of threads this extension's kernels may use."""
    return _C.get_num_threads()


def info():
    return {"backend": NAME, "simd": _C.simd_level(), "threads": _C.get_num_threads(),
            "compiler_flags": _C.build_flags()}
