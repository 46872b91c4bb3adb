"""FLOP and byte counts of one op application, for the profiler.

Conventions (stated so the numbers can be checked by hand):
- matmul: 2*M*N*K per product (one multiply and one add per term), batched products times
  the batch size, from the output's shape and the inner dimension (transpose flags honoured);
- element-wise ops: a fixed number of FLOPs per output element (1 for +, -, *, /, exp, log,
  sqrt, tanh ...; a transcendental counts as one), see _PER_ELEMENT;
- softmax / log-softmax: 5 per element (max, subtract, exp, sum, divide or log), their
  backward kernels 4; fused cross-entropy 5 per logit; reductions 1 per input element
  (logsumexp 4, norm 2); fused mean squared error 3 per input element (subtract, square, add);
- data movement (reshape, transpose, indexing, concat, cast, embedding gather): 0 FLOPs;
- an op not listed (a user-defined Function): unknown (None).
Backward FLOPs are those of the ops a backward applies (counted as they run), plus, for a
backward that calls kernels directly, backward_direct_flops.
Bytes are the sizes of the inputs plus the output: the least memory traffic the op must do.
"""
import numpy as np

_PER_ELEMENT = {
    "Add": 1, "Sub": 1, "Mul": 1, "Div": 1, "Neg": 1, "Pow": 1, "Exp": 1, "Log": 1, "Sqrt": 1,
    "Tanh": 1, "Abs": 1, "Clamp": 2, "Sigmoid": 4, "LogSigmoid": 4, "ReLU": 1, "ReLUGrad": 1,
    "Softmax": 5, "SoftmaxGrad": 4, "LogSoftmax": 5, "LogSoftmaxGrad": 4, "CrossEntropyGrad": 2,
}
_PER_INPUT_ELEMENT = {"Sum": 1, "Max": 1, "LogSumExp": 4, "Norm": 2, "CrossEntropy": 5, "MSELoss": 3}
_MOVEMENT = {"Reshape", "Transpose", "Expand", "Getitem", "Concat", "Cast", "Gather"}


def op_flops(ctx, inputs, out):
    """FLOPs of one application of ctx's op on `inputs` (Tensors) giving `out`; None if unknown."""
    name = ctx.name
    if name == "MatMul":
        a = inputs[0]
        k = a.shape[-2] if getattr(ctx, "trans_a", False) else a.shape[-1]
        return 2 * int(out.size) * int(k)
    if name == "SelfMaskedGram":  # NT-Xent's z z^T (functional.nt_xent_loss), then a scale
        return (2 * int(inputs[0].shape[-1]) + 1) * int(out.size)
    if name in _PER_ELEMENT:
        return _PER_ELEMENT[name] * int(out.size)
    if name in _PER_INPUT_ELEMENT:
        return _PER_INPUT_ELEMENT[name] * int(inputs[0].size)
    if name in ("IndexAdd", "ScatterAdd"):
        return int(inputs[0].size)  # one add per scattered element
    if name in _MOVEMENT:
        return 0
    return None


def backward_direct_flops(ctx, inputs, out):
    """FLOPs a backward does by calling kernels itself rather than applying ops (those the
    profiler counts on its own): 0 for every op except the few listed here."""
    if ctx.name == "SelfMaskedGram":  # dz = (g' z + g'^T z) * scale: two matmuls and a scale
        return 4 * int(out.size) * int(inputs[0].shape[-1]) + int(inputs[0].size)
    return 0


def op_bytes(inputs, out):
    """Bytes read and written: every input once plus the output."""
    return int(sum(np.asarray(t._data).nbytes for t in inputs) + np.asarray(out._data).nbytes)
