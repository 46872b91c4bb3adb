"""Tensor: a numpy array plus what reverse-mode autodiff needs (grad, requires_grad, graph link).

Every method below is written out (no op is attached by introspection) and calls one
Function from ops/; broadcasting follows numpy and is undone once, in autograd.
"""
import numpy as np

from . import autograd
from . import ops
from .ops.reduce import normalize_axis

_FLOAT_DEFAULT = np.float32


def _to_array(data, dtype):
    if isinstance(data, Tensor):
        data = data._data
    if dtype is not None:
        return np.array(data, dtype=np.dtype(dtype))
    if isinstance(data, (np.ndarray, np.generic)):
        arr = np.array(data)
        if arr.dtype == np.float16:
            return arr.astype(np.float32)  # float16 is widened: kernels run float32/float64
        if arr.dtype.kind == "f" and arr.dtype not in (np.float32, np.float64):
            return arr.astype(np.float64)
        if arr.dtype.kind in "fiub":
            return arr
        raise TypeError(f"Tensor: unsupported dtype {arr.dtype} (use float32, float64, int or bool)")
    try:
        return np.array(data, dtype=_FLOAT_DEFAULT)
    except (TypeError, ValueError) as e:
        raise TypeError(f"Tensor: cannot make a tensor from {type(data).__name__}: {e}") from None


