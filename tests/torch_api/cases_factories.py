"""Cases for factories, dtypes, devices and module-level functions (see harness.py)."""

from __future__ import annotations

from .harness import Case

CASES: dict[str, Case] = {
    "stack_raises_on_mismatch": Case(lambda t: t.stack([t.zeros(2), t.zeros(3)]) if hasattr(t, "zeros") else
                                     t.stack([t.tensor([0.0, 0.0]), t.tensor([0.0, 0.0, 0.0])])),
}
