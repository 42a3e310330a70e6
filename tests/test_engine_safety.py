"""The engines hold what they point at (issue 10): Python changing a param, a state array or a
group's params list between steps never makes a step read or write memory it should not, and
each change either takes effect as in torch or fails with an error naming the array, before
anything is written. Every optimizer of ``optrs.optim`` is covered where the case applies."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import warnings
from typing import Any

import numpy as np
import pytest

import optrs
from optrs import InvalidHyperparameterError, InvalidParamError, OptrsError, ParamDTypeError
from optrs.optim import LBFGS, Muon, Optimizer, ScheduleFreeAdamW

OPTIONS: dict[str, dict[str, Any]] = {
    "SGD": dict(lr=0.1, momentum=0.9),
    "Adam": dict(lr=0.1),
    "AdamW": dict(lr=0.1, amsgrad=True),
    "Adagrad": dict(lr=0.1),
    "Adadelta": dict(lr=0.5),
    "RMSprop": dict(lr=0.01, momentum=0.5, centered=True),
    "Adamax": dict(lr=0.1),
    "NAdam": dict(lr=0.1),
    "RAdam": dict(lr=0.1),
    "Rprop": dict(lr=0.1),
    "ASGD": dict(lr=0.1),
    "Lion": dict(lr=0.1),
    "ADOPT": dict(lr=0.1),
    "LAMB": dict(lr=0.1),
    "ScheduleFreeAdamW": dict(lr=0.1),
    "Muon": dict(lr=0.02),
    "Adafactor": dict(lr=0.05),
}
GRADIENT_STEPPED = list(OPTIONS)  # every optimizer but LBFGS, which steps from a closure
SHAPES = [(3, 4), (5, 2), (2, 6)]  # 2-D, for Muon


def make(name: str, dtype: Any = np.float32, seed: int = 0) -> tuple[Optimizer, list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    params = [rng.standard_normal(s).astype(dtype) for s in SHAPES]
    opt = getattr(optrs.optim, name)(params, **OPTIONS[name])
    if isinstance(opt, ScheduleFreeAdamW):
        opt.train()
    return opt, params


def grads_for(params: list[np.ndarray], seed: int = 1) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(p.shape).astype(p.dtype) for p in params]


def snapshot(opt: Optimizer, params: list[np.ndarray]) -> list[bytes]:
    """The bytes of every param and every state array (through the optimizer's own views)."""
    state = [np.asarray(v).tobytes() for p in opt.state for v in opt.state[p].values()]
    return [p.tobytes() for p in params] + state


# -- 1. use after free ----------------------------------------------------------------------------

USE_AFTER_FREE = """
import numpy as np, optrs
big, small = {big}, {small}
p = np.zeros(big, np.float32)
opt = optrs.optim.{name}([p], **{options})
if hasattr(opt, "train"):
    opt.train()
p.resize(small, refcheck=False)
junk = [np.full(big, 3.0, np.float32) for _ in range(4)]
try:
    opt.step([np.ones(small, np.float32)])
except optrs.OptrsError as error:
    print("refused:", error)
"""


@pytest.mark.parametrize("name", GRADIENT_STEPPED)
def test_a_resized_param_is_refused_not_freed_memory(name: str) -> None:
    """Defect 1: a param resized with refcheck=False frees the buffer the engine registered. Run
    in a subprocess, so a crash fails this test instead of killing pytest."""
    big, small = ((1024, 1024), (4, 4)) if name == "Muon" else ((1 << 20,), (16,))
    script = USE_AFTER_FREE.format(big=big, small=small, name=name, options=OPTIONS[name])
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(script)], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, f"crashed ({done.returncode}): {done.stderr[-2000:]}"
    assert "refused:" in done.stdout and "param_groups[0]['params'][0]" in done.stdout, done.stdout


@pytest.mark.parametrize("name", GRADIENT_STEPPED)
def test_a_resized_state_base_is_refused(name: str) -> None:
    """The state views share a flat buffer reachable as ``view.base``; resizing it must be caught."""
    opt, params = make(name)
    opt.step(grads_for(params))
    views = [v for v in opt.state[params[0]].values() if isinstance(v, np.ndarray) and v.base is not None]
    views = [v for v in views if v.ndim > 0] or views
    if not views:
        pytest.skip(f"{name} keeps no state arrays")
    views[0].base.resize(0, refcheck=False)
    with pytest.raises(OptrsError, match=r"param_groups\[0\]\['params'\]\[0\]"):
        opt.step(grads_for(params))


