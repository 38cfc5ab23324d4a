"""A grounded, cited question-answering assistant for health documents.

Example:
    >>> from assistant import Assistant  # doctest: +SKIP
    >>> answer = Assistant.load().ask("What foods are high in magnesium?")  # doctest: +SKIP
    >>> print(answer.citations[0].quote)  # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING

__version__ = "0.1.0"

if TYPE_CHECKING:
    from assistant.assistant import Assistant

__all__ = ["Assistant", "__version__"]


def __getattr__(name: str):
    # Lazy, so that `python -m assistant --help` does not import the whole pipeline.
    if name == "Assistant":
        from assistant.assistant import Assistant

        return Assistant
    raise AttributeError(f"module 'assistant' has no attribute {name!r}")
