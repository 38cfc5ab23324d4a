"""The project's own questions asked of the article as a web page and as PDFs: as good as the .txt (real model).

The article (corpus/*.txt) is converted here to an HTML page with a menu, cookie banner and
footer, to a one-column PDF and to a two-column PDF with a running header and footer
(reportlab). Each is alone in a corpus and evaluated with the product's own `evaluate`:
hit@3 within 0.05 of the .txt figure, refusals as good, every PDF quote found on its cited
page by PDFium (pypdfium2), no boilerplate quoted. The figures are printed (run with `-s`):

    PYTHONPATH=. python -m pytest tests/test_formats_quality.py -m slow -s -q
"""

from __future__ import annotations

import json
import re
import shutil
from html import escape
from pathlib import Path

import pytest

from assistant import Assistant
from assistant.evaluation.questions import evaluate, load_questions
from assistant.readers import read_file
from assistant.settings import Settings
from conftest import ARTICLE, ROOT

pytest.importorskip("pypdfium2")
pytest.importorskip("reportlab")

from test_readers import pdfium_text_in  # noqa: E402

pytestmark = pytest.mark.slow

PDF_HEADER, PDF_FOOTER = "Mineral Health Review · Issue 7", "© 2024 Example Press"
HTML_BOILERPLATE = ("Skip to content", "Home", "Conditions A to Z", "We use cookies", "Accept all", "Health Pages Ltd",
                    "Privacy policy", "Related articles")
PDF_BOILERPLATE = ("Mineral Health Review", "Issue 7", "Example Press", "Page ")


def article_blocks() -> list[tuple[str, object]]:
    """The article as (kind, content) blocks: title, heading, paragraph, list (items), table (rows)."""
    lines = [ln for ln in ARTICLE.read_text(encoding="utf-8").splitlines() if ln.strip()]
    blocks: list[tuple[str, object]] = [("title", lines[0])]
    for line in lines[1:]:
        if line.startswith("- "):
            if blocks[-1][0] != "list":
                blocks.append(("list", []))
            blocks[-1][1].append(line[2:])
        elif line.startswith("|"):
            if blocks[-1][0] != "table":
                blocks.append(("table", []))
            if not re.fullmatch(r"[|\s:-]+", line):
                blocks[-1][1].append([cell.strip() for cell in line.strip("|").split("|")])
        elif len(line.split()) <= 12 and not line.rstrip().endswith((".", ":", "!")):
            blocks.append(("heading", line))
        else:
            blocks.append(("paragraph", line))
    return blocks


def write_html(path: Path) -> Path:
    body = []
    for kind, content in article_blocks():
        if kind == "title":
            body.append(f"<h1>{escape(content)}</h1>")
        elif kind == "heading":
            body.append(f"<h2>{escape(content)}</h2>")
        elif kind == "paragraph":
            body.append(f"<p>{escape(content)}</p>")
        elif kind == "list":
            body.append("<ul>" + "".join(f"<li>{escape(item)}</li>" for item in content) + "</ul>")
        else:
            head, *rows = content
            body.append("<table><thead><tr>" + "".join(f"<th>{escape(c)}</th>" for c in head) + "</tr></thead><tbody>"
                        + "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>" for row in rows)
                        + "</tbody></table>")
    page = f"""<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Minerals | Health Pages Ltd</title></head>
<body><a class="skip-link" href="#main">Skip to content</a>
<header><nav><ul><li><a href="/">Home</a></li><li><a href="/az">Conditions A to Z</a></li></ul></nav></header>
<div class="cookie-banner" id="cookie-consent"><p>We use cookies to improve your experience.</p><button>Accept all</button></div>
<main id="main"><article>{''.join(body)}</article>
<section class="related"><h2>Related articles</h2><ul><li><a href="/iron">Iron and you</a></li></ul></section></main>
<footer><p>© 2024 Health Pages Ltd · <a href="/privacy">Privacy policy</a></p></footer></body></html>"""
    path.write_text(page, encoding="utf-8")
    return path


