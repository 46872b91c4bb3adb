"""`tinygrad-rep train autoencoder`: train an MLP autoencoder (plain, denoising, masked) on images,
evaluate it against PCA, and write metrics.json, plots and the model into --out.

    tinygrad-rep train autoencoder --data digits --out runs/ae
"""
import os
import time

import numpy as np

from ... import backend
from ...data import datasets
from ...models import autoencoder as ae
from ...models import plots
from ...output import format_table, write_json_atomic
from ...report_html import run_page
from .. import options
from . import common


def add_arguments(parser):
    """Options of `tinygrad-rep train autoencoder` (None = the data set's default)."""
    parser.add_argument("--data", default="digits", choices=sorted(datasets.KNOWN),
                        help="data set (default digits)")
    parser.add_argument("--data-path", default=None, help="folder with the data set's files")
    parser.add_argument("--bottleneck", type=int, default=None, help="code size m (default 8)")
    parser.add_argument("--hidden", default=None,
                        help="encoder hidden widths, comma-separated (digits 128,64; fashion-mnist 512,128)")
    parser.add_argument("--variant", default=None, choices=ae.VARIANTS,
                        help="training objective (digits plain, fashion-mnist denoising)")
    parser.add_argument("--noise", type=float, default=0.2, help="denoising: std of the input noise")
    parser.add_argument("--mask-ratio", type=float, default=0.5, help="masked: fraction of inputs hidden")
    parser.add_argument("--epochs", type=int, default=None, help="training epochs (digits 60, fashion-mnist 15)")
    parser.add_argument("--batch-size", type=int, default=None, help="minibatch size (digits 64, fashion-mnist 256)")
    parser.add_argument("--lr", type=float, default=None, help="Adam learning rate, cosine-decayed (digits 3e-3, fashion-mnist 2e-3)")
    parser.add_argument("--seed", type=int, default=0, help="seed for initialisation, batches and noise")
    parser.add_argument("--label-fraction", type=float, default=0.01, help="the small label budget (default 0.01)")
    parser.add_argument("--finetune-steps", type=int, default=None, help="optimizer steps for fine-tuning / from scratch")
    parser.add_argument("--no-finetune", action="store_true", help="skip fine-tuning and from-scratch training")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--out", required=True, help="output folder")
    common.add_run_arguments(parser)


def settings(args):
    """The run's settings: the data set's defaults overridden by the options given, all checked."""
    d = dict(ae.DEFAULTS[args.data])
    given = {"hidden": options.widths("hidden", args.hidden), "variant": args.variant,
             "bottleneck": args.bottleneck, "epochs": args.epochs, "batch_size": args.batch_size,
             "lr": args.lr, "finetune_steps": args.finetune_steps}
    d.update({k: v for k, v in given.items() if v is not None})
    for name in ("bottleneck", "epochs", "batch_size", "finetune_steps", "probe_steps"):
        options.positive(name, d[name], integer=True)
    options.positive("lr", d["lr"])
    options.non_negative("noise", args.noise)
    options.in_range("mask-ratio", args.mask_ratio, 0, 1, low_open=True, high_open=True)
    options.in_range("label-fraction", args.label_fraction, 0, 1, low_open=True)
    options.non_negative("seed", args.seed, integer=True)
    d.update(noise=args.noise, mask_ratio=args.mask_ratio, label_fraction=args.label_fraction, seed=args.seed)
    return d


