"""optrs bench optim (optrs.benchmarks.optim) runs, on the small sets: its table, JSON and chart.
It asserts nothing about time; the benchmark itself reports the ratios."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from optrs.benchmarks import optim as bench_optim


def test_the_mixed_set_is_transformer_like() -> None:
    shapes = bench_optim.SETS["mixed"]
    assert len(shapes) == 81
    assert 18.7e6 < sum(int(np.prod(s)) for s in shapes) < 18.9e6


def test_every_optimizer_of_optrs_has_a_spec() -> None:
    import optrs

    elementwise = {"SGD", "Adagrad", "Adam", "AdamW", "Adamax", "NAdam", "RAdam", "Adadelta", "RMSprop", "Rprop",
                   "ASGD", "Adafactor", "Lion", "ADOPT", "LAMB", "ScheduleFreeAdamW"}
    assert {s.name for s in bench_optim.SPECS} == elementwise
    assert elementwise <= set(dir(optrs.optim))


def test_a_quick_run_writes_its_table_json_and_chart(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("matplotlib")
    argv = ["--quick", "--sets", "tiny,small", "--only", "Adam,LAMB,Adafactor,ScheduleFreeAdamW", "--threads", "1",
            "--markdown", str(tmp_path / "t.md"), "--json", str(tmp_path / "r.json"), "--plot", str(tmp_path / "c.png")]
    assert bench_optim.main(argv) == 0
    out = capsys.readouterr().out
    assert out.startswith("host: cpu=")
    table = (tmp_path / "t.md").read_text()
    for name in ("Adam", "LAMB", "Adafactor", "ScheduleFreeAdamW"):
        assert f"| tiny | {name} |" in table and f"| small | {name} |" in table
    rows = json.loads((tmp_path / "r.json").read_text())["rows"]
    assert {r["impl"] for r in rows} >= {"optrs"}
    assert all(r["ns"] > 0 for r in rows)
    assert (tmp_path / "c.png").read_bytes()[:4] == b"\x89PNG"


def test_unknown_sets_and_optimizers_are_refused() -> None:
    for argv in (["--sets", "huge"], ["--only", "Adamm"]):
        with pytest.raises(SystemExit) as exit_info:
            bench_optim.main(argv)
        assert exit_info.value.code == 2


def test_the_host_line_names_the_huge_page_mode() -> None:
    from optrs.benchmarks.adam import transparent_hugepages

    assert transparent_hugepages() in {"always", "madvise", "never", "unknown"}
