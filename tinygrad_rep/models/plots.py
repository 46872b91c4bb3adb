"""The models' figures, all in one place: scatter plots of codes, loss curves, image grids, a
similarity heat map and word-vector groups, each written atomically as PNG.

Figures with axes and text use matplotlib when it is installed and are skipped with a printed note
when it is not; image grids and heat maps need nothing but numpy and zlib (the PNG encoder).
Every 2-D projection goes through the one PCA of models/evaluation.py (`project_2d`).
"""
import os
import zlib

import numpy as np

from ..output import atomic_path, note_once, write_bytes_atomic
from . import evaluation as ev


def _pyplot(path, quiet=False):
    """matplotlib.pyplot on the Agg backend, or None (after a one-time note naming the skipped
    plot, unless `quiet`: the caller then draws a plainer version without it)."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        if quiet:
            note_once("note: matplotlib is not installed; image grids are drawn without labels "
                      "(pip install matplotlib)")
        else:
            note_once(f"note: matplotlib is not installed; skipped the plot {os.fspath(path)} "
                      f"(pip install matplotlib)")
        return None
    return plt


def _save_figure(plt, fig, path, **kwargs):
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", **kwargs)
    finally:
        plt.close(fig)
    return path


def project_2d(x):
    """Rows of x on their first two principal components (models.evaluation.PCA), as an (n, 2)
    array; a missing second component (one row, or one column) is a column of zeros."""
    x = np.asarray(x, dtype=np.float64)
    m = min(2, *x.shape) if x.ndim == 2 else 0
    if m < 1:
        return np.zeros((len(x), 2), np.float32)
    pts = ev.PCA(m).fit(x).transform(x)
    return np.pad(pts, ((0, 0), (0, 2 - m)))


def save_scatter(path, points, labels, title="", class_names=None, max_points=5000, seed=0):
    """PNG scatter of 2-D `points` coloured by integer `labels` (at most `max_points`, drawn at
    random with `seed`), with axis labels and a legend of the classes (matplotlib).

    Returns the path, or None (after a printed note) when matplotlib is not installed.
    """
    plt = _pyplot(path)
    if plt is None:
        return None
    points, labels = np.asarray(points), np.asarray(labels)
    if len(points) > max_points:
        keep = np.random.default_rng(seed).choice(len(points), max_points, replace=False)
        points, labels = points[keep], labels[keep]
    fig, ax = plt.subplots(figsize=(6.5, 5.5), dpi=100)
    cmap = plt.get_cmap("tab10")
    for c in np.unique(labels):
        sel = labels == c
        name = class_names[c] if class_names is not None else str(c)
        ax.scatter(points[sel, 0], points[sel, 1], s=6, alpha=0.6, color=cmap(int(c) % 10), label=name)
    ax.set_title(title)
    ax.set_xlabel("component 1")
    ax.set_ylabel("component 2")
    ax.legend(title="class (true label)", title_fontsize=8, markerscale=3, fontsize=8, loc="best", ncol=2 if len(np.unique(labels)) > 5 else 1)
    fig.tight_layout()
    return _save_figure(plt, fig, path)


def save_loss_png(path, losses, title, ylabel="loss", x=None, xlabel="epoch"):
    """PNG line plot of a training loss curve: one value per epoch, or at the positions `x`
    (e.g. words trained) named by `xlabel`. matplotlib; skipped with a note if missing.
    Returns the path, or None when skipped."""
    plt = _pyplot(path)
    if plt is None:
        return None
    x = np.arange(1, len(losses) + 1) if x is None else np.asarray(x)
    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    ax.plot(x, losses, marker="o", ms=3)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(f"{ylabel} (training, mean over the epoch)" if xlabel == "epoch" else f"{ylabel} (training)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return _save_figure(plt, fig, path)


# ---------------------------------------------------------------------------- numpy-only images

def encode_png(image):
    """A grayscale (H, W) or RGB (H, W, 3) uint8 array as PNG bytes (no extra package needed)."""
    image = np.ascontiguousarray(image, dtype=np.uint8)
    if image.ndim == 2:
        color = 0
    elif image.ndim == 3 and image.shape[2] == 3:
        color = 2
    else:
        raise ValueError(f"encode_png: expected (H, W) or (H, W, 3), got shape {image.shape}")
    h, w = image.shape[:2]
    rows = image.reshape(h, -1)
    raw = np.concatenate([np.zeros((h, 1), np.uint8), rows], axis=1).tobytes()  # filter 0 per row

    def chunk(kind, payload):
        body = kind + payload
        return len(payload).to_bytes(4, "big") + body + zlib.crc32(body).to_bytes(4, "big")

    header = w.to_bytes(4, "big") + h.to_bytes(4, "big") + bytes([8, color, 0, 0, 0])
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 6))
            + chunk(b"IEND", b""))


def tile_images(rows, image_shape, scale=4, pad=1):
    """A grid of images as one uint8 array: `rows` is a list of (n, H*W) arrays in [0, 1], one per
    grid row; each image is upscaled `scale` times, with `pad` pixels of gray between them."""
    h, w = image_shape
    n = max(len(r) for r in rows)
    cell_h, cell_w = h * scale + pad, w * scale + pad
    grid = np.full((len(rows) * cell_h + pad, n * cell_w + pad), 128, dtype=np.uint8)
    for i, row in enumerate(rows):
        for j, img in enumerate(np.asarray(row)):
            pix = np.clip(np.asarray(img, dtype=np.float64).reshape(h, w), 0, 1)
            pix = np.kron(pix, np.ones((scale, scale)))
            y, x = pad + i * cell_h, pad + j * cell_w
            grid[y:y + h * scale, x:x + w * scale] = np.round(pix * 255).astype(np.uint8)
    return grid


def save_reconstruction_grid(path, inputs, reconstructions, image_shape, per_row=10, scale=None):
    """PNG of test inputs beside their reconstructions: rows alternate inputs / reconstructions,
    `per_row` images each. Returns the path."""
    inputs, reconstructions = np.asarray(inputs), np.asarray(reconstructions)
    if scale is None:
        scale = max(1, 64 // max(image_shape))  # 8x8 digits x8, 28x28 images x2
    rows = []
    for start in range(0, len(inputs), per_row):
        rows += [inputs[start:start + per_row], reconstructions[start:start + per_row]]
    write_bytes_atomic(path, encode_png(tile_images(rows, image_shape, scale=scale)))
    return path


def _colormap(values, lo=-1.0, hi=1.0):
    """Diverging blue-white-red RGB (uint8) for values in [lo, hi] (NaN and -inf become gray)."""
    t = np.clip((np.nan_to_num(values, nan=0.0, neginf=lo, posinf=hi) - lo) / (hi - lo), 0, 1) * 2 - 1
    blue, white, red = np.array([33, 102, 172.]), np.array([247, 247, 247.]), np.array([178, 24, 43.])
    neg = np.clip(-t, 0, 1)[..., None]
    pos = np.clip(t, 0, 1)[..., None]
    rgb = white * (1 - neg - pos) + blue * neg + red * pos
    rgb = np.where(np.isfinite(values)[..., None], rgb, 128.0)
    return np.round(rgb).astype(np.uint8)


def save_similarity_png(path, sim, scale=8, title="cosine similarity"):
    """PNG heat map of a similarity matrix in [-1, 1] (blue -1, white 0, red +1), with a title,
    axis labels and a colour bar (matplotlib); without matplotlib, the bare matrix, each entry a
    `scale` x `scale` block."""
    sim = np.asarray(sim, dtype=np.float64)
    plt = _pyplot(path, quiet=True)
    if plt is None:
        rgb = _colormap(sim)
        write_bytes_atomic(path, encode_png(np.repeat(np.repeat(rgb, scale, axis=0), scale, axis=1)))
        return path
    fig, ax = plt.subplots(figsize=(7, 5.6), dpi=100)
    im = ax.imshow(sim, cmap="RdBu_r", vmin=-1, vmax=1, interpolation="nearest")
    fig.colorbar(im, ax=ax, label="cosine similarity")
    n = len(sim) // 2
    if n and len(sim) == 2 * n:  # [view 1 of images 0..n-1, view 2 of images 0..n-1]
        for axis in (ax.xaxis, ax.yaxis):
            axis.set_ticks([n / 2 - 0.5, 3 * n / 2 - 0.5], ["view 1", "view 2"])
        ax.axhline(n - 0.5, color="0.3", lw=0.6)
        ax.axvline(n - 0.5, color="0.3", lw=0.6)
    ax.set_xlabel("projection (images in the same order in both halves)")
    ax.set_ylabel("projection")
    ax.set_title(title)
    fig.tight_layout()
    return _save_figure(plt, fig, path)


def save_image_rows(path, rows, image_shape, title="", col_labels=None):
    """PNG grid of images: `rows` is a list of (label, images (n, H*W) in [0, 1]); each row is
    labelled on the left, columns optionally on top (col_labels), the figure titled (matplotlib).
    Without matplotlib the images alone are tiled (no text)."""
    h, w = image_shape
    plt = _pyplot(path, quiet=True)
    if plt is None:
        scale = max(1, 64 // max(h, w))
        write_bytes_atomic(path, encode_png(tile_images([imgs for _, imgs in rows], (h, w), scale=scale)))
        return path
    n = max(len(imgs) for _, imgs in rows)
    fig, axes = plt.subplots(len(rows), n, figsize=(0.75 * n + 1.4, 0.8 * len(rows) + 0.6), squeeze=False)
    for i, (label, imgs) in enumerate(rows):
        for j in range(n):
            ax = axes[i, j]
            ax.set_xticks([])
            ax.set_yticks([])
            if j < len(imgs):
                ax.imshow(np.clip(np.asarray(imgs[j], np.float64).reshape(h, w), 0, 1), cmap="gray_r",
                          vmin=0, vmax=1, interpolation="nearest")
            else:
                ax.axis("off")
            if i == 0 and col_labels is not None and j < len(col_labels):
                ax.set_title(col_labels[j], fontsize=8)
        axes[i, 0].set_ylabel(label, rotation=0, ha="right", va="center", fontsize=9)
    fig.suptitle(title)
    fig.tight_layout()
    return _save_figure(plt, fig, path)


def save_reconstructions(path, inputs, reconstructions, image_shape, corrupted=None, title="reconstructions",
                         corrupted_label="network input"):
    """PNG of test images above their reconstructions (rows labelled), with the corrupted network
    input between them for the denoising and masked variants."""
    rows = [("input", inputs)]
    if corrupted is not None:
        rows.append((corrupted_label, corrupted))
    rows.append(("reconstruction", reconstructions))
    return save_image_rows(path, rows, image_shape, title)


def save_augmentation_png(path, x, augmenter, rng, views=8, title="augmentations"):
    """PNG: each row is an image (the column marked "original") followed by `views` augmented views."""
    from ..data import augment
    grid = augment.view_grid(x, augmenter, rng, views)  # (n, 1 + views, H, W)
    h, w = grid.shape[2:]
    rows = [(f"image {i}", row.reshape(len(row), h * w)) for i, row in enumerate(grid)]
    return save_image_rows(path, rows, (h, w), title,
                           col_labels=["original"] + [f"view {k + 1}" for k in range(views)])


# ---------------------------------------------------------------------------- word vectors

WORD_GROUPS = {
    "countries and capitals": [("france", "paris"), ("italy", "rome"), ("germany", "berlin"),
                               ("spain", "madrid"), ("russia", "moscow"), ("japan", "tokyo"),
                               ("china", "beijing"), ("england", "london"), ("egypt", "cairo"),
                               ("greece", "athens")],
    "gender pairs": [("king", "queen"), ("man", "woman"), ("he", "she"), ("father", "mother"),
                     ("son", "daughter"), ("brother", "sister"), ("boy", "girl"),
                     ("husband", "wife"), ("his", "her"), ("men", "women")],
    "verb tenses": [("go", "went"), ("take", "took"), ("see", "saw"), ("make", "made"),
                    ("give", "gave"), ("come", "came"), ("know", "knew"), ("write", "wrote"),
                    ("speak", "spoke"), ("find", "found")],
}


def plot_word_groups(wv, path, groups=None, title=None):
    """A PNG with one panel per word group: a 2-D PCA of the group's (unit) vectors, each pair
    joined by an arrow (first -> second word). Pairs with an unknown word are left out.
    Returns the number of pairs drawn, or None when matplotlib is not installed."""
    plt = _pyplot(path)
    if plt is None:
        return None
    groups = WORD_GROUPS if groups is None else groups
    fig, axes = plt.subplots(1, len(groups), figsize=(5.5 * len(groups), 5.2), squeeze=False)
    drawn = 0
    for ax, (name, pairs) in zip(axes[0], groups.items()):
        pairs = [p for p in pairs if p[0] in wv and p[1] in wv]
        ax.set_title(f"{name} ({len(pairs)} pairs)")
        ax.set_xticks([])
        ax.set_yticks([])
        if not pairs:
            ax.text(0.5, 0.5, "no pair in the vocabulary", ha="center", va="center", transform=ax.transAxes)
            continue
        words = [w for p in pairs for w in p]
        xy = project_2d(wv.unit[[wv.index[w] for w in words]])
        ax.scatter(xy[0::2, 0], xy[0::2, 1], c="tab:blue", s=18, label="first")
        ax.scatter(xy[1::2, 0], xy[1::2, 1], c="tab:red", s=18, label="second")
        for k in range(len(pairs)):
            a, b = xy[2 * k], xy[2 * k + 1]
            ax.annotate("", xy=b, xytext=a, arrowprops=dict(arrowstyle="->", color="0.6", lw=0.8))
        for w, (x, y) in zip(words, xy):
            ax.annotate(w, (x, y), fontsize=8, xytext=(3, 3), textcoords="offset points")
        drawn += len(pairs)
    fig.suptitle(title or "word vectors: 2-D PCA of word groups")
    fig.tight_layout()
    _save_figure(plt, fig, path, dpi=110)
    return drawn
