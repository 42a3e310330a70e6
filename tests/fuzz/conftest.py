"""Hypothesis profiles of the fuzz suite (tests/fuzz/README.md).

- ``fuzz`` (the default here): the budget of ``scripts/test.sh``, which runs this directory twice,
  with ``--hypothesis-seed=0`` and with a random seed it prints; about 30 s a pass on 2 cores.
  Tests take shares of its ``max_examples`` (``_fuzz_arrays.budget``); a test without its own
  settings gets all of it.
- ``fuzz-long``: 50 times as many examples, for a run of an hour or so: ``OPTRS_FUZZ_LONG=1``.

``OPTRS_FUZZ_EXAMPLES=N`` sets ``max_examples`` of either. Unlike the ``ci`` profile of
tests/conftest.py these are not derandomized: the seed decides the examples, so that two passes
explore different ones and a failure replays with ``--hypothesis-seed=<the printed seed>``.
Loading the profile here makes it the default of every test collected after this file, so run
this directory in its own pytest process, as scripts/test.sh does.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, Phase, settings

EXAMPLES = 300

_common = dict(
    deadline=None,
    derandomize=False,
    print_blob=True,
    database=None,  # each pass starts from its seed alone, as CI does
    # A failure is reported with its shrunk example; explaining it would rerun optrs's crashes.
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)
_examples = int(os.environ.get("OPTRS_FUZZ_EXAMPLES", "0"))
settings.register_profile("fuzz", max_examples=_examples or EXAMPLES, **_common)  # type: ignore[arg-type]
settings.register_profile("fuzz-long", max_examples=_examples or 50 * EXAMPLES, **_common)  # type: ignore[arg-type]
settings.load_profile("fuzz-long" if os.environ.get("OPTRS_FUZZ_LONG") == "1" else "fuzz")
