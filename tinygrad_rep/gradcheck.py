"""Numerical gradient checks: compare an op's backward with derivatives computed from its forward.

    tr.gradcheck(fn, inputs)        # True, or raises tr.GradcheckError naming input, element, values
    tr.gradgradcheck(fn, inputs)    # the same for second derivatives (backward of backward)

What is compared. For an output of one element, the plain derivative d fn / d x[idx]. For a larger
output, the vector-Jacobian product (vᵀJ)[idx] for a fixed random cotangent v of the output's shape
(standard normal, from `seed`): that is exactly what backward computes, one backward pass gives all
of it, and a random v makes a wrong Jacobian fail with probability 1. The failure message says which
of the two it compared and gives v.

How the numbers are made. The analytic side is one backward pass (`tr.grad`) in the inputs' own
dtype. The numerical side always runs the forward on float64 copies of the inputs, so a float32 op
is judged against a float64 reference:
- central differences (f(x + eps) - f(x - eps)) / 2 eps per element (two forwards per element), or
- complex-step differentiation Im f(x + i h) / h, exact to rounding (error ~1e-15, no cancellation),
  used when `fn` is `SomeFunction.apply` (or a functools.partial of it) and that Function declares
  `complex_step = True` (its forward must be written so that it works on complex arrays).
- fast=True: random projections uᵀJd against the analytic VJP for a few random u, d (two forwards
  and one backward each, whatever the size); see `gradcheck` for the failure probability.

Linearity. backward must be linear in the gradient it receives: the checker also runs it with the
cotangent scaled by -1.5. That catches a backward that ignores `grad` (or squares it), which a
plain derivative check of a one-element output (a loss, where grad = 1) cannot see.

Kinks (kinks=True, the default). Where the central difference disagrees with the analytic value,
the checker takes the one-sided differences (f(x+eps) - f(x))/eps and (f(x) - f(x-eps))/eps. If
they differ, and keep their values when the step is halved (a true kink, not curvature and not a
jump), an analytic value lying between them is accepted: it is a valid one-sided/sub-gradient, which
is what ReLU at 0, |x| at 0, clamp at its bounds and max with ties return. Any other value still
fails, and the report (report=True) lists the elements treated so. It is on by default because
hypothesis draws exact kinks (0.0, ties) all the time, and a checker that fails there teaches users
to skip the inputs that matter; it never widens the tolerance at a point where the function is
differentiable. kinks=False gives the strict check.
"""
import functools

import numpy as np

from . import autograd
from .tensor import Tensor, concat

# pytest: hide the checker's own frames, so a failure points at the caller's line.
__tracebackhide__ = True

# (eps, atol, rtol) by the analytic side's dtype. A check passes where
# |analytic - numerical| <= atol + rtol * |numerical|.
# float64: central differences at eps=1e-6 on float64 are accurate to ~1e-9 relative, so rtol 1e-4
#   catches a backward 0.1% off and leaves a 100x margin over the numerical error.
# float32: the analytic gradient carries float32 rounding (~1e-7 per op, more after long sums),
#   so rtol 5e-3 (catches a 2% error) and atol 1e-4.
_DEFAULTS = {np.dtype(np.float64): (1e-6, 1e-6, 1e-4), np.dtype(np.float32): (1e-6, 1e-4, 5e-3)}
# fast mode compares one number per projection against the scale ||VJP||: its rtol is this much
# smaller than the element-wise one (see gradcheck's docstring for what it buys).
_FAST_RTOL_FACTOR = 1e-2
_COMPLEX_H = 1e-20
# (atol, rtol) for float64 when the numerical side is the complex step (exact to rounding)
_COMPLEX_F64 = (1e-10, 1e-8)
_BLOCK = 64            # fast mode: bisection stops at this many elements, then checks each one
_FULL_FALLBACK = 4096  # fast mode: a failed projection on inputs this small re-runs the full check
_MAX_BLOCKS = 8        # fast mode: blocks found right one by one (kinks) before giving up
_MAX_KINK_PROBES = 2000


