"""A caching `Embedder` for evaluations: every text's vector kept on disk, keyed by model and text.

An evaluation embeds the same corpus again and again (each split, each chunking, each re-run);
the product has no such cache because its index is its cache. `CachedEmbedder` sits in front of
the product's embedder, so the product's own indexing path (`assistant.indexing.sync_store`)
runs unchanged and a re-run embeds only texts it has not seen.

Layout: `<cache_dir>/<model key>/shard-<hash>.npz`, each shard holding `keys` (the sha256 of
each text) and `vectors`. The model key hashes the model's name and its truncation length
(`max_seq_length`), so another model or truncation never reads these vectors. New vectors are
written a shard at a time (every `shard_size` new texts, and on `flush`), each atomically
(temporary file, then `os.replace`): a run killed while embedding keeps what it wrote, and the
next run embeds only the rest. A damaged shard is logged, removed, and its texts embedded again.

Example:
    >>> embedder = CachedEmbedder(get_embedder(), Path("cache"))  # doctest: +SKIP
    >>> with embedder:  # doctest: +SKIP
    ...     vectors = embedder.encode(["magnesium and sleep"])  # embedded once, read afterwards
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from assistant.corpus import sha256_hex
from assistant.embedding import Embedder

logger = logging.getLogger(__name__)

#: The only file names this module writes, and so the only ones it removes.
SHARD_NAME = re.compile(r"shard-[0-9a-f]{16}\.npz")


def model_key(name: str, max_seq_length: int | None) -> str:
    """The cache folder of a model: its name and truncation length, hashed.

    >>> model_key("m", 256) != model_key("m", 128) != model_key("other", 256)
    True
    """
    return sha256_hex(f"{name}\0{max_seq_length}")[:16]


def text_key(text: str) -> str:
    return sha256_hex(text)


class CachedEmbedder:
    """An `Embedder` that reads vectors it has already computed (see the module docstring).

    `embedded` counts the texts the wrapped embedder was asked for, `embed_seconds` the time it
    took; `hits` counts texts read from the cache.
    """

    def __init__(self, inner: Embedder, cache_dir: Path, *, shard_size: int = 4096) -> None:
        if shard_size <= 0:
            raise ValueError(f"shard_size must be > 0, got {shard_size}")
        self.inner = inner
        self.name = inner.name
        self.dimension = inner.dimension
        self.max_seq_length = getattr(inner, "max_seq_length", None)
        self.folder = Path(cache_dir) / model_key(self.name, self.max_seq_length)
        self.shard_size = shard_size
        self.embedded = self.hits = 0
        self.embed_seconds = 0.0
        self._vectors: dict[str, np.ndarray] | None = None  # text key -> vector, read lazily
        self._pending: dict[str, np.ndarray] = {}

    def __enter__(self) -> CachedEmbedder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.flush()

    def encode(self, texts: Sequence[str], *, batch_size: int = 64, show_progress: bool = False) -> np.ndarray:
        """One row per text, in order; only texts this model has not embedded before reach it."""
        known = self._known()
        keys = [text_key(t) for t in texts]
        missing = {k: t for k, t in zip(keys, texts) if k not in known}
        if missing:
            started = time.perf_counter()
            fresh = self.inner.encode(list(missing.values()), batch_size=batch_size, show_progress=show_progress)
            self.embed_seconds += time.perf_counter() - started
            self.embedded += len(missing)
            for key, vector in zip(missing, np.asarray(fresh, dtype=np.float32)):
                known[key] = self._pending[key] = vector
            if len(self._pending) >= self.shard_size:
                self.flush()
        self.hits += len(texts) - len(missing)
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return np.stack([known[k] for k in keys]).astype(np.float32, copy=False)

    def flush(self) -> None:
        """Write the vectors computed since the last write as one shard (a failure to write is logged, not raised)."""
        if not self._pending:
            return
        keys = np.array(list(self._pending), dtype="U64")
        vectors = np.stack(list(self._pending.values())).astype(np.float32)
        try:
            self._write_shard(keys, vectors)
        except OSError as exc:  # a read-only cache costs time on the next run, not this run's figures
            logger.warning("could not write the embedding cache in %s (%s)", self.folder, exc)
        self._pending.clear()

    def _write_shard(self, keys: np.ndarray, vectors: np.ndarray) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        name = f"shard-{sha256_hex(''.join(keys.tolist()))[:16]}.npz"
        handle, tmp = tempfile.mkstemp(dir=self.folder, prefix=".shard-", suffix=".npz")
        try:
            with os.fdopen(handle, "wb") as out:
                np.savez(out, keys=keys, vectors=vectors)
            os.chmod(tmp, 0o644)
            os.replace(tmp, self.folder / name)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)

    def _known(self) -> dict[str, np.ndarray]:
        if self._vectors is None:
            self._vectors = {}
            for path in sorted(self.folder.glob("shard-*.npz")) if self.folder.is_dir() else []:
                if SHARD_NAME.fullmatch(path.name):
                    self._vectors.update(self._read_shard(path))
            if self._vectors:
                logger.info("%d cached embeddings read from %s", len(self._vectors), self.folder)
        return self._vectors

    def _read_shard(self, path: Path) -> dict[str, np.ndarray]:
        try:
            with np.load(path, allow_pickle=False) as shard:
                keys, vectors = shard["keys"], shard["vectors"]
            if vectors.shape != (len(keys), self.dimension):
                raise ValueError(f"vectors of shape {vectors.shape} for {len(keys)} keys of dimension {self.dimension}")
        except (OSError, ValueError, KeyError) as exc:
            logger.warning("embedding cache file %s is damaged (%s); removed, its texts will be embedded again", path, exc)
            path.unlink(missing_ok=True)
            return {}
        return dict(zip(keys.tolist(), vectors.astype(np.float32, copy=False)))
