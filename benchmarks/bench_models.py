"""Model benchmark: training steps and epochs of our models beside the same model in PyTorch CPU eager.

    python benchmarks/bench_models.py [--quick | --smoke] [--threads N] [--out DIR]
    (also `python benchmarks/run.py models`, `tinygrad-rep bench models`)

Same model, same optimizer, same batches, same thread count (ours: TINYGRAD_REP_NUM_THREADS /
set_num_threads; PyTorch: torch.set_num_threads), timed side by side in interleaved rounds after a
warm-up (see timing.py). PyTorch is optional: without it its records say "skipped".

Sections (BENCHMARKS, each `fn(plan, threads) -> list of records`; add a section by appending
a (name, fn) pair):
  autoencoder-step   64-32-8-32-64 autoencoder on 8x8 digits, batch 64, Adam: time per step
                     (forward, MSE loss, backward, optimizer step), with each of our backends.
  autoencoder-phases the same step cut into forward / forward+backward / full step, ours and
                     PyTorch: where the time goes.
  autoencoder-epoch  784-512-128-32 autoencoder (decoder mirrored, sigmoid output) on
                     Fashion-MNIST, batch 256, Adam: one epoch (shuffle, gather, 235 steps).
                     --quick / --smoke time an epoch over the first 6,000 / 512 images. Without
                     Fashion-MNIST installed, uniform random images of the same shape are used
                     (the record's note says so; timing does not depend on pixel values).
  nt-xent            NT-Xent forward + backward for 2 x 256 embeddings of dimension 128, each of
                     our backends beside PyTorch; then ours cut into normalize / logits / masked
                     cross-entropy, forward and forward + backward of each.
  simclr-step        one SimCLR step (784-1024-256 MLP encoder + 256-256-64 head, two views of 256
                     Fashion-MNIST images, NT-Xent, Adam), ours beside PyTorch.
"""
import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import load  # noqa: E402
import machine  # noqa: E402
import measurements  # noqa: E402
import peers  # noqa: E402
import timing  # noqa: E402

SUITE = "models"
OURS = ("pybind11", "cffi", "numpy-ref")
# detail_repeats: rounds of the diagnostic groups (autoencoder phases, NT-Xent pieces), fewer
# than the targets' rounds so that the full run stays within about 5 minutes on 2 busy cores.
PLANS = {
    "smoke": dict(epoch_rows=512, step_repeats=2, epoch_repeats=1, detail_repeats=2, target=0.01,
                  backends=("pybind11",)),
    "quick": dict(epoch_rows=6000, step_repeats=5, epoch_repeats=3, detail_repeats=5, target=0.1,
                  backends=OURS),
    "full": dict(epoch_rows=None, step_repeats=9, epoch_repeats=5, detail_repeats=5, target=0.5,
                 backends=OURS),
}
SMALL = dict(widths=(64, 32, 8), batch=64, lr=1e-3)
LARGE = dict(widths=(784, 512, 128, 32), batch=256, lr=1e-3)
SMALL_SIZE = "64-32-8-32-64 b64"
LARGE_SIZE = "784-512-128-32 b256"

# (label, what, size, threads, ours, baseline, lowest acceptable speed ratio = baseline time / ours)
TARGETS = [
    ("autoencoder 784-512-128-32 epoch (Fashion-MNIST, Adam, b256): at most 1.2x PyTorch's time",
     "autoencoder epoch", LARGE_SIZE, 1, "pybind11", "torch", round(1 / 1.2, 4)),
    ("autoencoder 64-32-8-32-64 step (digits, Adam, b64): no slower than PyTorch",
     "autoencoder step", SMALL_SIZE, 1, "pybind11", "torch", 1.0),
]


def plan_for(quick=False, smoke=False):
    return PLANS["smoke" if smoke else "quick" if quick else "full"]


# ---------------------------------------------------------------------------------------------
# the two implementations of one training step

def ours_autoencoder(widths, lr, seed=0):
    """(model, optimizer, step(xb) -> None, forward(xb), forward_backward(xb)) in tinygrad_rep."""
    import tinygrad_rep as tr
    from tinygrad_rep.models.autoencoder import Autoencoder
    model = Autoencoder(widths[0], hidden=widths[1:-1], bottleneck=widths[-1], seed=seed)
    opt = tr.optim.Adam(model.parameters(), lr=lr)

    def forward(xb):
        return tr.functional.mse_loss(model(tr.Tensor._wrap(xb)), tr.Tensor._wrap(xb))

    def forward_backward(xb):
        opt.zero_grad()
        forward(xb).backward()

    def step(xb):
        forward_backward(xb)
        opt.step()
    return model, opt, step, forward, forward_backward


