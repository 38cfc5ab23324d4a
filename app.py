"""The chat UI: `python app.py` serves it on http://127.0.0.1:7860 (`GRADIO_SERVER_PORT` to change the port).

Layout and wiring only: answering is `Assistant.ask`, every string shown is built by
`assistant.render`, and sign-in, rate limits and request guards are `assistant.server`, installed
as middlewares on the FastAPI app the Gradio Blocks is mounted on (served by uvicorn). Besides the
chat, the app registers one API endpoint, `/ask`:

    >>> from gradio_client import Client  # doctest: +SKIP
    >>> client = Client("http://127.0.0.1:7860/")  # doctest: +SKIP
    >>> print(client.predict("Which magnesium form is best for sleep?", api_name="/ask"))  # doctest: +SKIP

Start-up: `main` loads the assistant and serves the JSON API (`/v1/answers`) at once; Gradio, whose
import alone takes seconds, is imported and the chat built in a worker thread, then mounted at `/`
(which says "starting" until then). Tests and other callers of `build_app` get both at once.

Concurrency: one `Assistant` (one model) serves every session. Answering is CPU-bound and the
model already uses every core, so all events that call it share one concurrency group of
`CONCURRENCY_LIMIT` workers; further requests wait in the queue (up to `QUEUE_MAX_SIZE`) instead
of failing or oversubscribing the CPU.
"""

import asyncio
import contextlib
import logging
import os
import secrets
import sys
from typing import TYPE_CHECKING, Any, AsyncIterator, Callable, Iterator, NoReturn

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # before gradio is imported: it reads this once
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
# Per-event timings Gradio keeps for its monitoring page (off here): 10,000 events by default, read once.
os.environ.setdefault("GRADIO_ANALYTICS_MAX_EVENTS", "1000")

import uvicorn  # noqa: E402
from fastapi import FastAPI  # noqa: E402
from fastapi.responses import HTMLResponse  # noqa: E402
from pydantic import ValidationError  # noqa: E402

from assistant import Assistant, render  # noqa: E402
from assistant.answer import DISCLAIMER  # noqa: E402
from assistant.assistant import InvalidQuestion  # noqa: E402
from assistant.examples import example_questions  # noqa: E402
from assistant.models import Answer, Document  # noqa: E402
from assistant.page_view import render_page_views  # noqa: E402
from assistant.server import api, binding, guards  # noqa: E402
from assistant.server.auth import Credentials  # noqa: E402
from assistant.server.uploads_ui import UPLOAD_TYPES, WORKING, Library, stored_documents, uploads_enabled  # noqa: E402
from assistant.settings import Settings  # noqa: E402
from assistant.threads import limit_numeric_pools  # noqa: E402

if TYPE_CHECKING:  # gradio takes seconds to import: `main` serves the JSON API first and mounts the chat after
    import gradio as gr

logger = logging.getLogger("app")

TITLE = "Cited health assistant"
SUBTITLE = "Answers are passages quoted word for word from the documents, each with its source."

#: Events answering at once, chat and `/ask` together. Answering is CPU-bound and torch already uses
#: every core: with 40 clients on 2 cores, limits of 1, 2, 4, 8 and 40 gave the same throughput while
#: peak memory grew with the limit. 4 lets one slow question (2,000 characters) not block the rest.
CONCURRENCY_LIMIT = 4
#: Requests waiting beyond that; over it a caller gets "queue full" rather than unbounded memory.
QUEUE_MAX_SIZE = 256
#: Gradio's temporary files (uploads are deleted once indexed; this sweeps the rest) older than an hour go, hourly.
DELETE_CACHE = (3600, 3600)

#: Fonts the machine already has: the page must load offline, so nothing comes from a font service.
SYSTEM_FONTS = [
    "Segoe UI", "Roboto", "Helvetica Neue", "Arial", "Noto Sans", "Liberation Sans", "DejaVu Sans", "sans-serif"
]
SYSTEM_MONO_FONTS = ["SFMono-Regular", "Consolas", "Liberation Mono", "DejaVu Sans Mono", "monospace"]

