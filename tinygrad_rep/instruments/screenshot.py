"""Screenshots of HTML pages in a real Chromium (Debian's `chromium` driven by the Python
`playwright` package), for reports that show what a page looks like.

    path = screenshot("runs/demo/index.html", "runs/demo/index.png")   # None when unavailable
    python -m tinygrad_rep.instruments.screenshot PAGE.html [PAGE.png]   # the same from a shell

Nothing is downloaded: the browser is the system's (`make browser` installs it with apt where
that works; `playwright install` is never needed). `browser_unavailable()` says why not, or None.
"""
import os
import shutil
import tempfile
from contextlib import contextmanager

from ..output import write_bytes_atomic

__all__ = ["chromium_path", "browser_unavailable", "launch", "screenshot"]

# Chromium as root refuses to start without --no-sandbox; the rest keep a headless run quiet and
# offline (no updates, sync or first-run pages) so pages are judged on their own.
ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run", "--disable-sync"]


def chromium_path():
    """The system Chromium executable (env TINYGRAD_REP_CHROMIUM overrides), or None."""
    env = os.environ.get("TINYGRAD_REP_CHROMIUM")
    if env:
        return env if os.path.exists(env) else None
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return "/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None


def browser_unavailable():
    """None when pages can be opened in a browser here, else the reason (one line)."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the Python package playwright is not installed (pip install playwright)"
    if chromium_path() is None:
        return "no Chromium executable found (apt-get install chromium, or set TINYGRAD_REP_CHROMIUM)"
    return None


@contextmanager
def launch():
    """A fresh headless Chromium browser context (own user-data folder), closed on exit."""
    reason = browser_unavailable()
    if reason:
        raise RuntimeError(f"cannot open a browser: {reason}")
    from playwright.sync_api import sync_playwright
    profile = tempfile.mkdtemp(prefix="tr-chromium-")
    try:
        with sync_playwright() as p:
            ctx = p.chromium.launch_persistent_context(
                profile, executable_path=chromium_path(), headless=True, args=ARGS,
                viewport={"width": 1280, "height": 860})
            try:
                yield ctx
            finally:
                ctx.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def screenshot(html_path, png_path, width=1280, height=860, full_page=True):
    """Open `html_path` in Chromium and write a PNG of it to `png_path`. Returns png_path, or
    None (with the reason printed) when no browser is available here."""
    reason = browser_unavailable()
    if reason:
        print(f"no screenshot of {html_path}: {reason}")
        return None
    with launch() as ctx:
        page = ctx.new_page()
        page.set_viewport_size({"width": width, "height": height})
        page.goto("file://" + os.path.abspath(html_path))
        page.wait_for_load_state("load")
        data = page.screenshot(full_page=full_page)
    write_bytes_atomic(png_path, data)
    return png_path


def main(argv=None):
    """Command line: screenshot PAGE.html [OUT.png] (default: beside the page, .png)."""
    import sys
    argv = sys.argv[1:] if argv is None else argv
    if not 1 <= len(argv) <= 2 or not argv[0].endswith((".html", ".htm")):
        print("usage: python -m tinygrad_rep.instruments.screenshot PAGE.html [OUT.png]")
        return 2
    if not os.path.isfile(argv[0]):
        print(f"no such page: {argv[0]}")
        return 1
    out = argv[1] if len(argv) == 2 else os.path.splitext(argv[0])[0] + ".png"
    done = screenshot(argv[0], out)
    if done:
        print(f"wrote {done}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
