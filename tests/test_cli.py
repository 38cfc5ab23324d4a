"""The command line through `main()`: output contracts, exit codes, messages; the fake embedder via the one seam."""

from __future__ import annotations

import io
import json
import subprocess
import sys

import pytest

import assistant.cli.common as cli_common
from assistant.answer import DISCLAIMER
from assistant.cli import main
from conftest import ROOT, FakeEmbedder


@pytest.fixture
def cli_env(monkeypatch, settings):
    monkeypatch.setattr(cli_common, "make_embedder", lambda settings: FakeEmbedder())
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
    for word in ("ask", "index", "verify", "eval", "bench", "healthcare professional", "ASSISTANT_"):
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
    assert set(data) >= {"question", "answer", "grounded", "citations", "disclaimer", "notice"}
    assert data["grounded"] is True and data["disclaimer"] == DISCLAIMER
    for c in data["citations"]:
        assert set(c) >= {"n", "quote", "source", "section", "start", "end", "score"}
        text = (cli_env.corpus_dir / c["source"]).read_bytes().decode("utf-8")
        assert text[c["start"] : c["end"]] == c["quote"]
    assert "building the index" in err  # first run builds, and says so on stderr


def test_ask_text_output(capsys, cli_env):
    code, out, _ = run(capsys, "ask", "Do lentils contain magnesium?")
    assert code == 0 and "[1]" in out and "Sources:" in out and out.rstrip().endswith(DISCLAIMER)


def test_stdin_lines_are_separate_questions_unless_asked_for_a_conversation(capsys, cli_env, monkeypatch):
    lines = b"Which magnesium form is calming?\nIs it well absorbed?\n"
    code, out, _ = run(capsys, "ask", "--json", stdin=lines, monkeypatch=monkeypatch)
    alone = [json.loads(line) for line in out.splitlines()]
    code, out, _ = run(capsys, "ask", "--json", "--conversation", stdin=lines, monkeypatch=monkeypatch)
    together = [json.loads(line) for line in out.splitlines()]
    assert alone[0] == together[0]
    assert alone[1]["citations"] != together[1]["citations"], "the second line was read as a follow-up by default"
    assert any("Glycinate" in c["quote"] for c in together[1]["citations"])


def test_batch_text_output_says_which_question_each_answer_is_for(capsys, cli_env, monkeypatch):
    code, out, _ = run(capsys, "ask", stdin=b"Do lentils contain magnesium?\n\nWhat is whitlockite?\n", monkeypatch=monkeypatch)
    assert code == 0
    assert out.index("Q1: Do lentils contain magnesium?") < out.index("Q3: What is whitlockite?")
    assert out.count(DISCLAIMER) == 2


def test_stdin_batch_with_a_bad_line(capsys, cli_env, monkeypatch):
    lines = "Which magnesium form is calming?\n\xff\xfe\nWhat about its bioavailability?\n".encode("latin-1")
    code, out, err = run(capsys, "ask", "--json", "--conversation", stdin=lines, monkeypatch=monkeypatch)
    assert code == 2
    rows = [json.loads(line) for line in out.splitlines()]
    assert len(rows) == 3
    assert "error" in rows[1] and "UTF-8" in rows[1]["error"] and rows[1]["disclaimer"] == DISCLAIMER
    assert rows[0]["grounded"] and rows[2]["question"] == "What about its bioavailability?"
    assert "line 2" in err


def test_index_reports_what_it_did_and_embeds_nothing_when_up_to_date(capsys, cli_env):
    code, out, _ = run(capsys, "index", "--json")
    first = json.loads(out)
    assert code == 0 and first["chunks"] > 40 and first["files"] == 2 and first["sync"]["chunks_embedded"] == first["chunks"]
    code, out, err = run(capsys, "index", "--json")
    again = json.loads(out)
    assert again["sync"] == {"added": [], "changed": [], "removed": [], "unchanged": 2, "chunks_embedded": 0, "rebuilt": None}
    assert err == ""


