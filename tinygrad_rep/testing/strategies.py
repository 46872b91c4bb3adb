"""Hypothesis strategies for property-testing tinygrad_rep ops and their gradients.

Public and documented: use them to test the library, or your own `tr.Function`s. Everything
is built on `hypothesis.extra.numpy` (needs `pip install hypothesis`). Defaults are chosen for
numerical gradient checks: float64, small shapes (sides 1..4, at most 3 axes), finite values in
[-3, 3] so exp, softmax and products stay well-conditioned.

Example: check an op's gradient on every drawn input::

    from hypothesis import given, strategies as st
    import tinygrad_rep as tr
    from tinygrad_rep.testing import strategies as trst

    @given(trst.tensors(shape=trst.shapes(max_dims=3)))
    def test_tanh_gradient(x):
        assert tr.gradcheck(lambda t: t.tanh(), [x])

    @given(trst.broadcastable_shapes(n=2).flatmap(
        lambda ss: st.tuples(*(trst.tensors(shape=s) for s in ss))))
    def test_mul_gradient(xy):
        assert tr.gradcheck(lambda a, b: a * b, list(xy))

Strategies here:
    shapes                 array shapes (size-0 axes with min_side=0)
    float_arrays           bounded, finite float ndarrays
    tensors                Tensors (requires_grad=True) over float_arrays
    broadcastable_shapes   pairs / triples of mutually broadcastable shapes (size-1 axes included)
    valid_axes             axis arguments for reductions: None, an int, a tuple (negatives included)
    compatible_shapes      reshape targets with the same number of elements (optionally with -1)
    matmul_shapes          operand shapes for `a @ b`: 1-D, 2-D, batched with broadcasting batch axes
    matmul_pairs           operand arrays for `a @ b`
    away_from_kinks        arrays kept at distance >= delta from kinks (0 for ReLU/abs/norm), and
                           optionally with pairwise distinct values (no ties for max)
    seeded_arrays          arrays of any size: hypothesis draws the shape and a seed, numpy fills the
                           values (fast; shrinks to small shapes and seed 0 first)
    edge_shapes            shapes() plus the edge cases: 0-d, empty axes, all-ones
    index_arrays           integer index arrays for an axis of length n, with repeated indices
                           (and negative ones), as gathers and embeddings must handle
    axis_permutations      permutations of range(ndim), for transpose
    layouts                the same values in another memory layout: Fortran order, strided views,
                           negative strides (kernels must not assume C-contiguous input)

Floats are drawn at the array's own width (float32 values are float32 values, not rounded
float64 ones) and without subnormals by default: subnormal inputs make C kernels that flush
them to zero disagree with numpy by a full relative unit, which is a property of the hardware,
not a bug in the op.
"""
import math

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from ..tensor import Tensor

__all__ = ["shapes", "float_arrays", "tensors", "broadcastable_shapes", "valid_axes",
           "compatible_shapes", "matmul_shapes", "matmul_pairs", "away_from_kinks", "seeded_arrays",
           "edge_shapes", "index_arrays", "axis_permutations", "layouts"]

DEFAULT_MIN, DEFAULT_MAX = -3.0, 3.0


def _shape_strategy(shape):
    """None -> shapes(); an int or tuple -> that shape; a strategy -> itself."""
    if shape is None:
        return shapes()
    if isinstance(shape, st.SearchStrategy):
        return shape
    if isinstance(shape, (int, np.integer)):
        return st.just((int(shape),))
    return st.just(tuple(int(n) for n in shape))


def _width(dtype):
    return {2: 16, 4: 32}.get(np.dtype(dtype).itemsize, 64)


def _bounds(min_value, max_value, dtype):
    """Bounds rounded inward to values the dtype represents exactly (hypothesis refuses a float32
    bound such as 0.1 that float32 cannot hold)."""
    t = np.dtype(dtype).type
    lo, hi = min_value, max_value
    if lo is not None:
        lo32 = t(lo)
        if float(lo32) < lo:
            lo32 = np.nextafter(lo32, t(np.inf))
        lo = float(lo32)
    if hi is not None:
        hi32 = t(hi)
        if float(hi32) > hi:
            hi32 = np.nextafter(hi32, t(-np.inf))
        hi = float(hi32)
    return lo, hi


