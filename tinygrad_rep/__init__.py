"""tinygrad_rep: a small reverse-mode autodiff engine with C kernels, for studying backprop.

    import tinygrad_rep as tr
    x = tr.Tensor([[1.0, 2.0]], requires_grad=True)
    (x @ x.T).sum().backward()

Layers: Tensor (tensor.py) -> Function graph (autograd.py) -> ops/ -> backend/ (C kernels via
pybind11 or cffi, or the numpy reference) ; nn, optim, functional, models, data sit on Tensor.
"""
import os as _os

# The kernels' OpenMP threads (GNU libgomp) sleep as soon as they have nothing to do, instead of
# spinning for libgomp's default 300000 pauses (tens of ms on AMD Zen 4) after every parallel
# kernel, which took a core from the numpy (OpenBLAS) or PyTorch threads that run next in a
# training loop, and from our own threads on a busy machine. libgomp reads this once, when it is
# loaded, so it is set before the extensions load, and only when the user chose no wait policy.
if "OMP_WAIT_POLICY" not in _os.environ and "GOMP_SPINCOUNT" not in _os.environ:
    _os.environ["OMP_WAIT_POLICY"] = "PASSIVE"

from .autograd import Function, no_grad, enable_grad, set_grad_enabled, is_grad_enabled, grad  # noqa: E402
from .tensor import Tensor, tensor, concat, stack, matmul
from .gradcheck import gradcheck, gradgradcheck, GradcheckError
from .backend import set_backend, get_backend, backend_info
from . import functional
from . import testing
from . import data, models
from . import nn, optim
from .serialization import save, load
from . import viz
from .instruments import trace, profile, detect_anomaly, compare_gradients, AnomalyError

__version__ = "0.1.0"
