"""Building an adapter's backend functions (pybind.py, cffi.py) from the kernel table.

For each row of kernels.KERNELS, `define` writes one plain Python function with numpy_ref's
name, signature (defaults included) and docstring, whose body the adapter gives: the C call of
its binding around the row's check function. The function is compiled from source once at import
(as collections.namedtuple and dataclasses do) so that a call costs what a hand-written function
would: no argument binding, no loops over the table, positional calls only. `source` shows the
text of any backend function (`print(_adapter.source(pybind.relu_forward))`).
"""
import inspect

from . import _checks, kernels, numpy_ref


def params(row):
    """numpy_ref's parameter names of a row's kernel, in order."""
    names = list(inspect.signature(getattr(numpy_ref, row.name)).parameters)
    missing = [a.py for a in row.args if a.py is not None and a.py not in names]
    if missing:
        raise TypeError(f"kernel table: {row.name}'s arguments {missing} are not parameters of "
                        f"numpy_ref.{row.name}{tuple(names)}")
    return names


def check_function(row):
    """The function that checks numpy_ref-style arguments of a row and returns its C arguments."""
    return getattr(_checks, row.check) if row.check else _checks.generic_prepare(row, params(row))


def lead(row):
    """The C position of the first array of the kernel's float dtype (it picks f32 or f64)."""
    return next(i for i, a in enumerate(row.args) if a.dtype == "T" and a.role != kernels.SIZE)


def result(row, c="c"):
    """The expression of numpy_ref's return value, from the C arguments tuple `c`."""
    parts = [f"{c}[{i}]" for i in row.result]
    return parts[0] if len(parts) == 1 else "(" + ", ".join(parts) + ")"


def define(module_name, row, body, env):
    """The function `row.name` of module `module_name`: def name(<numpy_ref's params>): <body>.
    body: lines, each indented by four spaces; env: the globals it reads."""
    ref = getattr(numpy_ref, row.name)
    names = params(row)
    text = f"def {row.name}({', '.join(names)}):\n" + "".join(f"    {line}\n" for line in body)
    namespace = dict(env)
    exec(compile(text, f"<{module_name}.{row.name}>", "exec"), namespace)  # noqa: S102 (text built above)
    fn = namespace[row.name]
    fn.__defaults__, fn.__kwdefaults__ = ref.__defaults__, ref.__kwdefaults__
    fn.__doc__, fn.__module__, fn.__qualname__ = ref.__doc__, module_name, row.name
    fn._source = text
    return fn


def source(fn):
    """The generated text of a backend function (for readers and debugging)."""
    return fn._source
