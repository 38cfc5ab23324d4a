"""The model's sentence-transformers pipeline, read from its files, and run on ONNX Runtime in numpy.

`read_pipeline` reads `modules.json`, `1_Pooling/config.json` and `sentence_bert_config.json`;
`Runtime` tokenises with `tokenizers` (truncation to `max_seq_length`, padding to the longest text
of a batch), runs the transformer graph and pools and normalises exactly as that configuration says.
No torch here.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

#: A text's word pieces and their unit contextual vectors, one row per piece (special tokens left out).
TokenVectors = tuple[tuple[str, ...], np.ndarray]

ONNX_FILE = "model.onnx"
TOKENIZER_FILE = "tokenizer.json"
MANIFEST = "manifest.json"
SUPPORTED_MODULES = {
    "sentence_transformers.models.Transformer": "transformer",
    "sentence_transformers.models.Pooling": "pooling",
    "sentence_transformers.models.Normalize": "normalize",
}
POOLING_MODES = ("cls", "max", "mean", "mean_sqrt_len_tokens")
#: The legacy boolean keys of `1_Pooling/config.json`, in sentence-transformers' concatenation order.
LEGACY_POOLING_KEYS = {
    "pooling_mode_cls_token": "cls",
    "pooling_mode_max_tokens": "max",
    "pooling_mode_mean_tokens": "mean",
    "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len_tokens",
    "pooling_mode_weightedmean_tokens": "weightedmean",
    "pooling_mode_lasttoken": "lasttoken",
}


def read_pipeline(model_dir: Path) -> dict[str, Any]:
    """What sentence-transformers does around the transformer, read from the model's own files.

    Raises `ValueError` naming the file and the fix for a pipeline this encoder does not reproduce
    (a Dense layer, weighted-mean pooling, `do_lower_case`): those models need `ASSISTANT_ENCODER=torch`.
    """
    modules_file = model_dir / "modules.json"
    if not modules_file.is_file():
        raise ValueError(
            f"{model_dir} has no modules.json: the ONNX encoder needs a sentence-transformers model folder "
            "(or use ASSISTANT_ENCODER=torch)"
        )
    modules = json.loads(modules_file.read_text(encoding="utf-8"))
    kinds = [SUPPORTED_MODULES.get(m.get("type", "")) for m in modules]
    if None in kinds or kinds[:2] != ["transformer", "pooling"] or kinds[2:] not in ([], ["normalize"]):
        types = [m.get("type") for m in modules]
        raise ValueError(
            f"{modules_file} lists {types}; the ONNX encoder reproduces only Transformer, Pooling and an optional "
            "Normalize. Use the torch encoder (ASSISTANT_ENCODER=torch) for this model."
        )
    transformer_dir = model_dir / modules[0].get("path", "")
    st_config = read_json(transformer_dir / "sentence_bert_config.json", default={})
    if st_config.get("do_lower_case"):
        raise ValueError(
            f"{transformer_dir / 'sentence_bert_config.json'} sets do_lower_case, which the ONNX encoder does not "
            "reproduce. Use the torch encoder (ASSISTANT_ENCODER=torch) for this model."
        )
    pooling_config = read_json(model_dir / modules[1]["path"] / "config.json", default={})
    modes = _pooling_modes(pooling_config)
    if not set(modes) <= set(POOLING_MODES):
        raise ValueError(
            f"pooling {modes} in {model_dir / modules[1]['path']}/config.json is not supported by the ONNX encoder "
            f"(supported: {POOLING_MODES}). Use the torch encoder (ASSISTANT_ENCODER=torch)."
        )
    hidden = int(pooling_config.get("word_embedding_dimension") or pooling_config.get("embedding_dimension") or 0)
    if hidden <= 0:
        hidden = int(read_json(transformer_dir / "config.json", default={}).get("hidden_size", 0))
    return {
        "max_seq_length": _max_seq_length(transformer_dir, st_config),
        "pooling": list(modes),
        "normalize_module": kinds[2:] == ["normalize"],
        "dimension": hidden * len(modes),
        "transformer_path": modules[0].get("path", ""),
    }


def read_json(path: Path, *, default: Any) -> Any:
    if not path.is_file():
        return default
    return json.loads(path.read_text(encoding="utf-8"))


def _pooling_modes(config: dict[str, Any]) -> tuple[str, ...]:
    """The pooling modes in sentence-transformers' order: the `pooling_mode` key, or the legacy booleans."""
    mode = config.get("pooling_mode")
    if mode is not None:
        return (mode,) if isinstance(mode, str) else tuple(mode)
    active = tuple(name for key, name in LEGACY_POOLING_KEYS.items() if config.get(key))
    return active or ("mean",)


def _max_seq_length(transformer_dir: Path, st_config: dict[str, Any]) -> int:
    """`max_seq_length` of sentence_bert_config.json; else the tokenizer's limit capped by the position table."""
    if st_config.get("max_seq_length"):
        return int(st_config["max_seq_length"])
    limits = [
        read_json(transformer_dir / "tokenizer_config.json", default={}).get("model_max_length"),
        read_json(transformer_dir / "config.json", default={}).get("max_position_embeddings"),
    ]
    usable = [int(x) for x in limits if isinstance(x, (int, float)) and 0 < x < 1_000_000]
    if not usable:
        raise ValueError(f"no max_seq_length in {transformer_dir / 'sentence_bert_config.json'} nor a tokenizer limit")
    return min(usable)


