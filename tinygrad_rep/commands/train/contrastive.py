"""`tinygrad-rep train contrastive`: SimCLR (NT-Xent, InfoNCE or triplet) on images, evaluated by
linear probes and fine-tuning against raw pixels, PCA, an untrained encoder and an autoencoder;
writes metrics.json, plots and the model into --out.

    tinygrad-rep train contrastive --data digits --out runs/simclr
"""
import os
import time

import numpy as np

from ... import backend
from ...data import augment, datasets
from ...models import contrastive as cl
from ...models import plots
from ...output import format_table, write_json_atomic
from ...report_html import run_page
from .. import options
from . import common


def add_arguments(parser):
    """Options of `tinygrad-rep train contrastive` (None = the data set's default)."""
    parser.add_argument("--data", default="digits", choices=sorted(datasets.KNOWN), help="data set (default digits)")
    parser.add_argument("--data-path", default=None, help="folder with the data set's files")
    parser.add_argument("--epochs", type=int, default=None,
                        help="SimCLR epochs (digits 80, fashion-mnist 8; with --full 30)")
    parser.add_argument("--batch-size", type=int, default=None,
                        help="images per batch; each gives two views (digits 128, fashion-mnist 256)")
    parser.add_argument("--temperature", type=float, default=None, help="NT-Xent temperature (default 0.5)")
    parser.add_argument("--dim", type=int, default=None,
                        help="code size of the MLP encoder (digits 128, fashion-mnist 256); the conv "
                             "encoder's follows from --channels (last channels x H/4 x W/4)")
    parser.add_argument("--loss", default="nt-xent", choices=cl.LOSSES, help="training objective (default nt-xent)")
    parser.add_argument("--margin", type=float, default=0.5, help="triplet loss margin (default 0.5)")
    parser.add_argument("--encoder", default=None, choices=("mlp", "conv"),
                        help="encoder: MLP, or 3x3 stride-2 convolutions then a linear layer "
                             "(digits mlp, fashion-mnist conv)")
    parser.add_argument("--channels", default=None, help="conv encoder: channels per convolution, comma-separated (default 16,32)")
    parser.add_argument("--hidden", default=None, help="MLP encoder hidden widths, comma-separated (digits 256, fashion-mnist 1024)")
    parser.add_argument("--proj-hidden", default=None,
                        help="projection head hidden widths, comma-separated (digits 128, fashion-mnist 256,256)")
    parser.add_argument("--proj-dim", type=int, default=None, help="projection head output size (default 64)")
    parser.add_argument("--lr", type=float, default=None, help="Adam learning rate (default 1e-3)")
    parser.add_argument("--schedule", default="cosine", choices=("cosine", "constant"),
                        help="learning-rate schedule: linear warm-up then cosine decay to 0 (default), or constant")
    parser.add_argument("--warmup-epochs", type=float, default=None, help="warm-up length in epochs (digits 2, fashion-mnist 1)")
    parser.add_argument("--weight-decay", type=float, default=None, help="AdamW weight decay (default 0: plain Adam)")
    parser.add_argument("--seed", type=int, default=0, help="seed for initialisation, batches and augmentations")
    parser.add_argument("--label-fraction", type=float, default=None,
                        help="the small label budget of the evaluation (digits 0.1, fashion-mnist 0.01)")
    parser.add_argument("--label-draws", type=int, default=3,
                        help="random draws of the small label budget; accuracies are averaged (default 3)")
    parser.add_argument("--autoencoder", default="train",
                        help="autoencoder codes to compare with: 'train' (train one of the same architecture "
                             "and dimension, default), 'none', or a folder saved by `train autoencoder`")
    parser.add_argument("--autoencoder-epochs", type=int, default=None,
                        help="epochs of the autoencoder trained for the comparison (default: SimCLR's epochs; fashion-mnist 2 unless --full)")
    parser.add_argument("--probe-steps", type=int, default=None, help="optimizer steps of each linear probe (default 500)")
    parser.add_argument("--finetune-steps", type=int, default=None,
                        help="optimizer steps of fine-tuning and from-scratch training on the small budget "
                             "(default 600; with all labels: 1000)")
    parser.add_argument("--full", action="store_true",
                        help="the long protocol: fashion-mnist 30 epochs with fine-tuning and an autoencoder "
                             "trained as long as SimCLR (the default fashion-mnist run is 8 epochs, probes only)")
    parser.add_argument("--no-finetune", action="store_true", help="skip fine-tuning and from-scratch training")
    parser.add_argument("--no-eval", action="store_true", help="train and save only: no evaluation table")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--out", required=True, help="output folder")
    common.add_run_arguments(parser)


