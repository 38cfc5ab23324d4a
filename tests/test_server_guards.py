"""assistant.server.guards and binding: each middleware in front of a tiny echo app (no Gradio, no model)."""

from __future__ import annotations

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from assistant.answer import DISCLAIMER
from assistant.server import binding, guards
from assistant.server.auth import Credentials, hash_password, hash_token
from assistant.server.ratelimit import RateLimiter
from assistant.settings import Settings

TOKEN = "a-test-token-that-is-long-enough"


async def echo(request: Request) -> JSONResponse:
    body = await request.body()
    return JSONResponse({
        "bytes": len(body),
        "client": getattr(request.state, guards.CLIENT_KEY, None),
        "retry_after": guards.retry_after(request),
        "cookies": dict(request.cookies),
    })


def echo_app() -> Starlette:
    return Starlette(routes=[Route("/{path:path}", echo, methods=["GET", "POST"])])


def client_for(middleware, **options) -> TestClient:
    app = echo_app()
    app.add_middleware(middleware, **options)
    return TestClient(app, base_url="http://127.0.0.1:7860")


def test_upload_routes_are_closed_however_written():
    client = client_for(guards.CloseRoutes)
    for path in ["/gradio_api/upload", "/gradio_api/upload/", "/gradio_api//upload", "/sub/gradio_api/upload",
                 "/gradio_api/upload_progress", "/gradio_api/process_recording"]:
        response = client.post(path, files={"files": ("big.bin", b"x" * 1000)})
        assert response.status_code == 404, path
        assert response.json()["disclaimer"] == DISCLAIMER
    assert client.post("/gradio_api/queue/join").status_code == 200
    assert client.get("/gradio_api/uploads-are-not-this").status_code == 200


def test_posts_from_another_origin_are_refused():
    client = client_for(guards.SameOriginPosts, allowed_origins=["https://assistant.example.org"])
    own = {"Origin": "http://127.0.0.1:7860"}
    assert client.post("/x", headers=own).status_code == 200
    assert client.post("/x").status_code == 200  # programs send no Origin
    assert client.post("/x", headers={"Origin": "https://assistant.example.org"}).status_code == 200
    for origin in ["http://evil.example", "null", "http://127.0.0.1:9999", "http://localhost:7860", "file://"]:
        response = client.post("/x", headers={"Origin": origin})
        assert response.status_code == 403, origin
        assert "cross-origin" in response.json()["detail"]
    assert client.post("/x", headers={"Sec-Fetch-Site": "cross-site"}).status_code == 403
    assert client.get("/x", headers={"Origin": "http://evil.example"}).status_code == 200  # reading is CORS's job


def test_bodies_over_the_limit_are_refused_before_or_while_reading():
    client = client_for(guards.BodyLimit, max_bytes=1000)
    assert client.post("/x", content=b"x" * 1000).json()["bytes"] == 1000
    declared = client.post("/x", content=b"x" * 5000)
    assert declared.status_code == 413 and "1,000 bytes" in declared.json()["detail"]
    streamed = client.post("/x", content=(b"x" * 300 for _ in range(10)))  # chunked: no Content-Length
    assert streamed.status_code == 413
    assert client.post("/x", content=b"x", headers={"Content-Length": "lots"}).status_code == 400


def test_a_body_too_large_for_fastapi_is_a_413_too():
    """FastAPI reads the body inside its own error handling: the limit still answers 413, not 500."""
    from fastapi import FastAPI

    api = FastAPI()

    @api.post("/json")
    async def take(payload: dict) -> dict:
        return {"keys": len(payload)}

    api.add_middleware(guards.BodyLimit, max_bytes=100)
    client = TestClient(api)
    assert client.post("/json", json={"a": 1}).json() == {"keys": 1}
    chunks = (part for part in [b'{"a": "', b"x" * 200, b'"}'])
    response = client.post("/json", content=chunks, headers={"Content-Type": "application/json"})
    assert response.status_code == 413


def credentials(users: bool, tokens: bool) -> Credentials:
    return Credentials(users={"alice": hash_password("alice-pw", n=2**8)} if users else {},
                       tokens=[hash_token(TOKEN)] if tokens else [])


