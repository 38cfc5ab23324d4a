"""The chat UI: `python app.py` serves it on http://127.0.0.1:7860 (`GRADIO_SERVER_PORT` to change the port).

Layout and event wiring only: answering is `Assistant.ask`, every string shown is built by
`assistant.render`. Besides the chat, the app registers one API endpoint, `/ask`:

    >>> from gradio_client import Client  # doctest: +SKIP
    >>> client = Client("http://127.0.0.1:7860/")  # doctest: +SKIP
    >>> print(client.predict("Which magnesium form is best for sleep?", api_name="/ask"))  # doctest: +SKIP

Concurrency: one `Assistant` (one model) serves every session. Answering is CPU-bound and the
model already uses every core, so all events that call it share one concurrency group of
`CONCURRENCY_LIMIT` workers; further requests wait in the queue (up to `QUEUE_MAX_SIZE`) instead
of failing or oversubscribing the CPU.
"""

import logging
import os
from typing import Any, Iterator

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # before gradio is imported: it reads this once
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import gradio as gr  # noqa: E402

from assistant import Assistant, render  # noqa: E402
from assistant.answer import DISCLAIMER  # noqa: E402
from assistant.assistant import InvalidQuestion  # noqa: E402
from assistant.corpus import load_corpus  # noqa: E402
from assistant.models import Answer, Document  # noqa: E402

logger = logging.getLogger("app")

TITLE = "Cited health assistant"
SUBTITLE = "Answers are passages quoted word for word from the documents on the right, each with its source."

EXAMPLES = [
    "Which magnesium form is best for sleep?",
    "What foods are high in magnesium?",
    "How does magnesium help prevent calcification?",
    "Who wrote Pride and Prejudice?",
]

#: Events answering at once, chat and `/ask` together. Answering is CPU-bound and torch already uses
#: every core: with 40 clients on 2 cores, limits of 1, 2, 4, 8 and 40 gave the same throughput while
#: peak memory grew with the limit. 4 lets one slow question (2,000 characters) not block the rest.
CONCURRENCY_LIMIT = 4
#: Requests waiting beyond that; over it a caller gets "queue full" rather than unbounded memory.
QUEUE_MAX_SIZE = 256

#: Fonts the machine already has: the page must load offline, so nothing comes from a font service.
SYSTEM_FONTS = [
    "Segoe UI", "Roboto", "Helvetica Neue", "Arial", "Noto Sans", "Liberation Sans", "DejaVu Sans", "sans-serif"
]
SYSTEM_MONO_FONTS = ["SFMono-Regular", "Consolas", "Liberation Mono", "DejaVu Sans Mono", "monospace"]

#: After each answer, scroll the documents panel (not the page) to the first highlighted span.
SCROLL_TO_FIRST_MARK = """
watch('value', () => {
  const mark = element.querySelector('mark');
  const box = element.closest('#corpus');
  if (mark && box) box.scrollTop += mark.getBoundingClientRect().top - box.getBoundingClientRect().top - 24;
});
"""

CSS = """
#disclaimer { border-left: 4px solid #d97706; padding: 0.4em 0.8em; background: rgba(217, 119, 6, 0.08); }
.passage { margin: 0.4em 0 0.6em; padding: 0.5em 0.7em; border-left: 3px solid #9ca3af; font-size: 0.92em; }
.passage mark, .corpus mark { background: #fde68a; color: #111827; padding: 0 0.1em; }
.cite-n { font-weight: 600; margin-left: 0.15em; }
details.citation > summary { cursor: pointer; }
#chat hr { margin: 0.6em 0; }
.corpus .doc-text { white-space: pre-wrap; line-height: 1.5; font-size: 0.92em; }
#corpus { max-height: 720px; overflow-y: auto !important; }
"""


def _assistant_message(text: str) -> dict[str, str]:
    return {"role": "assistant", "content": text}


