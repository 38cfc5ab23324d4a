"""app.py's guards, wired: the real Gradio app in process (a fake assistant, no model), then app.py itself.

Issue 11, findings 2 (bounded sessions and bodies), 3 (uploads and origins), 4 (rate limit) and
6 (sign-in, and the refusal to serve beyond loopback without it).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
from starlette.routing import Mount
from starlette.testclient import TestClient

from assistant.answer import DISCLAIMER
from assistant.assistant import InvalidQuestion
from assistant.models import Answer, Citation, Document
from assistant.server.auth import Credentials, hash_password, hash_token
from assistant.settings import Settings
from app_server import ROOT, running_app

TOKEN = "token-for-the-app-tests-0123456789"
PASSWORD = "alice's long password"
TEXT = "Whitlockite is a mineral. It forms slowly."


class QuoteBot:
    """Answers every question with the document's second sentence; refuses what `Assistant` refuses."""

    def __init__(self, max_chars: int = 2000) -> None:
        self.asked: list[str] = []
        self.max_chars = max_chars

    def ask(self, question, history=None):
        if not question.strip():
            raise InvalidQuestion("the question is empty: type a question about the document")
        if len(question) > self.max_chars:
            raise InvalidQuestion(f"the question is {len(question):,} characters long; the limit is {self.max_chars:,}")
        self.asked.append(question)
        citation = Citation(n=1, quote="It forms slowly.", source="w.txt", section="", start=26, end=42, score=1.0)
        return Answer(question=question, answer="It forms slowly. [1]", grounded=True, citations=[citation],
                      disclaimer=DISCLAIMER)


def make_client(*, users: bool = False, tokens: bool = False, base_url: str = "http://127.0.0.1:7860",
                **overrides) -> TestClient:
    import app

    settings = Settings(**{"rate_limit": 0, **overrides})
    credentials = Credentials(users={"alice": hash_password(PASSWORD, n=2**8)} if users else {},
                              tokens=[hash_token(TOKEN)] if tokens else [])
    documents = [Document(source="w.txt", text=TEXT, sha256="0")]
    built = app.build_app(QuoteBot(settings.max_question_chars), documents, settings=settings, credentials=credentials)
    return TestClient(built, base_url=base_url)


def call_ask(client: TestClient, question: str, headers: dict[str, str] | None = None) -> str:
    """`/ask` through Gradio's REST route (a new session each call, like curl): the final Markdown."""
    started = client.post("/gradio_api/call/ask", json={"data": [question]}, headers=headers)
    assert started.status_code == 200, started.text
    result = client.get(f"/gradio_api/call/ask/{started.json()['event_id']}", headers=headers).text
    assert "event: complete" in result, result
    return json.loads(result.split("data: ", 1)[1].splitlines()[0])[0]


def gradio_app(client: TestClient):
    return next(route.app for route in client.app.routes if isinstance(route, Mount))


# --- finding 3: uploads and other origins --------------------------------------------------------------


def _stored(folder: str) -> list[str]:
    return sorted(os.path.join(d, f) for d, _, files in os.walk(folder) for f in files) if os.path.isdir(folder) else []


def test_with_uploads_off_the_upload_route_is_closed():
    """Finding 3: `curl -F files=@big.bin …/gradio_api/upload` stored any file and answered with its path."""
    with make_client(uploads_enabled=False) as client:
        folder = gradio_app(client).uploaded_file_dir
        before = _stored(folder)
        for origin in (None, "http://evil.example"):
            response = client.post("/gradio_api/upload", files={"files": ("big.bin", b"\0" * 100_000)},
                                   headers={"Origin": origin} if origin else None)
            assert response.status_code in (403, 404), response.text
            assert folder not in response.text
        assert _stored(folder) == before  # nothing stored


