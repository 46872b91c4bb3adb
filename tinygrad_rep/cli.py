"""The command line: `tinygrad-rep <command>` and `python -m tinygrad_rep <command>`.

Each command lives in its own module under commands/ (`train`'s in commands/train/) and
provides `add_arguments(parser)` and `run(args) -> int`; this file only wires them up.
"""
import argparse
import importlib
import sys

from . import __version__

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
    parser = _Parser(prog="tinygrad-rep", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
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


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad option is reported in one line (with where to get help), exit status 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _one_line(text):
    return " ".join(str(text).split())


def _os_error(e, args, writing=True):
    """An OSError in one line naming the path: the file it names, else (for a failed write) the
    output folder. Errors raised with a message of their own keep it."""
    if e.strerror is None:
        return _one_line(e)
    if e.filename is not None:
        return f"{e.filename}: {e.strerror}"
    out = getattr(args, "out", None)
    return f"{e.strerror} (writing into {out})" if writing and out and str(out) not in e.strerror else e.strerror


def main(argv=None):
    """Run the command line; returns the exit status: 0 success, 1 a failed run (divergence, disk
    full, permission denied, out of memory), 2 bad usage (a bad option, a missing file), 130 Ctrl-C.
    Expected failures print one line on stderr, never a traceback."""
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(argv)
    args = parser.parse_args(argv)

    def fail(message, status):
        print(f"tinygrad-rep: error: {_one_line(message)}", file=sys.stderr, flush=True)
        return status

    try:
        return int(args._run(args) or 0)
    except KeyboardInterrupt as e:  # commands.train says where the checkpoint is
        print(f"tinygrad-rep: {_one_line(e) or 'interrupted'}", file=sys.stderr, flush=True)
        return 130
    except FloatingPointError as e:  # divergence (models/training.py), NaN in the data included
        return fail(e, 1)
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as e:  # a path the user gave
        return fail(_os_error(e, args, writing=False), 2)
    except ValueError as e:  # bad options or input, named by the message
        return fail(e, 2)
    except MemoryError as e:
        detail = _one_line(e)
        return fail(f"out of memory{': ' + detail if detail else ''}; try smaller settings", 1)
    except OSError as e:  # disk full, permission denied, read-only file system, ...
        return fail(_os_error(e, args), 1)


if __name__ == "__main__":
    sys.exit(main())