def torch_autoencoder(widths, lr, seed=0):
    """The same autoencoder and step in PyTorch (None when torch is not installed)."""
    torch = peers.optional("torch")
    if torch is None:
        return None
    torch.manual_seed(seed)
    layers = []
    enc = list(widths)
    dec = enc[::-1]
    for ws, last_act in ((enc, False), (dec, True)):
        for i, (a, b) in enumerate(zip(ws[:-1], ws[1:])):
            layers.append(torch.nn.Linear(a, b))
            if i < len(ws) - 2:
                layers.append(torch.nn.ReLU())
        if last_act:
            layers.append(torch.nn.Sigmoid())
    model = torch.nn.Sequential(*layers)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    mse = torch.nn.functional.mse_loss

    def forward(xb):
        xt = torch.from_numpy(xb)
        return mse(model(xt), xt)

    def forward_backward(xb):
        opt.zero_grad()
        forward(xb).backward()

    def step(xb):
        forward_backward(xb)
        opt.step()
    return model, opt, step, forward, forward_backward


def _use_backend(name):
    from tinygrad_rep import backend
    return lambda: backend.set_backend(name.replace("numpy-ref", "numpy"))


def _available_backends(names):
    from tinygrad_rep import backend
    found = []
    for name in names:
        try:
            backend.set_backend(name.replace("numpy-ref", "numpy"))
            found.append(name)
        except ImportError as exc:
            print(f"  backend {name} is not available: {exc}")
    backend.set_backend(found[0] if found else "numpy")
    return found


def _digits_batch(batch):
    from tinygrad_rep import data
    x = data.load("digits")[0]
    return x[:batch].copy()


def _fashion(rows):
    """(x_train float32, note): Fashion-MNIST's training images, or random ones of that shape."""
    import numpy as np
    from tinygrad_rep import data
    try:
        x = data.load("fashion-mnist")[0]
        note = "Fashion-MNIST"
    except FileNotFoundError:
        x = np.random.default_rng(0).random((60000, 784), dtype=np.float32)
        note = "synthetic uniform images (Fashion-MNIST is not installed)"
    if rows is not None:
        x = x[:rows]
        note += f", first {rows} images"
    return np.ascontiguousarray(x), note


# ---------------------------------------------------------------------------------------------
# sections

def bench_autoencoder_step(plan, threads):
    """Seconds per training step of the small digits autoencoder, each of our backends beside torch."""
    xb = _digits_batch(SMALL["batch"])
    fns = {}
    for name in _available_backends(plan["backends"]):
        setup = _use_backend(name)
        setup()
        step = ours_autoencoder(SMALL["widths"], SMALL["lr"])[2]
        fns[name] = (setup, lambda step=step: step(xb))
    t = torch_autoencoder(SMALL["widths"], SMALL["lr"])
    fns["torch"] = None if t is None else (lambda: t[2](xb))
    _use_backend("pybind11" if "pybind11" in fns else "numpy-ref")()
    return measurements.side_by_side(SUITE, "autoencoder step", SMALL_SIZE, threads, fns, plan["step_repeats"],
                                     plan["target"], unit="us", scale=1e6, rows=SMALL["batch"],
                                     note="forward + MSE + backward + Adam step")


def bench_autoencoder_phases(plan, threads):
    """The small step cut into forward, forward+backward and the full step (ours vs torch)."""
    xb = _digits_batch(SMALL["batch"])
    names = _available_backends(("pybind11",)) or ["numpy-ref"]
    _use_backend(names[0])()
    ours = ours_autoencoder(SMALL["widths"], SMALL["lr"])
    theirs = torch_autoencoder(SMALL["widths"], SMALL["lr"])
    records = []
    for phase, i in (("forward + loss", 3), ("forward + backward", 4), ("full step", 2)):
        fns = {names[0]: (lambda f=ours[i]: f(xb)),
               "torch": None if theirs is None else (lambda f=theirs[i]: f(xb))}
        records += measurements.side_by_side(SUITE, f"autoencoder phase: {phase}", SMALL_SIZE, threads, fns,
                                             plan["detail_repeats"], plan["target"], unit="us", scale=1e6)
    return records


