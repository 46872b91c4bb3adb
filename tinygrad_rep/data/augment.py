"""Image augmentations for contrastive learning: numpy only, batched, seeded, one function each.

    from tinygrad_rep.data import augment
    rng = np.random.default_rng(0)
    views = augment.random_resized_crop(x, rng, shape=(28, 28))       # x: (N, 784) or (N, 28, 28)
    aug = augment.Augment((28, 28), crop_scale=(0.5, 1.0), flip=0.5, noise_std=0.05, erase_p=0.25)
    v1, v2 = aug(x, rng), aug(x, rng)                                   # two views of every image

Conventions shared by every function:
- `x` is a batch of grayscale images, (N, H, W), or flattened rows (N, H*W) together with
  `shape=(H, W)`; the result has the same layout as `x` and dtype float32 (float64 stays float64).
  The input is never modified.
- Randomness comes only from `rng` (a `np.random.Generator`; an int seed is accepted too), drawn
  once per batch with vectorized calls: the same seed gives the same views, and there is no Python
  loop over the images.
- Pixel values are assumed to lie in [0, 1] (what `tr.data.load` returns); functions that could
  leave that range (noise) clip back into it by default.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["random_resized_crop", "random_shift", "random_flip", "gaussian_noise", "random_erasing",
           "random_intensity", "Augment", "preset", "view_grid"]


# ----------------------------------------------------------------------------------------- helpers

def _rng(rng):
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or isinstance(rng, (int, np.integer)):
        return np.random.default_rng(rng)
    raise TypeError(f"rng must be a numpy Generator or an int seed, got {type(rng).__name__}")


def _images(x, shape, fn):
    """(N, H, W) float array of x, and a function putting a result back into x's layout."""
    x = np.asarray(x)
    if x.dtype.kind != "f":
        x = x.astype(np.float32)
    elif x.dtype not in (np.float32, np.float64):
        x = x.astype(np.float32)
    if x.ndim == 3:
        if shape is not None and tuple(shape) != x.shape[1:]:
            raise ValueError(f"{fn}: images have shape {x.shape[1:]} but shape={tuple(shape)} was given")
        return x, lambda y: y
    if x.ndim == 2:
        if shape is None:
            side = math.isqrt(x.shape[1])
            if side * side != x.shape[1]:
                raise ValueError(f"{fn}: rows of length {x.shape[1]} are not square images; pass shape=(H, W)")
            shape = (side, side)
        h, w = (int(s) for s in shape)
        if h * w != x.shape[1]:
            raise ValueError(f"{fn}: shape={tuple(shape)} has {h * w} pixels but rows have {x.shape[1]}")
        n = x.shape[0]
        return x.reshape(n, h, w), lambda y: y.reshape(n, h * w)
    raise ValueError(f"{fn}: expected images (N, H, W) or flattened rows (N, H*W), got shape {x.shape}")


def _pair(value, name, fn, lo=None, hi=None):
    try:
        a, b = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"{fn}: {name} must be a pair (low, high), got {value!r}") from None
    if not a <= b or (lo is not None and a < lo) or (hi is not None and b > hi):
        bounds = f" within [{lo}, {hi}]" if lo is not None or hi is not None else ""
        raise ValueError(f"{fn}: {name} must satisfy low <= high{bounds}, got {value!r}")
    return a, b


def _prob(p, name, fn):
    p = float(p)
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"{fn}: {name} must be a probability in [0, 1], got {p}")
    return p


def _boxes(rng, n, h, w, scale, ratio):
    """Per-image boxes (top, left, height, width) in continuous pixel units: area fraction drawn
    uniformly from `scale`, aspect ratio w/h log-uniformly from `ratio`, clipped to the image,
    position uniform over the places the box fits."""
    area = rng.uniform(scale[0], scale[1], n) * (h * w)
    log_r = rng.uniform(math.log(ratio[0]), math.log(ratio[1]), n)
    r = np.exp(log_r)
    bh = np.clip(np.sqrt(area / r), 1.0, h)
    bw = np.clip(np.sqrt(area * r), 1.0, w)
    top = rng.uniform(0.0, 1.0, n) * (h - bh)
    left = rng.uniform(0.0, 1.0, n) * (w - bw)
    return top, left, bh, bw


