"""Readers: every fixture is generated here (reportlab, hand-written PDF bytes, HTML strings), none is committed.

Positions are checked against an independent extractor: pypdfium2's text page (PDFium, the
C++ engine of Chrome), which shares no code with pdfminer.six.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from assistant.chunking import chunk_document
from assistant.models import Document
from assistant.readers import Extracted, PageGeometry, ReaderLimits, Unreadable, detect_kind, read_file
from assistant.readers.html import extract_html

pdfium = pytest.importorskip("pypdfium2")
reportlab = pytest.importorskip("reportlab")

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.pdfencrypt import StandardEncryption
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.utils import ImageReader
from reportlab.pdfgen import canvas as rl_canvas
from reportlab.platypus import (
    BaseDocTemplate,
    Frame,
    ListFlowable,
    ListItem,
    PageTemplate,
    Paragraph,
    Spacer,
    Table,
    TableStyle,
)

MAX_BYTES = 50_000_000
IN_PROCESS = ReaderLimits(isolate=False)
HEADER = "Journal of Mineral Health · Vol. 12"
HEADER_RIGHT = "Issue 3, Spring 2024"
FOOTER = "© Mineral Health Press"
BOILERPLATE = (HEADER, "Journal of Mineral Health", HEADER_RIGHT, "Spring 2024", FOOTER, "Mineral Health Press", "Page ")

# ------------------------------------------------------------------------------------------ fixtures: content

PARAGRAPHS = [
    ("Calcium and magnesium are minerals that work as partners in the body. Calcium builds bones and teeth, while "
    "magnesium helps the body use calcium and keeps it out of soft tissues. When magnesium is low, calcium can settle "
    "in arteries, kidneys and joints, a process known as ectopic calcification."),
    ("Most adults need between 700 and 1,000 milligrams of calcium a day. Dairy foods, fortified plant drinks, tofu "
    "and canned fish with soft bones are good sources. Older adults absorb calcium less efficiently, so their needs "
    "are slightly higher."),
    ("Magnesium takes part in more than three hundred enzyme reactions. It helps muscles relax after they contract, "
    "supports a steady heart rhythm and is needed to turn food into energy. Deficiency can cause cramps, tiredness "
    "and an irregular heartbeat."),
    ("A varied diet usually provides enough magnesium. People who drink a lot of alcohol, take certain diuretics or "
    "have digestive diseases such as coeliac disease are more likely to run low."),
    ("The figures in the table are reference intakes for healthy people. They are not targets for supplements, and "
    "needs differ in pregnancy and in kidney disease."),
    ("Supplements can help people who cannot meet their needs from food. Magnesium citrate and glycinate are absorbed "
    "better than magnesium oxide. Taking more than 350 milligrams of supplemental magnesium a day can cause "
    "diarrhoea."),
    ("Calcium supplements are best taken with meals and in doses of no more than 500 milligrams at a time. Very high "
    "calcium intakes from supplements have been linked to kidney stones."),
    ("Vitamin D helps the gut absorb calcium, and vitamin K2 helps direct calcium into bone. Both vitamins depend on "
    "magnesium to work properly, which is one more reason to keep magnesium intake adequate."),
    ("Sunlight on the skin makes vitamin D in summer. In winter, many people in northern countries need a supplement "
    "of 10 micrograms a day."),
    ("See a doctor if you have muscle cramps that do not go away, an irregular heartbeat or numbness in your fingers. "
    "These can be signs of low magnesium or low calcium, and a simple blood test can check your levels."),
    ("Do not start high-dose supplements without advice if you have kidney disease, because your kidneys may not be "
    "able to remove the excess minerals."),
]
LIST_LEAD = "Good food sources of magnesium include:"
LIST_ITEMS = [
    "leafy green vegetables such as spinach and kale",
    "nuts and seeds, for example almonds and pumpkin seeds",
    "wholegrain bread, brown rice and oats",
    "beans, lentils and chickpeas",
]
TABLE = [
    ["Age group", "Calcium mg/day", "Magnesium mg/day"],
    ["Adults 19 to 50", "1000", "310 to 420"],
    ["Adults over 50", "1200", "320 to 420"],
    ["Teenagers 14 to 18", "1300", "360 to 410"],
]
TITLE = "Calcium and magnesium"
HEADINGS = ["Why they matter", "Good sources of magnesium", "How much you need", "Supplements", "Vitamin D and vitamin K2", "When to see a doctor"]


def _story(columns: int) -> list:
    body = ParagraphStyle("body", fontName="Helvetica", fontSize=11, leading=16, spaceAfter=9)
    h1 = ParagraphStyle("h1", fontName="Helvetica-Bold", fontSize=20, leading=26, spaceAfter=10)
    h2 = ParagraphStyle("h2", fontName="Helvetica-Bold", fontSize=14, leading=18, spaceBefore=6, spaceAfter=6)
    cell = ParagraphStyle("cell", fontName="Helvetica", fontSize=9, leading=11)
    head = ParagraphStyle("head", parent=cell, fontName="Helvetica-Bold")
    cells = [[Paragraph(text, head if r == 0 else cell) for text in row] for r, row in enumerate(TABLE)]
    table = Table(cells, colWidths=[75, 70, 75] if columns == 2 else [140] * 3)  # cells wrap in narrow columns
    table.setStyle(TableStyle([("GRID", (0, 0), (-1, -1), 0.5, colors.black)]))
    p = PARAGRAPHS
    return [
        Paragraph(TITLE, h1),
        Paragraph(HEADINGS[0], h2), Paragraph(p[0], body), Paragraph(p[1], body), Paragraph(p[2], body),
        Paragraph(HEADINGS[1], h2), Paragraph(LIST_LEAD, body),
        ListFlowable([ListItem(Paragraph(t, body)) for t in LIST_ITEMS], bulletType="bullet", start="•", bulletFontName="Helvetica"),
        Spacer(1, 8), Paragraph(p[3], body),
        Paragraph(HEADINGS[2], h2), table, Spacer(1, 10), Paragraph(p[4], body),
        Paragraph(HEADINGS[3], h2), Paragraph(p[5], body), Paragraph(p[6], body),
        Paragraph(HEADINGS[4], h2), Paragraph(p[7], body), Paragraph(p[8], body),
        Paragraph(HEADINGS[5], h2), Paragraph(p[9], body), Paragraph(p[10], body),
    ]


def _running_header_footer(canvas, doc) -> None:
    width, height = A4
    canvas.saveState()
    canvas.setFont("Helvetica", 8)
    canvas.drawString(56, height - 40, HEADER)
    canvas.drawRightString(width - 56, height - 40, HEADER_RIGHT)
    canvas.drawString(56, 30, FOOTER)
    canvas.drawRightString(width - 56, 30, f"Page {doc.page}")
    canvas.restoreState()


def make_article_pdf(path: Path, *, columns: int) -> Path:
    """The article laid out by reportlab's platypus, one or two columns, with a running header and footer."""
    width, height = A4
    margin = 210 if columns == 1 else 280  # tall margins, so that the article runs over three pages or more
    top, bottom = height - margin, margin
    if columns == 1:
        frames = [Frame(70, bottom, width - 140, top - bottom, id="body")]
    else:
        gutter = 24
        col = (width - 140 - gutter) / 2
        frames = [Frame(70, bottom, col, top - bottom, id="left"), Frame(70 + col + gutter, bottom, col, top - bottom, id="right")]
    doc = BaseDocTemplate(str(path), pagesize=A4, pageTemplates=[PageTemplate(frames=frames, onPage=_running_header_footer)])
    doc.build(_story(columns))
    return path


