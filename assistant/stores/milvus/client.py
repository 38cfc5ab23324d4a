"""Reaching Milvus: a Milvus Lite file (in process) or a server, through one pymilvus client."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from assistant.settings import Settings
from assistant.stores.base import StoreError

try:
    from pymilvus import MilvusClient, MilvusException
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError("the milvus backend needs pymilvus and milvus-lite: pip install -e '.[milvus]'") from exc

QUERY_ITERATOR_LOGGER = "pymilvus.client.iterator.query_iterator"
LITE_SERVER_LOGGER = "milvus_lite.server_manager"


class MilvusStoreError(StoreError):
    """The collection cannot be used as it is (foreign, another model, unreachable, in use); the message says what to do."""


def resolve_uri(settings: Settings) -> str:
    """`Settings.milvus_uri`, or a Milvus Lite file in the index folder when it is not set."""
    uri = settings.milvus_uri or str(settings.index_dir / "milvus.db")
    if "://" not in uri:
        Path(uri).expanduser().resolve().parent.mkdir(parents=True, exist_ok=True)
        uri = str(Path(uri).expanduser().resolve())
    return uri


def _quiet_lite() -> None:
    """Milvus Lite lacks the AllocTimestamp call that pymilvus's query iterator tries first; the
    iterator falls back to a client-side timestamp, but the in-process gRPC server logs a
    traceback and pymilvus a warning each time. Both are noise for this known fallback."""
    logging.getLogger("grpc._server").setLevel(logging.CRITICAL)
    logging.getLogger(QUERY_ITERATOR_LOGGER).setLevel(logging.ERROR)


class _Collect(logging.Handler):
    """Keeps the exceptions a library logs instead of letting it print their tracebacks."""

    def __init__(self) -> None:
        super().__init__()
        self.errors: list[BaseException] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info and record.exc_info[1] is not None:
            self.errors.append(record.exc_info[1])


def connect(settings: Settings) -> MilvusClient:
    uri = resolve_uri(settings)
    token = settings.milvus_token.get_secret_value() if settings.milvus_token else ""
    if "://" in uri:
        try:
            return MilvusClient(uri=uri, token=token)
        except MilvusException as exc:
            raise MilvusStoreError(f"cannot reach Milvus at {uri}: {exc.message}") from exc
    _quiet_lite()
    # Milvus Lite logs why it could not start (with a traceback) and pymilvus raises a generic
    # error: keep the reason for the message instead.
    lite_logger = logging.getLogger(LITE_SERVER_LOGGER)
    collect, propagate = _Collect(), lite_logger.propagate
    lite_logger.addHandler(collect)
    lite_logger.propagate = False
    try:
        return MilvusClient(uri=uri, token=token)
    except MilvusException as exc:
        reason = str(collect.errors[-1]) if collect.errors else exc.message
        raise MilvusStoreError(
            f"cannot open the Milvus Lite file {uri}: {reason}. Milvus Lite serves one process at a time; "
            "stop the other process using it, or run a Milvus server (docs/scale-out.md)"
        ) from exc
    finally:
        lite_logger.removeHandler(collect)
        lite_logger.propagate = propagate


def filter_literal(value: str | list[str]) -> str:
    """A Milvus filter literal for a string or a list of strings: JSON, which Milvus's parser reads.

    (Milvus Lite does not take `filter_params` templates, so values are written into the
    expression; JSON escaping keeps quotes and backslashes in paths from breaking out.)

    >>> filter_literal('a"b')
    '"a\\\\"b"'
    """
    return json.dumps(value, ensure_ascii=False)


def eq(field: str, value: str) -> str:
    return f"{field} == {filter_literal(value)}"
