"""The libraries measured side by side (ours, numpy/OpenBLAS, PyTorch, gensim): which are
installed, how many threads each uses, and the process environment they start in.

- Process environment (`prepare_process_env`, called by run.py before numpy is imported):
  OpenBLAS reads its environment once, when numpy loads it. Where OPENBLAS_CORETYPE /
  OPENBLAS_L2_SIZE are set on a machine (they keep old OpenBLAS builds correct but slow a current
  numpy down), both are unset for this benchmark process only; OPENBLAS_NUM_THREADS is set to the
  largest thread count the run uses, and threadpoolctl lowers it per measurement.
- Threads (`threads(n)`): one context manager sets the thread count of every library in the
  process: our two extensions (`set_num_threads`; each extension module has its own count), the
  BLAS that numpy uses (threadpoolctl) and PyTorch (`torch.set_num_threads`).
- Grad mode (`grad_off`): ours and PyTorch's switched off together, once, outside the timed
  calls, so neither side pays for entering it inside a measurement and the other not.

This module imports only the standard library at load time, so run.py can fix the environment
before numpy is imported.
"""
import contextlib
import importlib
import os
import sys

OPENBLAS_SLOW_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")

# What prepare_process_env changed, reported in machine.machine_info.
ENV_CHANGES = {}


def prepare_process_env(max_threads):
    """Set up this process's environment for benchmarking; call before numpy is imported.

    Unsets OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE (both together, in this process only), sets
    OPENBLAS_NUM_THREADS to max_threads (the BLAS thread pool's size; `threads()` lowers it per
    measurement) and TINYGRAD_REP_NUM_THREADS to max_threads (our kernels' starting count).
    Returns the dict of changes, also kept for machine.machine_info(). Called after numpy was imported,
    the OpenBLAS part has no effect on numpy, and the report says so.
    """
    changes = {"numpy_already_loaded": "numpy" in sys.modules, "unset": {}, "set": {}}
    for name in OPENBLAS_SLOW_VARS:
        if name in os.environ:
            changes["unset"][name] = os.environ.pop(name)
    for name in ("OPENBLAS_NUM_THREADS", "TINYGRAD_REP_NUM_THREADS"):
        changes["set"][name] = str(max_threads)
        os.environ[name] = str(max_threads)
    ENV_CHANGES.clear()
    ENV_CHANGES.update(changes)
    return changes


def cpu_count():
    """The number of cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def optional(module):
    """The module if it can be imported, else None (torch, gensim, threadpoolctl, matplotlib)."""
    try:
        return importlib.import_module(module)
    except Exception:  # an optional baseline that fails to import is absent, whatever the reason
        return None


def our_backends():
    """Our extension-backed backend modules that are built ({name: module})."""
    found = {}
    for name, mod in (("pybind11", "tinygrad_rep.backend.pybind"), ("cffi", "tinygrad_rep.backend.cffi")):
        m = optional(mod)
        if m is not None:
            found[name] = m
    return found


@contextlib.contextmanager
def threads(n):
    """Run the block with every library limited to n threads: our extensions, numpy's BLAS, torch.

    Torch is set only when it is already imported (a suite that uses it imports it first).
    The previous counts are restored afterwards.
    """
    n = int(n)
    ours = our_backends()
    before = {name: m.get_num_threads() for name, m in ours.items()}
    for m in ours.values():
        m.set_num_threads(n)
    torch = sys.modules.get("torch")
    torch_before = torch.get_num_threads() if torch is not None else None
    if torch is not None:
        torch.set_num_threads(n)
    tpc = optional("threadpoolctl")
    limiter = (tpc.threadpool_limits(limits=n, user_api="blas") if tpc is not None
               else contextlib.nullcontext())
    try:
        with limiter:
            yield n
    finally:
        for name, m in ours.items():
            m.set_num_threads(before[name])
        if torch is not None:
            torch.set_num_threads(torch_before)


def blas_threads_controllable():
    """True when numpy's BLAS thread count can be changed at run time (threadpoolctl present)."""
    return optional("threadpoolctl") is not None


@contextlib.contextmanager
def grad_off(torch=None):
    """Run the block with gradient recording off in our library and, when given, in PyTorch.

    Entered once around a whole side-by-side measurement: every implementation then runs its
    forward the same way (no context manager entered per call on either side)."""
    import tinygrad_rep as tr
    with tr.no_grad(), (torch.no_grad() if torch is not None else contextlib.nullcontext()):
        yield
