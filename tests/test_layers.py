"""The Python layers stay the right way up (import-linter's contracts in pyproject.toml check the
imports between them; `scripts/test.sh` runs `lint-imports`). These tests cover what it cannot see."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import optrs

PACKAGE = Path(optrs.__file__).parent


def _root_names(path: Path) -> list[tuple[int, str]]:
    """The names a module takes from the root package ``optrs`` (``from .. import x`` and
    ``from optrs import x``), which import-linter counts as imports of the root."""
    depth = len(path.relative_to(PACKAGE).parts) - 1
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom):
            root = (node.level == depth + 1 and node.module is None) or (node.level == 0 and node.module == "optrs")
            if root:
                found.extend((node.lineno, alias.name) for alias in node.names)
    return found


def test_core_is_the_only_non_module_name_taken_from_the_root_package() -> None:
    # A submodule (``from .. import random``) is a real import that the contracts see; any other name
    # would be an attribute of the root package, which loads every layer: only `_core` may be one.
    submodules = {p.stem for p in PACKAGE.iterdir() if p.suffix == ".py" or (p / "__init__.py").exists()}
    offenders = [f"{path.relative_to(PACKAGE)}:{line} takes {name!r} from the root package"
                 for path in sorted(PACKAGE.rglob("*.py")) if path.name != "cli.py"
                 for line, name in _root_names(path) if name not in submodules | {"_core"}]
    assert not offenders


def test_import_optrs_leaves_the_profiler_and_logging_unloaded() -> None:
    code = ("import sys, optrs; print(sorted(m for m in sys.modules if m.split('.')[:2] in "
            "(['optrs', 'profiler'], ['optrs', 'logging']) or m in ('tensorboardX', 'matplotlib')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
    assert optrs.profiler.profile and optrs.logging.SummaryWriter  # and they load on first use


def test_swa_utils_keeps_torchs_import_path() -> None:
    from optrs.optim.swa_utils import SWALR, AveragedModel, update_bn
    from optrs.utils.averaged_model import AveragedModel as Defined

    assert AveragedModel is Defined and callable(update_bn) and SWALR
