"""The gradient-testing kit shipped with tinygrad_rep: test your own ops (or the library's) in one line.

    import tinygrad_rep as tr
    from tinygrad_rep.testing import check_op, strategies as trst

    check_op(fn, *arrays_or_strategies, reference=numpy_fn, gradgrad=True, backends="all")

- `check_op` (testing/check.py): forward against a reference, gradients by tr.gradcheck (kink-aware,
  fast random-projection mode for big inputs, complex step where an op declares it), second
  derivatives by tr.gradgradcheck, on one or every backend.
- `strategies` (testing/strategies.py): hypothesis strategies for shapes, broadcasting, axes,
  matmul operands, inputs away from kinks, big seeded arrays, index arrays, memory layouts.
- `plugin` (testing/plugin.py): the pytest plugin, active when the package is installed:
  hypothesis profiles, `--tr-backend`, tracebacks trimmed to the user's own frames.

`strategies` needs the `hypothesis` package (`pip install hypothesis`), which the library itself
does not depend on, so it is imported lazily, on first use.
"""
import importlib

from .check import ALL_BACKENDS, check_op

__all__ = ["check_op", "strategies", "ALL_BACKENDS"]


def __getattr__(name):
    # Lazy: `import tinygrad_rep.testing` must not require hypothesis.
    if name == "strategies":
        module = importlib.import_module(".strategies", __name__)
        globals()[name] = module
        return module
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