RESIZED_THEN = """
import numpy as np, optrs
p = np.zeros(64, np.float32)
opt = optrs.optim.{name}([p], lr=0.1)
opt.step([np.ones(64, np.float32)])
base = opt.state[p]["step"].base
{then}
try:
    {call}
except optrs.OptrsError as error:
    print("refused:", error)
"""
# Each resizes the step counters' base (refcheck=False frees the buffer the counters are views
# of) at a moment the engine used to read the counters without having checked that base first.
RESIZES = {
    # the options now need other state, so the engine reads the counters to decide on a relayout
    "options changed": ("base.resize(1 << 20, refcheck=False); opt.param_groups[0]['{option}'] = {value}",
                        "opt.step([np.ones(64, np.float32)])"),
    # reading an option runs Python code, after the bases were checked
    "in an option's __float__": ("""
class Lr:
    def __float__(self):
        base.resize(1 << 20, refcheck=False)
        return 0.1
opt.param_groups[0]['lr'] = Lr()""", "opt.step([np.ones(64, np.float32)])"),
    # collecting the grads runs Python code too
    "while the grads are iterated": ("""
def grads():
    base.resize(1 << 20, refcheck=False)
    yield np.ones(64, np.float32)""", "opt._engine.step(grads(), opt.param_groups)"),
    # a new group's arrays are compared with the held arrays' memory
    "before add_param_group": ("base.resize(1 << 20, refcheck=False)",
                               "opt.add_param_group({'params': [np.zeros(8, np.float32)]})"),
}


@pytest.mark.parametrize("how", list(RESIZES))
@pytest.mark.parametrize("name, option, value", [("Adam", "amsgrad", True), ("AdamW", "amsgrad", True),
                                                 ("RMSprop", "centered", True),
                                                 ("RMSprop", "momentum", 0.9)])
def test_a_resized_step_counter_base_is_refused_before_a_counter_is_read(name: str, option: str, value: Any,
                                                                         how: str) -> None:
    """Found by the fuzz tests (seed 113229253): the counters were read to decide on a state
    relayout before their base was checked. Run in a subprocess, so a crash fails the test."""
    then, call = RESIZES[how]
    script = RESIZED_THEN.format(name=name, then=then.format(option=option, value=value), call=call)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"crashed ({done.returncode}): {done.stderr[-2000:]}"
    assert "refused:" in done.stdout and "memory is no longer held" in done.stdout, done.stdout + done.stderr


# -- 2. out-of-bounds read ------------------------------------------------------------------------


@pytest.mark.parametrize("name", GRADIENT_STEPPED)
def test_a_retyped_param_is_refused_and_grads_are_checked_against_the_registration(name: str) -> None:
    """Defect 2: after ``p.dtype = np.float64`` the param looks half as long; a grad of that
    length must not be read for the registered length."""
    opt, params = make(name)
    opt.step(grads_for(params))
    last = params[-1]
    last.dtype = np.float64  # (2, 6) float32 -> (2, 3) float64, same bytes
    holder = np.full(2 * last.size * 2, 7.0, np.float32)
    grads: list[Any] = grads_for(params)
    grads[-1] = holder[:last.size * 2].reshape(last.shape[0], -1)[:, :last.shape[1]]  # not the registered shape
    before = snapshot(opt, params)
    with pytest.raises(OptrsError, match=r"param_groups\[0\]\['params'\]\[2\]"):
        opt.step(grads)
    assert snapshot(opt, params) == before


def test_grad_shape_is_the_registered_one_on_the_issue_reproducer() -> None:
    p = np.zeros(1024, np.float32)
    opt = optrs.optim.SGD([p], lr=1.0)
    p.dtype = np.float64
    g = np.full(1024, 7.0, np.float32)[:512]
    g[:] = 1
    with pytest.raises(InvalidParamError, match="dtype is now float64, it was float32"):
        opt.step([g])
    p.dtype = np.float32
    with pytest.raises(InvalidParamError, match=r"has shape \(512,\) but the param has shape \(1024,\)"):
        opt.step([g])
    assert not p.any()


