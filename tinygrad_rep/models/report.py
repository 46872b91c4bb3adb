"""Reporting helpers for training runs: progress bar, atomic file writes, JSON, PNG plots.

Optional extras are used when installed and skipped with a printed note when not:
tqdm (progress bar; else a plain line every few seconds) and matplotlib (scatter plots).
Image grids need neither: they are written as PNG by a small encoder here (zlib only).
Every file is written to a temporary name in the same folder and renamed over the target,
so a reader never sees a half-written file.
"""
import contextlib
import json
import math
import os
import secrets
import sys
import time
import zlib

import numpy as np

_noted = set()


def note_once(message):
    """Print `message` once per process (used for missing optional packages)."""
    if message not in _noted:
        _noted.add(message)
        print(message, file=sys.stderr)


# ---------------------------------------------------------------------------- atomic writes

@contextlib.contextmanager
def atomic_path(path):
    """`with atomic_path(p) as tmp:` write to `tmp`; on success it is renamed to `p`, on error removed."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    base, ext = os.path.splitext(os.path.basename(path))
    tmp = os.path.join(folder, f".{base}.{secrets.token_hex(4)}.tmp{ext}")  # keeps the extension
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_bytes_atomic(path, data):
    """Write bytes to `path` atomically."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)


def write_text_atomic(path, text):
    """Write UTF-8 text to `path` atomically."""
    write_bytes_atomic(path, text.encode("utf-8"))


def _json_default(obj):
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def write_json_atomic(path, obj):
    """Write `obj` as indented JSON (numpy scalars and arrays become numbers and lists)."""
    write_text_atomic(path, json.dumps(obj, indent=2, default=_json_default) + "\n")


# ---------------------------------------------------------------------------- progress

class Progress:
    """A progress bar over `total` steps showing a description and live values (loss, samples/s).

        bar = Progress(total=steps, desc="train")
        bar.update(1, epoch="1/5", loss=0.03, samples_per_s=12000)
        bar.close()

    Uses tqdm when installed; otherwise prints a plain line at most every `every` seconds (and
    once at the end), after a one-time note that tqdm is missing. disable=True prints nothing.
    """

    def __init__(self, total, desc="", every=2.0, disable=False, file=None):
        self.total, self.desc, self.every, self.disable = int(total), desc, every, disable
        self.file = file or sys.stderr
        self.n, self.values = 0, {}
        self._bar = None
        self._start = self._last = time.perf_counter()
        if disable:
            return
        try:
            from tqdm import tqdm
        except ImportError:
            note_once("note: tqdm is not installed; showing plain progress lines (pip install tqdm)")
        else:
            self._bar = tqdm(total=self.total, desc=desc, file=self.file, dynamic_ncols=True,
                             mininterval=0.5, leave=True)

    def update(self, n=1, **values):
        """Advance by n steps and show `values` (floats are printed with 4 significant digits)."""
        self.n += n
        self.values.update(values)
        if self.disable:
            return
        if self._bar is not None:
            self._bar.set_postfix_str(self._postfix(), refresh=False)
            self._bar.update(n)
            return
        now = time.perf_counter()
        if now - self._last >= self.every or self.n >= self.total:
            self._last = now
            self._print_line(now)

    def _postfix(self):
        return ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                         for k, v in self.values.items())

    def _print_line(self, now):
        pct = 100.0 * self.n / max(self.total, 1)
        print(f"{self.desc} {self.n}/{self.total} ({pct:.0f}%) {now - self._start:.1f}s "
              f"{self._postfix()}", file=self.file, flush=True)

    def close(self):
        """Finish the bar (prints the final state of a plain bar if it was not just printed)."""
        if self.disable:
            return
        if self._bar is not None:
            self._bar.close()
        elif self._last < time.perf_counter() - 1e-3 and self.n < self.total:
            self._print_line(time.perf_counter())

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


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
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return path


def format_table(header, rows):
    """A Markdown table as text; floats are printed with 4 decimals."""
    def cell(v):
        if isinstance(v, float):
            return "n/a" if math.isnan(v) else f"{v:.4f}"
        return str(v)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)
