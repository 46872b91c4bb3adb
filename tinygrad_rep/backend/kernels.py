"""The kernel table: one row per C kernel, the one description both bindings and the checks read.

A row names a kernel of csrc/tinygrad_rep.h (without "tr_" and without the _f32/_f64 suffix
when it comes in both float dtypes) and lists its C arguments in C order, each with its role:

    size("n")                    an int64_t size; its value is the shape symbol of that name
    array("x", "*n")             an array of the kernel's float dtype, read; its shape pattern
    array("out", "*n", "out")    ... written (the caller's or a new array; returned when listed)
    array("W", "V d", "inout")   ... updated in place (always the caller's, never copied)
    index("t", "B", below="C")   an int64_t index array with every entry in [0, C)
    flag("trans_a")              an int taken from a Python bool
    scalar("lr")                 a float/double taken from a Python number

Shape patterns say how each Python array's shape binds the sizes, one token per axis: a name
binds (or must equal) that symbol; "?batch" is an axis that may be absent (then batch = 1); "*n"
stands for any number of leading axes whose product is n (and an output with "*n" gets the very
shape of the array that bound it). A symbol that is not a size argument (the V of "V d") is a
table height: the raw binding only asks that the element count be a multiple of the other axes.

From a row:
  - the raw pybind11 functions (_C.<kernel>_f32 ...) check sizes, element counts, alignment,
    writeable outputs, index ranges and overlap before C runs (csrc/bind_pybind.cpp);
  - the pybind11 fast path (_C._fast_<kernel>) runs the kernel straight from numpy_ref-style
    arguments when every one is exactly right, else declines (csrc/pybind_fast.h);
  - the adapters (pybind.py, cffi.py) build each backend function with numpy_ref's signature;
  - the Python checks (_checks.prepare) raise numpy_ref's errors and allocate outputs; a row
    whose Python errors need more than shapes names its own check function (`check=`).
The Python signature, docstring and return value of each kernel are numpy_ref's.
This module is pure data: importable without the compiled extensions.
"""
from collections import namedtuple

FLOAT = ("f32", "f64")   # the C suffixes of a kernel that exists for float32 and float64
FIXED = ()               # a kernel with fixed dtypes (its C name has no suffix)

# role codes, shared with csrc/bind_pybind.cpp and csrc/pybind_fast.h
SIZE, IN, OUT, INOUT, INDEX, INTS, FLAG, SCALAR, SEED, SCRATCH, DERIVED = (
    "size", "in", "out", "inout", "index", "ints", "flag", "scalar", "seed", "scratch", "derived")
WRITTEN = (OUT, INOUT, SCRATCH)

Arg = namedtuple("Arg", "name role pattern py dtype sym below noun swap required_if within finite "
                        "minimum nonempty_if message count")
Arg.__doc__ = "One C argument of a kernel row (see the module docstring and the helpers below)."


def _arg(name, role, pattern="", py=None, dtype="T", sym=None, below=None, noun=None, swap=None,
         required_if=None, within=None, finite=False, minimum=0, nonempty_if=None, message=None,
         count=()):
    return Arg(name, role, tuple(pattern.split()), py, dtype, sym, below, noun, swap, required_if,
               within, finite, minimum, nonempty_if, message, count)


def size(name, sym=None, py=None, minimum=0, nonempty_if=None, message=None):
    """An int64_t size argument: the shape symbol `sym` (default: its own name), or the Python
    argument `py` given directly. minimum: the least value the Python checks accept;
    nonempty_if/message: the size must be >= 1 when that array is not empty (else `message`)."""
    return _arg(name, SIZE, py=py, dtype="i64", sym=sym or name, minimum=minimum,
                nonempty_if=nonempty_if, message=message)


def array(name, pattern, role=IN, py=None, dtype="T", swap=None, required_if=None, within=None):
    """An array argument: role IN (const T*), OUT (T*, written), INOUT (T*, updated in place).
    dtype "T" is the kernel's float dtype, "f64" always double, "i64" int64. swap: a flag
    argument that transposes the last two axes of the pattern; required_if: a flag under which
    an OUT array must be given; within: (low, high) every value must lie in (checked)."""
    return _arg(name, role, pattern, py=py or name, dtype=dtype, swap=swap,
                required_if=required_if, within=within)