def bench_autoencoder_epoch(plan, threads):
    """Seconds per epoch of the 784-512-128-32 autoencoder on Fashion-MNIST (ours vs torch)."""
    import numpy as np
    x, note = _fashion(plan["epoch_rows"])
    batch = LARGE["batch"]
    names = _available_backends(("pybind11",)) or ["numpy-ref"]
    _use_backend(names[0])()

    def epoch_fn(step, seed=0):
        rng = np.random.default_rng(seed)

        def epoch():
            order = rng.permutation(len(x))
            for start in range(0, len(x), batch):
                step(x[order[start:start + batch]])
        return epoch

    ours = ours_autoencoder(LARGE["widths"], LARGE["lr"])
    theirs = torch_autoencoder(LARGE["widths"], LARGE["lr"])
    fns = {names[0]: epoch_fn(ours[2]), "torch": None if theirs is None else epoch_fn(theirs[2])}
    size = LARGE_SIZE if plan["epoch_rows"] is None else f"{LARGE_SIZE} n{plan['epoch_rows']}"
    return measurements.side_by_side(SUITE, "autoencoder epoch", size, threads, fns, plan["epoch_repeats"],
                                     0.0, unit="s", rows=len(x), note=note)


# ---------------------------------------------------------------------------------------------
# contrastive (SimCLR): the NT-Xent loss alone, its pieces, and one SimCLR training step

NTX = dict(n=256, d=128, temperature=0.5)
NTX_SIZE = "2x256x128"
SIMCLR = dict(widths=(784, 1024, 256), head=(256, 256, 64), batch=256, lr=1e-3, temperature=0.5)
SIMCLR_SIZE = "784-1024-256 + 256-256-64 b256x2"
TARGETS.append(("NT-Xent forward + backward, 2x256 embeddings of dim 128: no slower than PyTorch",
                "nt-xent forward+backward", NTX_SIZE, 1, "pybind11", "torch", 1.0))


def _ntx_inputs(seed=0):
    import numpy as np
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((NTX["n"], NTX["d"])).astype(np.float32) for _ in range(2)]


def ours_nt_xent(a, b):
    """fwd_bwd() -> None: NT-Xent forward and backward to both inputs, with tinygrad_rep."""
    import tinygrad_rep as tr
    ta, tb = tr.Tensor(a, requires_grad=True), tr.Tensor(b, requires_grad=True)

    def fwd_bwd():
        ta.grad = tb.grad = None
        tr.functional.nt_xent_loss(ta, tb, NTX["temperature"]).backward()
    return fwd_bwd


def torch_nt_xent(a, b):
    """The same loss in PyTorch eager (the usual SimCLR code: normalize, z z^T / T, -inf on the
    diagonal, cross-entropy against the other view), or None without torch."""
    torch = peers.optional("torch")
    if torch is None:
        return None
    ta, tb = torch.tensor(a, requires_grad=True), torch.tensor(b, requires_grad=True)
    n = NTX["n"]
    targets = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)])
    eye = torch.eye(2 * n, dtype=torch.bool)
    nnf = torch.nn.functional

    def fwd_bwd():
        ta.grad = tb.grad = None
        z = nnf.normalize(torch.cat([ta, tb]), dim=1)
        s = (z @ z.T / NTX["temperature"]).masked_fill(eye, float("-inf"))
        nnf.cross_entropy(s, targets).backward()
    return fwd_bwd


def bench_nt_xent(plan, threads):
    """NT-Xent forward + backward for 2 x 256 embeddings of dimension 128: our backends beside
    PyTorch, then our time cut into its pieces (normalize, logits, masked cross-entropy; forward
    and backward of each) to show where it goes."""
    a, b = _ntx_inputs()
    fns = {}
    for name in _available_backends(plan["backends"]):
        setup = _use_backend(name)
        setup()
        fns[name] = (setup, ours_nt_xent(a, b))
    fns["torch"] = torch_nt_xent(a, b)
    _use_backend("pybind11" if "pybind11" in fns else "numpy-ref")()
    records = measurements.side_by_side(SUITE, "nt-xent forward+backward", NTX_SIZE, threads, fns,
                                        plan["step_repeats"] * 3, plan["target"], unit="us", scale=1e6,
                                        samples=2 * NTX["n"], note="normalize, z z^T / T, self-pair masked, "
                                        "cross-entropy; forward and backward to both inputs")
    # the group above leaves the last backend it timed selected: the pieces run on pybind11
    _use_backend("pybind11" if "pybind11" in fns else "numpy-ref")()
    records += _nt_xent_pieces(a, b, plan, threads)
    return records