def _draw_page(c, lines: list[tuple[str, float, str]], *, page: int, x: float = 72, y: float = 700, leading: float = 16) -> None:
    """Draw (font, size, text) lines from the top; an empty text is a paragraph gap."""
    width, height = A4
    c.setFont("Helvetica", 8)
    c.drawString(72, height - 36, "Mineral Health Notes")
    c.drawCentredString(width / 2, 30, f"- {page} -")
    for font, size, text in lines:
        if text:
            c.setFont(font, size)
            c.drawString(x, y, text)
        y -= leading if text else leading * 0.8


BODY = ("Helvetica", 11)
CROSS_SENTENCE = "Magnesium also helps the body to absorb and use calcium from food, which keeps bones strong."


def make_crossing_pdf(path: Path) -> Path:
    """Two pages drawn line by line: hyphenated line ends, a bold heading, and a sentence that crosses the page break."""
    c = rl_canvas.Canvas(str(path), pagesize=A4)
    f, s = BODY
    _draw_page(c, [
        ("Helvetica-Bold", 18, "Minerals and absorption"),
        ("", 0, ""),
        (f, s, "Many people take supplements of magne-"),
        (f, s, "sium to ease cramps, but the well-"),
        (f, s, "known advice is to eat a varied diet first."),
        (f, s, "This well-known rule applies to calcium too."),
        ("", 0, ""),
        ("Helvetica-Bold", s, "Key points"),
        (f, s, "Turmeric has an anti-"),
        (f, s, "inflammatory effect in some studies. The word anti-inflammatory"),
        (f, s, "is used loosely. Advice for non-"),
        (f, s, "European diets differs."),
        ("", 0, ""),
        (f, s, "Magnesium also helps the body to absorb and"),
    ], page=1)
    c.showPage()
    _draw_page(c, [
        (f, s, "use calcium from food, which keeps bones strong."),
        (f, s, "Without it, calcium may stay in the blood."),
        ("", 0, ""),
        (f, s, "A final paragraph closes the notes."),
    ], page=2)
    c.showPage()
    c.save()
    return path


def make_cropped_pdf(path: Path) -> Path:
    """One page whose crop box starts 50 points in from the media box's corner."""
    c = rl_canvas.Canvas(str(path), pagesize=A4)
    c.setCropBox((50, 60, 545, 780))
    c.setFont("Helvetica", 12)
    c.drawString(100, 600, "Iron helps red blood cells carry oxygen.")
    c.drawString(100, 580, "Vitamin C helps the body absorb iron.")
    c.showPage()
    c.save()
    return path


