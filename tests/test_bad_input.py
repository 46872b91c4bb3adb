"""What users get on bad input: the exception type and its exact message, raised before any
kernel runs; and NaN propagating through ops and backward without a crash."""
import re
import warnings

import numpy as np
import pytest

import tinygrad_rep as tr
import tinygrad_rep.functional as F
from tinygrad_rep import Tensor


def raises(exc, message):
    """pytest.raises matching the whole message exactly."""
    return pytest.raises(exc, match="^" + re.escape(message) + "$")


def ones(*shape, grad=True):
    return Tensor(np.ones(shape), requires_grad=grad)


# ---------------------------------------------------------------- shapes

@pytest.mark.parametrize("op,name", [(lambda a, b: a + b, "add"), (lambda a, b: a - b, "sub"),
                                     (lambda a, b: a * b, "mul"), (lambda a, b: a / b, "div")])
def test_elementwise_shape_mismatch(op, name):
    with raises(ValueError, f"{name}: shapes (2, 3) and (4,) do not broadcast"):
        op(ones(2, 3), ones(4))
    with raises(ValueError, f"{name}: shapes (2, 3) and (3, 1, 2) do not broadcast"):
        op(ones(2, 3), np.ones((3, 1, 2)))
    with raises(ValueError, f"{name}: shapes (5,) and (2, 3) do not broadcast"):
        op(np.ones(5), ones(2, 3))


def test_matmul_shape_mismatch():
    with raises(ValueError, "matmul: shapes (2, 3) and (4, 5) are not aligned (3 != 4)"):
        ones(2, 3) @ ones(4, 5)
    with raises(ValueError, "matmul: shapes (3,) and (2,) are not aligned (3 != 2)"):
        ones(3) @ ones(2)
    with raises(ValueError, "matmul: batch dimensions of (2, 2, 3) and (3, 3, 2) do not broadcast"):
        ones(2, 2, 3) @ ones(3, 3, 2)
    with raises(ValueError, "matmul: operands must have at least 1 dimension (use * for scalars)"):
        Tensor(2.0) @ ones(2)
    with raises(TypeError, "matmul: needs a floating-point tensor, got dtype int64"):
        Tensor(np.ones((2, 2), dtype=np.int64)) @ ones(2, 2)


def test_reshape_incompatible():
    with raises(ValueError, "cannot reshape a tensor of shape (2, 3) into (4,)"):
        ones(2, 3).reshape(4)
    with raises(ValueError, "cannot reshape a tensor of shape (2, 3) into (4, -1)"):
        ones(2, 3).reshape(4, -1)


def test_transpose_expand_concat_stack():
    with raises(ValueError, "transpose: (0, 0) is not a permutation of the 2 axes"):
        ones(2, 3).transpose(0, 0)
    with raises(ValueError, "cannot broadcast shape (2, 3) to (3, 3)"):
        ones(2, 3).expand(3, 3)
    with raises(ValueError, "concat: needs at least one tensor"):
        tr.concat([])
    with raises(ValueError, "concat: tensor 1 has shape (2, 3), which does not match (2, 2) outside axis 0"):
        tr.concat([ones(2, 2), ones(2, 3)])
    with raises(ValueError, "concat: zero-dimensional tensors cannot be concatenated"):
        tr.concat([Tensor(1.0), Tensor(2.0)])
    with raises(ValueError, "stack: tensor 1 has shape (3,), expected (2,)"):
        tr.stack([ones(2), ones(3)])


# ---------------------------------------------------------------- axes

