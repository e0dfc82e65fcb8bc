#!/usr/bin/env bash
# Set up gpt_mini in ./.venv:   bash setup.sh           (run time: torch CPU build, numpy, tiktoken, matplotlib, tqdm)
#                               bash setup.sh --tests   (also pytest, ruff, playwright and Debian's chromium for the lesson tests)
# Safe to run again: what is already there is kept.
set -euo pipefail
cd "$(dirname "$0")"
with_tests=0
[ "${1:-}" = "--tests" ] && with_tests=1

PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
pip() { .venv/bin/python -m pip "$@"; }

# torch first, and always a CPU build: never let a dependency pull a multi-GB CUDA build.
if ! .venv/bin/python -c "import torch" 2>/dev/null; then
  # "+cpu" builds are not on PyPI: this only succeeds where pip can see a local CPU wheel (find-links)
  if pip install -q "torch==2.13.0+cpu" 2>/dev/null; then
    echo "torch 2.13.0+cpu installed from a local wheel"
  elif [ "$(uname -s)" = "Linux" ]; then
    pip install -q "torch==2.13.0" --index-url https://download.pytorch.org/whl/cpu
  else
    pip install -q "torch==2.13.0"   # macOS and Windows wheels on PyPI are CPU/MPS builds
  fi
fi

if [ $with_tests = 1 ]; then
  pip install -q -r requirements-dev.txt
  if [ ! -x /usr/bin/chromium ]; then
    # Playwright cannot download its own browser here; it drives Debian's chromium instead.
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq && $SUDO apt-get install -y -qq chromium >/dev/null
  fi
else
  pip install -q -r requirements.txt
fi
echo "setup done: $(.venv/bin/python -c 'import torch; print("torch", torch.__version__)')"
