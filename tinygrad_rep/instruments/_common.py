"""Shared pieces of the instruments: the observer base class, where user code created a node,
norms, number and table formatting, JSON text.

An instrument is an observer of the autograd engine (see autograd._observers): entering its
`with` block appends it to the observer list, leaving removes it, so nothing is observed and
nothing costs anything outside the block.
"""
import json
import os
import sys

import numpy as np

from .. import autograd
# every instrument writes its files through the library's one atomic writer (output.py)
from ..output import write_text_atomic as write_text  # noqa: F401

_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Parts of the package that are user-level code (models, commands, the tour): a creation site
# inside them is worth showing. Everything else in the package is the engine itself.
_USER_LEVEL = ("models", "commands", os.path.join("instruments", "tour.py"), "examples")


class Observer:
    """Base class of the instruments: a context manager that observes the engine while active.

    Subclasses override any of the callbacks; the defaults do nothing.
    """

    def __enter__(self):
        autograd._observers.append(self)
        return self

    def __exit__(self, *exc):
        if self in autograd._observers:
            autograd._observers.remove(self)
        return False

    def before_forward(self, ctx):
        """Called before an op's forward runs (ctx: its Function node)."""

    def after_forward(self, ctx, out, seconds):
        """Called after an op's forward: its output Tensor and the seconds it took."""

    def before_backward(self, node, grad_out):
        """Called before a node's backward: node is its output Tensor, grad_out dL/d(node)."""

    def after_backward(self, node, grad_out, input_grads, seconds, accumulated):
        """Called after a node's backward: the gradients sent to its inputs (None where none),
        the seconds it took, and per input whether the gradient was added to a pending one."""


def is_engine_file(filename):
    """True for a source file of the engine (tensor, autograd, ops, nn, ...), not user code."""
    path = os.path.abspath(filename)
    if not path.startswith(_PACKAGE_DIR + os.sep):
        return False
    rel = path[len(_PACKAGE_DIR) + 1:]
    return not rel.startswith(_USER_LEVEL)


class Site:
    """Where user code created a node: file, line, function and the source line itself."""

    __slots__ = ("filename", "lineno", "function", "code")

    def __init__(self, filename, lineno, function, code):
        self.filename, self.lineno, self.function, self.code = filename, lineno, function, code

    def __str__(self):
        return f"{self.filename}:{self.lineno} in {self.function}"

    def to_dict(self):
        return {"file": self.filename, "line": self.lineno, "function": self.function, "code": self.code}


def user_site(depth=1):
    """The first stack frame (starting `depth` frames above the caller) outside the engine."""
    import linecache
    frame = sys._getframe(depth + 1)
    while frame is not None and is_engine_file(frame.f_code.co_filename):
        frame = frame.f_back
    if frame is None:
        return None
    code = frame.f_code
    line = linecache.getline(code.co_filename, frame.f_lineno).strip()
    return Site(code.co_filename, frame.f_lineno, code.co_name, line)


def short_path(filename):
    """A file name relative to the working directory when it is below it (shorter messages)."""
    try:
        rel = os.path.relpath(filename)
    except ValueError:
        return filename
    return filename if rel.startswith("..") else rel


def norm(x):
    """L2 norm of a Tensor or array as a Python float (None stays None), computed in float64."""
    if x is None:
        return None
    a = x.data if hasattr(x, "data") and not isinstance(x, np.ndarray) else x
    a = np.asarray(a)
    if a.size == 0:
        return 0.0
    return float(np.sqrt(np.sum(np.square(a, dtype=np.float64))))


def label_of(t):
    """How a tensor is called in tables and drawings: its name (intermediates too: `h.name = "h"`),
    else its op, else 'leaf' / 'const'."""
    if t.name:
        return t.name
    if t._ctx is not None:
        return t._ctx.name
    return "leaf" if t.requires_grad else "const"


def shape_str(shape):
    return "(" + ", ".join(str(n) for n in shape) + ("," if len(shape) == 1 else "") + ")"


def fmt(x, spec=".3g"):
    return "-" if x is None else format(x, spec)


def format_array(a, max_elements=8, digits=4):
    """Signed numbers for a small array ("[[1, -2.5], [0.25, 3]]", a scalar as "-0.5"), or a
    summary for one with more than max_elements elements ("min -1.2 mean 0.031 max 2.4")."""
    if a is None:
        return "-"
    a = np.asarray(a._data if hasattr(a, "_data") else a)
    spec = f".{digits}g"
    if a.size == 0:
        return "[] (empty)"
    if a.size > max_elements:
        f = a.astype(np.float64)
        return f"min {format(f.min(), spec)} mean {format(f.mean(), spec)} max {format(f.max(), spec)}"

    def one(x):
        return format(float(x), spec) if a.dtype.kind in "fiub" else str(x)

    def nest(x):
        if x.ndim == 0:
            return one(x)
        return "[" + ", ".join(nest(r) for r in x) + "]"
    return nest(a)


def table(headers, rows, align=None):
    """Plain-text table: columns padded to their widest cell; align is a string of 'l'/'r'."""
    cells = [[str(c) for c in headers]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    align = align or "l" * len(headers)

    def line(r):
        return "  ".join(c.ljust(w) if a == "l" else c.rjust(w) for c, w, a in zip(r, widths, align)).rstrip()
    out = [line(cells[0]), "  ".join("-" * w for w in widths)]
    out += [line(r) for r in cells[1:]]
    return "\n".join(out)


def dumps(obj, indent=1):
    """JSON text; NaN and infinities (a trace of a broken backward has them) become strings."""
    return json.dumps(_clean(obj), indent=indent, allow_nan=False, default=_json_default)


def _clean(o):
    if isinstance(o, np.ndarray):
        return _clean(o.tolist())
    if isinstance(o, float) and not np.isfinite(o):
        return "NaN" if o != o else ("Infinity" if o > 0 else "-Infinity")
    if isinstance(o, dict):
        return {k: _clean(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_clean(v) for v in o]
    if isinstance(o, np.generic):
        return _clean(o.item())
    return o


def _json_default(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, tuple):
        return list(o)
    raise TypeError(f"not JSON serializable: {type(o).__name__}")