#: After each answer, scroll the documents panel (not the page) to the first cited page or highlighted span.
#: On load, also keep each new exchange's top in view: the chat's own autoscroll (off) went to the
#: bottom of a long answer, hiding the notice that opens it. While an answer streams in (4 s at
#: most, so a reader who scrolls is not fought), the chat scrolls so its question is at the top.
SCROLL_TO_FIRST_MARK = """
watch('value', () => {
  const mark = element.querySelector('.page-view, mark');  // a cited PDF page first, else the first span
  const box = element.closest('#corpus');
  if (mark && box) box.scrollTop += mark.getBoundingClientRect().top - box.getBoundingClientRect().top - 24;
});
const chat = document.querySelector('#chat');
if (chat && !chat.dataset.topFirst) {
  chat.dataset.topFirst = '1';
  let seen = 0, until = 0;
  const scrolls = e => e.scrollHeight > e.clientHeight && /auto|scroll/.test(getComputedStyle(e).overflowY);
  new MutationObserver(() => {
    const rows = chat.querySelectorAll('.message-row.user-row');
    if (rows.length !== seen) { seen = rows.length; until = rows.length ? Date.now() + 4000 : 0; }
    if (Date.now() > until) return;
    const row = rows[rows.length - 1];
    let box = row.parentElement;
    while (box && box !== chat.parentElement && !scrolls(box)) box = box.parentElement;
    if (box && scrolls(box)) box.scrollTop += row.getBoundingClientRect().top - box.getBoundingClientRect().top - 8;
  }).observe(chat, {childList: true, subtree: true, characterData: true});
}
"""

#: Colours are set in pairs (text on background) so that `tests/test_app.py` can check each pair
#: against WCAG AA (4.5:1) whatever the theme; marks and notices do not rely on the theme's text colour.
CSS = """
#disclaimer { border-left: 4px solid #b45309; padding: 0.4em 0.8em; background: #fdf3e7; color: #1f2937; }
#disclaimer p { color: #1f2937; }
.notice { border-left: 4px solid #b91c1c; padding: 0.5em 0.8em; margin-bottom: 0.6em; background: #fef2f2;
  color: #7f1d1d; font-weight: 600; }
.passage { margin: 0.4em 0 0.6em; padding: 0.5em 0.7em; border-left: 3px solid #9ca3af; font-size: 0.92em; }
.passage mark, .corpus mark { background: #fde68a; color: #111827; padding: 0 0.1em; }
.cite-n { font-weight: 600; margin-left: 0.15em; }
details.citation > summary, .corpus details.doc > summary { cursor: pointer; min-height: 44px; padding: 0.6em 0; }
#chat hr { margin: 0.6em 0; }
.quote, .passage, .corpus .doc-text { line-height: 1.5; }
.quote p, .passage p, .corpus .doc-text p { margin: 0.3em 0; }
.quote ul, .passage ul, .corpus ul { margin: 0.3em 0 0.3em 1.4em; padding: 0; list-style: disc; }
.quote li, .passage li, .corpus li { display: list-item; margin: 0.1em 0; }
.doc-h { font-size: 1.02em; font-weight: 700; margin: 0.7em 0 0.3em; }
table.doc-table { border-collapse: collapse; margin: 0.4em 0; font-size: 0.92em; }
table.doc-table th, table.doc-table td { border: 1px solid #9ca3af; padding: 0.25em 0.5em; text-align: left;
  vertical-align: top; }
table.doc-table th { background: #e5e7eb; color: #111827; font-weight: 600; }
table.doc-table th, table.doc-table td { word-break: normal; overflow-wrap: normal; min-width: 5em; }
.quote table.doc-table, .passage table.doc-table { display: block; max-width: 100%; overflow-x: auto; }
.corpus .doc-text { font-size: 0.92em; }
.corpus .omitted { color: #4b5563; font-style: italic; margin: 0.4em 0; }
#corpus { max-height: 720px; overflow-y: auto !important; }
#chat { height: clamp(300px, calc(100vh - 400px), 620px) !important; }
#ask, #retry, #clear, #examples button { min-height: 44px; }
@media (max-width: 720px) {
  #chat { height: clamp(260px, calc(100svh - 470px), 520px) !important; }
  h1 { font-size: 1.4em !important; margin: 0 !important; }
  #disclaimer { font-size: 0.85em; padding: 0.3em 0.6em; }
  #corpus { max-height: 480px; }
  #chat .message-row.bot-row { max-width: calc(100% - 12px) !important; margin: 12px 6px 8px !important; }
  .quote table.doc-table, .passage table.doc-table { font-size: 0.85em; }
  table.doc-table th, table.doc-table td { min-width: 4.5em; padding: 0.2em 0.35em; }
}
.page-view { margin: 0.4em 0 0.8em; }
.page-view img { max-width: 100%; height: auto; border: 1px solid #d1d5db; }
.library ul { margin: 0.2em 0; padding-left: 1.2em; }
"""