class GradcheckError(AssertionError):
    """Raised by gradcheck/gradgradcheck: names the input, the element and both values.

    Attributes: input_index, element (index tuple), analytic, numerical, tolerance, method
    ("central differences" | "complex step" | "random projection ..."), compared ("derivative" or
    "vjp"), v (the cotangent used, or None for a plain derivative), left/right (one-sided
    differences when they were taken, else None)."""

    def __init__(self, message, input_index=None, element=None, analytic=None, numerical=None,
                 tolerance=None, method=None, compared=None, v=None, left=None, right=None):
        super().__init__(message)
        self.input_index, self.element = input_index, element
        self.analytic, self.numerical, self.tolerance = analytic, numerical, tolerance
        self.method, self.compared, self.v, self.left, self.right = method, compared, v, left, right
        self.analytic_array = None


class GradcheckReport:
    """What a passing gradcheck did (returned with report=True; always truthy).

    method: the numerical method; checked: input positions checked; evaluations: forward passes
    on the numerical side; kink_elements: (input index, element, analytic, left, right) for every
    element accepted as lying between its one-sided differences; near_kink_elements: (input
    index, element) where a kink lay within eps of x, so the derivative was confirmed at a 100x
    smaller step; max_error: the largest
    |analytic - numerical| of the elements compared one by one (None in a fast check that needed
    no element check)."""

    def __init__(self, method, checked):
        self.method, self.checked = method, list(checked)
        self.evaluations, self.kink_elements, self.max_error = 0, [], None
        self.near_kink_elements, self.projections = [], 0

    def __bool__(self):
        return True

    def __repr__(self):
        kinks = f", {len(self.kink_elements)} element(s) at kinks" if self.kink_elements else ""
        return (f"GradcheckReport(passed, method={self.method!r}, inputs {self.checked}, "
                f"{self.evaluations} forward evaluations{kinks})")


# ------------------------------------------------------------------------------------ helpers

def _as_inputs(inputs):
    single = isinstance(inputs, Tensor)
    inputs = [inputs] if single else list(inputs)
    for i, x in enumerate(inputs):
        if not isinstance(x, Tensor):
            raise TypeError(f"gradcheck: input {i} is a {type(x).__name__}, expected a Tensor")
    if not any(x.requires_grad for x in inputs):
        raise ValueError("gradcheck: no input requires grad; nothing to check")
    return inputs


def _tolerances(inputs, eps, atol, rtol):
    dtype = max((x.dtype for x in inputs if x.requires_grad), key=lambda d: d.itemsize)
    d_eps, d_atol, d_rtol = _DEFAULTS.get(np.dtype(dtype), _DEFAULTS[np.dtype(np.float32)])
    return (d_eps if eps is None else eps, d_atol if atol is None else atol,
            d_rtol if rtol is None else rtol)


def _complex_op(fn):
    """(FunctionClass, keyword params) if fn is F.apply (or a partial of it with keywords only)
    for a Function that declares complex_step = True; else None."""
    params = {}
    while isinstance(fn, functools.partial):
        if fn.args:
            return None
        params = {**fn.keywords, **params}
        fn = fn.func
    owner = getattr(fn, "__self__", None)
    if (isinstance(owner, type) and issubclass(owner, autograd.Function)
            and getattr(fn, "__name__", "") == "apply" and getattr(owner, "complex_step", False)):
        return owner, params
    return None


def _index(shape, j):
    return tuple(int(t) for t in np.unravel_index(j, shape)) if len(shape) else ()


def _fmt(x):
    return f"{x:.10g}"