def settings(args):
    """The run's settings: the data set's defaults overridden by the options given, all checked."""
    d = dict(cl.DEFAULTS[args.data])
    if getattr(args, "full", False):
        d.update(cl.FULL[args.data])
    given = {"epochs": args.epochs, "batch_size": args.batch_size, "temperature": args.temperature,
             "dim": args.dim, "proj_dim": args.proj_dim, "lr": args.lr, "warmup_epochs": args.warmup_epochs,
             "weight_decay": args.weight_decay, "label_fraction": args.label_fraction,
             "hidden": options.widths("hidden", args.hidden), "encoder": args.encoder,
             "channels": options.widths("channels", args.channels),
             "proj_hidden": options.widths("proj-hidden", args.proj_hidden),
             "probe_steps": args.probe_steps, "finetune_steps": args.finetune_steps}
    d.update({k: v for k, v in given.items() if v is not None})
    if d["encoder"] == "conv" and args.dim is None:
        d["dim"] = None  # the conv encoder's code size follows from its channels
    for name in ("epochs", "batch_size", "dim", "proj_dim", "probe_steps", "finetune_steps"):
        options.positive(name, d[name], integer=True)
    for name in ("temperature", "lr"):
        options.positive(name, d[name])
    options.non_negative("warmup-epochs", d["warmup_epochs"])
    options.non_negative("weight-decay", d["weight_decay"])
    options.in_range("label-fraction", d["label_fraction"], 0, 1, low_open=True)
    options.positive("label-draws", args.label_draws, integer=True)
    options.positive("autoencoder-epochs", args.autoencoder_epochs, integer=True)
    options.non_negative("margin", args.margin)
    options.non_negative("seed", args.seed, integer=True)
    d["schedule"], d["seed"], d["loss"], d["margin"] = args.schedule, args.seed, args.loss, args.margin
    return d


def run(args):
    """Train SimCLR, evaluate it, and write metrics.json, the plots and the model into args.out."""
    s = settings(args)
    x_train, y_train, x_test, y_test = datasets.load(args.data, args.data_path)
    out = options.output_folder(args.out)
    shape = cl.IMAGE_SHAPES[args.data]
    augmenter = augment.preset(args.data, shape)
    model = cl.SimCLR(x_train.shape[1], dim=s["dim"], hidden=s["hidden"], proj_hidden=s["proj_hidden"],
                      proj_dim=s["proj_dim"], image_shape=shape, seed=args.seed, encoder=s["encoder"],
                      channels=s["channels"])
    if model.kind == "mlp":
        arch = "MLP " + "-".join(str(w) for w in (model.input_dim,) + model.hidden + (model.dim,))
    else:
        arch = f"conv {'-'.join(str(c) for c in model.channels)} channels -> {model.dim}"
    loss_name = {"nt-xent": "NT-Xent", "info-nce": "InfoNCE", "triplet": f"triplet (margin {s['margin']})"}[s["loss"]]
    head = "-".join(str(w) for w in (model.dim,) + model.proj_hidden + (model.proj_dim,))
    print(f"SimCLR on {args.data}: encoder {arch} + head {head}; "
          f"{len(x_train)} train / {len(x_test)} test images; {loss_name}, {s['epochs']} epochs, batch "
          f"{s['batch_size']} (x2 views), temperature {s['temperature']}, lr {s['lr']} ({s['schedule']}), "
          f"backend {backend.get_backend()}")
    ckpt = common.checkpoint_for(args, out, {"data": args.data, "data_path": args.data_path,
                                             "train_images": len(x_train), **s})
    with common.interruptible(ckpt, s["epochs"]):
        fit = cl.train(model, x_train, augmenter, s["epochs"], s["batch_size"], s["temperature"], s["lr"],
                       s["weight_decay"], s["warmup_epochs"], s["schedule"], seed=args.seed,
                       progress=not args.quiet, objective=s["loss"], margin=s["margin"], checkpoint=ckpt)
        model.save(out, data=args.data, augment=augmenter.to_dict(), temperature=s["temperature"])
        metrics = {"data": args.data, "settings": {k: (list(v) if isinstance(v, tuple) else v) for k, v in s.items()},
                   "augment": augmenter.to_dict(), "seconds": fit["seconds"],
                   "augment_seconds": fit["augment_seconds"], "samples_per_second": fit["samples_per_second"],
                   "epoch_losses": fit["epoch_losses"], "backend": backend.backend_info()}
        files = ["model.json", "weights.npz"]
        rng = np.random.default_rng(args.seed + 1)
        plots.save_augmentation_png(os.path.join(out, "augmentations.png"), x_test[:8], augmenter, rng,
                                    title=f"{args.data}: test images and SimCLR's augmented views")
        batch = np.sort(rng.choice(len(x_test), 32, replace=False))
        batch = batch[np.argsort(y_test[batch], kind="stable")]  # grouped by class: blocks show classes
        sim = cl.similarity_matrix(model, x_test[batch], augmenter, rng)
        plots.save_similarity_png(os.path.join(out, "similarity.png"), sim,
                                  title=f"SimCLR projections of {len(batch)} test images x 2 views\n"
                                        "(positive pairs: diagonals of the off-diagonal blocks;\n"
                                        "images grouped by class)")
        files += ["augmentations.png", "similarity.png"]
        if plots.save_loss_png(os.path.join(out, "loss.png"), fit["epoch_losses"], f"SimCLR on {args.data}", loss_name):
            files.append("loss.png")
        n = len(sim) // 2
        metrics["similarity_batch"] = {"images": n, "positive_mean": float(np.mean(np.diag(sim, n))),
                                       "negative_mean": float((sim.sum() - np.trace(sim) - 2 * np.trace(sim, n))
                                                              / (4 * n * n - 2 * n - 2 * n))}
        write_json_atomic(os.path.join(out, "metrics.json"), metrics)  # training's numbers, kept if stopped
        if not args.no_eval:
            if args.autoencoder == "none":
                ae = None
            elif args.autoencoder == "train":
                ae = {"epochs": args.autoencoder_epochs or s["autoencoder_epochs"] or s["epochs"],
                      "batch_size": s["batch_size"]}
            else:
                ae = args.autoencoder
            t0 = time.perf_counter()
            table, zte = cl.evaluate(model, x_train, y_train, x_test, y_test, s["label_fraction"], args.label_draws,
                                     probe_steps=s["probe_steps"], finetune_steps=s["finetune_steps"],
                                     finetune_steps_all=s["finetune_steps_all"], finetune=s["finetune"] and not args.no_finetune,
                                     autoencoder=ae, seed=args.seed, progress=not args.quiet)
            metrics.update(table)
            metrics["eval_seconds"] = time.perf_counter() - t0
            metrics["legend"] = {m: LEGEND[m] for m in METHODS if m in metrics["labels"]["all"]}
            metrics["reading"] = reading(metrics)
        else:
            zte = model.encode(x_test)
        title = f"{args.data}: SimCLR test codes (dim {model.dim}), first two principal components"
        if plots.save_scatter(os.path.join(out, "embeddings.png"), plots.project_2d(zte), y_test, title=title,
                              class_names=cl.CLASS_NAMES.get(args.data)):
            files.append("embeddings.png")
        write_json_atomic(os.path.join(out, "metrics.json"), metrics)
        files.insert(0, "metrics.json")
        print(summary(metrics))
        ckpt.remove()  # the run is complete: nothing to resume
        run_page(out, f"train contrastive --data {args.data}", summary=summary(metrics))
        files.append("report.html")
        print(f"wrote {out}/: {', '.join(files)}")
    return 0


