"""Op-level profiler: per op, forward and backward time, calls, FLOPs, bytes and GFLOP/s, and
how much of the time was spent inside the backend's kernels versus Python and numpy around them.

    with tr.profile() as p:
        loss = model(x).sum(); loss.backward(); opt.step()
    print(p.table())
    p.export_chrome_trace("trace.json")    # open in https://ui.perfetto.dev or chrome://tracing

How time is attributed:
- forward time of an op is the time of its forward function; backward time is the time of its
  backward step (the backward function, the ops it applies, broadcast reduction);
- ops applied inside a backward (a MatMul's backward applies two MatMuls) count towards that
  backward step — their FLOPs too, so MatMul's backward shows 2 * 2*M*N*K;
- kernel time comes from timing every call into the backend (backend.add_kernel_timer), and is
  charged to the op step that made the call; the rest of the op's time is "other" (numpy and
  Python inside the op);
- the time in the `with` block outside any op step is graph and Python overhead: the graph walk,
  Tensor bookkeeping, optimizer updates, and the profiler's own bookkeeping.
"""
import os
import time

from .. import backend
from ._common import Observer, dumps, table, write_text
from .flops import backward_direct_flops, op_bytes, op_flops


class OpStats:
    """Totals for one op. Times in seconds; flops None when unknown for some call."""

    __slots__ = ("op", "forward_calls", "forward_seconds", "forward_flops", "forward_bytes",
                 "forward_kernel_seconds", "backward_calls", "backward_seconds", "backward_flops",
                 "backward_bytes", "backward_kernel_seconds")

    def __init__(self, op):
        self.op = op
        self.forward_calls = self.backward_calls = 0
        self.forward_seconds = self.backward_seconds = 0.0
        self.forward_flops = self.backward_flops = 0
        self.forward_bytes = self.backward_bytes = 0
        self.forward_kernel_seconds = self.backward_kernel_seconds = 0.0

    @property
    def seconds(self):
        """Wall time of the op's forward and backward calls, in seconds."""
        return self.forward_seconds + self.backward_seconds

    @property
    def kernel_seconds(self):
        """Time spent inside backend kernels, in seconds."""
        return self.forward_kernel_seconds + self.backward_kernel_seconds

    @property
    def other_seconds(self):
        """Time inside the op outside backend kernels (numpy, Python)."""
        return max(self.seconds - self.kernel_seconds, 0.0)

    @property
    def flops(self):
        """Floating-point operations counted for the op (None when unknown)."""
        if self.forward_flops is None or self.backward_flops is None:
            return None
        return self.forward_flops + self.backward_flops

    @property
    def bytes(self):
        """Bytes the op's kernels read and wrote (estimated)."""
        return self.forward_bytes + self.backward_bytes

    @property
    def gflops_per_second(self):
        """flops / seconds, in GFLOP/s (None when unknown)."""
        f = self.flops
        return None if f is None or self.seconds <= 0 else f / self.seconds / 1e9

    def to_dict(self):
        """The numbers as a JSON-ready dict."""
        d = {k: getattr(self, k) for k in self.__slots__}
        d.update(seconds=self.seconds, kernel_seconds=self.kernel_seconds,
                 other_seconds=self.other_seconds, flops=self.flops,
                 gflops_per_second=self.gflops_per_second)
        return d


class _Frame:
    __slots__ = ("phase", "op", "key", "start", "kernel_seconds", "flops", "bytes")

    def __init__(self, phase, op, key, start):
        self.phase, self.op, self.key, self.start = phase, op, key, start
        self.kernel_seconds = 0.0
        self.flops, self.bytes = 0, 0


def _si(n):
    """1234567 -> '1.23M' (FLOP counts in tables)."""
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.3g}{unit}"
    return str(int(n))


def _add(total, part):
    return None if total is None or part is None else total + part


