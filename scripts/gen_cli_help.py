"""Regenerate docs/cli.md from the CLI's own --help texts (tests/test_docs.py checks it is current).

Run: python scripts/gen_cli_help.py
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from assistant.cli import build_parser  # noqa: E402

TARGET = ROOT / "docs" / "cli.md"


def render_help() -> str:
    os.environ["COLUMNS"] = "100"  # argparse wraps to the terminal: fix it so the file is stable
    parser = build_parser()
    parts = ["# Command-line reference", "", "Generated from `--help` by `python scripts/gen_cli_help.py`; do not edit.", ""]
    parts += ["## python -m assistant", "", "```text", parser.format_help().rstrip(), "```", ""]
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, sub in subparsers.choices.items():
        parts += [f"## python -m assistant {name}", "", "```text", sub.format_help().rstrip(), "```", ""]
    return "\n".join(parts)


if __name__ == "__main__":
    TARGET.parent.mkdir(exist_ok=True)
    TARGET.write_text(render_help(), encoding="utf-8")
    print(f"wrote {TARGET.relative_to(ROOT)}")
