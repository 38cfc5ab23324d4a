"""Command line: `python -m assistant ask|index|verify|eval|bench` (installed as `cited-assistant`).

A thin parser; each command group lives in its own module (`ask`, `store`, `evaluate`, `bench`)
with an `add_parser` and a `run`. Only the CLI (and app.py) print. Library errors become a
one-line message and an exit status — 2 for input the assistant rejects, 1 for anything else —
never a traceback, and every message carries the disclaimer.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Sequence

from assistant.answer import DISCLAIMER
from assistant.cli import ask, bench, evaluate, store
from assistant.cli.common import EXIT_FAILED, EXIT_OK, CliError, common_options

COMMANDS = {"ask": ask, "index": store, "verify": store, "eval": evaluate, "bench": bench}

DESCRIPTION = f"""\
Ask questions about the documents in a corpus folder and get answers quoted word for word
from them, each quote with its source file, section and character offsets.

{DISCLAIMER}
"""

EPILOG = """\
examples:
  python -m assistant ask "Which magnesium form is best for sleep?"
  python -m assistant ask --json "What foods are high in magnesium?"
  printf 'What is whitlockite?\\nIs it harmful?\\n' | python -m assistant ask --conversation --json
  python -m assistant index --corpus my-docs/ --index my-index/
  python -m assistant verify --backend milvus
  python -m assistant eval
  python -m assistant eval --backend faiss,milvus
  ASSISTANT_BACKEND=milvus python -m assistant ask "Which foods contain magnesium?"
  python -m assistant eval --beir ../shared/eval/scifact --split test
  python -m assistant bench --only latency,cold,indexing

exit status: 0 answered (also "not covered"), 1 failure (or eval under its bar), 2 rejected input.
Every setting can also be given as an environment variable ASSISTANT_<NAME>, e.g. ASSISTANT_CORPUS_DIR.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m assistant", description=DESCRIPTION, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    common = common_options()
    ask.add_parser(sub, common)
    store.add_parsers(sub, common)
    evaluate.add_parser(sub, common)
    bench.add_parser(sub, common)
    return parser


def _configure_logging(args: argparse.Namespace) -> None:
    level = logging.INFO if getattr(args, "verbose", False) else logging.ERROR if getattr(args, "quiet", False) else logging.WARNING
    logging.basicConfig(level=level, format="%(message)s", stream=sys.stderr)
    for noisy in ("faiss", "faiss.loader", "bm25s", "sentence_transformers", "transformers", "httpx"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))


def main(argv: Sequence[str] | None = None) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    args = build_parser().parse_args(argv)
    _configure_logging(args)
    try:
        return COMMANDS[args.command].run(args)
    except CliError as exc:
        print(f"error: {exc}\n{DISCLAIMER}", file=sys.stderr)
        return exc.code
    except BrokenPipeError:  # the reader went away (`| head`): nothing left to tell it
        sys.stderr.close()
        return EXIT_OK
    except KeyboardInterrupt:
        print(f"interrupted\n{DISCLAIMER}", file=sys.stderr)
        return 130
    except Exception as exc:  # the user gets a message, not a traceback; -v logs the details
        logging.getLogger(__name__).debug("unexpected error", exc_info=True)
        print(f"error: {type(exc).__name__}: {exc}\n{DISCLAIMER}", file=sys.stderr)
        return EXIT_FAILED