class _Numerical:
    """The numerical side: float64 copies of the inputs (one per distinct Tensor, so a tensor
    passed twice is perturbed in both places), and forward evaluations on them."""

    def __init__(self, fn, inputs, eps, graph, complex_op):
        self.fn, self.inputs, self.eps, self.graph, self.complex_op = fn, inputs, eps, graph, complex_op
        first = {}
        self.canon = [first.setdefault(id(x), i) for i, x in enumerate(inputs)]
        self.bases = {}
        for i, x in enumerate(inputs):
            if self.canon[i] == i and x.dtype.kind == "f":
                # C order: a Fortran-ordered input must still be perturbed one element at a time
                self.bases[i] = np.array(x.data, dtype=np.float64, order="C")
        self.evaluations = 0
        self.out_dtype = np.dtype(np.float64)
        self.out0 = self.evaluate()

    def _args(self):
        made = {}  # one Tensor per distinct input: a tensor passed twice stays one object
        args = []
        for i, x in enumerate(self.inputs):
            c = self.canon[i]
            if c in self.bases:
                if c not in made:
                    made[c] = Tensor(self.bases[c], requires_grad=x.requires_grad and self.graph)
                args.append(made[c])
            else:
                args.append(x)
        return args

    def evaluate(self):
        self.evaluations += 1
        if self.complex_op is not None:
            return np.real(self._complex_eval({}))
        if self.graph:
            out = self.fn(*self._args())
        else:
            with autograd.no_grad():
                out = self.fn(*self._args())
        if not isinstance(out, Tensor):
            raise TypeError(f"gradcheck: fn must return a Tensor, got {type(out).__name__}")
        self.out_dtype = out.dtype
        return np.array(out.data, dtype=np.float64)

    def _complex_eval(self, complex_bases):
        cls, params = self.complex_op
        arrays = []
        for i, x in enumerate(self.inputs):
            c = self.canon[i]
            arrays.append(complex_bases[c] if c in complex_bases else self.bases.get(c, x.data))
        raw = cls.forward(cls(list(self.inputs)), *arrays, **params)
        return np.asarray(raw)

    # one element: (central, left, right); left/right are None for complex step
    def column(self, i, j, v):
        base = self.bases[i]
        flat = base.reshape(-1)
        if self.complex_op is not None:
            cb = base.astype(np.complex128)
            cb.reshape(-1)[j] += 1j * _COMPLEX_H
            self.evaluations += 1
            d = np.imag(self._complex_eval({i: cb})) / _COMPLEX_H
            return float(np.sum(v * d)), None, None
        orig = flat[j]
        xp, xm = orig + self.eps, orig - self.eps
        flat[j] = xp
        op = self.evaluate()
        flat[j] = xm
        om = self.evaluate()
        flat[j] = orig
        central = float(np.sum(v * (op - om)) / (xp - xm))
        right = float(np.sum(v * (op - self.out0)) / (xp - orig))
        left = float(np.sum(v * (self.out0 - om)) / (orig - xm))
        return central, left, right

    def one_sided(self, i, j, v, step):
        flat = self.bases[i].reshape(-1)
        orig = flat[j]
        xp, xm = orig + step, orig - step
        flat[j] = xp
        op = self.evaluate()
        flat[j] = xm
        om = self.evaluate()
        flat[j] = orig
        return (float(np.sum(v * (self.out0 - om)) / (orig - xm)),
                float(np.sum(v * (op - self.out0)) / (xp - orig)))

    def directional(self, u, dirs):
        """uᵀJd for directions dirs {input: array}: central differences (or complex step)."""
        if self.complex_op is not None:
            cbs = {i: self.bases[i] + 1j * _COMPLEX_H * d for i, d in dirs.items()}
            self.evaluations += 1
            return float(np.sum(u * np.imag(self._complex_eval(cbs)))) / _COMPLEX_H
        saved = {i: self.bases[i].copy() for i in dirs}
        try:
            for i, d in dirs.items():
                self.bases[i] += self.eps * d
            op = self.evaluate()
            for i, d in dirs.items():
                np.subtract(saved[i], self.eps * d, out=self.bases[i])
            om = self.evaluate()
        finally:
            for i in dirs:
                self.bases[i][...] = saved[i]
        return float(np.sum(u * (op - om))) / (2 * self.eps)


def _analytic(out, wanted, v):
    """VJPs vᵀJ for each tensor in wanted, as float64 arrays (zeros where unused)."""
    if not out.requires_grad:
        return [np.zeros(w.shape) for w in wanted]
    gs = autograd.grad(out, wanted, grad_outputs=Tensor(v, dtype=out.dtype), allow_unused=True)
    return [np.zeros(w.shape) if g is None else np.array(g.data, dtype=np.float64) for g, w in zip(gs, wanted)]


def _cotangent(out, seed):
    if out.size == 1:
        return np.ones(out.shape), "derivative"
    return np.random.default_rng(seed).standard_normal(out.shape), "vjp"