class Tensor:
    """An n-dimensional array that records the operations applied to it for backprop.

    Tensor(data, requires_grad=False, dtype=None): data is an array, a nested list or a scalar;
    the array is copied. Python lists and scalars become float32; numpy float32/float64 arrays
    keep their dtype (float16 is widened to float32); integer and bool arrays stay as they are
    (for indices and targets) but cannot require gradients.

    Result dtypes of binary ops: two float tensors follow numpy (float32 with float64 gives
    float64); a float tensor with an integer or bool operand keeps its float dtype (PyTorch's
    rule); integer and bool operands follow numpy's promotion. A Python scalar takes a float
    tensor's dtype; beside an integer tensor a Python int promotes as far as its value needs and
    a Python float gives float32.

    In place: `x += y`, `-=`, `*=`, `/=`, `zero_()`, `fill_()`, `copy_()` write into x's array
    (inside `tr.no_grad()` for a leaf that requires grad, as an optimizer step). A graph that
    saved x's old values then refuses to backward (RuntimeError naming the op), and so does one
    whose saved array was written through `.data` or `numpy()`.
    """

    __slots__ = ("_data", "grad", "requires_grad", "_ctx", "_hooks", "_retains_grad", "name",
                 "_version", "_watched", "_snapshot", "__weakref__")
    __array_ufunc__ = None  # numpy defers to Tensor's reflected operators (ndarray * Tensor)

    def __init__(self, data, requires_grad=False, dtype=None):
        """See the class docstring: data is copied; requires_grad only for floating point."""
        self._data = _to_array(data, dtype)
        if requires_grad and self._data.dtype.kind != "f":
            raise TypeError(f"only floating-point tensors can require gradients, got dtype {self._data.dtype}")
        self.requires_grad = bool(requires_grad)
        self.grad = None
        self._ctx = None
        self._hooks = None
        self._retains_grad = False
        self.name = None
        self._version = 0
        self._watched = False
        self._snapshot = None

    @classmethod
    def _wrap(cls, data):
        """Internal constructor: wraps an array without copying or checking."""
        t = object.__new__(cls)
        t._data = data if type(data) is np.ndarray else np.asarray(data)
        t.requires_grad = t._retains_grad = t._watched = False
        t.grad = t._ctx = t._hooks = t.name = t._snapshot = None
        t._version = 0
        return t

    # ---- the array, and guarding what a graph saved ----
    @property
    def data(self):
        """The underlying ndarray (shared, not copied).

        Writing into it between a forward pass that saved it and that pass's backward is caught:
        the backward raises RuntimeError instead of returning a gradient of the new values. (The
        array is compared with a byte copy taken when it is handed out while a graph holds it.)
        """
        if self._watched and self._snapshot is None:
            d = self._data
            self._snapshot = (d.shape, d.dtype, d.tobytes())
        return self._data

    @data.setter
    def data(self, value):
        if not isinstance(value, np.ndarray):
            value = np.asarray(value)
        self._data = value
        self._bump_version()

    def _bump_version(self):
        """Record that the array changed in place (optimizer steps, load_state_dict, in-place
        ops call this after writing): graphs that saved the old values refuse to backward."""
        self._version += 1
        self._snapshot = None

    def _settle(self):
        """Compare the array with the copy taken when it was handed out; a change counts as an
        in-place modification (a new version)."""
        (shape, dtype, raw), self._snapshot = self._snapshot, None
        d = self._data
        if shape != d.shape or dtype != d.dtype or raw != d.tobytes():  # bitwise: NaN == NaN here
            self._version += 1

    # ---- basic properties ----
    @property
    def shape(self):
        """The array's shape, a tuple of ints."""
        return self._data.shape

    @property
    def dtype(self):
        """The array's numpy dtype (float32 by default for lists and scalars)."""
        return self._data.dtype

    @property
    def ndim(self):
        """The number of dimensions."""
        return self._data.ndim

    @property
    def size(self):
        """The number of elements."""
        return self._data.size

    @property
    def is_leaf(self):
        """True for a tensor made by the user (no grad_fn); leaves keep .grad after backward."""
        return self._ctx is None

    @property
    def grad_fn(self):
        """The Function node that produced this tensor (None for leaves)."""
        return self._ctx

    def numpy(self):
        """The underlying ndarray (shared, not copied)."""
        return self.data

    def __array__(self, dtype=None, copy=None):
        return self.data if dtype is None else self.data.astype(dtype)

    def item(self):
        """The single element as a Python number (ValueError unless the tensor has one element)."""
        if self._data.size != 1:
            raise ValueError(f"item() needs a tensor with one element, got shape {self.shape}")
        return self._data.item()

    def __len__(self):
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return len(self._data)

    def __repr__(self):
        extra = ", requires_grad=True" if self.requires_grad else ""
        fn = f", grad_fn={self._ctx.name}" if self._ctx is not None else ""
        body = np.array2string(self._data, separator=", ", precision=4, threshold=20)
        return f"Tensor({body}, dtype={self.dtype}{extra}{fn})"

    # ---- autograd ----
    def backward(self, grad=None, retain_graph=None, create_graph=False):
        """Accumulate d(self)/d(leaf) into every leaf's .grad.

        A scalar output needs no grad; otherwise pass grad with the output's shape
        (ValueError if missing). Gradients add up across calls until zeroed. With
        create_graph=True the gradients are recorded so they can be differentiated again.
        retain_graph is accepted for PyTorch habits and changes nothing: the graph is always
        kept while its output is alive, so backward may run through it again.
        """
        root = autograd._root_grad(self, grad)
        autograd.run_backward([self], [root], create_graph=create_graph)

    def detach(self):
        """The same data, cut off from the graph (shares memory)."""
        return Tensor._wrap(self._data)

    def register_hook(self, fn):
        """Call fn(grad) when this tensor's gradient is computed; a non-None return replaces it.

        Returns a handle whose remove() unregisters the hook.
        """
        if not self.requires_grad:
            raise ValueError("register_hook: this tensor does not require grad")
        if self._hooks is None:
            self._hooks = []
        self._hooks.append(fn)
        hooks = self._hooks

        class _Handle:
            def remove(self_):
                if fn in hooks:
                    hooks.remove(fn)
        return _Handle()

    def retain_grad(self):
        """Keep .grad on this non-leaf tensor after backward (leaves always keep it)."""
        if not self.requires_grad:
            raise ValueError("retain_grad: this tensor does not require grad")
        self._retains_grad = True

    def requires_grad_(self, flag=True):
        """Set requires_grad in place (floating-point tensors only) and return self."""
        if flag and self._data.dtype.kind != "f":
            raise TypeError(f"only floating-point tensors can require gradients, got dtype {self.dtype}")
        self.requires_grad = bool(flag)
        return self

    def astype(self, dtype):
        """This tensor converted to `dtype`; float-to-float casts are differentiable (the gradient
        is cast back), others give a constant."""
        dtype = np.dtype(dtype)
        if dtype == self.dtype:
            return self
        if dtype.kind != "f" or self.dtype.kind != "f":
            return Tensor._wrap(self._data.astype(dtype))
        return ops.Cast.apply(self, dtype=dtype)

    # ---- arithmetic (numpy broadcasting) ----
    # Result dtypes: two float tensors follow numpy (float32 with float64 gives float64); a float
    # tensor with an integer or bool operand keeps its float dtype (PyTorch's rule: float32 stays
    # float32); integer and bool operands follow numpy's promotion for arrays (int8 with int64
    # gives int64, bool with int gives int). A Python scalar takes a float tensor's dtype; with
    # an integer tensor a Python int promotes as far as its value needs and a Python float gives
    # float32 (the library's default float). The operators test for a Tensor inline before
    # calling _lift: a Python call fewer on every op between tensors.
    def _lift(self, other):
        if isinstance(other, Tensor):
            return other
        if isinstance(other, np.ndarray) and other.ndim > 0:
            return Tensor._wrap(other)
        if isinstance(other, (int, float, bool, np.generic, np.ndarray)):
            return Tensor._wrap(np.asarray(other, dtype=_scalar_dtype(self._data.dtype, other)))
        raise TypeError(f"unsupported operand type for a Tensor op: {type(other).__name__}")

    def __add__(self, other):
        """self + other with numpy broadcasting (Tensor, array or scalar); result dtype: see the class."""
        return _binary(ops.Add, self, other if isinstance(other, Tensor) else self._lift(other))

    def __radd__(self, other): return _binary(ops.Add, self._lift(other), self)
    def __sub__(self, other): return _binary(ops.Sub, self, other if isinstance(other, Tensor) else self._lift(other))
    def __rsub__(self, other): return _binary(ops.Sub, self._lift(other), self)
    def __mul__(self, other): return _binary(ops.Mul, self, other if isinstance(other, Tensor) else self._lift(other))
    def __rmul__(self, other): return _binary(ops.Mul, self._lift(other), self)
    def __truediv__(self, other): return _binary(ops.Div, self, other if isinstance(other, Tensor) else self._lift(other))
    def __rtruediv__(self, other): return _binary(ops.Div, self._lift(other), self)
    def __neg__(self): return ops.Neg.apply(self)
    def __pos__(self): return self

    def __pow__(self, p):
        """x ** p for a scalar p. An integer tensor stays integer for a whole p >= 0 and becomes
        float32 otherwise (so arange(4) ** 0.5 is the square root, not a truncation)."""
        if isinstance(p, Tensor) or (isinstance(p, np.ndarray) and p.ndim > 0):
            raise TypeError("x ** p takes a scalar exponent p; for a tensor exponent use (p * x.log()).exp()")
        p = float(p)
        x = self
        if x._data.dtype.kind != "f" and not (p >= 0 and p == int(p)):
            x = Tensor._wrap(x._data.astype(_FLOAT_DEFAULT))
        return ops.Pow.apply(x, p=p)

    # ---- in place: for updates under no_grad, as in `with tr.no_grad(): p -= lr * p.grad` ----
    def _inplace(self, other, ufunc, symbol):
        recording = autograd.is_grad_enabled()
        other_grad = isinstance(other, Tensor) and other.requires_grad
        if recording and self.requires_grad and self._ctx is None:
            raise RuntimeError(
                f"x {symbol} y on a leaf tensor that requires grad while the graph is being recorded: "
                f"wrap the update in `with tr.no_grad():` (as an optimizer step does)")
        if recording and (self.requires_grad or other_grad):
            return NotImplemented  # Python then computes x = x op y: a new node of the graph
        o = other._data if isinstance(other, Tensor) else other
        try:
            ufunc(self._data, o, out=self._data, casting="same_kind")
        except TypeError:
            raise TypeError(f"x {symbol} y: cannot write a result of y's dtype "
                            f"{np.result_type(o).name} into x's dtype {self.dtype} in place") from None
        except ValueError:
            raise ValueError(f"x {symbol} y: y of shape {np.shape(o)} does not broadcast to x's "
                             f"shape {self.shape} (in place, x keeps its shape)") from None
        self._bump_version()
        return self

    def __iadd__(self, other): return self._inplace(other, np.add, "+=")
    def __isub__(self, other): return self._inplace(other, np.subtract, "-=")
    def __imul__(self, other): return self._inplace(other, np.multiply, "*=")
    def __itruediv__(self, other): return self._inplace(other, np.true_divide, "/=")

    def zero_(self):
        """Set every element to 0 in place (e.g. `p.grad.zero_()`); returns self."""
        return self.fill_(0)

    def fill_(self, value):
        """Set every element to `value` in place; returns self."""
        if autograd.is_grad_enabled() and self.requires_grad and self._ctx is None:
            raise RuntimeError("fill_/zero_ on a leaf tensor that requires grad while the graph is "
                               "being recorded: wrap it in `with tr.no_grad():`")
        self._data[...] = value
        self._bump_version()
        return self

    def copy_(self, src):
        """Copy src's values into this tensor in place (shapes broadcast, dtype kept); returns self."""
        if autograd.is_grad_enabled() and self.requires_grad and self._ctx is None:
            raise RuntimeError("copy_ on a leaf tensor that requires grad while the graph is being "
                               "recorded: wrap it in `with tr.no_grad():`")
        np.copyto(self._data, src._data if isinstance(src, Tensor) else np.asarray(src), casting="same_kind")
        self._bump_version()
        return self

    def __matmul__(self, other):
        """self @ other with numpy's rules (1-D, 2-D, batched); runs the backend's matmul kernel."""
        return matmul(self, other if isinstance(other, Tensor) else self._lift(other))

    def __rmatmul__(self, other): return matmul(self._lift(other), self)

    # comparisons give bool tensors outside the graph (masks); == keeps Python identity semantics
    def __lt__(self, other): return Tensor._wrap(self._data < np.asarray(other))
    def __le__(self, other): return Tensor._wrap(self._data <= np.asarray(other))
    def __gt__(self, other): return Tensor._wrap(self._data > np.asarray(other))
    def __ge__(self, other): return Tensor._wrap(self._data >= np.asarray(other))
    __hash__ = object.__hash__

    # ---- unary math ----
    def exp(self):
        """e ** x elementwise;  d/dx = exp(x)."""
        return ops.Exp.apply(self)

    def log(self):
        """Natural logarithm elementwise (-inf at 0, NaN below);  d/dx = 1 / x."""
        return ops.Log.apply(self)

    def sqrt(self):
        """Square root elementwise;  d/dx = 1 / (2 sqrt(x))."""
        return ops.Sqrt.apply(self)

    def relu(self):
        """max(x, 0) elementwise (C kernel);  d/dx = 1 where x > 0, else 0."""
        return ops.ReLU.apply(self if self._data.dtype.kind == "f" else self._float("relu"))

    def sigmoid(self):
        """1 / (1 + exp(-x)), exact in both tails;  d/dx = s (1 - s)."""
        return ops.Sigmoid.apply(self)

    def logsigmoid(self):
        """log(sigmoid(x)) = -log(1 + exp(-x)), stable for any x;  d/dx = sigmoid(-x)."""
        return ops.LogSigmoid.apply(self)

    def tanh(self):
        """Hyperbolic tangent elementwise;  d/dx = 1 - tanh(x)^2."""
        return ops.Tanh.apply(self)

    def abs(self):
        """|x| elementwise;  d/dx = sign(x), taken as 0 at 0."""
        return ops.Abs.apply(self)

    def clamp(self, lo=None, hi=None):
        """min(max(x, lo), hi); the gradient is 1 strictly inside the bounds, else 0."""
        return ops.Clamp.apply(self, lo=lo, hi=hi)

    def _float(self, what):
        if self.dtype.kind != "f":
            raise TypeError(f"{what}: needs a floating-point tensor, got dtype {self.dtype}")
        return self

    def softmax(self, axis=-1):
        """exp(x) / sum(exp(x)) along axis (the row max is subtracted first: huge logits are safe)."""
        return self._last_axis(ops.Softmax, axis, "softmax")

    def log_softmax(self, axis=-1):
        """x - logsumexp(x) along axis; -inf entries stay -inf with a finite gradient."""
        return self._last_axis(ops.LogSoftmax, axis, "log_softmax")

    def _last_axis(self, fn, axis, what):
        self._float(what)
        if self.ndim == 0:
            raise ValueError(f"{what}: needs at least 1 dimension, got a 0-d tensor")
        if not isinstance(axis, (int, np.integer)) or isinstance(axis, bool):
            raise TypeError(f"{what}: axis must be an int, got {axis!r}")
        axis, = normalize_axis(axis, self.ndim)
        if axis == self.ndim - 1:
            return fn.apply(self)
        perm = list(range(self.ndim))
        perm[axis], perm[-1] = perm[-1], perm[axis]
        return fn.apply(self.transpose(*perm)).transpose(*perm)

    # ---- reductions ----
    def sum(self, axis=None, keepdims=False):
        """Sum over `axis` (an int, a tuple, or None for all);  the gradient is spread back evenly."""
        return ops.Sum.apply(self, axes=normalize_axis(axis, self.ndim), keepdims=keepdims)

    def mean(self, axis=None, keepdims=False):
        """Mean over `axis` (NaN over an empty axis, as numpy);  d/dx = 1 / count."""
        axes = normalize_axis(axis, self.ndim)
        count = int(np.prod([self.shape[a] for a in axes])) if axes else 1
        return ops.Sum.apply(self, axes=axes, keepdims=keepdims) * (1.0 / count if count else np.nan)

    def max(self, axis=None, keepdims=False):
        """Maximum over axis; ties share the gradient equally."""
        return ops.Max.apply(self, axes=normalize_axis(axis, self.ndim), keepdims=keepdims)

    def logsumexp(self, axis=-1, keepdims=False):
        """log(sum(exp(x))) over `axis`, shifted by the max so it never overflows;  d/dx = softmax(x)."""
        return ops.LogSumExp.apply(self, axes=normalize_axis(axis, self.ndim), keepdims=keepdims)

    def norm(self, axis=None, keepdims=False):
        """L2 norm over axis (gradient 0 where the norm is 0)."""
        return ops.Norm.apply(self, axes=normalize_axis(axis, self.ndim), keepdims=keepdims)

    # ---- shape ----
    def reshape(self, *shape):
        """The same elements in a new shape (`reshape(2, -1)` or `reshape((2, -1))`)."""
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        try:
            new = np.empty(self.shape, dtype=bool).reshape(shape).shape  # validates, resolves -1
        except ValueError:
            raise ValueError(f"cannot reshape a tensor of shape {self.shape} into {shape}") from None
        if new == self.shape:
            return self
        return ops.Reshape.apply(self, shape=new)

    def transpose(self, *axes):
        """Permute axes; with no arguments, reverse them (so x.transpose() == x.T)."""
        if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
            axes = tuple(axes[0])
        if not axes:
            axes = tuple(range(self.ndim))[::-1]
        if sorted(a % max(self.ndim, 1) for a in axes) != list(range(self.ndim)):
            raise ValueError(f"transpose: {axes} is not a permutation of the {self.ndim} axes")
        axes = tuple(a % self.ndim for a in axes)
        if axes == tuple(range(self.ndim)):
            return self
        return ops.Transpose.apply(self, axes=axes)

    @property
    def T(self):
        """The tensor with its axes reversed (the transpose of a matrix)."""
        return self.transpose()

    def expand(self, *shape):
        """Broadcast to `shape` (the gradient is summed back)."""
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        if tuple(shape) == self.shape:
            return self
        try:
            np.broadcast_shapes(self.shape, shape)
        except ValueError:
            raise ValueError(f"cannot broadcast shape {self.shape} to {tuple(shape)}") from None
        return ops.Expand.apply(self, shape=tuple(shape))

    def __getitem__(self, index):
        """x[index]: basic slices, integer arrays (repeats add up in the gradient) and boolean masks."""
        return ops.Getitem.apply(self, index=_plain_index(index))

    def flatten(self):
        """The elements as a 1-D tensor."""
        return self.reshape(-1)


