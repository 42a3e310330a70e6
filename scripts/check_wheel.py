"""Checks a built wheel's contents and metadata (scripts/wheel.sh runs it after auditwheel,
abi3audit and check-wheel-contents): the files an installed optrs needs are in it, nothing of the
source tree's tests or reference data is, the version is the Cargo workspace's, and it is small.

    python scripts/check_wheel.py dist/optrs_numpy-<version>-cp310-abi3-<platform>.whl
"""

from __future__ import annotations

import re
import sys
import zipfile
from email.parser import Parser
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parent.parent
MAX_BYTES = 5 * 1024 * 1024  # the wheel stays under 5 MB, the GPU backend included
REQUIRED = [
    "optrs/__init__.py",
    "optrs/py.typed",
    "optrs/_core.pyi",
    "optrs/benchmarks/yardsticks/ref_adam.c",
    "optrs/benchmarks/yardsticks/stream.c",
]
FORBIDDEN = re.compile(r"(^|/)(tests?|__pycache__)/|\.(npz|pyc|pt|optrs)$|(^|/)conftest\.py$")
LICENSES = ["LICENSE-MIT", "LICENSE-APACHE", "THIRD-PARTY-LICENSES.md"]


def cargo_version() -> str:
    with open(ROOT / "Cargo.toml", "rb") as f:
        return str(tomllib.load(f)["workspace"]["package"]["version"])


def problems(wheel: Path) -> list[str]:
    found: list[str] = []
    names = zipfile.ZipFile(wheel).namelist()
    dist_info = next(n.split("/")[0] for n in names if n.split("/")[0].endswith(".dist-info"))
    for required in REQUIRED:
        if required not in names:
            found.append(f"missing {required}")
    if not any(re.fullmatch(r"optrs/_core\.abi3\.so", n) for n in names):
        found.append("missing the extension optrs/_core.abi3.so")
    for name in names:
        if FORBIDDEN.search(name):
            found.append(f"stray file {name} (tests, reference data and caches stay out of the wheel)")
    for license_file in LICENSES:
        if f"{dist_info}/licenses/{license_file}" not in names:
            found.append(f"missing {dist_info}/licenses/{license_file}")
    metadata = Parser().parsestr(zipfile.ZipFile(wheel).read(f"{dist_info}/METADATA").decode())
    if metadata["Name"] != "optrs-numpy":
        found.append(f"distribution name is {metadata['Name']!r}, not 'optrs-numpy'")
    if metadata["Version"] != cargo_version():
        found.append(f"wheel version {metadata['Version']} is not the Cargo workspace's {cargo_version()}")
    extras = metadata.get_all("Provides-Extra") or []
    for extra in ("all", "examples", "tensorboard"):
        if extra not in extras:
            found.append(f"no {extra!r} extra")
    if not metadata.get_all("Project-URL"):
        found.append("no project URLs")
    size = wheel.stat().st_size
    if size > MAX_BYTES:
        found.append(f"{size / 2**20:.2f} MiB is over the {MAX_BYTES / 2**20:.0f} MiB budget")
    return found


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    wheel = Path(argv[0])
    found = problems(wheel)
    for problem in found:
        print(f"check_wheel: {wheel.name}: {problem}", file=sys.stderr)
    if not found:
        print(f"check_wheel: {wheel.name}: contents and metadata fine, {wheel.stat().st_size / 2**20:.2f} MiB")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
