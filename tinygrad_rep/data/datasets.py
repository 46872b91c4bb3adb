"""Image data sets as numpy arrays: the shipped UCI digits and Fashion-MNIST from IDX files.

`load(name, path=None)` returns ``(x_train, y_train, x_test, y_test)``: float32 pixels scaled
to [0, 1] and flattened to (N, d), int64 labels. Nothing is ever downloaded here.
"""

from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path

import numpy as np

from ..output import write_bytes_atomic

DIGITS_FILE = Path(__file__).with_name("digits.npz")
FASHION_ENV = "TINYGRAD_REP_FASHION_MNIST"
FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_FILES = {  # the names Debian's dataset-fashion-mnist installs (also upstream's names)
    "x_train": "train-images-idx3-ubyte.gz",
    "y_train": "train-labels-idx1-ubyte.gz",
    "x_test": "t10k-images-idx3-ubyte.gz",
    "y_test": "t10k-labels-idx1-ubyte.gz",
}
FASHION_HINT = (
    "install it with `apt-get install dataset-fashion-mnist` (or `make data`), "
    f"or pass path=<folder> / set {FASHION_ENV}=<folder>"
)

# IDX type codes (third byte of the magic number) -> big-endian numpy dtype.
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def load(name: str, path: str | os.PathLike | None = None):
    """Load a data set by name: "digits" or "fashion-mnist" (see `KNOWN`)."""
    key = str(name).strip().lower().replace("_", "-")
    if key == "fashionmnist":
        key = "fashion-mnist"
    if key not in KNOWN:
        raise ValueError(f"unknown data set {name!r}; known names: {', '.join(sorted(KNOWN))}")
    return KNOWN[key](path)


def load_digits(path=None):
    """UCI 8x8 digits: 1,437 train / 360 test, stratified by label, fixed seed 0."""
    images, labels = _read_digits(Path(path) if path is not None else DIGITS_FILE)
    rng = np.random.default_rng(0)
    perm = rng.permutation(len(labels))
    by_class = perm[np.argsort(labels[perm], kind="stable")]  # random order within each class
    test_mask = np.zeros(len(labels), dtype=bool)
    test_mask[by_class[::5]] = True  # every 5th of each class block: 360 of 1,797
    train_idx = rng.permutation(np.flatnonzero(~test_mask))
    test_idx = rng.permutation(np.flatnonzero(test_mask))
    x = images.astype(np.float32) / np.float32(16.0)
    y = labels.astype(np.int64)
    return x[train_idx], y[train_idx], x[test_idx], y[test_idx]


def _read_digits(path: Path):
    if not path.exists():
        raise FileNotFoundError(f"digits file not found: {path}")
    if path.suffix == ".npz":
        with np.load(path) as f:
            images, labels = f["images"], f["labels"]
    else:  # scikit-learn's digits.csv(.gz): 64 pixels then the label on each row
        rows = np.loadtxt(path, delimiter=",", dtype=np.int64, ndmin=2)
        images, labels = rows[:, :64], rows[:, 64]
    if images.ndim != 2 or images.shape[1] != 64 or len(images) != len(labels):
        raise ValueError(f"{path}: expected (N, 64) pixels and N labels, got "
                         f"{images.shape} and {labels.shape}")
    if images.min() < 0 or images.max() > 16 or labels.min() < 0 or labels.max() > 9:
        raise ValueError(f"{path}: pixels must be in 0..16 and labels in 0..9")
    return images.reshape(len(images), 64), labels


def load_fashion_mnist(path=None):
    """Fashion-MNIST from the four IDX gzip files: 60,000 train / 10,000 test, 28x28."""
    folder = fashion_mnist_dir(path)
    arrays = {}
    for key, fname in FASHION_FILES.items():
        file = _find(folder, fname)
        arr = read_idx(file)
        if key.startswith("x") and (arr.ndim != 3 or arr.shape[1:] != (28, 28)):
            raise ValueError(f"{file}: expected (N, 28, 28) images, got shape {arr.shape}")
        if key.startswith("y") and arr.ndim != 1:
            raise ValueError(f"{file}: expected (N,) labels, got shape {arr.shape}")
        arrays[key] = (file, arr)
    out = []
    for split in ("train", "test"):
        (xfile, x), (yfile, y) = arrays["x_" + split], arrays["y_" + split]
        if len(x) != len(y):
            raise ValueError(f"{xfile} has {len(x)} images but {yfile} has {len(y)} labels")
        if y.size and (y.min() < 0 or y.max() > 9):
            raise ValueError(f"{yfile}: labels must be 0..9, found {y.min()}..{y.max()}")
        out += [x.reshape(len(x), -1).astype(np.float32) / np.float32(255.0), y.astype(np.int64)]
    return tuple(out)