def _binary(fn, a, b):
    """fn.apply(a, b), with numpy's broadcasting error restated with the op and both shapes
    (checked only after a failure, so the common path costs nothing extra)."""
    da, db = a._data.dtype, b._data.dtype
    if da is not db and da != db:
        a, b = _promote(a, b, da, db)
    try:
        return fn.apply(a, b)
    except ValueError:
        try:
            np.broadcast_shapes(a.shape, b.shape)
        except ValueError:
            raise ValueError(f"{fn.__name__.lower()}: shapes {a.shape} and {b.shape} "
                             f"do not broadcast") from None
        raise


def _promote(a, b, da, db):
    """Operands of a binary op at their common dtype (see the rules above Tensor._lift). Only
    operands that cannot require grad are cast, so no gradient is affected."""
    fa, fb = da.kind == "f", db.kind == "f"
    if fa and fb:
        return a, b  # numpy: float32 with float64 gives float64; gradients are cast back per input
    if fa:
        return a, Tensor._wrap(b._data.astype(da))
    if fb:
        return Tensor._wrap(a._data.astype(db)), b
    common = np.result_type(da, db)
    return Tensor._wrap(a._data.astype(common)), Tensor._wrap(b._data.astype(common))


def _scalar_dtype(dtype, value):
    """The dtype a scalar operand takes beside a tensor of `dtype`."""
    if dtype.kind == "f":
        return dtype
    if isinstance(value, bool) or (isinstance(value, (np.bool_, np.ndarray)) and np.asarray(value).dtype == bool):
        return dtype
    if isinstance(value, float):
        return np.dtype(_FLOAT_DEFAULT)
    if isinstance(value, int):
        if dtype == bool:
            return np.dtype(np.int64)
        return np.result_type(dtype, np.min_scalar_type(value))
    return np.result_type(dtype, np.asarray(value).dtype)  # numpy scalars and 0-d arrays