def _describe_v(v, compared, seed, out_shape, note=None):
    if compared == "derivative":
        return ("compared: the plain derivative of the one-element output")
    shown = (f"v = {np.array2string(v, precision=4, separator=', ')}" if v.size <= 8
             else note or f"v = np.random.default_rng({seed}).standard_normal({tuple(out_shape)})")
    return (f"compared: (vᵀJ)[element], the gradient backward returns for the cotangent v, "
            f"against the same product from the numerical Jacobian; {shown}")


def _labels(inputs, canon, i):
    same = [k for k, c in enumerate(canon) if c == i and k != i]
    also = f", also passed as input {', '.join(map(str, same))}" if same else ""
    x = inputs[i]
    return f"input {i} (shape {x.shape}, dtype {x.dtype}{also})"


class _Judge:
    """Element-wise comparison with the kink rule; raises GradcheckError with a full message."""

    def __init__(self, num, inputs, atol, rtol, kinks, method, compared, seed, out_shape, report):
        self.num, self.inputs, self.atol, self.rtol, self.kinks = num, inputs, atol, rtol, kinks
        self.method, self.compared, self.seed, self.out_shape = method, compared, seed, out_shape
        self.report = report
        self.max_error = 0.0
        self.v_note = None

    def check(self, i, a_flat, js, v, context=""):
        """Check elements js (flat indices) of unique input i; a_flat: analytic values at js."""
        __tracebackhide__ = True
        worst = None
        probes = 0
        for a, j in zip(a_flat.tolist(), js):
            central, left, right = self.num.column(i, int(j), v)
            err = abs(a - central)
            if np.isfinite(err):
                self.max_error = max(self.max_error, err)
            tol = self.atol + self.rtol * abs(central)
            if err <= tol:
                continue
            kink = None
            if self.kinks and left is not None and probes < _MAX_KINK_PROBES:
                probes += 1
                kink = self._kink(i, int(j), v, a, left, right)
                if kink is True:
                    self.report.kink_elements.append(
                        (i, _index(self.inputs[i].shape, int(j)), float(a), left, right))
                    continue
                if kink == "near":
                    self.report.near_kink_elements.append((i, _index(self.inputs[i].shape, int(j))))
                    continue
            ratio = err / tol if np.isfinite(err) else np.inf
            if worst is None or ratio > worst[0]:
                worst = (ratio, int(j), float(a), central, tol, left, right, kink)
        if worst is not None:
            self._raise(i, worst, v, context, a_flat, js)

    def _kink(self, i, j, v, a, left, right):
        tol = self.atol + self.rtol * max(abs(left), abs(right))
        gap = abs(right - left)
        if not (gap > tol and np.isfinite(gap)):
            return None          # one-sided differences agree: differentiable, so a real mismatch
        # a kink closer to x than eps (x = 3e-7 for relu): at a 100x smaller step the function is
        # smooth again, and there the central difference is the derivative at x itself
        left_f, right_f = self.num.one_sided(i, j, v, self.num.eps / 100)
        tol_f = self.atol + self.rtol * max(abs(left_f), abs(right_f))
        if abs(right_f - left_f) <= tol_f and abs(a - (left_f + right_f) / 2) <= tol_f:
            return "near"
        left2, right2 = self.num.one_sided(i, j, v, self.num.eps / 2)
        stable = abs(left2 - left) <= 0.1 * gap + tol and abs(right2 - right) <= 0.1 * gap + tol
        if not stable:
            return "unstable"    # curvature or a jump, not a kink: no interval is accepted
        lo, hi = min(left, right), max(left, right)
        return True if lo - tol <= a <= hi + tol else "outside"

    def _raise(self, i, worst, v, context, a_flat, js):
        __tracebackhide__ = True
        _, j, a, central, tol, left, right, kink = worst
        x = self.inputs[i]
        idx = _index(x.shape, j)
        what = "derivative" if self.compared == "derivative" else "(vᵀJ)"
        lines = [f"gradcheck failed for {_labels(self.inputs, self.num.canon, i)} at element {idx}: "
                 f"analytic {what} {a!r}, numerical {central!r} ({self.method}), difference "
                 f"{abs(a - central):.3g} > tolerance {tol:.3g} (atol={self.atol}, rtol={self.rtol})"]
        if kink == "outside":
            lines.append(f"the function has a kink there: one-sided differences left {_fmt(left)}, "
                         f"right {_fmt(right)}; the analytic value is not between them")
        elif kink == "unstable":
            lines.append(f"one-sided differences left {_fmt(left)}, right {_fmt(right)} change with "
                         f"the step: not a kink (a jump or strong curvature), so no interval is accepted")
        if self.num.out_dtype.kind == "f" and self.num.out_dtype.itemsize < 8:
            lines.append(f"note: fn returned {self.num.out_dtype} on the float64 copies, so the numerical "
                         f"side carries {self.num.out_dtype} rounding (about 1e-7 |f| / eps): a cast "
                         f"inside fn? pass a larger eps (1e-3) and looser atol/rtol")
        if context:
            lines.append(context)
        lines.append(_describe_v(v, self.compared, self.seed, self.out_shape, self.v_note))
        err = GradcheckError("\n".join(lines), input_index=i, element=idx, analytic=a,
                             numerical=central, tolerance=tol, method=self.method,
                             compared=self.compared, v=None if self.compared == "derivative" else v,
                             left=left, right=right)
        err.analytic_array = np.asarray(a_flat)
        raise err


