"""`tinygrad-rep gradcheck`: every op and loss against central differences, one line each.

Prints, per case, the largest |analytic - numerical| gradient error in float64 on the current
backend, and fails (exit 1) if any case fails tr.gradcheck. Two parts: every Function class of
tinygrad_rep.ops, found by walking the package (so an op added without a case here is reported as
a failure, never skipped), then the public Tensor methods and losses built on them.
"""
import importlib
import inspect
import pkgutil
import time

import numpy as np

from .. import Function, Tensor, backend, concat, gradcheck, ops, stack
from .. import functional as F
from ..gradcheck import GradcheckError, max_gradient_error
from . import options


def library_ops():
    """Every Function subclass defined in a module of tinygrad_rep.ops, as {"module.Class": class}."""
    found = {}
    for info in pkgutil.walk_packages(ops.__path__, ops.__name__ + "."):
        mod = importlib.import_module(info.name)
        for name, cls in vars(mod).items():
            if inspect.isclass(cls) and issubclass(cls, Function) and cls.__module__ == mod.__name__:
                found[f"{mod.__name__.rsplit('.', 1)[1]}.{name}"] = cls
    return found


def _op_cases():
    """"module.Class" -> (fn, input specs) reaching that op class. A spec is a shape, or "kind:shape"
    with kind pos (positive), away (|x| >= 0.2: away from the kinks of relu, abs, clamp at +-0.1),
    distinct (no ties, for max) or f32 (a float32 input, for casts)."""
    from ..ops import conv as conv_ops, sgns as sgns_ops
    idx = np.array([0, 2, 2, 4, 1, 2])
    targets = np.array([1, 0, 3])
    z0 = Tensor(np.array(0.0))

    def ce_grad(logits, g):
        # CrossEntropyGrad takes the softmax as a constant: computed from the (perturbed) logits as
        # CrossEntropy's backward does, so forward and backward describe one function
        p = np.exp(logits.data - logits.data.max(-1, keepdims=True))
        return ops.CrossEntropyGrad.apply(logits, g, probs=p / p.sum(-1, keepdims=True), targets=targets)

    return {
        "elementwise.Add": (lambda a, b: ops.Add.apply(a, b), [(3, 4), (4,)]),
        "elementwise.Sub": (lambda a, b: ops.Sub.apply(a, b), [(3, 1), (1, 4)]),
        "elementwise.Mul": (lambda a, b: ops.Mul.apply(a, b), [(2, 3, 4), (3, 1)]),
        "elementwise.Div": (lambda a, b: ops.Div.apply(a, b), [(3, 4), "away:(4,)"]),
        "elementwise.Neg": (lambda a: ops.Neg.apply(a), [(3, 4)]),
        "elementwise.Pow": (lambda a: ops.Pow.apply(a, p=2.5), ["pos:(3, 4)"]),
        "elementwise.Exp": (lambda a: ops.Exp.apply(a), [(3, 4)]),
        "elementwise.Log": (lambda a: ops.Log.apply(a), ["pos:(3, 4)"]),
        "elementwise.Sqrt": (lambda a: ops.Sqrt.apply(a), ["pos:(3, 4)"]),
        "elementwise.Sigmoid": (lambda a: ops.Sigmoid.apply(a), [(3, 4)]),
        "elementwise.LogSigmoid": (lambda a: ops.LogSigmoid.apply(a), [(3, 4)]),
        "elementwise.Tanh": (lambda a: ops.Tanh.apply(a), [(3, 4)]),
        "elementwise.Abs": (lambda a: ops.Abs.apply(a), ["away:(3, 4)"]),
        "elementwise.Clamp": (lambda a: ops.Clamp.apply(a, lo=-0.1, hi=0.1), ["away:(3, 4)"]),
        "reduce.Sum": (lambda a: a.sum(axis=1), [(3, 4, 2)]),
        "reduce.Max": (lambda a: a.max(axis=-1), ["distinct:(3, 5)"]),
        "reduce.LogSumExp": (lambda a: a.logsumexp(axis=0, keepdims=True), [(3, 4)]),
        "reduce.Norm": (lambda a: a.norm(axis=1), ["away:(3, 4)"]),
        "movement.Reshape": (lambda a: a.reshape(4, 3), [(3, 4)]),
        "movement.Transpose": (lambda a: a.transpose(2, 0, 1), [(2, 3, 4)]),
        "movement.Expand": (lambda a: a.expand(2, 3, 4), [(3, 1)]),
        "movement.Cast": (lambda a: a.astype(np.float64), ["f32:(3, 4)"]),
        "movement.Getitem": (lambda a: a[idx % 3, 1:], [(3, 4)]),
        "movement.IndexAdd": (lambda g: ops.IndexAdd.apply(g, index=idx, shape=(5, 3)), [(6, 3)]),
        "movement.Concat": (lambda a, b: concat([a, b], axis=1), [(3, 2), (3, 4)]),
        "matmul.MatMul": (lambda a, b: a @ b, [(2, 3, 4), (4, 5)]),
        "matmul.SelfMaskedGram": (lambda z: ops.SelfMaskedGram.apply(z, z0, scale=0.5), [(4, 3)]),
        "nn.ReLU": (lambda a: a.relu(), ["away:(3, 4)"]),
        "nn.ReLUGrad": (lambda x, g: ops.ReLUGrad.apply(x, g), ["away:(3, 4)", (3, 4)]),
        "nn.Softmax": (lambda a: a.softmax(-1), [(3, 4)]),
        "nn.SoftmaxGrad": (lambda y, g: ops.SoftmaxGrad.apply(y, g), [(3, 4), (3, 4)]),
        "nn.LogSoftmax": (lambda a: a.log_softmax(-1), [(3, 4)]),
        "nn.LogSoftmaxGrad": (lambda y, g: ops.LogSoftmaxGrad.apply(y, g), [(3, 4), (3, 4)]),
        "nn.CrossEntropy": (lambda a: ops.CrossEntropy.apply(a, targets=targets), [(3, 4)]),
        "nn.CrossEntropyGrad": (ce_grad, [(3, 4), ()]),
        "nn.Gather": (lambda w: ops.Gather.apply(w, indices=idx), [(5, 3)]),
        "nn.ScatterAdd": (lambda g: ops.ScatterAdd.apply(g, indices=idx, rows=5), [(6, 3)]),
        "nn.MSELoss": (lambda a, b: ops.MSELoss.apply(a, b), [(3, 4), (3, 4)]),
        "conv.Im2Col": (lambda x: conv_ops.Im2Col.apply(x, kernel=(2, 2), stride=1, padding=1), [(2, 3, 3, 2)]),
        "conv.Col2Im": (lambda c: conv_ops.Col2Im.apply(c, shape=(1, 3, 3, 2), kernel=(2, 2), stride=1,
                                                        padding=0), [(4, 8)]),
        "sgns.SGNSLoss": (lambda c, t: sgns_ops.SGNSLoss.apply(c, t), [(3, 4), (3, 3, 4)]),
        "sgns.SGNSPairs": (lambda wi, wo: sgns_ops.SGNSPairs.apply(wi, wo, inputs=np.array([0, 2, 2]),
                                                                   targets=np.array([[1, 3], [0, 0], [3, 2]])),
                           [(4, 3), (4, 3)]),
    }


