"""Upload of an N-page PDF (default 20) until answerable, against embedding its chunks alone (issue 13: ≤ 1.5×).

`Assistant.add_document` does everything an upload costs: checks, the reader (in a child process
with its limits), chunking, embedding, adding to the store and committing it. The floor is the
embedder on the same chunk texts, in the same batches, measured in the same process and interleaved
with the uploads (upload, remove, encode; `--rounds` times), so load from other processes falls on
both alike. The PDF is the two-column one with running header and footer that
`benchmarks/pdf_reader.py` lays out (reportlab, the `test` extra). The index holds the bundled
article beside it, in a temporary folder.

Run: python benchmarks/upload_pdf.py [--pages 20] [--rounds 5] [--backend faiss|milvus]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from pdf_reader import make_pdf  # noqa: E402

from assistant import Assistant  # noqa: E402
from assistant.chunking import chunk_document  # noqa: E402
from assistant.corpus import extract_document, reader_limits  # noqa: E402
from assistant.settings import Settings  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--backend", default="faiss", choices=["faiss", "milvus"])
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        corpus = work / "corpus"
        corpus.mkdir()
        shutil.copy(ROOT / "corpus" / "calcium-and-magnesium.txt", corpus)
        pdf = work / "report.pdf"
        make_pdf(pdf, args.pages, columns=2)
        data = pdf.read_bytes()
        settings = Settings(corpus_dir=corpus, index_dir=work / "index", uploads_dir=work / "uploads",
                            backend=args.backend, milvus_uri=str(work / "milvus.db"))
        bot = Assistant.load(settings, on_rebuild=lambda message: None)
        document = extract_document(pdf, "uploads/report.pdf", max_bytes=settings.max_file_bytes,
                                    limits=reader_limits(settings))
        chunks = chunk_document(document, max_chunk_chars=settings.max_chunk_chars,
                                max_heading_words=settings.max_heading_words)
        texts = [c.embedding_text() for c in chunks]
        bot.embedder.encode(texts[:8])  # warm both paths alike
        uploads, encodes = [], []
        question = next(c.text for c in chunks if c.kind == "sentence")  # a sentence of the PDF: surely answerable
        for _ in range(args.rounds):
            started = time.perf_counter()
            summary = bot.add_document("report.pdf", data)
            answer = bot.ask(question, sources=[summary.source])
            uploads.append(time.perf_counter() - started)
            assert answer.citations and all(c.source == summary.source for c in answer.citations), answer
            bot.remove_document("report.pdf")
            started = time.perf_counter()
            bot.embedder.encode(texts)
            encodes.append(time.perf_counter() - started)
        bot.close()

    upload, encode = statistics.median(uploads), statistics.median(encodes)
    print(f"PDF: {args.pages} pages, {len(data) / 1e6:.2f} MB, {document.pages} pages read, {len(chunks)} chunks, "
          f"{len(document.text):,} characters; backend {args.backend}; encoder {settings.encoder}")
    print(f"upload until answerable (add_document + first answer), median of {args.rounds}: {upload:.2f} s")
    print(f"embedding its {len(chunks)} chunks alone, median of {args.rounds}: {encode:.2f} s")
    print(f"ratio {upload / encode:.2f} (target ≤ 1.5); load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
