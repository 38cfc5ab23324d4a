"""ASGI middlewares in front of the app: closed routes, same-origin posts, body size, tokens, rate limit.

Each is a small pure-ASGI class that answers a refused request itself, as JSON with a one-line
`detail` and the disclaimer, and otherwise passes it on untouched. `add_guards` installs them all
on a Starlette/FastAPI app in the order that makes each cheap: a closed route or a foreign origin
is refused before the body is read, the body is bounded before anyone parses it, and the rate
limit knows whether the client is an API token or an address.

Example (the order `app.py` uses):
    >>> from starlette.applications import Starlette
    >>> from assistant.server.auth import Credentials
    >>> from assistant.settings import Settings
    >>> app = Starlette()
    >>> add_guards(app, settings=Settings(), credentials=Credentials(users={}, tokens=[]))
    >>> [m.cls.__name__ for m in app.user_middleware]
    ['CloseRoutes', 'SameOriginPosts', 'BodyLimit', 'BearerTokens', 'RateLimit', 'CORSMiddleware']
"""

from __future__ import annotations

import logging
import math
import re
import time
from typing import TYPE_CHECKING, Any, Callable, Iterable
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from assistant.server.ratelimit import RateLimiter
from assistant.wire import error_payload

if TYPE_CHECKING:
    from assistant.server.auth import Credentials
    from assistant.settings import Settings

logger = logging.getLogger(__name__)

#: Methods that change nothing: never rate-limited nor origin-checked (loading the page takes dozens).
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

#: Gradio's route that stores posted files (for the documents panel's upload), and the two that go with
#: it: its progress (a GET) and microphone recordings (never used here: always closed).
UPLOAD_ROUTE = "/gradio_api/upload"
UPLOAD_PROGRESS_ROUTE = "/gradio_api/upload_progress"
UPLOAD_ROUTES = (UPLOAD_ROUTE, UPLOAD_PROGRESS_ROUTE, "/gradio_api/process_recording")

#: Room for the multipart envelope (boundaries, part headers, file name) around one file of
#: `ASSISTANT_MAX_FILE_BYTES`: an upload body is bounded by the file limit plus this.
MULTIPART_OVERHEAD = 64 * 1024

#: `scope["state"]` keys: who is asking ("token:…"; else the address is used), and, for a chat request
#: over its rate that is let through to say so in the chat, how many seconds to wait.
CLIENT_KEY = "assistant_client"
RETRY_AFTER_KEY = "assistant_retry_after"

#: "Busy" messages let through to the chat per client (burst, then per minute) once over the rate:
#: a person sees the message in the conversation; a flood gets plain 429s.
NOTICE_BURST, NOTICE_PER_MINUTE = 3, 6


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """A refusal as JSON: `error` and the disclaimer (the HTTP API's error shape, `assistant.wire`), and the
    same message as `detail`, which Gradio's page shows in its notice."""
    return JSONResponse({**error_payload(message), "detail": message}, status_code=status, headers=headers)


def _path(scope: Scope) -> str:
    return re.sub("/+", "/", scope.get("path", "")).rstrip("/") or "/"


def _state(scope: Scope) -> dict[str, Any]:
    return scope.setdefault("state", {})


class CloseRoutes:
    """Answer 404 for `paths` (matched at the end of the path, so also under a root path)."""

    def __init__(self, app: ASGIApp, *, paths: Iterable[str] = UPLOAD_ROUTES) -> None:
        self.app = app
        self.paths = tuple(p.rstrip("/") for p in paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and _path(scope).endswith(self.paths):
            await error_response(404, "not found: this server takes no file uploads")(scope, receive, send)
            return
        await self.app(scope, receive, send)


class SameOriginPosts:
    """Refuse (403) a request that changes something when a browser says it comes from another site.

    A form on any web page can POST to a loopback app without a CORS preflight; its `Origin` header
    gives it away. Allowed: no `Origin` (programs, curl), the app's own origin (the `Host` the
    browser addressed), and `allowed_origins`. A sandboxed page sends `Origin: null`: refused.
    """

    def __init__(self, app: ASGIApp, *, allowed_origins: Iterable[str] = ()) -> None:
        self.app = app
        self.allowed = {origin.rstrip("/").lower() for origin in allowed_origins}

    def allows(self, origin: str, host: str) -> bool:
        parts = urlsplit(origin.strip().lower())
        if parts.scheme not in ("http", "https") or not parts.netloc:
            return False
        return f"{parts.scheme}://{parts.netloc}" in self.allowed or parts.netloc == host.strip().lower()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] not in SAFE_METHODS:
            headers = Headers(scope=scope)
            origin = headers.get("origin")
            foreign = (
                not self.allows(origin, headers.get("host", ""))
                if origin is not None
                else headers.get("sec-fetch-site") == "cross-site"
            )
            if foreign:
                logger.debug("refused a %s from another origin", scope["method"])
                message = "cross-origin request refused: this app accepts posts from its own pages only"
                await error_response(403, message)(scope, receive, send)
                return
        await self.app(scope, receive, send)