def _plain_index(index):
    """Tensors inside an index become arrays; float arrays are refused (numpy would too)."""
    if isinstance(index, tuple):
        return tuple(_plain_index(i) for i in index)
    if isinstance(index, Tensor):
        index = index._data
    if isinstance(index, list):
        index = np.asarray(index)
    if isinstance(index, np.ndarray) and index.dtype.kind not in "iub":
        raise IndexError(f"index arrays must be integers or booleans, got dtype {index.dtype}")
    return index


autograd._Tensor = Tensor
autograd._wrap = Tensor._wrap


def tensor(data, requires_grad=False, dtype=None):
    """Same as Tensor(data, requires_grad, dtype)."""
    return Tensor(data, requires_grad=requires_grad, dtype=dtype)


def matmul(a, b):
    """a @ b with numpy's rules: 1-D operands are promoted and the added axis removed again;
    leading axes broadcast (batched matmul)."""
    ad, bd = a._data, b._data
    if (ad.ndim == 2 and bd.ndim == 2 and ad.dtype is bd.dtype and ad.dtype.kind == "f"
            and ad.shape[1] == bd.shape[0]):
        return ops.MatMul.apply(a, b)  # the common case (a layer's product), nothing to adapt
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError("matmul: operands must have at least 1 dimension (use * for scalars)")
    a._float("matmul"), b._float("matmul")
    a2 = a.reshape(1, a.shape[0]) if a.ndim == 1 else a
    b2 = b.reshape(b.shape[0], 1) if b.ndim == 1 else b
    if a2.shape[-1] != b2.shape[-2]:
        raise ValueError(f"matmul: shapes {a.shape} and {b.shape} are not aligned "
                         f"({a2.shape[-1]} != {b2.shape[-2]})")
    try:
        batch = np.broadcast_shapes(a2.shape[:-2], b2.shape[:-2])
    except ValueError:
        raise ValueError(f"matmul: batch dimensions of {a.shape} and {b.shape} do not broadcast") from None
    if a2.dtype != b2.dtype:
        common = np.result_type(a2.dtype, b2.dtype)
        a2, b2 = a2.astype(common), b2.astype(common)
    out = ops.MatMul.apply(a2, b2)
    if a.ndim == 1 and b.ndim == 1:
        return out.reshape(())
    if a.ndim == 1:
        return out.reshape(batch + (b2.shape[-1],))
    if b.ndim == 1:
        return out.reshape(out.shape[:-1])
    return out