def fashion_mnist_dir(path=None) -> Path:
    """The folder to read: `path`, else $TINYGRAD_REP_FASHION_MNIST, else Debian's folder."""
    if path is not None:
        folder, origin = Path(path), "path="
    elif os.environ.get(FASHION_ENV):
        folder, origin = Path(os.environ[FASHION_ENV]), f"${FASHION_ENV}"
    else:
        folder, origin = FASHION_DIR, "the default folder"
    missing = [f for f in FASHION_FILES.values() if _find(folder, f, must=False) is None]
    if missing:
        raise FileNotFoundError(f"Fashion-MNIST not found in {folder} ({origin}): missing "
                                f"{', '.join(missing)}; {FASHION_HINT}")
    return folder


def _find(folder: Path, fname: str, must=True):
    """`fname` in `folder`, or the same file without its .gz ending."""
    for candidate in (folder / fname, folder / fname.removesuffix(".gz")):
        if candidate.is_file():
            return candidate
    if must:
        raise FileNotFoundError(f"{folder / fname} not found; {FASHION_HINT}")
    return None


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Parse one IDX file (gzip-compressed if its name ends in .gz) into a native-endian array.

    Checks the magic number, the type code, and that the payload length matches the dimensions;
    any mismatch raises ValueError naming the file and what is wrong.
    """
    path = Path(path)
    raw = path.read_bytes()
    if path.suffix == ".gz":
        try:
            raw = gzip.decompress(raw)
        except (EOFError, OSError, zlib.error) as e:
            raise ValueError(f"{path}: corrupt or truncated gzip data ({e})") from e
    if len(raw) < 4:
        raise ValueError(f"{path}: too short for an IDX header ({len(raw)} bytes)")
    zero, code, ndim = int.from_bytes(raw[:2], "big"), raw[2], raw[3]
    if zero != 0 or code not in _IDX_DTYPES or ndim == 0:
        raise ValueError(f"{path}: bad IDX magic number 0x{raw[:4].hex()} "
                         "(expected 0x0000 then a type code 08/09/0B/0C/0D/0E and ndim >= 1)")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{path}: truncated IDX header (needs {header} bytes, has {len(raw)})")
    shape = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    dtype = np.dtype(_IDX_DTYPES[code])
    expected = header + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(raw) != expected:
        what = "truncated" if len(raw) < expected else "has trailing bytes"
        raise ValueError(f"{path}: {what}: dimensions {shape} need {expected} bytes, file has {len(raw)}")
    arr = np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)
    return arr.astype(dtype.newbyteorder("="), copy=False)


def write_idx(path: str | os.PathLike, array: np.ndarray) -> None:
    """Write `array` as an IDX file (gzip if the name ends in .gz), atomically."""
    array = np.asarray(array)
    codes = {np.dtype(v).newbyteorder("="): k for k, v in _IDX_DTYPES.items()}
    code = codes.get(array.dtype.newbyteorder("="))
    if code is None:
        raise ValueError(f"dtype {array.dtype} has no IDX type code")
    if array.ndim == 0:
        raise ValueError("IDX needs at least one dimension")
    payload = (bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
               + array.astype(_IDX_DTYPES[code]).tobytes())
    path = Path(path)
    write_bytes_atomic(path, gzip.compress(payload) if path.suffix == ".gz" else payload)


KNOWN = {"digits": load_digits, "fashion-mnist": load_fashion_mnist}
# Image shape (H, W) of each data set's rows, and class names where the labels are not digits.
IMAGE_SHAPES = {"digits": (8, 8), "fashion-mnist": (28, 28)}
CLASS_NAMES = {"fashion-mnist": ["T-shirt", "Trouser", "Pullover", "Dress", "Coat", "Sandal",
                                 "Shirt", "Sneaker", "Bag", "Boot"]}
