"""`ask`: answer a question, a batch of questions from stdin, or questions typed at a prompt."""

from __future__ import annotations

import argparse
import sys
from typing import Iterator

from assistant.answer import DISCLAIMER
from assistant.cli.common import EXIT_BAD_INPUT, EXIT_OK, CliError, load_assistant, one_line, terminal
from assistant.wire import answer_json, error_json


def add_parser(sub, common: argparse.ArgumentParser) -> None:
    ask = sub.add_parser(
        "ask", parents=[common], help="answer a question (or one question per line from stdin)",
        description="Answer QUESTION with quotes from the corpus. Without QUESTION, read one question per line "
        "from stdin and answer each on its own (with --conversation, each line is read as a follow-up of the ones "
        "before it); on a terminal, prompt for questions, as a conversation.",
    )
    ask.add_argument("question", nargs="?", help="the question; omit it to read questions from stdin")
    ask.add_argument("--json", action="store_true", help="print one JSON object per answer")
    ask.add_argument("--source", action="append", metavar="NAME", default=None,
                     help="answer from this document only, named as in the citations (repeat for several)")
    ask.add_argument("--conversation", action="store_true",
                     help="stdin: read each line as a follow-up of the lines before it")


def render_text(answer) -> str:
    """An answer as plain text: the quotes with their markers, the sources, the disclaimer.

    Quotes, file and section names come from documents: control characters are shown, not sent to the terminal.
    """
    lines = [terminal(answer.answer), ""]
    if answer.citations:
        lines.append("Sources:")
        for c in answer.citations:
            page = f"page {c.page}, " if c.page is not None else ""
            lines.append(f"  [{c.n}] {one_line(c.source)}, {page}section \"{one_line(c.section)}\", characters {c.start}-{c.end}")
        lines.append("")
    lines.append(answer.disclaimer)
    return "\n".join(lines)


def _stdin_lines() -> Iterator[tuple[int, str | None]]:
    """(line number, text or None when the line is not valid UTF-8)."""
    for number, raw in enumerate(sys.stdin.buffer, start=1):
        try:
            yield number, raw.decode("utf-8").rstrip("\r\n")
        except UnicodeDecodeError:
            yield number, None


def _prompted_lines() -> Iterator[tuple[int, str | None]]:
    print("Type a question and press Enter (an empty line or Ctrl-D ends).", file=sys.stderr)
    number = 0
    while True:
        try:
            line = input("question> ")
        except EOFError:
            print(file=sys.stderr)
            return
        if not line.strip():
            return
        number += 1
        yield number, line


def run(args: argparse.Namespace) -> int:
    from assistant.assistant import InvalidQuestion, validate_question
    from assistant.settings import Settings

    if args.question is not None:  # reject bad input before paying for the model
        try:
            validate_question(args.question, max_chars=Settings().max_question_chars)
        except InvalidQuestion as exc:
            raise CliError(str(exc), EXIT_BAD_INPUT) from exc
    interactive = args.question is None and sys.stdin.isatty()
    bot = load_assistant(args)
    if args.question is not None:
        try:
            answer = bot.ask(args.question, sources=args.source)
        except InvalidQuestion as exc:  # a --source that is not indexed
            raise CliError(str(exc), EXIT_BAD_INPUT) from exc
        print(answer_json(answer) if args.json else render_text(answer))
        return EXIT_OK

    conversation = args.conversation or interactive
    status = EXIT_OK
    history: list[str] = []
    for number, line in _prompted_lines() if interactive else _stdin_lines():
        if line is not None and not line.strip():
            continue
        try:
            if line is None:
                raise InvalidQuestion("the line is not valid UTF-8 text")
            answer = bot.ask(line, history=history if conversation else None, sources=args.source)
        except InvalidQuestion as exc:
            status = EXIT_BAD_INPUT
            message = f"line {number}: {exc}"
            if args.json:
                print(error_json(message), flush=True)
            print(f"error: {message}\n{DISCLAIMER}", file=sys.stderr, flush=True)
            continue
        history.append(line)
        if args.json:
            print(answer_json(answer), flush=True)
        elif interactive:
            print(render_text(answer) + "\n", flush=True)
        else:
            print(f"Q{number}: {one_line(line)}\n\n{render_text(answer)}\n", flush=True)
    return status
