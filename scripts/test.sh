#!/usr/bin/env bash
# Sets up (scripts/setup.sh) and runs every test: lints (rustfmt, clippy, ruff, mypy, stubtest
# of the .pyi, and the layer contracts of pyproject.toml with import-linter), the Rust core's cargo
# tests, pytest, pytest again with the SIMD level forced to baseline, the fuzz suite twice, and
# the release artifacts (scripts/wheel.sh: the wheel built, audited, installed into fresh venvs and
# smoke-tested, also under qemu-user on a CPU without AVX; the sdist built from scratch). Extra
# arguments go to the main pytest run.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/setup.sh
echo "== lint =="
cargo fmt --all --check
# The rule and binding files (one per optimizer) are declared by build scripts, which cargo fmt does
# not follow: check them by name (rustfmt follows adafactor.rs's own module).
rustfmt --check --edition 2021 rust/core/src/rules/*.rs rust/py/src/optim/*.rs
cargo clippy --workspace --all-targets --release --quiet -- -D warnings
.venv/bin/ruff check --quiet python tests benches scripts
.venv/bin/mypy
.venv/bin/python -m mypy.stubtest optrs._core --allowlist scripts/stubtest_allowlist.txt
.venv/bin/lint-imports --no-cache
echo "== cargo test (rust/core) =="
cargo test -p optrs-core --release --quiet
echo "== pytest =="
.venv/bin/python -m pytest -q --ignore=tests/fuzz "$@"
# The paths a CPU without AVX takes, on this one (tests that compare levels still run them all).
echo "== pytest (OPTRS_SIMD=baseline) =="
OPTRS_SIMD=baseline .venv/bin/python -c "import optrs, sys; sys.exit(optrs.simd_level() not in ('sse2', 'neon', 'scalar'))"
OPTRS_SIMD=baseline .venv/bin/python -m pytest -q --ignore=tests/fuzz
# The fuzz suite (tests/fuzz/README.md), about 30 s a pass: once with a fixed seed, once with a
# random one (OPTRS_FUZZ_SEED sets it). Each pass is its own pytest process, so a crash fails the
# run (set -e) instead of ending it silently, and the seed that found it is printed.
fuzz() {
  echo "== fuzz (tests/fuzz, --hypothesis-seed=$1) =="
  .venv/bin/python -m pytest -q tests/fuzz --hypothesis-seed="$1" || {
    echo "fuzz: FAILED with seed $1; reproduce with: .venv/bin/python -m pytest tests/fuzz --hypothesis-seed=$1" >&2
    return 1
  }
}
fuzz 0
fuzz "${OPTRS_FUZZ_SEED:-$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')}"
echo "== release wheel and sdist (scripts/wheel.sh) =="
bash scripts/wheel.sh
