"""Testing helpers shipped with tinygrad_rep.

`tinygrad_rep.testing.strategies` holds hypothesis strategies for property-testing ops and
their gradients (shapes, broadcastable shapes, axes, matmul operands, inputs kept away from
kinks). It needs the `hypothesis` package (`pip install hypothesis`), which the library
itself does not depend on: the submodule is imported lazily, on first use of `strategies`.

    import tinygrad_rep as tr
    from tinygrad_rep.testing import strategies as trst
"""
import importlib

__all__ = ["strategies"]


def __getattr__(name):
    # Lazy: `import tinygrad_rep.testing` must not require hypothesis.
    if name == "strategies":
        module = importlib.import_module(".strategies", __name__)
        globals()[name] = module
        return module
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
