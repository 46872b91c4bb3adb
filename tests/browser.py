"""Opening pages in a real Chromium for the browser tests: a module-scoped browser, pages that
record console errors, and checks of images and links. Skips (with the reason) where no
browser is available; see tinygrad_rep/instruments/screenshot.py for how it is launched."""
import os
import urllib.parse

import pytest

from tinygrad_rep.instruments.screenshot import browser_unavailable, launch


def browser_context():
    """A generator for a module-scoped fixture: yields a browser context, or skips."""
    reason = browser_unavailable()
    if reason:
        pytest.skip(f"no browser for the page tests: {reason}")
    with launch() as ctx:
        yield ctx


def open_page(ctx, path):
    """Open a local file; returns (page, errors): console errors and uncaught exceptions."""
    page = ctx.new_page()
    errors = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto("file://" + os.path.abspath(path))
    page.wait_for_load_state("load")
    return page, errors


def broken_images(page):
    """The src of every <img> that did not load (natural width 0)."""
    return page.evaluate("Array.from(document.images).filter(i => !i.complete || i.naturalWidth === 0)"
                         ".map(i => i.getAttribute('src'))")


def broken_links(page, path):
    """Links to local files (relative hrefs) whose target does not exist next to the page."""
    folder = os.path.dirname(os.path.abspath(path))
    hrefs = page.evaluate("Array.from(document.querySelectorAll('a[href]')).map(a => a.getAttribute('href'))")
    bad = []
    for h in hrefs:
        parts = urllib.parse.urlsplit(h)
        if parts.scheme or parts.netloc or not parts.path:
            continue  # a URL elsewhere, or an anchor in the page
        if not os.path.exists(os.path.join(folder, urllib.parse.unquote(parts.path))):
            bad.append(h)
    return bad
