"""Weight initialisers: the random starting values of layers (He and Glorot uniform).

    w = tr.nn.kaiming_uniform((64, 32), fan_in=64, rng=0)       # float32 array

Each returns a numpy array (wrap it in a Parameter); `rng` is a numpy Generator, an int seed
or None (fresh entropy), so a layer built with the same seed gets the same weights.
"""
import math

import numpy as np

__all__ = ["kaiming_uniform", "xavier_uniform"]


def _rng(rng, seed=None):
    """A numpy Generator from rng (Generator, int seed or None) or seed; not both."""
    if rng is not None and seed is not None:
        raise ValueError("give either rng or seed, not both")
    if seed is not None:
        rng = seed
    if isinstance(rng, np.random.Generator):
        return rng
    return np.random.default_rng(rng)


def kaiming_uniform(shape, fan_in, rng=None, dtype=np.float32):
    """U(-b, b) with b = sqrt(6 / fan_in): He init for ReLU layers (gain sqrt(2)), Var = 2 / fan_in."""
    if fan_in <= 0:
        raise ValueError(f"kaiming_uniform: fan_in must be positive, got {fan_in}")
    bound = math.sqrt(6.0 / fan_in)
    return _rng(rng).uniform(-bound, bound, size=shape).astype(dtype)


def xavier_uniform(shape, fan_in, fan_out, rng=None, dtype=np.float32):
    """U(-b, b) with b = sqrt(6 / (fan_in + fan_out)): Glorot init, Var = 2 / (fan_in + fan_out)."""
    if fan_in + fan_out <= 0:
        raise ValueError(f"xavier_uniform: fan_in + fan_out must be positive, got {fan_in + fan_out}")
    bound = math.sqrt(6.0 / (fan_in + fan_out))
    return _rng(rng).uniform(-bound, bound, size=shape).astype(dtype)