# what each column of the results table measures (printed under it and stored in metrics.json)
LEGEND = {
    "probe": "a linear probe (softmax regression) on the frozen SimCLR codes",
    "fine_tune": "the SimCLR encoder plus a linear head, all trained on the labels",
    "scratch": "the same encoder freshly initialised, trained the same way",
    "untrained": "the probe on the codes of that untrained encoder (what the architecture alone gives)",
    "raw_pixels": "the probe on the pixels",
    "pca": "the probe on PCA codes of the same size",
    "autoencoder": "the probe on an autoencoder's codes",
}
METHODS = tuple(LEGEND)


def reading(metrics):
    """One line of interpretation computed from the table: what pretraining bought with few labels."""
    rows = metrics["labels"]
    few_key = next(k for k in rows if k != "all")
    few, n = rows[few_key], rows["all"]["labels"]
    acc = {m: few[m]["accuracy"] for m in METHODS if m in few}
    line = (f"with {common.budget(few_key, few, n)} the SimCLR probe is "
            f"{common.compare(acc['probe'], acc['raw_pixels'], 'raw pixels')} and "
            f"{common.compare(acc['probe'], acc['untrained'], 'the untrained encoder')}")
    if "fine_tune" in acc:
        line += f"; fine-tuning is {common.compare(acc['fine_tune'], acc['scratch'], 'training from scratch')}"
    if acc["probe"] <= max(acc["raw_pixels"], acc["untrained"]):
        line += " (pretraining did not help in this run)"
    return line


def summary(metrics):
    """A short human-readable summary of a run's metrics: the training loss, the comparison table
    with its legend, and one line reading it."""
    lines = [f"trained {len(metrics['epoch_losses'])} epochs in {metrics['seconds']:.1f} s "
             f"({metrics['samples_per_second']:.0f} images/s, two views each); {metrics['settings']['loss']} loss "
             f"{metrics['epoch_losses'][0]:.4f} -> {metrics['epoch_losses'][-1]:.4f}"]
    if "labels" in metrics:
        methods = [m for m in METHODS if m in next(iter(metrics["labels"].values()))]
        n = metrics["labels"]["all"]["labels"]
        rows = [[common.budget(k, v, n)] + [v[m]["accuracy"] for m in methods]
                for k, v in metrics["labels"].items()]
        draws = max(v["draws"] for v in metrics["labels"].values())
        lines.append("test accuracy by label budget"
                     + (f" (the small budget: mean over {draws} random draws)" if draws > 1 else "") + ":")
        lines.append(format_table(["labels"] + methods, rows))
        lines += common.legend_lines(LEGEND, methods)
        lines.append(reading(metrics))
    return "\n".join(lines)
