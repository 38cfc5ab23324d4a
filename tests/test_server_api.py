"""The JSON HTTP API (issue 15, item 3): answers, documents, errors, and the guards in front of them.

In process: `app.build_app` with a fake assistant (no model), driven by Starlette's TestClient.
"""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from starlette.testclient import TestClient

from assistant import Assistant
from assistant.answer import DISCLAIMER
from assistant.assistant import validate_question
from assistant.corpus import load_corpus
from assistant.models import Document
from assistant.server.auth import Credentials
from assistant.settings import Settings
from assistant.wire import answer_json
from test_server_app import PASSWORD, TEXT, TOKEN, QuoteBot, call_ask, make_client

QUESTION = "How does whitlockite form?"


class RecordingBot(QuoteBot):
    """QuoteBot that validates as `Assistant` does and records each call's history (no `sources`)."""

    def __init__(self, max_chars: int = 2000) -> None:
        super().__init__(max_chars)
        self.histories: list = []

    def ask(self, question, history=None):
        validate_question(question, max_chars=self.max_chars)
        self.histories.append(history)
        return super().ask(question, history)


class SourcesBot(RecordingBot):
    def ask(self, question, history=None, sources=None):
        self.sources = sources
        return super().ask(question, history)


def client_with(bot, **overrides) -> TestClient:
    """The app answering with `bot`, nobody signed in, no rate limit unless `overrides` set one."""
    import app

    settings = Settings(**{"rate_limit": 0, **overrides})
    documents = [Document(source="w.txt", text=TEXT, sha256="0")]
    built = app.build_app(bot, documents, settings=settings, credentials=Credentials(users={}, tokens=[]))
    return TestClient(built, base_url="http://127.0.0.1:7860")


def assert_error(response, status: int, fragment: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert fragment in body["error"], body
    assert body["disclaimer"] == DISCLAIMER


def test_an_answer_is_the_json_ask_json_prints():
    bot = RecordingBot()
    with client_with(bot) as client:
        response = client.post("/v1/answers", json={"question": QUESTION, "history": ["What is whitlockite?"]})
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    assert response.text == answer_json(QuoteBot().ask(QUESTION))  # byte for byte, the shared serialisation
    assert response.json()["disclaimer"] == DISCLAIMER
    assert bot.histories == [["What is whitlockite?"]]


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"question": "   "}, "the question is empty"),
        ({"question": "x" * 2001}, "the limit is 2,000"),
        ({"question": "what\x00is it"}, "control character (U+0000)"),
        ({"question": "ok", "history": ["fine", "bad\x07"]}, "history[1]: the question contains a control character"),
        ({"question": 42}, "question: Input should be a valid string"),
        ({}, "question: Field required"),
        ({"question": "ok", "top_k": 3}, "top_k: Extra inputs are not permitted"),
        ({"question": "ok", "history": "not a list"}, "history: Input should be a valid array"),
    ],
)
def test_bad_input_is_a_400_with_the_reason_and_the_disclaimer(body, fragment):
    bot = RecordingBot()
    with client_with(bot) as client:
        assert_error(client.post("/v1/answers", json=body), 400, fragment)
    assert bot.asked == []


@pytest.mark.parametrize("raw", [b"not json", b'{"question": "\xff\xfe binary"}', b"\x00\x01\x02", b""])
def test_a_body_that_is_not_json_text_is_a_400(raw):
    with client_with(RecordingBot()) as client:
        response = client.post("/v1/answers", content=raw, headers={"content-type": "application/json"})
    assert_error(response, 400, "")


def test_sources_are_refused_until_the_assistant_takes_them_then_passed_on():
    with client_with(RecordingBot()) as client:
        assert_error(client.post("/v1/answers", json={"question": QUESTION, "sources": ["w.txt"]}), 400,
                     "sources: not supported")
        assert client.post("/v1/answers", json={"question": QUESTION}).status_code == 200  # no sources: fine
    bot = SourcesBot()
    with client_with(bot) as client:
        assert client.post("/v1/answers", json={"question": QUESTION, "sources": ["w.txt"]}).status_code == 200
    assert bot.sources == ["w.txt"]


