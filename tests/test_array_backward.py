"""Every op that defines `array_backward` gives, bit for bit, the gradients of its Tensor-level
`backward`. The ops are enumerated from the library itself, so an op that gains an
array_backward without a case here fails the coverage test below."""
import inspect

import numpy as np
import pytest

import tinygrad_rep as tr
from tinygrad_rep import Tensor, ops
from tinygrad_rep.autograd import Function
from tinygrad_rep.ops import sgns


def _ops_with_array_backward():
    found = {}
    for module in (ops, sgns):
        for name, obj in vars(module).items():
            if inspect.isclass(obj) and issubclass(obj, Function) and obj is not Function \
                    and obj.array_backward is not None:
                found[obj.__name__] = obj
    return found


def _leaf(rng, shape, dtype, positive=False):
    a = rng.standard_normal(shape).astype(dtype)
    return Tensor(np.abs(a) + 0.5 if positive else a, requires_grad=True)


# name -> (leaves factory(rng, dtype), apply(leaves) -> output Tensor)
CASES = {
    "Add": (lambda r, dt: [_leaf(r, (3, 4), dt), _leaf(r, (4,), dt)], lambda a, b: a + b),
    "Sub": (lambda r, dt: [_leaf(r, (3, 4), dt), _leaf(r, (4,), dt)], lambda a, b: a - b),
    "Mul": (lambda r, dt: [_leaf(r, (3, 4), dt), _leaf(r, (3, 1), dt)], lambda a, b: a * b),
    "Neg": (lambda r, dt: [_leaf(r, (5,), dt)], lambda a: -a),
    "Sigmoid": (lambda r, dt: [_leaf(r, (4, 3), dt)], lambda a: a.sigmoid()),
    "Sum": (lambda r, dt: [_leaf(r, (2, 3, 4), dt)], lambda a: a.sum(axis=(0, 2), keepdims=False)),
    "MatMul": (lambda r, dt: [_leaf(r, (2, 4, 3), dt), _leaf(r, (3, 5), dt)], lambda a, b: a @ b),
    "SelfMaskedGram": (lambda r, dt: [_leaf(r, (6, 3), dt)],
                       lambda z: ops.SelfMaskedGram.apply(z, Tensor(np.array(0.0, z.dtype)), scale=2.0)),
    "ReLU": (lambda r, dt: [_leaf(r, (4, 5), dt)], lambda a: a.relu()),
    "CrossEntropy": (lambda r, dt: [_leaf(r, (5, 4), dt)],
                     lambda x: tr.functional.cross_entropy(x, np.array([0, 3, 1, 3, 2]))),
    "MSELoss": (lambda r, dt: [_leaf(r, (3, 4), dt), _leaf(r, (3, 4), dt)],
                lambda a, b: ops.MSELoss.apply(a, b)),
    "SGNSLoss": (lambda r, dt: [_leaf(r, (4, 3), dt), _leaf(r, (4, 3, 3), dt)],
                 lambda c, t: sgns.sgns_loss(c, t)),
    "SGNSPairs": (lambda r, dt: [_leaf(r, (6, 3), dt), _leaf(r, (5, 3), dt)],
                  lambda a, b: sgns.sgns_pairs(a, b, np.array([0, 2, 2, 5]),
                                               np.array([[1, 0, 4], [2, 2, 3], [0, 1, 1], [4, 3, 0]]))),
}


def test_every_op_with_an_array_backward_has_a_case():
    missing = sorted(set(_ops_with_array_backward()) - set(CASES))
    assert not missing, f"add a bit-identity case for {missing}"


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", sorted(CASES))
def test_array_backward_equals_tensor_backward_bit_for_bit(name, dtype):
    make, fn = CASES[name]
    results = []
    for path in ("arrays", "tensors"):
        leaves = make(np.random.default_rng(7), dtype)
        out = fn(*leaves)
        assert out.grad_fn is not None and out.grad_fn.name == name
        upstream = np.linspace(-1.5, 2.0, out.size).reshape(out.shape).astype(out.dtype)
        # create_graph=True makes the engine run the Tensor-level backward of every op
        out.backward(upstream, create_graph=(path == "tensors"))
        results.append([t.grad.data.copy() for t in leaves])
    for a, b in zip(*results):
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_array_equal(a, b)


def test_no_op_branches_on_the_mode_or_touches_private_engine_names():
    """The engine alone decides which backward runs: no op reads grad mode, _saved or _wrap."""
    import tinygrad_rep.ops as package
    import pathlib
    for path in pathlib.Path(package.__file__).parent.glob("*.py"):
        text = path.read_text()
        for banned in ("plain_backward", "ctx._saved", "_Tensor._wrap", "ctx._out("):
            assert banned not in text, f"{path.name} uses {banned}"
        # sgns checks is_grad_enabled only to refuse an in-place training step that would need a graph
        if path.name != "sgns.py":
            assert "is_grad_enabled" not in text, path.name
