"""Anomaly mode (``optrs.autograd.detect_anomaly``) and ``optrs.utils.check_finite``."""

from __future__ import annotations

import inspect
import sys
import warnings

import numpy as np
import pytest

import optrs
import optrs.nn as nn
from optrs.autograd import detect_anomaly, is_anomaly_check_nan_enabled, is_anomaly_enabled, set_detect_anomaly
from optrs.utils import check_finite

pytestmark = pytest.mark.filterwarnings("ignore:.*encountered in:RuntimeWarning")


def _line_of(marker: str) -> str:
    """``File "...test_anomaly.py", line N`` for the line of this file that holds ``marker``."""
    lines = inspect.getsource(sys.modules[__name__]).splitlines()
    number = next(i for i, line in enumerate(lines, 1) if marker in line and "_line_of" not in line)
    return f'File "{__file__}", line {number}'


def test_forward_nan_names_the_op_output_and_line() -> None:
    x = optrs.tensor(np.array([1.0, -1.0]), requires_grad=True)
    with detect_anomaly(), pytest.raises(optrs.AnomalyError) as caught:
        x.log()  # forward-nan-here
    message = str(caught.value)
    assert message.startswith("Function 'Log' returned nan values in its 0th output (forward pass).")
    assert _line_of("# forward-nan-here") in message
    assert "x.log()" in message
    assert isinstance(caught.value, RuntimeError)


def test_forward_inf_under_no_grad_and_second_output() -> None:
    x = optrs.tensor(np.array([[0.0, 2.0], [np.inf, 1.0]]))
    with detect_anomaly(), pytest.raises(optrs.AnomalyError, match=r"'ExtremeAlong' returned inf values in its 0th"):
        x.max(dim=1)
    with detect_anomaly(), optrs.no_grad(), pytest.raises(optrs.AnomalyError, match=r"'Div' returned inf values"):
        optrs.tensor(np.array([1.0])) / 0.0


def test_backward_inf_names_the_backward_and_forward_line() -> None:
    x = optrs.tensor(np.array([0.0, 4.0]), requires_grad=True)
    with detect_anomaly():
        y = x.sqrt()  # sqrt-created-here
        loss = (y * 3.0).sum()
        with pytest.raises(optrs.AnomalyError) as caught:
            loss.backward()
    message = str(caught.value)
    assert message.startswith("Function 'SqrtBackward' returned inf values in its 0th output.")
    assert _line_of("# sqrt-created-here") in message
    assert "Traceback of the forward call that created the op" in message
    assert x.grad is None


def test_backward_nan_zero_over_zero() -> None:
    x = optrs.tensor(np.array([0.0, 1.0]), requires_grad=True)
    with detect_anomaly():
        loss = (x.sqrt() * 0.0).sum()  # sqrt(0) is finite; its backward is 0 / (2 * 0)
        with pytest.raises(optrs.AnomalyError, match=r"^Function 'SqrtBackward' returned nan values in its 0th"):
            loss.backward()


def test_nan_from_a_custom_function_backward() -> None:
    class Bad(optrs.autograd.Function):
        def forward(self, x: np.ndarray) -> np.ndarray:
            return x * 2

        def backward(self, grad: np.ndarray) -> np.ndarray:
            return grad * np.nan

    x = optrs.tensor(np.ones(3), requires_grad=True)
    with detect_anomaly():
        y = Bad.apply(x).sum()  # bad-created-here
        with pytest.raises(optrs.AnomalyError) as caught:
            y.backward()
    assert str(caught.value).startswith("Function 'BadBackward' returned nan values in its 0th output.")
    assert _line_of("# bad-created-here") in str(caught.value)


def test_nothing_raised_outside_the_context() -> None:
    assert not is_anomaly_enabled()
    x = optrs.tensor(np.array([1.0, -1.0, 0.0]), requires_grad=True)
    y = x.log()
    assert np.isnan(y.data[1])
    y.sum().backward()
    assert x.grad is not None and np.isinf(x.grad[2])
    with detect_anomaly():
        assert is_anomaly_enabled()
    assert not is_anomaly_enabled()


def test_graph_built_outside_is_checked_inside_without_trace() -> None:
    x = optrs.tensor(np.array([0.0]), requires_grad=True)
    y = x.sqrt().sum()
    with detect_anomaly(), pytest.raises(optrs.AnomalyError, match="created while anomaly mode was off"):
        y.backward()


