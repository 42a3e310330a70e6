"""Failure classes the fuzz suite finds on the code of this branch, left out of the main fuzz
tests while their fixes are pending on other branches (issue 10); each is still run by an
``xfail(strict=False)`` test, and tests/fuzz/KNOWN_FAILURES.md has a reproducer of each.
Delete an entry when its fix is merged: the main tests then cover it again.
"""

from __future__ import annotations

# Operation families of the optimizer machine (``_fuzz_draw.FAMILIES``) -> why they fail now.
KNOWN_FAMILIES: dict[str, str] = {
}

# Behaviours of the current code that differ from torch's and that the optimizer checks accept
# while they are listed.
KNOWN_SEMANTICS: dict[str, str] = {
}

# Substrings of kernel-case violations -> why they fail now.
KNOWN_KERNEL_FAILURES: dict[str, str] = {
}


def known_kernel_failure(message: str) -> str | None:
    return next((why for key, why in KNOWN_KERNEL_FAILURES.items() if key in message), None)
