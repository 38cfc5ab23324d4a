"""The sentence-transformers model exported to ONNX and run by ONNX Runtime, without PyTorch.

Why: PyTorch costs about five seconds to import and load for a few milliseconds of encoding, and its
per-call overhead is larger than the small model's arithmetic. The export is made once, from the
sentence-transformers model on disk (which stays the reference: the export records how close its
vectors are to sentence-transformers' own), and cached:

    <cache_dir>/<model>-fp32/         or  <model>-int8/
        model.onnx                    the transformer: token ids -> last hidden state
        tokenizer.json                copied from the model, so the export is self-contained
        manifest.json                 source checksums, pipeline, export settings, versions, .onnx checksum
    <cache_dir>/.<model>-fp32.lock    taken while an export runs

Everything after the transformer is done here in numpy, exactly as the model's sentence-transformers
configuration says: `modules.json` (Transformer, Pooling, optionally Normalize),
`1_Pooling/config.json` (the pooling mode, masked by the attention mask) and
`sentence_bert_config.json` (`max_seq_length`). Tokenisation uses the `tokenizers` library on the
model's `tokenizer.json` with truncation to `max_seq_length` and padding to the longest text of a
batch, which is what sentence-transformers' tokenizer call does. Rows are always L2-normalised, as
`SentenceTransformerEmbedder` asks sentence-transformers for (`normalize_embeddings=True`).

The question path (open an existing export, encode) imports numpy, onnxruntime and tokenizers, never
torch nor sentence-transformers; only `export_onnx` does. Opening checks the export and re-exports
(under a file lock, into a temporary folder moved into place with `os.replace`) when it is missing,
damaged (the `.onnx` or tokenizer file does not match its sha256) or made from another model (a source
file's sha256 differs). Source files are re-hashed only when their size or modification time changed
since the export (as `git status` does), so a cold start does not hash 90 MB of weights it has
already seen. The `.onnx` itself is hashed on every open: `OnnxEmbedder` hashes it in a thread while
ONNX Runtime loads it from its path (0.1 s faster than from bytes), and exports again if it was damaged.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import re
import shutil
import uuid
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from assistant.encoders.export import EXPORT_FORMAT, SHARED_NAME_MIN_COSINE, export_onnx, source_files
from assistant.corpus import sha256_hex, sha256_path
from assistant.encoders.pipeline import MANIFEST, ONNX_FILE, TOKENIZER_FILE, Runtime, TokenVectors, physical_cores
from assistant.encoders.reference import model_label, resolve_model_path
from assistant.settings import BUNDLED_MODEL

logger = logging.getLogger(__name__)


class ExportInvalid(Exception):
    """The cached export cannot be used as it is (missing, damaged, or of another model)."""


@dataclass(frozen=True)
class Export:
    """A checked export: its folder, manifest, the model and the tokenizer.

    `onnx_model` is the model's verified bytes, or its path when the caller checks it (`hash_model=False`).
    """

    folder: Path
    manifest: dict[str, Any]
    onnx_model: bytes | str
    tokenizer_json: str


def _cache_key(model: str, quantize: bool) -> str:
    """A folder name for a model setting: readable, and unique through a short hash of the setting."""
    readable = re.sub(r"[^A-Za-z0-9._-]+", "-", Path(model).name if os.sep in model else model).strip("-.")[:60]
    return f"{readable or 'model'}-{sha256_hex(model)[:8]}-{'int8' if quantize else 'fp32'}"


def export_folder(model: str, cache_dir: Path, *, quantize: bool = False) -> Path:
    """Where the export of `model` is (or will be) kept in `cache_dir`."""
    return Path(cache_dir) / _cache_key(model, quantize)


def load_export(export_dir: Path, source: Path, *, quantize: bool, hash_model: bool = True) -> Export:
    """The export in `export_dir`, checked against `source`; `ExportInvalid` says why it is unusable.

    With `hash_model=False` the `.onnx` file is not read: the caller gets its path and must check it
    against `manifest["files"]`.
    """
    path = export_dir / MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ExportInvalid(f"no ONNX export in {export_dir} yet") from None
    except (OSError, ValueError) as exc:
        raise ExportInvalid(f"{path} is damaged ({exc})") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != EXPORT_FORMAT:
        raise ExportInvalid(f"{path} is not a format-{EXPORT_FORMAT} export manifest")
    variant = "int8" if quantize else "fp32"
    if manifest.get("variant") != variant:
        raise ExportInvalid(f"{export_dir} holds a {manifest.get('variant')} export, not {variant}")
    recorded = (manifest.get("source") or {}).get("files") or {}
    current = source_files(source, hash_all=False, known=recorded)
    changed = sorted(
        name for name in set(current) | set(recorded)
        if (current.get(name) or {}).get("sha256") != (recorded.get(name) or {}).get("sha256")
    )
    if changed:
        raise ExportInvalid(f"the model in {source} differs from the one exported ({', '.join(changed)})")
    onnx_path = export_dir / ONNX_FILE
    try:
        tokenizer_bytes = (export_dir / TOKENIZER_FILE).read_bytes()
        onnx_model: bytes | str = onnx_path.read_bytes() if hash_model else str(onnx_path)
        if not hash_model and not onnx_path.is_file():
            raise FileNotFoundError(f"no {onnx_path}")
    except OSError as exc:
        raise ExportInvalid(f"the export in {export_dir} is incomplete ({exc})") from exc
    files = manifest.get("files") or {}
    checks = [(TOKENIZER_FILE, tokenizer_bytes)] + ([(ONNX_FILE, onnx_model)] if hash_model else [])
    for name, data in checks:
        if sha256_hex(data) != files.get(name):
            raise ExportInvalid(f"{export_dir / name} does not match its checksum (damaged)")
    return Export(export_dir, manifest, onnx_model, tokenizer_bytes.decode("utf-8"))


@contextmanager
def _export_lock(lock_path: Path) -> Iterator[None]:
    """An exclusive lock, held while one process checks and remakes an export; the others wait."""
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def open_export(model: str, cache_dir: Path, *, quantize: bool = False, hash_model: bool = True) -> Export:
    """The export of `model` in `cache_dir`: checked and loaded, or made afresh (under a lock) if unusable.

    The usual case (a good export) takes no lock. Otherwise the check is repeated under the lock, since
    another process may have just made it; the export goes to a temporary folder moved into place.
    """
    source = Path(resolve_model_path(model))
    export_dir = export_folder(model, cache_dir, quantize=quantize)
    key = export_dir.name
    try:
        return load_export(export_dir, source, quantize=quantize, hash_model=hash_model)
    except ExportInvalid:
        pass
    with _export_lock(cache_dir / f".{key}.lock"):
        try:
            return load_export(export_dir, source, quantize=quantize)
        except ExportInvalid as exc:
            logger.warning("exporting %s to ONNX (%s): %s", model_label(model), "int8" if quantize else "fp32", exc)
        for leftover in [*cache_dir.glob(f".tmp-{key}-*"), *cache_dir.glob(f".old-{key}-*")]:
            shutil.rmtree(leftover, ignore_errors=True)  # from a process killed mid-export; we hold the lock
        tmp = cache_dir / f".tmp-{key}-{uuid.uuid4().hex[:8]}"
        try:
            export_onnx(str(source), tmp, quantize=quantize, label=model_label(model))
            _replace_dir(tmp, export_dir)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return load_export(export_dir, source, quantize=quantize)


def _replace_dir(new: Path, target: Path) -> None:
    """Move `new` to `target`; an existing `target` is first moved aside (a folder cannot be replaced in one step)."""
    old = target.with_name(f".old-{target.name}-{uuid.uuid4().hex[:8]}")
    if target.exists():
        os.replace(target, old)
    os.replace(new, target)
    shutil.rmtree(old, ignore_errors=True)




class OnnxEmbedder:
    """The `Embedder` on ONNX Runtime: the sentence-transformers model's export, fp32 or int8.

    Naming: the name goes into the index manifest, and a different name forces a re-index. The fp32
    export keeps the sentence-transformers name when the export measured its vectors at cosine
    >= 0.9999 to sentence-transformers' (0.9999999 here, at most 2e-7 apart per component: the same
    arithmetic in another order), so switching between torch and fp32 ONNX reuses the index, whose
    rows either would have written.
    int8 vectors are another space (worst cosine ~0.98), so int8 is named `<model>+onnx-int8`, and an
    fp32 export without that evidence `<model>+onnx`.

    Example:
        >>> embedder = OnnxEmbedder(BUNDLED_MODEL, cache_dir=Path("index/.encoders"))  # doctest: +SKIP
        >>> embedder.encode(["magnesium"]).shape  # doctest: +SKIP
        (1, 384)
    """

    def __init__(
        self, model: str = BUNDLED_MODEL, *, cache_dir: Path, quantize: bool = False, threads: int | None = None
    ) -> None:
        if threads is not None and threads <= 0:
            raise ValueError(f"threads must be > 0 or None (physical cores), got {threads}")
        self.threads = threads or physical_cores()
        export, self._runtime = self._open(model, Path(cache_dir), quantize)
        self.export_dir, self.manifest = export.folder, export.manifest
        pipeline = self.manifest["pipeline"]
        self.dimension = int(pipeline["dimension"])
        self.max_seq_length = int(pipeline["max_seq_length"])
        label = model_label(model)
        parity = (self.manifest.get("parity") or {}).get("min_cosine")
        if quantize:
            self.name = f"{label}+onnx-int8"
        elif parity is not None and parity >= SHARED_NAME_MIN_COSINE:
            self.name = label
        else:
            self.name = f"{label}+onnx"

    def _open(self, model: str, cache_dir: Path, quantize: bool) -> tuple[Export, Runtime]:
        """The export and its session. The model file is hashed in a thread while ONNX Runtime loads it
        (the two overlap on two cores); if it does not match its checksum, it is opened again the slow
        way, which finds the damage and exports afresh."""
        export = open_export(model, cache_dir, quantize=quantize, hash_model=False)
        pipeline = export.manifest["pipeline"]
        if isinstance(export.onnx_model, bytes):  # just exported: these bytes were hashed already
            return export, Runtime(export.onnx_model, export.tokenizer_json, pipeline, threads=self.threads)
        with ThreadPoolExecutor(max_workers=1) as pool:
            digest = pool.submit(sha256_path, Path(str(export.onnx_model)))
            try:
                runtime: Runtime | None = Runtime(export.onnx_model, export.tokenizer_json, pipeline, threads=self.threads)
                failure: Exception | None = None
            except Exception as exc:  # a damaged file may not even parse; its hash decides below
                runtime, failure = None, exc
            intact = digest.result() == (export.manifest.get("files") or {}).get(ONNX_FILE)
        if not intact:  # opened again with the hash: it finds the damage and exports afresh
            export = open_export(model, cache_dir, quantize=quantize)
            return export, Runtime(export.onnx_model, export.tokenizer_json, export.manifest["pipeline"], threads=self.threads)
        if runtime is None:
            raise failure  # the file is as exported, and ONNX Runtime cannot load it: not a cache problem
        return export, runtime

    def encode(self, texts: Sequence[str], *, batch_size: int = 64, show_progress: bool = False) -> np.ndarray:
        """Unit float32 rows, one per text, in input order.

        Texts are sorted by length (longest first, as sentence-transformers does) before batching, so
        that a batch pads to similar lengths; the rows are put back in input order.
        """
        return self._encode(texts, batch_size, tokens=False, show_progress=show_progress)[0]

    def encode_tokens(self, texts: Sequence[str], *, batch_size: int = 64) -> tuple[np.ndarray, list[TokenVectors]]:
        """`encode`'s rows and, per text, its word pieces with their unit contextual vectors (same pass)."""
        return self._encode(texts, batch_size, tokens=True, show_progress=False)

    def _encode(
        self, texts: Sequence[str], batch_size: int, *, tokens: bool, show_progress: bool
    ) -> tuple[np.ndarray, list[TokenVectors]]:
        if batch_size <= 0:
            raise ValueError(f"batch_size must be > 0, got {batch_size}")
        texts = list(texts)
        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        pieces: list[TokenVectors] = [((), np.zeros((0, self.dimension), dtype=np.float32))] * len(texts) if tokens else []
        if not texts:
            return out, pieces
        order = np.argsort([-len(t) for t in texts], kind="stable")
        progress = None
        if show_progress:
            from tqdm import tqdm

            progress = tqdm(total=len(texts), desc="Embedding", unit="text")
        try:
            for start in range(0, len(texts), batch_size):
                rows = order[start : start + batch_size]
                batch = [texts[i] for i in rows]
                if tokens:
                    out[rows], found = self._runtime.encode_batch_tokens(batch)
                    for i, item in zip(rows, found):
                        pieces[i] = item
                else:
                    out[rows] = self._runtime.encode_batch(batch)
                if progress is not None:
                    progress.update(len(rows))
        finally:
            if progress is not None:
                progress.close()
        return out, pieces