class Profile(Observer):
    """The observer behind tr.profile(); see the module docstring.

    Attributes after the block: stats ({op: OpStats}), kernels ({kernel name: [calls, seconds]}),
    wall_seconds (time in the block), backend (the backend's name), events (chrome trace events).
    """

    def __init__(self, record_events=True, max_events=1_000_000):
        self.stats = {}
        self.kernels = {}
        self.outside_kernel_seconds = 0.0
        self.wall_seconds = 0.0
        self.backend = None
        self.events = []
        self.dropped_events = 0
        self._record, self._max_events = record_events, max_events
        self._stack = []
        self._t0 = None

    # ---- activation ----
    def __enter__(self):
        self.backend = backend.get_backend()
        self._stack = []
        self._t0 = time.perf_counter()
        if self._record and not self.events:
            self.events.append({"name": "process_name", "ph": "M", "pid": os.getpid(), "tid": 0,
                                "args": {"name": f"tinygrad_rep ({self.backend} backend)"}})
        backend.add_kernel_timer(self._kernel)
        return super().__enter__()

    def __exit__(self, *exc):
        backend.remove_kernel_timer(self._kernel)
        self.wall_seconds += time.perf_counter() - self._t0
        self._stack = []
        return super().__exit__(*exc)

    # ---- recording ----
    def _row(self, op):
        row = self.stats.get(op)
        if row is None:
            row = self.stats[op] = OpStats(op)
        return row

    def _event(self, name, cat, start, seconds, args=None):
        if not self._record:
            return
        if len(self.events) >= self._max_events:
            self.dropped_events += 1
            return
        ev = {"name": name, "cat": cat, "ph": "X", "pid": os.getpid(), "tid": 1,
              "ts": round((start - self._t0) * 1e6, 3), "dur": round(seconds * 1e6, 3)}
        if args:
            ev["args"] = args
        self.events.append(ev)

    def _pop(self, key, phase):
        # pop up to the matching frame: a frame left by an op that raised is dropped on the way
        while self._stack:
            f = self._stack.pop()
            if f.key is key and f.phase == phase:
                return f
        return None

    def _kernel(self, name, start, seconds):
        k = self.kernels.get(name)
        if k is None:
            k = self.kernels[name] = [0, 0.0]
        k[0] += 1
        k[1] += seconds
        if self._stack:
            self._stack[0].kernel_seconds += seconds
        else:
            self.outside_kernel_seconds += seconds
        self._event(name, "kernel", start, seconds)

    def before_forward(self, ctx):
        self._stack.append(_Frame("forward", ctx.name, ctx, time.perf_counter()))

    def after_forward(self, ctx, out, seconds):
        end = time.perf_counter()
        frame = self._pop(ctx, "forward")
        if frame is None:
            return
        flops, nbytes = op_flops(ctx, ctx.inputs, out), op_bytes(ctx.inputs, out)
        if self._stack:  # applied inside another step (a backward): counted there
            outer = self._stack[0]
            outer.flops, outer.bytes = _add(outer.flops, flops), outer.bytes + nbytes
            self._event(ctx.name, f"op in {outer.phase}", frame.start, end - frame.start,
                        {"shape": list(out.shape), "flops": flops})
            return
        row = self._row(ctx.name)
        row.forward_calls += 1
        row.forward_seconds += seconds
        row.forward_flops = _add(row.forward_flops, flops)
        row.forward_bytes += nbytes
        row.forward_kernel_seconds += frame.kernel_seconds
        self._event(ctx.name, "forward", frame.start, end - frame.start,
                    {"shape": list(out.shape), "dtype": str(out.dtype), "flops": flops, "bytes": nbytes})

    def before_backward(self, node, grad_out):
        ctx = node._ctx
        frame = _Frame("backward", ctx.name, ctx, time.perf_counter())
        # an op we cannot count and that applies no counted op inside its backward: unknown
        if op_flops(ctx, ctx.inputs, node) is None:
            frame.flops = None
        self._stack.append(frame)

    def after_backward(self, node, grad_out, input_grads, seconds, accumulated):
        end = time.perf_counter()
        ctx = node._ctx
        frame = self._pop(ctx, "backward")
        if frame is None:
            return
        if frame.flops is not None:
            frame.flops += backward_direct_flops(ctx, ctx.inputs, node)
        nbytes = frame.bytes + int(grad_out._data.nbytes) + sum(int(g._data.nbytes) for g in input_grads if g is not None)
        row = self._row(ctx.name)
        row.backward_calls += 1
        row.backward_seconds += seconds
        row.backward_flops = _add(row.backward_flops, frame.flops)
        row.backward_bytes += nbytes
        row.backward_kernel_seconds += frame.kernel_seconds
        self._event(f"{ctx.name} backward", "backward", frame.start, end - frame.start,
                    {"shape": list(node.shape), "flops": frame.flops})

    # ---- results ----
    @property
    def op_seconds(self):
        """Total time spent in ops (forward and backward), in seconds."""
        return sum(r.seconds for r in self.stats.values())

    @property
    def kernel_seconds(self):
        """Time spent inside backend kernels, in seconds."""
        return sum(k[1] for k in self.kernels.values())

    @property
    def overhead_seconds(self):
        """Time in the block outside every op step (graph walk, bookkeeping, optimizer, profiler)."""
        return max(self.wall_seconds - self.op_seconds - self.outside_kernel_seconds, 0.0)

    def table(self, sort_by="seconds", limit=None):
        """Per-op table (sorted by total time), totals, the kernel / Python split, and kernels."""
        rows_ = sorted(self.stats.values(), key=lambda r: -(getattr(r, sort_by) or 0))
        if limit:
            rows_ = rows_[:limit]

        def ms(s):
            return f"{s * 1e3:.3f}"

        def gf(f):
            return "?" if f is None else _si(f)

        def rate(r):
            g = r.gflops_per_second
            return "?" if g is None else f"{g:.3g}"

        rows = [[r.op, r.forward_calls, r.backward_calls, ms(r.forward_seconds), ms(r.backward_seconds),
                 ms(r.kernel_seconds), ms(r.other_seconds), gf(r.flops), rate(r), f"{r.bytes / 1e6:.2f}"]
                for r in rows_]
        total = OpStats("TOTAL")
        for r in self.stats.values():
            for k in ("forward_calls", "backward_calls", "forward_seconds", "backward_seconds",
                      "forward_kernel_seconds", "backward_kernel_seconds", "forward_bytes", "backward_bytes"):
                setattr(total, k, getattr(total, k) + getattr(r, k))
            total.forward_flops = _add(total.forward_flops, r.forward_flops)
            total.backward_flops = _add(total.backward_flops, r.backward_flops)
        rows.append([total.op, total.forward_calls, total.backward_calls, ms(total.forward_seconds),
                     ms(total.backward_seconds), ms(total.kernel_seconds), ms(total.other_seconds),
                     gf(total.flops), rate(total), f"{total.bytes / 1e6:.2f}"])
        kind = "numpy reference kernels" if self.backend == "numpy" else "C kernels"
        out = [f"profile: {self.backend} backend, {self.wall_seconds * 1e3:.3f} ms in the block",
               table(["op", "fwd", "bwd", "fwd ms", "bwd ms", "kernel ms", "other ms", "FLOPs",
                      "GFLOP/s", "MB"], rows, "lrrrrrrrrr")]
        wall = self.wall_seconds or 1e-300
        kern = self.kernel_seconds
        out.append(f"time split: {ms(kern)} ms in {kind} ({100 * kern / wall:.1f}%), "
                   f"{ms(total.other_seconds)} ms in ops outside kernels (numpy, Python) "
                   f"({100 * total.other_seconds / wall:.1f}%), {ms(self.overhead_seconds)} ms of graph/Python "
                   f"overhead outside ops, profiler included ({100 * self.overhead_seconds / wall:.1f}%)")
        if self.kernels:
            krows = [[n, c, ms(s), f"{100 * s / (kern or 1e-300):.1f}%"]
                     for n, (c, s) in sorted(self.kernels.items(), key=lambda kv: -kv[1][1])]
            out.append(table(["kernel", "calls", "ms", "share"], krows, "lrrr"))
        out.append("(fwd/bwd = calls; FLOPs of ops applied inside a backward count for that backward; "
                   "? = unknown FLOPs for a user-defined op)")
        return "\n".join(out)

    def __str__(self):
        return self.table()

    def __repr__(self):
        return f"<Profile: {len(self.stats)} ops, {self.wall_seconds * 1e3:.3f} ms>"

    def to_dict(self):
        """The numbers as a JSON-ready dict."""
        return {"backend": self.backend, "wall_seconds": self.wall_seconds,
                "op_seconds": self.op_seconds, "kernel_seconds": self.kernel_seconds,
                "overhead_seconds": self.overhead_seconds,
                "ops": {k: v.to_dict() for k, v in self.stats.items()},
                "kernels": {k: {"calls": c, "seconds": s} for k, (c, s) in self.kernels.items()}}

    def to_json(self, path=None):
        """Totals as JSON text (also written to `path` if given)."""
        text = dumps(self.to_dict())
        if path is not None:
            write_text(path, text)
        return text

    def export_chrome_trace(self, path):
        """Write the recorded timeline as Chrome trace JSON ("traceEvents" of complete events,
        microseconds): open it in https://ui.perfetto.dev or chrome://tracing. Returns path."""
        doc = {"traceEvents": self.events, "displayTimeUnit": "ms",
               "otherData": {"backend": self.backend, "dropped_events": self.dropped_events}}
        write_text(path, dumps(doc, indent=None))
        return path


def profile(record_events=True, max_events=1_000_000):
    """`with tr.profile() as p:` time every op (forward and backward) and every kernel call.

    p.table() gives the per-op table; p.export_chrome_trace(path) the timeline. With
    record_events=False no timeline is kept (for long runs); at most max_events are kept.
    """
    return Profile(record_events, max_events)
