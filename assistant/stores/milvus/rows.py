"""Row codecs of the Milvus store: chunks to rows and back, content keys, statistics rows."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

from assistant.corpus import sha256_hex
from assistant.lexical import tokenize
from assistant.models import Chunk
from assistant.stores.base import Record
from assistant.stores.milvus.schema import MAX_VARCHAR

_WORD_KEY = re.compile(r"\w+")
TERMS_PART_BYTES = 60_000  # JSON per `terms:` row, under Milvus's 65,536-byte limit


def chunk_key(chunk: Chunk) -> str:
    """The stable key of a chunk: sha256 of its source, offsets and text hash."""
    return sha256_hex(f"{chunk.source}\x00{chunk.start}\x00{chunk.end}\x00{sha256_hex(chunk.text)}")


def fit(text: str, limit: int = MAX_VARCHAR) -> str:
    """`text` cut to at most `limit` UTF-8 bytes (for fields that are never quoted).

    >>> fit("é" * 3, 4)
    'éé'
    """
    data = text.encode("utf-8")
    return text if len(data) <= limit else data[:limit].decode("utf-8", errors="ignore")


def chunk_rows(chunks: Sequence[Chunk], sha256: str) -> list[dict[str, Any]]:
    """Milvus rows for the chunks of one file, without their vectors."""
    rows = []
    previous: Chunk | None = None
    previous_key = ""
    for chunk in chunks:
        key = chunk_key(chunk)
        if len(chunk.text.encode("utf-8")) > MAX_VARCHAR:
            raise ValueError(f"a chunk of {chunk.source} is over {MAX_VARCHAR} bytes: lower ASSISTANT_MAX_CHUNK_CHARS")
        same = previous is not None and previous.section == chunk.section
        rows.append({
            "id": key, "source": chunk.source, "seq": chunk.id, "section": fit(chunk.section), "kind": chunk.kind,
            "start": chunk.start, "end": chunk.end, "block": chunk.block, "text": chunk.text,
            "context": fit(chunk.context), "prev": previous_key if same else "", "file_sha": sha256,
            "tokens": fit(" ".join(tokenize(chunk.embedding_text()))),
        })
        previous, previous_key = chunk, key
    return rows


def hit_rows(hits: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{**hit["entity"], "id": hit["id"]} for hit in hits]


def to_record(row: dict[str, Any]) -> Record:
    return Record(row["id"], to_chunk(row), row["prev"] or None)


def to_chunk(row: dict[str, Any]) -> Chunk:
    return Chunk(
        id=int(row["seq"]), source=row["source"], section=row["section"], kind=row["kind"], start=int(row["start"]),
        end=int(row["end"]), text=row["text"], context=row["context"], block=int(row["block"]),
    )


@dataclass
class FileDone:
    """A file whose chunk rows are all written: what the store's commit point records. `rows` need only `tokens`.

    `replaces`: the collection may hold an earlier version of the file (rows or a record).
    """

    source: str
    sha256: str
    rows: list[dict[str, Any]]
    replaces: bool = True
    text: str = ""
    geometry: str = ""  # the page geometry's bytes in base64 (PDFs), else empty


def term_counts(rows: Sequence[dict[str, Any]]) -> dict[str, int]:
    """{token: how many of these rows contain it}.

    >>> term_counts([{"tokens": "a b a"}, {"tokens": "b"}])
    {'a': 1, 'b': 2}
    """
    counts: dict[str, int] = {}
    for row in rows:
        for token in set(row["tokens"].split()):
            counts[token] = counts.get(token, 0) + 1
    return dict(sorted(counts.items()))


def token_total(rows: Sequence[dict[str, Any]]) -> int:
    """Tokens in these rows, an empty chunk counting as one (as bm25s counts it)."""
    return sum(max(len(row["tokens"].split()), 1) for row in rows)


def parts(counts: dict[str, int]) -> list[dict[str, int]]:
    """`counts` cut into dicts whose JSON stays under `TERMS_PART_BYTES` (no part for no counts)."""
    out: list[dict[str, int]] = []
    current: dict[str, int] = {}
    size = 2
    for token, n in sorted(counts.items()):
        item = len(json.dumps({token: n}, ensure_ascii=False).encode("utf-8"))
        if current and size + item > TERMS_PART_BYTES:
            out.append(current)
            current, size = {}, 2
        current[token] = n
        size += item
    return out + [current] if current else out


def text_parts(text: str, limit: int = TERMS_PART_BYTES) -> list[str]:
    """`text` cut into pieces whose JSON encoding stays under `limit` bytes; joined, they are `text` again.

    A character takes at most 6 bytes in JSON (`\\u001f`), so pieces of `limit // 6` characters always fit.

    >>> parts = text_parts("ab\\n" * 10, limit=24)
    >>> "".join(parts) == "ab\\n" * 10 and all(len(p) <= 4 for p in parts)
    True
    """
    size = max(1, limit // 6)
    return [text[i : i + size] for i in range(0, len(text), size)]


def ascii_parts(text: str) -> list[str]:
    """ASCII `text` (base64) cut into pieces of `TERMS_PART_BYTES` characters: one JSON byte each."""
    return [text[i : i + TERMS_PART_BYTES] for i in range(0, len(text), TERMS_PART_BYTES)]


def part_key(kind: str, source: str, part: int) -> str:
    """`text:…` or `geometry:…`: the key of one part of a document's text or page geometry."""
    return f"{kind}:{sha256_hex(source)}:{part}"


def file_key(source: str) -> str:
    return "file:" + sha256_hex(source)


def terms_key(source: str, part: int) -> str:
    return f"terms:{sha256_hex(source)}:{part}"


def df_key(token: str) -> str:
    """`df:<token>` for word tokens (all `tokenize` makes); others, and ones too long for the key field, hashed.

    pymilvus writes `ids` into a filter expression without escaping quotes, so a key may hold
    nothing but word characters.

    >>> df_key("magnesium"), df_key("body's")[:3]
    ('df:magnesium', 'df#')
    """
    if _WORD_KEY.fullmatch(token) and len(token.encode("utf-8")) <= 200:
        return "df:" + token
    return "df#" + sha256_hex(token)


def meta_row(key: str, kind: str, *, source: str = "", sha256: str = "", chunks: int = 0, tokens: int = 0,
             df: int = 0, data: dict[str, Any] | None = None, indexed_at: str = "") -> dict[str, Any]:
    return {"key": key, "kind": kind, "source": source, "sha256": sha256, "chunks": chunks, "tokens": tokens, "df": df,
            "data": data or {}, "indexed_at": indexed_at, "dummy": [0.0, 0.0]}


def groups(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