def pool_tokens(hidden: np.ndarray, mask: np.ndarray, modes: Sequence[str]) -> np.ndarray:
    """Sentence vectors from token vectors `(batch, seq, dim)` and the attention mask `(batch, seq)`.

    Padding never counts: sentence-transformers' Pooling, mode by mode, concatenated in order. `cls`
    is the first attended token (position 0 with right padding), the mean divides by the number of
    attended tokens (at least 1e-9).
    """
    weights = mask.astype(hidden.dtype)[:, :, None]
    parts = []
    for mode in modes:
        if mode == "cls":
            parts.append(hidden[np.arange(hidden.shape[0]), mask.argmax(axis=1)])
        elif mode == "max":
            parts.append(np.where(weights > 0, hidden, -np.inf).max(axis=1))
        elif mode in ("mean", "mean_sqrt_len_tokens"):
            total = (hidden * weights).sum(axis=1)
            count = np.maximum(weights.sum(axis=1), 1e-9)
            parts.append(total / (count if mode == "mean" else np.sqrt(count)))
        else:
            raise ValueError(f"pooling mode {mode!r} is not supported; supported: {POOLING_MODES}")
    return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=1)


def normalize_rows(vectors: np.ndarray) -> np.ndarray:
    """L2-normalised float32 rows, as `torch.nn.functional.normalize` (norms below 1e-12 count as 1e-12)."""
    norms = np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    return np.ascontiguousarray(vectors / norms, dtype=np.float32)




def physical_cores() -> int:
    """Physical cores this process may run on: hyper-threads share one core's arithmetic units."""
    try:
        cpus = os.sched_getaffinity(0)
    except AttributeError:  # not Linux
        return max(1, (os.cpu_count() or 2) // 2)
    cores = set()
    for cpu in cpus:
        topology = Path(f"/sys/devices/system/cpu/cpu{cpu}/topology")
        try:
            package = (topology / "physical_package_id").read_text().strip()
            cores.add((package, (topology / "core_id").read_text().strip()))
        except OSError:
            return len(cpus)
    return max(1, len(cores))


class Runtime:
    """An ONNX Runtime session with the tokenizer and pooling of one export: texts in, unit rows out."""

    def __init__(self, onnx_model: bytes | str, tokenizer_json: str, pipeline: dict[str, Any], *, threads: int) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Idle pool threads sleep instead of spinning: a server runs the encoder beside retrieval threads, and on
        # 2 cores under load (load average 5) spinning doubled the CPU per question and one encode's p50 (4.4 -> 20 ms).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.log_severity_level = 3  # errors only: ORT's warnings are about graph details, not our data
        self.session = ort.InferenceSession(onnx_model, options, providers=["CPUExecutionProvider"])
        self.inputs = [i.name for i in self.session.get_inputs()]
        self.output = self.session.get_outputs()[0].name

        tokenizer = Tokenizer.from_str(tokenizer_json)
        # tokenizer.json may carry its own truncation/padding (all-MiniLM-L6-v2's says 128, fixed):
        # sentence-transformers overrides both, and so do we.
        tokenizer.no_truncation()
        tokenizer.enable_truncation(max_length=int(pipeline["max_seq_length"]), strategy="longest_first")
        tokenizer.enable_padding(pad_id=int(pipeline["pad_id"]), pad_token=str(pipeline["pad_token"]),
                                 pad_type_id=0, direction="right")
        self.tokenizer = tokenizer
        self.modes = tuple(pipeline["pooling"])

    def encode_batch(self, texts: list[str]) -> np.ndarray:
        return self.encode_batch_tokens(texts, tokens=False)[0]

    def encode_batch_tokens(self, texts: list[str], *, tokens: bool = True) -> tuple[np.ndarray, list[TokenVectors]]:
        """Unit rows, and (with `tokens`) each text's word pieces with their unit contextual vectors.

        The token vectors are the transformer's output before pooling, so they cost nothing more than
        the sentence vector; special tokens ([CLS], [SEP]) and padding are left out.
        """
        encodings = self.tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        feed = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self.inputs:
            feed["token_type_ids"] = np.array([e.type_ids for e in encodings], dtype=np.int64)
        hidden = self.session.run([self.output], {k: v for k, v in feed.items() if k in self.inputs})[0]
        rows = normalize_rows(pool_tokens(hidden, mask, self.modes))
        if not tokens:
            return rows, []
        pieces = []
        for i, encoding in enumerate(encodings):
            keep = [j for j, (m, special) in enumerate(zip(encoding.attention_mask, encoding.special_tokens_mask))
                    if m and not special]
            pieces.append((tuple(encoding.tokens[j] for j in keep), normalize_rows(hidden[i, keep])))
        return rows, pieces