def test_a_failure_is_a_500_with_a_sentence_not_a_trace():
    class Broken(RecordingBot):
        def ask(self, question, history=None):
            raise RuntimeError("secret internal detail")

    with client_with(Broken()) as client:
        response = client.post("/v1/answers", json={"question": QUESTION})
    assert_error(response, 500, "could not be answered")
    assert "secret" not in response.text


def test_a_body_over_the_limit_is_a_413_declared_or_streamed():
    with make_client(max_request_bytes=1000) as client:
        declared = client.post("/v1/answers", json={"question": "x" * 2000})
        streamed = client.post("/v1/answers", content=iter([b'{"question": "', b"x" * 2000, b'"}']),
                               headers={"content-type": "application/json"})
    for response in (declared, streamed):
        assert_error(response, 413, "the limit is 1,000 bytes")


def test_over_the_rate_a_client_gets_429_with_retry_after():
    with make_client(rate_limit=6, rate_burst=2) as client:
        codes = [client.post("/v1/answers", json={"question": QUESTION}).status_code for _ in range(2)]
        refused = client.post("/v1/answers", json={"question": QUESTION})
        assert client.get("/v1/documents").status_code == 200  # reading is not limited
    assert codes == [200, 200]
    assert_error(refused, 429, "busy, try again in 10 s")
    assert refused.headers["Retry-After"] == "10"


def test_claiming_to_be_the_chat_page_does_not_get_past_the_rate_limit():
    """The guard lets a few over-the-rate chat requests through to say "busy" in the chat: the API says it too."""
    bot = RecordingBot()
    with client_with(bot, rate_limit=6, rate_burst=1) as client:
        codes = [client.post("/v1/answers", json={"question": QUESTION}, headers={"x-gradio-user": "app"}).status_code
                 for _ in range(4)]
    assert codes == [200, 429, 429, 429] and len(bot.asked) == 1


def test_with_api_tokens_a_request_needs_one():
    with make_client(tokens=True) as client:
        assert_error(client.post("/v1/answers", json={"question": QUESTION}), 401, "API token")
        assert_error(client.get("/v1/documents"), 401, "API token")
        wrong = client.post("/v1/answers", json={"question": QUESTION}, headers={"Authorization": "Bearer nope"})
        assert_error(wrong, 401, "not valid")
        good = {"Authorization": f"Bearer {TOKEN}"}
        assert client.post("/v1/answers", json={"question": QUESTION}, headers=good).status_code == 200
        assert client.get("/v1/documents", headers=good).status_code == 200


def test_with_users_a_request_needs_a_token_or_a_signed_in_browser():
    with make_client(users=True, tokens=True) as client:
        refused = client.post("/v1/answers", json={"question": QUESTION})
        assert_error(refused, 401, "sign-in required")
        assert refused.headers["WWW-Authenticate"] == "Bearer"
        assert_error(client.get("/v1/documents"), 401, "sign-in required")
        assert_error(client.post("/v1/answers", json={}), 401, "sign-in required")  # before the body is judged
        good = {"Authorization": f"Bearer {TOKEN}"}
        assert client.post("/v1/answers", json={"question": QUESTION}, headers=good).status_code == 200
        assert client.post("/login", data={"username": "alice", "password": PASSWORD}).status_code == 200
        assert client.post("/v1/answers", json={"question": QUESTION}).status_code == 200  # the session cookie


def test_posts_from_another_origin_are_refused():
    with make_client() as client:
        response = client.post("/v1/answers", json={"question": QUESTION}, headers={"Origin": "https://evil.example"})
    assert_error(response, 403, "cross-origin")


def test_documents_lists_each_document_with_its_chunks_and_size(settings, fake_embedder):
    import app

    bot = Assistant.load(settings, embedder=fake_embedder)
    documents = load_corpus(settings.corpus_dir)
    built = app.build_app(bot, documents, settings=settings, credentials=Credentials(users={}, tokens=[]))
    try:
        with TestClient(built, base_url="http://127.0.0.1:7860") as client:
            listed = client.get("/v1/documents").json()
    finally:
        bot.close()
    assert [d["name"] for d in listed] == [doc.source for doc in documents]
    for row, doc in zip(listed, documents):
        assert row["kind"] == doc.kind and row["sha256"] == doc.sha256 and row["characters"] == len(doc.text)
        assert row["bytes"] == (settings.corpus_dir / doc.source).stat().st_size
        assert row["chunks"] == len(bot.store.chunks_of(doc.source)) > 0