def concat(tensors, axis=0):
    """Join tensors along an existing axis."""
    tensors = [t if isinstance(t, Tensor) else Tensor(t) for t in tensors]
    if not tensors:
        raise ValueError("concat: needs at least one tensor")
    nd = tensors[0].ndim
    if nd == 0:
        raise ValueError("concat: zero-dimensional tensors cannot be concatenated")
    axis, = normalize_axis(axis, nd)
    for i, t in enumerate(tensors):
        if t.ndim != nd or t.shape[:axis] + t.shape[axis + 1:] != tensors[0].shape[:axis] + tensors[0].shape[axis + 1:]:
            raise ValueError(f"concat: tensor {i} has shape {t.shape}, which does not match "
                             f"{tensors[0].shape} outside axis {axis}")
    return ops.Concat.apply(*tensors, axis=axis)


def stack(tensors, axis=0):
    """Join tensors of equal shape along a new axis."""
    tensors = [t if isinstance(t, Tensor) else Tensor(t) for t in tensors]
    if not tensors:
        raise ValueError("stack: needs at least one tensor")
    shape = tensors[0].shape
    for i, t in enumerate(tensors):
        if t.shape != shape:
            raise ValueError(f"stack: tensor {i} has shape {t.shape}, expected {shape}")
    axis, = normalize_axis(axis, len(shape) + 1)
    new = shape[:axis] + (1,) + shape[axis:]
    return concat([t.reshape(new) for t in tensors], axis=axis)
