"""The seed articles' code runs on optrs with only its imports changed (tests/seed_snippets/)."""

from __future__ import annotations

import re
import runpy
from pathlib import Path

import pytest

import optrs

SNIPPETS = Path(__file__).parent / "seed_snippets"
SEEDS = Path(__file__).resolve().parents[2] / "shared" / "seeds"
IMPORT = re.compile(r"^\s*(import |from \S+ import )")


def _code_lines(text: str) -> list[str]:
    return [line.rstrip() for line in text.splitlines() if line.strip() and not IMPORT.match(line)]


def _article_lines() -> list[str]:
    blocks = []
    for path in sorted(SEEDS.glob("*.txt")):
        blocks += re.findall(r"```python\n(.*?)```", path.read_text(encoding="utf-8"), re.S)
    return _code_lines("\n".join(blocks))


def _run(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> str:
    monkeypatch.chdir(tmp_path)  # SummaryWriter() writes ./runs, as in the article
    optrs.manual_seed(0)
    with pytest.warns(UserWarning):  # dropout2d on the 2-D fc1 output warns, as torch's does
        runpy.run_path(str(SNIPPETS / f"{name}.py"), run_name="__main__")
    return capsys.readouterr().out


def _losses(out: str) -> list[float]:
    return [float(m) for m in re.findall(r"^Epoch: \d+ loss: (\S+)$", out, re.M)]


@pytest.mark.parametrize("name", ["sgd_loop", "tensorboard"])
def test_training_loop_runs_and_learns(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    losses = _losses(_run(name, tmp_path, monkeypatch, capsys))
    assert len(losses) == 10
    assert losses[-1] < losses[0]  # one image, one class: SGD with momentum drives its loss down
    if name == "tensorboard":
        assert list((tmp_path / "runs").glob("*/events.out.tfevents.*"))


def test_profiler_snippet_prints_the_table(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    out = _run("profiler", tmp_path, monkeypatch, capsys)
    assert "Self CPU" in out and "Conv2d" in out and "Optimizer.step#SGD.step" in out


@pytest.mark.skipif(not SEEDS.is_dir(), reason="the seed articles (../shared/seeds) are not on this machine")
@pytest.mark.parametrize("name", ["sgd_loop", "tensorboard", "profiler"])
def test_snippet_is_the_articles_code_but_for_imports_and_mends(name: str) -> None:
    article = iter(_article_lines())
    ours = [line for line in _code_lines((SNIPPETS / f"{name}.py").read_text()) if "# mended:" not in line]
    missing = [line for line in ours if not any(line == theirs for theirs in article)]  # in order
    assert not missing, f"{name}.py lines not in the article (in its order): {missing}"