def make_rotated_table_pdf(path: Path) -> Path:
    """A landscape page as scanners and office suites make them: content drawn turned, shown with /Rotate 90.

    It has a crop box too, and a ruled table, so positions go through both offsets.
    """
    c = rl_canvas.Canvas(str(path), pagesize=A4)
    c.setPageRotation(90)
    c.setCropBox((30, 40, 560, 800))
    c.translate(120, 100)
    c.rotate(90)  # drawn going up the portrait page: it reads left to right once the page is turned clockwise
    c.setFont("Helvetica", 11)
    c.drawString(0, 0, "Iodine is needed to make thyroid hormones.")
    table = Table([["Mineral", "Adult need"], ["Iodine", "150 micrograms"], ["Selenium", "55 micrograms"]], colWidths=[120, 140])
    table.setStyle(TableStyle([("GRID", (0, 0), (-1, -1), 0.5, colors.black)]))
    table.wrapOn(c, 300, 200)
    table.drawOn(c, 0, -150)
    c.showPage()
    c.save()
    return path


def make_image_only_pdf(path: Path, *, text_on_first_page: bool = False) -> Path:
    """Pages that are pictures of text (a scan); optionally a first page with a real text layer."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (400, 200), "white")
    ImageDraw.Draw(image).rectangle((20, 20, 380, 60), fill="black")  # a "scanned" line of text
    c = rl_canvas.Canvas(str(path), pagesize=A4)
    for page in range(3):
        if page == 0 and text_on_first_page:
            c.setFont("Helvetica", 12)
            c.drawString(72, 700, "Copper helps the body form red blood cells.")
        c.drawImage(ImageReader(image), 72, 400, width=400, height=200)
        c.showPage()
    c.save()
    return path


def make_encrypted_pdf(path: Path, *, user_password: str) -> Path:
    c = rl_canvas.Canvas(str(path), pagesize=A4, encrypt=StandardEncryption(user_password, ownerPassword="owner-secret"))
    c.setFont("Helvetica", 12)
    c.drawString(72, 700, "Zinc supports the immune system.")
    c.showPage()
    c.save()
    return path


def raw_pdf(content: bytes, *, declared_pages: int = 1, compress: bool = True) -> bytes:
    """A one-page PDF written byte by byte, with `content` as its content stream (Flate-compressed)."""
    if compress:
        packer = zlib.compressobj(9)
        stream = b"".join(packer.compress(content[i : i + 1 << 20]) for i in range(0, len(content), 1 << 20)) + packer.flush()
    else:
        stream = content
    return _assemble_pdf([
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count %d >>" % declared_pages,
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << >> >>",
        b"<< /Length %d%s >>\nstream\n" % (len(stream), b" /Filter /FlateDecode" if compress else b"") + stream + b"\nendstream",
    ])


def zeros_bomb(size: int) -> bytes:
    """A content stream that inflates to `size` zero bytes (about 1,000 times its compressed size)."""
    packer = zlib.compressobj(9)
    chunk = bytes(1 << 20)
    stream = b"".join(packer.compress(chunk) for _ in range(size >> 20)) + packer.flush()
    return _assemble_pdf([
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << >> >>",
        b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(stream) + stream + b"\nendstream",
    ])


def _assemble_pdf(objects: list[bytes]) -> bytes:
    out = bytearray(b"%PDF-1.7\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def make_chromium_pdf(path: Path) -> Path:
    """The article printed by headless Chromium: two justified CSS columns, its own header (date, title) and
    footer (file URL, "1/3") on every page, bullets drawn as shapes, a bordered table."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if chromium is None:  # as the browser tests: a missing browser fails, it must not hide a reader failure
        pytest.fail("no chromium to print the PDF: apt-get install chromium (.ci/run does)")
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>Mineral notes</title><style>",
        "body{font:13pt serif} .cols{column-count:2;column-gap:24px;text-align:justify} td{padding:2px 4px}",
        "@page{size:A4;margin:5cm 2.5cm}</style></head><body>",  # tall margins: three pages or so
        f"<h1>{TITLE}</h1><div class='cols'><h2>{HEADINGS[0]}</h2>",
        *(f"<p>{p}</p>" for p in PARAGRAPHS[:3]),
        f"<h2>{HEADINGS[1]}</h2><p>{LIST_LEAD}</p><ul>", *(f"<li>{t}</li>" for t in LIST_ITEMS), "</ul>",
        f"<p>{PARAGRAPHS[3]}</p><h2>{HEADINGS[2]}</h2><table border='1' style='border-collapse:collapse'>",
        *("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in TABLE), "</table>",
        *(f"<p>{p}</p>" for p in PARAGRAPHS[4:]), "</div></body></html>",
    ]
    page = path.with_suffix(".html")
    page.write_text("\n".join(parts), encoding="utf-8")
    subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", f"--print-to-pdf={path}", page.as_uri()],
        check=True, capture_output=True, timeout=120,
    )
    return path