def test_bearer_tokens_mark_the_client_and_sign_it_in():
    issued = []

    def session_cookie(token_id: str) -> tuple[str, str]:
        issued.append(token_id)
        return "app-session", "inside-only"

    client = client_for(guards.BearerTokens, credentials=credentials(users=True, tokens=True),
                        session_cookie=session_cookie)
    ok = client.post("/x", headers={"Authorization": f"Bearer {TOKEN}", "Cookie": "theme=dark"}).json()
    assert ok["client"].startswith("token:") and TOKEN not in ok["client"] and issued == [ok["client"]]
    assert ok["cookies"] == {"theme": "dark", "app-session": "inside-only"}
    bad = client.post("/x", headers={"Authorization": "Bearer wrong"})
    assert bad.status_code == 401 and "invalid_token" in bad.headers["WWW-Authenticate"]
    assert client.post("/x").json()["client"] is None  # with users, the app's own sign-in decides


def test_tokens_alone_mean_every_request_needs_one():
    client = client_for(guards.BearerTokens, credentials=credentials(users=False, tokens=True))
    assert client.get("/").status_code == 401
    assert client.get("/", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200


def test_without_tokens_the_header_is_ignored():
    client = client_for(guards.BearerTokens, credentials=credentials(users=False, tokens=False))
    assert client.post("/x", headers={"Authorization": "Bearer anything"}).status_code == 200


class Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


def test_rate_limit_answers_429_with_retry_after_and_counts_only_posts():
    clock = Clock()
    client = client_for(guards.RateLimit, limiter=RateLimiter(per_minute=6, burst=2, clock=clock))
    assert [client.post("/x").status_code for _ in range(2)] == [200, 200]
    refused = client.post("/x")
    assert refused.status_code == 429 and refused.headers["Retry-After"] == "10"
    assert refused.json()["detail"] == "busy, try again in 10 s" and refused.json()["disclaimer"] == DISCLAIMER
    assert all(client.get("/page").status_code == 200 for _ in range(50))  # loading pages is not limited
    clock.now += 10
    assert client.post("/x").status_code == 200


def test_rate_limit_keys_on_the_token_when_there_is_one():
    clock = Clock()
    app = echo_app()
    app.add_middleware(guards.RateLimit, limiter=RateLimiter(per_minute=1, burst=1, clock=clock))
    app.add_middleware(guards.BearerTokens, credentials=credentials(users=True, tokens=True))
    client = TestClient(app)
    assert client.post("/x").status_code == 200 and client.post("/x").status_code == 429
    assert client.post("/x", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200  # its own bucket


def test_the_chat_page_is_told_to_wait_a_few_times_then_refused():
    clock = Clock()
    client = client_for(guards.RateLimit, limiter=RateLimiter(per_minute=6, burst=1, clock=clock),
                        notices=RateLimiter(per_minute=guards.NOTICE_PER_MINUTE, burst=guards.NOTICE_BURST,
                                            clock=clock))
    chat = {"x-gradio-user": "app"}
    assert client.post("/x", headers=chat).json()["retry_after"] is None
    told = [client.post("/x", headers=chat) for _ in range(guards.NOTICE_BURST)]
    assert [r.json()["retry_after"] for r in told] == [10] * guards.NOTICE_BURST
    assert client.post("/x", headers=chat).status_code == 429


def test_rate_limit_zero_is_off():
    client = client_for(guards.RateLimit, limiter=RateLimiter(per_minute=0, burst=1))
    assert all(client.post("/x").status_code == 200 for _ in range(100))


def test_retry_after_reads_any_request_like_object():
    class State:
        assistant_retry_after = 7

    class Wrapper:
        state = State()

    assert guards.retry_after(Wrapper()) == 7 and guards.retry_after(None) is None and guards.retry_after(object()) is None


def test_cors_allows_only_configured_origins():
    app = echo_app()
    guards.add_guards(app, settings=Settings(allowed_origins=["https://assistant.example.org"], rate_limit=0),
                      credentials=credentials(users=False, tokens=False))
    client = TestClient(app, base_url="http://127.0.0.1:7860")
    foreign = client.get("/x", headers={"Origin": "http://evil.example"})
    assert "access-control-allow-origin" not in foreign.headers
    allowed = client.get("/x", headers={"Origin": "https://assistant.example.org"})
    assert allowed.headers["access-control-allow-origin"] == "https://assistant.example.org"
    preflight = client.options("/x", headers={"Origin": "http://evil.example", "Access-Control-Request-Method": "POST"})
    assert preflight.status_code == 400


# --- binding ------------------------------------------------------------------------------------


def test_bind_address_prefers_assistant_settings_then_gradio_then_loopback():
    assert binding.bind_address(Settings(), {}) == ("127.0.0.1", 7860)
    environ = {"GRADIO_SERVER_NAME": "0.0.0.0", "GRADIO_SERVER_PORT": "8080"}
    assert binding.bind_address(Settings(), environ) == ("0.0.0.0", 8080)
    assert binding.bind_address(Settings(host="::1", port=9000), environ) == ("::1", 9000)
    with pytest.raises(ValueError, match="GRADIO_SERVER_PORT must be a port number, got 'http'"):
        binding.bind_address(Settings(), {"GRADIO_SERVER_PORT": "http"})


@pytest.mark.parametrize("host", ["127.0.0.1", "127.1.2.3", "::1", "[::1]", "localhost"])
def test_loopback_needs_no_sign_in(host):
    assert binding.is_loopback(host)
    assert binding.exposure_error(host, Settings(), credentials(users=False, tokens=False)) is None


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.10", "assistant.example.org"])
def test_anything_else_needs_users_tokens_or_a_deliberate_choice(host):
    nobody = credentials(users=False, tokens=False)
    message = binding.exposure_error(host, Settings(), nobody)
    assert message and host in message and "ASSISTANT_ALLOW_ANONYMOUS=true" in message and "\n" not in message
    assert binding.exposure_error(host, Settings(allow_anonymous=True), nobody) is None
    assert binding.exposure_error(host, Settings(), credentials(users=True, tokens=False)) is None
    assert binding.exposure_error(host, Settings(), credentials(users=False, tokens=True)) is None


def test_the_server_package_never_imports_gradio():
    """The guards are plain ASGI: a later JSON API gets them without the UI library."""
    import ast
    from pathlib import Path

    import assistant.server

    for path in Path(assistant.server.__file__).parent.glob("*.py"):
        nodes = list(ast.walk(ast.parse(path.read_text(encoding="utf-8"))))
        imported = {a.name.split(".")[0] for n in nodes if isinstance(n, ast.Import) for a in n.names}
        imported |= {n.module.split(".")[0] for n in nodes if isinstance(n, ast.ImportFrom) and n.module}
        assert "gradio" not in imported, path.name


def test_the_upload_route_has_the_file_limit_and_every_other_route_the_request_limit():
    client = client_for(guards.BodyLimit, max_bytes=1_000, upload_bytes=5_000)
    assert client.post("/gradio_api/upload", content=b"x" * 4_000).json()["bytes"] == 4_000
    refused = client.post("/gradio_api/upload", content=b"x" * 6_000)
    assert refused.status_code == 413 and "ASSISTANT_MAX_FILE_BYTES" in refused.json()["detail"]
    assert refused.json()["disclaimer"] == DISCLAIMER
    assert client.post("/gradio_api/queue/join", content=b"x" * 4_000).status_code == 413  # not an upload: 1,000
    closed = client_for(guards.BodyLimit, max_bytes=1_000)  # uploads off: the request limit everywhere
    assert closed.post("/gradio_api/upload", content=b"x" * 4_000).status_code == 413


@pytest.mark.parametrize("uploads", [False, True])
def test_add_guards_opens_the_upload_route_only_with_uploads_on(uploads):
    app = echo_app()
    guards.add_guards(app, settings=Settings(rate_limit=0, max_file_bytes=10_000),
                      credentials=Credentials(users={}, tokens=[]), uploads=uploads)
    client = TestClient(app, base_url="http://127.0.0.1:7860")
    upload = client.post("/gradio_api/upload", content=b"x" * 100)
    assert upload.status_code == (200 if uploads else 404)
    assert client.post("/gradio_api/process_recording", content=b"x").status_code == 404  # never used: closed
    foreign = client.post("/gradio_api/upload", content=b"x", headers={"Origin": "http://evil.example"})
    assert foreign.status_code == (403 if uploads else 404)
