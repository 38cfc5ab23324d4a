"""Exporting the sentence-transformers model to ONNX: the only place that imports torch.

The transformer is traced with `torch.onnx.export` (dynamic batch and sequence axes, opset `OPSET`),
optionally quantised to int8, then both the export and sentence-transformers embed `PROBE_TEXTS` and
the manifest records their worst cosine, with the source files' fingerprints and the versions used.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
import warnings
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from assistant.corpus import sha256_hex, sha256_path

from assistant.encoders.pipeline import MANIFEST, ONNX_FILE, TOKENIZER_FILE, Runtime, physical_cores, read_json, read_pipeline

logger = logging.getLogger(__name__)

#: Bump when the export procedure changes: older exports are then made again.
EXPORT_FORMAT = 1
#: ONNX opset of the export: 17 has LayerNormalization as one op, and every onnxruntime this project
#: accepts (>= 1.17) runs it.
OPSET = 17
#: The fp32 export keeps the sentence-transformers name (no re-index when switching) only if its vectors
#: are this close to sentence-transformers' on the probe texts; otherwise it is named `+onnx`.
SHARED_NAME_MIN_COSINE = 0.9999
#: The int8 quantisation: dynamic (activations quantised at run time), int8 weights, one scale per
#: output channel. On the project's questions and chunks plus a few edge cases, its worst cosine to
#: sentence-transformers is 0.977 (0.987 without the edge cases), against 0.935 for per-tensor uint8
#: weights and 0.865 for per-tensor int8, and it ran no slower than either here (AVX-512 VNNI).
QUANTIZATION = {"method": "dynamic", "weight_type": "QInt8", "per_channel": True, "reduce_range": False}
#: Texts both encoders embed at export time; the manifest keeps their worst cosine. Empty, short,
#: accented and CJK text, and one longer than max_seq_length (truncation).
PROBE_TEXTS = (
    "",
    "magnesium",
    "What foods are high in magnesium?",
    "Calcium and magnesium compete for absorption: without magnesium, calcium may settle in arteries and joints.",
    "Café au lait, naïve résumé, 中文 and 🙂 in one line.",
    " ".join(["Vitamin D helps the body absorb calcium from food."] * 60),
)


def export_onnx(model_path: str, out_dir: Path, *, quantize: bool = False, label: str | None = None) -> Path:
    """Export the sentence-transformers model in `model_path` to `out_dir/model.onnx`, with its manifest.

    The transformer is traced from the model sentence-transformers loads (`torch.onnx.export`, opset
    17, batch and sequence axes dynamic), with eager attention: a plain MatMul/Softmax graph, a quarter
    smaller than SDPA's (which adds NaN guards per layer), with the same vectors. With `quantize`, the
    fp32 graph is then quantised with `onnxruntime.quantization.quantize_dynamic` (see `QUANTIZATION`).
    Both encoders then embed `PROBE_TEXTS`, and the manifest records the worst cosine.

    `out_dir` is written in place; `OnnxEmbedder` calls this on a temporary folder and moves it.
    Takes 10-25 s on two cores, and imports torch, sentence-transformers and onnx.

    Example:
        >>> export_onnx(resolve_model_path(BUNDLED_MODEL), Path("cache/x"), quantize=True)  # doctest: +SKIP
        PosixPath('cache/x/model.onnx')
    """
    source = Path(model_path)
    pipeline = read_pipeline(source)
    pipeline.update(_pad_token(source / pipeline["transformer_path"]))
    out_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    target = out_dir / ONNX_FILE
    traced = out_dir / "model.fp32.onnx" if quantize else target
    export, reference = _export_transformer(source, pipeline, traced)
    if quantize:
        _quantize(traced, target)
        traced.unlink()
    shutil.copyfile(source / pipeline["transformer_path"] / TOKENIZER_FILE, out_dir / TOKENIZER_FILE)

    onnx_bytes = target.read_bytes()
    tokenizer_bytes = (out_dir / TOKENIZER_FILE).read_bytes()
    tokenizer_json = tokenizer_bytes.decode("utf-8")
    vectors = Runtime(onnx_bytes, tokenizer_json, pipeline, threads=physical_cores()).encode_batch(list(PROBE_TEXTS))
    if vectors.shape[1] != pipeline["dimension"]:
        raise ValueError(
            f"the export gives {vectors.shape[1]}-dimensional vectors, the pooling config says {pipeline['dimension']}"
        )
    parity = None
    if reference is not None:
        parity = {"texts": len(PROBE_TEXTS), "min_cosine": round(float((vectors * reference).sum(axis=1).min()), 7)}
    manifest = {
        "format": EXPORT_FORMAT,
        "model": label or str(source),
        "variant": "int8" if quantize else "fp32",
        "source": {"path": str(source), "files": source_files(source, hash_all=True)},
        "pipeline": pipeline,
        "export": {**export, "quantization": QUANTIZATION if quantize else None},
        "versions": _versions(),
        "files": {ONNX_FILE: sha256_hex(onnx_bytes), TOKENIZER_FILE: sha256_hex(tokenizer_bytes)},
        "parity": parity,
        "exported_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "export_seconds": round(time.perf_counter() - started, 2),
    }
    _write_json(out_dir / MANIFEST, manifest)
    logger.info("exported %s (%s) to %s in %.1f s",
                manifest["model"], manifest["variant"], target, manifest["export_seconds"])
    return target


def _pad_token(transformer_dir: Path) -> dict[str, Any]:
    """The padding token and id the transformers tokenizer would use (tokenizer_config, special tokens map)."""
    from tokenizers import Tokenizer

    token = None
    for name in ("tokenizer_config.json", "special_tokens_map.json"):
        value = read_json(transformer_dir / name, default={}).get("pad_token")
        token = value.get("content") if isinstance(value, dict) else value
        if token:
            break
    tokenizer = Tokenizer.from_file(str(transformer_dir / TOKENIZER_FILE))
    if not token and tokenizer.padding:
        token = tokenizer.padding.get("pad_token")
    pad_id = tokenizer.token_to_id(token) if token else None
    if pad_id is None:
        raise ValueError(f"no padding token found in {transformer_dir} (tokenizer_config.json pad_token)")
    return {"pad_token": token, "pad_id": int(pad_id)}


def _export_transformer(
    source: Path, pipeline: dict[str, Any], onnx_path: Path
) -> tuple[dict[str, Any], np.ndarray | None]:
    """Trace the model's transformer to `onnx_path`; return the export settings and the reference vectors.

    The reference vectors are sentence-transformers' own `encode(PROBE_TEXTS, normalize_embeddings=True)`.
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import torch
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()
    model = SentenceTransformer(str(source), device="cpu")
    model.eval()
    reference = model.encode(
        list(PROBE_TEXTS), normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
    )
    transformer = model[0]
    network = transformer.auto_model
    attention = "eager"
    try:
        network.set_attn_implementation(attention)
    except (AttributeError, ValueError) as exc:  # older transformers, or a model without the choice
        attention = str(getattr(network.config, "_attn_implementation", "default"))
        logger.info("keeping %s attention for the export (%s)", attention, exc)
    # Two texts of different lengths, so that the traced graph sees padding and a real mask.
    sample = transformer.tokenizer(
        ["a", "an example sentence for tracing, longer than the first"],
        padding=True, truncation=True, max_length=pipeline["max_seq_length"], return_tensors="pt",
    )
    names = [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in sample]

    class LastHiddenState(torch.nn.Module):
        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
            return self.inner(**dict(zip(names, tensors))).last_hidden_state

    axes = {name: {0: "batch", 1: "sequence"} for name in [*names, "last_hidden_state"]}
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tracer's warnings concern shapes the dynamic axes already cover
        torch.onnx.export(
            LastHiddenState(network).eval(), tuple(sample[n] for n in names), str(onnx_path),
            dynamo=False, input_names=names, output_names=["last_hidden_state"], dynamic_axes=axes,
            opset_version=OPSET, do_constant_folding=True,
        )
    settings = {"exporter": "torch.onnx.export (TorchScript)", "opset": OPSET, "attention": attention,
                "inputs": names, "dynamic_axes": ["batch", "sequence"], "output": "last_hidden_state"}
    return settings, np.asarray(reference, dtype=np.float32)