@pytest.mark.parametrize("change", ["read-only", "reshaped", "non-contiguous"])
@pytest.mark.parametrize("name", GRADIENT_STEPPED)
def test_a_param_changed_between_steps_is_refused_with_nothing_half_updated(name: str, change: str) -> None:
    opt, params = make(name)
    opt.step(grads_for(params))
    last = params[-1]
    grads = grads_for(params, seed=2)
    if change == "read-only":
        last.setflags(write=False)
    elif change == "reshaped":
        last.shape = (6, 2)
        grads[-1] = grads[-1].reshape(6, 2)
    else:
        with warnings.catch_warnings():  # NumPy 2.4 deprecates this, and still allows it
            warnings.simplefilter("ignore", DeprecationWarning)
            last.strides = (4, 8)  # the same 12 elements, interleaved
    before = snapshot(opt, params)
    with pytest.raises(OptrsError, match=r"param_groups\[0\]\['params'\]\[2\]") as info:
        opt.step(grads)
    assert snapshot(opt, params) == before
    if change == "read-only":
        assert "read-only" in str(info.value)
        last.setflags(write=True)
        opt.step(grads_for(params, seed=2))  # undone: steps again


# -- 3. params list edits -------------------------------------------------------------------------


def twin_steps(name: str, start: np.ndarray, grads: list[np.ndarray]) -> np.ndarray:
    """``start`` after a fresh optimizer's steps with ``grads``."""
    p = start.copy()
    opt = getattr(optrs.optim, name)([p], **OPTIONS[name])
    if isinstance(opt, ScheduleFreeAdamW):
        opt.train()
    for g in grads:
        opt.step([g])
    return p


@pytest.mark.parametrize("name", GRADIENT_STEPPED)
def test_a_params_list_edit_steps_what_the_list_holds(name: str) -> None:
    """Defect 3: pop a param and append another; as in torch, the step moves the new one (with
    fresh state) and not the removed one, and a param that stays keeps its state."""
    _, (a, b, c) = make(name)
    opt = getattr(optrs.optim, name)([a, b], **OPTIONS[name])
    if isinstance(opt, ScheduleFreeAdamW):
        opt.train()
    start_b, start_c = b.copy(), c.copy()
    g1 = grads_for([a, b])
    opt.step(g1)
    after_first_a = a.copy()
    listed = opt.param_groups[0]["params"]
    listed.pop(0)
    listed.append(c)
    g2 = grads_for([b, c], seed=3)
    opt.step(g2)
    assert a.tobytes() == after_first_a.tobytes()
    assert c.tobytes() != start_c.tobytes() or name == "ADOPT"  # ADOPT's first step only fills its state
    if name != "ScheduleFreeAdamW":  # its schedule lives in the group: a fresh twin differs
        assert b.tobytes() == twin_steps(name, start_b, [g1[1], g2[0]]).tobytes()
        assert c.tobytes() == twin_steps(name, start_c, [g2[1]]).tobytes()
    # torch keeps the removed param's state in opt.state; a state_dict cannot index it.
    assert a in opt.state and [id(p) for p in opt.state] == [id(b), id(c), id(a)]
    with pytest.raises(InvalidParamError, match="removed from the param groups"):
        opt.state_dict()
    del opt.state[a]
    saved = opt.state_dict()
    assert saved["param_groups"][0]["params"] == [0, 1] and set(saved["state"]) == {0, 1}
    # Its state dropped, a param listed again starts afresh.
    listed.append(a)
    g3 = grads_for([b, c, a], seed=4)
    opt.step(g3)
    if name != "ScheduleFreeAdamW":
        assert a.tobytes() == twin_steps(name, after_first_a, [g3[2]]).tobytes()


@pytest.mark.parametrize("name", GRADIENT_STEPPED)
def test_a_removed_param_gets_its_state_back_when_listed_again(name: str) -> None:
    opt, (a, b, c) = make(name)
    opt.step(grads_for([a, b, c]))
    kept = {k: np.array(v) for k, v in opt.state[a].items()}
    opt.param_groups[0]["params"].remove(a)
    opt.step(grads_for([b, c]))
    opt.param_groups[0]["params"].insert(0, a)
    assert {k: np.array(v).tobytes() for k, v in opt.state[a].items()} == {k: v.tobytes() for k, v in kept.items()}