def _op_inputs(spec, rng):
    out = []
    for s in spec:
        kind, shape = ("plain", s) if isinstance(s, tuple) else (s.split(":")[0], _shape(s.split(":")[1]))
        if kind == "pos":
            a = rng.uniform(0.3, 2.0, shape)
        elif kind == "away":
            a = rng.uniform(0.2, 2.0, shape) * rng.choice([-1.0, 1.0], shape)
        elif kind == "distinct":
            a = rng.permutation(np.arange(int(np.prod(shape)), dtype=np.float64)).reshape(shape) * 0.3
        elif kind == "f32":
            a = rng.uniform(-1.5, 1.5, shape).astype(np.float32)
        else:
            a = rng.uniform(-1.5, 1.5, shape)
        out.append(Tensor(a, requires_grad=True, dtype=a.dtype))
    return out


def _shape(text):
    text = text.strip().strip("()")
    return tuple(int(p) for p in text.split(",") if p.strip())


def _cases():
    """(name, fn, input shapes) for the public Tensor methods and losses; float64, away from kinks."""
    t = np.array([0, 2, 1, 3])
    idx = np.array([[1, 1], [4, 0]])

    def pos(x):  # keep log/sqrt/pow inputs positive
        return x * x + 0.5

    return [
        ("add (broadcast)", lambda a, b: a + b, [(3, 4), (4,)]),
        ("sub (broadcast)", lambda a, b: a - b, [(3, 1), (1, 4)]),
        ("mul (broadcast)", lambda a, b: a * b, [(2, 3, 4), (3, 1)]),
        ("div", lambda a, b: a / pos(b), [(3, 4), (3, 4)]),
        ("neg", lambda a: -a, [(5,)]),
        ("pow 3", lambda a: a ** 3, [(3, 4)]),
        ("pow -1.5", lambda a: pos(a) ** -1.5, [(3, 4)]),
        ("matmul 2-D", lambda a, b: a @ b, [(3, 4), (4, 5)]),
        ("matmul 1-D", lambda a, b: a @ b, [(4,), (4, 3)]),
        ("matmul batched", lambda a, b: a @ b, [(2, 3, 4), (1, 4, 2)]),
        ("exp", lambda a: a.exp(), [(3, 4)]),
        ("log", lambda a: pos(a).log(), [(3, 4)]),
        ("sqrt", lambda a: pos(a).sqrt(), [(3, 4)]),
        ("relu", lambda a: a.relu(), [(3, 4)]),
        ("sigmoid", lambda a: a.sigmoid(), [(3, 4)]),
        ("tanh", lambda a: a.tanh(), [(3, 4)]),
        ("softmax", lambda a: a.softmax(-1), [(3, 5)]),
        ("softmax axis 0", lambda a: a.softmax(0), [(3, 5)]),
        ("log_softmax", lambda a: a.log_softmax(-1), [(3, 5)]),
        ("sum", lambda a: a.sum(axis=1, keepdims=True), [(3, 4)]),
        ("mean", lambda a: a.mean(axis=(0, 2)), [(2, 3, 4)]),
        ("max", lambda a: a.max(axis=1), [(3, 4)]),
        ("logsumexp", lambda a: a.logsumexp(axis=-1), [(3, 4)]),
        ("reshape", lambda a: a.reshape(4, 3) * 2, [(3, 4)]),
        ("transpose", lambda a: a.transpose(2, 0, 1) * 2, [(2, 3, 4)]),
        ("index", lambda a: a[np.array([0, 0, 2]), 1:3], [(3, 4)]),
        ("concat", lambda a, b: concat([a, b], axis=1), [(3, 2), (3, 4)]),
        ("stack", lambda a, b: stack([a, b], axis=0), [(3, 4), (3, 4)]),
        ("F.normalize", lambda a: F.normalize(a), [(3, 4)]),
        ("F.cosine_similarity", lambda a, b: F.cosine_similarity(a, b), [(3, 4), (3, 4)]),
        ("F.mse_loss", lambda a, b: F.mse_loss(a, b), [(3, 4), (3, 4)]),
        ("F.binary_cross_entropy_with_logits",
         lambda a, b: F.binary_cross_entropy_with_logits(a, b.sigmoid()), [(3, 4), (3, 4)]),
        ("F.cross_entropy", lambda a: F.cross_entropy(a, t), [(4, 5)]),
        ("F.embedding", lambda w: F.embedding(w, idx), [(5, 3)]),
        ("F.nt_xent_loss", lambda a, b: F.nt_xent_loss(a, b, 0.5), [(4, 3), (4, 3)]),
        ("F.info_nce_loss", lambda a, b: F.info_nce_loss(a, b), [(4, 3), (4, 3)]),
        ("F.info_nce_loss (negatives)", lambda a, b, n: F.info_nce_loss(a, b, n), [(4, 3), (4, 3), (5, 3)]),
        ("F.triplet_margin_loss", lambda a, p, n: F.triplet_margin_loss(a, p, n), [(4, 3), (4, 3), (4, 3)]),
        ("F.skipgram_negative_sampling_loss", F.skipgram_negative_sampling_loss, [(4, 3), (4, 3), (4, 2, 3)]),
    ]


