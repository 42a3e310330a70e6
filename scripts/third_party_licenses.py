"""Writes THIRD-PARTY-LICENSES.md: the crates compiled into optrs's extension module, with their
licenses' texts as each crate ships them. The wheel carries the file (pyproject's license-files)
because the extension links these crates statically. tests/test_release.py checks that it lists
exactly the crates Cargo.lock resolves, so a dependency change without a rerun fails the tests.

    python scripts/third_party_licenses.py          # rewrite the file
    python scripts/third_party_licenses.py --check  # exit 1 if it is out of date
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "THIRD-PARTY-LICENSES.md"
OURS = {"optrs-core", "optrs-py"}
LICENSE_PREFIXES = ("license", "licence", "copying", "notice", "copyright")


def linked_packages() -> list[dict]:
    """The packages the extension's normal (not build or dev) dependency graph reaches on Linux."""
    metadata = json.loads(subprocess.run(
        ["cargo", "metadata", "--format-version", "1", "--locked", "--filter-platform", "x86_64-unknown-linux-gnu"],
        cwd=ROOT, check=True, capture_output=True, text=True).stdout)
    packages = {p["id"]: p for p in metadata["packages"]}
    nodes = {n["id"]: n for n in metadata["resolve"]["nodes"]}
    start = next(p["id"] for p in metadata["packages"] if p["name"] == "optrs-py")
    seen, todo = set(), [start]
    while todo:
        node = nodes[todo.pop()]
        for dep in node["deps"]:
            normal = any(kind["kind"] is None for kind in dep["dep_kinds"])
            if normal and dep["pkg"] not in seen:
                seen.add(dep["pkg"])
                todo.append(dep["pkg"])
    found = [packages[i] for i in seen if packages[i]["name"] not in OURS]
    return sorted(found, key=lambda p: (p["name"], p["version"]))


def license_texts(package: dict) -> list[tuple[str, str]]:
    directory = Path(package["manifest_path"]).parent
    files = sorted(f for f in directory.iterdir() if f.is_file() and f.name.lower().startswith(LICENSE_PREFIXES))
    return [(f.name, f.read_text(encoding="utf-8", errors="replace").strip()) for f in files]


def render() -> str:
    out = ["# Third-party licenses", "",
           "optrs's extension module (`optrs/_core.abi3.so`) links these Rust crates statically. Each is listed",
           "with its license expression, authors and source, and the license files it ships. A text that",
           "repeats an earlier one word for word is given once and referred to.", ""]
    first_seen: dict[str, str] = {}
    for package in linked_packages():
        name = f"{package['name']} {package['version']}"
        out += [f"## {name}", "", f"- license: {package.get('license') or package.get('license_file') or 'not stated'}"]
        if package.get("authors"):
            out.append(f"- authors: {', '.join(package['authors'])}")
        if package.get("repository"):
            out.append(f"- source: {package['repository']}")
        out.append("")
        texts = license_texts(package)
        if not texts:
            out += ["The crate ships no license file; its license is the expression above.", ""]
        for filename, text in texts:
            digest = hashlib.sha256(" ".join(text.split()).encode()).hexdigest()
            if digest in first_seen:
                out += [f"`{filename}`: the same text as {first_seen[digest]}.", ""]
                continue
            first_seen[digest] = f"{name}'s `{filename}`"
            out += [f"`{filename}`:", "", "```text", text, "```", ""]
    return "\n".join(out)


def main(argv: list[str]) -> int:
    text = render()
    if "--check" in argv:
        current = OUTPUT.read_text(encoding="utf-8") if OUTPUT.exists() else ""
        if current != text:
            print(f"{OUTPUT.name} is out of date: run python scripts/third_party_licenses.py", file=sys.stderr)
            return 1
        return 0
    OUTPUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUTPUT.relative_to(ROOT)}: {len(linked_packages())} crates")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