def test_a_list_edit_matches_torch() -> None:
    torch = pytest.importorskip("torch", reason="compares params list edits with torch")
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal(s) for s in SHAPES]
    grads = [[rng.standard_normal(s) for s in SHAPES] for _ in range(3)]
    ours = [a.copy() for a in arrays]
    theirs = [torch.nn.Parameter(torch.tensor(a)) for a in arrays]
    opt = optrs.optim.Adam(ours[:2], lr=0.1)
    topt = torch.optim.Adam(theirs[:2], lr=0.1)
    for step, g in enumerate(grads):
        if step == 1:
            opt.param_groups[0]["params"].pop(0)
            opt.param_groups[0]["params"].append(ours[2])
            topt.param_groups[0]["params"].pop(0)
            topt.param_groups[0]["params"].append(theirs[2])
        listed = [next(i for i, a in enumerate(ours) if a is p) for p in opt.param_groups[0]["params"]]
        opt.step([g[i] for i in listed])
        for i, p in enumerate(theirs):
            p.grad = torch.tensor(g[i]) if i in listed else None
        topt.step()
    for a, p in zip(ours, theirs):
        np.testing.assert_allclose(a, p.detach().numpy(), rtol=1e-12, atol=1e-15)
    assert [float(opt.state[a]["step"]) for a in ours] == [float(topt.state[p]["step"]) for p in theirs]


def test_replacing_parameter_data_keeps_working() -> None:
    params = [optrs.Parameter(np.ones(s)) for s in SHAPES]
    opt = optrs.optim.Adam(params, lr=0.1)
    for p in params:
        p.grad = np.ones(p.shape)
    opt.step()
    params[0].data = np.zeros(SHAPES[0])
    opt.step()
    assert np.all(params[0].data < 0) and float(opt.state[params[0]]["step"]) == 2.0


def test_an_unusable_appended_param_is_refused_before_any_step() -> None:
    opt, params = make("Adam")
    opt.step(grads_for(params))
    bad = np.ones((2, 2), np.float32)
    bad.setflags(write=False)
    before = snapshot(opt, params)
    opt.param_groups[0]["params"].append(bad)
    with pytest.raises(InvalidParamError, match=r"param_groups\[0\]\['params'\]\[3\].*read-only"):
        opt.step(grads_for(params + [bad]))
    opt.param_groups[0]["params"].pop()
    assert snapshot(opt, params) == before


def lbfgs_problem() -> tuple[LBFGS, list[optrs.Parameter], Any]:
    params = [optrs.Parameter(np.full(s, 2.0)) for s in SHAPES]

    def closure() -> float:
        listed = opt.param_groups[0]["params"]
        for p in listed:
            p.grad = 2 * p.data
        return float(sum((p.data ** 2).sum() for p in listed))

    opt = LBFGS(params[:2], max_iter=3)
    return opt, params, closure


def test_lbfgs_steps_what_its_list_holds() -> None:
    opt, (a, b, c), closure = lbfgs_problem()
    opt.step(closure)
    moved_b = b.data.copy()
    # A different first param: torch keeps LBFGS's state under the first param, so it starts afresh.
    opt.param_groups[0]["params"][:] = [c, b]
    opt.step(closure)
    assert np.all(np.abs(c.data) < 2.0) and not np.array_equal(b.data, moved_b)


def test_lbfgs_refuses_a_list_edit_its_state_no_longer_fits() -> None:
    opt, (a, b, c), closure = lbfgs_problem()
    opt.step(closure)
    opt.param_groups[0]["params"].append(c)
    before = [p.data.copy() for p in (a, b, c)]
    with pytest.raises(InvalidParamError, match="was edited"):
        opt.step(closure)
    assert all(np.array_equal(p.data, old) for p, old in zip((a, b, c), before))


def test_lbfgs_refuses_a_read_only_param_before_moving_any() -> None:
    opt, (a, b, c), closure = lbfgs_problem()
    opt.step(closure)
    b.data.setflags(write=False)
    before = [p.data.copy() for p in (a, b)]
    with pytest.raises(InvalidParamError, match=r"param_groups\[0\]\['params'\]\[1\].*read-only"):
        opt.step(closure)
    assert all(np.array_equal(p.data, old) for p, old in zip((a, b), before))


# -- 4. state assignment --------------------------------------------------------------------------


def buffer_names(opt: Optimizer, p: np.ndarray) -> list[str]:
    return [k for k, v in opt.state[p].items() if k != "step" and np.ndim(v) > 0]


