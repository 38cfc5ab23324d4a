"""app.py through its API: `/ask` with gradio_client, bad input, and 40 concurrent questions.

Starts `python app.py` on a free loopback port with its own index folder. Figures (start-up,
latency, throughput, memory) are printed for the record, never asserted: speed targets are not
unit-test assertions. What is asserted is correctness and zero failures.
"""

from __future__ import annotations

import importlib.util
import sys
import time

import pytest

from assistant.answer import DISCLAIMER, NOT_COVERED
from assistant.assistant import InvalidQuestion
from assistant.models import Answer, Citation, Document
from assistant.render import NOT_ANSWERED, escape_markdown
from app_server import ROOT, running_app

pytestmark = [pytest.mark.integration, pytest.mark.slow]

import gradio_client  # noqa: E402  (a test extra: installed by scripts/install.sh test)

FOOTER = f"_{escape_markdown(DISCLAIMER)}_"


def _load_test_module():
    """scripts/load_test.py, imported by path: scripts/ is not a package."""
    spec = importlib.util.spec_from_file_location("load_test", ROOT / "scripts" / "load_test.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up here
    spec.loader.exec_module(module)
    return module


load_test = _load_test_module()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    # The load tests below send 40 clients' questions from one address: the rate limit is off here.
    with running_app(tmp_path_factory.mktemp("app"), env={"ASSISTANT_RATE_LIMIT": "0"}) as running:
        started = time.monotonic()
        client = gradio_client.Client(running.url, verbose=False)
        first = client.predict("What is whitlockite?", api_name="/ask")
        client.close()
        assert first.endswith(FOOTER), first
        print(f"\napp start-up: {running.startup_seconds:.1f} s to the API answering, "
              f"{running.startup_seconds + time.monotonic() - started:.1f} s to the first /ask answer")
        yield running
        assert "Traceback" not in running.log(), running.log()


@pytest.fixture(scope="module")
def client(server):
    connected = gradio_client.Client(server.url, verbose=False)
    yield connected
    connected.close()


def test_ask_returns_the_cited_markdown_the_chat_shows(client):
    result = client.predict("Which magnesium form is best for sleep?", api_name="/ask")
    body, _, sources = result.partition("**Sources**")
    assert "Magnesium Glycinate" in body and '<sup class="cite-n">[1]</sup>' in body
    assert "<th>Bioavailability</th>" in body  # the quoted row under its table's header
    assert '<details class="citation" data-n="1">' in sources and "calcium-and-magnesium.txt" in sources
    assert '<mark data-n="1">' in sources
    assert result.endswith(FOOTER)
    assert client.predict("Which magnesium form is best for sleep?", api_name="/ask") == result  # deterministic


def test_ask_says_when_the_document_does_not_cover_it(client):
    result = client.predict("Who wrote Pride and Prejudice?", api_name="/ask")
    assert escape_markdown(NOT_COVERED) in result
    assert "<details" not in result and result.endswith(FOOTER)


@pytest.mark.parametrize("question", ["", "   ", "x" * 5000, "magnesium\x00sleep"])
def test_bad_input_gets_a_message_and_the_disclaimer_not_a_trace(client, question):
    result = client.predict(question, api_name="/ask")
    assert result.startswith(NOT_ANSWERED) and result.endswith(FOOTER)
    assert "Traceback" not in result


def test_markup_in_a_question_comes_back_as_text(client):
    result = client.predict("<script>alert(1)</script> **magnesium**", api_name="/ask")
    assert "<script" not in result and result.endswith(FOOTER)


def test_the_api_lists_ask_alone(client):
    endpoints = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert list(endpoints) == ["/ask"]
    assert [p["parameter_name"] for p in endpoints["/ask"]["parameters"]] == ["question"]


def test_sequential_latency(server):
    report = load_test.run_load(server.url, clients=1, requests_per_client=50, pid=server.process.pid)
    print(f"\n50 sequential /ask: {report.summary()}")
    assert report.errors == 0, report.error_samples


def test_40_concurrent_questions_all_answered(server):
    report = load_test.run_load(server.url, clients=40, requests_per_client=1, pid=server.process.pid)
    print(f"\n40 concurrent /ask: {report.summary()}")
    for sample in report.error_samples:
        print(f"  failure: {sample}")
    assert report.requests == 40 and report.errors == 0, report.error_samples


def test_load_script_runs_for_a_short_duration(server):
    """The standalone script, as a user runs it: exit 0, a one-line report."""
    args = ["--url", server.url, "--pid", str(server.process.pid), "--clients", "8", "--duration", "3"]
    assert load_test.main(args) == 0
    assert load_test.main(["--url", "http://example.com/", "--duration", "1"]) == 2  # loopback only


# --- the chat handlers, in process, with a fake assistant (no model, no server) ---------------------


class RecordingBot:
    """Answers every question with the one sentence of its document, and records what it was asked."""

    TEXT = "Whitlockite is a mineral. It forms slowly."

    def __init__(self) -> None:
        self.calls: list[tuple[str, list]] = []

    def ask(self, question, history=None):
        self.calls.append((question, list(history or [])))
        if not question.strip():
            raise InvalidQuestion("the question is empty: type a question about the document")
        if question == "boom":
            raise RuntimeError("index on fire")
        if len(question) > 2000:
            raise InvalidQuestion(f"the question is {len(question):,} characters long; the limit is 2,000")
        citation = Citation(n=1, quote="It forms slowly.", source="w.txt", section="", start=26, end=42, score=1.0)
        return Answer(
            question=question, answer="It forms slowly. [1]", grounded=True, citations=[citation], disclaimer=DISCLAIMER
        )


def _handlers(bot):
    import app

    demo = app.build_demo(bot, [Document(source="w.txt", text=RecordingBot.TEXT, sha256="0")])
    return {f.fn.__name__: f.fn for f in demo.fns.values() if f.fn is not None}


def test_chat_streams_keeps_the_conversation_and_passes_it_on():
    bot = RecordingBot()
    handlers = _handlers(bot)
    steps = list(handlers["respond"]("What is whitlockite?", [], []))
    question_box, messages, history, last, corpus = steps[-1]
    assert len(steps) > 2 and "Searching the document" in steps[0][1][-1]["content"]
    assert all(step[1][-1]["content"].endswith(FOOTER) for step in steps)  # the disclaimer, at every step
    assert history == ["What is whitlockite?"] and last == "What is whitlockite?" and "<mark" in corpus
    assert messages[-1]["content"] == handlers["ask"]("What is whitlockite?")  # the chat shows what /ask returns

    *_, (_, messages, history, _, _) = handlers["respond"]("How does it form?", messages, history)
    assert bot.calls[-1] == ("How does it form?", ["What is whitlockite?"])
    assert history == ["What is whitlockite?", "How does it form?"] and len(messages) == 4

    *_, (_, retried, history, _, _) = handlers["retry"](messages, history, "How does it form?")
    assert bot.calls[-1] == ("How does it form?", ["What is whitlockite?"]) and len(retried) == 4
    assert handlers["clear"]()[1:4] == ([], [], None)


def test_chat_errors_are_messages_and_are_not_remembered():
    bot = RecordingBot()
    handlers = _handlers(bot)
    *_, (_, messages, history, last, corpus) = handlers["respond"]("", [], [])
    assert messages[-1]["content"].startswith(f"{NOT_ANSWERED} the question is empty")
    assert history == [] and last == ""
    *_, (_, messages, history, _, _) = handlers["respond"]("boom", messages, history)
    assert "something went wrong" in messages[-1]["content"] and "index on fire" not in messages[-1]["content"]
    assert messages[-1]["content"].endswith(FOOTER) and history == []
    assert handlers["ask"]("boom").startswith(f"{NOT_ANSWERED} something went wrong")


def test_a_question_over_the_limit_is_not_echoed_into_the_chat():
    """Finding 2: a 1 MB question was streamed back (5 MB) before it was rejected; now only its length shows."""
    bot = RecordingBot()
    steps = list(_handlers(bot)["respond"]("x" * 1_000_000, [], []))
    assert all(len(repr(step)) < 5_000 for step in steps)  # not one step carries the question back
    _, messages, history, last, _ = steps[-1]
    assert "1,000,000 characters, not shown" in messages[0]["content"]
    assert messages[-1]["content"].startswith(NOT_ANSWERED) and messages[-1]["content"].endswith(FOOTER)
    assert history == [] and last is None  # not kept for Retry either


class _State:
    assistant_retry_after = 12


class _Request:
    """What the rate limit leaves on a chat request it let through to say "busy" (see assistant.server.guards)."""

    state = _State()


def test_over_the_rate_the_chat_says_when_to_try_again_and_keeps_the_question():
    bot = RecordingBot()
    handlers = _handlers(bot)
    (step,) = list(handlers["respond"]("What is whitlockite?", [], [], _Request()))
    question_box, messages, *_ = step
    assert "busy, try again in 12 s" in messages[-1]["content"] and messages[-1]["content"].endswith(FOOTER)
    assert messages[0]["content"] == "What is whitlockite?" and bot.calls == []  # nothing answered
    assert not isinstance(question_box, str)  # the question stays typed (gr.skip), ready to send again
    assert "busy, try again in 12 s" in handlers["ask"]("What is whitlockite?", _Request()) and bot.calls == []


class _FakeBlocks:
    def __init__(self, events: list[str]) -> None:
        self.events = events

    def run_startup_events(self) -> None:
        self.events.append("startup")

    async def run_extra_startup_events(self) -> None:
        self.events.append("extra startup")


def test_the_api_answers_while_the_chat_is_still_being_built():
    """`main` serves at once and mounts the chat when it is built: until then `/` says so, and the API answers."""
    import contextlib
    import threading

    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    import app

    events: list[str] = []
    release = threading.Event()
    server = FastAPI()

    @server.get("/v1/ping")
    def ping() -> dict:
        return {"ok": True}

    @contextlib.asynccontextmanager
    async def chat_lifespan(chat):
        events.append("chat lifespan in")
        yield
        events.append("chat lifespan out")

    def build():
        release.wait(10)  # Gradio's import and the page, in a worker thread
        chat = FastAPI(lifespan=chat_lifespan)
        chat.get("/")(lambda: {"chat": True})
        chat.get_blocks = lambda: _FakeBlocks(events)
        server.mount("/", chat)
        return chat

    server.router.lifespan_context = lambda a: app.chat_lifespan(a, build)
    with TestClient(server) as client:
        starting = client.get("/")
        assert starting.status_code == 503 and "starting" in starting.text and DISCLAIMER in starting.text
        assert client.get("/v1/ping").json() == {"ok": True}
        release.set()
        deadline = time.monotonic() + 10
        while client.get("/").status_code == 503 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert client.get("/").json() == {"chat": True}
        assert events == ["chat lifespan in", "startup", "extra startup"]
    assert events[-1] == "chat lifespan out"
