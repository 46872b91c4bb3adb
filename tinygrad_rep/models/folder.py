"""A model folder as one unit: its files (model.json, weights.npz, vocab.txt, ...) are written so that
after any interruption the folder loads as wholly the old model or wholly the new one, and a mixed or
changed folder is refused with an error naming the file.

How a save works (`write_files`):
1. each new file is written to a hidden staging file beside its target (".<name>.<random>.stage"),
   fsync'ed; nothing the reader uses has changed yet;
2. `manifest.json` is written atomically: every file's name, size, SHA-256 and staging name. This
   rename is the commit point: before it the folder is the old model, after it the new one;
3. the staging files are renamed over their targets, one by one.
A reader (`ModelFolder`) takes each file from its target if that matches the manifest, else from its
staging file (a save stopped during step 3), and refuses the folder if neither matches. The next save
first finishes such a stopped step 3, then deletes staging files no manifest refers to (those of a save
stopped before its commit), so leftovers never accumulate. Saves of one folder are serialised by a lock
on the folder. Folders written before manifests existed are still read, without checksums.

model.json is treated as input: names it gives must be plain file names inside the folder, bad UTF-8,
bad JSON, missing keys and wrong types raise ModelFolderError naming the file and the key, files are
size-checked before they are read, and anything that is not a regular file (a FIFO, a device) is
refused without reading it.
"""
import contextlib
import errno
import hashlib
import io
import json
import os
import re
import tempfile
import time

from ..output import NotARegularFileError, fsync_directory, open_regular_file, write_text_atomic
from ..output import _new_file_mode

__all__ = ["ModelFolderError", "ModelFolder", "open_folder", "write_files", "text", "MANIFEST", "META_FILE"]

MANIFEST = "manifest.json"
META_FILE = "model.json"
FORMAT = "tinygrad_rep model folder"
MAX_META_BYTES = 16 << 20  # model.json and manifest.json are small; anything bigger is not ours
_STAGE_SUFFIX = ".stage"
_STAGE_RE = re.compile(r"^\..+\.[A-Za-z0-9_]{8}\.stage$")  # what tempfile.mkstemp names, see _stage
_MISSING = object()


class ModelFolderError(ValueError):
    """A model folder that cannot be loaded as one model: a file is missing, changed, from another
    save, not a regular file, or model.json is malformed. The message names the file (and key)."""


# ---------------------------------------------------------------------------- names

def check_name(name, source="", key=""):
    """`name` if it is a plain file name inside the folder; else ModelFolderError naming where it
    came from (`source`, e.g. the model.json path, and `key`)."""
    where = f"{source}: " if source else ""
    what = f"key {key!r} " if key else "a file name "
    if not isinstance(name, str):
        raise ModelFolderError(f"{where}{what}must be a file name (a string), got {type(name).__name__}")
    if (not name or name in (".", "..") or "/" in name or "\\" in name or "\x00" in name
            or os.path.isabs(name) or (os.altsep and os.altsep in name)):
        raise ModelFolderError(f"{where}{what}must name a file inside the model folder, got {name!r}")
    return name


# ---------------------------------------------------------------------------- writing

LOCK_TIMEOUT = 60.0  # seconds a save waits for another save of the same folder


@contextlib.contextmanager
def _folder_lock(folder):
    """Serialise saves of one folder across processes: flock on the folder itself (Linux and the
    BSDs allow it on a directory), so no lock file is left in the folder; a no-op elsewhere."""
    try:
        import fcntl
        fd = os.open(folder, os.O_RDONLY)
    except (ImportError, OSError):
        yield
        return
    try:
        deadline = time.monotonic() + LOCK_TIMEOUT
        while True:  # non-blocking attempts: a save never hangs on a lock nobody will release
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise ModelFolderError(
                        f"{folder}: another save of this model folder has held its lock for "
                        f"{LOCK_TIMEOUT:.0f} s; stop it or save elsewhere") from None
                time.sleep(0.05)
            except OSError:
                break  # a file system without locks: saves of one folder must then not overlap
        yield
    finally:
        os.close(fd)  # closing releases the lock


