"""The command line: `tinygrad-rep <command>` and `python -m tinygrad_rep <command>`.

Each command lives in its own module under commands/ (`train`'s in commands/train/) and
provides `add_arguments(parser)` and `run(args) -> int`; this file only wires them up.
"""
import argparse
import importlib
import sys

# command name -> (module, one-line help); train's targets are listed separately
COMMANDS = {
    "demo": ("tinygrad_rep.commands.demo", "run the main job: gradient checks, models, instruments"),
    "gradcheck": ("tinygrad_rep.commands.gradcheck", "check every op's gradient numerically"),
    "graph": ("tinygrad_rep.commands.graph", "draw the loss graph of a small model (.dot/.svg/.png)"),
    "bench": ("tinygrad_rep.commands.bench", "run benchmarks and write results.json + REPORT.md"),
    "word2vec": ("tinygrad_rep.commands.word2vec", "query word vectors: neighbors, analogy"),
}
TRAIN = {
    "autoencoder": ("tinygrad_rep.commands.train.autoencoder", "autoencoder (plain, denoising, masked) on images"),
    "word2vec": ("tinygrad_rep.commands.train.word2vec", "skip-gram with negative sampling on text"),
    "contrastive": ("tinygrad_rep.commands.train.contrastive", "SimCLR with NT-Xent on images"),
}


def _load(module):
    return importlib.import_module(module)


def build_parser(argv):
    parser = argparse.ArgumentParser(prog="tinygrad-rep", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    # only the chosen command's module is imported, so start-up stays fast
    chosen = argv[0] if argv else None
    for name, (module, help_) in COMMANDS.items():
        p = sub.add_parser(name, help=help_)
        if name == chosen:
            _load(module).add_arguments(p)
            p.set_defaults(_run=_load(module).run)
    train = sub.add_parser("train", help="train a model and write metrics, plots and the model")
    tsub = train.add_subparsers(dest="target", metavar="MODEL")
    tsub.required = True
    target = argv[1] if chosen == "train" and len(argv) > 1 else None
    for name, (module, help_) in TRAIN.items():
        p = tsub.add_parser(name, help=help_)
        if name == target:
            _load(module).add_arguments(p)
            p.set_defaults(_run=_load(module).run)
    return parser


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    try:
        return int(args._run(args) or 0)
    except (FileNotFoundError, ValueError) as e:
        print(f"tinygrad-rep: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
