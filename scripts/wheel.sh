#!/usr/bin/env bash
# Builds and checks the release artifacts in dist/: the manylinux2014 abi3 wheel (glibc 2.17+,
# CPython 3.10+, baseline x86-64 with AVX2/AVX-512 picked at run time) and the sdist.
#
#   bash scripts/wheel.sh          build, check, install into a fresh venv, smoke-test (also under
#                                  qemu-user on a CPU without AVX), and build the sdist from scratch
#                                  (scripts/test.sh runs this)
#   bash scripts/wheel.sh --quick  the same without the sdist build, and on two other CPythons only
#
# The wheel builds in target/x86_64-unknown-linux-gnu/ (zig links it), beside the development
# build's target/release/: each is incremental from one run to the next.
#
# It installs what it needs: ziglang (the linker that targets glibc 2.17), auditwheel, abi3audit and
# check-wheel-contents into .venv (scripts/setup.sh's), and Debian's qemu-user.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
quick=false
[ "${1:-}" = "--quick" ] && quick=true

OPTRS_SETUP_NO_BUILD=1 source scripts/setup.sh
tools_stamp=.venv/.release-tools
if [ ! -f "$tools_stamp" ] || ! cmp -s requirements-release.txt "$tools_stamp"; then
  echo "wheel: installing the release tools into .venv"
  .venv/bin/python -m pip install -q -r requirements-release.txt
  cp requirements-release.txt "$tools_stamp"
fi
if ! command -v qemu-x86_64 >/dev/null; then
  echo "wheel: installing Debian's qemu-user (the no-AVX smoke test)"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq qemu-user >/dev/null
fi
export PATH="$PWD/.venv/bin:$PATH"

version=$(.venv/bin/python -c "import tomllib; print(tomllib.load(open('Cargo.toml', 'rb'))['workspace']['package']['version'])")
mkdir -p dist
rm -f dist/optrs_numpy-"$version"[-.]*

# The sdist has no git checkout: it carries the revision it was cut from (rust/py/build.rs).
revision=$(git rev-parse --short=12 HEAD)
[ -n "$(git status --porcelain --untracked-files=no -- rust Cargo.toml Cargo.lock)" ] && revision+="+modified"
echo "$revision" > rust/py/GIT_REVISION
trap 'rm -f rust/py/GIT_REVISION' EXIT

echo "== wheel: build (maturin --zig, manylinux2014) =="
start=$SECONDS
maturin build --release --zig --compatibility manylinux2014 --out dist 2>&1 \
  | grep -vE "^(📦|✏️|🛠|🔗|🍹|🔍|🐍|📡|🖨)" || true
maturin sdist --out dist 2>&1 | grep -vE "^(📦|🍹)" || true
wheel=$(ls dist/optrs_numpy-"$version"-*.whl)
sdist=dist/optrs_numpy-"$version".tar.gz
echo "wheel: built $(basename "$wheel") and $(basename "$sdist") in $((SECONDS - start)) s"

echo "== wheel: checks =="
audit=$(auditwheel show "$wheel")
echo "$audit" | grep -A1 "consistent with the following platform tag"
echo "$audit" | grep '"manylinux_2_17_x86_64"' >/dev/null || { echo "$audit"; echo "wheel: auditwheel does not accept it as manylinux_2_17" >&2; exit 1; }
abi3audit --strict --report "$wheel"
check-wheel-contents "$wheel"
.venv/bin/python scripts/check_wheel.py "$wheel"
# (grep reads the whole listing: with -q it would stop early and pipefail would see tar's SIGPIPE)
tar -tzf "$sdist" | grep "/rust/py/GIT_REVISION$" >/dev/null || { echo "wheel: the sdist has no GIT_REVISION" >&2; exit 1; }

echo "== wheel: install into a fresh venv and smoke-test from outside the source tree =="
work=$(mktemp -d)
trap 'rm -f rust/py/GIT_REVISION; rm -rf "$work"' EXIT
python3 -m venv "$work/venv"
"$work/venv/bin/python" -m pip install -q --upgrade pip
"$work/venv/bin/python" -m pip install -q "$wheel[examples]"
cp scripts/wheel_smoke.py "$work/"
(cd "$work" && "$work/venv/bin/python" -I wheel_smoke.py)

# The abi3 claim, on the other CPythons this machine has (pyenv's, if any): import, build info, an
# Adam step and a conv backward on each; with --quick, the oldest and the newest only.
others=()
for py in "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.*/bin/python3; do
  [ -x "$py" ] || continue
  minor=$("$py" -c 'import sys; print(sys.version_info[1] if sys.version_info >= (3, 10) else "")' 2>/dev/null) || continue
  [ -n "$minor" ] && [ "$("$py" -c 'import sys; print(sys.version_info[:2])')" != "$(python3 -c 'import sys; print(sys.version_info[:2])')" ] \
    && others+=("$minor:$py")
done
[ ${#others[@]} -gt 0 ] && mapfile -t others < <(printf '%s\n' "${others[@]}" | sort -t: -k1,1n -u)
$quick && [ ${#others[@]} -gt 2 ] && others=("${others[0]}" "${others[-1]}")
for entry in "${others[@]}"; do
  py=${entry#*:}
  echo "== wheel: on $("$py" --version) =="
  "$py" -m venv "$work/venv-${entry%%:*}"
  "$work/venv-${entry%%:*}/bin/python" -m pip install -q "$wheel"
  (cd "$work" && "$work/venv-${entry%%:*}/bin/python" -I wheel_smoke.py --core)
done
[ ${#others[@]} -eq 0 ] && echo "wheel: no other CPython 3.10+ here (pyenv); the abi3 claim rests on abi3audit"

echo "== wheel: under qemu-user on a CPU without AVX (Nehalem: SSE4.2, no AVX) =="
# First prove that qemu traps AVX there, so that a pass below means something.
gcc -O1 -mavx -x c - -o "$work/avx_probe" <<'C'
#include <immintrin.h>
int main(int argc, char **argv) { (void)argv; __m256 a = _mm256_set1_ps((float)argc); float o[8]; _mm256_storeu_ps(o, _mm256_add_ps(a, a)); return o[0] == 2.0f ? 0 : 1; }
C
if (qemu-x86_64 -cpu Nehalem "$work/avx_probe") 2>/dev/null; then
  echo "wheel: qemu-x86_64 -cpu Nehalem ran an AVX instruction; it cannot prove the wheel avoids AVX" >&2
  exit 1
fi
echo "wheel: qemu-x86_64 -cpu Nehalem traps an AVX instruction (a probe got SIGILL), as it should"
(cd "$work" && OPTRS_SMOKE_EXPECT_SIMD=sse2 qemu-x86_64 -cpu Nehalem "$work/venv/bin/python" -I wheel_smoke.py --core \
  2> >(grep -v "TCG doesn't support requested feature" >&2))

if ! $quick; then
  echo "== wheel: the sdist builds from scratch in a clean venv =="
  python3 -m venv "$work/sdist-venv"
  "$work/sdist-venv/bin/python" -m pip install -q --upgrade pip
  start=$SECONDS
  "$work/sdist-venv/bin/python" -m pip install -q --no-cache-dir "$sdist"
  echo "wheel: the sdist built and installed in $((SECONDS - start)) s"
  (cd "$work" && "$work/sdist-venv/bin/python" -I wheel_smoke.py --core)
fi
ls -l "$wheel" "$sdist" | awk '{printf "wheel: %s %.2f MiB\n", $NF, $5 / 1048576}'
