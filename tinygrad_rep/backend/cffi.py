"""The cffi backend: numpy_ref's functions, computed by the C kernels in tinygrad_rep._C_cffi.

Same functions, arguments, return values and errors as numpy_ref and the pybind11 backend,
each built from its row of the kernel table (kernels.py) by _adapter.define with this body
(relu_forward's):

    c = _check(x, out)                # _checks.prepare_relu_forward -> (n, x, out)
    _kernel[c[1].dtype.char](c[0], _in(c[1]), _out(c[2]))    # lib.tr_relu_forward_f32 or _f64
    return c[2]

The C kernel `lib.tr_*` is called with pointers into the arrays (cffi releases the GIL around
API-mode calls). The C side trusts these pointers, so nothing reaches `lib` without going
through the check step.
"""
import os
import warnings

from . import _adapter
from . import _checks as ck
from . import kernels
from . import numpy_ref

try:
    from .._C_cffi import ffi, lib
except ImportError as exc:  # never fall back silently: say what is missing and how to build it
    raise ImportError(
        f"the cffi backend needs the compiled extension module tinygrad_rep._C_cffi, which could "
        f"not be imported ({exc}); build it with `pip install -e .` in the repository root",
        name="tinygrad_rep._C_cffi") from exc

NAME = "cffi"
KERNELS = numpy_ref.KERNELS

_problem = ck.env_num_threads_problem(os.environ.get("TINYGRAD_REP_NUM_THREADS"))
if _problem:
    warnings.warn(_problem, RuntimeWarning, stacklevel=2)

_from_buffer = ffi.from_buffer
# C array type of each accepted dtype (by dtype.char), for ffi.from_buffer
_CTYPE = {"f": "float[]", "d": "double[]"}


def _in(x):
    """A read-only pointer to a float array's data."""
    return _from_buffer(_CTYPE[x.dtype.char], x)


def _out(x):
    """A writable pointer to a float array's data (cffi refuses a read-only buffer)."""
    return _from_buffer(_CTYPE[x.dtype.char], x, require_writable=True)


def _idx(i):
    """A pointer to an int64 array's data."""
    return _from_buffer("int64_t[]", i)


def _idx_out(i):
    """A writable pointer to an int64 array's data."""
    return _from_buffer("int64_t[]", i, require_writable=True)


def _f64(x):
    """A read-only pointer to a float64 array's data."""
    return _from_buffer("double[]", x)


def _pointer(arg):
    """The name of the function above that makes the C pointer for a table argument, or None."""
    if arg.role in (kernels.SIZE, kernels.FLAG, kernels.SCALAR, kernels.SEED, kernels.DERIVED):
        return None
    if arg.dtype == "i64":
        return "_idx_out" if arg.role in kernels.WRITTEN else "_idx"
    if arg.dtype == "f64":
        return "_f64"
    return "_out" if arg.role in kernels.WRITTEN else "_in"


def _function(row):
    """The backend function of one table row (see the module docstring)."""
    args = ", ".join(f"{_pointer(a)}(c[{i}])" if _pointer(a) else f"c[{i}]" for i, a in enumerate(row.args))
    kernel = (getattr(lib, "tr_" + row.c_names[0]) if not row.variants
              else {"f": getattr(lib, "tr_" + row.c_names[0]), "d": getattr(lib, "tr_" + row.c_names[1])})
    pick = "" if not row.variants else f"[c[{_adapter.lead(row)}].dtype.char]"
    body = [f"c = _check({', '.join(_adapter.params(row))})", f"_kernel{pick}({args})",
            f"return {_adapter.result(row)}"]
    return _adapter.define(__name__, row, body, {
        "_check": _adapter.check_function(row), "_kernel": kernel, "_in": _in, "_out": _out,
        "_idx": _idx, "_idx_out": _idx_out, "_f64": _f64})


for _row in kernels.KERNELS:
    globals()[_row.name] = _function(_row)
del _row


def set_num_threads(n):
    """Set the number of OpenMP threads this extension's kernels may use (n < 1 means 1)."""
    lib.tr_set_num_threads(max(0, min(int(n), 1 << 20)))  # into C int range; C clamps further


def get_num_threads():
    """The number of threads this extension's kernels may use."""
    return lib.tr_get_num_threads()


def info():
    return {"backend": NAME, "simd": ffi.string(lib.tr_simd_level()).decode(),
            "threads": lib.tr_get_num_threads(),
            "compiler_flags": ffi.string(lib.tr_build_flags()).decode()}
