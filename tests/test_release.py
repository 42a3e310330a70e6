"""Release hygiene (issue 12): one version source, the build information `optrs info` prints, the
OPTRS_SIMD switch, the metadata pyproject gives the wheel, the third-party license file, and the
wheel checker itself. scripts/wheel.sh builds and smoke-tests the real wheel; scripts/test.sh runs it."""

from __future__ import annotations

import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import optrs

tomllib = pytest.importorskip("tomllib", reason="reading pyproject.toml and Cargo.toml needs Python 3.11's tomllib")

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
import check_wheel  # noqa: E402


def pyproject() -> dict:
    with open(ROOT / "pyproject.toml", "rb") as f:
        return tomllib.load(f)


def cargo_version() -> str:
    with open(ROOT / "Cargo.toml", "rb") as f:
        return str(tomllib.load(f)["workspace"]["package"]["version"])


def test_the_version_has_one_source_the_cargo_workspace() -> None:
    assert "version" in pyproject()["project"]["dynamic"]
    assert optrs.__version__ == cargo_version() == importlib.metadata.version("optrs-numpy")
    for manifest in ("rust/core/Cargo.toml", "rust/py/Cargo.toml"):
        with open(ROOT / manifest, "rb") as f:
            assert tomllib.load(f)["package"]["version"] == {"workspace": True}, manifest


def test_build_info_names_the_revision_compiler_and_baseline_features() -> None:
    info = dict(optrs._core.build_info())
    assert set(info) == {"version", "git_revision", "rustc", "profile", "target", "target_features",
                         "rustflags", "simd_dispatch"}
    assert info["version"] == optrs.__version__
    assert info["rustc"].startswith("rustc ")
    head = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    if head.returncode == 0:  # a checkout: the extension was built from it (scripts/setup.sh)
        assert re.fullmatch(r"[0-9a-f]{12}(\+modified)?", info["git_revision"]), info["git_revision"]
    if info["target"].startswith("x86_64"):
        # The wheel must run on any x86-64: wider SIMD is dispatched at run time, never compiled in.
        assert "sse2" in info["target_features"].split()
        assert not {"avx", "avx2", "avx512f", "fma"} & set(info["target_features"].split())
        assert "target-cpu" not in info["rustflags"]


def run_python(code: str, simd: str | None) -> subprocess.CompletedProcess[str]:
    env = {name: value for name, value in os.environ.items() if name != "OPTRS_SIMD"}
    if simd is not None:
        env["OPTRS_SIMD"] = simd
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)


PRINT_LEVEL = "import optrs; print(optrs.simd_level())"


def test_optrs_simd_lowers_the_level_for_the_whole_process() -> None:
    result = run_python(PRINT_LEVEL, "baseline")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() in ("sse2", "neon", "scalar")


def test_restoring_the_level_returns_to_optrs_simd_not_detection() -> None:
    # The baseline test run relies on this: tests that compare levels restore with None afterwards.
    code = """
import optrs
for level in ("avx2", "avx512", "baseline"):
    try:
        optrs._core.force_simd_level(level)
    except ValueError:
        pass  # a level this CPU lacks
optrs._core.force_simd_level(None)
print(optrs.simd_level())
"""
    result = run_python(code, "baseline")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() in ("sse2", "neon", "scalar")


@pytest.mark.parametrize("value", ["avx9", "fast", "\u00e9"])
def test_a_bad_optrs_simd_warns_and_keeps_detection(value: str) -> None:
    detected = run_python(PRINT_LEVEL, None).stdout.strip()
    result = run_python(PRINT_LEVEL, value)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == detected
    assert "RuntimeWarning" in result.stderr and "OPTRS_SIMD" in result.stderr
    assert "use baseline, avx2 or avx512" in result.stderr


def test_the_all_extra_installs_every_optional_feature() -> None:
    extras = pyproject()["project"]["optional-dependencies"]
    features = sorted(set(extras) - {"all", "test"})
    assert extras["all"] == [f"optrs-numpy[{','.join(features)}]"]


def test_metadata_names_licenses_urls_and_classifiers() -> None:
    project = pyproject()["project"]
    assert project["name"] == "optrs-numpy"
    assert project["license"] == "MIT OR Apache-2.0"
    for license_file in project["license-files"]:
        assert (ROOT / license_file).is_file(), license_file
    assert project["urls"]
    assert "Typing :: Typed" in project["classifiers"]
    assert not any(c.startswith("License ::") for c in project["classifiers"])  # PEP 639: the expression says it


def test_the_changelog_has_the_current_version() -> None:
    text = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    assert re.search(rf"^## {re.escape(cargo_version())}\b", text, re.MULTILINE)


@pytest.mark.skipif(shutil.which("cargo") is None, reason="cargo lists the linked crates; this machine has none")
def test_third_party_licenses_list_the_crates_cargo_lock_links() -> None:
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "third_party_licenses.py"), "--check"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def make_wheel(path: Path, files: dict[str, str], version: str | None = None) -> Path:
    version = version or cargo_version()
    dist_info = f"optrs_numpy-{version}.dist-info"
    metadata = "\n".join([
        "Metadata-Version: 2.4", "Name: optrs-numpy", f"Version: {version}",
        "Provides-Extra: all", "Provides-Extra: examples", "Provides-Extra: tensorboard",
        "Project-URL: Homepage, https://pypi.org/project/optrs-numpy/", ""])
    with zipfile.ZipFile(path, "w") as wheel:
        for name, text in files.items():
            wheel.writestr(name, text)
        wheel.writestr(f"{dist_info}/METADATA", metadata)
        for license_file in check_wheel.LICENSES:
            wheel.writestr(f"{dist_info}/licenses/{license_file}", "text")
    return path


def complete_files() -> dict[str, str]:
    return {**{name: "x" for name in check_wheel.REQUIRED}, "optrs/_core.abi3.so": "elf"}


def test_the_wheel_checker_accepts_a_complete_wheel(tmp_path: Path) -> None:
    assert check_wheel.problems(make_wheel(tmp_path / "ok.whl", complete_files())) == []


@pytest.mark.parametrize("stray", ["tests/test_x.py", "optrs/reference/a.npz", "optrs/__pycache__/x.pyc",
                                   "conftest.py"])
def test_the_wheel_checker_finds_stray_files(tmp_path: Path, stray: str) -> None:
    wheel = make_wheel(tmp_path / "stray.whl", {**complete_files(), stray: "x"})
    assert any(stray in problem for problem in check_wheel.problems(wheel))


@pytest.mark.parametrize("missing", ["optrs/py.typed", "optrs/_core.pyi", "optrs/benchmarks/yardsticks/stream.c"])
def test_the_wheel_checker_finds_missing_files(tmp_path: Path, missing: str) -> None:
    files = complete_files()
    del files[missing]
    assert any(missing in problem for problem in check_wheel.problems(make_wheel(tmp_path / "m.whl", files)))


def test_the_wheel_checker_finds_a_wrong_version(tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path / "v.whl", complete_files(), version="9.9.9")
    assert any("Cargo workspace" in problem for problem in check_wheel.problems(wheel))
