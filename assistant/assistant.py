"""`Assistant`: the Python API that the CLI and the UI call.

Example:
    >>> from assistant import Assistant  # doctest: +SKIP
    >>> bot = Assistant.load()  # doctest: +SKIP
    >>> first = bot.ask("Which magnesium form is best for sleep?")  # doctest: +SKIP
    >>> bot.ask("How bioavailable is it?", history=[first.question]).citations[0].quote  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import threading
import unicodedata
from collections import OrderedDict
from dataclasses import dataclass
from typing import AbstractSet, Any, Callable, Sequence

import numpy as np

from assistant.answer import (DISCLAIMER, SMALL_TALK_REPLY, cite, compose_answer, passages_of, select_passages,
                              select_quotes)
from assistant.batching import BatchingEncoder
from assistant.conversation import contextualize, join_turns, small_talk, user_turns
from assistant.embedding import Embedder, embedder_for
from assistant.encoders.pipeline import TokenVectors
from assistant.features import (ALIGNMENT_PASSAGES, CANDIDATE_FEATURES, QUESTION_FEATURES, RESIDUAL_PASSAGES,
                                alignment_features, answerability_features, candidate_features, has_content,
                                residual_names)
from assistant.indexing import open_synced
from assistant.meta_questions import answer_about_the_text, topic_asked
from assistant.lexical import tokenize
from assistant.models import Answer, Chunk, DocumentSummary
from assistant.query import english_words, rewrite
from assistant.retrieval import Hit, Retriever
from assistant.safety import SafetyModel, load_safety_model, safety_notice
from assistant.scope import AnswerModel, ScopePolicy, coverage, load_answer_model, names_known, sigmoid
from assistant.settings import Settings
from assistant.stores import ChunkReader, ChunkStore, open_store
from assistant.uploads import add_upload, remove_upload

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


class UnknownSource(InvalidQuestion):
    """A question restricted to a document that is not indexed; the message names the documents that are."""


def validate_sources(sources: Sequence[str] | None, indexed: AbstractSet[str]) -> frozenset[str] | None:
    """The documents a question is restricted to (None: all), or `UnknownSource` naming the unknown one."""
    if sources is None:
        return None
    if isinstance(sources, str):
        sources = [sources]
    chosen = frozenset(sources)
    if not chosen:
        raise UnknownSource("no document was named: name at least one, or leave the restriction out to search them all")
    unknown = sorted(chosen - indexed)
    if unknown:
        known = sorted(indexed)
        listed = ", ".join(known[:10]) + (f" and {len(known) - 10} more" if len(known) > 10 else "")
        raise UnknownSource(f"no indexed document is named {unknown[0]!r}; the documents are: {listed or 'none'}")
    return chosen


@dataclass
class Judgement:
    """What the assistant made of a question: the search, the candidates in rank order, the decisions.

    `Assistant.inspect` returns it; `ask` turns it into an `Answer`; the training of the answer
    model reads its features.
    """

    question: str
    search: str  # the query searched for: with the earlier turn for a follow-up, typos fixed, abbreviations spelt out
    own: str  # the question's own words, typos fixed, abbreviations spelt out: what scope is judged on
    vector: np.ndarray  # the question's own embedding (the safety classifiers read it)
    hits: list[Hit]  # candidates, best first
    probabilities: np.ndarray  # each candidate's probability of answering (hand-set policy: its fused score)
    candidate_features: np.ndarray
    question_features: np.ndarray
    answerable: float  # probability that the corpus answers it (hand-set policy: 1.0 or 0.0)
    covered: bool
    kind: str | None  # "emergency", "personal" or None
    notice: str | None
    tokens: TokenVectors | None = None  # the word pieces of `aligned` and their contextual vectors (learned policy)
    aligned: str = ""  # the text whose word pieces are aligned with the passages': the search, or a follow-up itself


def _reads_features(model: AnswerModel, embedder: Embedder) -> bool:
    """Whether `model` reads the features this version computes, with an encoder that gives them all."""
    expected = QUESTION_FEATURES + residual_names(embedder.dimension)
    if model.rank.features != CANDIDATE_FEATURES or model.answerable.features != expected:
        logger.warning("the answer model was trained on other features than this version computes: "
                       "using the hand-set scope policy (retrain: python -m assistant eval --train)")
        return False
    if not hasattr(embedder, "encode_tokens"):
        logger.warning("encoder %s gives no token vectors: using the hand-set scope policy", embedder.name)
        return False
    return True


class PassageTokens:
    """The token vectors of passages, encoded when first needed and kept (thread-safe, bounded).

    The answerability model compares a question's word pieces with those of its top passages. The same
    passages come back question after question, so each is encoded once; the bound (`size` passages,
    ~60 KB each) keeps a large corpus from holding them all. Keyed on the passage's embedding text, so a
    changed document can never be served another text's vectors.
    """

    def __init__(self, embedder: Embedder, size: int = 2048) -> None:
        self.embedder = embedder
        self.size = size
        self._kept: OrderedDict[str, TokenVectors] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, chunks: Sequence[Chunk]) -> list[TokenVectors]:
        texts = [c.embedding_text() for c in chunks]
        with self._lock:
            found = {t: self._kept[t] for t in texts if t in self._kept}
            for t in found:
                self._kept.move_to_end(t)
        missing = list(dict.fromkeys(t for t in texts if t not in found))
        if missing:
            _, pieces = self.embedder.encode_tokens(missing)
            with self._lock:
                for t, p in zip(missing, pieces):
                    found[t] = self._kept[t] = p
                while len(self._kept) > self.size:
                    self._kept.popitem(last=False)
        return [found[t] for t in texts]


#: How many of a question's first hits name the documents a question about the text itself may be answered from.
ANSWER_ABOUT_THE_TEXT_HITS = 5


class Assistant:
    """Answers questions with quotes from the corpus; load once, ask many times (thread-safe)."""

    def __init__(
        self,
        *,
        settings: Settings,
        store: ChunkStore,
        embedder: Embedder,
        answer_model: AnswerModel | None = None,
        safety_model: SafetyModel | None = None,
    ) -> None:
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
        self.answer_model = answer_model
        self.safety_model = safety_model
        # Passages are encoded straight away, not gathered with questions: a cache miss is rare, and the batcher
        # counts questions.
        self.passage_tokens = PassageTokens(embedder.encoder if isinstance(embedder, BatchingEncoder) else embedder)

    @classmethod
    def load(
        cls,
        settings: Settings | None = None,
        *,
        embedder: Embedder | None = None,
        on_rebuild: Callable[[str], None] | None = None,
        show_progress: bool = False,
    ) -> "Assistant":
        """Load the model and the store, bringing the store in line with the corpus first.

        With `settings.sync_on_load` off (a serving machine that may not hold the corpus), the
        store is opened as it is. `on_rebuild` is told why the store is rebuilt or updated.
        """
        settings = settings or Settings()
        embedder = embedder or embedder_for(settings)
        if settings.sync_on_load:
            store, _ = open_synced(settings, embedder, on_change=on_rebuild, show_progress=show_progress)
        else:
            store = open_store(settings, model=embedder.name, dimension=embedder.dimension)
        answer_model = load_answer_model(settings.answer_model, embedder.name) if settings.learned else None
        if answer_model is not None and not _reads_features(answer_model, embedder):
            answer_model = None
        if settings.encode_batch:  # after the sync: indexing has nothing to gather
            embedder = BatchingEncoder(embedder, max_wait=settings.encode_batch_wait_ms / 1000.0,
                                       max_batch=settings.encode_batch_size)
        return cls(
            settings=settings, store=store, embedder=embedder,
            answer_model=answer_model,
            safety_model=load_safety_model(settings.safety_model, embedder.name) if settings.learned else None,
        )

    def inspect(self, question: str, history: Sequence[Any] | None = None, sources: Sequence[str] | None = None) -> Judgement:
        """Everything `ask` decides about `question`, before it is written up as an answer.

        Raises `InvalidQuestion` for empty, oversized or control-character input, `UnknownSource`
        when `sources` names a document that is not indexed.
        """
        text = validate_question(question, max_chars=self.settings.max_question_chars)
        query, previous = contextualize(text, history)
        topic = topic_asked(text)
        if topic is not None:  # "Does the article mention vitamin D?" is searched and judged as "vitamin D"
            query, previous = topic, None
        follows = previous is not None and query != text
        view = self.store.view()  # one state of the store for the whole question
        among = None if sources is None else validate_sources(sources, self.store.sources().keys())  # Milvus: a scan
        vocabulary = view.vocabulary()
        rewritten = rewrite(query, vocabulary)
        search = rewritten.text
        # Scope is judged on the question's own words (the query is the question itself, unless it leans on the turn
        # before, whose words it borrows), with abbreviations replaced by their long forms.
        own = rewritten.scope
        # Word alignment reads the search's word pieces, but those of a follow-up with content words of its own:
        # "what about vitamin K1?" after a question on K2 is covered if K1 is, not because the earlier turn is.
        aligned = text if follows and has_content(text) else search
        texts = [search] if search == text else [search, text]
        vectors, tokens = self._encode(texts, texts.index(aligned))
        kind, notice = safety_notice(text, vectors[-1], self.safety_model)
        judgement = self._judge(view, text, search, own, vectors[0], vectors[-1], kind, notice, among, tokens, aligned)
        if topic is not None and judgement.hits:
            # "Does it mention potassium?" asks about words: covered when the documents use every one the topic names.
            names = tokenize(own)
            judgement.covered = bool(names) and all(df > 0 for df in view.document_frequencies(names).values())
        unsure = not judgement.covered or (self.answer_model is not None
                                           and judgement.answerable < self.answer_model.emergency_threshold)
        if unsure and previous is not None and not follows:
            # Not clearly covered alone, e.g. "Which organs improved?" after a question on a rat study: read it
            # with the turn before too, and take that reading if it is more surely answered and the passage it
            # finds is still related to the question itself.
            joined = rewrite(join_turns(previous, text), vocabulary).text
            joined_vectors, joined_tokens = self._encode([joined])
            retry = self._judge(view, text, joined, joined, joined_vectors[0], vectors[-1], kind, notice, among,
                                joined_tokens, joined)
            better = not judgement.covered or retry.answerable > judgement.answerable
            if retry.covered and better and self._related(view, vectors[-1], retry.hits[0]):
                return retry
        return judgement

    def _encode(self, texts: list[str], aligned: int = 0) -> tuple[np.ndarray, TokenVectors | None]:
        """The rows of `texts`, and the token vectors of `texts[aligned]` when the learned policy reads them."""
        if self.answer_model is None:
            return self.embedder.encode(texts), None
        vectors, tokens = self.embedder.encode_tokens(texts)
        return vectors, tokens[aligned]

    def _judge(
        self, view: ChunkReader, text: str, search: str, own: str, vector: np.ndarray, own_vector: np.ndarray,
        kind: str | None, notice: str | None, sources: frozenset[str] | None = None,
        pieces: TokenVectors | None = None, aligned: str = "",
    ) -> Judgement:
        hits = self.retriever.search(search, k=self.settings.candidates, vector=vector, reader=view, sources=sources)
        empty = np.zeros(0)
        if not hits:
            return Judgement(text, search, own, own_vector, [], empty, empty, empty, 0.0, False, kind, notice,
                             aligned=aligned)
        model = self.answer_model
        if model is None:  # the hand-set policy: covered or not, and the retrieval order
            best = max(h.dense for h in hits)
            covered_share = coverage(view, own)
            named = covered_share > 0 and names_known(view, search, english_words())  # only names rare in English
            covered = self.policy.covers(best, covered_share, named)
            scores = np.array([h.score for h in hits])
            return Judgement(text, search, own, own_vector, hits, scores, empty, empty, float(covered), covered, kind, notice,
                             aligned=aligned)
        tokens = sorted(set(tokenize(search)) | set(tokenize(own)))
        df = view.document_frequencies(tokens)
        features = candidate_features(hits, tokenize(search), df, view.count())
        logits = model.rank.logits(features)
        order = np.lexsort((np.arange(len(hits)), -logits))
        hits, features, logits = [hits[i] for i in order], features[order], logits[order]
        alignment = alignment_features(pieces, self.passage_tokens.get([h.chunk for h in hits[:ALIGNMENT_PASSAGES]]))
        facts = answerability_features(own, hits, logits, df, view.count(), english_words(), alignment, own_vector,
                                       view.vectors([h.key for h in hits[:RESIDUAL_PASSAGES]]))
        answerable = model.answerable_probability(facts)
        threshold = model.emergency_threshold if kind == "emergency" else model.threshold
        # The hand-set policy's second route (names the corpus uses count as covered) is not taken here: the
        # model reads names itself (`names_unknown`, the alignment of "Framingham" with the passage's), and on
        # the seven tuning parts the route let through 2-8 points more near-topic questions ("How many people
        # took part in the Framingham Heart Study?") while answering no more in-scope ones.
        covered = answerable >= threshold
        probabilities = sigmoid(logits)
        return Judgement(text, search, own, own_vector, hits, probabilities, features, facts, answerable,
                         covered, kind, notice, pieces, aligned)

    def ask(self, question: str, history: Sequence[Any] | None = None, sources: Sequence[str] | None = None) -> Answer:
        """Answer `question` (with earlier turns in `history`) from the corpus alone, or from `sources` alone.

        `sources` names documents as `Citation.source` does (`store.sources()`). Raises
        `InvalidQuestion` for empty, oversized or control-character input, and its subclass
        `UnknownSource` for a document that is not indexed.
        """
        text = validate_question(question, max_chars=self.settings.max_question_chars)
        if small_talk(text):  # "hi", "thanks!", "what can you do?": nothing to search for
            if sources is not None:
                validate_sources(sources, self.store.sources().keys())
            return compose_answer(text, [], reply=SMALL_TALK_REPLY)
        judgement = self.inspect(question, history, sources)
        passages = None
        if judgement.kind is None and judgement.hits:
            ranked = list(dict.fromkeys(h.chunk.source for h in judgement.hits[:ANSWER_ABOUT_THE_TEXT_HITS]))
            passages = answer_about_the_text(self.store, judgement.question, ranked, follows=bool(user_turns(history)),
                                             sources=sources, searched=judgement.search)
        if passages is None:
            passages = self._passages(judgement) if judgement.covered else []
        return compose_answer(judgement.question, cite(passages, self.store.view()), notice=judgement.notice,
                              lead_with_disclaimer=judgement.kind == "personal")

    def _passages(self, judgement: Judgement) -> list:
        view = self.store.view()
        model = self.answer_model
        if model is None:
            return passages_of(select_quotes(judgement.hits, top_k=self.settings.top_k, group=view.group))
        ranked = list(zip(judgement.hits, judgement.probabilities.tolist()))
        return select_passages(ranked, view, relative=model.relative, absolute=model.absolute, extend=model.extend,
                               max_quotes=self.settings.top_k)

    def _related(self, view: ChunkReader, vector: np.ndarray, hit: Hit) -> bool:
        """Whether a passage found with the help of an earlier turn still relates to the new question."""
        passage = view.vectors([hit.key])[0]
        return float(passage @ vector) >= self.settings.follow_up_floor

    def add_document(self, name: str, data: bytes) -> DocumentSummary:
        """Keep an uploaded file in the uploads folder and index it at once, as `uploads/<name>`.

        Only this document is embedded. Raises `assistant.uploads.UploadRefused` (a ValueError)
        with a one-line reason: a bad name, too large, content not of its type, unreadable.
        """
        return add_upload(self.store, self.settings, self.embedder, name, data)

    def remove_document(self, name: str) -> int:
        """Remove an uploaded document (`name` or `uploads/<name>`); corpus files cannot be removed."""
        return remove_upload(self.store, self.settings, name)

    def close(self) -> None:
        """Release the store (a Milvus Lite file serves one process at a time) and stop the encode batcher."""
        self.store.close()
        if isinstance(self.embedder, BatchingEncoder):
            self.embedder.close()