def _assistant_message(text: str) -> dict[str, str]:
    return {"role": "assistant", "content": text}


def build_demo(
    bot: Assistant, documents: list[Document], settings: Settings | None = None, *, uploads: bool = False
) -> "gr.Blocks":
    """The Blocks app for `bot`, showing `documents` (the corpus it answers from) beside the chat.

    With `uploads`, the documents panel also takes files (`assistant.server.uploads_ui`).
    """
    import gradio as gr

    settings = settings or getattr(bot, "settings", None) or Settings()
    max_chars = settings.max_question_chars
    documents = list(documents)  # the library adds and removes uploads in place
    library = Library(bot, documents, settings, enabled=uploads)
    texts = library.texts
    example_list = example_questions(documents)

    def reply(question: str, history: list[str], sources: list[str] | None = None) -> tuple[list[str], Answer | None]:
        """The message blocks for `question`, and the answer (None when it was not answered)."""
        try:
            answer = bot.ask(question, history=history, **({"sources": sources} if sources else {}))
        except InvalidQuestion as exc:
            return render.error_blocks(exc.reason), None
        except Exception:  # the user gets a message, not a trace; the log has the details
            logger.exception("answering failed for a question of %d characters", len(question or ""))
            return render.error_blocks(render.FAILURE), None
        return render.answer_blocks(answer, texts), answer

    def ask(question: str, request: gr.Request | None = None) -> str:
        """Answer one question (no conversation) as Markdown, citations and disclaimer included."""
        wait = guards.retry_after(request)
        if wait is not None:
            return render.with_disclaimer(render.busy_blocks(wait))
        blocks, _ = reply(question, [])  # anything but text is rejected by `ask` with a message
        return render.with_disclaimer(blocks)

    def respond(
        question: str, messages: list[Any], history: list[str], request: gr.Request | None = None,
        chosen: list[str] | None = None,  # after `request`: Gradio puts the request in its place, inputs around it
    ) -> Iterator[tuple]:
        """Show the question, a placeholder, then the answer block by block; remember accepted questions.

        A question over the length limit is not echoed (only its length is shown) and not kept for
        Retry; over the rate limit, the chat says when to try again and the question stays typed.
        """
        too_long = isinstance(question, str) and len(question) > max_chars
        messages = [*messages, {"role": "user", "content": render.render_question(question, max_chars=max_chars)}]
        wait = guards.retry_after(request)
        if wait is not None:
            busy = _assistant_message(render.with_disclaimer(render.busy_blocks(wait)))
            yield gr.skip(), [*messages, busy], gr.skip(), None if too_long else question, gr.skip()
            return
        searching = _assistant_message(render.with_disclaimer([render.SEARCHING]))
        yield "", [*messages, searching], history, None if too_long else question, gr.skip()
        blocks, answer = reply(question, history, library.sources_for(chosen))
        if answer is not None:
            history = [*history, question]
        pieces = list(render.progressive(blocks))
        for piece in pieces[:-1]:
            yield gr.skip(), [*messages, _assistant_message(piece)], gr.skip(), gr.skip(), gr.skip()
        corpus = sources_view(answer) if answer is not None else gr.skip()
        yield gr.skip(), [*messages, _assistant_message(pieces[-1])], history, None if too_long else question, corpus

    def retry(
        messages: list[Any], history: list[str], last: str | None, request: gr.Request | None = None,
        chosen: list[str] | None = None,
    ) -> Iterator[tuple]:
        """Ask the last question again, in place of its previous answer."""
        if last is None:
            return
        users = [i for i, m in enumerate(messages) if m.get("role") == "user"]
        kept = messages[: users[-1]] if users else []
        if history and history[-1] == last:  # it was accepted: it is not its own history
            history = history[:-1]
        yield from respond(last, kept, history, request, chosen)

    def clear() -> tuple:
        return "", [], [], None, render.render_corpus(documents)

    def sources_view(answer: Answer) -> str:
        """The cited PDF pages with their highlights, then the documents with the cited spans highlighted."""
        return render_page_views(answer.citations, library.locate) + render.render_corpus(documents, answer.citations)

    def panel() -> tuple:
        """The documents list, the restriction's choices and the removable uploads, as they are now."""
        return (library.render_list(), gr.update(choices=library.choices()), gr.update(choices=library.uploaded()))

    def add(upload: Any) -> Iterator[tuple]:
        name = getattr(upload, "name", None) or str(upload or "")
        yield (render.with_disclaimer([WORKING.format(name=render.escape_markdown(os.path.basename(name)))]),
               *(gr.skip(),) * 5)
        status = library.add(upload)
        yield status, *panel(), None, refreshed()

    def refreshed() -> str:
        """The documents panel as it is now, also made the start of pages loaded from now on."""
        shown = render.render_corpus(documents)
        choices = [(c, c) for c in library.choices()]
        removable_choices = [(c, c) for c in library.uploaded()]
        _set_initial(demo, dict(zip(fresh, [{"value": library.render_list()}, {"choices": choices},
                                            {"value": shown}, {"choices": removable_choices}])))
        return shown

    def remove(source: str | None) -> tuple:
        status = library.remove(source)
        listing_html, _, removable_choices = panel()
        scope_choices = gr.update(choices=library.choices(), value=[])  # a removed document cannot stay chosen
        return status, listing_html, scope_choices, removable_choices, refreshed()

    with gr.Blocks(title=TITLE, analytics_enabled=False, delete_cache=DELETE_CACHE) as demo:
        gr.Markdown(f"# {TITLE}\n{SUBTITLE}")
        gr.Markdown(f"**{DISCLAIMER}**", elem_id="disclaimer")
        # Kept on the server per tab, forgotten `session_ttl_seconds` after the last question.
        history = gr.State([], time_to_live=settings.session_ttl_seconds)  # accepted questions, as typed
        last = gr.State(None, time_to_live=settings.session_ttl_seconds)  # the last question sent, for Retry
        with gr.Row(equal_height=False):
            with gr.Column(scale=3):
                chatbot = gr.Chatbot(
                    label="Conversation",
                    show_label=False,  # its floating label covered the first message
                    elem_id="chat",
                    height=620,  # CSS makes it fit the window, so the question box is in view on a phone
                    autoscroll=False,  # SCROLL_TO_FIRST_MARK keeps each answer's top in view instead
                    latex_delimiters=[],  # a "$$" in a document is text, not maths
                    sanitize_html=True,
                    allow_tags=False,
                    buttons=["copy"],
                    feedback_options=None,
                    placeholder="Ask a question about the documents, or pick an example below."
                    if example_list else "Ask a question about the documents.",
                )
                with gr.Row():
                    question = gr.Textbox(
                        label="Your question",  # its accessible name; shown to screen readers only
                        placeholder="Type a question and press Enter",
                        show_label=False,
                        container=False,
                        scale=5,
                        elem_id="question",
                        max_lines=6,
                    )
                    send = gr.Button("Ask", variant="primary", scale=1, elem_id="ask")
                examples = gr.Examples(
                    example_list, inputs=[question], label="Example questions (from the documents' headings)",
                    api_visibility="private", elem_id="examples",
                ) if example_list else None
                with gr.Row():
                    retry_button = gr.Button("Retry", size="sm", elem_id="retry")
                    clear_button = gr.Button("Clear conversation", size="sm", elem_id="clear")
            with gr.Column(scale=2, min_width=320):
                gr.Markdown("### Documents\nHighlighted: the passages cited in the latest answer.")
                corpus = gr.HTML(render.render_corpus(documents), elem_id="corpus", js_on_load=SCROLL_TO_FIRST_MARK)
                with gr.Accordion("Your documents: add, remove, choose", open=uploads, elem_id="library"):
                    scope = gr.Dropdown(library.choices(), value=[], multiselect=True, elem_id="scope",
                                        label="Answer only from (none chosen: all documents)")
                    if uploads:
                        upload = gr.File(label=f"Add a document: {', '.join(UPLOAD_TYPES)}", file_types=UPLOAD_TYPES,
                                         file_count="single", type="filepath", elem_id="upload", height=120)
                        with gr.Row():
                            removable = gr.Dropdown(library.uploaded(), value=None, label="Uploaded document",
                                                    elem_id="removable", scale=3)
                            remove_button = gr.Button("Remove", size="sm", elem_id="remove", scale=1)
                    upload_status = gr.Markdown(elem_id="upload-status")
                    listing = gr.HTML(library.render_list(), elem_id="library-list")

        answer_outputs = [question, chatbot, history, last, corpus]
        group = {
            "concurrency_id": "assistant",
            "concurrency_limit": CONCURRENCY_LIMIT,
            "api_visibility": "private",
            "show_progress": "minimal",
        }
        question.submit(respond, [question, chatbot, history, scope], answer_outputs, **group)
        send.click(respond, [question, chatbot, history, scope], answer_outputs, **group)
        if examples is not None:
            examples.load_input_event.then(respond, [question, chatbot, history, scope], answer_outputs, **group)
        retry_button.click(retry, [chatbot, history, last, scope], answer_outputs, **group)
        if uploads:  # indexing shares the answering workers: a long PDF never starves other sessions of CPU
            panel_outputs = [upload_status, listing, scope, removable]
            upload.upload(add, [upload], [*panel_outputs, upload, corpus], **group)
            remove_button.click(remove, [removable], [*panel_outputs, corpus], **group)
        # No load event to refresh these: it would be one more rate-limited post per page load. Instead each
        # change rewrites the values new pages start with (below), and the tab that made it gets them at once.
        fresh = [listing, scope, corpus] + ([removable] if uploads else [])
        clear_button.click(clear, None, answer_outputs, queue=False, api_visibility="private")
        chatbot.clear(clear, None, answer_outputs, queue=False, api_visibility="private")
        gr.api(ask, api_name="ask", concurrency_id="assistant", concurrency_limit=CONCURRENCY_LIMIT)
    demo.queue(default_concurrency_limit=CONCURRENCY_LIMIT, max_size=QUEUE_MAX_SIZE)
    return demo