# ------------------------------------------------------------------------------------ gradcheck

def gradcheck(fn, inputs, eps=None, atol=None, rtol=None, seed=0, *, kinks=True, fast=False,
              projections=3, method="auto", report=False, _graph=False):
    """Check fn's gradients numerically; return True (or a GradcheckReport with report=True), or
    raise GradcheckError naming the input, the element, both values and what was compared.

    fn(*inputs) must return a Tensor; inputs is a Tensor or a list of Tensors. Inputs with
    requires_grad are checked (a tensor passed twice is checked once, as one variable); the others
    are passed unchanged (float ones as float64 copies on the numerical side).

    Tolerances: an element passes when |analytic - numerical| <= atol + rtol * |numerical|.
    Defaults by the checked inputs' dtype: float64 eps=1e-6, atol=1e-6, rtol=1e-4 (catches a
    backward 0.1% off); float32 atol=1e-4, rtol=5e-3 (catches 2%). The numerical side is always
    float64. With the complex step (exact), float64 defaults to atol=1e-10, rtol=1e-8.

    kinks: accept, element by element, an analytic value between the one-sided differences where
    those differ (see the module docstring); report=True lists the elements so treated.

    method: "auto" (complex step when fn is a Function's apply that declares complex_step = True,
    else central differences), "central", or "complex" (TypeError if fn cannot be evaluated so).

    fast=True: instead of two forwards per element, `projections` random projections: for each,
    random u (output-shaped) and d (input-shaped), both standard normal, compare the analytic
    sum_i <(uᵀJ)_i, d_i> (one backward) with the directional derivative uᵀJd (two forwards),
    tolerance atol + rtol/100 * ||uᵀJ||. Failure probability: a backward whose every element is off
    by a relative r passes one projection only if |Z| < (rtol/100)/r for a standard normal Z
    (probability ≈ 0.8 (rtol/100)/r), so all k with that to the power k: float64 defaults, r=0.1%:
    (8e-4)^3 ≈ 5e-10; float32, r=2%: (2e-3)^3 ≈ 1e-8. One element off by δ in uᵀJ passes a
    projection with probability ≈ 0.8 (rtol/100) ||uᵀJ|| / |δ|. On a failed projection the
    checker bisects the input (two forwards per halving) down to 64 elements and checks those one
    by one, so the error names the worst element; if they are all right (the projection went
    through a kink, where the element check is kink-aware), they are left out and the projection
    is repeated, up to 8 blocks. Inputs of at most 4096 elements in total are re-checked in full
    instead.
    """
    __tracebackhide__ = True
    inputs = _as_inputs(inputs)
    user_atol, user_rtol = atol, rtol
    eps, atol, rtol = _tolerances(inputs, eps, atol, rtol)
    if method not in ("auto", "central", "complex"):
        raise ValueError(f"gradcheck: method must be 'auto', 'central' or 'complex', got {method!r}")
    complex_op = None
    if method != "central" and not _graph:
        complex_op = _complex_op(fn)
        if complex_op is None and method == "complex":
            raise TypeError("gradcheck: method='complex' needs fn to be SomeFunction.apply (or a "
                            "functools.partial of it) for a Function that declares complex_step = True")
    mname = "complex step" if complex_op is not None else "central differences"
    widest = max((x.dtype for x in inputs if x.requires_grad), key=lambda d: d.itemsize)
    if complex_op is not None and np.dtype(widest) == np.float64:
        # exact numerical side: only the analytic side's float64 rounding is left to allow for
        atol = _COMPLEX_F64[0] if user_atol is None else atol
        rtol = _COMPLEX_F64[1] if user_rtol is None else rtol
    out = fn(*inputs)
    if not isinstance(out, Tensor):
        raise TypeError(f"gradcheck: fn must return a Tensor, got {type(out).__name__}")
    num = _Numerical(fn, inputs, eps, _graph, complex_op)
    checked = [i for i, x in enumerate(inputs) if x.requires_grad and num.canon[i] == i]
    rep = GradcheckReport(mname if not fast else f"random projection (k={projections}, {mname})", checked)
    v, compared = _cotangent(out, seed)
    judge = _Judge(num, inputs, atol, rtol, kinks, mname, compared, seed, out.shape, rep)
    analytic = _analytic(out, [inputs[i] for i in checked], v)
    _check_linear(out, inputs, checked, num, v, analytic, atol, rtol)
    if fast:
        _fast_check(out, inputs, checked, num, judge, atol, rtol * _FAST_RTOL_FACTOR, seed,
                    projections, rep)
    else:
        for i, a in zip(checked, analytic):
            a_flat = a.reshape(-1)
            judge.check(i, a_flat, np.arange(a_flat.size), v)
        rep.max_error = judge.max_error
    rep.evaluations = num.evaluations
    return rep if report else True