# ------------------------------------------------------------------------------------ augmentations

def random_resized_crop(x, rng, scale=(0.5, 1.0), ratio=(3 / 4, 4 / 3), shape=None):
    """Crop a random box from each image and resize it back to full size (bilinear).

    scale: range of the box's area as a fraction of the image (drawn uniformly per image);
    ratio: range of the box's aspect ratio width/height (drawn log-uniformly);
    the box is placed uniformly where it fits. Resampling is bilinear with pixel centres aligned
    (a box covering the whole image returns the image unchanged).
    """
    fn = "random_resized_crop"
    imgs, back = _images(x, shape, fn)
    scale = _pair(scale, "scale", fn, 0.0, 1.0)
    ratio = _pair(ratio, "ratio", fn, 1e-6)
    if scale[1] <= 0:
        raise ValueError(f"{fn}: scale must allow a positive area, got {scale}")
    rng = _rng(rng)
    n, h, w = imgs.shape
    top, left, bh, bw = _boxes(rng, n, h, w, scale, ratio)
    # separable bilinear resampling: out = Ry @ img @ Rx^T with one (out, in) matrix per image
    ry = _interp_matrix(top, bh, h, imgs.dtype)
    rx = _interp_matrix(left, bw, w, imgs.dtype)
    return back(np.matmul(np.matmul(ry, imgs), rx.transpose(0, 2, 1)))


def _interp_matrix(start, length, size, dtype):
    """(n, size, size) linear-interpolation matrices: output pixel centre i samples the input at
    start + (i + 0.5) * length / size - 0.5 (clamped to the image), two weights per row."""
    n = start.shape[0]
    pos = start[:, None] + (np.arange(size) + 0.5)[None, :] * (length / size)[:, None] - 0.5
    pos = np.clip(pos, 0, size - 1)
    i0 = np.floor(pos).astype(np.intp)
    i1 = np.minimum(i0 + 1, size - 1)
    frac = (pos - i0).astype(dtype)
    m = np.zeros((n, size, size), dtype=dtype)
    b, r = np.arange(n)[:, None], np.arange(size)[None, :]
    m[b, r, i0] = 1 - frac
    m[b, r, i1] += frac  # i1 == i0 at the last pixel: the weights still add up to 1
    return m


def random_shift(x, rng, max_shift=2, fill=0.0, shape=None):
    """Translate each image by a whole number of pixels, dy and dx drawn uniformly from
    [-max_shift, max_shift]; pixels shifted in from outside take the value `fill`."""
    fn = "random_shift"
    imgs, back = _images(x, shape, fn)
    if int(max_shift) != max_shift or max_shift < 0:
        raise ValueError(f"{fn}: max_shift must be a non-negative integer, got {max_shift!r}")
    m = int(max_shift)
    rng = _rng(rng)
    n, h, w = imgs.shape
    dy = rng.integers(-m, m + 1, n)
    dx = rng.integers(-m, m + 1, n)
    fill = imgs.dtype.type(fill)
    # out = Sy @ (img - fill) @ Sx^T + fill with 0/1 shift matrices: pixels from outside get `fill`
    sy, sx = _shift_matrix(dy, h, imgs.dtype), _shift_matrix(dx, w, imgs.dtype)
    out = np.matmul(np.matmul(sy, imgs - fill if fill else imgs), sx.transpose(0, 2, 1))
    return back(out + fill if fill else out)


def _shift_matrix(d, size, dtype):
    """(n, size, size) matrices with m[k, i, i - d[k]] = 1 where 0 <= i - d[k] < size."""
    n = d.shape[0]
    src = np.arange(size)[None, :] - d[:, None]
    ok = (src >= 0) & (src < size)
    m = np.zeros((n, size, size), dtype=dtype)
    b, r = np.nonzero(ok)
    m[b, r, src[b, r]] = 1
    return m


def random_flip(x, rng, p=0.5, shape=None):
    """Mirror each image left-right with probability p (a horizontal flip)."""
    fn = "random_flip"
    imgs, back = _images(x, shape, fn)
    p = _prob(p, "p", fn)
    flip = _rng(rng).random(imgs.shape[0]) < p
    return back(np.where(flip[:, None, None], imgs[:, :, ::-1], imgs))


