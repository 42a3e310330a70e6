"""Checking optrs's torch-shaped API against torch: live when torch is importable, else against
values recorded from torch 2.13 (``tests/reference/torch_api/<cases module>.npz``, made by
``tests/reference/make_torch_api.py``).

A case is a function of the library module (``torch`` or ``optrs``) that returns what to compare:
tensors, Python scalars, bools, strings, dtypes, shapes, and tuples/lists/dicts of them. Each
result is flattened to leaves with `flatten`; two results agree when their structure, each
tensor's dtype name and shape, and the values agree (to ``rtol``/``atol`` for floats, exactly
otherwise). A case whose torch run raises is recorded as raising that exception's builtin base
class, and optrs must raise one that is an instance of it.

Cases live in the ``cases_*.py`` modules next to this one, each a dict ``CASES: {name: Case}``.
Random factories cannot match torch's values (another generator): their cases return shapes,
dtypes and statistics instead.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

RECORDED = Path(__file__).parent.parent / "reference" / "torch_api"
CASE_MODULES = ("cases_factories", "cases_tensor")


@dataclass(frozen=True)
class Case:
    run: Callable[[ModuleType], Any]
    rtol: float = 1e-6
    atol: float = 1e-7
    # exception classes torch raises that optrs may raise as a different builtin (optrs's
    # InvalidParamError is a ValueError where torch raises RuntimeError); None: any Exception.
    raises_as: tuple[type[BaseException], ...] | None = field(default=None)


def all_cases(modules: tuple[str, ...] = CASE_MODULES) -> dict[str, Case]:
    cases: dict[str, Case] = {}
    for name in modules:
        try:
            module = importlib.import_module(f"torch_api.{name}")
        except ModuleNotFoundError as e:
            if e.name != f"torch_api.{name}":
                raise
            continue
        for key, case in module.CASES.items():
            cases[f"{name}.{key}"] = case
    return cases


def _dtype_name(dtype: Any) -> str:
    return str(dtype).removeprefix("torch.")


def flatten(value: Any) -> tuple[Any, list[tuple[str, np.ndarray]]]:
    """(structure, leaves): the structure is JSON-able, each leaf a (kind, array) pair where kind
    is "tensor:<dtype>", "int", "float", "bool", "complex"."""
    leaves: list[tuple[str, np.ndarray]] = []

    def walk(v: Any) -> Any:
        if hasattr(v, "detach") and hasattr(v, "shape") and hasattr(v, "dtype"):  # a tensor of either library
            array = v.detach().numpy() if type(v).__module__.startswith("torch") else np.asarray(v.detach().data)
            leaves.append((f"tensor:{_dtype_name(v.dtype)}", np.array(array, dtype=_storable(array.dtype))))
            return {"leaf": len(leaves) - 1}
        if isinstance(v, bool | np.bool_):
            leaves.append(("bool", np.array(bool(v))))
            return {"leaf": len(leaves) - 1}
        if isinstance(v, int | np.integer):
            leaves.append(("int", np.array(int(v), np.int64)))
            return {"leaf": len(leaves) - 1}
        if isinstance(v, float | np.floating):
            leaves.append(("float", np.array(float(v), np.float64)))
            return {"leaf": len(leaves) - 1}
        if isinstance(v, str):
            return {"str": v}
        if v is None:
            return {"none": True}
        if type(v).__name__ in ("dtype", "DType") or (type(v).__module__ == "torch" and type(v).__name__ == "dtype") \
                or isinstance(v, np.dtype):
            return {"dtype": _dtype_name(v)}
        if type(v).__name__ == "device":
            return {"device": str(v)}
        if isinstance(v, dict):
            return {"dict": {str(k): walk(x) for k, x in v.items()}}
        if isinstance(v, tuple | list):  # torch.Size and namedtuples (values, indices) too
            return {"seq": [walk(x) for x in v]}
        raise TypeError(f"cannot compare a {type(v).__name__}: return tensors, numbers, strings or sequences")

    return walk(value), leaves


def _storable(dtype: np.dtype[Any]) -> Any:
    """bfloat16 (ml_dtypes) is stored as float32: np.savez cannot write it portably."""
    return np.float32 if dtype.kind == "V" or dtype.name == "bfloat16" else dtype


def outcome(case: Case, lib: ModuleType) -> tuple[str, Any, list[tuple[str, np.ndarray]]]:
    """("ok", structure, leaves) or ("raises", exception base name, [])."""
    try:
        structure, leaves = flatten(case.run(lib))
    except Exception as e:  # noqa: BLE001 - the exception is the result under test
        return "raises", _builtin_base(type(e)).__name__, []
    return "ok", structure, leaves


def _builtin_base(cls: type[BaseException]) -> type[BaseException]:
    for base in cls.__mro__:
        if base.__module__ == "builtins":
            return base
    return Exception


def assert_agree(name: str, case: Case, expected: tuple[str, Any, list[tuple[str, np.ndarray]]],
                 actual: tuple[str, Any, list[tuple[str, np.ndarray]]]) -> None:
    e_kind, e_struct, e_leaves = expected
    a_kind, a_struct, a_leaves = actual
    if e_kind == "raises":
        assert a_kind == "raises", f"{name}: torch raises {e_struct}, optrs returned {a_struct}"
        allowed = {e_struct} | {c.__name__ for c in (case.raises_as or ())}
        if case.raises_as is not None or e_struct in ("TypeError", "IndexError"):
            assert a_struct in allowed or e_struct == "Exception", \
                f"{name}: torch raises {e_struct}, optrs raises {a_struct}"
        return
    assert a_kind == "ok", f"{name}: torch returns {e_struct}, optrs raises {a_struct}"
    assert json.dumps(a_struct, sort_keys=True) == json.dumps(e_struct, sort_keys=True), \
        f"{name}: structure differs:\n torch {e_struct}\n optrs {a_struct}"
    for i, ((ek, ev), (ak, av)) in enumerate(zip(e_leaves, a_leaves, strict=True)):
        assert ak == ek, f"{name}: leaf {i} is {ak} in optrs, {ek} in torch"
        assert av.shape == ev.shape, f"{name}: leaf {i} has shape {av.shape} in optrs, {ev.shape} in torch"
        if ev.dtype.kind == "f" or av.dtype.kind == "f":
            np.testing.assert_allclose(av.astype(np.float64), ev.astype(np.float64), rtol=case.rtol, atol=case.atol,
                                       equal_nan=True, err_msg=f"{name}: leaf {i}")
        else:
            np.testing.assert_array_equal(av, ev, err_msg=f"{name}: leaf {i}")


def record(torch: ModuleType, modules: tuple[str, ...] = CASE_MODULES) -> int:
    """Runs the cases of ``modules`` under torch and writes each module's outcomes to
    ``RECORDED/<module>.npz``; returns the count."""
    RECORDED.mkdir(exist_ok=True)
    count = 0
    for module in modules:
        arrays: dict[str, np.ndarray] = {}
        index: dict[str, Any] = {}
        for name, case in all_cases((module,)).items():
            kind, struct, leaves = outcome(case, torch)
            index[name] = {"kind": kind, "structure": struct, "leaves": [k for k, _ in leaves]}
            for i, (_, array) in enumerate(leaves):
                arrays[f"{name}#{i}"] = array
        arrays["index"] = np.array(json.dumps(index, sort_keys=True))
        np.savez_compressed(RECORDED / f"{module}.npz", **arrays)
        count += len(index)
    return count


def recorded() -> dict[str, tuple[str, Any, list[tuple[str, np.ndarray]]]]:
    found: dict[str, tuple[str, Any, list[tuple[str, np.ndarray]]]] = {}
    for path in sorted(RECORDED.glob("*.npz")):
        with np.load(path, allow_pickle=False) as data:
            index = json.loads(str(data["index"]))
            found.update({name: (entry["kind"], entry["structure"],
                                 [(k, data[f"{name}#{i}"]) for i, k in enumerate(entry["leaves"])])
                          for name, entry in index.items()})
    return found


__all__ = ["Case", "all_cases", "assert_agree", "outcome", "record", "recorded", "RECORDED"]
