"""One self-contained HTML page for a run: headings, paragraphs, tables with a caption and a
legend, figures with captions and alt text, links and the machine it ran on.

    page = HtmlReport("autoencoder on digits", folder=out)
    page.heading("Results")
    page.table(["model", "mse"], rows, caption="Held-out reconstruction error",
               legend={"mse": "mean squared error per pixel, lower is better"})
    page.image("loss.png", caption="Training loss per epoch", alt="loss falls from 0.09 to 0.02")
    page.link("graph.html", "backprop explorer of one training step")
    page.machine()
    page.write(os.path.join(out, "report.html"))

The page reads as a document without JavaScript (it has none) and the style is inline, so
the folder can be zipped and opened anywhere. Images are referenced relative to the page (they
must be in its folder or below) or, with inline=True, embedded as data: URIs. Text is escaped;
`html()` adds trusted markup as is. Written atomically.
"""
import base64
import datetime
import html
import mimetypes
import os
import platform

from .output import write_text_atomic

__all__ = ["HtmlReport", "machine_info"]

_CSS = """
body { font: 15px/1.5 system-ui, sans-serif; color: #1b1f24; max-width: 1100px; margin: 0 auto; padding: 12px 20px 40px; }
h1 { font-size: 26px; border-bottom: 2px solid #ddd; padding-bottom: 4px; }
h2 { font-size: 20px; margin-top: 28px; border-bottom: 1px solid #eee; } h3 { font-size: 16px; }
table { border-collapse: collapse; margin: 8px 0 4px; font-variant-numeric: tabular-nums; }
caption { caption-side: top; text-align: left; font-weight: 600; padding: 4px 0; }
th, td { border: 1px solid #ccc; padding: 3px 9px; } th { background: #f3f4f6; text-align: left; }
td.num { text-align: right; font-family: ui-monospace, monospace; font-size: 13px; }
dl.legend { margin: 2px 0 12px; font-size: 13px; color: #333; } dl.legend dt { display: inline; font-weight: 600; }
dl.legend dd { display: inline; margin: 0 14px 0 4px; }
figure { margin: 14px 0; } figure img { max-width: 100%; border: 1px solid #ddd; }
figcaption { font-size: 13px; color: #333; margin-top: 3px; }
pre { background: #f6f8fa; padding: 8px 10px; overflow-x: auto; font-size: 13px; }
.machine { font-size: 13px; color: #333; } .machine th { background: none; border: none; padding: 0 10px 0 0; }
.machine td { border: none; padding: 0; }
"""


def machine_info():
    """The machine and backend a run used: a dict of short strings (for `HtmlReport.machine`)."""
    import numpy as np
    from . import get_backend
    info = {"machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
            "system": f"{platform.system()} {platform.release()}",
            "python": platform.python_version(), "numpy": np.__version__,
            "backend": str(get_backend())}
    threads = os.environ.get("TINYGRAD_REP_NUM_THREADS")
    if threads:
        info["kernel threads"] = threads
    info["written"] = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return info


def _cell(v):
    if isinstance(v, float):
        return f'<td class="num">{v:.4g}</td>'
    if isinstance(v, int) and not isinstance(v, bool):
        return f'<td class="num">{v}</td>'
    return f"<td>{html.escape(str(v))}</td>"


