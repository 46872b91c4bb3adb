"""A short tour of the instruments, for `tinygrad-rep demo`: the graph of a tiny MLP as DOT
(values and gradients of every node), its backward trace, and the profile of one autoencoder
training step. The built-in model of `tinygrad-rep graph` comes from here too.

    from tinygrad_rep.instruments.tour import instruments_tour
    print(instruments_tour("runs/demo/instruments"))   # prints the tour, returns a summary
"""
import os
import time

import numpy as np

from .. import data, nn, optim
from .. import functional as F
from . import viz
from .profile import profile
from .trace import trace
from ..tensor import Tensor


def tiny_mlp(seed=0):
    """A 64-16-10 classifier (Linear, ReLU, Linear) whose parameters are named "0.weight", ..."""
    return nn.Sequential(nn.Linear(64, 16, rng=seed), nn.ReLU(), nn.Linear(16, 10, rng=seed + 1))


def digits_batch(batch_size, seed=0):
    """batch_size digits images (float32, (B, 64), in [0, 1]) and their labels."""
    x, y, _, _ = data.load("digits")
    idx = np.random.default_rng(seed).choice(len(y), size=batch_size, replace=False)
    return x[idx], y[idx]


def mlp_loss_graph(batch_size=8, seed=0):
    """(model, loss) of the tiny MLP on a digits batch, cross-entropy; backward not yet run."""
    model = tiny_mlp(seed)
    xb, yb = digits_batch(batch_size, seed)
    x = Tensor(xb)
    x.name = "images"
    return model, F.cross_entropy(model(x), yb)


def autoencoder(seed=0, sizes=(64, 32, 8, 32, 64)):
    """An MLP autoencoder 64-32-8-32-64: ReLU between layers, sigmoid output (pixels in [0, 1])."""
    layers = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b, rng=seed + i))
        layers.append(nn.ReLU() if i < len(sizes) - 2 else nn.Sigmoid())
    return nn.Sequential(*layers)


def instruments_tour(out_dir, repeats=5):
    """Print the tour (DOT of a tiny MLP, its backward trace, the profile of one autoencoder
    step: the fastest of `repeats` profiled steps), write the files into out_dir, and return a
    short summary."""
    os.makedirs(out_dir, exist_ok=True)
    say = print

    # 1. the graph and the backward trace of a tiny MLP, values kept
    model, loss = mlp_loss_graph(batch_size=8)
    with trace(keep_values=True) as t:
        loss.backward()
    dot = viz.to_dot(loss, trace=t, title="tiny MLP: cross-entropy on 8 digits")
    files = viz.render(dot, os.path.join(out_dir, "mlp_graph"))
    t.to_json(os.path.join(out_dir, "mlp_backward_trace.json"))
    nodes = viz.graph_nodes(loss)
    n_nodes, n_edges = len(nodes), sum(len(n._ctx.inputs) for n in nodes if n._ctx is not None)
    say("== graph of a tiny MLP (64-16-10, cross-entropy), Graphviz DOT ==")
    say(dot.rstrip())
    drawn = ", ".join(files[k] for k in ("dot", "svg", "png") if k in files)
    say(f"written: {drawn}")
    if "missing" in files:
        say(files["missing"])
    say("\n== its backward trace (the order backprop visits the nodes) ==")
    say(t.table())

    # 2. one autoencoder training step under the profiler
    ae = autoencoder()
    opt, opt_name = optim.Adam(ae.parameters(), lr=1e-3), "Adam"
    xb, _ = digits_batch(64, seed=1)

    def step():
        opt.zero_grad()
        x = Tensor(xb)
        loss_ = F.mse_loss(ae(x), x)
        loss_.backward()
        opt.step()
        return loss_

    step()  # warm-up: first calls pay for imports and caches
    # one step is a few milliseconds, and a virtual machine's scheduler sometimes adds as much
    # again: profile a few single steps and show the fastest (each table is one whole step)
    best = None
    for _ in range(repeats):
        t0 = time.perf_counter()
        with profile() as p:
            ae_loss = step()
        ms = (time.perf_counter() - t0) * 1e3
        if best is None or p.wall_seconds < best[0].wall_seconds:
            best = (p, ms, ae_loss)
    p, step_ms, ae_loss = best
    chrome = p.export_chrome_trace(os.path.join(out_dir, "autoencoder_step.chrome_trace.json"))
    p.to_json(os.path.join(out_dir, "autoencoder_step.profile.json"))
    say(f"\n== profile of one autoencoder training step (64-32-8-32-64, batch 64, MSE, {opt_name}; "
        f"fastest of {repeats} profiled steps) ==")
    say(p.table())
    say(f"timeline: {chrome} (open in https://ui.perfetto.dev or chrome://tracing)")

    mm = p.stats.get("MatMul")
    mm_rate = "" if mm is None or mm.gflops_per_second is None else f", MatMul {mm.gflops_per_second:.2f} GFLOP/s"
    kernel_share = 100 * p.kernel_seconds / (p.wall_seconds or 1e-300)
    return (f"instruments: MLP graph {n_nodes} nodes / {n_edges} edges ({drawn}); backward trace "
            f"{len(t)} steps; autoencoder step {step_ms:.2f} ms on the {p.backend} backend "
            f"(loss {float(ae_loss.item()):.4f}), {kernel_share:.0f}% in kernels{mm_rate}")