def test_uploads_are_bounded_same_origin_only_and_kept_inside_gradios_folder():
    """Issue 13: the documents panel takes files, so the route is open, but only within its policy."""
    with make_client(max_file_bytes=50_000) as client:
        folder = gradio_app(client).uploaded_file_dir
        before = _stored(folder)
        foreign = client.post("/gradio_api/upload", files={"files": ("a.txt", b"iron " * 100)},
                              headers={"Origin": "http://evil.example"})
        assert foreign.status_code == 403 and foreign.json()["disclaimer"] == DISCLAIMER
        big = client.post("/gradio_api/upload", files={"files": ("big.pdf", b"%PDF-" + b"\0" * 200_000)})
        assert big.status_code == 413 and "ASSISTANT_MAX_FILE_BYTES" in big.json()["detail"]
        assert _stored(folder) == before  # neither was stored
        assert client.post("/gradio_api/process_recording", files={"files": ("a.wav", b"x")}).status_code == 404
        for name in ("../../escape.txt", "..\\..\\escape.txt", "/etc/escape.txt"):
            own = client.post("/gradio_api/upload", files={"files": (name, b"iron is a metal")},
                              headers={"Origin": "http://127.0.0.1:7860"})
            assert own.status_code == 200, own.text
            (stored,) = own.json()
            assert os.path.realpath(stored).startswith(os.path.realpath(folder) + os.sep)
            assert os.pardir not in os.path.relpath(stored, folder).split(os.sep)
        assert not any(p.name == "escape.txt" for p in ROOT.parent.glob("*"))


def test_uploads_need_sign_in_when_sign_in_is_configured():
    with make_client(users=True) as client:
        response = client.post("/gradio_api/upload", files={"files": ("a.txt", b"iron is a metal")})
        assert response.status_code == 401


def test_posts_from_another_origin_are_refused_and_answers_are_not_shared_with_it():
    with make_client(base_url="http://assistant.example.org") as client:  # not loopback: Gradio's own CORS is lax
        refused = client.post("/gradio_api/call/ask", json={"data": ["What is whitlockite?"]},
                              headers={"Origin": "http://evil.example"})
        assert refused.status_code == 403 and refused.json()["disclaimer"] == DISCLAIMER
        own = client.post("/gradio_api/call/ask", json={"data": ["What is whitlockite?"]},
                          headers={"Origin": "http://assistant.example.org"})
        assert own.status_code == 200
        read = client.get("/gradio_api/info", headers={"Origin": "http://evil.example"})
        assert read.status_code == 200 and "access-control-allow-origin" not in read.headers
        assert "access-control-allow-credentials" not in read.headers


# --- finding 2: bounded memory ------------------------------------------------------------------------


def test_a_body_over_the_limit_is_refused_unread():
    with make_client(max_request_bytes=100_000) as client:
        response = client.post("/gradio_api/call/ask", json={"data": ["x" * 200_000]})
        assert response.status_code == 413 and "100,000 bytes" in response.json()["detail"]


def test_a_long_question_is_refused_without_being_echoed():
    with make_client() as client:
        answer = call_ask(client, "x" * 50_000)
        assert answer.startswith("**Question not answered:**") and len(answer) < 2_000 and "x" * 100 not in answer


def test_sessions_are_capped_and_conversations_expire():
    with make_client(session_capacity=10, session_ttl_seconds=120) as client:
        for i in range(30):
            assert "It forms slowly" in call_ask(client, f"What is whitlockite, take {i}?")
        holder = gradio_app(client).state_holder
        assert holder.capacity == 10 and len(holder.session_data) <= 10
        blocks = gradio_app(client).get_blocks()
        states = [b for b in blocks.blocks.values() if type(b).__name__ == "State"]
        assert states and all(s.time_to_live == 120 for s in states)
        assert blocks.delete_cache is not None


# --- finding 4: rate limit -----------------------------------------------------------------------------


def test_over_the_rate_an_api_client_gets_429_with_retry_after():
    with make_client(rate_limit=6, rate_burst=2) as client:
        assert call_ask(client, "What is whitlockite?")  # one POST per question
        assert call_ask(client, "What is whitlockite?")
        refused = client.post("/gradio_api/call/ask", json={"data": ["What is whitlockite?"]})
        assert refused.status_code == 429 and refused.headers["Retry-After"] == "10"
        assert refused.json()["detail"] == "busy, try again in 10 s"
        assert client.get("/gradio_api/info").status_code == 200  # reading is not limited


def _chat(client: TestClient, question: str, session: str) -> list[str]:
    """Send `question` as the chat page does (queue/join, `x-gradio-user: app`); the assistant's last message."""
    config = client.get("/config").json()
    respond = next(d for d in config["dependencies"] if d["api_name"] == "respond")
    body = {"data": [question, [], None, []], "fn_index": respond["id"], "trigger_id": respond["targets"][0][0],
            "session_hash": session, "event_data": None}
    joined = client.post("/gradio_api/queue/join", json=body, headers={"x-gradio-user": "app"})
    assert joined.status_code == 200, joined.text
    with client.stream("GET", f"/gradio_api/queue/data?session_hash={session}") as stream:
        events = [json.loads(line[6:]) for line in stream.iter_lines() if line.startswith("data: ")]
    completed = next(e for e in events if e.get("msg") == "process_completed")
    messages = completed["output"]["data"][1]
    return [part["text"] for part in messages[-1]["content"]]