class HtmlReport:
    """Build a page section by section, then `write(path)`. `folder`: where the page will be
    written (image paths are checked and made relative to it); defaults to the write path's."""

    def __init__(self, title, folder=None, intro=None):
        self.title = str(title)
        self.folder = None if folder is None else os.path.abspath(folder)
        self._parts = []
        if intro:
            self.paragraph(intro)

    def heading(self, text, level=2):
        """A section heading (level 2 or 3; the title is the level-1 heading)."""
        if level not in (2, 3, 4):
            raise ValueError(f"heading: level must be 2, 3 or 4, got {level!r}")
        self._parts.append(f"<h{level}>{html.escape(str(text))}</h{level}>")
        return self

    def paragraph(self, text):
        """A paragraph of plain text (escaped)."""
        self._parts.append(f"<p>{html.escape(str(text))}</p>")
        return self

    def items(self, texts):
        """A bulleted list of plain-text items."""
        self._parts.append("<ul>" + "".join(f"<li>{html.escape(str(t))}</li>" for t in texts) + "</ul>")
        return self

    def code(self, text):
        """Preformatted text (console output, a command line)."""
        self._parts.append(f"<pre>{html.escape(str(text))}</pre>")
        return self

    def html(self, markup):
        """Trusted markup, added as is."""
        self._parts.append(str(markup))
        return self

    def table(self, headers, rows, caption=None, legend=None, note=None):
        """A table; `legend` explains the columns or row labels ({term: meaning} or a string),
        `note` is one line of interpretation shown under it. Floats are shown to 4 digits."""
        rows = [list(r) for r in rows]
        for k, r in enumerate(rows):
            if len(r) != len(headers):
                raise ValueError(f"table: row {k} has {len(r)} cells for {len(headers)} columns")
        h = ["<table>"]
        if caption:
            h.append(f"<caption>{html.escape(str(caption))}</caption>")
        h.append("<thead><tr>" + "".join(f"<th>{html.escape(str(c))}</th>" for c in headers) + "</tr></thead>")
        h.append("<tbody>" + "".join("<tr>" + "".join(_cell(v) for v in r) + "</tr>" for r in rows) + "</tbody>")
        h.append("</table>")
        if legend:
            if isinstance(legend, dict):
                h.append('<dl class="legend">' + "".join(
                    f"<dt>{html.escape(str(k))}</dt><dd>{html.escape(str(v))}</dd>" for k, v in legend.items()) + "</dl>")
            else:
                h.append(f'<p class="legend">{html.escape(str(legend))}</p>')
        if note:
            h.append(f"<p><em>{html.escape(str(note))}</em></p>")
        self._parts.append("\n".join(h))
        return self

    def image(self, path, caption, alt=None, inline=False):
        """A figure: the image at `path` (relative to the page's folder, or absolute inside it)
        with a caption; alt text defaults to the caption. inline=True embeds the bytes."""
        self._parts.append(("image", os.fspath(path), str(caption), str(alt or caption), bool(inline)))
        return self

    def link(self, href, text, note=None):
        """A paragraph with one link (a file in the folder, or a URL) and an optional note."""
        extra = f" — {html.escape(str(note))}" if note else ""
        self._parts.append(f'<p><a href="{html.escape(str(href), quote=True)}">{html.escape(str(text))}</a>{extra}</p>')
        return self

    def machine(self, info=None):
        """The machine/backend block (`machine_info()` unless a dict is given)."""
        info = machine_info() if info is None else info
        rows = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>" for k, v in info.items())
        self._parts.append(f'<h2>Machine</h2><table class="machine">{rows}</table>')
        return self

    def _figure(self, folder, path, caption, alt, inline):
        full = path if os.path.isabs(path) else os.path.join(folder, path)
        if not os.path.isfile(full):
            raise FileNotFoundError(f"HtmlReport: image {path!r} not found (looked for {full})")
        if inline:
            mime = mimetypes.guess_type(full)[0] or "application/octet-stream"
            with open(full, "rb") as f:
                src = f"data:{mime};base64," + base64.b64encode(f.read()).decode("ascii")
        else:
            rel = os.path.relpath(os.path.abspath(full), folder)
            if rel.startswith(".."):
                raise ValueError(f"HtmlReport: image {path!r} is outside the page's folder {folder}; "
                                 f"copy it there or pass inline=True")
            src = "/".join(rel.split(os.sep))
        return (f'<figure><img src="{html.escape(src, quote=True)}" alt="{html.escape(alt, quote=True)}">'
                f"<figcaption>{html.escape(caption)}</figcaption></figure>")

    def render(self, folder=None):
        """The page as a string (images resolved against `folder`, default the report's)."""
        folder = os.path.abspath(folder or self.folder or ".")
        body = [self._figure(folder, *p[1:]) if isinstance(p, tuple) else p for p in self._parts]
        title = html.escape(self.title)
        return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">\n'
                f'<meta name="viewport" content="width=device-width, initial-scale=1">\n'
                f"<title>{title}</title>\n<style>{_CSS}</style>\n</head><body>\n<h1>{title}</h1>\n"
                + "\n".join(body) + "\n</body></html>\n")

    def write(self, path):
        """Write the page to `path` atomically; returns the path."""
        folder = self.folder or os.path.dirname(os.path.abspath(path))
        return write_text_atomic(path, self.render(folder))


# ---------------------------------------------------------------------------- pages of runs

