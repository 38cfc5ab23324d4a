"""The `Embedder` protocol, and the one cached encoder per (model, device, encoder).

Three encoders of the same model (`Settings.encoder`):

* `onnx` (default): the model exported to ONNX and run by ONNX Runtime (`assistant.encoders.onnx`).
  Its vectors equal sentence-transformers' to cosine 0.9999999, so it shares their name and an index
  built by either serves both; a question never imports PyTorch. The export is made once, on first
  use (it needs PyTorch then, about 15 s), and cached in `Settings.cache_dir`.
* `onnx-int8`: the same, quantised to int8 — faster, but another vector space (worst cosine ~0.98),
  so it is named apart, needs its own index, and the answer and safety models (trained on fp32
  vectors) are not used with it.
* `torch`: sentence-transformers on PyTorch (`assistant.encoders.reference`), the reference.

Heavy imports happen when an encoder is made, not at import of this module, so commands that need no
model (help, listing) start fast.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Protocol, Sequence

import numpy as np

from assistant.encoders.reference import SentenceTransformerEmbedder, model_label, resolve_model_path
from assistant.settings import BUNDLED_MODEL, Settings

logger = logging.getLogger(__name__)

ENCODERS = ("onnx", "onnx-int8", "torch")
_MODELS: dict[tuple[str, str, str, str], "Embedder"] = {}
_LOCK = threading.Lock()


class Embedder(Protocol):
    """Anything that turns texts into L2-normalised float32 rows.

    The encoders here also have `encode_tokens(texts) -> (rows, [(word pieces, unit vectors), ...])`,
    the same pass with each text's contextual token vectors: the answer model reads them
    (`features.alignment_features`), and without them the hand-set scope policy is used.
    """

    name: str
    dimension: int

    def encode(self, texts: Sequence[str], *, batch_size: int = 64, show_progress: bool = False) -> np.ndarray: ...


def _load(model: str, device: str, encoder: str, cache_dir: Path | None) -> Embedder:
    if encoder == "torch":
        return SentenceTransformerEmbedder(model, device=device)
    if encoder in ("onnx", "onnx-int8"):
        if device != "cpu":
            raise ValueError(f"the ONNX encoders run on the CPU; set ASSISTANT_ENCODER=torch for device {device!r}")
        from assistant.encoders.onnx import OnnxEmbedder

        return OnnxEmbedder(model, cache_dir=(cache_dir or Settings().cache_dir) / "encoders",
                            quantize=encoder == "onnx-int8")
    raise ValueError(f"unknown encoder {encoder!r} (known: {', '.join(ENCODERS)})")


def get_embedder(
    model: str = BUNDLED_MODEL, *, device: str = "cpu", encoder: str = "torch", cache_dir: Path | None = None
) -> Embedder:
    """The cached encoder for (model, device, encoder): loaded once per process, shared by all callers."""
    key = (model, device, encoder, str(cache_dir))
    with _LOCK:
        if key not in _MODELS:
            logger.info("loading embedding model %s (%s) on %s", model_label(model), encoder, device)
            _MODELS[key] = _load(model, device, encoder, cache_dir)
        return _MODELS[key]


def embedder_for(settings: Settings) -> Embedder:
    """The encoder `settings` ask for."""
    return get_embedder(settings.model, device=settings.device, encoder=settings.encoder, cache_dir=settings.cache_dir)


__all__ = ["ENCODERS", "Embedder", "SentenceTransformerEmbedder", "embedder_for", "get_embedder", "model_label",
           "resolve_model_path"]