def gaussian_noise(x, rng, std=0.1, clip=(0.0, 1.0), shape=None):
    """Add N(0, std^2) noise to every pixel independently; clip=(lo, hi) clips the result
    (None leaves it unclipped)."""
    fn = "gaussian_noise"
    imgs, back = _images(x, shape, fn)
    if std < 0:
        raise ValueError(f"{fn}: std must be non-negative, got {std}")
    out = imgs + _rng(rng).standard_normal(imgs.shape, dtype=imgs.dtype) * imgs.dtype.type(std)
    if clip is not None:
        lo, hi = _pair(clip, "clip", fn)
        np.clip(out, lo, hi, out=out)
    return back(out)


def random_erasing(x, rng, p=0.5, scale=(0.02, 0.25), ratio=(0.3, 3.3), value=0.0, shape=None):
    """Random erasing (cutout): with probability p per image, set one random box to `value`.

    scale: range of the box's area as a fraction of the image (uniform); ratio: range of its
    aspect ratio width/height (log-uniform); the box lies inside the image.
    value: the fill, a number, or "random" for uniform [0, 1) noise inside the box.
    """
    fn = "random_erasing"
    imgs, back = _images(x, shape, fn)
    p = _prob(p, "p", fn)
    scale = _pair(scale, "scale", fn, 0.0, 1.0)
    ratio = _pair(ratio, "ratio", fn, 1e-6)
    rng = _rng(rng)
    n, h, w = imgs.shape
    top, left, bh, bw = _boxes(rng, n, h, w, scale, ratio)
    top, left = np.floor(top).astype(np.intp), np.floor(left).astype(np.intp)
    bh, bw = np.maximum(np.round(bh), 1).astype(np.intp), np.maximum(np.round(bw), 1).astype(np.intp)
    hit = rng.random(n) < p
    rows = (np.arange(h)[None, :] >= top[:, None]) & (np.arange(h)[None, :] < (top + bh)[:, None])
    cols = (np.arange(w)[None, :] >= left[:, None]) & (np.arange(w)[None, :] < (left + bw)[:, None])
    mask = rows[:, :, None] & cols[:, None, :] & hit[:, None, None]
    if isinstance(value, str):
        if value != "random":
            raise ValueError(f"{fn}: value must be a number or 'random', got {value!r}")
        fill = rng.random(imgs.shape).astype(imgs.dtype)
    else:
        fill = imgs.dtype.type(value)
    return back(np.where(mask, fill, imgs))


def random_intensity(x, rng, brightness=0.2, contrast=0.2, p=0.8, shape=None):
    """Grayscale colour jitter: with probability p per image, scale the contrast about the image
    mean by a factor in [1 - contrast, 1 + contrast], then add an offset in [-brightness,
    brightness] (both uniform); the result is clipped to [0, 1]."""
    fn = "random_intensity"
    imgs, back = _images(x, shape, fn)
    p = _prob(p, "p", fn)
    if brightness < 0 or contrast < 0:
        raise ValueError(f"{fn}: brightness and contrast must be non-negative, got {brightness}, {contrast}")
    rng = _rng(rng)
    n = imgs.shape[0]
    hit = (rng.random(n) < p)[:, None, None]
    c = 1 + rng.uniform(-contrast, contrast, n).astype(imgs.dtype)[:, None, None]
    b = rng.uniform(-brightness, brightness, n).astype(imgs.dtype)[:, None, None]
    mean = imgs.mean(axis=(1, 2), keepdims=True)
    out = (imgs - mean) * c + mean + b
    np.clip(out, 0, 1, out=out)
    return back(np.where(hit, out, imgs))  # images not hit are returned exactly


# ---------------------------------------------------------------------------------- a pipeline

