"""Settings: environment variables, validation with the bad value, folders that must not overlap."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from assistant.settings import BUNDLED_MODEL, Settings


def test_defaults_are_the_bundled_model_and_the_project_folders():
    settings = Settings()
    assert settings.model == BUNDLED_MODEL and settings.backend == "faiss"
    assert settings.corpus_dir.name == "corpus" and settings.index_dir.name == "index"
    assert settings.corpus_dir.is_absolute()


def test_every_setting_reads_its_environment_variable(monkeypatch, tmp_path):
    monkeypatch.setenv("ASSISTANT_TOP_K", "5")
    monkeypatch.setenv("ASSISTANT_BACKEND", "milvus")
    monkeypatch.setenv("ASSISTANT_INDEX_DIR", str(tmp_path / "idx"))
    monkeypatch.setenv("ASSISTANT_SYNC_ON_LOAD", "false")
    settings = Settings()
    assert settings.top_k == 5 and settings.backend == "milvus" and not settings.sync_on_load
    assert settings.index_dir == (tmp_path / "idx").resolve()


@pytest.mark.parametrize("field, value", [("top_k", 0), ("top_k", 99), ("alpha", 1.5), ("backend", "sqlite"),
                                          ("milvus_collection", "bad name!")])
def test_invalid_values_are_refused_naming_the_field(field, value):
    with pytest.raises(ValidationError) as caught:
        Settings(**{field: value})
    assert field in str(caught.value)


def test_index_and_corpus_must_not_overlap(tmp_path):
    corpus = tmp_path / "docs"
    corpus.mkdir()
    for index in (corpus, corpus / "index", tmp_path):
        with pytest.raises(ValidationError, match="overlap"):
            Settings(corpus_dir=corpus, index_dir=index)
    assert Settings(corpus_dir=corpus, index_dir=tmp_path / "index").index_dir.name == "index"
