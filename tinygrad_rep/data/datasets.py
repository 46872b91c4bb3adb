"""Image data sets as numpy arrays: the shipped UCI digits and Fashion-MNIST from IDX files.

`load(name, path=None)` returns ``(x_train, y_train, x_test, y_test)``: float32 pixels scaled
to [0, 1] and flattened to (N, d), int64 labels. Nothing is ever downloaded here.
"""

from __future__ import annotations

import gzip
import math
import os
import zlib
from pathlib import Path

import numpy as np

from ..output import NotARegularFileError, open_regular_file, write_bytes_atomic

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
_MAX_IDX_BYTES = 1 << 36  # 64 GiB: far above any image data set, far below an overflowing header


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
    _check_values(path, images, 0, 16, "pixels")
    _check_values(path, labels, 0, 9, "labels", integral=True)
    return images.reshape(len(images), 64), labels


def _check_values(path, arr, low, high, what, integral=False):
    """Refuse NaN, infinities, values outside [low, high] and (for labels) fractions, naming the
    file and the first bad entry: such data would otherwise be scaled or cast without a word."""
    arr = np.asarray(arr)
    if arr.dtype.kind not in "biuf":
        raise ValueError(f"{path}: {what} must be numbers, got dtype {arr.dtype}")
    flat = arr.reshape(-1)
    bad = ~((flat >= low) & (flat <= high))  # NaN fails both comparisons
    if integral and flat.dtype.kind == "f":
        bad |= np.isfinite(flat) & (flat != np.round(flat))
    if bad.any():
        i = int(np.argmax(bad))
        index = tuple(int(j) for j in np.unravel_index(i, arr.shape)) if arr.ndim > 1 else i
        kind = "integers " if integral else ""
        raise ValueError(f"{path}: {what} must be {kind}in {low}..{high}; entry {index} is {flat[i].item()!r}")


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
        if key.startswith("x"):
            _check_values(file, arr, 0, 255, "pixels")
        else:
            _check_values(file, arr, 0, 9, "labels", integral=True)
        arrays[key] = (file, arr)
    out = []
    for split in ("train", "test"):
        (xfile, x), (yfile, y) = arrays["x_" + split], arrays["y_" + split]
        if len(x) != len(y):
            raise ValueError(f"{xfile} has {len(x)} images but {yfile} has {len(y)} labels")
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

    Checks the magic number, the type code, and that the payload length matches the dimensions
    (whose product is computed exactly, so a header whose sizes overflow is refused, and compared
    before the payload is read); any mismatch raises ValueError naming the file and what is wrong.
    Anything but a regular file (a FIFO, a device) is refused without reading it.
    """
    path = Path(path)
    try:
        f = open_regular_file(path, "IDX file")
    except NotARegularFileError as e:
        raise ValueError(str(e)) from None
    with f:
        if path.suffix == ".gz":
            stream = gzip.GzipFile(fileobj=f, mode="rb")
            size = None  # known only once decompressed
        else:
            stream, size = f, os.fstat(f.fileno()).st_size
        try:
            return _read_idx_stream(path, stream, size)
        except (EOFError, OSError, zlib.error) as e:
            if isinstance(e, (FileNotFoundError, PermissionError)):
                raise
            raise ValueError(f"{path}: corrupt or truncated gzip data ({e})") from e


def _read_idx_stream(path, stream, size):
    raw = stream.read(4)
    if len(raw) < 4:
        raise ValueError(f"{path}: too short for an IDX header ({len(raw)} bytes)")
    zero, code, ndim = int.from_bytes(raw[:2], "big"), raw[2], raw[3]
    if zero != 0 or code not in _IDX_DTYPES or ndim == 0:
        raise ValueError(f"{path}: bad IDX magic number 0x{raw[:4].hex()} "
                         "(expected 0x0000 then a type code 08/09/0B/0C/0D/0E and ndim >= 1)")
    dims = stream.read(4 * ndim)
    header = 4 + 4 * ndim
    if len(dims) < 4 * ndim:
        raise ValueError(f"{path}: truncated IDX header (needs {header} bytes, has {4 + len(dims)})")
    shape = tuple(int(d) for d in np.frombuffer(dims, dtype=">u4"))
    dtype = np.dtype(_IDX_DTYPES[code])
    payload = math.prod(shape) * dtype.itemsize  # exact: Python integers do not overflow
    if payload > _MAX_IDX_BYTES:
        raise ValueError(f"{path}: dimensions {shape} describe {payload} bytes of data, more than "
                         f"any IDX data set ({_MAX_IDX_BYTES} bytes): a damaged header")
    expected = header + payload
    if size is not None and size != expected:
        what = "truncated" if size < expected else "has trailing bytes"
        raise ValueError(f"{path}: {what}: dimensions {shape} need {expected} bytes, file has {size}")
    data = stream.read(payload + 1)  # one more than needed shows trailing bytes
    if len(data) != payload:
        what = "truncated" if len(data) < payload else "has trailing bytes"
        have = f"{header + len(data)}" if len(data) <= payload else f"more than {expected}"
        raise ValueError(f"{path}: {what}: dimensions {shape} need {expected} bytes, file has {have}")
    arr = np.frombuffer(data, dtype=dtype).reshape(shape)
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