def test_over_the_rate_the_chat_says_busy_try_again_instead_of_an_error():
    with make_client(rate_limit=6, rate_burst=1) as client:
        assert "It forms slowly" in _chat(client, "What is whitlockite?", "tab-1")[0]
        busy = _chat(client, "What is whitlockite?", "tab-1")[0]
        assert "busy, try again in 10 s" in busy and busy.endswith("_")  # a chat message, with the disclaimer


# --- finding 6: sign-in ---------------------------------------------------------------------------------


def test_with_users_the_app_asks_for_sign_in_and_gradio_login_works():
    with make_client(users=True) as client:
        assert client.get("/gradio_api/info").status_code == 401
        assert client.post("/gradio_api/call/ask", json={"data": ["q"]}).status_code == 401
        assert client.post("/login", data={"username": "alice", "password": "wrong"}).status_code == 400
        assert client.post("/login", data={"username": "alice", "password": PASSWORD}).status_code == 200
        assert "It forms slowly" in call_ask(client, "What is whitlockite?")


def test_api_tokens_are_bearer_tokens_and_a_wrong_one_is_refused():
    with make_client(users=True, tokens=True) as client:
        bearer = {"Authorization": f"Bearer {TOKEN}"}
        assert "It forms slowly" in call_ask(client, "What is whitlockite?", headers=bearer)
        wrong = client.post("/gradio_api/call/ask", json={"data": ["q"]}, headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401 and wrong.headers["WWW-Authenticate"].startswith("Bearer")
    with make_client(tokens=True) as client:  # tokens alone: the page too needs one
        assert client.get("/").status_code == 401
        assert client.get("/", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200


def _run_app(env: dict[str, str]) -> subprocess.CompletedProcess:
    child = {k: v for k, v in os.environ.items() if not k.startswith(("ASSISTANT_", "GRADIO_SERVER"))}
    return subprocess.run([sys.executable, str(ROOT / "app.py")], cwd=ROOT, env={**child, **env},
                          capture_output=True, text=True, timeout=120)


@pytest.mark.integration
@pytest.mark.parametrize("variable", ["GRADIO_SERVER_NAME", "ASSISTANT_HOST"])
def test_app_refuses_a_network_address_without_sign_in(variable):
    started = time.monotonic()
    result = _run_app({variable: "0.0.0.0"})
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: refusing to serve on 0.0.0.0"), result.stderr
    assert "ASSISTANT_ALLOW_ANONYMOUS=true" in lines[0] and "Traceback" not in result.stderr
    print(f"\nrefused in {time.monotonic() - started:.1f} s, before loading the model")


@pytest.mark.integration
def test_app_says_which_setting_is_wrong_in_one_line():
    result = _run_app({"ASSISTANT_USERS": "alice:not-a-hash"})
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().count("\n") == 0 and "alice" in result.stderr and "hash-password" in result.stderr


# --- the real app.py, signed in through gradio_client ---------------------------------------------------


@pytest.mark.integration
@pytest.mark.slow
def test_gradio_client_signs_in_with_a_password_or_a_token(tmp_path):
    import gradio_client

    env = {"ASSISTANT_USERS": f"alice:{hash_password(PASSWORD)}", "ASSISTANT_API_TOKENS": hash_token(TOKEN)}
    with running_app(tmp_path, env=env) as server:
        with_password = gradio_client.Client(server.url, auth=("alice", PASSWORD), verbose=False)
        assert "Magnesium" in with_password.predict("Which magnesium form is best for sleep?", api_name="/ask")
        with_password.close()
        with_token = gradio_client.Client(server.url, headers={"Authorization": f"Bearer {TOKEN}"}, verbose=False)
        assert with_token.predict("What is whitlockite?", api_name="/ask").endswith("_")
        with_token.close()
        with pytest.raises(Exception):
            gradio_client.Client(server.url, verbose=False)
        assert "Traceback" not in server.log()