def shapes(min_dims=0, max_dims=3, min_side=1, max_side=4):
    """Array shapes with min_dims..max_dims axes, each of length min_side..max_side.

    min_side=0 draws size-0 axes too (empty arrays), and min_side=1 draws size-1 axes often.

    >>> shapes(min_dims=1, max_dims=2).example()      # doctest: +SKIP
    (3, 1)
    """
    return hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=min_side, max_side=max_side)


def float_arrays(shape=None, *, dtype=np.float64, min_value=DEFAULT_MIN, max_value=DEFAULT_MAX,
                 elements=None, unique=False, allow_subnormal=False):
    """Float ndarrays of `shape` (a tuple, or a strategy such as `shapes()`), finite, in
    [min_value, max_value].

    dtype: float64 by default; float32/float16 draw values of that width (bounds rounded inward
    to representable values). allow_subnormal: off by default (see the module docstring).
    elements: a custom element strategy (overrides min_value/max_value). unique: no repeats.

    >>> float_arrays(shape=(2, 3), min_value=0.5, max_value=2.0).example()   # doctest: +SKIP
    array([[0.5, 1.25, 2.0], [1.0, 0.75, 1.5]])
    """
    dtype = np.dtype(dtype)
    if elements is None:
        lo, hi = _bounds(min_value, max_value, dtype)
        elements = st.floats(min_value=lo, max_value=hi, allow_nan=False, allow_infinity=False,
                             width=_width(dtype), allow_subnormal=allow_subnormal)
    return hnp.arrays(dtype, _shape_strategy(shape), elements=elements, unique=unique)


def tensors(shape=None, *, dtype=np.float64, min_value=DEFAULT_MIN, max_value=DEFAULT_MAX,
            requires_grad=True, arrays=None):
    """Tensors (requires_grad=True by default) over `float_arrays(shape, dtype, min_value, max_value)`.

    arrays: any strategy of ndarrays to wrap instead (for example `away_from_kinks(...)`).

    >>> tensors(shape=(4,), min_value=0.1).example()                 # doctest: +SKIP
    Tensor([0.1, 2.5, 0.3, 1.0], dtype=float64, requires_grad=True)
    """
    if arrays is None:
        arrays = float_arrays(shape, dtype=dtype, min_value=min_value, max_value=max_value)
    return arrays.map(lambda a: Tensor(a, requires_grad=requires_grad))


def broadcastable_shapes(n=2, min_dims=0, max_dims=3, min_side=1, max_side=4, base_shape=(),
                         max_size=None):
    """A tuple of `n` (2 or 3, or more) shapes that broadcast together under numpy's rules.

    Axes of size 1 and missing leading axes are drawn often, so both sides of an operation
    get broadcast; min_side=0 adds size-0 axes. The result shape is
    `np.broadcast_shapes(*drawn)`.

    max_size: draw big shapes too. The broadcast result has sides up to max_side (set it as large
    as you like) and at most max_size elements; each operand drops leading axes and sets axes to
    1 at random. Pair it with `seeded_arrays` so big operands are cheap to fill.

    >>> broadcastable_shapes(n=2).example()                         # doctest: +SKIP
    ((3, 1), (1, 4))
    >>> broadcastable_shapes(n=3, min_dims=1).example()             # doctest: +SKIP
    ((2, 1, 4), (4,), (1, 3, 1))
    """
    if n < 1:
        raise ValueError(f"broadcastable_shapes: n must be >= 1, got {n}")
    if max_size is not None:
        return _sized_broadcastable_shapes(n, min_dims, max_dims, min_side, max_side, int(max_size))
    return hnp.mutually_broadcastable_shapes(num_shapes=n, base_shape=base_shape, min_dims=min_dims,
                                             max_dims=max_dims, min_side=min_side,
                                             max_side=max_side).map(lambda b: b.input_shapes)