def test_check_nan_false_and_set_detect_anomaly() -> None:
    x = optrs.tensor(np.array([-1.0]), requires_grad=True)
    with detect_anomaly(check_nan=False):
        assert is_anomaly_enabled() and not is_anomaly_check_nan_enabled()
        x.log().sum().backward()
    assert is_anomaly_check_nan_enabled()
    set_detect_anomaly(True)
    try:
        assert is_anomaly_enabled()
        with pytest.raises(optrs.AnomalyError):
            x.log()
    finally:
        set_detect_anomaly(False)
    assert not is_anomaly_enabled()
    with set_detect_anomaly(True):
        assert is_anomaly_enabled()
    assert not is_anomaly_enabled()

    @detect_anomaly()
    def decorated() -> bool:
        return is_anomaly_enabled()

    assert decorated() and not is_anomaly_enabled()


def test_backward_error_carries_the_forward_stack() -> None:
    class Broken(optrs.autograd.Function):
        def forward(self, x: np.ndarray) -> np.ndarray:
            return x.copy()

        def backward(self, grad: np.ndarray) -> np.ndarray:
            raise ValueError("broken backward")

    x = optrs.tensor(np.ones(2), requires_grad=True)
    with detect_anomaly(check_nan=False):
        y = Broken.apply(x).sum()  # broken-created-here
        with warnings.catch_warnings(record=True) as caught, pytest.raises(ValueError, match="broken") as raised:
            warnings.simplefilter("always")
            y.backward()
    notes = "".join(getattr(raised.value, "__notes__", [])) + "".join(str(w.message) for w in caught)
    assert "Error detected in BrokenBackward" in notes and _line_of("# broken-created-here") in notes


def test_model_training_is_unchanged_by_anomaly_mode() -> None:
    def train(anomaly: bool) -> list[np.ndarray]:
        optrs.manual_seed(3)
        model = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 2))
        opt = optrs.optim.Adam(model.parameters(), lr=1e-2)
        data = np.random.default_rng(0).normal(size=(16, 4)).astype(np.float32)
        for _ in range(3):
            opt.zero_grad()
            with set_detect_anomaly(anomaly):
                loss = (model(optrs.tensor(data)) ** 2).mean()
                loss.backward()
            opt.step()
        return [p.data.copy() for p in model.parameters()]

    for plain, checked in zip(train(False), train(True)):
        np.testing.assert_array_equal(plain, checked)


def test_check_finite_module_names_and_grads() -> None:
    model = nn.Sequential(nn.Linear(3, 2), nn.Linear(2, 1))
    assert check_finite(model) == {}
    model[0].weight.data[0, 0] = np.nan
    model[1].bias.grad = np.array([np.inf])
    found = check_finite(model, raise_error=False)
    assert found == {"0.weight": ["data"], "1.bias": ["grad"]}
    with pytest.raises(optrs.AnomalyError) as caught:
        check_finite(model.parameters())
    message = str(caught.value)
    assert "2 of 4 parameters" in message and "0 (data: nan)" in message and "3 (grad: inf)" in message
    assert check_finite(model.state_dict(), raise_error=False) == {"0.weight": ["data"]}


def test_check_finite_arrays_dtypes_and_bad_input() -> None:
    arrays = [np.ones(5, np.float32), None, np.array([1.0, -np.inf]), np.arange(4), np.array([], np.float64),
              np.array(np.nan, np.float32), np.full(3, 1e200), np.ones((4, 4))[:, ::2]]
    assert check_finite(arrays, raise_error=False) == {2: ["data"], 5: ["data"]}
    big = np.full(1000, 1e300)  # the sum of squares overflows: the element-wise look clears it
    assert check_finite([big]) == {}
    assert check_finite(np.array([np.nan, np.inf]), raise_error=False) == {0: ["data"]}
    with pytest.raises(optrs.ParamDTypeError):
        check_finite(3.0)
    with pytest.raises(optrs.ParamDTypeError):
        check_finite(["x"])


def test_anomaly_mode_and_the_profiler_work_together() -> None:
    x = optrs.Tensor(np.array([0.0, 4.0]), requires_grad=True)
    with optrs.profiler.profile() as prof, detect_anomaly():
        y = x.sqrt().sum()
        with pytest.raises(optrs.AnomalyError, match="SqrtBackward"):
            y.backward()
    names = {e.key for e in prof.key_averages()}
    assert "Sqrt" in names and "SqrtBackward" in names