class RequestTooLarge(HTTPException):
    """Raised while a body is read past the limit; an HTTPException so FastAPI answers 413 with it."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(status_code=413, detail=_too_large(max_bytes))


def _too_large(max_bytes: int) -> str:
    return (
        f"request too large: the limit is {max_bytes:,} bytes (ASSISTANT_MAX_REQUEST_BYTES); "
        "shorten the question, or clear the conversation and ask again"
    )


def _upload_too_large(max_bytes: int) -> str:
    return (
        f"file too large: an upload may be {max_bytes - MULTIPART_OVERHEAD:,} bytes at most "
        "(ASSISTANT_MAX_FILE_BYTES); split the document or ask the administrator to raise the limit"
    )


class BodyLimit:
    """Refuse (413) a body over `max_bytes`: by its `Content-Length` before reading, else while reading.

    The upload route, when open, has its own bound `upload_bytes` (one file plus its multipart envelope).
    """

    def __init__(self, app: ASGIApp, *, max_bytes: int, upload_bytes: int | None = None) -> None:
        if max_bytes < 1:
            raise ValueError(f"max_bytes must be >= 1, got {max_bytes}")
        self.app = app
        self.max_bytes = max_bytes
        self.upload_bytes = upload_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.upload_bytes is not None and _path(scope).endswith(UPLOAD_ROUTE):
            await _Bounded(self.app, self.upload_bytes, _upload_too_large)(scope, receive, send)
            return
        await _Bounded(self.app, self.max_bytes, _too_large)(scope, receive, send)


class _Bounded:
    """One request's body bounded by `max_bytes`; `describe(max_bytes)` is the refusal's one line."""

    def __init__(self, app: ASGIApp, max_bytes: int, describe: Callable[[int], str]) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.describe = describe

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        declared = Headers(scope=scope).get("content-length")
        if declared is not None:
            if not declared.strip().isdigit():
                await error_response(400, f"bad Content-Length header: {declared[:40]!r}")(scope, receive, send)
                return
            if int(declared) > self.max_bytes:
                await error_response(413, self.describe(self.max_bytes))(scope, receive, send)
                return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise RequestTooLarge(self.max_bytes)
            return message

        async def watched_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, watched_send)
        except RequestTooLarge:
            if not started:
                await error_response(413, self.describe(self.max_bytes))(scope, receive, send)


class BearerTokens:
    """Check `Authorization: Bearer <token>` against the configured API tokens.

    A valid token marks the request as that token's (`scope["state"][CLIENT_KEY]`, which the rate
    limit uses) and, through `session_cookie`, signs it in to the app behind (Gradio's own login
    knows only its cookie). An invalid token is refused (401). With tokens configured and no users,
    every request needs a token: there is nobody who could sign in another way. Without tokens,
    the header is ignored.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        credentials: "Credentials",
        session_cookie: Callable[[str], tuple[str, str] | None] | None = None,
    ) -> None:
        self.app = app
        self.credentials = credentials
        self.session_cookie = session_cookie

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or not self.credentials.has_tokens:
            await self.app(scope, receive, send)
            return
        scheme, _, presented = Headers(scope=scope).get("authorization", "").partition(" ")
        if scheme.lower() == "bearer":
            token_id = self.credentials.token_id(presented.strip())
            if token_id is None:
                await self._refuse(scope, receive, send, "the API token is not valid", 'Bearer error="invalid_token"')
                return
            _state(scope)[CLIENT_KEY] = token_id
            cookie = self.session_cookie(token_id) if self.session_cookie is not None else None
            if cookie is not None:  # None: no app behind that keeps sessions (yet)
                scope = _with_cookie(scope, *cookie)
        elif not self.credentials.has_users:
            message = "this server needs an API token: send 'Authorization: Bearer <token>'"
            await self._refuse(scope, receive, send, message, "Bearer")
            return
        await self.app(scope, receive, send)

    @staticmethod
    async def _refuse(scope: Scope, receive: Receive, send: Send, message: str, challenge: str) -> None:
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        await error_response(401, message, {"WWW-Authenticate": challenge})(scope, receive, send)


