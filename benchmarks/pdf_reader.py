"""Time and peak memory of reading a generated N-page PDF (default 500) through `assistant.readers.read_file`.

The PDF is laid out by reportlab (the `test` extra): two columns, a running header and
footer with page numbers, headings, a bulleted list and a ruled table every few pages,
about 3,000 characters a page. Reading goes through the real path (a child process with
the default `ReaderLimits`). Peak memory is the child's maximum resident set size
(`RUSAGE_CHILDREN`), measured in a fresh process so that no other child counts.

Run: python benchmarks/pdf_reader.py [--pages 500] [--columns 2] [--keep out.pdf]
"""

from __future__ import annotations

import argparse
import random
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from assistant.readers import ReaderLimits, read_file

WORDS = (
    "calcium magnesium vitamin bone muscle heart dose daily intake food leafy greens nuts seeds absorption kidney "
    "supplement deficiency cramps rhythm enzyme energy adults older people blood test levels diet varied sources"
).split()


def _sentence(rng: random.Random) -> str:
    words = [rng.choice(WORDS) for _ in range(rng.randint(8, 18))]
    return " ".join(words).capitalize() + "."


def make_pdf(path: Path, pages: int, columns: int, seed: int = 0) -> None:
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.platypus import (
        BaseDocTemplate,
        Frame,
        ListFlowable,
        ListItem,
        PageTemplate,
        Paragraph,
        Table,
        TableStyle,
    )

    rng = random.Random(seed)
    width, height = A4
    body = ParagraphStyle("body", fontName="Helvetica", fontSize=9.5, leading=12, spaceAfter=5)
    h2 = ParagraphStyle("h2", fontName="Helvetica-Bold", fontSize=13, leading=16, spaceBefore=4, spaceAfter=4)

    def decorate(canvas, doc) -> None:
        canvas.saveState()
        canvas.setFont("Helvetica", 8)
        canvas.drawString(56, height - 36, "Journal of Mineral Health")
        canvas.drawRightString(width - 56, 30, f"Page {doc.page}")
        canvas.restoreState()

    gutter = 18
    col = (width - 112 - gutter * (columns - 1)) / columns
    frames = [Frame(56 + i * (col + gutter), 56, col, height - 112, id=f"c{i}") for i in range(columns)]
    doc = BaseDocTemplate(str(path), pagesize=A4, pageTemplates=[PageTemplate(frames=frames, onPage=decorate)])
    story = []
    # about 12 paragraphs of ~5 sentences fill a two-column page at this size
    for section in range(pages * 15 // 7):  # calibrated: about 2.1 sections fill a page
        story.append(Paragraph(f"Section {section + 1}: {rng.choice(WORDS)} and {rng.choice(WORDS)}", h2))
        for _ in range(6):
            story.append(Paragraph(" ".join(_sentence(rng) for _ in range(4)), body))
        if section % 5 == 0:
            story.append(ListFlowable([ListItem(Paragraph(_sentence(rng), body)) for _ in range(3)], bulletType="bullet", start="•"))
        if section % 7 == 0:
            table = Table([["Group", "Calcium", "Magnesium"], ["Adults", "1000 mg", "350 mg"], ["Teenagers", "1300 mg", "400 mg"]])
            table.setStyle(TableStyle([("GRID", (0, 0), (-1, -1), 0.5, colors.black)]))
            story.append(table)
    doc.build(story)
    # trim to the wanted page count is not possible in platypus; report what was made


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=500)
    parser.add_argument("--columns", type=int, default=2, choices=(1, 2))
    parser.add_argument("--keep", type=Path, help="keep the generated PDF here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        path = args.keep or Path(folder) / "bench.pdf"
        started = time.perf_counter()
        make_pdf(path, args.pages, args.columns)
        made = time.perf_counter() - started
        started = time.perf_counter()
        doc = read_file(path, max_bytes=1 << 31, limits=ReaderLimits())
        elapsed = time.perf_counter() - started
        child_peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # KiB on Linux
        parent_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        geometry = doc.geometry.to_bytes() if doc.geometry is not None else b""
        print(f"PDF: {doc.page_count} pages, {path.stat().st_size / 1e6:.1f} MB, generated in {made:.1f} s")
        print(f"extracted: {len(doc.text):,} characters, {len(doc.text) / max(doc.page_count or 1, 1):,.0f} per page")
        print(f"read_file: {elapsed:.1f} s ({1000 * elapsed / max(doc.page_count or 1, 1):.0f} ms per page, child start-up included)")
        print(f"peak memory: child {child_peak:.0f} MiB (max RSS), parent {parent_peak:.0f} MiB")
        print(f"geometry: {len(geometry) / 1e6:.1f} MB as .npz ({len(geometry) / max(len(doc.text), 1):.1f} bytes per character)")
        if doc.notes:
            print("notes:", "; ".join(doc.notes))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