class Augment:
    """The SimCLR view generator: a fixed pipeline of the augmentations above, each optional.

    Order: random_resized_crop (crop_scale; None skips it) -> random_shift (max_shift; 0 skips)
    -> random_flip (flip = probability; 0 skips) -> random_intensity (intensity = strength used
    for both brightness and contrast, applied with probability 0.8; 0 skips) -> gaussian_noise
    (noise_std; 0 skips) -> random_erasing (erase_p; 0 skips, boxes of 2%-25% of the image).

    `aug(x, rng)` returns one augmented view of every image in x (same layout as x); call it twice
    for SimCLR's two views. `to_dict()` / `Augment.from_dict(d)` store the settings (model.json).
    """

    FIELDS = ("shape", "crop_scale", "crop_ratio", "max_shift", "flip", "intensity", "noise_std", "erase_p")

    def __init__(self, shape, crop_scale=(0.5, 1.0), crop_ratio=(3 / 4, 4 / 3), max_shift=0, flip=0.5,
                 intensity=0.0, noise_std=0.0, erase_p=0.0):
        self.shape = tuple(int(s) for s in shape)
        if len(self.shape) != 2 or min(self.shape) <= 0:
            raise ValueError(f"Augment: shape must be (H, W) with positive sizes, got {shape!r}")
        self.crop_scale = None if crop_scale is None else _pair(crop_scale, "crop_scale", "Augment", 0.0, 1.0)
        self.crop_ratio = _pair(crop_ratio, "crop_ratio", "Augment", 1e-6)
        self.max_shift = int(max_shift)
        self.flip = _prob(flip, "flip", "Augment")
        self.intensity = float(intensity)
        self.noise_std = float(noise_std)
        self.erase_p = _prob(erase_p, "erase_p", "Augment")
        if self.max_shift < 0 or self.intensity < 0 or self.noise_std < 0:
            raise ValueError("Augment: max_shift, intensity and noise_std must be non-negative")

    def __call__(self, x, rng):
        """One augmented view of every image in x ((N, H*W) rows or (N, H, W) images)."""
        rng = _rng(rng)
        imgs, back = _images(x, self.shape, "Augment")
        if self.crop_scale is not None:
            imgs = random_resized_crop(imgs, rng, self.crop_scale, self.crop_ratio)
        if self.max_shift:
            imgs = random_shift(imgs, rng, self.max_shift)
        if self.flip:
            imgs = random_flip(imgs, rng, self.flip)
        if self.intensity:
            imgs = random_intensity(imgs, rng, self.intensity, self.intensity)
        if self.noise_std:
            imgs = gaussian_noise(imgs, rng, self.noise_std)
        if self.erase_p:
            imgs = random_erasing(imgs, rng, self.erase_p)
        return back(imgs)

    def to_dict(self):
        """The settings as plain JSON-able values."""
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in
                ((f, getattr(self, f)) for f in self.FIELDS)}

    @classmethod
    def from_dict(cls, d):
        """An Augment from `to_dict()`'s output (unknown keys raise ValueError)."""
        unknown = set(d) - set(cls.FIELDS)
        if unknown:
            raise ValueError(f"Augment.from_dict: unknown settings {sorted(unknown)}")
        return cls(**d)

    def __repr__(self):
        return "Augment(" + ", ".join(f"{k}={v!r}" for k, v in self.to_dict().items()) + ")"


def preset(data_name, shape):
    """The default view generator for a data set of images of `shape`.

    digits (8x8): crops of 50-100% of the area and small intensity changes; no flip (a mirrored
    digit is another symbol). fashion-mnist (28x28): crops of 35-100%, horizontal flips
    (garments are roughly mirror-symmetric), intensity jitter, light noise and random erasing.
    """
    key = str(data_name).lower().replace("_", "-")
    if key == "digits":
        return Augment(shape, crop_scale=(0.5, 1.0), flip=0.0, intensity=0.2, noise_std=0.05, erase_p=0.0)
    if key in ("fashion-mnist", "fashionmnist"):
        return Augment(shape, crop_scale=(0.35, 1.0), flip=0.5, intensity=0.3, noise_std=0.05, erase_p=0.25)
    return Augment(shape)


def view_grid(x, augment, rng, views=6):
    """A (n, 1 + views, H, W) array: each image of x followed by `views` augmented views of it
    (for a figure of images beside their views)."""
    rng = _rng(rng)
    imgs, _ = _images(x, augment.shape, "view_grid")
    cols = [imgs] + [augment(imgs, rng) for _ in range(int(views))]
    return np.stack(cols, axis=1)
