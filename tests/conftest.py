"""Test-wide settings: Hypothesis explores new examples on every local run, but CI replays a
fixed sequence so that a submission's result does not depend on luck."""

import os

from hypothesis import settings

settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")