def test_bad_axis():
    x = ones(2, 3)
    with raises(ValueError, "axis 2 is out of range for a tensor with 2 dimensions"):
        x.sum(axis=2)
    with raises(ValueError, "axis -3 is out of range for a tensor with 2 dimensions"):
        x.mean(axis=-3)
    with raises(ValueError, "axis 5 is out of range for a tensor with 2 dimensions"):
        x.max(axis=(0, 5))
    with raises(ValueError, "axis 2 is out of range for a tensor with 2 dimensions"):
        x.logsumexp(axis=2)
    with raises(ValueError, "axis 2 is out of range for a tensor with 2 dimensions"):
        x.softmax(axis=2)
    with raises(ValueError, "axis -3 is out of range for a tensor with 2 dimensions"):
        F.log_softmax(x, axis=-3)
    with raises(ValueError, "repeated axis in (0, -2)"):
        x.sum(axis=(0, -2))
    with raises(TypeError, "axis must be an int, a tuple of ints or None, got 1.0"):
        x.sum(axis=1.0)
    with raises(TypeError, "axis must be an int or a tuple of ints, got (0, 1.5)"):
        x.sum(axis=(0, 1.5))
    with raises(TypeError, "softmax: axis must be an int, got None"):
        x.softmax(axis=None)
    with raises(ValueError, "axis 1 is out of range for a tensor with 0 dimensions"):
        Tensor(1.0).sum(axis=1)
    with raises(ValueError, "softmax: needs at least 1 dimension, got a 0-d tensor"):
        Tensor(1.0).softmax()


def test_max_over_empty_axis():
    with raises(ValueError, "max over an empty axis: tensor of shape (2, 0), axes (1,)"):
        ones(2, 0).max(axis=1)


# ---------------------------------------------------------------- dtypes, construction

def test_construction_errors():
    with raises(TypeError, "only floating-point tensors can require gradients, got dtype int64"):
        Tensor(np.arange(3), requires_grad=True)
    with raises(TypeError, "only floating-point tensors can require gradients, got dtype bool"):
        Tensor(np.array([True]), requires_grad=True)
    with raises(TypeError, "Tensor: unsupported dtype complex128 (use float32, float64, int or bool)"):
        Tensor(np.ones(2, dtype=complex))
    with pytest.raises(TypeError, match="^Tensor: cannot make a tensor from str: "):
        Tensor("abc")
    with pytest.raises(TypeError, match="^Tensor: cannot make a tensor from list: "):
        Tensor([[1.0, 2.0], [3.0]])
    with raises(TypeError, "unsupported operand type for a Tensor op: str"):
        ones(2) + "a"
    with raises(TypeError, "x ** p takes a scalar exponent p; for a tensor exponent use (p * x.log()).exp()"):
        ones(2) ** ones(2)


def test_float_index_arrays_refused():
    with raises(IndexError, "index arrays must be integers or booleans, got dtype float64"):
        ones(3)[np.array([0.0, 1.0])]
    with raises(IndexError, "index arrays must be integers or booleans, got dtype float32"):
        ones(3)[Tensor([0.0])]


def test_relu_of_integers_refused():
    with raises(TypeError, "relu: needs a floating-point tensor, got dtype int64"):
        Tensor(np.arange(3)).relu()


# ---------------------------------------------------------------- losses

def test_cross_entropy_bad_targets():
    logits = ones(2, 3)
    with raises(IndexError, "cross_entropy: targets contains 3, out of range [0, 3)"):
        F.cross_entropy(logits, np.array([0, 3]))
    with raises(IndexError, "cross_entropy: targets contains -1, out of range [0, 3)"):
        F.cross_entropy(logits, np.array([-1, 0]))
    with raises(TypeError, "cross_entropy: targets must be integers, got dtype float64"):
        F.cross_entropy(logits, np.array([0.0, 1.0]))
    with raises(TypeError, "cross_entropy: targets must be integers, got dtype float32"):
        F.cross_entropy(logits, Tensor([0.0, 1.0]))
    with raises(ValueError, "cross_entropy: targets must have shape (2,), got (3,)"):
        F.cross_entropy(logits, np.array([0, 1, 2]))
    with raises(ValueError, "cross_entropy: logits must be 2-D (batch, classes), got shape (3,)"):
        F.cross_entropy(ones(3), np.array([0]))