_LINEAR_SCALE = -1.5


def _check_linear(out, inputs, checked, num, v, analytic, atol, rtol):
    """backward(c g) must be c backward(g): a backward that ignores the gradient it receives (or
    squares it) passes a plain derivative check of a one-element output, where g = 1, and is
    wrong as soon as the op is not the last one."""
    __tracebackhide__ = True
    if not out.requires_grad:
        return
    scaled = _analytic(out, [inputs[i] for i in checked], _LINEAR_SCALE * v)
    for i, a, b in zip(checked, analytic, scaled):
        want = _LINEAR_SCALE * a
        tol = atol + rtol * np.abs(want)
        bad = ~(np.abs(b - want) <= tol)
        if bad.any():
            j = int(np.flatnonzero(bad.reshape(-1))[0])
            idx = _index(a.shape, j)
            raise GradcheckError(
                f"gradcheck failed for {_labels(inputs, num.canon, i)}: backward is not linear in the "
                f"gradient it receives: with the output's gradient multiplied by {_LINEAR_SCALE}, "
                f"element {idx} became {float(b.reshape(-1)[j])!r} instead of {_LINEAR_SCALE} x "
                f"{float(a.reshape(-1)[j])!r} = {float(want.reshape(-1)[j])!r}; does backward ignore "
                f"(or square) its grad argument? (right only where the op is the last one)",
                input_index=i, element=idx, analytic=float(b.reshape(-1)[j]),
                numerical=float(want.reshape(-1)[j]), tolerance=float(tol.reshape(-1)[j]),
                method="linearity in the incoming gradient", compared="linearity")