def test_index_lists_unsupported_files_once_with_plurals_right(capsys, cli_env):
    (cli_env.corpus_dir / "leaflet.pdf").write_bytes(b"%PDF-1.4")
    try:
        code, out, _ = run(capsys, "index")
    finally:
        (cli_env.corpus_dir / "leaflet.pdf").unlink()  # the corpus fixture checks the folder is as it was
    assert code == 0
    assert out.count("leaflet.pdf") == 1 and "damaged or cut short" in out
    assert "from 2 files" in out and "1 files" not in out


def test_verify_reports_a_changed_file_before_anything_rebuilds(capsys, cli_env, tmp_path, monkeypatch):
    run(capsys, "index")
    copy = tmp_path / "copy"
    copy.mkdir()
    for path in cli_env.corpus_dir.iterdir():
        (copy / path.name).write_bytes(path.read_bytes())
    (copy / "iron.md").write_text("# Iron\n\nChanged after indexing.\n", encoding="utf-8")
    monkeypatch.setenv("ASSISTANT_CORPUS_DIR", str(copy))
    code, out, _ = run(capsys, "verify")
    assert code == 1 and "iron.md" in out and "changed" in out
    code, out, _ = run(capsys, "verify")  # verify repaired nothing
    assert code == 1 and "iron.md" in out


def test_verify_reports_a_damaged_index_without_repairing_it(capsys, cli_env):
    run(capsys, "index")
    (cli_env.index_dir / "manifest.json").write_text("{broken", encoding="utf-8")
    code, out, _ = run(capsys, "verify", "--json")
    report = json.loads(out)
    assert code == 1 and not report["ok"] and "damaged" in report["problems"][0]
    assert (cli_env.index_dir / "manifest.json").read_text(encoding="utf-8") == "{broken"


def test_overlapping_index_and_corpus_folders_are_refused(capsys, cli_env):
    code, _, err = run(capsys, "index", "--index", str(cli_env.corpus_dir))
    assert code == 2 and "overlap" in err and DISCLAIMER in err
    assert not (cli_env.corpus_dir / "manifest.json").exists()


def test_missing_corpus_is_a_message_not_a_traceback(capsys, tmp_path):
    code, _, err = run(capsys, "ask", "--corpus", str(tmp_path / "nope"), "--index", str(tmp_path / "i"), "hello?")
    assert code == 1 and "does not exist" in err and "Traceback" not in err


def test_module_entry_point_runs():
    proc = subprocess.run([sys.executable, "-m", "assistant", "ask", ""], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "empty" in proc.stderr and "Traceback" not in proc.stderr


def test_escape_sequences_from_a_document_are_shown_not_sent_to_the_terminal(capsys, monkeypatch, tmp_path):
    corpus = tmp_path / "hostile"
    corpus.mkdir()
    (corpus / "zinc.md").write_text("# Zinc\x1b]0;pwned\x07\n\nZinc is found in oysters\x1b[2J and seeds.\n", encoding="utf-8")
    monkeypatch.setattr(cli_common, "make_embedder", lambda settings: FakeEmbedder())
    code, out, _ = run(capsys, "ask", "--corpus", str(corpus), "--index", str(tmp_path / "idx"), "Where is zinc found?")
    assert code == 0 and "oysters" in out
    assert "\x1b" not in out and "\x07" not in out
    assert "\\x1b[2J" in out and "\\x1b]0;pwned\\x07" in out


def test_ask_can_be_restricted_to_named_documents(capsys, cli_env):
    code, out, _ = run(capsys, "ask", "Which foods are good sources of iron?", "--source", "iron.md", "--json")
    data = json.loads(out)
    assert code == 0 and data["citations"] and {c["source"] for c in data["citations"]} == {"iron.md"}
    assert all(c["page"] is None and c["boxes"] == [] for c in data["citations"])
    code, out, err = run(capsys, "ask", "Which foods are good sources of iron?", "--source", "leaflet.pdf")
    assert code == 2 and "leaflet.pdf" in err and "iron.md" in err and DISCLAIMER in err and "Traceback" not in err