def index(name, pattern, below, noun, py=None):
    """A const int64_t* index array; every entry must be in [0, below) (a symbol). noun names
    one entry in messages ("index 9 is out of range for size 2")."""
    return _arg(name, INDEX, pattern, py=py or name, dtype="i64", below=below, noun=noun)


def ints(name, pattern, py=None):
    """A const int64_t* array read as plain numbers (no range)."""
    return _arg(name, INTS, pattern, py=py or name, dtype="i64")


def flag(name, py=None):
    """An int flag, from a Python truth value."""
    return _arg(name, FLAG, py=py or name)


def scalar(name, py=None, finite=False):
    """A float or double number (the C type says which), from a Python number."""
    return _arg(name, SCALAR, py=py or name, finite=finite)


def seed(name, py=None):
    """A uint64_t, from a Python int in [0, 2**64)."""
    return _arg(name, SEED, py=py or name)


def scratch(name, count):
    """A T* work array the binding allocates: `count` elements, a sum of size names ("T + d")."""
    return _arg(name, SCRATCH, count=tuple(count.replace("+", " ").split()))


def derived(name):
    """A number the row's check function computes from the Python arguments (no fast path)."""
    return _arg(name, DERIVED)


class Kernel:
    """One row: the C kernel `name` (+ each suffix of `variants`), its C arguments in order,
    the arrays numpy_ref returns (`returns`), and optionally `check`, the name of a function in
    _checks that validates numpy_ref's arguments when shapes alone do not word its errors."""

    def __init__(self, name, variants, *args, returns, check=None):
        self.name, self.variants, self.args, self.check = name, tuple(variants), tuple(args), check
        self.returns = (returns,) if isinstance(returns, str) else tuple(returns)
        self.c_names = tuple(f"{name}_{v}" for v in self.variants) or (name,)
        self.sizes = {a.sym: i for i, a in enumerate(self.args) if a.role == SIZE}  # symbol -> C index
        self.arrays = tuple(i for i, a in enumerate(self.args) if a.role in (IN, OUT, INOUT, INDEX, INTS, SCRATCH))
        self.fast = all(a.role != DERIVED for a in self.args)
        names = [a.name for a in self.args]
        self.result = tuple(names.index(r) for r in self.returns)  # C indices of the results
        assert len(set(names)) == len(names), name
        self.py_args = tuple(i for i, a in enumerate(self.args) if a.py is not None)  # fed by Python
        self.symbols = list(self.sizes)  # size symbols first, then table heights ("V" of "V d")
        for a in self.args:
            for t in a.pattern:
                assert t[0] not in "*?" or t is a.pattern[0], (name, a.name, "*x/?x only first")
                if t.lstrip("*?") not in self.symbols:
                    self.symbols.append(t.lstrip("*?"))

    def spec(self):
        """This row as plain tuples for the C++ binding (csrc/bind_pybind.cpp reads them at
        import): (name, C names, symbols, arguments, results), all by position."""
        sym = self.symbols.index
        col = [a.name for a in self.args].index
        symbols = tuple((s, self.sizes.get(s, -1)) for s in self.symbols)
        args = []
        for a in self.args:
            tokens = tuple((sym(t.lstrip("*?")), "*?".find(t[0]) + 1 if t[0] in "*?" else 0)
                           for t in a.pattern)  # kind: 0 an axis, 1 "*" leading axes, 2 "?" optional
            lo, hi = a.within or (0.0, 0.0)
            args.append((a.name, a.role, a.dtype, tokens,
                         col(a.swap) if a.swap else -1, col(a.required_if) if a.required_if else -1,
                         a.within is not None, lo, hi, a.finite,
                         sym(a.below) if a.below else -1, a.noun or "",
                         a.py is not None, tuple(sym(c) for c in a.count),
                         sym(a.sym) if a.role == SIZE else -1, a.minimum,
                         col(a.nonempty_if) if a.nonempty_if else -1, a.message or ""))
        return self.name, self.c_names, symbols, tuple(args), self.result

    def __repr__(self):
        return f"Kernel({self.name!r})"


# ---- the table (C argument order; each row's comment in csrc/tinygrad_rep.h says what it does) ----