def write_pdf(path: Path, *, columns: int) -> Path:
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.platypus import BaseDocTemplate, Frame, ListFlowable, ListItem, PageTemplate, Paragraph, Table, TableStyle

    body = ParagraphStyle("body", fontName="Helvetica", fontSize=10.5, leading=15, spaceAfter=8)
    h1 = ParagraphStyle("h1", fontName="Helvetica-Bold", fontSize=18, leading=23, spaceAfter=10)
    h2 = ParagraphStyle("h2", fontName="Helvetica-Bold", fontSize=13.5, leading=17, spaceBefore=6, spaceAfter=6)
    cell = ParagraphStyle("cell", fontName="Helvetica", fontSize=8.5, leading=10.5)
    story = []
    for kind, content in article_blocks():
        if kind in ("title", "heading", "paragraph"):
            story.append(Paragraph(escape(content), {"title": h1, "heading": h2, "paragraph": body}[kind]))
        elif kind == "list":
            story.append(ListFlowable([ListItem(Paragraph(escape(t), body)) for t in content], bulletType="bullet",
                                      start="•", bulletFontName="Helvetica"))
        else:
            width = (A4[0] - 140) / (2 if columns == 2 else 1) - (12 if columns == 2 else 0)
            table = Table([[Paragraph(escape(c), cell) for c in row] for row in content], colWidths=[width / 4] * 4)
            table.setStyle(TableStyle([("GRID", (0, 0), (-1, -1), 0.5, colors.black)]))
            story.append(table)

    def running(canvas, doc) -> None:
        canvas.saveState()
        canvas.setFont("Helvetica", 8)
        canvas.drawString(56, A4[1] - 40, PDF_HEADER)
        canvas.drawString(56, 30, PDF_FOOTER)
        canvas.drawRightString(A4[0] - 56, 30, f"Page {doc.page}")
        canvas.restoreState()

    width, height = A4
    top, bottom = height - 80, 70
    if columns == 1:
        frames = [Frame(70, bottom, width - 140, top - bottom)]
    else:
        col = (width - 140 - 24) / 2
        frames = [Frame(70, bottom, col, top - bottom, id="l"), Frame(70 + col + 24, bottom, col, top - bottom, id="r")]
    BaseDocTemplate(str(path), pagesize=A4, pageTemplates=[PageTemplate(frames=frames, onPage=running)]).build(story)
    return path


def _flat(text: str) -> str:
    return re.sub(r"[\W_]+", "", text.lower())


@pytest.fixture(scope="module")
def figures(tmp_path_factory) -> dict[str, dict]:
    items = load_questions(ROOT / "tests" / "fixtures" / "questions.jsonl")
    root = tmp_path_factory.mktemp("formats")
    makers = {
        "txt": lambda folder: Path(shutil.copy(ARTICLE, folder / ARTICLE.name)),
        "html": lambda folder: write_html(folder / "article.html"),
        "pdf-1col": lambda folder: write_pdf(folder / "article.pdf", columns=1),
        "pdf-2col": lambda folder: write_pdf(folder / "article.pdf", columns=2),
    }
    out = {}
    for name, make in makers.items():
        corpus = root / name / "corpus"
        corpus.mkdir(parents=True)
        path = make(corpus)
        bot = Assistant.load(Settings(corpus_dir=corpus, index_dir=root / name / "index"), on_rebuild=lambda m: None)
        answers = []

        def ask(question, history, bot=bot, answers=answers):
            answer = bot.ask(question, history=history)
            answers.append(answer)
            return answer

        try:
            report = evaluate(ask, items, corpus_dir=corpus)
        finally:
            bot.close()
        citations = [c for a in answers for c in a.citations]
        boilerplate = PDF_BOILERPLATE if path.suffix == ".pdf" else HTML_BOILERPLATE if path.suffix == ".html" else ()
        on_page = None
        if path.suffix == ".pdf":
            found = 0
            for c in citations:
                inside = _flat(pdfium_text_in(path, c.boxes)) if c.boxes else ""
                found += bool(c.boxes) and c.page == c.boxes[0][0] and all(
                    _flat(w) in inside for w in re.findall(r"\w+", c.quote.lower()))
            on_page = found / len(citations) if citations else 1.0
        pages = read_file(path, max_bytes=50_000_000).page_count
        out[name] = {**{k: round(v, 3) for k, v in report.figures.items()}, "pages": pages,
                     "quotes": len(citations), "quotes_on_cited_page": on_page,
                     "boilerplate_quotes": sum(any(m in c.quote for m in boilerplate) for c in citations)}
    print("\nformats quality:", json.dumps(out, indent=1, sort_keys=True))
    return out


@pytest.mark.parametrize("name", ["html", "pdf-1col", "pdf-2col"])
def test_each_format_answers_as_well_as_the_text_file(figures, name):
    base, got = figures["txt"], figures[name]
    assert got["hit@3"] >= base["hit@3"] - 0.05, (name, got, base)
    assert got["out_of_scope_refused"] >= base["out_of_scope_refused"] - 1e-9, (name, got, base)
    assert got["quotes_verbatim"] == 1.0 and got["boilerplate_quotes"] == 0, got
    if name.startswith("pdf"):
        assert got["pages"] >= 2, "one page would not exercise running headers and footers"
        assert got["quotes_on_cited_page"] == 1.0, got
