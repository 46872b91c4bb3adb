"""Instruments that let you watch backprop: graph drawings, backward traces, anomaly detection,
an op-level profiler and a node-by-node gradient diff.

    tr.viz.to_dot(loss, trace=t)                        # viz.py: Graphviz DOT, values and gradients
    with tr.trace() as t: loss.backward()               # print(t): one row per backward step
    with tr.trace(keep_values=True) as t: ...           # t.details(): the arrays of every step
    with tr.detect_anomaly(): ...                       # raises at the first NaN/inf, names op and line
    with tr.profile() as p: ...                         # p.table(), p.export_chrome_trace(path)
    report = tr.compare_gradients(fn, inputs)           # report.broken: the ops with a wrong backward

Each is an observer of the engine (autograd._observers): it sees forward and backward steps
only inside its `with` block, so when none is active nothing is recorded and nothing is paid.
tour.py runs them all on small models for `tinygrad-rep demo` and `tinygrad-rep graph`.
"""
from .anomaly import AnomalyError, DetectAnomaly, detect_anomaly
from .gradients import GradientReport, NodeCheck, compare_gradients
from .profile import OpStats, Profile, profile
from .trace import Trace, TraceEntry, trace

__all__ = ["trace", "Trace", "TraceEntry", "profile", "Profile", "OpStats", "detect_anomaly",
           "DetectAnomaly", "AnomalyError", "compare_gradients", "GradientReport", "NodeCheck"]
