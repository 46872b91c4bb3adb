"""Image helpers of the models' figures: a small PNG encoder (zlib only), image grids and scatter plots.

Scatter plots use matplotlib when it is installed and are skipped with a one-time note when not;
image grids need nothing but numpy. Every file is written through the library's atomic writer
(tinygrad_rep/output.py), so a reader never sees a half-written image.
"""
import os
import zlib

import numpy as np

from ..output import atomic_write, note_once, write_bytes_atomic


# ---------------------------------------------------------------------------- images

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


def save_scatter(path, points, labels, title="", class_names=None, max_points=5000, seed=0):
    """PNG scatter of 2-D `points` coloured by integer `labels`, through matplotlib.

    Returns the path, or None (after a printed note) when matplotlib is not installed.
    """
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        note_once(f"note: matplotlib is not installed; skipped the plot {os.fspath(path)} "
                  f"(pip install matplotlib)")
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
    ax.legend(markerscale=3, fontsize=8, loc="best", ncol=2 if len(np.unique(labels)) > 5 else 1)
    fig.tight_layout()
    with atomic_write(path, "wb") as f:
        fig.savefig(f, format="png")
    plt.close(fig)
    return path
