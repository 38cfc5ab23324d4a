"""`Assistant`: the Python API that the CLI and the UI call.

Example:
    >>> from assistant import Assistant  # doctest: +SKIP
    >>> bot = Assistant.load()  # doctest: +SKIP
    >>> first = bot.ask("Which magnesium form is best for sleep?")  # doctest: +SKIP
    >>> bot.ask("How bioavailable is it?", history=[first.question]).citations[0].quote  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import unicodedata
from typing import Any, Callable, Sequence

import numpy as np

from assistant.answer import DISCLAIMER, ScopePolicy, cite, compose_answer, select_quotes
from assistant.conversation import contextualize, join_turns
from assistant.embedding import Embedder, get_embedder
from assistant.models import Answer
from assistant.retrieval import Hit, Retriever
from assistant.safety import safety_notice
from assistant.settings import Settings
from assistant.stores import ChunkStore, open_store

logger = logging.getLogger(__name__)

_ALLOWED_CONTROLS = {"\n", "\t", "\r"}


class InvalidQuestion(ValueError):
    """A question the assistant will not process; the message says why and what to do."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.disclaimer = DISCLAIMER


def validate_question(question: Any, *, max_chars: int) -> str:
    """The question stripped of surrounding blanks, or `InvalidQuestion`."""
    if not isinstance(question, str):
        raise InvalidQuestion(f"the question must be text, got {type(question).__name__}")
    text = question.strip()
    if not text:
        raise InvalidQuestion("the question is empty: type a question about the document")
    if len(text) > max_chars:
        raise InvalidQuestion(
            f"the question is {len(text):,} characters long; the limit is {max_chars:,} (ASSISTANT_MAX_QUESTION_CHARS)"
        )
    bad = next((c for c in text if unicodedata.category(c) in ("Cc", "Cs") and c not in _ALLOWED_CONTROLS), None)
    if bad is not None:
        raise InvalidQuestion(f"the question contains a control character (U+{ord(bad):04X}); remove it and ask again")
    return text


class Assistant:
    """Answers questions with quotes from the corpus; load once, ask many times (thread-safe)."""

    def __init__(self, *, settings: Settings, store: ChunkStore, embedder: Embedder) -> None:
        self.settings = settings
        self.store = store
        self.embedder = embedder
        self.retriever = Retriever(
            store,
            embedder,
            fusion=settings.fusion,
            alpha=settings.alpha,
            rrf_k=settings.rrf_k,
            neighbour_weight=settings.neighbour_weight,
        )
        self.policy = ScopePolicy(threshold=settings.scope_threshold, coverage_weight=settings.coverage_weight)

    @classmethod
    def load(
        cls,
        settings: Settings | None = None,
        *,
        embedder: Embedder | None = None,
        on_rebuild: Callable[[str], None] | None = None,
        show_progress: bool = False,
    ) -> "Assistant":
        """Load the model and the store, bringing the index up to date first if the corpus or settings changed."""
        settings = settings or Settings()
        embedder = embedder or get_embedder(settings.model, device=settings.device)
        store = open_store(settings, embedder, on_rebuild=on_rebuild, show_progress=show_progress)
        return cls(settings=settings, store=store, embedder=embedder)

    def _retrieve(self, query: str, own_words: str, vector: np.ndarray | None = None) -> tuple[list[Hit], bool]:
        """Hits for `query`, and whether they cover the question.

        Coverage is judged on `own_words`, the user's latest turn: an earlier turn may supply
        the subject of a follow-up (its names count), but not the words of a new, unrelated
        question, which must share at least some vocabulary with the corpus.
        """
        hits = self.retriever.search(query, k=self.settings.candidates, vector=vector)
        if not hits:
            return [], False
        best = max(h.dense for h in hits)
        coverage = self.store.coverage(own_words)
        return hits, self.policy.covers(best, coverage, coverage > 0 and self.store.names_known(query))

    def ask(self, question: str, history: Sequence[Any] | None = None) -> Answer:
        """Answer `question` (with earlier turns in `history`) from the corpus alone.

        Raises `InvalidQuestion` for empty, oversized or control-character input.
        """
        text = validate_question(question, max_chars=self.settings.max_question_chars)
        kind, notice = safety_notice(text)
        query, previous = contextualize(text, history)
        vector = self.retriever.encode(query)
        hits, covered = self._retrieve(query, text, vector)
        if not covered and previous is not None and query == text:
            # Not covered alone, e.g. "Which organs improved?": read it with the turn before,
            # provided the passage that reading finds is still related to the question itself.
            joined_hits, joined_covered = self._retrieve(join_turns(previous, text), text)
            if joined_covered and self._related(vector, joined_hits[0]):
                hits, covered = joined_hits, True
        quotes = select_quotes(hits, top_k=self.settings.top_k, group=self.store.group) if covered else []
        return compose_answer(text, cite(quotes), notice=notice, lead_with_disclaimer=kind == "personal")

    def _related(self, vector: np.ndarray, hit: Hit) -> bool:
        """Whether a passage found with the help of an earlier turn still relates to the new question."""
        passage = self.store.vectors([hit.key])[0]
        return float(passage @ vector) >= self.settings.follow_up_floor
