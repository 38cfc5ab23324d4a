"""The JSON HTTP API, served beside the chat: `POST /v1/answers`, `GET /v1/documents`, docs at `/docs`.

The routes live on the FastAPI app that `app.py` mounts the chat on, so the guards of
`assistant.server` (body size, API tokens, rate limit, same-origin posts) run in front of them as
they do in front of the chat. The API adds the sign-in check that Gradio makes for its own pages:
when the server has users or API tokens, a request needs a valid `Authorization: Bearer` token or
the session cookie of a signed-in browser, else 401.

An answer is the JSON `python -m assistant ask --json` prints (`assistant.wire.answer_json`); an
error is `{"error": message, "disclaimer": DISCLAIMER}` with its status: 400 bad input, 401 sign-in,
413 body too large, 429 rate limit, 500 a failure (the log has the details, the client a sentence).
Answering runs in the threadpool, so concurrent requests run concurrently and their questions are
encoded together when the assistant batches (`Settings.encode_batch`).

Example (in process, with any object that has `ask`):
    >>> from fastapi import FastAPI  # doctest: +SKIP
    >>> app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)  # doctest: +SKIP
    >>> add_api(app, bot, documents, settings=settings, credentials=credentials)  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from typing import TYPE_CHECKING, Any, Sequence

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.routing import Mount

from assistant.assistant import InvalidQuestion, validate_question
from assistant.models import Answer, Document
from assistant.server.api_docs import DOCS_HEADERS, DOCS_PAGE
from assistant.server.guards import CLIENT_KEY, retry_after
from assistant.wire import answer_json, error_payload

if TYPE_CHECKING:
    from assistant.server.auth import Credentials
    from assistant.settings import Settings

logger = logging.getLogger(__name__)

#: Earlier turns a request may carry: a follow-up reads the last one or two; the body limit bounds the rest.
MAX_HISTORY = 50
#: Questions answered at once; more wait, in order of arrival, holding no thread. Answering is CPU-bound Python
#: (the GIL) around one encoder call: with 40 clients on 2 cores, 4 gave 91 req/s and p99 0.66 s, 8 gave 68 req/s
#: and p99 2.6 s, 16 and 40 fewer still with seconds-long tails; on a quiet machine 8 gave 4's rate with p99 1.8 s
#: (benchmarks/http_load.py, docs/api.md; the chat's limit is 4 too).
ANSWER_WORKERS = 4
FAILURE = "the question could not be answered because of an error on the server; try again later"


class AnswerRequest(BaseModel):
    """The body of `POST /v1/answers`."""

    model_config = ConfigDict(extra="forbid")

    question: str = Field(description="The question, plain text.", examples=["What foods are high in magnesium?"])
    history: list[str] | None = Field(
        default=None, max_length=MAX_HISTORY,
        description="Earlier questions of the conversation, oldest first: a follow-up is read with them.",
    )
    sources: list[str] | None = Field(
        default=None, description="Answer only from these documents (names as `GET /v1/documents` lists them).",
    )


class DocumentInfo(BaseModel):
    """One document the assistant answers from."""

    name: str = Field(description="Path relative to the corpus folder: what citations call `source`.")
    kind: str | None = Field(description="text, markdown, html or pdf; null when only the store knows the document.")
    chunks: int | None = Field(description="Quotable passages indexed; null when the store cannot say.")
    bytes: int | None = Field(description="Size of the file; null when the server does not hold it.")
    characters: int | None = Field(description="Length of the document's text, the span citations count in.")
    sha256: str = Field(description="sha256 of the file's bytes.")


class ErrorBody(BaseModel):
    """Every refusal and failure."""

    error: str
    disclaimer: str


class ApiError(HTTPException):
    """A refusal with its status; answered as `ErrorBody`."""


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(error_payload(message), status_code=status, headers=headers)


def _bad_body(exc: ValidationError | RequestValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first.get("loc", ()) if part != "body") or "body"
    return f"{where}: {first.get('msg', 'invalid')}"


def mounted_chat(app: Any) -> Any | None:
    """The Gradio app mounted on `app` (it keeps signed-in sessions), or None while the chat is not mounted."""
    return next((route.app for route in app.routes
                 if isinstance(route, Mount) and hasattr(route.app, "tokens") and hasattr(route.app, "cookie_id")), None)


def _gradio_user(request: Request) -> str | None:
    """The user a browser's Gradio session cookie belongs to, the check Gradio makes for its own routes."""
    gradio = mounted_chat(request.app)
    if gradio is None:
        return None
    cookies = request.cookies
    token = cookies.get(f"access-token-{gradio.cookie_id}") or cookies.get(f"access-token-unsecure-{gradio.cookie_id}")
    return gradio.tokens.get(token) if token else None


def document_infos(documents: Sequence[Document], store: Any, corpus_dir: Any) -> list[DocumentInfo]:
    """What `GET /v1/documents` lists: the documents the app shows, and any others the store holds."""
    known = store.sources() if store is not None else {}
    infos = []
    for doc in documents:
        path = corpus_dir / doc.source if corpus_dir is not None else None
        size = path.stat().st_size if path is not None and path.is_file() else None
        chunks = len(store.chunks_of(doc.source)) if doc.source in known else None
        infos.append(DocumentInfo(name=doc.source, kind=doc.kind, chunks=chunks, bytes=size,
                                  characters=len(doc.text), sha256=doc.sha256))
    shown = {doc.source for doc in documents}
    for source in sorted(set(known) - shown):
        infos.append(DocumentInfo(name=source, kind=None, chunks=len(store.chunks_of(source)), bytes=None,
                                  characters=None, sha256=known[source]))
    return infos