def _with_cookie(scope: Scope, name: str, value: str) -> Scope:
    """A copy of `scope` whose Cookie header also carries `name=value` (merged: Starlette reads the first one)."""
    headers = [(k, v) for k, v in scope["headers"] if k != b"cookie"]
    cookies = [v.decode("latin-1") for k, v in scope["headers"] if k == b"cookie"]
    cookies.append(f"{name}={value}")
    return {**scope, "headers": [*headers, (b"cookie", "; ".join(cookies).encode("latin-1"))]}


class RateLimit:
    """Refuse (429, `Retry-After`) a client's request beyond its token bucket.

    Only requests that change something count (POST: a question, a sign-in), so loading the page
    is never limited. The client is its API token when one was presented, else its address (behind
    a reverse proxy, uvicorn takes it from `X-Forwarded-For` when the proxy is trusted). A request
    from the chat page itself (`x-gradio-user: app`) is let through a few times with the wait in
    `scope["state"][RETRY_AFTER_KEY]`, so the chat can say "busy, try again in N s" instead of
    showing an error; the handler must then answer with that and do nothing else.
    """

    def __init__(self, app: ASGIApp, *, limiter: RateLimiter, notices: RateLimiter | None = None) -> None:
        self.app = app
        self.limiter = limiter
        self.notices = notices

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in SAFE_METHODS or not self.limiter.enabled:
            await self.app(scope, receive, send)
            return
        state = _state(scope)
        key = state.get(CLIENT_KEY) or f"ip:{(scope.get('client') or ('unknown', 0))[0]}"
        wait = self.limiter.acquire(key)
        if wait > 0:
            seconds = max(1, math.ceil(wait))
            from_chat = Headers(scope=scope).get("x-gradio-user") == "app"
            if from_chat and self.notices is not None and self.notices.acquire(key) == 0:
                state[RETRY_AFTER_KEY] = seconds
            else:
                logger.debug("rate limit: refused a request, retry after %d s", seconds)
                response = error_response(429, f"busy, try again in {seconds} s", {"Retry-After": str(seconds)})
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def retry_after(request: object) -> int | None:
    """The seconds to wait when `RateLimit` let this chat request through only to say so; else None.

    `request` is anything with a Starlette-style `.state` (a Starlette request, or Gradio's wrapper).
    """
    state = getattr(request, "state", None)
    value = getattr(state, RETRY_AFTER_KEY, None) if state is not None else None
    return int(value) if value else None


def add_guards(
    app: Any,
    *,
    settings: "Settings",
    credentials: "Credentials",
    session_cookie: Callable[[str], tuple[str, str] | None] | None = None,
    clock: Callable[[], float] = time.monotonic,
    uploads: bool = False,
) -> None:
    """Install every guard on a Starlette/FastAPI `app` (outermost first, as listed in the module doc).

    CORS is Starlette's own middleware, allowing `settings.allowed_origins` only; a parent app that
    configures it also turns off the permissive CORS that Gradio adds for itself. With `uploads`
    (the documents panel takes files), Gradio's upload route and its progress stay open, under the
    same origin check, rate limit and sign-in as every post, with bodies bounded by
    `settings.max_file_bytes` plus the multipart envelope; without, they answer 404 unread.
    """
    from starlette.middleware.cors import CORSMiddleware

    limiter = RateLimiter(per_minute=settings.rate_limit, burst=settings.rate_burst, clock=clock)
    notices = RateLimiter(per_minute=NOTICE_PER_MINUTE, burst=NOTICE_BURST, clock=clock)
    # add_middleware puts each in front of the ones before: add from the innermost out.
    app.add_middleware(
        CORSMiddleware,
        allow_origins=list(settings.allowed_origins),
        allow_methods=["GET", "POST"],
        allow_headers=["authorization", "content-type"],
    )
    app.add_middleware(RateLimit, limiter=limiter, notices=notices)
    app.add_middleware(BearerTokens, credentials=credentials, session_cookie=session_cookie)
    upload_bytes = settings.max_file_bytes + MULTIPART_OVERHEAD if uploads else None
    app.add_middleware(BodyLimit, max_bytes=settings.max_request_bytes, upload_bytes=upload_bytes)
    app.add_middleware(SameOriginPosts, allowed_origins=settings.allowed_origins)
    closed = [path for path in UPLOAD_ROUTES if not uploads or path not in (UPLOAD_ROUTE, UPLOAD_PROGRESS_ROUTE)]
    app.add_middleware(CloseRoutes, paths=closed)
