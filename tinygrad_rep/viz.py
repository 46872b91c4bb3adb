"""`tinygrad_rep.viz`, the public name of the graph drawing, which lives in instruments/viz.py.

This module only makes `import tinygrad_rep.viz` and `from tinygrad_rep.viz import to_dot` give
that module itself (not a copy), so both names stay valid.
"""
import sys

from .instruments import viz as _viz

sys.modules[__name__] = _viz
