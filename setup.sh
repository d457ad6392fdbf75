#!/usr/bin/env bash
# Create ./.venv and install orpam_pipeline with its test extras. Safe to run again: it only
# reinstalls when pyproject.toml changed since the last install.
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
# PyTorch first, pinned: an unpinned torch would pull the newest build with several GB of CUDA
# packages on machines without a GPU. Where a local CPU wheel of this version is offered (as on
# our CI machines) pip takes it; on a GPU machine the same pin installs the CUDA build. Set
# ORPAM_TORCH_INDEX (e.g. https://download.pytorch.org/whl/cpu) to choose another wheel index.
if ! .venv/bin/python -c "import torch" 2>/dev/null; then
  .venv/bin/python -m pip install --quiet --disable-pip-version-check "torch==${ORPAM_TORCH_VERSION:-2.13.0}" \
    ${ORPAM_TORCH_INDEX:+--index-url "$ORPAM_TORCH_INDEX"} 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
fi
stamp=.venv/.orpam-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".[test]" 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
  touch "$stamp"
fi
