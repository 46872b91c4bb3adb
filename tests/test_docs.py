"""The walkthrough (docs/learn/*.md): every chapter's code blocks are doctests, run here, so the
text shows what the library really does."""
import doctest
from pathlib import Path

import pytest

CHAPTERS = sorted((Path(__file__).resolve().parents[1] / "docs" / "learn").glob("*.md"))


def test_the_walkthrough_has_chapters():
    assert any(p.name.startswith("08-") for p in CHAPTERS)


@pytest.mark.parametrize("path", CHAPTERS, ids=[p.name for p in CHAPTERS])
def test_chapter_examples_run(path):
    import tinygrad_rep as tr
    prev = tr.get_backend()
    try:
        result = doctest.testfile(str(path), module_relative=False, encoding="utf-8", verbose=False,
                                  optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE,
                                  report=True)
    finally:
        tr.set_backend(prev)
    assert result.attempted > 0, f"{path.name} has no examples"
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples in {path.name} failed (see above)"
