"""The JSON that leaves the program: one answer, or one error; `ask --json` prints it, the HTTP API returns it.

One function per shape, so the CLI and `POST /v1/answers` can never drift apart: a client that
parses one parses the other.

Example:
    >>> error_json("the question is empty")[:30]
    '{"error": "the question is emp'
"""

from __future__ import annotations

import json

from assistant.answer import DISCLAIMER
from assistant.models import Answer


def answer_json(answer: Answer) -> str:
    """`answer` as one line of JSON (pydantic's own serialisation: field order as declared)."""
    return answer.model_dump_json()


def error_payload(message: str) -> dict[str, str]:
    """An error as a JSON object: the message and the disclaimer every reply carries."""
    return {"error": message, "disclaimer": DISCLAIMER}


def error_json(message: str) -> str:
    """`error_payload(message)` as one line of JSON, non-ASCII kept as is."""
    return json.dumps(error_payload(message), ensure_ascii=False)
