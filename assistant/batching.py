"""Micro-batching: questions that arrive together are encoded in one call of the encoder.

Encoding one question costs about as much as encoding several: the transformer's fixed costs (a
session run, thread wake-ups) dominate a batch of short texts. Under concurrent load, callers of
`BatchingEncoder.encode` hand their texts to one worker thread, which waits at most `max_wait`
seconds after the first request for others (bounded by `max_batch` texts), encodes them all with
one call of the wrapped encoder, and gives each caller its own rows. Everything after encoding
(retrieval, ranking, quoting) stays per question, in the caller's thread.

Trade-offs: a caller pays at most the wait bound (1 ms by default), and only while the last batch
held several requests, plus a thread hand-off; a batch pads
its texts to the longest one, so a row may differ from the unbatched row by float rounding
(~1e-7), never in what is retrieved. Calls with more texts than `max_batch` (indexing) bypass the
worker and go straight to the encoder.

Example:
    >>> import numpy as np
    >>> class Lengths:
    ...     name, dimension = "lengths", 1
    ...     def encode(self, texts, *, batch_size=64, show_progress=False):
    ...         return np.array([[float(len(t))] for t in texts], dtype=np.float32)
    >>> with BatchingEncoder(Lengths(), max_wait=0.001, max_batch=32) as encoder:
    ...     encoder.encode(["a", "abc"]).ravel().tolist()
    [1.0, 3.0]
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from concurrent.futures import Future
from typing import TYPE_CHECKING, Sequence

import numpy as np

if TYPE_CHECKING:
    from assistant.embedding import Embedder

logger = logging.getLogger(__name__)

_STOP = object()


class BatchingEncoder:
    """An `Embedder` that gathers concurrent `encode` calls into one call of `encoder` (thread-safe).

    `close()` (or leaving the `with` block) stops the worker after it has answered every request
    already queued; later calls are encoded directly, unbatched.
    """

    def __init__(self, encoder: "Embedder", *, max_wait: float = 0.001, max_batch: int = 32) -> None:
        if not 0 <= max_wait <= 0.1:
            raise ValueError(f"max_wait must be between 0 and 0.1 seconds, got {max_wait}")
        if max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, got {max_batch}")
        self.encoder = encoder
        self.name = encoder.name
        self.dimension = encoder.dimension
        self.max_wait = max_wait
        self.max_batch = max_batch
        self.batches = 0  # encoder calls made by the worker, and the texts they held: for tests and benchmarks
        self.batched_texts = 0
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._together = False  # the last batch held more than one request
        self._closed = threading.Event()
        self._lock = threading.Lock()  # orders "closed?" checks against the stop marker
        self._worker = threading.Thread(target=self._run, name="encode-batcher", daemon=True)
        self._worker.start()

    def encode(self, texts: Sequence[str], *, batch_size: int = 64, show_progress: bool = False) -> np.ndarray:
        """The rows `encoder.encode(texts)` gives, computed in a batch with whatever else is asked now."""
        texts = list(texts)
        if not texts or len(texts) > self.max_batch or show_progress:
            return self.encoder.encode(texts, batch_size=batch_size, show_progress=show_progress)
        return self._submit(texts, False, batch_size)

    def encode_tokens(self, texts: Sequence[str], *, batch_size: int = 64) -> tuple[np.ndarray, list]:
        """The rows and token vectors `encoder.encode_tokens(texts)` gives, batched like `encode`."""
        texts = list(texts)
        if not texts or len(texts) > self.max_batch:
            return self.encoder.encode_tokens(texts, batch_size=batch_size)
        return self._submit(texts, True, batch_size)

    def _submit(self, texts: list[str], tokens: bool, batch_size: int):
        future: Future = Future()
        with self._lock:
            if self._closed.is_set():
                if tokens:
                    return self.encoder.encode_tokens(texts, batch_size=batch_size)
                return self.encoder.encode(texts, batch_size=batch_size)
            self._queue.put((texts, future, tokens))
        return future.result()

    def _gather(self, first: tuple) -> tuple[list[tuple], bool]:
        """`first` and the requests that arrive within `max_wait` of it, up to `max_batch` texts; and
        whether the stop marker was met."""
        batch, size = [first], len(first[0])
        # Wait for others only while questions come together: after a batch of one (a lone caller, a quiet
        # server) the next batch takes what is queued and goes. Under load, requests queue while the encoder
        # runs, so a batch of several soon brings the wait back.
        deadline = time.monotonic() + (self.max_wait if self._together else 0.0)
        while size < self.max_batch:
            try:
                left = deadline - time.monotonic()
                item = self._queue.get(timeout=left) if left > 0 else self._queue.get_nowait()
            except queue.Empty:
                break
            if item is _STOP:
                return batch, True
            if size + len(item[0]) > self.max_batch:  # it starts the next batch
                self._queue.put(item)  # SimpleQueue has no put-front: it goes behind requests queued meanwhile
                break
            batch.append(item)
            size += len(item[0])
        return batch, False

    def _run(self) -> None:
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is _STOP:
                break
            batch, stopping = self._gather(first)
            self._together = len(batch) > 1
            self._encode(batch)
        self._drain()

    def _encode(self, batch: list[tuple]) -> None:
        texts = [text for item, _, _ in batch for text in item]
        tokens = any(wants for _, _, wants in batch)  # one pass gives both; token vectors only when asked
        try:
            if tokens:
                rows, pieces = self.encoder.encode_tokens(texts, batch_size=max(len(texts), 1))
            else:
                rows, pieces = self.encoder.encode(texts, batch_size=max(len(texts), 1)), []
        except BaseException as exc:  # every waiting caller gets the error, the worker lives on
            for _, future, _ in batch:
                future.set_exception(exc)
            return
        self.batches += 1
        self.batched_texts += len(texts)
        start = 0
        for item, future, wants in batch:
            end = start + len(item)
            future.set_result((rows[start:end], pieces[start:end]) if wants else rows[start:end])
            start = end

    def _drain(self) -> None:
        """Answer requests queued before the stop marker was seen (none can arrive after it)."""
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            if item is not _STOP:
                self._encode([item])

    def close(self, timeout: float = 10.0) -> None:
        """Stop the worker once the queued requests are answered; idempotent."""
        with self._lock:
            if self._closed.is_set():
                return
            self._closed.set()
            self._queue.put(_STOP)
        self._worker.join(timeout)
        if self._worker.is_alive():
            logger.warning("the encode batcher did not stop within %.0f s", timeout)
        elif self.batches:
            logger.info("encode batcher stopped: %d questions in %d batches, %.2f a batch",
                        self.batched_texts, self.batches, self.batched_texts / self.batches)

    def __enter__(self) -> "BatchingEncoder":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
