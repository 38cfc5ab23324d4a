"""Check a store against the corpus files: every stored chunk must still be `source_text[start:end]`.

This is how quotes are verified when the serving machine does not hold the corpus: run
`python -m assistant verify` where the files are (the indexing machine, or any copy of the
corpus folder), with the same store settings. Each indexed file must be present with the
sha256 it was indexed from, and every chunk's text must equal its span of the file; Milvus
rows must also still match their content key. A PDF or web page is read again with today's
readers and its `source_text` compared with the stored one, so a changed extractor is reported
as well as a changed file (and, for a PDF, its page geometry).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from assistant.corpus import EXTRACTED, Unreadable, extract_document, sha256_hex, source_path
from assistant.readers import ReaderLimits
from assistant.stores.base import ChunkStore


@dataclass
class VerifyReport:
    files: int = 0
    chunks: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_store(
    store: ChunkStore, corpus_dir: Path, *, max_problems: int = 50, uploads_dir: Path | None = None,
    max_bytes: int = 20_000_000, limits: ReaderLimits | None = None,
) -> VerifyReport:
    """Compare every stored chunk of `store` with the files in `corpus_dir` (uploaded ones in `uploads_dir`)."""
    report = VerifyReport()

    def problem(text: str) -> None:
        if len(report.problems) < max_problems:
            report.problems.append(text)
        elif len(report.problems) == max_problems:
            report.problems.append("… more problems not listed")

    for source, sha256 in sorted(store.sources().items()):
        report.files += 1
        path = source_path(source, corpus_dir, uploads_dir)
        try:
            data = path.read_bytes()
        except OSError:
            problem(f"{source}: indexed but not found in {corpus_dir}")
            continue
        if sha256_hex(data) != sha256:
            problem(f"{source}: the file changed since it was indexed (sha256 {sha256[:12]}…); re-index it")
            continue
        if path.suffix.lower() in EXTRACTED:
            try:
                document = extract_document(path, source, max_bytes=max_bytes, limits=limits)
            except Unreadable as exc:
                problem(f"{source}: it cannot be read again ({exc})")
                continue
            text = document.text
            stored_geometry = store.geometry(source)
            if document.geometry is not None and stored_geometry is not None and stored_geometry != document.geometry:
                problem(f"{source}: the stored page positions differ from the file's; re-index it")
        else:
            text = data.decode("utf-8")
        stored = store.document_text(source)
        if stored is not None and stored != text:
            problem(f"{source}: the stored text differs from what the file reads as today "
                    "(the file or the reader changed); re-index it")
        for record in store.chunks_of(source):
            report.chunks += 1
            chunk = record.chunk
            if not store.intact(record):
                problem(f"{source} [{chunk.start}:{chunk.end}]: the stored row no longer matches its content key")
            elif text[chunk.start : chunk.end] != chunk.text:
                problem(f"{source} [{chunk.start}:{chunk.end}]: the stored text differs from the file's span")
    return report
