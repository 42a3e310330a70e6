"""optrs's torch-shaped API (factories, dtypes, devices, module-level functions, Tensor methods)
against torch 2.13: every case live when torch is importable, and against the recorded torch
values always (tests/reference/torch_api.npz), so CI checks them without torch."""

from __future__ import annotations

import pytest

import optrs

from .harness import all_cases, assert_agree, outcome, recorded

CASES = all_cases()
RECORDED = recorded()


@pytest.mark.parametrize("name", sorted(CASES))
def test_matches_recorded_torch(name: str) -> None:
    if name not in RECORDED:
        pytest.fail(f"{name} has no recorded torch value: run tests/reference/make_torch_api.py with torch")
    case = CASES[name]
    assert_agree(name, case, RECORDED[name], outcome(case, optrs))


@pytest.mark.parametrize("name", sorted(CASES))
def test_matches_live_torch(name: str) -> None:
    torch = pytest.importorskip("torch", reason="torch is optional; the recorded values are checked without it")
    case = CASES[name]
    assert_agree(name, case, outcome(case, torch), outcome(case, optrs))


def test_every_recorded_case_still_exists() -> None:
    assert not set(RECORDED) - set(CASES), "recorded cases without a definition: re-record"