def text(write, encoding="utf-8"):
    """A content for write_files from a function that writes text: `write(f)` gets a text file
    (UTF-8, "\\n" line ends) over the binary staging file."""
    def content(binary):
        wrapper = io.TextIOWrapper(binary, encoding=encoding, newline="\n")
        try:
            write(wrapper)
            wrapper.flush()
        finally:
            wrapper.detach()  # leave the binary file open for the caller
    return content


def write_files(folder, files):
    """Write the model files `files` (ordered mapping name -> content) into `folder` as one unit.

    A content is bytes, a str (written as UTF-8), or a callable `write(f)` that writes into a
    binary file object. After any interruption (an exception at any file operation, a kill, a
    full disk) the folder reads as the old model or the new one (see the module docstring); on
    an exception before the commit the new files are removed and the exception propagates.
    Files of the folder that are not in `files` (metrics, plots, checkpoints) are not touched.
    Returns the folder.
    """
    names = [check_name(n, "write_files") for n in files]
    for n in names:
        if n == MANIFEST or n.endswith(_STAGE_SUFFIX):
            raise ValueError(f"write_files: {n!r} is reserved for the model folder itself")
    folder = os.fspath(folder)
    os.makedirs(folder, exist_ok=True)
    with _folder_lock(folder):
        recover(folder)
        staged = []  # (name, staging name, size, sha256 hex)
        try:
            for name, content in files.items():
                staged.append(_stage(folder, name, content))
            fsync_directory(folder)
        except BaseException:
            for _, stage, _, _ in staged:
                with contextlib.suppress(OSError):
                    os.unlink(os.path.join(folder, stage))
            raise
        manifest = {"format": FORMAT, "version": 1,
                    "files": [{"name": n, "size": size, "sha256": sha, "staged": stage}
                              for n, stage, size, sha in staged]}
        try:
            write_text_atomic(os.path.join(folder, MANIFEST), json.dumps(manifest, indent=1) + "\n")
        except BaseException:
            if _committed(folder, staged):  # interrupted just after the rename: the new model stands
                raise
            for _, stage, _, _ in staged:  # not committed: the old model stands, the staged files go
                with contextlib.suppress(OSError):
                    os.unlink(os.path.join(folder, stage))
            raise
        _finish(folder, manifest)
    return folder


def _committed(folder, staged):
    """Whether the manifest on disk is the one listing these staging files."""
    try:
        manifest = _read_manifest(folder)
    except (OSError, ModelFolderError):
        return False
    return [e.get("staged") for e in manifest["files"]] == [stage for _, stage, _, _ in staged]


def _stage(folder, name, content):
    mode = _new_file_mode(os.path.join(folder, name))  # what the file would get from open()
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{name}.", suffix=_STAGE_SUFFIX)
    try:
        if hasattr(os, "fchmod"):
            os.fchmod(fd, mode)
        with os.fdopen(fd, "w+b") as f:
            if callable(content):
                content(f)
            else:
                f.write(content.encode("utf-8") if isinstance(content, str) else bytes(content))
            f.flush()
            os.fsync(f.fileno())
            # hash what is on disk, read back (writers such as zipfile seek back and rewrite)
            f.seek(0)
            sha, size = hashlib.sha256(), 0
            for block in iter(lambda: f.read(1 << 20), b""):
                sha.update(block)
                size += len(block)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return name, os.path.basename(tmp), size, sha.hexdigest()


def _finish(folder, manifest):
    """Step 3 of a committed save: move each staging file that is still there over its target."""
    moved = False
    for entry in manifest["files"]:
        stage = entry.get("staged")
        if stage and os.path.exists(os.path.join(folder, stage)):
            os.replace(os.path.join(folder, stage), os.path.join(folder, entry["name"]))
            moved = True
    if moved:
        fsync_directory(folder)


def recover(folder):
    """Finish a committed save that was stopped while moving files into place, then delete the
    staging and temporary files of saves that never committed. Called by every save (under the
    folder's lock); harmless on a healthy folder."""
    folder = os.fspath(folder)
    manifest = None
    if os.path.isfile(os.path.join(folder, MANIFEST)):
        try:
            manifest = _read_manifest(folder)
        except ModelFolderError:
            manifest = None  # a broken manifest is replaced by this save; its staging files are garbage
    if manifest is not None:
        pending = [e for e in manifest["files"] if e.get("staged")
                   and os.path.exists(os.path.join(folder, e["staged"]))]
        if pending and all(_matches(os.path.join(folder, e["staged"]), e) for e in pending):
            _finish(folder, manifest)
    for name in os.listdir(folder):
        manifest_tmp = name.startswith(f".{MANIFEST}.") and ".tmp" in name
        if _STAGE_RE.match(name) or manifest_tmp:
            with contextlib.suppress(OSError):
                os.unlink(os.path.join(folder, name))


