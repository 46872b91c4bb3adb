"""Anomaly detection: stop at the first NaN or infinity an op produces, forward or backward,
and say which op it was and which line of user code created it.

    with tr.detect_anomaly():
        loss = model(x).log().mean()   # AnomalyError: Log produced -inf in forward ... at train.py:12
        loss.backward()

Off by default and free when off: the engine only calls observers while one is active.
"Produced" means new: an op whose inputs already hold an infinity may pass it on (a -inf mask
added to logits is legitimate), but NaN appearing from finite inputs, or an infinity from
finite inputs, raises. A leaf tensor holding NaN raises at the first op that reads it.
An op whose forward makes infinities on purpose (a -inf self-mask written inside one Function)
says so with the class attribute `anomaly_allows_inf = True`; its output is then checked for
NaN only.
"""
import numpy as np

from ._common import Observer, short_path, user_site


class AnomalyError(RuntimeError):
    """A NaN or infinity appeared. Attributes: op (the op's name), phase ("forward" or
    "backward"), site (where user code created the node: .filename, .lineno, .code), and
    for backward anomalies node_op (the op whose backward was running)."""

    def __init__(self, message, op=None, phase=None, site=None, node_op=None):
        super().__init__(message)
        self.op, self.phase, self.site, self.node_op = op, phase, site, node_op


def _kind(a):
    """'NaN', 'inf', '-inf' or None for an array (None for non-float or all-finite)."""
    if a is None:
        return None
    a = np.asarray(a)
    if a.dtype.kind not in "fc" or a.size == 0:
        return None
    if np.isfinite(a).all():
        return None
    if np.isnan(a).any():
        return "NaN"
    return "inf" if np.isposinf(a).any() else "-inf"


def _has(a, what):
    a = np.asarray(a)
    if a.dtype.kind not in "fc":
        return False
    return bool(np.isnan(a).any()) if what == "nan" else bool(np.isinf(a).any())


def _where(site):
    if site is None:
        return "(creation site unknown)"
    text = f"{short_path(site.filename)}:{site.lineno} in {site.function}"
    return text + (f"\n    {site.code}" if site.code else "")


class DetectAnomaly(Observer):
    """The observer behind tr.detect_anomaly(); see the module docstring."""

    def __init__(self, check_forward=True, check_backward=True):
        self.check_forward, self.check_backward = check_forward, check_backward
        self._backward_node = None  # the node whose backward is running

    def __exit__(self, *exc):
        self._backward_node = None
        return super().__exit__(*exc)

    def after_forward(self, ctx, out, seconds):
        if self._backward_node is not None:
            # an op applied inside a backward: it belongs to that node's backward step
            if self.check_backward:
                self._check_inside_backward(ctx, out)
            return
        ctx._site = site = user_site(depth=2)
        if not self.check_forward:
            return
        for i, t in enumerate(ctx.inputs):
            if t._ctx is None and _has(t._data, "nan"):
                name = f" '{t.name}'" if t.name else ""
                raise AnomalyError(
                    f"input {i} of {ctx.name} (a leaf tensor{name} of shape {t.shape}) contains NaN; "
                    f"the op was called at {_where(site)}", op=ctx.name, phase="forward", site=site)
        kind = _kind(out._data)
        if kind is None or not self._new(kind, [t._data for t in ctx.inputs]):
            return
        if kind != "NaN" and getattr(type(ctx), "anomaly_allows_inf", False):
            return
        raise AnomalyError(f"{ctx.name} produced {kind} in forward (output shape {out.shape}); "
                           f"created at {_where(site)}", op=ctx.name, phase="forward", site=site)

    @staticmethod
    def _new(kind, inputs):
        """Is this NaN/inf new, i.e. not already present in the inputs?"""
        if kind == "NaN":
            return not any(_has(a, "nan") for a in inputs)
        return not any(_has(a, "nan") or _has(a, "inf") for a in inputs)

    def before_backward(self, node, grad_out):
        self._backward_node = node

    def _check_inside_backward(self, ctx, out):
        kind = _kind(out._data)
        if kind is None or not self._new(kind, [t._data for t in ctx.inputs]):
            return
        node = self._backward_node
        self._raise_backward(node, kind, f"{ctx.name}, applied inside its backward, produced {kind}")

    def after_backward(self, node, grad_out, input_grads, seconds, accumulated):
        self._backward_node = None
        if not self.check_backward:
            return
        upstream_bad = _kind(grad_out._data) is not None
        for i, g in enumerate(input_grads):
            kind = None if g is None else _kind(g._data)
            if kind is not None and not upstream_bad:
                self._raise_backward(node, kind, f"the gradient for input {i} contains {kind}")

    def _raise_backward(self, node, kind, what):
        self._backward_node = None
        ctx = node._ctx
        site = getattr(ctx, "_site", None)
        where = _where(site) if site is not None else "(created before detect_anomaly was entered)"
        raise AnomalyError(f"{ctx.name} backward: {what} (node output shape {node.shape}); "
                           f"the {ctx.name} node was created at {where}",
                           op=ctx.name, phase="backward", site=site, node_op=ctx.name)


def detect_anomaly(check_forward=True, check_backward=True):
    """`with tr.detect_anomaly():` raise AnomalyError at the first NaN/inf an op produces.

    The error names the op, whether it was forward or backward, and the file and line of user
    code that created the node. Forward checks need the graph to be built inside the block
    (that is when creation sites are recorded); backward checks work for any graph.
    """
    return DetectAnomaly(check_forward, check_backward)
