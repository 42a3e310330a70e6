#!/usr/bin/env bash
# Sets up everything the project needs on a fresh Debian machine, idempotently: system packages
# (only if missing), a virtualenv in .venv with the Python tools, and optrs built from source
# into it (release mode). Sourced by scripts/test.sh, scripts/demo.sh and scripts/wheel.sh.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

need_apt=()
command -v python3 >/dev/null || need_apt+=(python3)
python3 -c "import venv, ensurepip" 2>/dev/null || need_apt+=(python3-venv)
command -v cc >/dev/null || need_apt+=(gcc)
command -v cargo >/dev/null || [ -x "$HOME/.cargo/bin/cargo" ] || need_apt+=(cargo rustc)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${need_apt[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
[ -d "$HOME/.cargo/bin" ] && export PATH="$HOME/.cargo/bin:$PATH"

if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv"
  python3 -m venv .venv
fi
stamp=.venv/.requirements-dev.txt
if ! cmp -s requirements-dev.txt "$stamp"; then
  echo "setup: installing Python tools into .venv"
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -r requirements-dev.txt
  cp requirements-dev.txt "$stamp"
fi
# scripts/wheel.sh needs the tools only (OPTRS_SETUP_NO_BUILD=1).
if [ -n "${OPTRS_SETUP_NO_BUILD:-}" ]; then return 0 2>/dev/null || exit 0; fi
echo "setup: building optrs (cargo, release)"
.venv/bin/maturin develop --release -q 2>&1 | grep -vE "^(📦|✏️|🛠|🔗|🍹)" || true
.venv/bin/python -c "import optrs; print(f'setup: optrs {optrs.__version__} ready ({optrs.simd_level()}, {optrs.get_num_threads()} threads)')"
