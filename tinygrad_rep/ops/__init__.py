"""The library's ops, one small Function class each, forward and backward side by side.

elementwise.py  arithmetic and unary math (numpy on the forward side)
reduce.py       sum, max, logsumexp, norm
movement.py     reshape, transpose, expand, indexing, concat, cast
matmul.py       matrix products (C kernel through the backend), NT-Xent's masked Gram matrix
nn.py           relu, softmax, log-softmax, cross-entropy, embedding (C kernels), fused MSE, and their
                gradient Functions, which are ops too so that higher-order gradients work
sgns.py         word2vec's skip-gram negative-sampling loss and per-pair SGD step (fused C
                kernels); imported by models/word2vec, not here (only word2vec needs them)
"""
from .elementwise import (Add, Sub, Mul, Div, Neg, Pow, Exp, Log, Sqrt, Sigmoid, LogSigmoid,
                          Tanh, Abs, Clamp)
from .reduce import Sum, Max, LogSumExp, Norm
from .movement import Reshape, Transpose, Expand, Getitem, IndexAdd, Concat, Cast
from .matmul import MatMul, SelfMaskedGram
from .nn import (ReLU, ReLUGrad, Softmax, SoftmaxGrad, LogSoftmax, LogSoftmaxGrad,
                 CrossEntropy, CrossEntropyGrad, Gather, ScatterAdd, MSELoss)
