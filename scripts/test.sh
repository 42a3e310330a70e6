#!/usr/bin/env bash
# Sets up (scripts/setup.sh) and runs every test: the Rust core's cargo tests, then pytest.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/setup.sh
echo "== cargo test (rust/core) =="
cargo test -p optrs-core --release --quiet
echo "== pytest =="
.venv/bin/python -m pytest -q "$@"
