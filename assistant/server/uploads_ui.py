"""The documents panel's logic: list the documents, add an uploaded file, remove one, choose which answer.

`app.py` only wires Gradio components to a `Library`; everything the panel shows is built here
(Markdown status lines with the disclaimer, an HTML list), so it is tested without a browser.
The panel works on either backend: it calls `Assistant.add_document`/`remove_document` and reads
the store through `sources()`, `document_text()` and `geometry()`.

An upload arrives as the temporary copy Gradio made of it (named as the user's file); the copy is
read, handed to `add_document`, and deleted whatever the outcome, so no document lingers in
Gradio's cache (its `delete_cache` sweep is the second line).

Example:
    >>> library = Library(bot, documents, settings)  # doctest: +SKIP
    >>> library.add("/tmp/gradio/ab12/leaflet.pdf")  # doctest: +SKIP
    'Ready: **leaflet.pdf** — 12 passages (PDF, 3 pages). …'
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assistant.corpus import SUFFIXES, UPLOADS, source_path
from assistant.models import Document
from assistant.render import escape_attribute, escape_html_line, escape_markdown, with_disclaimer
from assistant.server.binding import is_loopback
from assistant.uploads import UploadRefused

if TYPE_CHECKING:
    from assistant.assistant import Assistant
    from assistant.server.auth import Credentials
    from assistant.settings import Settings

logger = logging.getLogger(__name__)

#: What the panel calls each kind of document.
KIND_NAMES = {"text": "text", "markdown": "Markdown", "pdf": "PDF", "html": "web page"}
#: The suffixes the upload accepts (the corpus' own): Gradio checks them before anything is stored.
UPLOAD_TYPES = sorted(SUFFIXES)
#: What the panel says while `add_document` reads and indexes a file.
WORKING = "Reading and indexing **{name}**… (other questions keep being answered)"


def uploads_enabled(settings: "Settings", host: str, credentials: "Credentials") -> bool:
    """`ASSISTANT_UPLOADS_ENABLED`, or by default: on loopback or with sign-in, not when exposed anonymously.

    An anonymous public server that takes files lets anyone fill its disk and index; with sign-in,
    every upload is someone's, bounded in size and rate like their questions.
    """
    if settings.uploads_enabled is not None:
        return settings.uploads_enabled
    return is_loopback(host) or credentials.required


@dataclass(frozen=True)
class Entry:
    """One document of the index, as the panel lists it."""

    source: str
    kind: str
    pages: int | None
    uploaded: bool


def stored_documents(store: Any, *, uploads: bool = True) -> list[Document]:
    """The documents as the store holds them (text as indexed, page geometry), sorted by source.

    What the app shows and renders from: the index was synced when the assistant loaded, so reading
    the files again (a PDF's reader can take seconds a page) would only repeat that work.
    """
    documents = []
    for source, sha256 in sorted(store.sources().items()):
        text = store.document_text(source)
        if text is None or (not uploads and source.startswith(UPLOADS + "/")):
            continue
        geometry = store.geometry(source)
        documents.append(Document(source=source, text=text, sha256=sha256,
                                  kind=SUFFIXES.get(Path(source).suffix.lower(), "text"),
                                  pages=len(geometry.page_sizes) if geometry is not None else None, geometry=geometry))
    return documents


class DocumentTexts(dict):
    """The app's `source -> source_text` map, falling back to the text the store keeps for a document.

    A serving machine may hold no corpus folder (Milvus, `SYNC_ON_LOAD=false`): quotes, their table
    headers and passages then come from the stored text, which `verify` checks against the files where
    they are, so such a machine shows the same answer as the one that indexed.
    """

    def __init__(self, items: dict[str, str], store: Any) -> None:
        super().__init__(items)
        self._store = store

    def _fetch(self, source: object) -> str | None:
        if dict.__contains__(self, source):
            return dict.__getitem__(self, source)
        text = self._store.document_text(source) if self._store is not None and isinstance(source, str) else None
        if text is not None:
            self[source] = text
        return text

    def __missing__(self, source: str) -> str:
        text = self._fetch(source)
        if text is None:
            raise KeyError(source)
        return text

    def __contains__(self, source: object) -> bool:
        return self._fetch(source) is not None

    def get(self, source: str, default: str | None = None) -> str | None:  # type: ignore[override]
        text = self._fetch(source)
        return default if text is None else text


class Library:
    """The indexed documents as the UI shows them, and the changes it can make to them.

    `documents` and `texts` are the app's own list and map (what the documents panel and the
    citations' passages are drawn from): uploads are added to and removed from them in place, so
    every session sees the new document at its next answer.
    """

    def __init__(self, bot: "Assistant", documents: list[Document], settings: "Settings", *, enabled: bool = True) -> None:
        self.bot = bot
        self.documents = documents
        self.texts: dict[str, str] = DocumentTexts({d.source: d.text for d in documents}, getattr(bot, "store", None))
        self.settings = settings
        self.enabled = enabled
        self.lock = threading.Lock()  # one change to the lists at a time

    # --- reading -------------------------------------------------------------------------------

    def entries(self) -> list[Entry]:
        """Every indexed document, sorted by name, with its kind and (PDFs) page count."""
        known = {d.source: d for d in self.documents}
        store = getattr(self.bot, "store", None)  # a stand-in assistant (tests) may have none: the documents then
        listed = []
        for source in sorted(store.sources() if store is not None else known):
            doc = known.get(source)
            kind = doc.kind if doc is not None else SUFFIXES.get(Path(source).suffix.lower(), "text")
            pages = doc.pages if doc is not None else None
            if kind == "pdf" and pages is None and store is not None:
                geometry = store.geometry(source)
                pages = len(geometry.page_sizes) if geometry is not None else None
            listed.append(Entry(source, kind, pages, source.startswith(UPLOADS + "/")))
        return listed

    def choices(self) -> list[str]:
        """The documents a question can be restricted to."""
        return [e.source for e in self.entries()]

    def uploaded(self) -> list[str]:
        """The documents that can be removed: uploads only (corpus files are managed in their folder)."""
        return [e.source for e in self.entries() if e.uploaded]

    def render_list(self) -> str:
        """HTML list of the documents: name, kind, pages, and whether it was uploaded."""
        items = []
        for e in self.entries():
            detail = KIND_NAMES.get(e.kind, e.kind)
            if e.pages is not None:
                detail += f", {e.pages} page{'s' if e.pages != 1 else ''}"
            if e.uploaded:
                detail += ", uploaded"
            items.append(f'<li data-source="{escape_attribute(e.source)}" data-kind="{e.kind}">'
                         f"<strong>{escape_html_line(e.source)}</strong> <small>({detail})</small></li>")
        if not items:
            return '<div class="library"><p>No documents are indexed yet.</p></div>'
        return f'<div class="library"><p>{len(items)} document{"s" if len(items) != 1 else ""}:</p><ul>{"".join(items)}</ul></div>'

    def locate(self, source: str) -> Path | None:
        """The file behind `source` on this server (for rendering its pages), or None."""
        path = source_path(source, self.settings.corpus_dir, self.settings.uploads_folder)
        return path if path.is_file() else None

    def sources_for(self, chosen: Any) -> list[str] | None:
        """What to pass as `sources=` to `ask`: the chosen documents, or None (all) when none are chosen."""
        if not chosen:
            return None
        return [chosen] if isinstance(chosen, str) else list(chosen)

    # --- changing ------------------------------------------------------------------------------

    def add(self, upload: Any) -> str:
        """Index the file Gradio stored at `upload` (a path); the status line, with the disclaimer.

        The temporary copy is deleted afterwards, whether the document was added or refused.
        """
        if not self.enabled:
            return _refusal("this server takes no uploads (ASSISTANT_UPLOADS_ENABLED is off)")
        path = _upload_path(upload)
        if path is None:
            return _refusal("no file was received; choose a PDF, web page, Markdown or text file")
        name = path.name
        try:
            size = path.stat().st_size
            if size > self.settings.max_file_bytes:
                raise UploadRefused(f"{name!r} is {size:,} bytes, over the limit of "
                                    f"{self.settings.max_file_bytes:,} (ASSISTANT_MAX_FILE_BYTES)")
            summary = self.bot.add_document(name, path.read_bytes())
        except UploadRefused as exc:
            return _refusal(exc.reason)
        except OSError as exc:
            logger.warning("cannot read an upload: %s", exc)
            return _refusal("the uploaded file could not be read; please try again")
        except Exception:  # the user gets a line, not a trace; the log has the details
            logger.exception("adding an upload of %s failed", name)
            return _refusal("something went wrong while indexing it; please try again (the server log has the details)")
        finally:
            _discard(path)
        self._remember(Document(source=summary.source, text=self.bot.store.document_text(summary.source) or "",
                                sha256=summary.sha256, kind=summary.kind, pages=summary.pages))
        kind = KIND_NAMES.get(summary.kind, summary.kind)
        if summary.pages is not None:
            kind += f", {summary.pages} page{'s' if summary.pages != 1 else ''}"
        passages = f"{summary.chunks} passage{'s' if summary.chunks != 1 else ''}"
        return with_disclaimer([f"Ready: **{escape_markdown(summary.source)}** — {passages} ({kind}). "
                                "Ask a question, or choose it below to answer from it alone."])

    def remove(self, source: Any) -> str:
        """Remove an uploaded document; the status line, with the disclaimer."""
        if not source or not isinstance(source, str):
            return _refusal("choose an uploaded document to remove")
        try:
            self.bot.remove_document(source)
        except UploadRefused as exc:
            return _refusal(exc.reason)
        plain = source if source.startswith(UPLOADS + "/") else f"{UPLOADS}/{source}"
        with self.lock:
            self.documents[:] = [d for d in self.documents if d.source != plain]
            self.texts.pop(plain, None)
        return with_disclaimer([f"Removed **{escape_markdown(plain)}**: it is no longer searched or cited."])

    def _remember(self, document: Document) -> None:
        with self.lock:
            kept = [d for d in self.documents if d.source != document.source]
            self.documents[:] = sorted([*kept, document], key=lambda d: d.source)
            self.texts[document.source] = document.text


def _refusal(reason: str) -> str:
    return with_disclaimer([f"**Not done:** {escape_markdown(reason)}"])


def _upload_path(upload: Any) -> Path | None:
    """The path of Gradio's copy: a str path, or an object/dict with `path`/`name` (Gradio's file data)."""
    if isinstance(upload, (list, tuple)):
        upload = upload[0] if upload else None
    if isinstance(upload, dict):
        upload = upload.get("path") or upload.get("name")
    upload = getattr(upload, "path", None) or getattr(upload, "name", None) if not isinstance(upload, (str, Path)) else upload
    return Path(upload) if upload else None


def _discard(path: Path) -> None:
    """Delete Gradio's temporary copy, and its folder (Gradio makes one per upload) once empty."""
    try:
        path.unlink(missing_ok=True)
        path.parent.rmdir()
    except OSError:
        pass  # the folder holds something else, or is gone: delete_cache sweeps the rest
