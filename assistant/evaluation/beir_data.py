"""BEIR data sets: reading a BEIR folder, and writing its documents as a corpus folder the product indexes.

A BEIR folder holds `corpus.jsonl` (`_id`, `title`, `text`), `queries.jsonl` (`_id`, `text`)
and `qrels/<split>.tsv` (`query-id corpus-id score`, optional header, LF or CRLF). Each BEIR
document becomes one Markdown file, `# {title}`, a blank line, then the text: the product's
chunker reads the title as the section heading, so every chunk carries it as context.

Example:
    >>> dataset = load_beir("tests/fixtures/beir_tiny", "test")
    >>> len(dataset.doc_ids), sorted(dataset.queries)
    (8, ['q1', 'q2', 'q3', 'q4'])
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)


class BeirFormatError(ValueError):
    """The folder is not in BEIR format; the message names the file, the line and the fix."""


def document_text(title: str, text: str) -> str:
    """A BEIR document as the product indexes it: a Markdown heading with the title, a blank line, the text.

    >>> document_text("Iron  and\\nzinc", "Both are minerals.")
    '# Iron and zinc\\n\\nBoth are minerals.\\n'
    >>> document_text("", "No title.")
    'No title.\\n'
    """
    title = " ".join(title.split())
    body = text.strip() + "\n"
    return f"# {title}\n\n{body}" if title else body


@dataclass(frozen=True)
class BeirDataset:
    """One split of a BEIR data set: the whole corpus, and the queries that have judgements."""

    doc_ids: list[str]
    titles: list[str]
    texts: list[str]
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]

    def documents(self) -> list[str]:
        """Each document's text as the product indexes it (`document_text`)."""
        return [document_text(title, text) for title, text in zip(self.titles, self.texts)]


def write_corpus(dataset: BeirDataset, folder: Path, *, limit: int | None = None) -> dict[str, str]:
    """Write the (first `limit`) documents as `<id>.md` files in `folder`; returns source → document id.

    File names keep letters, digits, `-` and `_` of the id; an id that would collide with an
    earlier one (case-insensitively) gets its position appended.
    """
    folder.mkdir(parents=True, exist_ok=True)
    owner: dict[str, str] = {}
    taken: set[str] = set()
    rows = list(zip(dataset.doc_ids, dataset.documents()))
    for position, (doc_id, text) in enumerate(rows if limit is None else rows[:limit]):
        stem = re.sub(r"[^A-Za-z0-9_-]", "_", doc_id)[:100] or "document"
        if stem.lower() in taken:
            stem = f"{stem}-{position}"
        taken.add(stem.lower())
        (folder / f"{stem}.md").write_text(text, encoding="utf-8")
        owner[f"{stem}.md"] = doc_id
    return owner


def _read_jsonl(path: Path) -> Iterable[tuple[int, dict]]:
    if not path.is_file():
        raise BeirFormatError(f"{path} not found; a BEIR folder holds corpus.jsonl, queries.jsonl and qrels/<split>.tsv")
    with path.open(encoding="utf-8-sig") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise BeirFormatError(f"{path}:{number}: not valid JSON ({exc.msg}); each line must be one object") from exc
            if not isinstance(record, dict) or "_id" not in record:
                raise BeirFormatError(f"{path}:{number}: each line must be a JSON object with an \"_id\"")
            yield number, record


def read_qrels(path: Path) -> dict[str, dict[str, int]]:
    """`query-id corpus-id score` rows (tab-separated, optional header, LF or CRLF)."""
    qrels: dict[str, dict[str, int]] = {}
    with path.open(encoding="utf-8-sig", newline="") as handle:
        for number, line in enumerate(handle, start=1):
            fields = line.strip().split("\t") if "\t" in line else line.split()
            if not fields or fields == [""]:
                continue
            if number == 1 and fields[0] == "query-id":
                continue
            if len(fields) != 3:
                raise BeirFormatError(f"{path}:{number}: expected 'query-id<TAB>corpus-id<TAB>score', got {line.strip()!r}")
            try:
                score = int(float(fields[2]))
            except ValueError as exc:
                raise BeirFormatError(f"{path}:{number}: score must be a number, got {fields[2]!r}") from exc
            qrels.setdefault(fields[0], {})[fields[1]] = score
    return qrels


def load_beir(folder: Path | str, split: str = "test") -> BeirDataset:
    """Read a BEIR folder; only the queries judged in `qrels/<split>.tsv` are kept."""
    folder = Path(folder)
    qrels_path = folder / "qrels" / f"{split}.tsv"
    if not qrels_path.is_file():
        splits = sorted(p.stem for p in (folder / "qrels").glob("*.tsv")) if (folder / "qrels").is_dir() else []
        raise BeirFormatError(f"{qrels_path} not found; splits in {folder}: {', '.join(splits) or 'none'} (pass --split NAME)")
    doc_ids: list[str] = []
    titles: list[str] = []
    texts: list[str] = []
    seen: set[str] = set()
    path = folder / "corpus.jsonl"
    for number, record in _read_jsonl(path):
        doc_id = str(record["_id"])
        if doc_id in seen:
            raise BeirFormatError(f"{path}:{number}: document id {doc_id!r} appears twice")
        seen.add(doc_id)
        doc_ids.append(doc_id)
        titles.append(str(record.get("title") or ""))
        texts.append(str(record.get("text") or ""))
    if not doc_ids:
        raise BeirFormatError(f"{path} has no documents")
    all_queries = {str(r["_id"]): str(r.get("text") or "") for _, r in _read_jsonl(folder / "queries.jsonl")}
    qrels = read_qrels(qrels_path)
    missing = sorted(set(qrels) - set(all_queries))
    if missing:
        logger.warning("%d judged queries are not in queries.jsonl and are skipped (e.g. %s)", len(missing), missing[0])
    qrels = {qid: docs for qid, docs in qrels.items() if qid in all_queries}
    if not qrels:
        raise BeirFormatError(f"{qrels_path} judges none of the queries in {folder / 'queries.jsonl'}")
    unknown = {doc for docs in qrels.values() for doc in docs} - seen
    if unknown:
        logger.warning("%d judged documents are not in the corpus; they count as missed", len(unknown))
    return BeirDataset(doc_ids, titles, texts, {qid: all_queries[qid] for qid in qrels}, qrels)