@pytest.mark.parametrize("name", GRADIENT_STEPPED)
def test_a_state_assignment_takes_effect_or_raises(name: str) -> None:
    """Defect 4: ``opt.state[p][name] = value`` copies a checked value into the engine's buffer
    (the next step uses it, as after load_state_dict) or raises."""
    opt, params = make(name)
    opt.step(grads_for(params))
    p = params[0]
    names = buffer_names(opt, p)
    if not names:
        pytest.skip(f"{name} keeps no state buffers")
    before = snapshot(opt, params)
    with pytest.raises(InvalidParamError, match="shape"):
        opt.state[p][names[0]] = np.zeros(7, np.int32)
    with pytest.raises(ParamDTypeError, match="real number"):
        opt.state[p][names[0]] = np.full(opt.state[p][names[0]].shape, "x")
    with pytest.raises(InvalidParamError, match="no state 'bogus'"):
        opt.state[p]["bogus"] = 1.0
    with pytest.raises(InvalidParamError, match="cannot be removed"):
        del opt.state[p][names[0]]
    assert snapshot(opt, params) == before
    # A valid assignment lands in the engine: the next step equals one from a loaded state_dict.
    twin, twin_params = make(name)
    twin.step(grads_for(twin_params))
    value = np.full(opt.state[p][names[0]].shape, 0.25)
    opt.state[p][names[0]] = value
    saved = twin.state_dict()
    saved["state"][0][names[0]] = value
    twin.load_state_dict(saved)
    assert np.array_equal(opt.state[p][names[0]], value.astype(p.dtype))
    opt.step(grads_for(params, seed=5))
    twin.step(grads_for(twin_params, seed=5))
    assert snapshot(opt, params) == snapshot(twin, twin_params)


STEPS_IN_STATE = [n for n in GRADIENT_STEPPED
                  if getattr(optrs.optim, n)._step_in_state]


@pytest.mark.parametrize("how", ["assign", "in place", "fill"])
@pytest.mark.parametrize("bad", [float("nan"), -1.0, 1.5, float("inf")])
@pytest.mark.parametrize("name", STEPS_IN_STATE)
def test_a_bad_step_count_is_refused_at_assignment_or_at_the_step(name: str, bad: float, how: str) -> None:
    opt, params = make(name)
    opt.step(grads_for(params))
    p = params[1]
    if how == "assign":
        with pytest.raises(InvalidHyperparameterError, match="whole number >= 0"):
            opt.state[p]["step"] = bad
        return
    if how == "in place":
        opt.state[p]["step"][...] = bad
    else:
        opt.state[p]["step"].fill(bad)
    before = snapshot(opt, params)
    with pytest.raises((InvalidHyperparameterError, InvalidParamError), match="whole number >= 0") as info:
        opt.step(grads_for(params))
    assert "param_groups[0]['params'][1]" in str(info.value)
    assert snapshot(opt, params) == before
    opt.state[p]["step"] = 3  # a good count: steps again
    opt.step(grads_for(params))
    assert float(opt.state[p]["step"]) == 4.0


def test_a_state_dtype_change_is_refused() -> None:
    opt, params = make("Adam")
    opt.step(grads_for(params))
    opt.state[params[0]]["exp_avg"].dtype = np.int32
    with pytest.raises(InvalidParamError, match=r"\['params'\]\[0\]'s state 'exp_avg' changed"):
        opt.step(grads_for(params))


def test_schedule_free_train_eval_checks_the_arrays_too() -> None:
    opt, params = make("ScheduleFreeAdamW")
    opt.step(grads_for(params))
    params[2].shape = (6, 2)
    before = snapshot(opt, params)
    with pytest.raises(InvalidParamError, match=r"\['params'\]\[2\] changed"):
        opt.eval()
    assert snapshot(opt, params) == before and isinstance(opt, ScheduleFreeAdamW)


def test_muon_whole_tensor_path_steps_what_the_list_holds() -> None:
    opt, (a, b, c) = make("Muon")
    assert isinstance(opt, Muon)
    opt.step(grads_for([a, b, c]))
    opt.param_groups[0]["params"][1] = np.zeros((4, 4), np.float32)
    new = opt.param_groups[0]["params"][1]
    moved_b = b.copy()
    opt.step(grads_for([a, new, c]))
    assert b.tobytes() == moved_b.tobytes() and new.any()