def _fast_check(out, inputs, checked, num, judge, atol, frtol, seed, projections, rep):
    __tracebackhide__ = True
    rng = np.random.default_rng([seed, 7])
    wanted = [inputs[i] for i in checked]
    total = sum(inputs[i].size for i in checked)
    for k in range(projections):
        u = np.ones(out.shape) if out.size == 1 else rng.standard_normal(out.shape)
        g = dict(zip(checked, _analytic(out, wanted, u)))
        d = {i: rng.standard_normal(inputs[i].shape) for i in checked}
        a = sum(float(np.sum(g[i] * d[i])) for i in checked)
        n = num.directional(u, d)
        scale = max(float(np.sqrt(sum(float(np.sum(g[i] ** 2)) for i in checked))), abs(n))
        tol = atol + frtol * scale
        rep.projections += 1
        if abs(a - n) <= tol:
            continue
        summary = (f"fast check: projection {k + 1} of {projections} failed: analytic uᵀJd {a!r}, "
                   f"numerical {n!r}, tolerance {tol:.3g} (u, d standard normal from "
                   f"np.random.default_rng([{seed}, 7]))")
        judge.v_note = (f"v = u of projection {k + 1} (rng = np.random.default_rng([{seed}, 7]) draws "
                        f"u, then d for each input, per projection)")
        if total <= _FULL_FALLBACK:
            # small enough: the full element-wise check names the worst element (and is
            # kink-aware, so a projection through a kink that is fine passes here)
            for i in checked:
                judge.check(i, g[i].reshape(-1), np.arange(inputs[i].size), u, context=summary)
            continue
        # bisect to a block, check its elements one by one (raises if one is wrong); if they are
        # right (a kink the projection went through), leave them out and project again
        for _ in range(_MAX_BLOCKS):
            i, idx = _localize(inputs, checked, num, judge, atol, frtol, u, g, d, n, summary)
            d[i].reshape(-1)[idx] = 0.0
            a = sum(float(np.sum(g[i] * d[i])) for i in checked)
            n = num.directional(u, d)
            if abs(a - n) <= atol + frtol * max(scale, abs(n)):
                break
        else:
            raise GradcheckError(
                summary + f"\nthe {_MAX_BLOCKS} blocks that bisection found pass one by one: the "
                f"discrepancy is spread over many elements, or comes from many kinks; run the full "
                f"check (fast=False) to see every element", method="random projection",
                compared="projection")
    rep.max_error = judge.max_error if judge.max_error else None