def test_documents_only_the_store_knows_are_listed_from_the_store(settings, fake_embedder):
    """A serving machine without the corpus folder (Milvus): names, chunks and fingerprints from the store."""
    import app

    bot = Assistant.load(settings, embedder=fake_embedder)
    built = app.build_app(bot, [], settings=settings, credentials=Credentials(users={}, tokens=[]))
    try:
        with TestClient(built, base_url="http://127.0.0.1:7860") as client:
            listed = client.get("/v1/documents").json()
        expected = bot.store.sources()
    finally:
        bot.close()
    assert [(d["name"], d["sha256"]) for d in listed] == sorted(expected.items())
    assert all(d["kind"] is None and d["bytes"] is None and d["chunks"] > 0 for d in listed)


def test_sources_reach_the_assistant_and_an_unknown_one_is_a_400(settings, fake_embedder):
    import app

    bot = Assistant.load(settings, embedder=fake_embedder)
    built = app.build_app(bot, load_corpus(settings.corpus_dir), settings=settings,
                          credentials=Credentials(users={}, tokens=[]))
    question = "What foods are high in magnesium?"
    try:
        with TestClient(built, base_url="http://127.0.0.1:7860") as client:
            names = [d["name"] for d in client.get("/v1/documents").json()]
            answers = {name: client.post("/v1/answers", json={"question": question, "sources": [name]}).json()
                       for name in names}
            unknown = client.post("/v1/answers", json={"question": question, "sources": ["nowhere.txt"]})
        expected = {name: answer_json(bot.ask(question, sources=[name])) for name in names}
    finally:
        bot.close()
    assert {name: json.dumps(body) for name, body in answers.items()} == {
        name: json.dumps(json.loads(text)) for name, text in expected.items()}
    for name, body in answers.items():
        assert all(c["source"] == name for c in body["citations"])
    assert_error(unknown, 400, "nowhere.txt")


def test_answering_runs_in_the_threadpool_so_requests_overlap():
    """Two requests whose answers wait for each other both finish: neither holds the event loop."""
    meet = threading.Barrier(2, timeout=10)

    class Meeting(RecordingBot):
        def ask(self, question, history=None):
            meet.wait()
            return super().ask(question, history)

    with client_with(Meeting()) as client:
        results: list[int] = []
        threads = [threading.Thread(target=lambda: results.append(
            client.post("/v1/answers", json={"question": QUESTION}).status_code)) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(15)
    assert results == [200, 200]


def test_the_openapi_schema_and_the_offline_docs_page():
    with make_client() as client:
        schema = client.get("/openapi.json").json()
        page = client.get("/docs")
    assert set(schema["paths"]) == {"/v1/answers", "/v1/documents"}
    post = schema["paths"]["/v1/answers"]["post"]
    assert {"200", "400", "401", "413", "429"} <= set(post["responses"])
    assert "question" in post["requestBody"]["content"]["application/json"]["schema"]["properties"]
    assert page.status_code == 200 and "openapi.json" in page.text
    assert "http://" not in page.text and "https://" not in page.text  # no remote asset
    assert "default-src 'none'" in page.headers["Content-Security-Policy"]


def test_the_gradio_ask_endpoint_still_answers():
    with make_client() as client:
        assert "It forms slowly." in call_ask(client, QUESTION)


def test_at_most_answer_workers_questions_are_answered_at_once_and_the_rest_wait():
    from assistant.server.api import ANSWER_WORKERS

    lock, running, most = threading.Lock(), [0], [0]

    class Counting(RecordingBot):
        def ask(self, question, history=None):
            with lock:
                running[0] += 1
                most[0] = max(most[0], running[0])
            time.sleep(0.05)
            with lock:
                running[0] -= 1
            return super().ask(question, history)

    with client_with(Counting()) as client:
        with ThreadPoolExecutor(ANSWER_WORKERS * 3) as pool:
            codes = list(pool.map(lambda _: client.post("/v1/answers", json={"question": QUESTION}).status_code,
                                  range(ANSWER_WORKERS * 3)))
    assert codes == [200] * (ANSWER_WORKERS * 3)
    assert 1 < most[0] <= ANSWER_WORKERS