def _set_initial(demo: "gr.Blocks", props: dict[Any, dict[str, Any]]) -> None:
    """Let pages loaded from now on start with these component props: Gradio serves the config it built at mount."""
    by_id = {component._id: values for component, values in props.items()}
    for entry in (getattr(demo, "config", None) or {}).get("components", []):
        if entry.get("id") in by_id:
            entry.setdefault("props", {}).update(by_id[entry["id"]])


def _gradio_login(app: FastAPI) -> Callable[[str], "tuple[str, str] | None"]:
    """How a request with a valid API token is signed in to Gradio, whose login knows only its cookie.

    Gradio keeps signed-in sessions as `tokens[cookie value] = user` and reads the cookie
    `access-token-unsecure-<cookie_id>`. Each API token gets one such value, set on the request
    by `guards.BearerTokens` after the token checked out; it is never sent to any client.
    """
    issued: dict[str, str] = {}

    def session_cookie(token_id: str) -> tuple[str, str] | None:
        gradio_app = api.mounted_chat(app)
        if gradio_app is None:  # the chat is not mounted yet: only the JSON API answers, and it needs no cookie
            return None
        value = issued.setdefault(token_id, secrets.token_urlsafe(32))
        gradio_app.tokens[value] = token_id  # each time: a sign-out may have dropped it
        return f"access-token-unsecure-{gradio_app.cookie_id}", value

    return session_cookie


