"""Op-overhead benchmark: what one op costs on tiny tensors, where Python, not arithmetic, is the work.

    python benchmarks/bench_ops.py [--quick | --smoke] [--out DIR]    (or `tinygrad-rep bench ops`)

For each op on 8x8 float32 tensors, side by side in one process, one thread for every library:
- forward under no_grad through the public API (Tensor methods and operators) with each of our
  three backends (pybind11, cffi, numpy-ref), beside the same computation in plain numpy and in
  PyTorch; grad mode is switched off once around the whole comparison, for us and PyTorch alike
  (peers.grad_off), so neither side enters a context manager inside its timed calls;
- forward + backward: op(x).sum().backward() with requires_grad inputs, beside PyTorch autograd;
- a tiny MLP (batch 32, 64 -> 64 -> ReLU -> 10, cross-entropy): forward only, and forward +
  backward, beside PyTorch and a hand-written numpy forward + backward.
Times are microseconds per call (median over interleaved rounds; see timing.py).
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import measurements  # noqa: E402
import peers  # noqa: E402

SUITE = "ops"
OURS = ("pybind11", "cffi", "numpy-ref")
PLANS = {
    "smoke": dict(repeats=2, target=0.002, ops=("add", "matmul", "relu", "softmax", "cross_entropy")),
    "quick": dict(repeats=3, target=0.005, ops=None),
    "full": dict(repeats=7, target=0.05, ops=None),
}
SHAPE = (8, 8)
MLP = (32, 64, 64, 10)  # batch, in, hidden, classes


def _numpy_softmax(np, x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def _numpy_log_softmax(np, x):
    z = x - x.max(-1, keepdims=True)
    return z - np.log(np.exp(z).sum(-1, keepdims=True))


def op_table(np, tr, F, torch):
    """{op: (ours(A, B, t) -> Tensor, numpy(a, b, t), torch(ta, tb, tt) or None)}; the Tensor
    functions also serve forward + backward (their result is summed, then backward runs)."""
    tF = torch.nn.functional if torch is not None else None
    return {
        "add": (lambda A, B, t: A + B, lambda a, b, t: a + b, lambda a, b, t: a + b),
        "mul": (lambda A, B, t: A * B, lambda a, b, t: a * b, lambda a, b, t: a * b),
        "matmul": (lambda A, B, t: A @ B, lambda a, b, t: a @ b, lambda a, b, t: a @ b),
        "exp": (lambda A, B, t: A.exp(), lambda a, b, t: np.exp(a), lambda a, b, t: a.exp()),
        "sum": (lambda A, B, t: A.sum(), lambda a, b, t: a.sum(), lambda a, b, t: a.sum()),
        "relu": (lambda A, B, t: A.relu(), lambda a, b, t: np.maximum(a, 0), lambda a, b, t: a.relu()),
        "softmax": (lambda A, B, t: A.softmax(-1), lambda a, b, t: _numpy_softmax(np, a),
                    lambda a, b, t: a.softmax(-1)),
        "log_softmax": (lambda A, B, t: A.log_softmax(-1), lambda a, b, t: _numpy_log_softmax(np, a),
                        lambda a, b, t: a.log_softmax(-1)),
        "cross_entropy": (lambda A, B, t: F.cross_entropy(A, t),
                          lambda a, b, t: -_numpy_log_softmax(np, a)[np.arange(len(t)), t].mean(),
                          (lambda a, b, t: tF.cross_entropy(a, t)) if tF else None),
    }


def bench_op_overhead(c, ops):
    np, tr, F, torch = c.np, c.tr, c.F, c.torch
    rng = np.random.default_rng(0)
    a = rng.standard_normal(SHAPE).astype(np.float32)
    b = rng.standard_normal(SHAPE).astype(np.float32)
    t = rng.integers(0, SHAPE[1], SHAPE[0])
    A, B = tr.Tensor(a), tr.Tensor(b)
    Ag, Bg = tr.Tensor(a, requires_grad=True), tr.Tensor(b, requires_grad=True)
    if torch is not None:
        ta, tb, tt = torch.from_numpy(a), torch.from_numpy(b), torch.from_numpy(t)
        tag, tbg = ta.clone().requires_grad_(True), tb.clone().requires_grad_(True)
    size = "x".join(map(str, SHAPE))
    table = op_table(np, tr, F, torch)
    for op in ops or table:
        ours, plain, tfn = table[op]
        fwd = {name: (c.use(name), lambda f=ours: f(A, B, t)) for name in c.ours}
        fwd["numpy"] = lambda f=plain: f(a, b, t)
        fwd["torch"] = (lambda f=tfn: f(ta, tb, tt)) if torch is not None and tfn is not None else None
        # grad mode off on both sides, entered once around the measurement: no side pays for
        # entering a context manager inside its timed calls
        with peers.grad_off(torch):
            c.measure(f"{op} fwd", size, fwd)

        def ours_step(f=ours):
            Ag.grad = Bg.grad = None
            f(Ag, Bg, t).sum().backward()

        both = {name: (c.use(name), ours_step) for name in c.ours}
        if torch is not None and tfn is not None:
            def torch_step(f=tfn):
                tag.grad = tbg.grad = None
                f(tag, tbg, tt).sum().backward()
            both["torch"] = torch_step
        else:
            both["torch"] = None
        c.measure(f"{op} fwd+bwd", size, both)


def bench_tiny_mlp(c):
    """Forward, and forward + backward, of a 64 -> 64 -> 10 MLP with cross-entropy, batch 32."""
    np, tr, F, torch = c.np, c.tr, c.F, c.torch
    batch, d_in, hidden, classes = MLP
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, d_in)).astype(np.float32)
    y = rng.integers(0, classes, batch)
    model = tr.nn.Sequential(tr.nn.Linear(d_in, hidden, rng=1), tr.nn.ReLU(), tr.nn.Linear(hidden, classes, rng=2))
    W1, b1 = model[0].weight.data, model[0].bias.data
    W2, b2 = model[2].weight.data, model[2].bias.data
    X = tr.Tensor(x)
    size = f"{batch}x{d_in}-{hidden}-{classes}"

    def ours_fwd():
        return F.cross_entropy(model(X), y)

    def ours_step():
        model.zero_grad()
        ours_fwd().backward()

    onehot = np.eye(classes, dtype=np.float32)[y]

    def numpy_fwd():
        h = x @ W1 + b1
        z = np.maximum(h, 0) @ W2 + b2
        return -(_numpy_log_softmax(np, z) * onehot).sum() / batch

    def numpy_step():
        h = x @ W1 + b1
        r = np.maximum(h, 0)
        z = r @ W2 + b2
        p = _numpy_softmax(np, z)
        dz = (p - onehot) / batch
        dW2, db2 = r.T @ dz, dz.sum(0)
        dh = (dz @ W2.T) * (h > 0)
        dW1, db1 = x.T @ dh, dh.sum(0)
        return dW1, db1, dW2, db2

    fwd = {name: (c.use(name), ours_fwd) for name in c.ours}
    step = {name: (c.use(name), ours_step) for name in c.ours}
    fwd["numpy"], step["numpy"] = numpy_fwd, numpy_step
    if torch is not None:
        net = torch.nn.Sequential(torch.nn.Linear(d_in, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, classes))
        with torch.no_grad():  # the same weights (torch stores them transposed)
            net[0].weight.copy_(torch.from_numpy(W1.T.copy()))
            net[0].bias.copy_(torch.from_numpy(b1))
            net[2].weight.copy_(torch.from_numpy(W2.T.copy()))
            net[2].bias.copy_(torch.from_numpy(b2))
        tx, ty = torch.from_numpy(x), torch.from_numpy(y)

        def torch_fwd():
            return torch.nn.functional.cross_entropy(net(tx), ty)

        def torch_step():
            net.zero_grad(set_to_none=True)
            torch.nn.functional.cross_entropy(net(tx), ty).backward()

        fwd["torch"], step["torch"] = torch_fwd, torch_step
    else:
        fwd["torch"] = step["torch"] = None
    with peers.grad_off(torch):
        c.measure("tiny MLP fwd", size, fwd)
    c.measure("tiny MLP fwd+bwd", size, step)


class Ctx:
    """numpy, our library, torch when installed, the plan, and the records gathered."""

    def __init__(self, plan):
        import numpy as np
        import tinygrad_rep as tr
        import tinygrad_rep.functional as F
        self.np, self.tr, self.F = np, tr, F
        self.torch = peers.optional("torch")
        self.plan = plan
        self.records = []
        self.ours = []
        for name in OURS:
            try:
                tr.set_backend(name.replace("numpy-ref", "numpy"))
                self.ours.append(name)
            except ImportError as exc:
                print(f"  backend {name} is not available: {exc}")
        tr.set_backend("pybind11" if "pybind11" in self.ours else "numpy")

    def use(self, name):
        """A setup function that makes `name` the backend of the public API."""
        target = name.replace("numpy-ref", "numpy")
        return lambda: self.tr.set_backend(target)

    def measure(self, what, size, fns):
        self.records += measurements.side_by_side(SUITE, what, size, 1, fns, self.plan["repeats"],
                                                  self.plan["target"], unit="us", scale=1e6, dtype="float32")
        self.tr.set_backend("pybind11" if "pybind11" in self.ours else "numpy")


def run(quick=False, smoke=False, threads=1):
    """Per-op overhead and the tiny MLP; returns the records. `threads` is ignored: tiny tensors
    run on one thread (our kernels keep small problems single-threaded anyway)."""
    plan = PLANS["smoke" if smoke else "quick" if quick else "full"]
    c = Ctx(plan)
    print(f"per-op cost on {SHAPE} float32 tensors, 1 thread")
    bench_op_overhead(c, plan["ops"])
    print(f"tiny MLP {MLP}")
    bench_tiny_mlp(c)
    return c.records


if __name__ == "__main__":
    import run as runner
    sys.exit(runner.main(["ops"] + sys.argv[1:]))
