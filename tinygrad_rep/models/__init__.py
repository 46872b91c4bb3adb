"""Trained models: `load(folder)` reads back any model that `tinygrad-rep train ...` saved.

    import tinygrad_rep as tr
    ae = tr.models.load("runs/ae")        # model.json says which kind it is
    codes = ae.encode(x_test)             # numpy in, numpy out

A saved model is a folder with `model.json` ({"kind": ..., "config": {...}, ...}), its
weights (`weights.npz`, a state dict as tr.save writes it) and `manifest.json` (sizes and SHA-256
of the model's files: the folder is written and read as one unit, see models/folder.py). `load`
reads the kind and hands the checked folder to that model module's `load_model(folder)`.
Submodules are imported only when needed, so importing this package costs nothing.
"""
import importlib
from pathlib import Path

# kind (as written in model.json) -> module whose load_model(folder) rebuilds the model
KINDS = {
    "autoencoder": "tinygrad_rep.models.autoencoder",
    "contrastive": "tinygrad_rep.models.contrastive",
    "word2vec": "tinygrad_rep.models.word2vec",
}

META_FILE = "model.json"
WEIGHTS_FILE = "weights.npz"


def read_meta(folder):
    """The parsed model.json of a saved model folder, after the folder was checked as one unit
    (models/folder.py): FileNotFoundError naming a missing folder or model.json, ModelFolderError
    (a ValueError) naming the file and key of anything malformed, mixed or changed."""
    return _open(folder).meta


def _open(folder):
    from .folder import ModelFolder
    if isinstance(folder, ModelFolder):
        return folder
    if not Path(folder).is_dir():
        raise FileNotFoundError(f"model folder not found: {folder}")
    return ModelFolder(folder)


def load(folder):
    """Load the model saved in `folder`, whatever its kind; returns that kind's model object.
    The folder is checked as one unit first: a mixed, changed or malformed folder is refused
    with an error naming the file."""
    from .folder import ModelFolderError
    mf = _open(folder)
    kind = mf.meta["kind"]
    if kind not in KINDS:
        raise ModelFolderError(f"{mf.meta_path}: unknown model kind {kind!r}; "
                               f"known kinds: {', '.join(sorted(KINDS))}")
    return importlib.import_module(KINDS[kind]).load_model(mf)


def save_model(folder, kind, config, state_dict, files=None, **extra):
    """Write a model folder as one unit (models/folder.py): weights.npz (the state dict), model.json
    and any further `files` (name -> bytes, str or writer function, see folder.write_files).

    config: JSON-serialisable constructor arguments; extra: more top-level model.json entries.
    After any interruption the folder loads as the old model or the new one, never a mix.
    """
    from ..output import json_text
    from ..serialization import write_state
    from .folder import write_files
    meta = {"kind": kind, "config": config, "weights": WEIGHTS_FILE, **extra}
    content = {**(files or {}), WEIGHTS_FILE: lambda f: write_state(f, state_dict), META_FILE: json_text(meta)}
    write_files(folder, content)
    return Path(folder)


def read_weights(mf, key="weights", default=WEIGHTS_FILE):
    """The state dict named by model.json's `key` in the open ModelFolder `mf` (checked to be a
    file of the folder, read from the verified file)."""
    from ..serialization import read_state
    name = mf.name(key, default)
    with mf.open(name) as f:
        return read_state(f, mf.path(name))


def check_sizes(mf, config, arrays, skip=("seed",)):
    """Refuse absurd sizes in model.json's config before a model is built from it: every integer
    (or list of integers) of `config` except those in `skip` must be at most the number of values
    the weights hold (a real model has at least as many weights as any of its widths), and a list
    no longer than the number of arrays. ModelFolderError names model.json and the key."""
    from .folder import ModelFolderError
    total = sum(int(a.size) for a in arrays.values())
    for key, value in config.items():
        if key in skip:
            continue
        values = value if isinstance(value, list) else [value]
        if isinstance(value, list) and len(value) > max(len(arrays), 1):
            raise ModelFolderError(f"{mf.meta_path}: key 'config.{key}' lists {len(value)} sizes, more than "
                                   f"the {len(arrays)} arrays of the weights")
        for v in values:
            if isinstance(v, int) and not isinstance(v, bool) and v > max(total, 1):
                raise ModelFolderError(f"{mf.meta_path}: key 'config.{key}' is {v}, more than the {total} values "
                                       f"of the weights: refusing to build a model of that size")


def load_module(folder, kind, build):
    """Rebuild a Module-based model saved by `save_model`: check its kind and config, build it
    with `build(**config)`, load weights.npz into it, and return it in eval mode."""
    from .folder import ModelFolderError, field
    mf = _open(folder)
    meta = mf.meta
    if meta["kind"] != kind:
        raise ModelFolderError(f"{mf.meta_path}: model kind is {meta['kind']!r}, not {kind!r}")
    config = field(meta, "config", dict, mf.meta_path)
    if config.get("dtype", "float32") not in ("float32", "float64"):
        raise ModelFolderError(f"{mf.meta_path}: key 'config.dtype' must be \"float32\" or \"float64\", "
                               f"got {config['dtype']!r}")
    arrays = read_weights(mf)
    check_sizes(mf, config, arrays)
    try:
        model = build(**config)
    except (TypeError, ValueError) as e:
        raise ModelFolderError(f"{mf.meta_path}: key 'config' does not describe a {kind} model ({e})") from None
    try:
        model.load_state_dict(arrays)
    except (KeyError, ValueError) as e:
        raise ModelFolderError(f"{mf.path(mf.name('weights', WEIGHTS_FILE))}: does not fit the model "
                               f"model.json describes ({e})") from None
    model.eval()
    return model
