"""`BatchingEncoder`: concurrent questions encoded in one call, each caller gets its own rows, clean shutdown."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from assistant import Assistant
from assistant.batching import BatchingEncoder
from conftest import FakeEmbedder

QUESTIONS = [
    "Which magnesium form is best for sleep?",
    "What foods are high in magnesium?",
    "How does magnesium help prevent calcification?",
    "What is whitlockite?",
    "Is iron absorbed better with vitamin C?",
    "Who wrote Pride and Prejudice?",
]


class SlowFake(FakeEmbedder):
    """The fake embedder, taking `delay` seconds a call and recording each call's size."""

    def __init__(self, delay: float = 0.02) -> None:
        super().__init__()
        self.delay = delay
        self.sizes: list[int] = []

    def encode(self, texts, *, batch_size: int = 64, show_progress: bool = False) -> np.ndarray:
        self.sizes.append(len(texts))
        time.sleep(self.delay)
        return super().encode(texts, batch_size=batch_size, show_progress=show_progress)


def encode_concurrently(encoder, questions: list[str], workers: int) -> list[np.ndarray]:
    start = threading.Barrier(workers)

    def one(question: str) -> np.ndarray:
        start.wait() if len(questions) == workers else None
        return encoder.encode([question])

    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(one, questions))


def test_concurrent_calls_share_one_encoder_call_and_get_their_own_rows():
    questions = [f"{q} ({i})" for i in range(5) for q in QUESTIONS][:24]
    inner = SlowFake()
    with BatchingEncoder(inner, max_wait=0.002, max_batch=32) as encoder:
        rows = encode_concurrently(encoder, questions, workers=len(questions))
    expected = FakeEmbedder().encode(questions)
    for i, row in enumerate(rows):
        assert row.shape == (1, inner.dimension)
        np.testing.assert_array_equal(row[0], expected[i])  # exactly the unbatched row
    assert len(inner.sizes) < len(questions) and max(inner.sizes) > 1, inner.sizes


class TokenFake(FakeEmbedder):
    """The fake embedder, also giving each word its own one-row "token vector"."""

    def __init__(self) -> None:
        super().__init__()
        self.token_calls = 0

    def encode_tokens(self, texts, *, batch_size: int = 64):
        self.token_calls += 1
        words = FakeEmbedder()  # not counted: `calls` counts passes of the encoder
        return self.encode(texts), [(tuple(t.split()), words.encode(t.split() or [""])) for t in texts]


def test_token_requests_are_batched_with_plain_ones_and_each_caller_gets_its_own():
    inner = TokenFake()
    questions = QUESTIONS * 2
    with BatchingEncoder(inner, max_wait=0.02, max_batch=32) as encoder:
        start = threading.Barrier(len(questions))

        def one(i: int):
            start.wait()
            return encoder.encode_tokens([questions[i]]) if i % 2 else encoder.encode([questions[i]])

        with ThreadPoolExecutor(len(questions)) as pool:
            results = list(pool.map(one, range(len(questions))))
    for i, result in enumerate(results):
        if i % 2:
            rows, pieces = result
            np.testing.assert_array_equal(rows, FakeEmbedder().encode([questions[i]]))
            assert len(pieces) == 1 and pieces[0][0] == tuple(questions[i].split())
        else:
            np.testing.assert_array_equal(result, FakeEmbedder().encode([questions[i]]))
    assert inner.calls < len(questions)  # they were gathered, and one pass gave rows and tokens


def test_a_batch_never_holds_more_than_max_batch_texts():
    inner = SlowFake(delay=0.01)
    questions = [f"question number {i}" for i in range(20)]
    with BatchingEncoder(inner, max_wait=0.005, max_batch=4) as encoder:
        encode_concurrently(encoder, questions, workers=20)
        encoder.encode(["a", "b", "c"])
    assert max(inner.sizes) <= 4 and sum(inner.sizes) == 23, inner.sizes


def test_a_call_larger_than_a_batch_goes_straight_to_the_encoder():
    inner = SlowFake(delay=0.0)
    texts = [f"chunk {i}" for i in range(10)]
    with BatchingEncoder(inner, max_batch=4) as encoder:
        rows = encoder.encode(texts, batch_size=8)
        assert encoder.batches == 0
    np.testing.assert_array_equal(rows, FakeEmbedder().encode(texts))