def test_embedding_bad_indices():
    w = ones(4, 3)
    with raises(IndexError, "embedding: indices contains 4, out of range [0, 4)"):
        F.embedding(w, np.array([0, 4]))
    with raises(IndexError, "embedding: indices contains -1, out of range [0, 4)"):
        F.embedding(w, np.array([[-1, 2]]))
    with raises(TypeError, "embedding: indices must be integers, got dtype float64"):
        F.embedding(w, np.array([1.0]))
    with raises(ValueError, "embedding: weight must be 2-D (num_embeddings, dim), got shape (4,)"):
        F.embedding(ones(4), np.array([0]))


def test_loss_shape_mismatches():
    with raises(ValueError, "mse_loss: input has shape (2, 3) but target has shape (3, 2)"):
        F.mse_loss(ones(2, 3), ones(3, 2))
    with raises(ValueError, "binary_cross_entropy_with_logits: logits has shape (2,) but target has shape (3,)"):
        F.binary_cross_entropy_with_logits(ones(2), ones(3))
    with raises(ValueError, "nt_xent_loss: z1 has shape (2, 3) but z2 has shape (3, 3)"):
        F.nt_xent_loss(ones(2, 3), ones(3, 3))
    with raises(ValueError, "nt_xent_loss: z1 must be 2-D (batch, dim), got shape (3,)"):
        F.nt_xent_loss(ones(3), ones(3))
    with raises(ValueError, "nt_xent_loss: temperature must be positive, got 0.0"):
        F.nt_xent_loss(ones(2, 3), ones(2, 3), temperature=0.0)
    with raises(ValueError, "info_nce_loss: negatives have dim 4 but query has dim 3"):
        F.info_nce_loss(ones(2, 3), ones(2, 3), ones(5, 4))
    with raises(ValueError, "info_nce_loss: temperature must be positive, got -1"):
        F.info_nce_loss(ones(2, 3), ones(2, 3), temperature=-1)
    with raises(ValueError, "triplet_margin_loss: anchor has shape (2, 3) but negative has shape (2, 4)"):
        F.triplet_margin_loss(ones(2, 3), ones(2, 3), ones(2, 4))
    with raises(ValueError, "skipgram_negative_sampling_loss: negatives must have shape (2, K, 3), got (2, 3)"):
        F.skipgram_negative_sampling_loss(ones(2, 3), ones(2, 3), ones(2, 3))
    with raises(TypeError, "mse_loss: expected a Tensor or an array, got str"):
        F.mse_loss("a", ones(2))


# ---------------------------------------------------------------- NaN propagates, nothing crashes

def test_nan_propagates_through_forward_and_backward():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        x = Tensor(np.array([[1.0, np.nan, 2.0], [0.5, -1.0, 3.0]]), requires_grad=True)
        w = Tensor(np.ones((3, 2)), requires_grad=True)
        h = (x * 2 + 1).exp().log().relu()
        assert np.isnan(h.data[0, 1]) and np.isfinite(np.delete(h.data.ravel(), 1)).all()
        y = h @ w
        assert np.isnan(y.data[0]).all() and np.isfinite(y.data[1]).all()
        s = y.softmax(-1)
        assert np.isnan(s.data[0]).all() and np.isfinite(s.data[1]).all()
        loss = F.cross_entropy(y, np.array([0, 1]))
        assert np.isnan(loss.item())
        loss.backward()
        assert x.grad.shape == x.shape and w.grad.shape == w.shape
        assert np.isnan(x.grad.data[0]).any() and np.isfinite(x.grad.data[1]).all()

        z = Tensor(np.array([np.nan, 1.0, -2.0]), requires_grad=True)
        for out in (z.sum(), z.max(), z.logsumexp(), z.norm(), F.normalize(z).sum(), z.sigmoid().sum(),
                    z.tanh().sum(), z.sqrt().sum(), (z ** 2).sum(), z.mean()):
            assert np.isnan(out.item())
            out.backward()
        assert z.grad.shape == (3,)