def build_app(
    bot: Assistant,
    documents: list[Document],
    *,
    settings: Settings,
    credentials: Credentials,
    host: str = binding.DEFAULT_HOST,
    port: int = binding.DEFAULT_PORT,
) -> FastAPI:
    """The FastAPI app: the JSON API (`/v1/…`, `/docs`) and the chat mounted at `/`, behind the guards of
    `assistant.server`."""
    app = build_api_app(bot, documents, settings=settings, credentials=credentials, host=host)
    mount_chat(app, bot, documents, settings=settings, credentials=credentials, host=host, port=port)
    return app


def build_api_app(
    bot: Assistant, documents: list[Document], *, settings: Settings, credentials: Credentials,
    host: str = binding.DEFAULT_HOST,
) -> FastAPI:
    """The FastAPI app with the JSON API and every guard, and no chat yet (`mount_chat` adds it)."""
    app = FastAPI(title=TITLE, docs_url=None, redoc_url=None, openapi_url=None)  # /docs: served offline by `api`
    api.add_api(app, bot, documents, settings=settings, credentials=credentials)  # before the mount that takes "/"
    session_cookie = _gradio_login(app) if credentials.has_users else None
    guards.add_guards(app, settings=settings, credentials=credentials, session_cookie=session_cookie,
                      uploads=uploads_enabled(settings, host, credentials))
    return app


