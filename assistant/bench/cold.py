"""Cold start: a new `python -m assistant ask` process against one that only loads the model and encodes once.

Targets: the CLI's answer within 1.0 s; the floor is a process that imports ONNX Runtime and the
tokenizer, opens the cached export and encodes the question (`encoder=torch`: a bare SentenceTransformer).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from typing import Any

from assistant.bench.timing import ratio, summarize
from assistant.embedding import resolve_model_path
from assistant.settings import Settings

#: What the bare-encode process of the cold-start benchmark runs: the model, one encode, nothing else.
BARE_ENCODE_SCRIPT = """\
import sys
from sentence_transformers import SentenceTransformer
SentenceTransformer(sys.argv[1], device=sys.argv[2]).encode([sys.argv[3]])
"""
#: The same for the ONNX encoders: the cached export (made beforehand) run by ONNX Runtime, mean-pooled.
BARE_ONNX_SCRIPT = """\
import sys
import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer
options = ort.SessionOptions()
options.intra_op_num_threads = int(sys.argv[2])
session = ort.InferenceSession(sys.argv[1] + "/model.onnx", options, providers=["CPUExecutionProvider"])
encoding = Tokenizer.from_file(sys.argv[1] + "/tokenizer.json").encode(sys.argv[3])
feed = {"input_ids": np.array([encoding.ids]), "attention_mask": np.array([encoding.attention_mask]),
        "token_type_ids": np.array([encoding.type_ids])}
names = {i.name for i in session.get_inputs()}
hidden = session.run(None, {k: v for k, v in feed.items() if k in names})[0]
vector = hidden.mean(axis=1)
vector /= np.linalg.norm(vector)
"""

#: Both cold-start processes get the environment the CLI sets for itself.
QUIET_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "TRANSFORMERS_VERBOSITY": "error",
    "TOKENIZERS_PARALLELISM": "false",
}


def cold_commands(settings: Settings, question: str) -> dict[str, list[str]]:
    """The two processes the cold-start benchmark compares, as argument lists."""
    return {
        "assistant": [
            sys.executable, "-m", "assistant", "ask", "--quiet",
            "--corpus", str(settings.corpus_dir), "--index", str(settings.index_dir), question,
        ],
        "bare_encode": _bare_command(settings, question),
    }


def _bare_command(settings: Settings, question: str) -> list[str]:
    if settings.encoder == "torch":
        return [sys.executable, "-c", BARE_ENCODE_SCRIPT, resolve_model_path(settings.model), settings.device, question]
    from assistant.encoders.onnx import export_folder
    from assistant.encoders.pipeline import physical_cores

    folder = export_folder(settings.model, settings.cache_dir, quantize=settings.encoder == "onnx-int8")
    return [sys.executable, "-c", BARE_ONNX_SCRIPT, str(folder), str(physical_cores()), question]


def time_processes(commands: dict[str, list[str]], *, runs: int, env: dict[str, str] | None = None) -> dict[str, list[float]]:
    """Wall time of each command, `runs` times each, interleaved with the order reversed every run.

    Raises `RuntimeError` with the end of its stderr when a command fails: a crash is not a time.
    """
    names = list(commands)
    samples: dict[str, list[float]] = {name: [] for name in names}
    for run in range(runs):
        for name in names if run % 2 == 0 else names[::-1]:
            started = time.perf_counter()
            proc = subprocess.run(
                commands[name], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, text=True, check=False
            )
            elapsed = time.perf_counter() - started
            if proc.returncode != 0:
                raise RuntimeError(f"{name} exited with status {proc.returncode}: {proc.stderr.strip()[-500:]}")
            samples[name].append(elapsed)
    return samples


def bench_cold(settings: Settings, question: str, *, runs: int = 5) -> dict[str, Any]:
    """New-process time to first answer (index already built) against load-model-and-encode-once."""
    env = {**os.environ, **QUIET_ENV}
    samples = time_processes(cold_commands(settings, question), runs=runs, env=env)
    figures = {name: summarize(values) for name, values in samples.items()}
    return {
        "runs": runs,
        "question": question,
        **figures,
        "encoder": settings.encoder,
        "ratio_p50": ratio(figures["assistant"]["p50_ms"], figures["bare_encode"]["p50_ms"]),
        "target_s": 1.0,
    }
