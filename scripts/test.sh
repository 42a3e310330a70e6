#!/usr/bin/env bash
# Sets up (scripts/setup.sh) and runs every test: lints (rustfmt, clippy, ruff, mypy and stubtest
# of the .pyi), the Rust core's cargo tests, then pytest. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/setup.sh
echo "== lint =="
cargo fmt --all --check
cargo clippy --workspace --all-targets --release --quiet -- -D warnings
.venv/bin/ruff check --quiet python tests benches
.venv/bin/mypy
.venv/bin/python -m mypy.stubtest optrs._core
echo "== cargo test (rust/core) =="
cargo test -p optrs-core --release --quiet
echo "== pytest =="
.venv/bin/python -m pytest -q "$@"