KERNELS = (
    Kernel("matmul", FLOAT,
           size("batch"), size("M"), size("N"), size("K"),
           array("A", "?batch M K", py="a", swap="trans_a"), flag("trans_a"),
           array("B", "?batch K N", py="b", swap="trans_b"), flag("trans_b"),
           array("C", "?batch M N", OUT, py="out", required_if="accumulate"), flag("accumulate"),
           returns="C", check="prepare_matmul"),
    Kernel("relu_forward", FLOAT,
           size("n"), array("x", "*n"), array("out", "*n", OUT),
           returns="out", check="prepare_relu_forward"),
    Kernel("relu_backward", FLOAT,
           size("n"), array("x", "*n"), array("grad", "*n"), array("out", "*n", OUT),
           returns="out", check="prepare_relu_backward"),
    Kernel("softmax_forward", FLOAT,
           size("rows"), size("cols"), array("x", "*rows cols"), array("out", "*rows cols", OUT),
           returns="out", check="prepare_softmax_forward"),
    Kernel("softmax_backward", FLOAT,
           size("rows"), size("cols"), array("y", "*rows cols"), array("grad", "*rows cols"),
           array("out", "*rows cols", OUT),
           returns="out", check="prepare_softmax_backward"),
    Kernel("log_softmax_forward", FLOAT,
           size("rows"), size("cols"), array("x", "*rows cols"), array("out", "*rows cols", OUT),
           returns="out", check="prepare_log_softmax_forward"),
    Kernel("log_softmax_backward", FLOAT,
           size("rows"), size("cols"), array("y", "*rows cols"), array("grad", "*rows cols"),
           array("out", "*rows cols", OUT),
           returns="out", check="prepare_log_softmax_backward"),
    Kernel("cross_entropy_forward", FLOAT,
           size("rows", "B"), size("cols", "C"),
           array("logits", "B C"), index("targets", "B", below="C", noun="target"),
           array("losses", "B", OUT), array("probs", "B C", OUT), array("loss", "", OUT),
           returns=("losses", "probs", "loss"), check="prepare_cross_entropy_forward"),
    Kernel("cross_entropy_backward", FLOAT,
           size("rows", "B"), size("cols", "C"),
           array("probs", "B C"), index("targets", "B", below="C", noun="target"),
           array("grad", "B"), array("out", "B C", OUT),
           returns="out", check="prepare_cross_entropy_backward"),
    Kernel("embedding_gather", FLOAT,
           size("n"), size("d"),
           array("weight", "V d"), index("indices", "n", below="V", noun="index"),
           array("out", "n d", OUT),
           returns="out", check="prepare_embedding_gather"),
    Kernel("embedding_scatter_add", FLOAT,
           size("n"), size("d"),
           array("grad", "n d"), index("indices", "n", below="V", noun="index"),
           array("out", "V d", INOUT),
           returns="out", check="prepare_embedding_scatter_add"),
    Kernel("sgns_forward_backward", FLOAT,
           size("B"), size("T", minimum=1), size("d"),
           array("center", "B d"), array("targets", "B T d"),
           array("losses", "B", OUT), array("grad_center", "B d", OUT),
           array("grad_targets", "B T d", OUT),
           returns=("losses", "grad_center", "grad_targets"), check="prepare_sgns"),
    Kernel("sgns_sgd", FLOAT,
           size("n"), size("T", minimum=1), size("d"),
           array("W_in", "Vi d", INOUT), array("W_out", "Vo d", INOUT),
           index("inputs", "n", below="Vi", noun="input"),
           index("targets", "n T", below="Vo", noun="target"),
           scalar("lr", finite=True), array("losses", "n", OUT), scratch("work", "T + d"),
           returns="losses", check="prepare_sgns_sgd"),
    Kernel("sample_negatives", FIXED,
           size("rows"), size("k", py="k"),
           size("V", nonempty_if="out", message="the alias table is empty (V = 0)"),
           array("prob", "V", dtype="f64", within=(0.0, 1.0)),
           index("alias", "V", below="V", noun="alias entry"), ints("avoid", "rows"),
           seed("seed"), array("out", "rows k", OUT, dtype="i64"),
           returns="out", check="prepare_sample_negatives"),
    Kernel("adam_step", FLOAT,
           size("n"), array("param", "*n", INOUT), array("grad", "*n"),
           array("exp_avg", "*n", INOUT), array("exp_avg_sq", "*n", INOUT),
           scalar("beta1"), scalar("beta2"), scalar("eps"), scalar("weight_decay"),
           flag("decoupled"), scalar("lr"), derived("step_size"), derived("bias2_sqrt"),
           returns="param", check="prepare_adam_step"),
)

BY_NAME = {k.name: k for k in KERNELS}
BY_C_NAME = {c: k for k in KERNELS for c in k.c_names}