def _localize(inputs, checked, num, judge, atol, frtol, u, g, d, n_all, summary):
    """Bisect to the block of at most _BLOCK elements that carries the discrepancy and check its
    elements one by one with u as the cotangent (GradcheckError if one is wrong); return the
    input and the block's flat indices when they are all right."""
    __tracebackhide__ = True

    def ratio(i, mask_idx, n):
        gi = g[i].reshape(-1)[mask_idx]
        a = float(np.sum(gi * d[i].reshape(-1)[mask_idx]))
        return abs(a - n) / (atol + frtol * max(float(np.sqrt(np.sum(gi ** 2))), abs(n)))

    def directional(i, idx):
        di = np.zeros(inputs[i].size)
        di[idx] = d[i].reshape(-1)[idx]
        return num.directional(u, {i: di.reshape(inputs[i].shape)})

    best = None
    for i in checked:
        idx = np.arange(inputs[i].size)
        n = directional(i, idx) if len(checked) > 1 else n_all
        r = ratio(i, idx, n)
        if best is None or r > best[0]:
            best = (r, i, n)
    _, i, n = best
    idx = np.arange(inputs[i].size)
    while idx.size > _BLOCK:
        half, rest = idx[: idx.size // 2], idx[idx.size // 2:]
        n_half = directional(i, half)
        n_rest = n - n_half  # the directional derivative is linear in d
        if ratio(i, half, n_half) >= ratio(i, rest, n_rest):
            idx, n = half, n_half
        else:
            idx, n = rest, n_rest
    judge.check(i, g[i].reshape(-1)[idx], idx, u,
                context=summary + f"; bisection narrowed it to {idx.size} elements of input {i}, "
                                  f"each checked with u as the cotangent")
    return i, idx


def max_gradient_error(fn, inputs, eps=None, seed=0, method="central"):
    """The largest |analytic - numerical| over all inputs and elements (for reports); method as in
    gradcheck ("auto" uses the complex step where fn declares it)."""
    inputs = _as_inputs(inputs)
    eps, _, _ = _tolerances(inputs, eps, None, None)
    worst = 0.0
    for _, a, num in gradient_pairs(fn, inputs, eps, seed, method):
        if a.size:
            worst = max(worst, float(np.max(np.abs(a - num))))
    return worst


def gradient_pairs(fn, inputs, eps=1e-6, seed=0, method="central"):
    """Yield (input index, analytic array, numerical array) for every input that requires grad
    (vᵀfn differentiated numerically, v as in gradcheck; method "central", or "auto" for the
    complex step where fn declares it)."""
    inputs = _as_inputs(inputs)
    out = fn(*inputs)
    if not isinstance(out, Tensor):
        raise TypeError(f"gradcheck: fn must return a Tensor, got {type(out).__name__}")
    num = _Numerical(fn, inputs, eps, False, _complex_op(fn) if method != "central" else None)
    checked = [i for i, x in enumerate(inputs) if x.requires_grad and num.canon[i] == i]
    v, _ = _cotangent(out, seed)
    for i, a in zip(checked, _analytic(out, [inputs[i] for i in checked], v)):
        col = np.array([num.column(i, j, v)[0] for j in range(a.size)]).reshape(a.shape)
        yield i, a, col


# ------------------------------------------------------------------------------------ gradgradcheck

_ZERO_HINT = ("the analytic second derivative is exactly 0 there: the usual cause is a backward "
              "computed on arrays (.numpy(), .data, numpy functions) instead of Tensor operations, so "
              "the second backward cannot see it, or a value saved for backward that is neither an "
              "input nor the output of forward (it comes back as a constant)")


def gradgradcheck(fn, inputs, grad_outputs=None, eps=None, atol=None, rtol=None, seed=0, *,
                  kinks=True):
    """Check second derivatives: gradcheck of (inputs, v) -> vᵀ d fn / d inputs.

    The inner gradient is taken with create_graph=True, so this checks every backward's own
    backward (with respect to the inputs and to the cotangent v). grad_outputs (v) defaults to a
    fixed random tensor of the output's shape. Failures raise GradcheckError saying
    "gradgradcheck failed", and hint at the usual cause when the analytic side is exactly 0.
    """
    __tracebackhide__ = True
    inputs = _as_inputs(inputs)
    out = fn(*inputs)
    if not isinstance(out, Tensor):
        raise TypeError(f"gradgradcheck: fn must return a Tensor, got {type(out).__name__}")
    if grad_outputs is None:
        v = np.random.default_rng(seed + 1).standard_normal(out.shape)
        grad_outputs = Tensor(v, dtype=out.dtype, requires_grad=True)
    checked_idx = [i for i, x in enumerate(inputs) if x.requires_grad]

    def first_derivatives(*args):
        xs, v = args[:-1], args[-1]
        y = fn(*xs)
        wrt, seen = [], set()
        for i in checked_idx:
            if id(xs[i]) not in seen:
                seen.add(id(xs[i]))
                wrt.append(xs[i])
        if not y.requires_grad:
            return concat([Tensor(np.zeros(w.size, dtype=w.dtype)) for w in wrt], axis=0)
        gs = autograd.grad(y, wrt, grad_outputs=v, create_graph=True, allow_unused=True)
        parts = [(g if g is not None else Tensor(np.zeros(w.shape, dtype=w.dtype))).reshape(-1)
                 for g, w in zip(gs, wrt)]
        return concat(parts, axis=0)

    all_inputs = list(inputs) + [grad_outputs]
    try:
        return gradcheck(first_derivatives, all_inputs, eps=eps, atol=atol, rtol=rtol, seed=seed,
                         kinks=kinks, _graph=True)
    except GradcheckError as e:
        msg = str(e).replace("gradcheck failed for", "gradgradcheck failed: second derivatives "
                             "disagree, for", 1)
        if e.input_index == len(inputs):
            msg = msg.replace(f"input {len(inputs)} (", "the cotangent v fed to backward (", 1)
        msg += ("\nchecked: g(inputs, v) = vᵀ d fn/d inputs from backward with create_graph=True, "
                "differentiated by a second backward and numerically")
        a_arr = e.analytic_array
        if e.analytic == 0.0 or (a_arr is not None and a_arr.size and not np.any(a_arr)):
            msg += "\nhint: " + _ZERO_HINT
        err = GradcheckError(msg, input_index=e.input_index, element=e.element, analytic=e.analytic,
                             numerical=e.numerical, tolerance=e.tolerance, method=e.method,
                             compared=e.compared, v=e.v, left=e.left, right=e.right)
        err.analytic_array = a_arr
        raise err from None
