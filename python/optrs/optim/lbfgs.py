"""L-BFGS, as ``torch.optim.LBFGS`` (a line-by-line port of torch 2.13's ``torch/optim/lbfgs.py``).

Unlike the elementwise optimizers, L-BFGS works on one flat vector that gathers every param's
gradient, so it does not use a Rust engine: the step runs in Python over the Rust core's vector
kernels (dot products and torch's fused ``x.add_(y, alpha=a)``, see ``_axpy``), with the
scalars of the algorithm (``ys``, ``ro``, ``H_diag``, ``al``, ``gtd``, step lengths) kept as NumPy
scalars of the flat vector's dtype, where torch keeps 0-dim tensors of that dtype, and the losses
as Python floats, as torch's ``float(closure())``. With NumPy >= 2 (NEP 50 promotion, like
torch's) a float32 run therefore rounds its scalars to float32 where torch does. With torch's
dot, sum and sqrt (``_dot``, ``_abs_sum``, ``_sqrt``) in place of optrs's, a step is torch's to the
bit (tests/test_lbfgs.py checks it); with optrs's, whose sums are ordered differently (and more
accurate in float32), they differ in the last bits beyond a few elements.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .. import _core
from .._plumbing.hooks import profiled_method
from .._plumbing.params import array_of
from ..errors import InvalidHyperparameterError, InvalidParamError, ParamDTypeError
from .optimizer import Grads, Optimizer, ParamsT

__all__ = ["LBFGS"]

Vector = NDArray[Any]  # the flat float32/float64 vector (torch: a 1-dim tensor)
ObjFunc = Callable[[list[NDArray[Any]], Any, Vector], tuple[float, Vector]]

_ONE_GROUP = "LBFGS doesn't support per-parameter options (parameter groups)"
_STATE_KEYS = ("func_evals", "n_iter", "d", "t", "old_dirs", "old_stps", "ro", "H_diag",
               "prev_flat_grad", "prev_loss", "al")


def _rdiv(num: Any, den: Any) -> Any:
    """``num / den`` as torch computes it: a Python number divided by a 0-dim tensor is
    ``den.reciprocal() * num`` (``Tensor.__rtruediv__``), two roundings rather than one."""
    if isinstance(den, np.generic) and not isinstance(num, np.generic):
        return np.reciprocal(den) * num
    return num / den


# -- the vector kernels -------------------------------------------------------------------------
# torch's dot is BLAS (MKL) and its ``x.add_(y, alpha=a)`` a fused multiply-add on every element.
# Both run in the Rust core (optrs_core::vector, GIL-free, threaded on long vectors): the dot
# product in a fixed summation order with float64 accumulators (MKL's own order up to 8 elements,
# so small float64 problems replay torch's bits) and the update as one exactly rounded FMA per
# element, whatever the CPU.


def _axpy(x: Vector, y: Vector, alpha: Any) -> None:
    """torch's ``x.add_(y, alpha=alpha)`` in place: x + alpha * y with one rounding, alpha first
    rounded to x's dtype (torch's scalar cast)."""
    if x.dtype != y.dtype:  # mixed dtypes: no single FMA to match
        x += y * x.dtype.type(alpha)
        return
    _core.axpy(x, y, float(alpha))


def _dot(a: Vector, b: Vector) -> Any:
    """torch's ``a.dot(b)``, a scalar of the vectors' dtype."""
    return a.dtype.type(_core.dot(a, b))


def _abs_sum(a: Vector) -> Any:
    """torch's ``a.abs().sum()``, in the Rust core's fixed order (float64 accumulators)."""
    return a.dtype.type(_core.total_norm([a], 1.0)[0])


def _sqrt(x: Any) -> Any:
    """torch's ``x.sqrt()`` of a 0-dim value. NumPy's is correctly rounded; torch's CPU sqrt
    (MKL's vector math) is off by one ulp in about 1.5% of float64 and 20% of float32 cases."""
    return np.sqrt(x)


def _cubic_interpolate(x1: Any, f1: Any, g1: Any, x2: Any, f2: Any, g2: Any,
                       bounds: tuple[Any, Any] | None = None) -> Any:
    # ported from https://github.com/torch/optim/blob/master/polyinterp.lua
    # Compute bounds of interpolation area
    if bounds is not None:
        xmin_bound, xmax_bound = bounds
    else:
        xmin_bound, xmax_bound = (x1, x2) if x1 <= x2 else (x2, x1)

    # Code for most common case: cubic interpolation of 2 points
    #   w/ function and derivative values for both
    # Solution in this case (where x2 is the farthest point):
    #   d1 = g1 + g2 - 3*(f1-f2)/(x1-x2);
    #   d2 = sqrt(d1^2 - g1*g2);
    #   min_pos = x2 - (x2 - x1)*((g2 + d2 - d1)/(g2 - g1 + 2*d2));
    #   t_new = min(max(min_pos,xmin_bound),xmax_bound);
    d1 = g1 + g2 - _rdiv(3 * (f1 - f2), x1 - x2)
    d2_square = d1 * d1 - g1 * g2  # torch's d1**2 is d1 * d1
    if d2_square >= 0:
        d2 = _sqrt(d2_square)
        if x1 <= x2:
            min_pos = x2 - (x2 - x1) * ((g2 + d2 - d1) / (g2 - g1 + 2 * d2))
        else:
            min_pos = x1 - (x1 - x2) * ((g1 + d2 - d1) / (g1 - g2 + 2 * d2))
        return min(max(min_pos, xmin_bound), xmax_bound)
    else:
        return (xmin_bound + xmax_bound) / 2.0


def _strong_wolfe(obj_func: ObjFunc, x: list[NDArray[Any]], t: Any, d: Vector, f: float, g: Vector,
                  gtd: Any, c1: float = 1e-4, c2: float = 0.9, tolerance_change: float = 1e-9,
                  max_ls: int = 25) -> tuple[float, Vector, Any, int]:
    # ported from https://github.com/torch/optim/blob/master/lswolfe.lua
    d_norm = np.abs(d).max()
    g = g.copy()
    # evaluate objective and gradient using initial step
    f_new, g_new = obj_func(x, t, d)
    ls_func_evals = 1
    gtd_new = _dot(g_new, d)

    # bracket an interval containing a point satisfying the Wolfe criteria
    t_prev, f_prev, g_prev, gtd_prev = 0, f, g, gtd
    done = False
    ls_iter = 0
    bracket: list[Any] = []
    bracket_f: list[Any] = []
    bracket_g: list[Vector] = []
    bracket_gtd: list[Any] = []
    while ls_iter < max_ls:
        # check conditions
        if f_new > (f + c1 * t * gtd) or (ls_iter > 1 and f_new >= f_prev):
            bracket = [t_prev, t]
            bracket_f = [f_prev, f_new]
            bracket_g = [g_prev, g_new.copy()]
            bracket_gtd = [gtd_prev, gtd_new]
            break

        if abs(gtd_new) <= -c2 * gtd:
            bracket = [t]
            bracket_f = [f_new]
            bracket_g = [g_new]
            done = True
            break

        if gtd_new >= 0:
            bracket = [t_prev, t]
            bracket_f = [f_prev, f_new]
            bracket_g = [g_prev, g_new.copy()]
            bracket_gtd = [gtd_prev, gtd_new]
            break

        # interpolate
        min_step = t + 0.01 * (t - t_prev)
        max_step = t * 10
        tmp = t
        t = _cubic_interpolate(t_prev, f_prev, gtd_prev, t, f_new, gtd_new, bounds=(min_step, max_step))

        # next step
        t_prev = tmp
        f_prev = f_new
        g_prev = g_new.copy()
        gtd_prev = gtd_new
        f_new, g_new = obj_func(x, t, d)
        ls_func_evals += 1
        gtd_new = _dot(g_new, d)
        ls_iter += 1

    # reached max number of iterations?
    if ls_iter == max_ls:
        bracket = [0, t]
        bracket_f = [f, f_new]
        bracket_g = [g, g_new]
    if not bracket:
        # torch fails here with an UnboundLocalError (max_eval smaller than the evaluations done)
        raise InvalidHyperparameterError(f"strong_wolfe got max_ls={max_ls}; max_eval must be >= 1")

    # zoom phase: we now have a point satisfying the criteria, or
    # a bracket around it. We refine the bracket until we find the
    # exact point satisfying the criteria
    insuf_progress = False
    # find high and low points in bracket
    # A one-element bracket's low point is its only point. torch compares it with itself, which a
    # NaN loss makes False, and then indexes past it (IndexError).
    low_pos, high_pos = (0, 1) if len(bracket) == 1 or bracket_f[0] <= bracket_f[-1] else (1, 0)
    while not done and ls_iter < max_ls:
        # line-search bracket is so small
        if abs(bracket[1] - bracket[0]) * d_norm < tolerance_change:
            break

        # compute new trial value
        t = _cubic_interpolate(bracket[0], bracket_f[0], bracket_gtd[0],
                               bracket[1], bracket_f[1], bracket_gtd[1])

        # test that we are making sufficient progress:
        # in case `t` is so close to boundary, we mark that we are making
        # insufficient progress, and if
        #   + we have made insufficient progress in the last step, or
        #   + `t` is at one of the boundary,
        # we will move `t` to a position which is `0.1 * len(bracket)`
        # away from the nearest boundary point.
        eps = 0.1 * (max(bracket) - min(bracket))
        if min(max(bracket) - t, t - min(bracket)) < eps:
            # interpolation close to boundary
            if insuf_progress or t >= max(bracket) or t <= min(bracket):
                # evaluate at 0.1 away from boundary
                if abs(t - max(bracket)) < abs(t - min(bracket)):
                    t = max(bracket) - eps
                else:
                    t = min(bracket) + eps
                insuf_progress = False
            else:
                insuf_progress = True
        else:
            insuf_progress = False

        # Evaluate new point
        f_new, g_new = obj_func(x, t, d)
        ls_func_evals += 1
        gtd_new = _dot(g_new, d)
        ls_iter += 1

        if f_new > (f + c1 * t * gtd) or f_new >= bracket_f[low_pos]:
            # Armijo condition not satisfied or not lower than lowest point
            bracket[high_pos] = t
            bracket_f[high_pos] = f_new
            bracket_g[high_pos] = g_new.copy()
            bracket_gtd[high_pos] = gtd_new
            low_pos, high_pos = (0, 1) if bracket_f[0] <= bracket_f[1] else (1, 0)
        else:
            if abs(gtd_new) <= -c2 * gtd:
                # Wolfe conditions satisfied
                done = True
            elif gtd_new * (bracket[high_pos] - bracket[low_pos]) >= 0:
                # old high becomes new low
                bracket[high_pos] = bracket[low_pos]
                bracket_f[high_pos] = bracket_f[low_pos]
                bracket_g[high_pos] = bracket_g[low_pos]
                bracket_gtd[high_pos] = bracket_gtd[low_pos]

            # new point becomes new low
            bracket[low_pos] = t
            bracket_f[low_pos] = f_new
            bracket_g[low_pos] = g_new.copy()
            bracket_gtd[low_pos] = gtd_new

    # return stuff
    t = bracket[low_pos]
    f_new = bracket_f[low_pos]
    g_new = bracket_g[low_pos]
    return f_new, g_new, t, ls_func_evals


# -- options ------------------------------------------------------------------------------------

def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _check_options(group: Mapping[str, Any]) -> None:
    """Checks an LBFGS param group's options (torch checks only lr >= 0, at construction)."""
    for key in ("lr", "max_iter", "max_eval", "tolerance_grad", "tolerance_change", "history_size",
                "line_search_fn"):
        if key not in group:
            raise InvalidHyperparameterError(f"the LBFGS param group has no '{key}'")
    lr = group["lr"]
    if not _is_real(lr):
        raise InvalidHyperparameterError(f"'lr' must be a number, got {lr!r}")
    if not (math.isfinite(lr) and lr > 0):
        raise InvalidHyperparameterError(f"Invalid learning rate: {lr}; LBFGS needs a finite lr > 0")
    for key in ("max_iter", "max_eval", "history_size"):
        value = group[key]
        if not _is_int(value):
            raise InvalidHyperparameterError(f"'{key}' must be an int, got {value!r}")
        if value < 1:
            raise InvalidHyperparameterError(f"'{key}' must be >= 1, got {value}")
    for key in ("tolerance_grad", "tolerance_change"):
        value = group[key]
        if not _is_real(value):
            raise InvalidHyperparameterError(f"'{key}' must be a number, got {value!r}")
        if math.isnan(value):
            raise InvalidHyperparameterError(f"'{key}' must not be NaN")
    if group["line_search_fn"] not in (None, "strong_wolfe"):
        raise InvalidHyperparameterError(
            f"line_search_fn must be None or 'strong_wolfe', got {group['line_search_fn']!r} "
            "(only 'strong_wolfe' is supported, as in torch)")


class _NoEngine:
    """What LBFGS registers each param group with in place of a Rust engine: LBFGS has no Rust
    update rule (its step is a loop over closure calls, line searches and a two-loop recursion,
    run in NumPy over one flat vector with the core's ``dot``/``axpy``), so registering only
    checks the group's options and arrays. It has no ``step``: ``LBFGS.step`` overrides
    ``Optimizer.step`` and never asks an engine to step."""

    @staticmethod
    def state_spec(group: dict[str, Any], where: str) -> tuple[list[tuple[str, float]], list[tuple[str, float]]]:
        return [], []

    @staticmethod
    def state_shapes(group: dict[str, Any], shapes: list[tuple[int, ...]], label: str) -> list[list[list[int] | None]]:
        return [[] for _ in shapes]

    def add_group(self, group: dict[str, Any], params: list[NDArray[Any]], states: list[list[NDArray[Any]]],
                  steps: list[NDArray[Any]], prefix: str) -> None:
        _check_options(group)
        if not params:
            raise InvalidParamError("optimizer got an empty parameter list")
        for i, (p, a) in enumerate(zip(group["params"], params)):
            if isinstance(p, np.ndarray):
                raise InvalidParamError(
                    f"{prefix}[{i}] is a plain ndarray, which carries no .grad: LBFGS reads each param's "
                    "gradient from .grad after calling the closure, so wrap the arrays in optrs.Parameter "
                    "(the closure sets p.grad and returns the loss)")
            if a.dtype not in (np.float32, np.float64):
                raise ParamDTypeError(f"{prefix}[{i}] has dtype {a.dtype}; LBFGS supports float32 and float64 params")
            if not a.flags.writeable:
                raise InvalidParamError(f"{prefix}[{i}] is read-only; the optimizer updates params in place")
        for j in range(len(params)):
            for i in range(j):
                if np.may_share_memory(params[i], params[j]) and np.shares_memory(params[i], params[j]):
                    raise InvalidParamError(
                        f"{prefix}[{j}] shares memory with {prefix}[{i}]; every param needs its own memory "
                        "(a param listed twice, or views of one array, cannot be optimized together)")

    def refresh(self, params: list[NDArray[Any]]) -> None:
        pass


# -- the optimizer ------------------------------------------------------------------------------

class LBFGS(Optimizer):
    """L-BFGS (heavily inspired by minFunc), computing what ``torch.optim.LBFGS`` computes: same
    arguments, defaults (``max_eval = max_iter * 5 // 4``), line search (``"strong_wolfe"``) and
    state.

    Only one param group. ``step(closure)`` needs the closure: it re-evaluates the model, sets
    each param's ``.grad`` (a ``None`` grad counts as zeros, as in torch) and returns the loss;
    ``step`` calls it up to ``max_eval`` times and returns the loss of its first call. So the
    params must carry a ``.grad``: ``optrs.Parameter`` objects (or objects with an ndarray
    ``.data`` and ``.grad``), not plain ndarrays::

        w = optrs.Parameter(np.zeros(10))
        opt = optrs.optim.LBFGS([w], line_search_fn="strong_wolfe")

        def closure():
            loss, w.grad = loss_and_grad(w.data)
            return loss

        opt.step(closure)

    The step works on one flat vector of every param (float32, or float64 if any param is
    float64) and updates each param's array in place. L-BFGS keeps ``history_size`` pairs of
    such vectors. Its state, as torch's, sits under the first param: ``func_evals``, ``n_iter``,
    ``d``, ``t``, ``old_dirs``, ``old_stps``, ``ro``, ``H_diag``, ``prev_flat_grad``,
    ``prev_loss``, ``al`` (vectors are flat ndarrays, torch's 0-dim tensors are NumPy scalars).

    Beyond torch, options are checked: ``lr`` must be finite and > 0, ``max_iter``, ``max_eval``
    and ``history_size`` ints >= 1, tolerances not NaN, ``line_search_fn`` None or
    ``"strong_wolfe"`` (all ``InvalidHyperparameterError``, a ``ValueError``).
    """

    _engine_class = _NoEngine
    _step_in_state = False

    def __init__(
        self,
        params: ParamsT,
        lr: float = 1,
        max_iter: int = 20,
        max_eval: int | None = None,
        tolerance_grad: float = 1e-7,
        tolerance_change: float = 1e-9,
        history_size: int = 100,
        line_search_fn: str | None = None,
    ) -> None:
        if max_eval is None:
            if not _is_int(max_iter):
                raise InvalidHyperparameterError(f"'max_iter' must be an int, got {max_iter!r}")
            max_eval = max_iter * 5 // 4
        defaults = {
            "lr": lr,
            "max_iter": max_iter,
            "max_eval": max_eval,
            "tolerance_grad": tolerance_grad,
            "tolerance_change": tolerance_change,
            "history_size": history_size,
            "line_search_fn": line_search_fn,
        }
        _check_options(defaults)
        # torch: state.setdefault(...) on self.state[self._params[0]]; one dict, kept here.
        self._lbfgs_state: dict[str, Any] = {}
        self._state_param: Any = None
        super().__init__(params, defaults)
        if len(self.param_groups) != 1:  # pragma: no cover (add_param_group refuses a second)
            raise InvalidParamError(_ONE_GROUP)

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """LBFGS has exactly one param group: this refuses a second (torch fails at ``step``)."""
        if self.param_groups:
            raise InvalidParamError(_ONE_GROUP)
        super().add_param_group(param_group)
        self._state_param = self._params[0]

    # -- state ----------------------------------------------------------------------------------

    def _has_state(self, index: int) -> bool:
        return index == 0 and bool(self._lbfgs_state)

    def _state_of(self, index: int) -> dict[str, Any]:
        # The live dict (as torch's self.state[p]), so opt.state[p0]["n_iter"] = 0 works too.
        return self._lbfgs_state if index == 0 else {}

    def state_dict(self) -> dict[str, Any]:
        """torch's layout, ``{"state": {0: {...}}, "param_groups": [{..., "params": [0, 1, ...]}]}``,
        with copies of the vectors and lists, so later steps do not change it, and the class name
        (see ``Optimizer.state_dict``)."""
        state = {0: {k: _copy_value(v) for k, v in self._lbfgs_state.items()}} if self._lbfgs_state else {}
        group = self.param_groups[0]
        saved = {k: v for k, v in group.items() if k != "params"}
        saved["params"] = list(range(len(group["params"])))
        return {"state": state, "param_groups": [saved], self._SAVED_BY: type(self).__name__}

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Loads a ``state_dict()`` (of this or another LBFGS over params of the same sizes),
        options included. Everything is checked before anything changes; vectors and 0-dim
        values are cast to the flat vector's dtype, as torch casts them to the param's."""
        if not isinstance(state_dict, Mapping) or "state" not in state_dict or "param_groups" not in state_dict:
            raise InvalidParamError("state_dict must be a dict with 'state' and 'param_groups', "
                                    "as returned by Optimizer.state_dict()")
        self._check_saved_by(state_dict)
        saved_groups = list(state_dict["param_groups"])
        if len(saved_groups) != 1:
            raise InvalidParamError(f"state_dict has {len(saved_groups)} param groups; {_ONE_GROUP}")
        saved = saved_groups[0]
        keys = list(saved.get("params", []))
        if len(keys) != len(self._params):
            raise InvalidParamError(f"state_dict's param_groups[0] has {len(keys)} params, "
                                    f"this optimizer's has {len(self._params)}")
        new_group = {**self.defaults, **saved, "params": self.param_groups[0]["params"]}
        _check_options(new_group)
        new_state: dict[str, Any] = {}
        for key, entry in dict(state_dict["state"]).items():
            if key not in keys:
                raise InvalidParamError(f"state_dict's state has an entry for param {key!r}, "
                                        "which no param group lists")
            if keys.index(key) != 0:
                raise InvalidParamError(f"state_dict's state has an entry for param {key!r}; LBFGS keeps "
                                        "its state under its first param only")
            new_state = self._checked_state(dict(entry), f"state_dict's state[{key!r}]")
        self._lbfgs_state.clear()
        self._lbfgs_state.update(new_state)
        group = self.param_groups[0]
        group.clear()
        group.update(new_group)

    def _checked_state(self, entry: dict[str, Any], where: str) -> dict[str, Any]:
        arrays = [array_of(p, "param") for p in self._params]
        dtype = np.result_type(*arrays)
        numel = sum(a.size for a in arrays)
        unknown = sorted(set(entry) - set(_STATE_KEYS), key=str)
        if unknown:
            raise InvalidParamError(f"{where} has unknown entries {unknown}; LBFGS's state has {list(_STATE_KEYS)}")

        def vector(value: Any, label: str) -> Vector:
            v = np.asarray(value)
            if v.ndim != 1 or v.size != numel:
                raise InvalidParamError(f"{where}{label} has shape {v.shape}; it must be a flat vector of "
                                        f"{numel} elements (every param's)")
            return np.array(v, dtype=dtype, copy=True)

        def scalar(value: Any, label: str) -> Any:
            if isinstance(value, (np.ndarray, np.generic)):
                if np.ndim(value) != 0:
                    raise InvalidParamError(f"{where}{label} must be a number, got shape {np.shape(value)}")
                return dtype.type(value)  # a 0-dim tensor in torch: cast to the param dtype
            if not _is_real(value):
                raise InvalidParamError(f"{where}{label} must be a number, got {value!r}")
            return value

        state: dict[str, Any] = {}
        for name in ("func_evals", "n_iter"):
            if name in entry:
                value = entry[name]
                if isinstance(value, (np.ndarray, np.generic)) and np.ndim(value) == 0:
                    value = value.item()
                if not (_is_int(value) or (isinstance(value, float) and value.is_integer())) or value < 0:
                    raise InvalidParamError(f"{where}['{name}'] is {value!r}; it must be a whole number >= 0")
                state[name] = int(value)
        for name in ("d", "prev_flat_grad"):
            if name in entry:
                state[name] = None if entry[name] is None else vector(entry[name], f"['{name}']")
        for name in ("t", "H_diag"):
            if name in entry:
                state[name] = None if entry[name] is None else scalar(entry[name], f"['{name}']")
        if "prev_loss" in entry:
            state["prev_loss"] = None if entry["prev_loss"] is None else float(entry["prev_loss"])
        lengths = {}
        for name in ("old_dirs", "old_stps", "ro", "al"):
            if name in entry:
                value = entry[name]
                if not isinstance(value, (list, tuple)):
                    raise InvalidParamError(f"{where}['{name}'] must be a list, got {type(value).__name__}")
                if name in ("old_dirs", "old_stps"):
                    state[name] = [vector(v, f"['{name}'][{i}]") for i, v in enumerate(value)]
                else:
                    state[name] = [None if v is None and name == "al" else scalar(v, f"['{name}'][{i}]")
                                   for i, v in enumerate(value)]
                if name != "al":
                    lengths[name] = len(value)
        if len(set(lengths.values())) > 1:
            raise InvalidParamError(f"{where}'s old_dirs, old_stps and ro have different lengths {lengths}")
        return state

    def _check_before_step(self) -> None:
        """Every param must still be writeable (the step writes them one after another, so a
        read-only one found late would leave the others moved), and the state's vectors must
        still have one element per param element (a params list edit can change that; torch
        then fails inside the step with a size mismatch)."""
        arrays = self._arrays()
        for i, a in enumerate(arrays):
            if not a.flags.writeable:
                raise InvalidParamError(f"param_groups[0]['params'][{i}] is read-only; the optimizer updates "
                                        "params in place, so make it writeable again")
        numel = sum(a.size for a in arrays)
        state = self._lbfgs_state
        vectors = [state.get("d"), state.get("prev_flat_grad"), *state.get("old_dirs", []), *state.get("old_stps", [])]
        sizes = {np.size(v) for v in vectors if v is not None}
        if sizes - {numel}:
            raise InvalidParamError(
                f"LBFGS's state holds vectors of {sorted(sizes)} elements, but the params now hold {numel} "
                "(param_groups[0]['params'] was edited); load a state_dict for these params or create a new LBFGS")

    # -- flat vectors (torch's _gather_flat_grad, _add_grad, _clone_param, _set_param) ---------

    def _arrays(self) -> list[NDArray[Any]]:
        return [array_of(p, f"param_groups[0]['params'][{i}]") for i, p in enumerate(self._params)]

    def _gather_flat_grad(self, arrays: list[NDArray[Any]], dtype: np.dtype[Any]) -> Vector:
        flat = np.empty(sum(a.size for a in arrays), dtype=dtype)
        offset = 0
        for i, (p, a) in enumerate(zip(self._params, arrays)):
            numel = a.size
            grad = getattr(p, "grad", None)
            if grad is None:
                flat[offset:offset + numel] = 0
            else:
                where = f"param_groups[0]['params'][{i}].grad"
                if not isinstance(grad, np.ndarray):
                    raise ParamDTypeError(f"{where} must be a numpy.ndarray or None, got {type(grad).__name__}")
                if grad.dtype != a.dtype:
                    raise ParamDTypeError(f"{where} has dtype {grad.dtype}, its param has {a.dtype}")
                if grad.shape != a.shape:
                    raise InvalidParamError(f"{where} has shape {grad.shape}, its param has {a.shape}")
                flat[offset:offset + numel] = grad.reshape(-1)
            offset += numel
        return flat

    @staticmethod
    def _add_grad(arrays: list[NDArray[Any]], step_size: Any, update: Vector) -> None:
        offset = 0
        for a in arrays:
            numel = a.size
            # torch: p.add_(update[offset:offset + numel].view_as(p), alpha=step_size)
            if a.flags.c_contiguous:
                _axpy(a.reshape(-1), update[offset:offset + numel], step_size)
            else:
                view = a.flatten()  # a contiguous copy: write it back
                _axpy(view, update[offset:offset + numel], step_size)
                a[...] = view.reshape(a.shape)
            offset += numel

    def _directional_evaluate(self, closure: Callable[[], Any], arrays: list[NDArray[Any]],
                              x: list[NDArray[Any]], t: Any, d: Vector) -> tuple[float, Vector]:
        self._add_grad(arrays, t, d)
        loss = _loss_of(closure())
        flat_grad = self._gather_flat_grad(arrays, d.dtype)
        for a, saved in zip(arrays, x):  # torch's _set_param
            np.copyto(a, saved)
        return loss, flat_grad

    # -- stepping -------------------------------------------------------------------------------

    @profiled_method
    def step(self, grads: Grads | Callable[[], Any] | None = None,
             closure: Callable[[], Any] | None = None) -> Any:
        """Performs a single optimization step (up to ``max_iter`` L-BFGS iterations).

        ``closure`` (required, as in torch: ``opt.step(closure)``) re-evaluates the model, sets
        each param's ``.grad`` and returns the loss. Returns the loss of the first evaluation.
        """
        if closure is None and callable(grads):
            grads, closure = None, grads
        if grads is not None:
            raise TypeError("LBFGS.step takes a closure, not gradients: step(closure), where closure() "
                            "sets each param's .grad and returns the loss")
        if closure is None:
            raise TypeError("LBFGS.step needs a closure that re-evaluates the model, sets each param's "
                            ".grad and returns the loss: step(closure)")
        if not callable(closure):
            raise TypeError(f"LBFGS.step's closure must be callable, got {type(closure).__name__}")
        if len(self.param_groups) != 1:  # pragma: no cover (add_param_group refuses a second)
            raise InvalidParamError(_ONE_GROUP)
        self._sync_params()
        if self._params[0] is not self._state_param:
            # torch keeps the state under the first param: a new first param starts afresh.
            self._lbfgs_state.clear()
            self._state_param = self._params[0]
        self._check_before_step()
        group = self.param_groups[0]
        _check_options(group)
        user_errstate = np.geterr()

        def evaluate() -> Any:
            with np.errstate(**user_errstate):  # the closure runs under the caller's settings
                return closure()
        with np.errstate(all="ignore"):  # torch's scalar arithmetic divides and overflows silently
            return self._step(evaluate, group)

    def _step(self, closure: Callable[[], Any], group: dict[str, Any]) -> Any:
        # Options as Python numbers (torch's _to_scalar), so they round to the flat dtype where
        # they meet its scalars, as torch's do.
        lr = group["lr"] if isinstance(group["lr"], int) else float(group["lr"])
        max_iter = int(group["max_iter"])
        max_eval = int(group["max_eval"])
        tolerance_grad = float(group["tolerance_grad"])
        tolerance_change = float(group["tolerance_change"])
        line_search_fn = group["line_search_fn"]
        history_size = int(group["history_size"])

        arrays = self._arrays()
        dtype = np.result_type(*arrays)
        if sum(a.size for a in arrays) == 0:
            raise InvalidParamError("LBFGS's params have no elements")

        # NOTE: LBFGS has only global state, but we register it as state for
        # the first param, because this helps with casting in load_state_dict
        state = self._lbfgs_state
        state.setdefault("func_evals", 0)
        state.setdefault("n_iter", 0)

        # evaluate initial f(x) and df/dx
        orig_loss = closure()
        loss = _loss_of(orig_loss)
        current_evals = 1
        state["func_evals"] += 1

        flat_grad = self._gather_flat_grad(arrays, dtype)
        opt_cond = np.abs(flat_grad).max() <= tolerance_grad

        # optimal condition
        if opt_cond:
            return orig_loss

        # tensors cached in state (for tracing)
        d = state.get("d")
        t = state.get("t")
        old_dirs = state.get("old_dirs")
        old_stps = state.get("old_stps")
        ro = state.get("ro")
        H_diag = state.get("H_diag")
        prev_flat_grad = state.get("prev_flat_grad")
        prev_loss = state.get("prev_loss")

        n_iter = 0
        # optimize for a max of max_iter iterations
        while n_iter < max_iter:
            # keep track of nb of iterations
            n_iter += 1
            state["n_iter"] += 1

            ############################################################
            # compute gradient descent direction
            ############################################################
            if state["n_iter"] == 1:
                d = -flat_grad
                old_dirs = []
                old_stps = []
                ro = []
                H_diag = 1
            else:
                assert d is not None and old_dirs is not None and old_stps is not None and ro is not None
                # do lbfgs update (update memory)
                y = flat_grad - prev_flat_grad
                s = d * t
                ys = _dot(y, s)  # y*s
                if ys > 1e-10:
                    # updating memory
                    if len(old_dirs) == history_size:
                        # shift history by one (limited-memory)
                        old_dirs.pop(0)
                        old_stps.pop(0)
                        ro.pop(0)

                    # store new direction/step
                    old_dirs.append(y)
                    old_stps.append(s)
                    ro.append(_rdiv(1.0, ys))

                    # update scale of initial Hessian approximation
                    H_diag = ys / _dot(y, y)  # (y*y)

                # compute the approximate (L-BFGS) inverse Hessian
                # multiplied by the gradient
                num_old = len(old_dirs)

                if "al" not in state:
                    state["al"] = [None] * history_size
                al = state["al"]

                # iteration in L-BFGS loop collapsed to use just one buffer
                q = -flat_grad
                for i in range(num_old - 1, -1, -1):
                    al[i] = _dot(old_stps[i], q) * ro[i]
                    _axpy(q, old_dirs[i], -al[i])  # torch: q.add_(old_dirs[i], alpha=-al[i])

                # multiply by initial Hessian
                # r/d is the final direction
                d = r = q * H_diag
                for i in range(num_old):
                    be_i = _dot(old_dirs[i], r) * ro[i]
                    _axpy(r, old_stps[i], al[i] - be_i)  # torch: r.add_(old_stps[i], alpha=al[i] - be_i)

            if prev_flat_grad is None:
                prev_flat_grad = flat_grad.copy()
            else:
                np.copyto(prev_flat_grad, flat_grad)
            prev_loss = loss

            ############################################################
            # compute step length
            ############################################################
            # reset initial guess for step size
            if state["n_iter"] == 1:
                t = min(1.0, _rdiv(1.0, _abs_sum(flat_grad))) * lr
            else:
                t = lr

            # directional derivative
            gtd = _dot(flat_grad, d)  # g * d

            # directional derivative is below tolerance
            if gtd > -tolerance_change:
                break

            # optional line search: user function
            ls_func_evals = 0
            if line_search_fn is not None:
                # perform line search, using user function
                if line_search_fn != "strong_wolfe":  # pragma: no cover (_check_options refuses it)
                    raise RuntimeError("only 'strong_wolfe' is supported")
                else:
                    x_init = [a.copy() for a in arrays]  # torch's _clone_param

                    def obj_func(x: list[NDArray[Any]], t: Any, d: Vector) -> tuple[float, Vector]:
                        return self._directional_evaluate(closure, arrays, x, t, d)

                    loss, flat_grad, t, ls_func_evals = _strong_wolfe(
                        obj_func, x_init, t, d, loss, flat_grad, gtd, max_ls=max_eval - current_evals)
                self._add_grad(arrays, t, d)
                opt_cond = np.abs(flat_grad).max() <= tolerance_grad
            else:
                # no line search, simply move with fixed-step
                self._add_grad(arrays, t, d)
                if n_iter != max_iter:
                    # re-evaluate function only if not in last iteration
                    # the reason we do this: in a stochastic setting,
                    # no use to re-evaluate that function here
                    loss = _loss_of(closure())
                    flat_grad = self._gather_flat_grad(arrays, dtype)
                    opt_cond = np.abs(flat_grad).max() <= tolerance_grad
                    ls_func_evals = 1

            # update func eval
            current_evals += ls_func_evals
            state["func_evals"] += ls_func_evals

            ############################################################
            # check conditions
            ############################################################
            if n_iter == max_iter:
                break

            if current_evals >= max_eval:
                break

            # optimal condition
            if opt_cond:
                break

            # lack of progress
            if np.abs(d * t).max() <= tolerance_change:
                break

            if abs(loss - prev_loss) < tolerance_change:
                break

        state["d"] = d
        state["t"] = t
        state["old_dirs"] = old_dirs
        state["old_stps"] = old_stps
        state["ro"] = ro
        state["H_diag"] = H_diag
        state["prev_flat_grad"] = prev_flat_grad
        state["prev_loss"] = prev_loss

        return orig_loss


def _loss_of(value: Any) -> float:
    """torch's ``float(closure())``, with a clearer message when the closure returns no loss."""
    try:
        return float(value)
    except (TypeError, ValueError) as error:
        raise TypeError(f"LBFGS's closure must return the loss (a number), got {type(value).__name__}: "
                        f"{error}") from None


def _copy_value(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.copy()
    if isinstance(value, Sequence) and not isinstance(value, str):
        return [_copy_value(v) for v in value]
    return value
