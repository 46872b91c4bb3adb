"""Test helpers shared by the test files: example caps and numpy references. (The one-line op
check is public: `tinygrad_rep.testing.check_op`.)"""
import numpy as np
from hypothesis import settings


def capped(n):
    """Hypothesis settings with at most n examples (never more than the active profile's)."""
    return settings(max_examples=max(1, min(settings.default.max_examples, n)))


def draw_arrays(data, shapes, **kwargs):
    """Draw one float array per shape from hypothesis' `data` (kwargs go to float_arrays)."""
    from tinygrad_rep.testing import strategies as trst
    return [data.draw(trst.float_arrays(s, **kwargs), label=f"array{i}") for i, s in enumerate(shapes)]


# numpy references shared by several test files
def np_softmax(x, axis=-1):
    m = np.max(x, axis=axis, keepdims=True)
    e = np.exp(x - m)
    return e / e.sum(axis=axis, keepdims=True)


def np_log_softmax(x, axis=-1):
    return x - np_logsumexp(x, axis=axis, keepdims=True)


def np_logsumexp(x, axis=None, keepdims=False):
    m = np.max(x, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0)
    out = m + np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True))
    return out if keepdims else np.squeeze(out, axis=axis) if axis is not None else out.reshape(())


def np_logsigmoid(x):
    return -np.logaddexp(0.0, -x)


def np_sigmoid(x):
    return np.exp(np_logsigmoid(x))