def mount_chat(
    app: FastAPI, bot: Assistant, documents: list[Document], *, settings: Settings, credentials: Credentials,
    host: str = binding.DEFAULT_HOST, port: int = binding.DEFAULT_PORT,
) -> Any:
    """Build the chat and mount it at `/` of `app`; return Gradio's app. Gradio's start-up (its queue) runs with
    `app`'s lifespan when `app` has not started yet; for a running `app`, `chat_lifespan` runs it."""
    import gradio as gr

    uploads = uploads_enabled(settings, host, credentials)
    demo = build_demo(bot, documents, settings, uploads=uploads)
    demo.max_file_size = settings.max_file_bytes if uploads else 1  # Gradio's own bound, behind the guards' one
    demo.state_session_capacity = settings.session_capacity  # launch() takes it; mount_gradio_app reads it here

    async def sign_in(username: str, password: str) -> bool:  # scrypt is slow on purpose: off the event loop
        return await asyncio.to_thread(credentials.verify_user, username, password)

    gr.mount_gradio_app(
        app,
        demo,
        path="/",
        server_name=host,
        server_port=port,
        auth=sign_in if credentials.has_users else None,
        auth_message="Sign in to ask questions about the documents." if credentials.has_users else None,
        theme=gr.themes.Default(font=SYSTEM_FONTS, font_mono=SYSTEM_MONO_FONTS),
        css=CSS,
        footer_links=["api"],
        run_history=False,  # questions about one's health are not kept in the browser
        enable_monitoring=False,
        show_error=False,  # errors are messages written by `render`, never exception text
        ssr_mode=False,
    )
    return api.mounted_chat(app)


