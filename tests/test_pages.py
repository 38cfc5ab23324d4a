"""assistant.pages and assistant.page_view: a cited PDF page rendered locally, the quote's boxes highlighted.

The PDF is generated with reportlab (test_readers' helpers); the boxes come from the reader, and
the oracle for "the highlight lands on the words" is the plain rendering: the pixels under each
box hold ink (the words) and are the only ones the highlight changes.
"""

from __future__ import annotations

import base64
import io
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from assistant import pages
from assistant.models import Citation
from assistant.page_view import render_page_views
from assistant.readers import read_file

pytest.importorskip("pypdfium2")
pytest.importorskip("reportlab")

from test_readers import CROSS_SENTENCE, make_crossing_pdf  # noqa: E402


@pytest.fixture(scope="module")
def crossing(tmp_path_factory) -> tuple[Path, list]:
    path = make_crossing_pdf(tmp_path_factory.mktemp("pages") / "crossing.pdf")
    doc = read_file(path, max_bytes=10_000_000)
    start = doc.text.index(CROSS_SENTENCE)
    return path, doc.geometry.boxes(start, start + len(CROSS_SENTENCE))


def pixels(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)


def test_a_quote_across_a_page_break_is_on_both_pages(crossing):
    _, boxes = crossing
    assert pages.cited_pages(1, boxes) == [1, 2]
    assert pages.cited_pages(4, []) == [4] and pages.cited_pages(None, []) == []


def test_the_highlight_lands_on_the_quoted_words_and_nowhere_else(crossing):
    path, boxes = crossing
    for page in (1, 2):
        plain = np.asarray(pages.render_page(path, page)).astype(int)
        marked = pixels(pages.page_png(path, page, boxes))
        assert plain.shape == marked.shape
        mask = np.zeros(plain.shape[:2], bool)
        for left, top, right, bottom in pages.scaled_boxes(boxes, page):
            mask[top:bottom + 1, left:right + 1] = True
            assert (plain[top:bottom, left:right].min(axis=2) < 100).any(), "no ink under the box: not on the words"
        changed = np.abs(plain - marked).sum(axis=2) > 0
        assert changed[mask].mean() > 0.9  # the boxes are filled
        assert not changed[~mask].any()  # nothing else is touched


def test_boxes_scale_with_the_rendering(crossing):
    path, boxes = crossing
    small, large = pages.render_page(path, 1, scale=1.0), pages.render_page(path, 1, scale=2.0)
    assert large.size[0] == pytest.approx(2 * small.size[0], abs=2)
    assert small.size == (round(595.27), round(841.89)) or abs(small.size[0] - 595) <= 1  # A4 in points
    one, two = pages.scaled_boxes(boxes, 1, scale=1.0)[0], pages.scaled_boxes(boxes, 1, scale=2.0)[0]
    assert all(abs(2 * a - b) <= 3 for a, b in zip(one, two))


def test_rendered_pages_are_cached_and_bounded(crossing):
    path, boxes = crossing
    first = pages.page_png(path, 1, boxes)
    assert pages.page_png(path, 1, boxes) is first
    assert len(pages._pages) <= pages.PAGE_CACHE and len(pages._pngs) <= pages.PNG_CACHE
    lru = pages._LRU(2)
    for key in "abc":
        lru.put(key, key)
    assert lru.get("a") is None and lru.get("c") == "c" and len(lru) == 2


def test_a_missing_file_or_page_is_unavailable_with_the_reason(tmp_path, crossing):
    path, _ = crossing
    with pytest.raises(pages.PageUnavailable, match="no page 9"):
        pages.page_png(path, 9)
    with pytest.raises(pages.PageUnavailable, match="not on this server"):
        pages.page_png(tmp_path / "gone.pdf", 1)
    (tmp_path / "fake.pdf").write_bytes(b"not a pdf at all")
    with pytest.raises(pages.PageUnavailable, match="cannot be opened"):
        pages.page_png(tmp_path / "fake.pdf", 1)


def test_the_page_view_shows_each_cited_page_with_its_number(crossing):
    path, boxes = crossing
    pdf = Citation(n=2, quote=CROSS_SENTENCE, source="a <b>.pdf", section="", start=0, end=1, score=1.0,
                   page=1, boxes=boxes)
    text = Citation(n=1, quote="q", source="notes.txt", section="", start=0, end=1, score=1.0)
    html = render_page_views([text, pdf], lambda source: path)
    assert html.count("<figure") == 2 and "page 1</figcaption>" in html and "page 2</figcaption>" in html
    assert "a &lt;b&gt;.pdf" in html and "<b>" not in html  # the file name is text
    for data in re.findall(r'src="data:image/png;base64,([^"]+)"', html):
        assert base64.b64decode(data).startswith(b"\x89PNG")
    assert render_page_views([text], lambda source: path) == ""
    missing = render_page_views([pdf], lambda source: None)
    assert "not on this server" in missing and "<img" not in missing
    assert render_page_views([pdf] * 10, lambda source: path, max_pages=3).count("<figure") == 3