# What each figure of a run shows (file name -> caption); other PNGs get their file name.
CAPTIONS = {
    "loss.png": "Training loss per epoch.",
    "reconstructions.png": "Test images (top) and their reconstructions; for the denoising and masked "
                           "variants, the corrupted input the network saw is shown too.",
    "codes.png": "Test codes projected on their first two principal components, coloured by class.",
    "embeddings.png": "Encoder embeddings of test images, first two principal components, coloured by class.",
    "augmentations.png": "SimCLR augmentations: the original image (marked) and augmented views.",
    "similarity.png": "Cosine similarity between the embeddings of a batch's two views.",
    "word_groups_pca.png": "Word vectors of a few word groups, first two principal components.",
    "graph.png": "The computation graph with each node's value and gradient.",
}


def _scalar(v):
    return isinstance(v, (int, float, str, bool)) or v is None


def _flat(d, prefix=""):
    out = []
    for k, v in d.items():
        if _scalar(v):
            out.append((prefix + str(k), v))
        elif isinstance(v, dict) and not _is_grid(v):
            out += _flat(v, f"{prefix}{k}.")
    return out


def _cell_value(c):
    """A grid cell: a number, or the "accuracy" (else "mean") of a dict of results."""
    if isinstance(c, dict):
        for k in ("accuracy", "mean"):
            v = c.get(k)
            if v is not None and _scalar(v):
                return v
        return None
    return c


def _is_grid(v):
    """A dict of rows, each a dict of cells (numbers, or dicts with an accuracy or mean)."""
    return (isinstance(v, dict) and len(v) > 0 and all(isinstance(r, dict) and r for r in v.values())
            and all(_scalar(c) or _cell_value(c) is not None for r in v.values() for c in r.values()
                    if not isinstance(c, (list, tuple))))


def add_metrics(page, metrics):
    """Tables from a run's metrics.json: a grid for each dict of dicts of numbers (rows by key,
    with the run's "legend" under it), one table of the other numbers, and the "reading" line."""
    legend = metrics.get("legend") if isinstance(metrics.get("legend"), dict) else None
    for key, grid in metrics.items():
        if key == "legend" or not _is_grid(grid):
            continue
        cols = []
        for r in grid.values():
            cols += [c for c, v in r.items() if c not in cols and not isinstance(v, (list, tuple))
                     and (_scalar(v) or _cell_value(v) is not None)]
        first = "budget" if key == "labels" else key
        cells = [[k] + ["" if r.get(c) is None else _cell_value(r[c]) for c in cols] for k, r in grid.items()]
        page.table([first] + cols, cells,
                   caption="Test accuracy by label budget" if key == "labels" else key,
                   legend={c: legend[c] for c in cols if legend and c in legend} or None)
    flat = [(k, v) for k, v in _flat({k: v for k, v in metrics.items() if k not in ("legend", "reading")})]
    if isinstance(metrics.get("reading"), str):
        page.html(f"<p><strong>Reading:</strong> {html.escape(metrics['reading'])}</p>")
    if flat:  # folded (a <details> element opens without JavaScript)
        page.html("<details><summary>all numbers of metrics.json</summary>")
        page.table(["metric", "value"], flat)
        page.html("</details>")
    return page


def add_figures(page, folder, prefix=""):
    """Every PNG in `folder` (sorted, loss curve last), with its caption; `prefix` is the
    folder's path relative to the page."""
    pngs = sorted(f for f in os.listdir(folder) if f.endswith(".png") and not f.startswith("."))
    pngs.sort(key=lambda f: f == "loss.png")
    for f in pngs:
        caption = CAPTIONS.get(f, f[:-4].replace("_", " ") + ".")
        page.image(prefix + f, caption, alt=f"{caption} ({f})")
    return page


def run_page(folder, title, summary=None, filename="report.html"):
    """Write `report.html` for a `train` run folder: the printed summary, the metrics tables with
    their legend and reading, every plot with its caption, links to the files, the machine.
    Returns the page's path."""
    page = HtmlReport(title, folder=folder)
    if summary:
        page.heading("Summary").code(summary)
    path = os.path.join(folder, "metrics.json")
    if os.path.isfile(path):
        import json
        with open(path) as f:
            metrics = json.load(f)
        page.heading("Results")
        add_metrics(page, metrics)
    page.heading("Figures")
    add_figures(page, folder)
    files = sorted(f for f in os.listdir(folder) if not f.startswith(".") and f != filename
                   and os.path.isfile(os.path.join(folder, f)) and not f.endswith(".png"))
    if files:
        page.heading("Files")
        for f in files:
            page.link(f, f)
    page.machine()
    return page.write(os.path.join(folder, filename))