#: The page at `/` while the chat is being built (a few seconds after start; the JSON API already answers).
STARTING_PAGE = (
    "<!doctype html><html lang='en'><head><meta charset='utf-8'><meta http-equiv='refresh' content='1'>"
    f"<title>{TITLE}</title></head><body><p>The assistant is starting; this page reloads by itself.</p>"
    f"<p>{DISCLAIMER}</p></body></html>"
)


@contextlib.asynccontextmanager
async def chat_lifespan(app: FastAPI, build: Callable[[], Any]) -> AsyncIterator[None]:
    """Serve at once, and mount the chat when `build` (run in a thread: it imports Gradio) has made it.

    Until then `/` answers `STARTING_PAGE`; Gradio's own start-up events run here, in the server's
    event loop, once its app is mounted, and its shutdown when the server stops.
    """
    async def starting() -> HTMLResponse:
        return HTMLResponse(STARTING_PAGE, status_code=503, headers={"Retry-After": "1", "Cache-Control": "no-store"})

    app.add_api_route("/", starting, methods=["GET"], include_in_schema=False)
    placeholder = app.router.routes[-1]
    gradio_lifespan = contextlib.AsyncExitStack()

    async def mount() -> None:
        try:
            gradio_app = await asyncio.to_thread(build)
            app.router.routes.remove(placeholder)
            await gradio_lifespan.enter_async_context(gradio_app.router.lifespan_context(gradio_app))
            gradio_app.get_blocks().run_startup_events()
            await gradio_app.get_blocks().run_extra_startup_events()
            logger.info("the chat is ready")
        except Exception:  # the JSON API keeps serving; the log says why the chat is missing
            logger.exception("the chat could not be started")

    task = asyncio.create_task(mount())
    try:
        yield
    finally:
        task.cancel()  # a stop during start-up: the chat is not mounted, nothing of Gradio's to shut down
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await gradio_lifespan.aclose()


def _refuse(message: str) -> NoReturn:
    """Stop with a one-line message and exit status 2: bad settings, or a refused address."""
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    for ours in (logger, logging.getLogger("assistant")):  # progress of our own start-up; libraries warn only
        ours.setLevel(logging.INFO)
    try:
        settings = Settings()
        credentials = Credentials.from_settings(settings)
        host, port = binding.bind_address(settings, os.environ)
    except ValidationError as exc:
        _refuse("; ".join(f"ASSISTANT_{'.'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in exc.errors()))
    except ValueError as exc:
        _refuse(str(exc))
    problem = binding.exposure_error(host, settings, credentials)
    if problem is not None:
        _refuse(problem)
    if settings.encode_batch is None:  # serving: questions asked together are encoded together
        settings = settings.model_copy(update={"encode_batch": True})
    bot = Assistant.load(settings, on_rebuild=logger.info)
    limit_numeric_pools()  # requests are the concurrency; a question's products are too small to share (assistant.threads)
    if settings.corpus_dir.is_dir():  # the corpus's documents as indexed: the sync has just read every file
        documents = stored_documents(bot.store, uploads=False)
    else:  # a serving machine for a Milvus collection need not hold the corpus: quotes come from the store
        logger.info("no corpus folder at %s: the documents panel stays empty", settings.corpus_dir)
        documents = []
    app = build_api_app(bot, documents, settings=settings, credentials=credentials, host=host)

    def build() -> Any:
        return mount_chat(app, bot, documents, settings=settings, credentials=credentials, host=host, port=port)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # On a graceful stop (uvicorn re-raises SIGTERM once the app has shut down, so not after run()): the encode
        # batcher's thread ends and the store is released.
        try:
            async with chat_lifespan(app, build):
                yield
        finally:
            bot.close()

    app.router.lifespan_context = lifespan
    logger.info("serving on http://%s:%d/ (the JSON API at once, the chat in a few seconds)", host, port)
    # No access log: paths and addresses only, but nothing the README promises needs it (see "Running it for others").
    uvicorn.run(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=3)


if __name__ == "__main__":
    main()