HTML_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Calcium and magnesium | Health Site</title>
<style>.banner { color: red } /* STYLE-TEXT */</style>
<script>var tracking = "SCRIPT-TEXT";</script></head>
<body>
<a href="#main" class="skip-link">Skip to main content</a>
<header class="site-header"><div class="logo">HEADER-TEXT HealthSite</div>
<nav><ul><li><a href="/">NAV-TEXT Home</a></li><li><a href="/az">Health A to Z</a></li></ul></nav></header>
<div id="cookie-consent" class="cookie-banner"><p>COOKIE-TEXT We use cookies to improve your experience.</p>
<button>Accept all cookies</button></div>
<main id="main">
<article>
<h1>Calcium &amp; magnesium</h1>
<p>Calcium   and magnesium are minerals that
   work as partners in the body.</p>
<h2>Good sources of magnesium</h2>
<p>Good food sources of magnesium include:</p>
<ul><li>leafy green vegetables</li><li>nuts, such as <b>almonds</b></li><li>wholegrain bread<ul><li>oats</li></ul></li></ul>
<h2>How much you need</h2>
<table><thead><tr><th>Age group</th><th>Calcium mg/day</th></tr></thead>
<tbody><tr><td>Adults 19 to 50</td><td>1000</td></tr><tr><td>Over 50 | women</td><td>1200</td></tr></tbody></table>
<p>Ask a doctor&nbsp;before taking supplements.<br><br>Line two of the note.</p>
<div style="display: none">HIDDEN-TEXT</div>
<div hidden>HIDDEN-ATTR-TEXT</div>
<section class="related"><h2>Related articles</h2><ul><li><a href="/iron">RELATED-TEXT Iron</a></li></ul></section>
<form><label>FORM-TEXT Search</label><input name="q"></form>
</article>
<aside><h3>More on vitamins</h3><p>ASIDE-TEXT Vitamin D explained</p></aside>
</main>
<footer><p>FOOTER-TEXT © 2024 HealthSite</p></footer>
</body></html>
"""
HTML_BOILERPLATE = [
    "STYLE-TEXT", "SCRIPT-TEXT", "Skip to main", "HEADER-TEXT", "NAV-TEXT", "Health A to Z", "COOKIE-TEXT", "Accept all",
    "HIDDEN-TEXT", "HIDDEN-ATTR-TEXT", "Related articles", "RELATED-TEXT", "FORM-TEXT", "ASIDE-TEXT", "More on vitamins",
    "FOOTER-TEXT", "Health Site",
]


@pytest.fixture(scope="module")
def pdfs(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("pdfs")
    return {
        "one": make_article_pdf(folder / "one-column.pdf", columns=1),
        "two": make_article_pdf(folder / "two-column.pdf", columns=2),
        "crossing": make_crossing_pdf(folder / "crossing.pdf"),
        "cropped": make_cropped_pdf(folder / "cropped.pdf"),
        "rotated": make_rotated_table_pdf(folder / "rotated.pdf"),
    }


@pytest.fixture(scope="module")
def extracted(pdfs) -> dict[str, Extracted]:
    """Each generated PDF read once, through the real path (child process with limits)."""
    return {name: read_file(path, max_bytes=MAX_BYTES) for name, path in pdfs.items()}


# ------------------------------------------------------------------------------------------ the oracle


def _flat(text: str) -> str:
    return re.sub(r"[\W_]+", "", text.lower())


def _to_user_space(page, x: float, y: float) -> tuple[float, float]:
    """A point of the displayed page (points from the crop box's top left, after /Rotate) in PDF user space."""
    left, bottom, right, top = page.get_cropbox()
    rotation = page.get_rotation()
    if rotation == 0:
        return left + x, top - y
    if rotation == 90:  # shown turned clockwise: the displayed top edge is the page's left edge
        return left + y, bottom + x
    if rotation == 180:
        return right - x, bottom + y
    return right - y, top - x  # 270


def pdfium_text_in(path: Path, boxes: list[tuple[int, float, float, float, float]]) -> str:
    """What PDFium finds inside our boxes, converted to PDF user space."""
    document = pdfium.PdfDocument(str(path))
    try:
        found = []
        for page_number, x0, top, x1, bottom in boxes:
            page = document[page_number - 1]
            (ax, ay), (bx, by) = _to_user_space(page, x0, top), _to_user_space(page, x1, bottom)
            textpage = page.get_textpage()
            found.append(textpage.get_text_bounded(min(ax, bx) - 0.5, min(ay, by) - 0.5, max(ax, bx) + 0.5, max(ay, by) + 0.5))
        return " ".join(found)
    finally:
        document.close()


def assert_quote_on_its_page(path: Path, doc: Extracted, start: int, end: int) -> None:
    """The quote's boxes start on `page_of(start)` and PDFium reads the quote's words (and little else) in them."""
    quote = doc.text[start:end]
    boxes = doc.boxes(start, end)
    assert boxes, f"no boxes for {quote!r}"
    assert boxes[0][0] == doc.page_of(start)
    assert boxes[-1][0] == doc.page_of(end - 1) or not doc.boxes(end - 1, end)
    inside = _flat(pdfium_text_in(path, boxes))
    for word in re.findall(r"\w+", quote.lower()):
        assert _flat(word) in inside, f"{word!r} of {quote!r} not found by PDFium in its boxes: {inside!r}"
    assert len(inside) <= len(_flat(quote)) * 1.2 + 12, f"boxes of {quote!r} hold more text: {inside!r}"


def _normalised(text: str) -> str:
    return " ".join(text.split())


# ------------------------------------------------------------------------------------------ PDF: content and order


@pytest.mark.parametrize("name", ["one", "two"])
def test_running_headers_footers_and_page_numbers_are_never_in_the_text(extracted, name):
    doc = extracted[name]
    assert doc.kind == "pdf" and doc.page_count >= 3, doc.page_count
    for marker in BOILERPLATE:
        assert marker not in doc.text
    assert not re.search(r"(?m)^\s*\d+\s*$", doc.text), "a bare page number is in the text"


@pytest.mark.parametrize("name", ["one", "two"])
def test_every_paragraph_reads_whole_and_in_order(extracted, name):
    """Column 1 is read before column 2: every paragraph is contiguous and the paragraphs keep the story's order."""
    flat = _normalised(extracted[name].text)
    positions = []
    for paragraph in PARAGRAPHS:
        where = flat.find(paragraph)
        assert where >= 0, f"not contiguous in the {name}-column text: {paragraph[:60]!r}..."
        positions.append(where)
    assert positions == sorted(positions)


def test_two_columns_read_column_one_then_column_two(extracted):
    """On every page, each paragraph of the left column comes before each paragraph of the right one."""
    doc = extracted["two"]
    half = A4[0] / 2
    columns: dict[tuple[int, str], list[int]] = {}
    for paragraph in PARAGRAPHS:
        start = doc.text.index(paragraph[:40])
        page, x0, *_ = doc.boxes(start, start + 1)[0]
        columns.setdefault((page, "left" if x0 < half else "right"), []).append(start)
    assert (1, "right") in columns, "the layout put no paragraph in column 2 of page 1; the fixture changed"
    for (page, side), starts in columns.items():
        if side == "right" and (page, "left") in columns:
            assert max(columns[(page, "left")]) < min(starts), f"page {page}: column 2 read before column 1"


@pytest.mark.parametrize("name", ["one", "two"])
def test_headings_lists_and_tables_keep_their_structure(extracted, name):
    text = extracted[name].text
    assert re.search(rf"(?m)^# {TITLE}$", text)
    for heading in HEADINGS:
        assert re.search(rf"(?m)^#{{2,4}} {heading}$", text), heading
    for item in LIST_ITEMS:
        assert re.search(rf"(?m)^- {re.escape(item)}$", _normalised_lines(text)), item
    header = "| " + " | ".join(TABLE[0]) + " |"
    rows = ["| " + " | ".join(row) + " |" for row in TABLE[1:]]
    table = "\n".join([header, "|---|---|---|", *rows])
    assert table in text
    chunks = chunk_document(Document(source=f"{name}.pdf", text=text, sha256="x"))
    row_chunk = next(c for c in chunks if c.kind == "table_row" and "Adults over 50" in c.text)
    assert "Age group: Adults over 50; Calcium mg/day: 1200" in row_chunk.context
    assert row_chunk.section == HEADINGS[2]


def _normalised_lines(text: str) -> str:
    return "\n".join(" ".join(line.split()) for line in text.split("\n"))


def test_a_sentence_across_a_page_break_is_one_quote_on_both_pages(extracted, pdfs):
    doc = extracted["crossing"]
    start = doc.text.index(CROSS_SENTENCE)
    end = start + len(CROSS_SENTENCE)
    assert doc.page_of(start) == 1 and doc.page_of(end - 1) == 2
    assert {box[0] for box in doc.boxes(start, end)} == {1, 2}
    assert doc.pages[1] == doc.text.index("use calcium from food")
    chunk = next(c for c in chunk_document(Document(source="c.pdf", text=doc.text, sha256="x")) if "absorb and" in c.text)
    assert chunk.text == CROSS_SENTENCE
    assert_quote_on_its_page(pdfs["crossing"], doc, start, end)


def test_line_end_hyphens_are_joined_for_search(extracted, pdfs):
    text = extracted["crossing"].text
    assert "supplements of magnesium to ease cramps" in text  # a line-break hyphen is left out
    assert "but the well-known advice" in text  # the document writes "well-known" elsewhere: the hyphen stays
    assert "an anti-inflammatory effect" in text  # ... and "anti-inflammatory"
    assert "for non-European diets" in text  # a capital after the hyphen: the hyphen stays
    start = text.index("magnesium to ease")
    boxes = extracted["crossing"].boxes(start, start + len("magnesium"))
    assert len(boxes) == 2 and boxes[0][2] < boxes[1][2]  # "magne" ends one line, "sium" starts the next
    assert_quote_on_its_page(pdfs["crossing"], extracted["crossing"], start, start + len("magnesium"))


def test_bold_body_size_line_is_a_heading(extracted):
    assert re.search(r"(?m)^#{1,6} Key points$", extracted["crossing"].text)
    assert re.search(r"(?m)^# Minerals and absorption$", extracted["crossing"].text)


# ------------------------------------------------------------------------------------------ PDF: positions


@pytest.mark.parametrize("name", ["one", "two", "crossing", "cropped", "rotated"])
def test_every_quote_lies_on_its_page_for_an_independent_extractor(extracted, pdfs, name):
    """100% of chunk quotes: PDFium finds their words inside their boxes, on the page `page_of` names."""
    doc = extracted[name]
    chunks = chunk_document(Document(source=f"{name}.pdf", text=doc.text, sha256="x"))
    assert chunks
    for chunk in chunks:
        if chunk.kind in ("list", "table"):
            continue  # made of the item and row quotes checked here
        assert_quote_on_its_page(pdfs[name], doc, chunk.start, chunk.end)


@pytest.mark.integration
def test_chromium_print_to_pdf_reads_like_the_article(tmp_path):
    """A PDF from another producer: Chromium's header and footer go, columns, list and table stay."""
    path = make_chromium_pdf(tmp_path / "printed.pdf")
    doc = read_file(path, max_bytes=MAX_BYTES)
    assert doc.page_count >= 2
    assert "Mineral notes" not in doc.text and "file:" not in doc.text and not re.search(r"\d:\d\d", doc.text)
    assert not re.search(r"(?m)^\s*\d+\s*/\s*\d+\s*$", doc.text), "Chromium's page counter is in the text"
    flat = _normalised(doc.text)
    positions = [flat.find(p) for p in PARAGRAPHS]
    assert -1 not in positions and positions == sorted(positions)
    for item in LIST_ITEMS:
        assert f"\n- {item}\n" in doc.text
    assert "| " + " | ".join(TABLE[0]) + " |\n|---|---|---|\n| " + " | ".join(TABLE[1]) + " |" in doc.text
    for chunk in chunk_document(Document(source="printed.pdf", text=doc.text, sha256="x")):
        if chunk.kind not in ("list", "table"):
            assert_quote_on_its_page(path, doc, chunk.start, chunk.end)


def test_rotated_and_cropped_page_keeps_its_table(extracted):
    doc = extracted["rotated"]
    assert "| Mineral | Adult need |\n|---|---|\n| Iodine | 150 micrograms |\n| Selenium | 55 micrograms |" in doc.text
    width, height = doc.geometry.page_sizes[0]
    assert width > height  # A4 turned: the displayed page is landscape


def test_boxes_merge_per_line_and_skip_inserted_characters(extracted):
    doc = extracted["one"]
    start = doc.text.index(PARAGRAPHS[2][:60])
    boxes = doc.boxes(start, start + len(PARAGRAPHS[2]))
    assert 2 <= len(boxes) <= 6  # a few lines, not ~250 characters
    assert all(x0 < x1 and top < bottom for _, x0, top, x1, bottom in boxes)
    assert doc.boxes(start - 2, start) == []  # the blank line before a paragraph is the reader's, not the page's


def test_geometry_round_trips_through_bytes(extracted):
    geometry = extracted["two"].geometry
    blob = geometry.to_bytes()
    assert PageGeometry.from_bytes(blob) == geometry
    assert len(blob) < 20 * len(extracted["two"].text) + 2000
    with pytest.raises(ValueError, match="rebuild"):
        PageGeometry.from_bytes(b"not an npz")


# ------------------------------------------------------------------------------------------ PDF: refusals and limits


def test_image_only_pdf_says_it_has_no_text_layer(tmp_path):
    with pytest.raises(Unreadable, match="no text layer"):
        read_file(make_image_only_pdf(tmp_path / "scan.pdf"), max_bytes=MAX_BYTES)


def test_pages_without_a_text_layer_are_reported(tmp_path):
    doc = read_file(make_image_only_pdf(tmp_path / "mixed.pdf", text_on_first_page=True), max_bytes=MAX_BYTES, limits=IN_PROCESS)
    assert doc.text == "Copper helps the body form red blood cells.\n"
    assert doc.pages == [0, len(doc.text), len(doc.text)]
    assert doc.notes == ("pages without a text layer (images only), not indexed: 2, 3",)


def test_encrypted_pdf_is_refused_with_a_reason(tmp_path):
    with pytest.raises(Unreadable, match="encrypted"):
        read_file(make_encrypted_pdf(tmp_path / "locked.pdf", user_password="user-secret"), max_bytes=MAX_BYTES, limits=IN_PROCESS)


def test_pdf_with_only_an_owner_password_is_read(tmp_path):
    doc = read_file(make_encrypted_pdf(tmp_path / "restricted.pdf", user_password=""), max_bytes=MAX_BYTES, limits=IN_PROCESS)
    assert "Zinc supports the immune system." in doc.text


def test_damaged_pdfs_are_refused(tmp_path, pdfs):
    data = pdfs["one"].read_bytes()
    truncated = tmp_path / "truncated.pdf"
    truncated.write_bytes(data[: len(data) * 6 // 10])
    with pytest.raises(Unreadable, match="damaged"):
        read_file(truncated, max_bytes=MAX_BYTES)
    garbage = tmp_path / "garbage.pdf"
    garbage.write_bytes(b"%PDF-1.7\n" + bytes(range(256)) * 40 + b"\n%%EOF\n")
    with pytest.raises(Unreadable, match="damaged|no pages|no text"):
        read_file(garbage, max_bytes=MAX_BYTES)


def test_page_limit_refuses_absurd_page_counts(tmp_path):
    many = tmp_path / "many.pdf"
    c = rl_canvas.Canvas(str(many))
    for _ in range(2_001):
        c.showPage()
    c.save()
    with pytest.raises(Unreadable, match="2,001 pages, over the limit of 2,000"):
        read_file(many, max_bytes=MAX_BYTES)
    liar = tmp_path / "declares-a-million.pdf"
    liar.write_bytes(raw_pdf(b"BT ET", declared_pages=1_000_000))
    with pytest.raises(Unreadable, match="1,000,000 pages"):
        read_file(liar, max_bytes=MAX_BYTES, limits=IN_PROCESS)


@pytest.mark.integration
def test_time_limit_stops_a_stalling_pdf_and_the_caller_carries_on(tmp_path, pdfs):
    bomb = tmp_path / "stall.pdf"
    bomb.write_bytes(raw_pdf(b"q Q\n" * 3_000_000))  # 12 MB of no-op operators, 30 KB on disk
    started = time.monotonic()
    with pytest.raises(Unreadable, match="longer than 1.5 s"):
        read_file(bomb, max_bytes=MAX_BYTES, limits=ReaderLimits(timeout_s=1.5))
    assert time.monotonic() - started < 10
    assert "Iron helps red blood cells" in read_file(pdfs["cropped"], max_bytes=MAX_BYTES).text  # the caller carries on


@pytest.mark.integration
def test_memory_limit_stops_a_decompression_bomb(tmp_path):
    bomb = tmp_path / "inflate.pdf"
    bomb.write_bytes(zeros_bomb(400 << 20))  # 400 MB of zeros in well under 1 MB
    assert bomb.stat().st_size < 2_000_000
    with pytest.raises(Unreadable, match="memory"):
        read_file(bomb, max_bytes=MAX_BYTES, limits=ReaderLimits(max_memory_bytes=150_000_000, timeout_s=60))


def test_limits_are_validated():
    with pytest.raises(ValueError, match="max_pages must be a positive integer, got 0"):
        ReaderLimits(max_pages=0)
    with pytest.raises(ValueError, match="timeout_s must be > 0"):
        ReaderLimits(timeout_s=0)


# ------------------------------------------------------------------------------------------ HTML


def test_html_keeps_the_main_content_only(tmp_path):
    path = tmp_path / "page.html"
    path.write_text(HTML_PAGE, encoding="utf-8")
    doc = read_file(path, max_bytes=MAX_BYTES)
    assert doc.kind == "html" and doc.pages is None and doc.boxes(0, 5) == [] and doc.page_of(0) is None
    for marker in HTML_BOILERPLATE:
        assert marker not in doc.text, marker
    assert doc.text == (
        "# Calcium & magnesium\n\n"
        "Calcium and magnesium are minerals that work as partners in the body.\n\n"
        "## Good sources of magnesium\n\n"
        "Good food sources of magnesium include:\n\n"
        "- leafy green vegetables\n- nuts, such as almonds\n- wholegrain bread\n  - oats\n\n"
        "## How much you need\n\n"
        "| Age group | Calcium mg/day |\n|---|---|\n| Adults 19 to 50 | 1000 |\n| Over 50 / women | 1200 |\n\n"
        "Ask a doctor before taking supplements.\n\n"
        "Line two of the note.\n"
    )


def test_html_structure_reaches_the_chunker():
    doc = extract_html(HTML_PAGE.encode("utf-8"))
    chunks = chunk_document(Document(source="page.html", text=doc.text, sha256="x"))
    item = next(c for c in chunks if c.kind == "list_item" and c.text == "nuts, such as almonds")
    assert item.section == "Good sources of magnesium" and "Good food sources" in item.context
    row = next(c for c in chunks if c.kind == "table_row" and "1200" in c.text)
    assert "Age group: Over 50 / women; Calcium mg/day: 1200" in row.context
    for chunk in chunks:
        assert doc.text[chunk.start : chunk.end] == chunk.text


def test_html_without_main_uses_body_minus_boilerplate_and_decodes_its_charset():
    page = (
        '<html><head><meta charset="windows-1252"></head><body><div class="navbar">Menu</div>'
        "<h1>Caf\xe9 au lait</h1><p>Milk is a source of calcium.</p><footer>Contact us</footer></body></html>"
    ).encode("cp1252")
    assert extract_html(page).text == "# Café au lait\n\nMilk is a source of calcium.\n"


def test_html_with_no_content_is_unreadable():
    with pytest.raises(Unreadable, match="no text"):
        extract_html(b"<html><body><nav>Home</nav><script>app()</script><div id=root></div></body></html>")


def test_html_class_names_are_a_guess_that_spares_the_title():
    page = b'<body><div class="hero-banner"><h1>Calcium</h1></div><p>Calcium is a mineral.</p><div class="promo">Buy now</div></body>'
    assert extract_html(page).text == "# Calcium\n\nCalcium is a mineral.\n"


def test_html_nested_absurdly_deep_is_refused_before_parsing():
    depth = 100_000  # lexbor needs about a minute for this; the pre-scan refuses it in well under a second
    page = ("<html><body>" + "<div>" * depth + "<p>Deep.</p>" + "</div>" * depth + "</body></html>").encode()
    started = time.monotonic()
    with pytest.raises(Unreadable, match="nested 100,002 deep"):
        extract_html(page)
    assert time.monotonic() - started < 5


# ------------------------------------------------------------------------------------------ text, Markdown, sniffing


def test_type_is_decided_by_content_not_by_name(tmp_path, pdfs):
    disguised_pdf = tmp_path / "report.txt"
    disguised_pdf.write_bytes(pdfs["cropped"].read_bytes())
    assert read_file(disguised_pdf, max_bytes=MAX_BYTES).kind == "pdf"
    disguised_html = tmp_path / "saved.md"
    disguised_html.write_text("\ufeff<!-- saved -->\n<!DOCTYPE html><html><body><p>Zinc is a mineral.</p></body></html>", encoding="utf-8")
    assert read_file(disguised_html, max_bytes=MAX_BYTES).kind == "html"
    plain = tmp_path / "notes.html"
    plain.write_text("Zinc is a mineral, not <b>bold</b> markup.\n", encoding="utf-8")
    assert read_file(plain, max_bytes=MAX_BYTES).kind == "text"
    assert detect_kind(b"Notes on %PDF- files", ".txt") == "text"


def test_text_files_keep_todays_rules(tmp_path):
    cases = {
        "binary.txt": (b"\x00\x01abc", "binary"),
        "latin1.txt": ("caf\xe9".encode("latin-1"), "not UTF-8"),
        "blank.md": (b"  \n\n", "empty"),
        "big.txt": (b"x" * 2_000, "over the limit of 1000"),
    }
    for name, (data, reason) in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(Unreadable, match=reason):
            read_file(tmp_path / name, max_bytes=1_000)
    (tmp_path / "windows.md").write_bytes(b"# Zinc\r\nZinc  is a mineral. \r\n")
    doc = read_file(tmp_path / "windows.md", max_bytes=1_000)
    assert (doc.kind, doc.text) == ("markdown", "# Zinc\r\nZinc  is a mineral. \r\n")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    text=st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), min_size=1, max_size=300),
    suffix=st.sampled_from([".txt", ".md", ".markdown", ".text", ""]),
)
def test_text_and_markdown_are_the_decoded_file(tmp_path, text, suffix):
    path = tmp_path / f"doc{suffix}"
    data = text.encode("utf-8")
    path.write_bytes(data)
    kind = detect_kind(data[:4096], suffix)
    if not text.strip() or kind in ("html", "pdf"):
        return
    doc = read_file(path, max_bytes=MAX_BYTES)
    assert doc.text == data.decode("utf-8")
    assert doc.kind == ("markdown" if suffix in (".md", ".markdown") else "text")


