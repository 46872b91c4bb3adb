"""`tinygrad-rep graph`: draw the loss graph of a small model (.dot, and .svg/.png with Graphviz).

Builds a 64-16-10 MLP on a batch of digits, runs backward under tr.trace() so every node of the
drawing carries its gradient norm, and writes into --out:
  graph.dot (always), graph.svg and graph.png (when Graphviz's `dot` is installed),
  backward_trace.txt and backward_trace.json (the order backprop visited the nodes).
"""
import os

from .. import viz
from . import options
from ..instruments import trace
from ..instruments._common import write_text


def add_arguments(parser):
    parser.add_argument("--out", default=os.path.join("runs", "graph"),
                        help="output folder (default: runs/graph)")
    parser.add_argument("--batch-size", type=int, default=8, help="digits in the batch (default: 8)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the weights and the batch")
    parser.add_argument("--formats", default="svg,png",
                        help="formats rendered by Graphviz besides .dot (default: svg,png)")


def run(args):
    from ..tour import mlp_loss_graph
    options.positive("batch-size", args.batch_size, integer=True)
    options.non_negative("seed", args.seed, integer=True)
    options.output_folder(args.out)
    model, loss = mlp_loss_graph(batch_size=args.batch_size, seed=args.seed)
    with trace() as t:
        loss.backward()
    dot = viz.to_dot(loss, trace=t, title=f"64-16-10 MLP, cross-entropy on {args.batch_size} digits "
                                          f"(loss {loss.item():.4f})")
    formats = tuple(f.strip() for f in args.formats.split(",") if f.strip())
    files = viz.render(dot, os.path.join(args.out, "graph"), formats)
    write_text(os.path.join(args.out, "backward_trace.txt"), t.table() + "\n")
    t.to_json(os.path.join(args.out, "backward_trace.json"))
    print(t.table())
    print()
    for kind in ("dot",) + formats:
        if kind in files:
            print(f"wrote {files[kind]}")
    print(f"wrote {os.path.join(args.out, 'backward_trace.txt')} and backward_trace.json")
    if "missing" in files:
        print(files["missing"])
    return 0