def _nt_xent_pieces(a, b, plan, threads):
    """Our NT-Xent cut at its three stages, each forward alone and forward + backward (the
    backward of a stage = the difference), all timed in one interleaved group."""
    import numpy as np
    import tinygrad_rep as tr
    from tinygrad_rep import functional as F
    n = NTX["n"]
    z_in = tr.Tensor(np.concatenate([a, b]), requires_grad=True)
    z_unit = tr.Tensor(F.normalize(tr.Tensor(np.concatenate([a, b])), axis=1).data, requires_grad=True)
    targets = np.concatenate([np.arange(n, 2 * n), np.arange(0, n)])
    with tr.no_grad():
        logits = tr.ops.SelfMaskedGram.apply(z_unit, tr.Tensor(np.float32(-np.inf)), scale=1 / NTX["temperature"]).data
    s_in = tr.Tensor(logits, requires_grad=True)

    def stage(fn, leaf, grad_out):
        def fwd():
            fn()

        def fwd_bwd():
            leaf.grad = None
            out = fn()
            out.backward(grad_out if out.size > 1 else None)
        return fwd, fwd_bwd
    pieces = {
        "normalize": stage(lambda: F.normalize(z_in, axis=1), z_in, np.ones((2 * n, NTX["d"]), np.float32)),
        "logits (masked z z^T / T)": stage(
            lambda: tr.ops.SelfMaskedGram.apply(z_unit, tr.Tensor(np.float32(-np.inf)), scale=1 / NTX["temperature"]),
            z_unit, np.where(np.isfinite(logits), 1.0, 0.0).astype(np.float32)),
        "masked cross-entropy": stage(lambda: F.cross_entropy(s_in, targets), s_in, None),
    }
    fns = {"whole loss: forward+backward": ours_nt_xent(a, b)}  # the reference, in the same group
    for piece, (fwd, fwd_bwd) in pieces.items():
        fns[f"{piece}: forward"] = fwd
        fns[f"{piece}: forward+backward"] = fwd_bwd
    with peers.threads(threads):
        stats = timing.measure_group(fns, repeats=plan["detail_repeats"], warmup=1, target=plan["target"])
    recs = [measurements.record(f"nt-xent piece: {name}", NTX_SIZE, "pybind11" if tr.get_backend() == "pybind11"
                                else tr.get_backend(), threads, st, unit="us", scale=1e6, suite=SUITE)
            for name, st in stats.items()]
    for r in recs:
        print(f"  {r['what']}: {r['median']:.1f} us", flush=True)
    return recs


def ours_simclr(seed=0):
    """step(v1, v2) -> None: one SimCLR step (encoder + head on both views, NT-Xent, backward,
    Adam) with tinygrad_rep's SimCLR model."""
    import tinygrad_rep as tr
    from tinygrad_rep.models.contrastive import SimCLR
    w, h = SIMCLR["widths"], SIMCLR["head"]
    model = SimCLR(w[0], dim=w[-1], hidden=w[1:-1], proj_hidden=h[1], proj_dim=h[2], seed=seed)
    opt = tr.optim.Adam(model.parameters(), lr=SIMCLR["lr"])

    def step(v1, v2):
        loss = model.loss(v1, v2, SIMCLR["temperature"])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return step


def torch_simclr(seed=0):
    """The same SimCLR step in PyTorch eager (None without torch)."""
    import numpy as np
    torch = peers.optional("torch")
    if torch is None:
        return None
    torch.manual_seed(seed)
    w, h = SIMCLR["widths"], SIMCLR["head"]
    layers = []
    for i, (a, b) in enumerate(zip(w[:-1], w[1:])):
        layers += [torch.nn.Linear(a, b), torch.nn.ReLU()]
    layers += [torch.nn.Linear(h[0], h[1]), torch.nn.ReLU(), torch.nn.Linear(h[1], h[2])]
    model = torch.nn.Sequential(*layers)
    opt = torch.optim.Adam(model.parameters(), lr=SIMCLR["lr"])
    n = SIMCLR["batch"]
    targets = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)])
    eye = torch.eye(2 * n, dtype=torch.bool)
    nnf = torch.nn.functional

    def step(v1, v2):
        z = nnf.normalize(model(torch.from_numpy(np.concatenate([v1, v2]))), dim=1)
        s = (z @ z.T / SIMCLR["temperature"]).masked_fill(eye, float("-inf"))
        loss = nnf.cross_entropy(s, targets)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return step