def _check(name, fn, inputs, rows, out):
    t0 = time.perf_counter()
    err = max_gradient_error(fn, inputs)
    try:
        gradcheck(fn, inputs)
        status = "ok"
    except GradcheckError as e:
        status = f"FAIL: {e}"
    rows.append({"op": name, "max_error": err, "status": status, "seconds": time.perf_counter() - t0})
    out(f"  {name:36s} {err:9.2e}  {status}")
    return status == "ok"


def tour(seed=0, out=print):
    """Run every case; print one line per case; return (rows, all_passed).

    First every Function class of tinygrad_rep.ops (one without a case fails the tour), then the
    public methods and losses."""
    rng = np.random.default_rng(seed)
    rows, ok = [], True
    out(f"gradient check, float64, backend {backend.get_backend()}: max |analytic - numerical| per case")
    found, cases = library_ops(), _op_cases()
    out(f"every op class of tinygrad_rep.ops ({len(found)}):")
    for name in sorted(found):
        if name not in cases:
            rows.append({"op": name, "max_error": float("nan"), "status": "FAIL: no gradient case", "seconds": 0.0})
            out(f"  {name:36s} {'-':>9s}  FAIL: no gradient case in commands/gradcheck.py")
            ok = False
            continue
        fn, spec = cases[name]
        ok = _check(name, fn, _op_inputs(spec, rng), rows, out) and ok
    out("the public methods and losses built on them:")
    for name, fn, shapes in _cases():
        inputs = [Tensor(rng.uniform(-2, 2, s) + np.sign(rng.uniform(-1, 1, s)) * 0.05,
                         requires_grad=True, dtype=np.float64) for s in shapes]
        t0 = time.perf_counter()
        err = max_gradient_error(fn, inputs)
        try:
            gradcheck(fn, inputs)
            status = "ok"
        except GradcheckError as e:
            status, ok = f"FAIL: {e}", False
        rows.append({"op": name, "max_error": err, "status": status, "seconds": time.perf_counter() - t0})
        out(f"  {name:36s} {err:9.2e}  {status}")
    return rows, ok


def add_arguments(parser):
    parser.add_argument("--seed", type=int, default=0, help="seed for the random inputs")


def run(args):
    options.non_negative("seed", args.seed, integer=True)
    _, ok = tour(args.seed)
    return 0 if ok else 1
