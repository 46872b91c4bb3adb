"""Trained models: `load(folder)` reads back any model that `tinygrad-rep train ...` saved.

    import tinygrad_rep as tr
    ae = tr.models.load("runs/ae")        # model.json says which kind it is
    codes = ae.encode(x_test)             # numpy in, numpy out

A saved model is a folder with `model.json` ({"kind": ..., "config": {...}, ...}) and its
weights (`weights.npz`, a state dict written by tr.save). `load` reads the kind and hands the
folder to that model module's `load_model(folder)`. Submodules are imported only when needed,
so importing this package costs nothing.
"""
import importlib
import json
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
    """The parsed model.json of a saved model folder (FileNotFoundError / ValueError naming it)."""
    path = Path(folder) / META_FILE
    if not Path(folder).is_dir():
        raise FileNotFoundError(f"model folder not found: {folder}")
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: not a folder written by `tinygrad-rep train`")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(meta, dict) or "kind" not in meta:
        raise ValueError(f"{path}: has no \"kind\" entry")
    return meta


def load(folder):
    """Load the model saved in `folder`, whatever its kind; returns that kind's model object."""
    kind = read_meta(folder)["kind"]
    if kind not in KINDS:
        raise ValueError(f"{Path(folder) / META_FILE}: unknown model kind {kind!r}; "
                         f"known kinds: {', '.join(sorted(KINDS))}")
    return importlib.import_module(KINDS[kind]).load_model(folder)


def save_model(folder, kind, config, state_dict, **extra):
    """Write a model folder: weights.npz (state dict, atomic) then model.json (atomic).

    config: JSON-serialisable constructor arguments; extra: more top-level model.json entries.
    model.json is written last, so a folder with a model.json always has its weights.
    """
    from ..serialization import save
    from ..output import write_json_atomic
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    save(state_dict, folder / WEIGHTS_FILE)
    meta = {"kind": kind, "config": config, "weights": WEIGHTS_FILE, **extra}
    write_json_atomic(folder / META_FILE, meta)
    return folder


def load_module(folder, kind, build):
    """Rebuild a Module-based model saved by `save_model`: check its kind, build it with
    `build(**config)`, load weights.npz into it, and return it in eval mode."""
    import os
    from ..serialization import load as load_arrays
    meta = read_meta(folder)
    if meta["kind"] != kind:
        raise ValueError(f"{folder}: model kind is {meta['kind']!r}, not {kind!r}")
    model = build(**meta["config"])
    model.load_state_dict(load_arrays(os.path.join(folder, meta.get("weights", "weights.npz"))))
    model.eval()
    return model