def run(args):
    """Train, evaluate, and write metrics.json, the plots and the model into args.out."""
    s = settings(args)
    m, epochs, bs, lr, hidden = s["bottleneck"], s["epochs"], s["batch_size"], s["lr"], s["hidden"]
    x_train, y_train, x_test, y_test = datasets.load(args.data, args.data_path)
    if m >= x_train.shape[1]:
        raise options.UsageError(f"--bottleneck must be smaller than the input size {x_train.shape[1]}, got {m}")
    out = options.output_folder(args.out)

    model = ae.Autoencoder(x_train.shape[1], hidden, m, s["variant"], noise=s["noise"],
                           mask_ratio=s["mask_ratio"], seed=args.seed)
    print(f"autoencoder {x_train.shape[1]}-{'-'.join(map(str, hidden))}-{m} ({s['variant']}) on "
          f"{args.data}: {len(x_train)} train / {len(x_test)} test, {epochs} epochs, batch {bs}, "
          f"lr {lr}, backend {backend.get_backend()}")
    ckpt = common.checkpoint_for(args, out, {"data": args.data, "data_path": args.data_path,
                                             "train_images": len(x_train), **s})
    with common.interruptible(ckpt, epochs):
        fit = ae.train(model, x_train, epochs, bs, lr, seed=args.seed, progress=not args.quiet, checkpoint=ckpt)
        model.save(out)
        write_json_atomic(os.path.join(out, "metrics.json"),  # training's numbers, kept if evaluation stops
                          {"data": args.data, "variant": s["variant"], "epochs": epochs, "seconds": fit["seconds"],
                           "epoch_losses": fit["epoch_losses"]})
        t0 = time.perf_counter()
        metrics, _, zte = ae.evaluate(model, x_train, y_train, x_test, y_test, probe_steps=s["probe_steps"],
                                      finetune_steps=s["finetune_steps"], label_fraction=s["label_fraction"],
                                      finetune=not args.no_finetune, seed=args.seed)
        metrics.update({
            "data": args.data, "variant": s["variant"], "bottleneck": m, "hidden": list(hidden),
            "epochs": epochs, "batch_size": bs, "lr": lr, "seed": args.seed,
            "seconds": fit["seconds"], "samples_per_second": fit["samples_per_second"],
            "eval_seconds": time.perf_counter() - t0, "epoch_losses": fit["epoch_losses"],
            "backend": backend.backend_info(),
        })
        files = ["metrics.json", "model.json", "weights.npz"]
        shape = ae.IMAGE_SHAPES.get(args.data)
        if shape is not None:
            shown = x_test[:10]
            corrupted, _ = model.corrupt(model._rows(shown), np.random.default_rng(args.seed))
            label = {"denoising": f"noisy input (std {model.noise:g})",
                     "masked": f"masked input ({model.mask_ratio:.0%} hidden)"}.get(model.variant)
            plots.save_reconstructions(os.path.join(out, "reconstructions.png"), shown,
                                       model.reconstruct(corrupted if label else shown), shape,
                                       corrupted=corrupted if label else None, corrupted_label=label,
                                       title=f"{model.variant} autoencoder (m={m}) on {args.data}: test images")
            files.append("reconstructions.png")
        if plots.save_scatter(os.path.join(out, "codes.png"), plots.project_2d(zte), y_test,
                              title=f"{args.data}: test codes (m={m}), first two principal components",
                              class_names=ae.CLASS_NAMES.get(args.data)):
            files.append("codes.png")
        loss_name = {"plain": "reconstruction MSE", "denoising": "MSE to the clean input",
                     "masked": "MSE on the hidden entries"}[s["variant"]]
        if plots.save_loss_png(os.path.join(out, "loss.png"), fit["epoch_losses"],
                               f"{s['variant']} autoencoder on {args.data}", loss_name):
            files.append("loss.png")
        metrics["legend"] = {c: LEGEND[c] for c in LEGEND if c in metrics["labels"]["all"]}
        metrics["reading"] = reading(metrics)
        write_json_atomic(os.path.join(out, "metrics.json"), metrics)
        print(summary(metrics))
        ckpt.remove()  # the run is complete: nothing to resume
        run_page(out, f"train autoencoder --data {args.data}", summary=summary(metrics))
        files.append("report.html")
        print(f"wrote {out}/: {', '.join(files)}")
    return 0


# what each column of the results table measures (printed under it and stored in metrics.json)
LEGEND = {
    "probe": "a linear probe (softmax regression) on the frozen autoencoder codes",
    "pca_probe": "the same probe on PCA codes of the same size m",
    "fine_tune": "the autoencoder's encoder plus a linear head, all trained on the labels",
    "scratch": "the same encoder freshly initialised, trained the same way",
}


def reading(metrics):
    """One line of interpretation computed from the table: the codes against PCA's."""
    rows = metrics["labels"]
    few_key = next(k for k in rows if k != "all")
    few, n = rows[few_key], rows["all"]["labels"]
    line = (f"with {common.budget(few_key, few, n)} the probe on the codes is "
            f"{common.compare(few['probe'], few['pca_probe'], 'PCA codes of the same size')}; with all labels "
            f"{common.compare(rows['all']['probe'], rows['all']['pca_probe'], 'PCA codes')}")
    if "fine_tune" in few:
        line += (f"; fine-tuning with {few['labels']} labels is "
                 f"{common.compare(few['fine_tune'], few['scratch'], 'training from scratch')}")
    return line


def summary(metrics):
    """A short human-readable summary of a run's metrics: reconstruction against PCA, the
    label-budget table with its legend, and one line reading it."""
    lines = [f"held-out reconstruction MSE {metrics['recon_mse']:.5f} vs PCA-{metrics['bottleneck']} "
             f"{metrics['pca_mse']:.5f} (mean image {metrics['mean_image_mse']:.5f})",
             f"trained {metrics['epochs']} epochs in {metrics['seconds']:.1f} s "
             f"({metrics['samples_per_second']:.0f} samples/s)"]
    cols = [c for c in ("probe", "pca_probe", "fine_tune", "scratch") if c in next(iter(metrics["labels"].values()))]
    n = metrics["labels"]["all"]["labels"]
    rows = [[common.budget(k, v, n)] + [v[c] for c in cols] for k, v in metrics["labels"].items()]
    lines.append("test accuracy by label budget:")
    lines.append(format_table(["labels"] + cols, rows))
    lines += common.legend_lines(LEGEND, cols)
    lines.append(reading(metrics))
    return "\n".join(lines)