def demo_index(out, gradcheck_rows=None, explorer=True):
    """Write `index.html` for a demo folder: the gradient-check table, a section per run folder
    (its numbers, plots and report), the backprop explorer of a small MLP step (written to
    instruments/explorer.html) and the machine. Returns the page's path."""
    page = HtmlReport("tinygrad_rep demo", folder=out,
                      intro="Gradient checks, the representation learners on real data, and the backprop "
                            "instruments, as run on this machine. Every figure is a file in this folder.")
    if gradcheck_rows:
        worst = max(gradcheck_rows, key=lambda r: r["max_error"])
        page.heading("Gradient checks")
        page.table(["op", "max abs error", "status"],
                   [[r["op"], f"{r['max_error']:.2e}", r["status"]] for r in gradcheck_rows],
                   caption="Analytic against numerical gradients (float64, central differences)",
                   legend={"max abs error": "largest |analytic - numerical| over all elements",
                           "status": "pass when within the tolerance of gradcheck"},
                   note=f"{len(gradcheck_rows)} ops and losses; largest error {worst['max_error']:.2e} ({worst['op']}).")
    runs = sorted(d for d in os.listdir(out) if os.path.isfile(os.path.join(out, d, "metrics.json")))
    if runs:
        page.heading("Models")
    import json
    for d in runs:
        page.heading(d, level=3)
        with open(os.path.join(out, d, "metrics.json")) as f:
            add_metrics(page, json.load(f))
        add_figures(page, os.path.join(out, d), prefix=d + "/")
        if os.path.isfile(os.path.join(out, d, "report.html")):
            page.link(f"{d}/report.html", f"{d}: full report")
    page.heading("Instruments")
    if explorer:
        from .instruments.explorer import explore, recording
        from .instruments.tour import mlp_loss_graph
        with recording():
            _, loss = mlp_loss_graph(batch_size=8, seed=0)
        explore(loss, os.path.join(out, "instruments", "explorer.html"),
                title="64-16-10 MLP, cross-entropy on 8 digits")
        page.link("instruments/explorer.html", "backprop explorer",
                  note="click a node for its value and gradient; step through the backward pass")
    inst = os.path.join(out, "instruments")
    if os.path.isdir(inst):
        add_figures(page, inst, prefix="instruments/")
        for f in sorted(os.listdir(inst)):
            if not f.endswith((".png", ".html")) and not f.startswith("."):
                page.link(f"instruments/{f}", f)
    if os.path.isfile(os.path.join(out, "REPORT.md")):
        page.link("REPORT.md", "REPORT.md", note="the same report as Markdown text")
    page.machine()
    return page.write(os.path.join(out, "index.html"))


def from_markdown(text, title, folder):
    """An HtmlReport of a Markdown report as the library writes them (headings, paragraphs,
    pipe tables, images `![alt](file)`, `code` spans kept as text): the same content as one page
    that reads without a Markdown viewer. Images are files in `folder`."""
    page = HtmlReport(title, folder=folder)
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i].rstrip()
        if not line:
            i += 1
        elif line.startswith("#"):
            level = len(line) - len(line.lstrip("#"))
            if level > 1:  # the page has its own <h1>
                page.heading(line[level:].strip(), level=min(level, 4))
            i += 1
        elif line.startswith("|"):
            block = []
            while i < len(lines) and lines[i].startswith("|"):
                block.append([c.strip() for c in lines[i].strip().strip("|").split("|")])
                i += 1
            rows = [r for r in block[1:] if not all(set(c) <= set("-: ") for c in r)]
            width = len(block[0])
            page.table(block[0], [(r + [""] * width)[:width] for r in rows])
        elif line.startswith("![") and "](" in line and line.endswith(")"):
            alt, path = line[2:-1].split("](", 1)
            if os.path.isfile(os.path.join(folder, path)):
                page.image(path, alt or path)
            i += 1
        else:
            para = []
            while i < len(lines) and lines[i].strip() and not lines[i].startswith(("#", "|", "![")):
                para.append(lines[i].strip())
                i += 1
            page.paragraph(" ".join(para))
    return page