@pytest.fixture(scope="module")
def every_kind(extracted) -> list[Extracted]:
    return [
        *extracted.values(),
        extract_html(HTML_PAGE.encode("utf-8")),
        Extracted(text="# Zinc\nZinc is a mineral.\n", kind="markdown"),
        Extracted(text="Zinc is a mineral.\r\n", kind="text"),
    ]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_boxes_and_page_of_never_raise_on_a_valid_span(every_kind, data):
    doc = data.draw(st.sampled_from(every_kind))
    n = len(doc.text)
    start = data.draw(st.integers(0, n - 1))
    end = data.draw(st.integers(start + 1, n))
    boxes = doc.boxes(start, end)
    page = doc.page_of(start)
    doc.page_of(end)
    if doc.kind != "pdf":
        assert boxes == [] and page is None
        return
    assert 1 <= page <= doc.page_count
    for number, x0, top, x1, bottom in boxes:
        width, height = doc.geometry.page_sizes[number - 1]
        assert 1 <= number <= doc.page_count
        assert -1 <= x0 <= x1 <= width + 1 and -1 <= top <= bottom <= height + 1
    drawn = [i for i in range(start, end) if not doc.text[i].isspace() and doc.boxes(i, i + 1)]
    assert bool(boxes) == bool(drawn)
    if boxes:
        assert boxes[0][0] == page or not doc.boxes(start, start + 1)
    assert page == int(np.searchsorted(np.asarray(doc.pages), start, side="right")) or doc.boxes(start, start + 1)


def test_invalid_spans_are_rejected(extracted):
    doc = extracted["cropped"]
    with pytest.raises(ValueError, match="span"):
        doc.boxes(5, 2)
    with pytest.raises(ValueError, match="span"):
        doc.page_of(len(doc.text) + 1)
