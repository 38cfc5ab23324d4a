"""What every command shares: common options, settings from arguments, the one embedder seam, messages."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2
PROJECT_ROOT = Path(__file__).resolve().parent.parent.parent
DEFAULT_QUESTIONS = (PROJECT_ROOT.parent / "shared" / "eval" / "dev.jsonl", PROJECT_ROOT / "tests" / "fixtures" / "questions.jsonl")


class CliError(Exception):
    """A one-line message for the user and the exit status that goes with it."""

    def __init__(self, message: str, code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.code = code


def common_options() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--corpus", type=Path, metavar="DIR", help="folder of .txt/.md documents (default: corpus/)")
    common.add_argument("--index", type=Path, metavar="DIR", help="folder for the index (default: index/)")
    common.add_argument("--backend", metavar="NAME", help="where chunks live: faiss (default) or milvus "
                        "(ASSISTANT_MILVUS_URI, docs/scale-out.md); eval takes a list, e.g. faiss,milvus")
    common.add_argument("-q", "--quiet", action="store_true", help="print no progress or rebuild messages")
    common.add_argument("-v", "--verbose", action="store_true", help="log what happens on stderr")
    return common


def settings_from(args: argparse.Namespace, backend: str | None = None, **extra):
    """`Settings` from the environment, with the command line's choices on top; invalid ones exit 2."""
    from pydantic import ValidationError

    from assistant.settings import Settings

    overrides = {}
    if args.corpus is not None:
        overrides["corpus_dir"] = args.corpus
    if args.index is not None:
        overrides["index_dir"] = args.index
    backend = backend or getattr(args, "backend", None)
    if backend is not None:
        overrides["backend"] = backend
    overrides.update(extra)  # what the command decided last
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg'].removeprefix('Value error, ')}"
                             for e in exc.errors())
        raise CliError(f"invalid settings: {problems}", EXIT_BAD_INPUT) from exc


def require_corpus(settings) -> None:
    if not settings.corpus_dir.is_dir():
        raise CliError(f"corpus folder {settings.corpus_dir} does not exist; pass --corpus DIR or set ASSISTANT_CORPUS_DIR")


def make_embedder(settings):
    """The embedder every command uses: the one seam tests replace."""
    from assistant.embedding import embedder_for

    try:
        return embedder_for(settings)
    except ImportError as exc:
        raise CliError(f"{exc}; run the command with the project's environment "
                       "(`.venv/bin/python -m assistant …`, or `source .venv/bin/activate` first)") from exc


def load_assistant(args: argparse.Namespace, backend: str | None = None, **overrides):
    """The assistant for the command line's settings, its store brought in line with the corpus."""
    from assistant import Assistant
    from assistant.stores import StoreError, StoreInvalid
    from assistant.threads import limit_numeric_pools

    settings = settings_from(args, backend, **{k: v for k, v in overrides.items() if v is not None})
    if settings.sync_on_load:
        require_corpus(settings)
    try:
        bot = Assistant.load(settings, embedder=make_embedder(settings), on_rebuild=reporter(args), show_progress=progress(args))
    except (StoreError, StoreInvalid) as exc:
        raise CliError(str(exc)) from exc
    limit_numeric_pools()  # questions from here on, one at a time (see assistant.threads)
    return bot


def reporter(args: argparse.Namespace) -> Callable[[str], None]:
    """Rebuild and update messages go to stderr unless --quiet."""
    if args.quiet:
        return lambda message: None
    return lambda message: print(message, file=sys.stderr, flush=True)


def progress(args: argparse.Namespace) -> bool:
    return not args.quiet and sys.stderr.isatty()


def plural(count: int, word: str, many: str | None = None) -> str:
    """ "1 file", "2 files".

    >>> plural(1, "file"), plural(3, "file"), plural(2, "query", "queries")
    ('1 file', '3 files', '2 queries')
    """
    return f"{count:,} {word if count == 1 else many or word + 's'}"


def names(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def terminal(text: str) -> str:
    """Text from a document or a user, safe to print: control characters shown, never acted on."""
    from assistant.escaping import escape_terminal

    return escape_terminal(text)


def one_line(text: str) -> str:
    """Like `terminal`, for a field that must stay on its line (a file or section name)."""
    return terminal(text).replace("\n", "\\n").replace("\t", "\\t")