def _responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    what = {400: "Bad input: not JSON, empty, too long, control characters, unknown fields.",
            401: "Sign-in required: send `Authorization: Bearer <token>`.", 413: "Body over ASSISTANT_MAX_REQUEST_BYTES.",
            429: "Rate limit: wait `Retry-After` seconds.", 500: "Failure on the server."}
    return {status: {"model": ErrorBody, "description": what[status]} for status in statuses}


def add_api(
    app: FastAPI, bot: Any, documents: Sequence[Document], *, settings: "Settings", credentials: "Credentials"
) -> None:
    """Add the API's routes and error handlers to `app`; call it before mounting the chat at `/`,
    whose mount would otherwise take every path."""
    router = APIRouter()
    takes_sources = "sources" in inspect.signature(bot.ask).parameters
    store = getattr(bot, "store", None)
    corpus_dir = settings.corpus_dir if settings.corpus_dir.is_dir() else None
    cache: dict[tuple, list[dict]] = {}
    workers = asyncio.Semaphore(ANSWER_WORKERS)

    def require_sign_in(request: Request) -> None:
        if not (credentials.has_users or credentials.has_tokens):
            return
        if getattr(request.state, CLIENT_KEY, None) or (credentials.has_users and _gradio_user(request)):
            return
        raise ApiError(401, "sign-in required: send 'Authorization: Bearer <token>' (an API token from the "
                       "server's administrator), or sign in on the web page first", {"WWW-Authenticate": "Bearer"})

    def checked(body: AnswerRequest) -> dict[str, Any]:
        """The extra arguments of `bot.ask` for `body`, after the checks that need no model."""
        if body.sources is not None and not takes_sources:
            raise ApiError(400, "sources: not supported")
        for i, turn in enumerate(body.history or []):
            try:
                validate_question(turn, max_chars=settings.max_question_chars)
            except InvalidQuestion as exc:
                raise ApiError(400, f"history[{i}]: {exc.reason}") from exc
        return {} if body.sources is None else {"sources": body.sources}

    def answer(body: AnswerRequest, extra: dict[str, Any]) -> Answer:
        try:
            return bot.ask(body.question, history=body.history or None, **extra)
        except InvalidQuestion as exc:
            raise ApiError(400, exc.reason) from exc
        except Exception as exc:  # the client gets a sentence, the log the trace
            logger.exception("answering failed for a question of %d characters", len(body.question))
            raise ApiError(500, FAILURE) from exc

    @router.post(
        "/v1/answers", response_class=Response, summary="Answer a question with cited quotes",
        responses={200: {"model": Answer, "description": "The answer, as `ask --json` prints it."},
                   **_responses(400, 401, 413, 429, 500)},
        openapi_extra={"requestBody": {"required": True, "content": {
            "application/json": {"schema": AnswerRequest.model_json_schema()}}}},
    )
    async def post_answers(request: Request) -> Response:
        """Quotes from the documents that answer the question, each cited, and the disclaimer; or a refusal
        (`grounded: false`) when the documents do not cover it. Counts against the rate limit."""
        require_sign_in(request)
        wait = retry_after(request)  # over the rate, let through only to say so (a request claiming to be the chat)
        if wait is not None:
            raise ApiError(429, f"busy, try again in {wait} s", {"Retry-After": str(wait)})
        try:
            body = AnswerRequest.model_validate_json(await request.body())
        except ValidationError as exc:
            raise ApiError(400, _bad_body(exc)) from exc
        extra = checked(body)
        async with workers:  # first come, first served; the rest wait here, holding no thread
            result = await run_in_threadpool(answer, body, extra)  # off the event loop: concurrent questions batch
        return Response(answer_json(result), media_type="application/json")

    @router.get("/v1/documents", response_model=list[DocumentInfo], summary="The documents answers come from",
                responses=_responses(401))
    def get_documents(request: Request) -> list[DocumentInfo]:
        """Each document's name (the `source` of citations), kind, passages indexed, size and fingerprint."""
        require_sign_in(request)
        key = tuple(sorted(store.sources().items())) if store is not None else ()
        if key not in cache:  # counted once per state of the store
            cache.clear()
            cache[key] = [i.model_dump() for i in document_infos(documents, store, corpus_dir)]
        return [DocumentInfo(**row) for row in cache[key]]

    app.include_router(router)
    schema: dict[str, Any] = {}

    @app.get("/openapi.json", include_in_schema=False)
    def openapi() -> JSONResponse:
        if not schema:
            schema.update(get_openapi(title=app.title, version="1", routes=router.routes,
                                      description="The JSON API of the cited health assistant (docs/api.md)."))
        return JSONResponse(schema)

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return HTMLResponse(DOCS_PAGE, headers=DOCS_HEADERS)

    async def refuse(request: Request, exc: Exception) -> JSONResponse:
        if isinstance(exc, RequestValidationError):
            return _error(400, _bad_body(exc))
        assert isinstance(exc, HTTPException)
        return _error(exc.status_code, str(exc.detail), dict(exc.headers or {}) or None)

    app.add_exception_handler(RequestValidationError, refuse)
    app.add_exception_handler(HTTPException, refuse)
