"""What the three `train` commands share: --resume, the epoch checkpoint in the output folder,
and turning Ctrl-C into one line that says where the checkpoint is.
"""
import contextlib
import os

from ...models.training import CHECKPOINT_FILE, Checkpoint
from ..options import UsageError


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during a run; the message says where the last checkpoint is (exit status 130)."""


def add_run_arguments(parser):
    """--resume (and nothing else yet) for every train command."""
    parser.add_argument("--resume", action="store_true",
                        help=f"continue an interrupted run from {CHECKPOINT_FILE} in --out (same options)")


def checkpoint_for(args, out, settings):
    """The run's Checkpoint in `out`, loaded when --resume is given (UsageError if there is none,
    or if it was made with other settings)."""
    ckpt = Checkpoint(os.path.join(out, CHECKPOINT_FILE), settings)
    if args.resume:
        if not ckpt.exists():
            raise UsageError(f"--resume: no checkpoint to resume from in {out} (no {CHECKPOINT_FILE})")
        try:
            ckpt.load()
        except ValueError as e:
            raise UsageError(f"--resume: {e}") from None
        print(f"resuming from {ckpt.path} (after epoch {ckpt.epoch})", flush=True)
    return ckpt


@contextlib.contextmanager
def interruptible(ckpt, epochs):
    """Turn Ctrl-C inside the block into Interrupted naming the last checkpoint. The checkpoint is
    removed only when the run is complete, so Ctrl-C during the evaluation can be resumed too
    (training is then skipped: the checkpoint is after the last epoch)."""
    try:
        yield
    except KeyboardInterrupt:
        if ckpt.epoch is not None and ckpt.exists():
            raise Interrupted(f"interrupted; the last checkpoint is {ckpt.path} (after epoch {ckpt.epoch} "
                              f"of {epochs}); run the same command with --resume to continue") from None
        raise Interrupted("interrupted before the first epoch ended; no checkpoint was written") from None


# ------------------------------------------------------------------------ results tables

def budget(key, row, n_train):
    """A label budget written one way everywhere: "all (1437 labels)", "10% (143 labels)"."""
    if key == "all":
        return f"all ({row['labels']} labels)"
    return f"{row['labels'] / n_train:.0%} ({row['labels']} labels)" if n_train else f"{key} ({row['labels']} labels)"


def compare(a, b, what):
    """'3.1 points above raw pixels' / '0.4 points below ...' / 'level with ...' (accuracies in [0, 1])."""
    d = 100.0 * (a - b)
    if abs(d) < 0.05:
        return f"level with {what}"
    return f"{abs(d):.1f} points {'above' if d > 0 else 'below'} {what}"


def legend_lines(legend, columns):
    """The legend of a results table: one "name: meaning" line per column shown."""
    return ["where " + "; ".join(f"{c} = {legend[c]}" for c in columns if c in legend)]
