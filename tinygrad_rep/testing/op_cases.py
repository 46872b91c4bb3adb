"""One gradient case per op of the library: the table that `tinygrad-rep gradcheck` and the kit's
own tests both check, and the walk that finds every op (so an op added to tinygrad_rep.ops without
a case here is reported, never skipped).

library_ops()      {"module.Class": Function subclass} for every op defined in tinygrad_rep.ops
op_cases()         {"module.Class": (fn, input specs)}; fn(*tensors) builds a graph reaching the op
op_inputs(spec, seed)  float64 Tensors that require grad, drawn as each spec asks
"""
import importlib
import inspect
import pkgutil

import numpy as np

from .. import ops
from ..autograd import Function
from ..tensor import Tensor, concat


def library_ops():
    """Every Function subclass defined in a module of tinygrad_rep.ops, as {"module.Class": class}."""
    found = {}
    for info in pkgutil.walk_packages(ops.__path__, ops.__name__ + "."):
        mod = importlib.import_module(info.name)
        for name, cls in vars(mod).items():
            if inspect.isclass(cls) and issubclass(cls, Function) and cls.__module__ == mod.__name__:
                found[f"{mod.__name__.rsplit('.', 1)[1]}.{name}"] = cls
    return found


def op_cases():
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


def op_inputs(spec, seed=0):
    """The inputs a case's spec asks for; input k is drawn from default_rng(seed + k)."""
    out = []
    for k, s in enumerate(spec):
        rng = np.random.default_rng(seed + k)
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
