"""torch.autograd.profiler's legacy ``profile`` at its torch path, and dropout2d's feature dropout
on inputs of any rank >= 2 as torch 2.13 does it (the seed article's CNN drops its 2-D fc1 output)."""

from __future__ import annotations

import sys
import warnings

import numpy as np
import pytest

import optrs
import optrs.nn as nn
import optrs.nn.functional as F


def test_legacy_profile_at_torchs_path_warns_for_cuda_and_records_the_cpu() -> None:
    import optrs.autograd.profiler as profiler

    layer = nn.Linear(4, 2, dtype=np.float32)
    x = optrs.Tensor(np.ones((3, 4), np.float32))
    with pytest.warns(UserWarning, match="CUDA is not available"), profiler.profile(use_cuda=True) as prof:
        layer(x).sum().backward()
    assert "Linear" in prof.key_averages().table()
    with profiler.profile(enabled=False) as off:
        layer(x)
    assert len(off.events()) == 0
    with pytest.raises(optrs.InvalidHyperparameterError, match="use_kinetoo"):
        profiler.profile(use_kinetoo=True)


def test_the_alias_module_is_not_loaded_by_autograd() -> None:
    import subprocess

    code = "import sys, optrs.autograd; print('optrs.profiler' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"


@pytest.mark.parametrize("shape", [(4, 6), (2, 3, 5), (2, 3, 4, 4), (2, 3, 2, 2, 2)])
def test_dropout2d_keeps_or_drops_each_n_c_slice_whole(shape: tuple[int, ...]) -> None:
    x = optrs.Tensor(np.ones(shape, np.float64))
    optrs.manual_seed(1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        y = F.dropout2d(x, 0.5).data
    flat = y.reshape(shape[0], shape[1], -1)
    assert np.all((flat == 0).all(axis=2) | (flat == 2).all(axis=2))
    assert 0 < (flat == 0).mean() < 1


def test_dropout2d_warns_as_torch_for_other_ranks_and_refuses_below_two() -> None:
    with pytest.warns(UserWarning, match="Received a 2-D input to dropout2d"):
        F.dropout2d(optrs.Tensor(np.ones((2, 3))), 0.5)
    with pytest.warns(UserWarning, match="interpreted as shape \\(N, C, L\\)"):
        F.dropout2d(optrs.Tensor(np.ones((2, 3, 4))), 0.5)
    with pytest.raises(optrs.InvalidParamError, match="at least 2 dimensions"):
        F.dropout2d(optrs.Tensor(np.ones(3)), 0.5)