@st.composite
def _sized_broadcastable_shapes(draw, n, min_dims, max_dims, min_side, max_side, max_size):
    ndim = draw(st.integers(min_dims, max_dims))
    result, size = [], 1
    for _ in range(ndim):
        cap = max(min_side, min(max_side, max_size // max(size, 1)))
        side = draw(st.integers(min_side, cap))
        result.append(side)
        size *= max(side, 1)
    shapes = []
    for _ in range(n):
        drop = draw(st.integers(0, max(0, ndim - min_dims)))
        kept = result[drop:]
        shapes.append(tuple(1 if draw(st.booleans()) else s for s in kept))
    return tuple(shapes)


def valid_axes(ndim, allow_none=True, allow_int=True, allow_tuple=True, min_size=0, max_size=None):
    """Axis arguments valid for a tensor with `ndim` axes, as reductions take them:
    None (all axes), an int in [-ndim, ndim), or a tuple of distinct axes (negative entries
    included, possibly empty).

    Every value drawn is also valid for the numpy function of the same name, so results can
    be compared one to one (for a 0-d tensor only None and () are drawn).

    >>> valid_axes(3).example()                                     # doctest: +SKIP
    (-1, 0)
    """
    options = []
    if allow_none:
        options.append(st.none())
    if allow_int and ndim > 0:
        options.append(st.integers(min_value=-ndim, max_value=ndim - 1))
    if allow_tuple:
        options.append(hnp.valid_tuple_axes(ndim, min_size=min_size, max_size=max_size))
    if not options:
        raise ValueError("valid_axes: nothing to draw (all of allow_none/allow_int/allow_tuple are off)")
    return st.one_of(*options)


@st.composite
def compatible_shapes(draw, shape, allow_minus_one=True, max_dims=4):
    """A shape with the same number of elements as `shape`: a target for `reshape`.

    The size is split into random factors (size-1 axes added sometimes); with
    allow_minus_one one axis may be given as -1. Size-0 shapes get a 0 placed somewhere.

    >>> compatible_shapes((2, 6)).example()                         # doctest: +SKIP
    (3, -1, 2)
    """
    size = int(np.prod(shape))
    if size == 0:
        dims = draw(st.lists(st.integers(1, 3), min_size=0, max_size=max_dims - 1))
        pos = draw(st.integers(0, len(dims)))
        return tuple(dims[:pos] + [0] + dims[pos:])
    factors = []
    m, p = size, 2
    while m > 1:
        while m % p == 0:
            factors.append(p)
            m //= p
        p += 1
    factors = draw(st.permutations(factors)) if factors else []
    n_axes = draw(st.integers(min_value=1 if factors else 0, max_value=max(1, min(max_dims, len(factors) + 1))))
    dims = [1] * n_axes
    for f in factors:
        dims[draw(st.integers(0, n_axes - 1))] *= f
    if allow_minus_one and dims and draw(st.booleans()):
        dims[draw(st.integers(0, len(dims) - 1))] = -1
    return tuple(dims)


def matmul_shapes(max_batch_dims=2, min_side=1, max_side=4):
    """Operand shapes (a_shape, b_shape) valid for `a @ b` with numpy's matmul rules: 1-D
    operands (vector @ vector, vector @ matrix, matrix @ vector), 2-D, and batched operands
    whose leading (batch) axes broadcast against each other (size-1 and missing axes).

    >>> matmul_shapes().example()                                    # doctest: +SKIP
    ((2, 1, 3, 4), (5, 4, 2))
    """
    return hnp.mutually_broadcastable_shapes(signature=np.matmul.signature, max_dims=max_batch_dims,
                                             min_side=min_side,
                                             max_side=max_side).map(lambda b: b.input_shapes)


@st.composite
def matmul_pairs(draw, max_batch_dims=2, min_side=1, max_side=4, dtype=np.float64,
                 min_value=DEFAULT_MIN, max_value=DEFAULT_MAX):
    """Operand arrays (a, b) for `a @ b`, shapes from `matmul_shapes(...)`, values from
    `float_arrays(...)`.

    >>> a, b = matmul_pairs().example()                              # doctest: +SKIP
    >>> (Tensor(a) @ Tensor(b)).shape == np.matmul(a, b).shape      # doctest: +SKIP
    True
    """
    sa, sb = draw(matmul_shapes(max_batch_dims=max_batch_dims, min_side=min_side, max_side=max_side))
    a = draw(float_arrays(sa, dtype=dtype, min_value=min_value, max_value=max_value))
    b = draw(float_arrays(sb, dtype=dtype, min_value=min_value, max_value=max_value))
    return a, b


def _allowed_intervals(min_value, max_value, kinks, delta):
    """[min_value, max_value] minus the open balls (k - delta, k + delta) around each kink."""
    intervals = [(float(min_value), float(max_value))]
    for k in sorted(kinks):
        nxt = []
        for lo, hi in intervals:
            if k + delta <= lo or k - delta >= hi:
                nxt.append((lo, hi))
                continue
            if k - delta > lo:
                nxt.append((lo, k - delta))
            if k + delta < hi:
                nxt.append((k + delta, hi))
        intervals = nxt
    return [(lo, hi) for lo, hi in intervals if hi > lo]


@st.composite
def away_from_kinks(draw, shape=None, delta=0.1, kinks=(0.0,), distinct=False,
                    min_value=DEFAULT_MIN, max_value=DEFAULT_MAX, dtype=np.float64):
    """Float arrays whose every element is at distance >= delta from every kink, so that a
    central difference with eps << delta never straddles a point where the function is not
    differentiable (0 for relu, abs and the norm; pass other kinks, e.g. a clamp bound).

    distinct=True also makes the values pairwise distinct, at least
    0.75 * min(delta, span / (2 * size)) apart (span: the length of the allowed range),
    so max/argmax has no ties and a small perturbation never changes which element wins.

    >>> away_from_kinks((2, 3)).example()                              # doctest: +SKIP
    array([[ 0.5, -2.9,  0.1], [-0.1, 1.7, 3.0]])
    >>> x = away_from_kinks(shapes(min_dims=1), distinct=True).example()  # doctest: +SKIP
    >>> len(np.unique(x)) == x.size                                    # doctest: +SKIP
    True
    """
    shape = draw(_shape_strategy(shape))
    intervals = _allowed_intervals(min_value, max_value, kinks, delta)
    if not intervals:
        raise ValueError(f"away_from_kinks: no value in [{min_value}, {max_value}] is at distance "
                         f">= {delta} from the kinks {tuple(kinks)}")
    size = int(np.prod(shape))
    dtype = np.dtype(dtype)
    if not distinct:
        # at the array's own width, bounds rounded inward: a float32 value is never rounded
        # into the forbidden ball around a kink
        bounds = [_bounds(lo, hi, dtype) for lo, hi in intervals]
        elements = st.one_of(*[st.floats(min_value=lo, max_value=hi, allow_nan=False,
                                         allow_infinity=False, width=_width(dtype),
                                         allow_subnormal=False)
                               for lo, hi in bounds if lo <= hi])
        flat = draw(st.lists(elements, min_size=size, max_size=size))
        return np.array(flat, dtype=np.float64).reshape(shape).astype(dtype)
    span = sum(hi - lo for lo, hi in intervals)
    step = min(delta, span / (2 * max(size, 1)))
    # A grid inside the allowed intervals; each value is a grid point plus a jitter in
    # [0, step/4], so distinct grid points stay >= 0.75 * step apart and inside the interval.
    grid = np.concatenate([lo + step * np.arange(int(math.floor((hi - lo - step / 4) / step)) + 1)
                           for lo, hi in intervals if hi - lo >= step / 4])
    if grid.size < size:
        raise ValueError(f"away_from_kinks: cannot draw {size} distinct values")
    picks = draw(st.lists(st.integers(0, grid.size - 1), min_size=size, max_size=size, unique=True))
    jitter = draw(st.lists(st.floats(min_value=0.0, max_value=step / 4), min_size=size, max_size=size))
    values = grid[np.array(picks, dtype=np.int64)] + np.array(jitter, dtype=np.float64)
    values = np.clip(values, min_value, max_value)
    return values.reshape(shape).astype(dtype)


@st.composite
def seeded_arrays(draw, shape=None, *, dtype=np.float64, min_value=DEFAULT_MIN, max_value=DEFAULT_MAX,
                  distribution="uniform"):
    """Arrays of any size, cheap to draw: hypothesis draws the shape and a seed, numpy fills the
    values (uniform in [min_value, max_value], or "normal": standard normal clipped to that range).

    Drawing a 1000x1000 array element by element through hypothesis is slow and trips its health
    checks; this costs one numpy call. Shrinking goes to smaller shapes first (the shape is drawn
    first), then to seed 0. What it gives up: hypothesis cannot steer individual values (no
    0.0/-0.0/ties on purpose): use float_arrays or away_from_kinks for that.

    >>> seeded_arrays(shapes(min_side=100, max_side=1000, max_dims=2)).example().size >= 1   # doctest: +SKIP
    True
    """
    shape = draw(_shape_strategy(shape))
    seed = draw(st.integers(0, 2 ** 32 - 1))
    rng = np.random.default_rng(seed)
    if distribution == "uniform":
        a = rng.uniform(min_value, max_value, shape)
    elif distribution == "normal":
        a = np.clip(rng.standard_normal(shape), min_value, max_value)
    else:
        raise ValueError(f"seeded_arrays: distribution must be 'uniform' or 'normal', got {distribution!r}")
    return a.astype(dtype)


_EDGE_SHAPES = [(), (0,), (1,), (0, 3), (3, 0), (1, 1), (2, 0, 1), (1, 1, 1)]


def edge_shapes(min_dims=0, max_dims=3, max_side=4):
    """shapes(...) mixed with the edge cases an op must survive: 0-d, empty axes, all-ones.

    >>> edge_shapes().example()                                       # doctest: +SKIP
    (3, 0)
    """
    edges = [s for s in _EDGE_SHAPES if min_dims <= len(s) <= max_dims]
    return st.one_of(st.sampled_from(edges), shapes(min_dims=min_dims, max_dims=max_dims, max_side=max_side))


@st.composite
def index_arrays(draw, n, shape=None, allow_negative=True, repeats=True):
    """Integer (int64) index arrays for an axis of length n, as `x[idx]`, `F.embedding(W, idx)` or a
    scatter-add take them. shape: a tuple or strategy (default: 1-2 axes, up to 8 per side).

    repeats=True makes repeated indices likely (the values come from a small pool), since a
    gradient that overwrites instead of adding shows only there; allow_negative draws indices in
    [-n, n) (numpy's negative indexing), else [0, n). n=0 gives empty arrays only.

    >>> index_arrays(5).example()                                     # doctest: +SKIP
    array([ 3, -2,  3,  3])
    """
    if shape is None:
        shape = shapes(min_dims=1, max_dims=2, max_side=8)
    shape = draw(_shape_strategy(shape))
    size = int(np.prod(shape))
    if n <= 0:
        if size:
            raise ValueError(f"index_arrays: no valid index for an axis of length {n}")
        return np.zeros(shape, dtype=np.int64)
    lo = -n if allow_negative else 0
    values = st.integers(lo, n - 1)
    if size == 0:
        return np.zeros(shape, dtype=np.int64)
    pool_max = max(1, min(size - 1, n)) if repeats and size > 1 else max(1, min(size, 2 * n))
    pool = draw(st.lists(values, min_size=1, max_size=pool_max))
    picks = draw(st.lists(st.integers(0, len(pool) - 1), min_size=size, max_size=size))
    return np.array([pool[k] for k in picks], dtype=np.int64).reshape(shape)


def axis_permutations(ndim):
    """Permutations of range(ndim) as tuples (arguments for transpose).

    >>> axis_permutations(3).example()                                # doctest: +SKIP
    (2, 0, 1)
    """
    return st.permutations(range(ndim)).map(tuple)


def _layout(a, kind):
    if kind == "C" or a.ndim == 0:
        return np.ascontiguousarray(a)
    if kind == "F":
        return np.asfortranarray(a)
    if kind == "strided":     # every other element of a bigger buffer
        buf = np.zeros(tuple(2 * s for s in a.shape), dtype=a.dtype)
        view = buf[tuple(slice(None, None, 2) for _ in a.shape)]
        view[...] = a
        return view
    if kind == "reversed":    # negative strides along the first axis
        return a[::-1].copy()[::-1]
    raise ValueError(f"layouts: unknown layout {kind!r}")


def layouts(arrays, kinds=("C", "F", "strided", "reversed")):
    """The arrays drawn from `arrays`, each in one of the memory layouts `kinds` (same values):
    "C" contiguous, "F" Fortran order, "strided" a view of every other element of a bigger
    buffer, "reversed" negative strides. Kernels and gradcheck must treat them all alike.

    >>> x = layouts(float_arrays((3, 4)), kinds=("strided",)).example()   # doctest: +SKIP
    >>> x.flags.c_contiguous                                              # doctest: +SKIP
    False
    """
    return st.tuples(arrays, st.sampled_from(list(kinds))).map(lambda ak: _layout(*ak))