def test_a_lone_caller_waits_no_longer_than_the_bound():
    """The wait is bounded: with a 50 ms bound, a lone call is not kept longer (generous slack for a busy CI)."""
    inner = SlowFake(delay=0.0)
    with BatchingEncoder(inner, max_wait=0.05) as encoder:
        took = []
        for question in QUESTIONS:
            started = time.perf_counter()
            encoder.encode([question])
            took.append(time.perf_counter() - started)
    assert float(np.median(took)) < 0.05 + 0.1, took


def test_a_quiet_encoder_does_not_wait_for_company():
    """After a batch of one, the next lone call is encoded at once: a 2 s bound is never waited out."""
    inner = SlowFake(delay=0.0)
    with BatchingEncoder(inner, max_wait=0.1) as encoder:
        encoder.max_wait = 2.0  # past the constructor's check: a bound no call may be seen to wait
        started = time.perf_counter()
        for question in QUESTIONS:
            encoder.encode([question])
        took = time.perf_counter() - started
    assert took < 2.0 and inner.sizes == [1] * len(QUESTIONS), (took, inner.sizes)


def test_an_encoder_error_reaches_every_caller_and_the_worker_survives():
    class Failing(FakeEmbedder):
        def encode(self, texts, **kwargs):
            if any("boom" in t for t in texts):
                raise RuntimeError("encoder failed")
            return super().encode(texts, **kwargs)

    with BatchingEncoder(Failing(), max_wait=0.0) as encoder:
        with pytest.raises(RuntimeError, match="encoder failed"):
            encoder.encode(["boom"])
        np.testing.assert_array_equal(encoder.encode(["fine"]), FakeEmbedder().encode(["fine"]))


def test_close_answers_what_is_queued_then_stops_and_later_calls_still_work():
    inner = SlowFake(delay=0.05)
    encoder = BatchingEncoder(inner, max_wait=0.0, max_batch=1)
    with ThreadPoolExecutor(4) as pool:
        pending = [pool.submit(encoder.encode, [q]) for q in QUESTIONS[:4]]
        time.sleep(0.02)
        encoder.close()
        results = [f.result(timeout=10) for f in pending]
    assert not encoder._worker.is_alive()
    assert [r.shape for r in results] == [(1, inner.dimension)] * 4
    encoder.close()  # idempotent
    np.testing.assert_array_equal(encoder.encode(["after"]), FakeEmbedder().encode(["after"]))


def test_bad_bounds_are_refused_with_the_value():
    with pytest.raises(ValueError, match="max_batch must be >= 1, got 0"):
        BatchingEncoder(FakeEmbedder(), max_batch=0)
    with pytest.raises(ValueError, match="got 5"):
        BatchingEncoder(FakeEmbedder(), max_wait=5)


def test_batched_answers_equal_unbatched_answers(settings, fake_embedder):
    """The Python API with `encode_batch` on: the same answers, concurrently, as one by one without it."""
    plain = Assistant.load(settings, embedder=fake_embedder)
    expected = [plain.ask(q).model_dump() for q in QUESTIONS]
    plain.close()
    batched = Assistant.load(settings.model_copy(update={"encode_batch": True}), embedder=fake_embedder)
    try:
        assert isinstance(batched.embedder, BatchingEncoder)
        with ThreadPoolExecutor(len(QUESTIONS)) as pool:
            answers = list(pool.map(lambda q: batched.ask(q).model_dump(), QUESTIONS))
    finally:
        batched.close()
    assert answers == expected
    assert not batched.embedder._worker.is_alive()


@pytest.mark.slow
def test_the_onnx_encoder_gives_the_same_vectors_batched(tmp_path):
    """Padding to the longest text of a batch changes float rounding only: rows agree to 1e-6."""
    from assistant.embedding import embedder_for
    from assistant.settings import Settings

    onnx = embedder_for(Settings(encoder="onnx"))
    alone = np.vstack([onnx.encode([q]) for q in QUESTIONS])
    with BatchingEncoder(onnx, max_wait=0.01) as encoder:
        together = np.vstack(encode_concurrently(encoder, QUESTIONS, workers=len(QUESTIONS)))
        assert encoder.batches < len(QUESTIONS)
    np.testing.assert_allclose(together, alone, atol=1e-6)