def bench_simclr_step(plan, threads):
    """One SimCLR training step on Fashion-MNIST-sized images (two augmented views of 256
    images, drawn once, outside the timing): ours beside PyTorch."""
    import numpy as np
    from tinygrad_rep.data import augment
    x, note = _fashion(SIMCLR["batch"])
    aug = augment.preset("fashion-mnist", (28, 28))
    rng = np.random.default_rng(0)
    v1, v2 = aug(x, rng), aug(x, rng)
    names = _available_backends(("pybind11",)) or ["numpy-ref"]
    _use_backend(names[0])()
    ours = ours_simclr()
    theirs = torch_simclr()
    fns = {names[0]: (lambda: ours(v1, v2)), "torch": None if theirs is None else (lambda: theirs(v1, v2))}
    return measurements.side_by_side(SUITE, "simclr step", SIMCLR_SIZE, threads, fns, plan["step_repeats"],
                                     plan["target"], unit="ms", scale=1e3, samples=2 * SIMCLR["batch"],
                                     note=f"{note}; forward both views, NT-Xent, backward, Adam")


BENCHMARKS = [
    ("autoencoder-step", bench_autoencoder_step),
    ("autoencoder-phases", bench_autoencoder_phases),
    ("autoencoder-epoch", bench_autoencoder_epoch),
    ("nt-xent", bench_nt_xent),
    ("simclr-step", bench_simclr_step),
]


def run(quick=False, smoke=False, threads=1, only=None):
    """Run every section (or those named in `only`); returns the records."""
    plan = plan_for(quick, smoke)
    records = []
    for name, fn in BENCHMARKS:
        if only and name not in only:
            continue
        print(f"{name}, {threads} thread(s)", flush=True)
        records += fn(plan, threads)
    return records


def table(records):
    """A plain-text table of records, with each time's ratio to pybind11's in the same row."""
    lines = [f"{'what':40} {'size':24} {'backend':10} {'thr':>3} {'median':>12} {'min':>12} {'max':>12}  ratio"]
    ours = {(r["what"], r["size"], r["threads"]): r for r in records if r["backend"] == "pybind11" and r["median"]}
    for r in records:
        if r["median"] is None:
            lines.append(f"{r['what'][:40]:40} {r['size'][:24]:24} {r['backend']:10} {r['threads']:>3} "
                         f"skipped: {r.get('skipped')}")
            continue
        o = ours.get((r["what"], r["size"], r["threads"]))
        ratio = f"{r['median'] / o['median']:.2f}x ours" if o is not None and o is not r else ""
        lines.append(f"{r['what'][:40]:40} {r['size'][:24]:24} {r['backend']:10} {r['threads']:>3} "
                     f"{r['median']:>10.4g}{r['unit']:>2} {r['min']:>10.4g}{r['unit']:>2} "
                     f"{r['max']:>10.4g}{r['unit']:>2}  {ratio}")
    return "\n".join(lines)


def main(argv=None):
    """Run this suite alone: print a table and write the records as JSON (--out, default
    benchmarks/results/models.json)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true")
    mode.add_argument("--smoke", action="store_true")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--only", nargs="*", choices=[n for n, _ in BENCHMARKS], help="sections to run")
    p.add_argument("--out", default=os.path.join(HERE, "results", "models.json"))
    args = p.parse_args(argv)
    peers.prepare_process_env(max(args.threads, peers.cpu_count()))  # before numpy loads
    import results
    peers.optional("torch")  # imported before timing, so threads() sets its count too
    with load.LoadMonitor() as run_load:
        with peers.threads(args.threads):
            records = run(args.quick, args.smoke, args.threads, args.only)
    print()
    print(table(records))
    print(load.describe_load(run_load.summary))
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    results.write_results(args.out, {"suite": SUITE, "machine": machine.machine_info(),
                                     "load": run_load.summary, "targets": TARGETS, "records": records})
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