# ---------------------------------------------------------------------------- reading

def _read_small(path, limit=MAX_META_BYTES, what="model file"):
    """The bytes of a regular file of at most `limit` bytes (checked before reading)."""
    try:
        with open_regular_file(path, what) as f:
            size = os.fstat(f.fileno()).st_size
            if size > limit:
                raise ModelFolderError(f"{path}: {size} bytes, more than a {what} can be ({limit})")
            return f.read(limit + 1)
    except NotARegularFileError as e:
        raise ModelFolderError(str(e)) from None


def parse_json(path, data):
    """Bytes of a JSON file -> its object; bad UTF-8 (with the byte offset) or bad JSON raise
    ModelFolderError naming the file."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ModelFolderError(f"{path}: not valid UTF-8 at byte {e.start}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise ModelFolderError(f"{path}: not valid JSON ({e})") from None
    except RecursionError:
        raise ModelFolderError(f"{path}: not valid JSON (nested too deeply)") from None


def field(obj, key, types, source, default=_MISSING, what=None):
    """obj[key] checked to be an instance of `types`; a missing key (without default) or a wrong
    type raises ModelFolderError naming `source` (the file) and the key."""
    if not isinstance(obj, dict):
        raise ModelFolderError(f"{source}: expected a JSON object, got {type(obj).__name__}")
    if key not in obj:
        if default is not _MISSING:
            return default
        raise ModelFolderError(f"{source}: missing key {key!r}")
    value = obj[key]
    bad_bool = isinstance(value, bool) and bool not in (types if isinstance(types, tuple) else (types,))
    if not isinstance(value, types) or bad_bool:
        names = what or " or ".join(t.__name__ for t in (types if isinstance(types, tuple) else (types,)))
        raise ModelFolderError(f"{source}: key {key!r} must be {names}, got {json.dumps(value)[:60]}")
    return value


def _read_manifest(folder):
    path = os.path.join(folder, MANIFEST)
    manifest = parse_json(path, _read_small(path, what="manifest"))
    if field(manifest, "format", str, path) != FORMAT:
        raise ModelFolderError(f"{path}: key 'format' is not {FORMAT!r}")
    if field(manifest, "version", int, path) != 1:
        raise ModelFolderError(f"{path}: version {manifest['version']} is newer than this library reads")
    entries = field(manifest, "files", list, path)
    seen = set()
    for i, e in enumerate(entries):
        where = f"{path} (files[{i}])"
        name = check_name(field(e, "name", str, where), where, "name")
        if name in seen:
            raise ModelFolderError(f"{where}: {name!r} is listed twice")
        seen.add(name)
        if field(e, "size", int, where) < 0:
            raise ModelFolderError(f"{where}: key 'size' must be >= 0")
        sha = field(e, "sha256", str, where)
        if not re.fullmatch(r"[0-9a-f]{64}", sha):
            raise ModelFolderError(f"{where}: key 'sha256' is not a SHA-256 in hex")
        if e.get("staged") is not None:
            check_name(field(e, "staged", str, where), where, "staged")
    return manifest


def _open_matching(path, entry):
    """An open binary file at `path` whose size and SHA-256 are the manifest entry's (positioned
    at its start), or None when it is missing or different. Sizes are compared before reading."""
    try:
        f = open_regular_file(path, "model file")
    except FileNotFoundError:
        return None
    except NotARegularFileError as e:
        raise ModelFolderError(str(e)) from None
    try:
        if os.fstat(f.fileno()).st_size != entry["size"]:
            f.close()
            return None
        sha = hashlib.sha256()
        for block in iter(lambda: f.read(1 << 20), b""):
            sha.update(block)
        if sha.hexdigest() != entry["sha256"]:
            f.close()
            return None
        f.seek(0)
        return f
    except BaseException:
        f.close()
        raise


def _matches(path, entry):
    f = _open_matching(path, entry)
    if f is None:
        return False
    f.close()
    return True


class ModelFolder:
    """A model folder opened for reading: every file the manifest lists is checked (size, then
    SHA-256) when the folder is opened, so a mixed or changed folder is refused at once.

        mf = ModelFolder(path)
        mf.meta                      # model.json, parsed (a dict with a string "kind")
        mf.name("weights", "weights.npz")   # a file name model.json gives, checked
        with mf.open("weights.npz") as f: ...   # the verified content, as a binary file

    Read-only: opening never changes the folder (a stopped save is finished by the next save).
    """

    def __init__(self, folder):
        self.folder = os.fspath(folder)
        if not os.path.isdir(self.folder):
            raise FileNotFoundError(errno.ENOENT, "model folder not found", self.folder)
        self.meta_path = os.path.join(self.folder, META_FILE)
        for _ in range(3):  # a save that commits while we read changes the manifest: read again
            before = self._manifest_bytes()
            self._verify()
            if self._manifest_bytes() == before:
                break
        data = self.read_bytes(META_FILE, limit=MAX_META_BYTES)
        self.meta = parse_json(self.meta_path, data)
        field(self.meta, "kind", str, self.meta_path)

    def _manifest_bytes(self):
        path = os.path.join(self.folder, MANIFEST)
        return _read_small(path, what="manifest") if os.path.lexists(path) else None

    def _verify(self):
        self.sources = {}  # name -> (path to read, manifest entry or None)
        if not os.path.lexists(os.path.join(self.folder, MANIFEST)):
            self.manifest = None  # written before manifests existed: no checksums to compare
            if not os.path.lexists(self.meta_path):
                raise FileNotFoundError(errno.ENOENT, "no model.json: not a folder written by "
                                        "`tinygrad-rep train` or Model.save", self.meta_path)
            return
        self.manifest = _read_manifest(self.folder)
        for entry in self.manifest["files"]:
            target = os.path.join(self.folder, entry["name"])
            f = _open_matching(target, entry)
            if f is None and entry.get("staged"):
                target = os.path.join(self.folder, entry["staged"])  # a save stopped in step 3
                f = _open_matching(target, entry)
            if f is None:
                raise ModelFolderError(
                    f"{os.path.join(self.folder, entry['name'])}: missing or not the file {MANIFEST} lists "
                    f"(size or SHA-256 differ): the folder mixes files of different saves or was changed")
            f.close()
            self.sources[entry["name"]] = (target, entry)
        if META_FILE not in self.sources:
            raise ModelFolderError(f"{os.path.join(self.folder, MANIFEST)}: does not list {META_FILE}")

    def name(self, key, default):
        """The file name model.json gives under `key` (default when absent), checked to be a plain
        name inside the folder; ModelFolderError naming model.json and the key otherwise."""
        return check_name(field(self.meta, key, str, self.meta_path, default=default), self.meta_path, key)

    def path(self, name):
        """The path of a file of the folder (for messages)."""
        return os.path.join(self.folder, name)

    def open(self, name, limit=None):
        """The verified content of file `name` as an open binary file (size-checked against
        `limit` before reading). With a manifest the file must be listed in it."""
        check_name(name)
        if self.manifest is None:
            path = self.path(name)
            try:
                f = open_regular_file(path, "model file")
            except NotARegularFileError as e:
                raise ModelFolderError(str(e)) from None
            except FileNotFoundError:
                raise FileNotFoundError(errno.ENOENT, "missing from the model folder", path) from None
        else:
            if name not in self.sources:
                raise ModelFolderError(f"{self.path(name)}: not listed in {self.path(MANIFEST)}")
            path, entry = self.sources[name]
            f = _open_matching(path, entry)  # again: the file is read from this very descriptor
            if f is None:
                raise ModelFolderError(f"{self.path(name)}: changed while the model was loading")
        if limit is not None:
            size = os.fstat(f.fileno()).st_size
            if size > limit:
                f.close()
                raise ModelFolderError(f"{self.path(name)}: {size} bytes, more than such a file can be ({limit})")
        return f

    def read_bytes(self, name, limit=None):
        """The verified bytes of file `name` (see open)."""
        with self.open(name, limit) as f:
            return f.read()


def open_folder(folder):
    """`folder` itself if it is an open ModelFolder, else ModelFolder(folder)."""
    return folder if isinstance(folder, ModelFolder) else ModelFolder(folder)
