"""HTML of the cited PDF pages: each page as an inline PNG with the quote highlighted, and its page number.

Citations of PDFs carry `page` and `boxes`; for each, the pages its boxes are on (two when the
quote runs onto the next page) are rendered by `assistant.pages` and embedded as `data:` URIs,
so nothing is fetched from anywhere and no route serves files. Citations of text, Markdown and
web pages have no pages: the documents panel shows their section with the quote highlighted, as
before. At most `max_pages` pages are shown per answer, which bounds what one answer sends.

Example:
    >>> from assistant.models import Citation
    >>> c = Citation(n=1, quote="q", source="a.txt", section="", start=0, end=1, score=1.0)
    >>> render_page_views([c], lambda source: None)
    ''
"""

from __future__ import annotations

import base64
import logging
from pathlib import Path
from typing import Callable, Sequence

from assistant.models import Citation
from assistant.pages import PageUnavailable, cited_pages, page_png
from assistant.render import escape_attribute, escape_html_line

logger = logging.getLogger(__name__)

#: Pages shown for one answer at most (each PNG is ~100-300 kB).
MAX_PAGES = 6


def _figure(citation: Citation, page: int, png: bytes) -> str:
    name = escape_html_line(citation.source)
    alt = escape_attribute(f"Page {page} of {citation.source}, the quote [{citation.n}] highlighted")
    data = base64.b64encode(png).decode("ascii")
    return (f'<figure class="page-view" data-n="{citation.n}" data-page="{page}">'
            f'<figcaption><strong>[{citation.n}]</strong> {name} — page {page}</figcaption>'
            f'<img src="data:image/png;base64,{data}" alt="{alt}" loading="lazy"></figure>')


def _missing(citation: Citation, page: int, reason: str) -> str:
    return (f'<figure class="page-view page-missing" data-n="{citation.n}" data-page="{page}">'
            f'<figcaption><strong>[{citation.n}]</strong> {escape_html_line(citation.source)} — page {page}'
            f'</figcaption><em>{escape_html_line(reason)}</em></figure>')


def render_page_views(
    citations: Sequence[Citation], locate: Callable[[str], Path | None], *, max_pages: int = MAX_PAGES
) -> str:
    """HTML figures for the pages the PDF citations are on, or "" when no citation has a page.

    `locate(source)` gives the PDF's path on this server (None: not here); a page that cannot be
    rendered is named with the reason instead of an image.
    """
    figures: list[str] = []
    for citation in citations:
        pages = cited_pages(citation.page, citation.boxes)
        if not pages:
            continue
        path = locate(citation.source)
        for page in pages:
            if len(figures) >= max_pages:
                break
            if path is None:
                figures.append(_missing(citation, page, "The PDF is not on this server; the quote is in the chat."))
                continue
            try:
                figures.append(_figure(citation, page, page_png(path, page, citation.boxes)))
            except PageUnavailable as exc:
                logger.warning("cannot show page %d of %s: %s", page, citation.source, exc)
                figures.append(_missing(citation, page, f"This page cannot be shown: {exc}"))
    if not figures:
        return ""
    return '<div class="page-views"><h4>Cited pages</h4>' + "".join(figures) + "</div>"
