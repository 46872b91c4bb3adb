"""Neural-network building blocks: Module (parameter registry, state dicts, hooks), layers,
activations, convolution and initialisers.

    import tinygrad_rep as tr
    model = tr.nn.Sequential(tr.nn.Linear(64, 32, rng=0), tr.nn.ReLU(), tr.nn.Linear(32, 10, rng=1))
    logits = model(tr.Tensor(x))
    for name, p in model.named_parameters(): ...       # "0.weight", "0.bias", "2.weight", ...

Where each thing lives:
    module.py   Module, Parameter, state dicts, forward hooks, functional_call
    layers.py   Linear, Embedding, Sequential, ModuleList, Dropout, Flatten and the activations
    conv.py     conv2d and Conv2d (channels-last images, im2col + the C matmul)
    init.py     kaiming_uniform, xavier_uniform

Everything here is built from Tensor operations and `functional`; no backend is touched.
"""
from .init import kaiming_uniform, xavier_uniform
from .module import Module, Parameter, StateDictError, functional_call
from .layers import (Linear, Embedding, Sequential, ModuleList, ReLU, Sigmoid, Tanh, Softmax,
                     LogSoftmax, Identity, Flatten, Dropout)
from .conv import Conv2d, conv2d

__all__ = ["Parameter", "Module", "Linear", "Embedding", "Sequential", "ModuleList",
           "ReLU", "Sigmoid", "Tanh", "Softmax", "LogSoftmax", "Identity", "Flatten", "Dropout",
           "Conv2d", "conv2d", "kaiming_uniform", "xavier_uniform", "functional_call",
           "StateDictError"]
