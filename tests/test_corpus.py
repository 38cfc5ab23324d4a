from __future__ import annotations

import os

import pytest

from assistant.corpus import Unreadable, fingerprint_corpus, load_corpus, open_document, scan_corpus, sha256_hex


def test_reads_sorted_text_and_markdown(tmp_path, corpus_dir):
    import shutil

    corpus_dir = shutil.copytree(corpus_dir, tmp_path / "copy")
    (corpus_dir / "sub").mkdir()
    (corpus_dir / "sub" / "a.txt").write_text("Alpha text here.", encoding="utf-8")
    (corpus_dir / "notes.pdf").write_bytes(b"%PDF")
    docs = load_corpus(corpus_dir)
    assert [d.source for d in docs] == ["calcium-and-magnesium.txt", "iron.md", "sub/a.txt"]
    assert docs[0].sha256 == sha256_hex((corpus_dir / "calcium-and-magnesium.txt").read_bytes())
    assert docs[0].text == (corpus_dir / "calcium-and-magnesium.txt").read_bytes().decode("utf-8")


def test_skips_bad_files_with_a_warning(tmp_path, caplog):
    folder = tmp_path / "c"
    folder.mkdir()
    (folder / "good.txt").write_text("Fine text.", encoding="utf-8")
    (folder / "empty.txt").write_text("", encoding="utf-8")
    (folder / "blank.md").write_text("  \n\n", encoding="utf-8")
    (folder / "binary.txt").write_bytes(b"\x00\x01\x02abc")
    (folder / "latin1.txt").write_bytes("caf\xe9".encode("latin-1"))
    (folder / ".hidden.txt").write_text("secret", encoding="utf-8")
    (folder / ".git").mkdir()
    (folder / ".git" / "x.txt").write_text("git", encoding="utf-8")
    (folder / "big.txt").write_text("x" * 2000, encoding="utf-8")
    outside = tmp_path / "outside.txt"
    outside.write_text("outside", encoding="utf-8")
    os.symlink(outside, folder / "link-out.txt")
    os.symlink(folder / "good.txt", folder / "link-in.txt")
    os.symlink("loop.txt", folder / "loop.txt")
    with caplog.at_level("WARNING"):
        docs = load_corpus(folder, max_bytes=1000)
    assert [d.source for d in docs] == ["good.txt", "link-in.txt"]
    log = caplog.text
    for name in ("empty.txt", "blank.md", "binary.txt", "latin1.txt", "big.txt"):
        assert name in log
    assert "outside" not in [d.text for d in docs]
    _, skipped = scan_corpus(folder)
    assert {s.source: s.reason for s in skipped} == {
        "link-out.txt": "a link out of the corpus folder", "loop.txt": "a link that loops"}


def test_a_file_that_vanishes_before_it_is_read_is_a_reason_not_a_crash(tmp_path):
    folder = tmp_path / "c"
    folder.mkdir()
    with pytest.raises(Unreadable, match="cannot read it"):
        open_document(folder / "gone.txt", folder, max_bytes=1000)


def test_fingerprints_change_with_content(tmp_path):
    folder = tmp_path / "c"
    folder.mkdir()
    (folder / "a.txt").write_text("one", encoding="utf-8")
    first = fingerprint_corpus(folder)
    (folder / "a.txt").write_text("two", encoding="utf-8")
    assert fingerprint_corpus(folder) != first