def build_demo(bot: Assistant, documents: list[Document]) -> gr.Blocks:
    """The Blocks app for `bot`, showing `documents` (the corpus it answers from) beside the chat."""
    texts = {doc.source: doc.text for doc in documents}

    def reply(question: str, history: list[str]) -> tuple[list[str], Answer | None]:
        """The message blocks for `question`, and the answer (None when it was not answered)."""
        try:
            answer = bot.ask(question, history=history)
        except InvalidQuestion as exc:
            return render.error_blocks(exc.reason), None
        except Exception:  # the user gets a message, not a trace; the log has the details
            logger.exception("answering failed for a question of %d characters", len(question or ""))
            return render.error_blocks(render.FAILURE), None
        return render.answer_blocks(answer, texts), answer

    def ask(question: str) -> str:
        """Answer one question (no conversation) as Markdown, citations and disclaimer included."""
        blocks, _ = reply(question, [])  # anything but text is rejected by `ask` with a message
        return render.with_disclaimer(blocks)

    def respond(question: str, messages: list[Any], history: list[str]) -> Iterator[tuple]:
        """Show the question, a placeholder, then the answer block by block; remember accepted questions."""
        messages = [*messages, {"role": "user", "content": render.render_question(question)}]
        searching = _assistant_message(render.with_disclaimer([render.SEARCHING]))
        yield "", [*messages, searching], history, question, gr.skip()
        blocks, answer = reply(question, history)
        if answer is not None:
            history = [*history, question]
        pieces = list(render.progressive(blocks))
        for piece in pieces[:-1]:
            yield gr.skip(), [*messages, _assistant_message(piece)], gr.skip(), gr.skip(), gr.skip()
        corpus = render.render_corpus(documents, answer.citations) if answer is not None else gr.skip()
        yield gr.skip(), [*messages, _assistant_message(pieces[-1])], history, question, corpus

    def retry(messages: list[Any], history: list[str], last: str | None) -> Iterator[tuple]:
        """Ask the last question again, in place of its previous answer."""
        if last is None:
            return
        users = [i for i, m in enumerate(messages) if m.get("role") == "user"]
        kept = messages[: users[-1]] if users else []
        if history and history[-1] == last:  # it was accepted: it is not its own history
            history = history[:-1]
        yield from respond(last, kept, history)

    def clear() -> tuple:
        return "", [], [], None, render.render_corpus(documents)

    with gr.Blocks(title=TITLE, analytics_enabled=False) as demo:
        gr.Markdown(f"# {TITLE}\n{SUBTITLE}")
        gr.Markdown(f"**{DISCLAIMER}**", elem_id="disclaimer")
        history = gr.State([])  # accepted questions of this tab's conversation, as typed
        last = gr.State(None)  # the last question sent, for Retry
        with gr.Row(equal_height=False):
            with gr.Column(scale=3):
                chatbot = gr.Chatbot(
                    label="Conversation",
                    elem_id="chat",
                    height=620,
                    latex_delimiters=[],  # a "$$" in a document is text, not maths
                    sanitize_html=True,
                    allow_tags=False,
                    buttons=["copy"],
                    feedback_options=None,
                    placeholder="Ask a question about the documents, or pick an example below.",
                )
                with gr.Row():
                    question = gr.Textbox(
                        placeholder="Type a question and press Enter",
                        show_label=False,
                        container=False,
                        scale=5,
                        elem_id="question",
                        max_lines=6,
                    )
                    send = gr.Button("Ask", variant="primary", scale=1, elem_id="ask")
                with gr.Row():
                    retry_button = gr.Button("Retry", size="sm", elem_id="retry")
                    clear_button = gr.Button("Clear conversation", size="sm", elem_id="clear")
                examples = gr.Examples(EXAMPLES, inputs=[question], label="Example questions", api_visibility="private")
            with gr.Column(scale=2):
                gr.Markdown("### Documents\nHighlighted: the passages cited in the latest answer.")
                corpus = gr.HTML(render.render_corpus(documents), elem_id="corpus", js_on_load=SCROLL_TO_FIRST_MARK)

        answer_outputs = [question, chatbot, history, last, corpus]
        group = {
            "concurrency_id": "assistant",
            "concurrency_limit": CONCURRENCY_LIMIT,
            "api_visibility": "private",
            "show_progress": "minimal",
        }
        question.submit(respond, [question, chatbot, history], answer_outputs, **group)
        send.click(respond, [question, chatbot, history], answer_outputs, **group)
        examples.load_input_event.then(respond, [question, chatbot, history], answer_outputs, **group)
        retry_button.click(retry, [chatbot, history, last], answer_outputs, **group)
        clear_button.click(clear, None, answer_outputs, queue=False, api_visibility="private")
        chatbot.clear(clear, None, answer_outputs, queue=False, api_visibility="private")
        gr.api(ask, api_name="ask", concurrency_id="assistant", concurrency_limit=CONCURRENCY_LIMIT)
    demo.queue(default_concurrency_limit=CONCURRENCY_LIMIT, max_size=QUEUE_MAX_SIZE)
    return demo


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    for ours in (logger, logging.getLogger("assistant")):  # progress of our own start-up; libraries warn only
        ours.setLevel(logging.INFO)
    bot = Assistant.load(on_rebuild=logger.info)
    if bot.settings.corpus_dir.is_dir():
        documents = load_corpus(bot.settings.corpus_dir, max_bytes=bot.settings.max_file_bytes)
    else:  # a serving machine for a Milvus collection need not hold the corpus: quotes come from the store
        logger.info("no corpus folder at %s: the documents panel stays empty", bot.settings.corpus_dir)
        documents = []
    demo = build_demo(bot, documents)
    demo.launch(
        share=False,  # never a public tunnel; the host is GRADIO_SERVER_NAME or 127.0.0.1
        theme=gr.themes.Default(font=SYSTEM_FONTS, font_mono=SYSTEM_MONO_FONTS),
        css=CSS,
        footer_links=["api"],
        run_history=False,  # questions about one's health are not kept in the browser
        enable_monitoring=False,
        ssr_mode=False,
    )


if __name__ == "__main__":
    main()
