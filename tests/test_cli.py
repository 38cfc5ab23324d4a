from __future__ import annotations

import io
import json
import subprocess
import sys

import pytest

import assistant.assistant as assistant_module
from assistant.answer import DISCLAIMER
from assistant.cli import main
from conftest import ROOT, FakeEmbedder


@pytest.fixture
def cli_env(monkeypatch, settings):
    monkeypatch.setattr(assistant_module, "get_embedder", lambda *a, **k: FakeEmbedder())
    monkeypatch.setenv("ASSISTANT_CORPUS_DIR", str(settings.corpus_dir))
    monkeypatch.setenv("ASSISTANT_INDEX_DIR", str(settings.index_dir))
    return settings


def run(capsys, *argv: str, stdin: bytes | None = None, monkeypatch=None):
    if stdin is not None:
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin), encoding="utf-8"))
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_help_documents_commands_and_disclaimer(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    out = capsys.readouterr().out
    assert exc.value.code == 0
    for word in ("ask", "index", "eval", "healthcare professional", "ASSISTANT_"):
        assert word in out


@pytest.mark.parametrize("question, fragment", [
    ("", "empty"),
    ("   \n\t ", "empty"),
    ("x" * 5000, "limit"),
    ("what\x00is this", "control character"),
    ("bell\x07", "control character"),
])
def test_bad_questions_exit_2_with_one_clear_message(capsys, question, fragment):
    code, out, err = run(capsys, "ask", question)
    assert code == 2 and out == ""
    assert fragment in err and DISCLAIMER in err and "Traceback" not in err


def test_ask_json_contract(capsys, cli_env):
    code, out, err = run(capsys, "ask", "--json", "Do lentils contain magnesium?")
    assert code == 0
    data = json.loads(out)
    assert set(data) >= {"question", "answer", "grounded", "citations", "disclaimer"}
    assert data["grounded"] is True and data["disclaimer"] == DISCLAIMER
    for c in data["citations"]:
        assert set(c) >= {"n", "quote", "source", "section", "start", "end", "score"}
        text = (cli_env.corpus_dir / c["source"]).read_bytes().decode("utf-8")
        assert text[c["start"] : c["end"]] == c["quote"]
    assert "building the index" in err  # first run builds, and says so on stderr


def test_ask_text_output(capsys, cli_env):
    code, out, _ = run(capsys, "ask", "Do lentils contain magnesium?")
    assert code == 0 and "[1]" in out and "Sources:" in out and out.rstrip().endswith(DISCLAIMER)


def test_stdin_batch_with_a_bad_line(capsys, cli_env, monkeypatch):
    lines = "Which magnesium form is calming?\n\xff\xfe\nWhat about its bioavailability?\n".encode("latin-1")
    code, out, err = run(capsys, "ask", "--json", stdin=lines, monkeypatch=monkeypatch)
    assert code == 2
    rows = [json.loads(line) for line in out.splitlines()]
    assert len(rows) == 3
    assert "error" in rows[1] and "UTF-8" in rows[1]["error"] and rows[1]["disclaimer"] == DISCLAIMER
    assert rows[0]["grounded"] and rows[2]["question"] == "What about its bioavailability?"
    assert "line 2" in err


def test_index_command_rebuilds(capsys, cli_env):
    code, out, _ = run(capsys, "index", "--json")
    assert code == 0 and json.loads(out)["chunk_count"] > 40


def test_missing_corpus_is_a_message_not_a_traceback(capsys, tmp_path):
    code, _, err = run(capsys, "ask", "--corpus", str(tmp_path / "nope"), "--index", str(tmp_path / "i"), "hello?")
    assert code == 1 and "does not exist" in err and "Traceback" not in err


def test_module_entry_point_runs():
    proc = subprocess.run([sys.executable, "-m", "assistant", "ask", ""], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "empty" in proc.stderr and "Traceback" not in proc.stderr