def _quantize(fp32_path: Path, int8_path: Path) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # The quantiser logs per-tensor notes, and advice meant for static quantisation, on the root logger.
    def not_from_quantizer(record: logging.LogRecord) -> bool:
        return "onnxruntime" not in record.pathname

    root = logging.getLogger()
    root.addFilter(not_from_quantizer)
    try:
        quantize_dynamic(
            str(fp32_path), str(int8_path), weight_type=getattr(QuantType, QUANTIZATION["weight_type"]),
            per_channel=QUANTIZATION["per_channel"], reduce_range=QUANTIZATION["reduce_range"],
        )
    finally:
        root.removeFilter(not_from_quantizer)


def _versions() -> dict[str, str]:
    versions = {}
    for name in ("onnx", "onnxruntime", "torch", "transformers", "sentence-transformers", "tokenizers"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "absent"
    return versions


def _write_json(path: Path, data: Any) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(data, f, sort_keys=True, ensure_ascii=False, indent=1)
        f.flush()
        os.fsync(f.fileno())




def _source_paths(source: Path) -> list[Path]:
    """The model's files that define its vectors: everything but hidden files, README and other formats' exports."""
    skip_dirs = {"onnx", "openvino"}
    paths = []
    for path in sorted(source.rglob("*")):
        parts = path.relative_to(source).parts
        if not path.is_file() or any(p.startswith(".") for p in parts) or parts[0] in skip_dirs:
            continue
        if path.name.lower().startswith("readme"):
            continue
        paths.append(path)
    return paths


def source_files(source: Path, *, hash_all: bool, known: dict[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    """{relative path: {sha256, size, mtime_ns}}; a file whose size and mtime match `known` keeps its hash."""
    known = known or {}
    files = {}
    for path in _source_paths(source):
        name = path.relative_to(source).as_posix()
        stat = path.stat()
        before = known.get(name) or {}
        if not hash_all and before.get("size") == stat.st_size and before.get("mtime_ns") == stat.st_mtime_ns:
            digest = before.get("sha256")
        else:
            digest = sha256_path(path)
        files[name] = {"sha256": digest, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    return files
