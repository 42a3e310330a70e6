//! `adafactor_step`: one Adafactor step over every param group. Adafactor's factors and clipping
//! are reductions over whole tensors, so it does not fit the element-wise `Engine`: this one
//! function checks every group's options and every array (params, state, step counters, grads:
//! dtype, shape, layout, no shared memory; see `whole.rs`) before it writes anything, then runs
//! the whole step in one GIL-free call into `optrs_core::rules::adafactor`.

use crate::arrays::{check_array, shape_str, Access, ArrayInfo, DType};
use crate::engine::{get_bool, get_f64};
use crate::errors::invalid_param;
use crate::whole::{
    check_counts, check_grad, check_like, group_options, item, items, state_label, wrong,
    WrittenRanges,
};
use numpy::PyUntypedArrayMethods;
use optrs_core::rules::adafactor::{self, Adafactor, SecondMoment, Tensor, Work};
use optrs_core::Float;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::PyDict;

const ROW_VAR: &str = "row_var";
const COL_VAR: &str = "col_var";
const VARIANCE: &str = "variance";
const STEP: &str = "step";

/// One Adafactor step. `groups` are the param group dicts (their options, and
/// `len(group["params"])` params each); `params`, `grads`, `states` and `steps` list every param's
/// array, grad (None skips the param, as in torch), state arrays (`[row_var, col_var]` for a
/// param of two or more dims, else `[variance]`) and step counter (a float64 array of one
/// element), in group order. With every grad None it only checks the arrays and options.
#[pyfunction]
pub fn adafactor_step(
    py: Python<'_>,
    groups: &Bound<'_, PyAny>,
    params: &Bound<'_, PyAny>,
    grads: &Bound<'_, PyAny>,
    states: &Bound<'_, PyAny>,
    steps: &Bound<'_, PyAny>,
) -> PyResult<()> {
    let (params, grads) = (items(params)?, items(grads)?);
    let (states, steps) = (items(states)?, items(steps)?);
    let (mut rules, positions) = group_options(groups, read_options, Adafactor::validate)?;
    let listed = positions.len();
    let lists = [
        ("params", params.len()),
        ("state lists", states.len()),
        ("step counters", steps.len()),
    ];
    check_counts(listed, &lists, grads.len())?;
    let mut checked = Vec::with_capacity(listed);
    let mut written = WrittenRanges::default();
    for index in 0..listed {
        let label = || positions.label(index);
        let param = check_array(&params[index], &label, Access::Write)?;
        let state = check_state(&param, &states[index], &label)?;
        let what = || state_label(&label(), STEP);
        let counter = check_array(&steps[index], &what, Access::Write)?;
        if counter.dtype != DType::F64 || counter.len != 1 {
            return Err(invalid_param(format!(
                "{}'s step counter must be a float64 array of one element",
                label()
            )));
        }
        written.add(&param, index, None);
        for (name, info) in &state {
            written.add(info, index, Some(name));
        }
        written.add(&counter, index, Some(STEP));
        let grad = check_grad(&grads[index], &param, &label)?;
        checked.push((param, state, counter, grad));
    }
    written.check_disjoint(&positions)?;
    let mut active = Vec::new();
    for (index, (param, state, counter, grad)) in checked.iter().enumerate() {
        let Some(grad) = grad else {
            continue;
        };
        written.check_grad(grad, index, &positions)?;
        if param.len == 0 {
            return Err(invalid_param(format!(
                "{} has no elements (shape {}); Adafactor divides by a param's size (torch fails \
                 with ZeroDivisionError), so leave empty params out of it",
                positions.label(index),
                shape_str(param.array.shape())
            )));
        }
        let count = read_count(counter);
        if !(count >= 0.0 && count < 2f64.powi(53) && count.fract() == 0.0) {
            return Err(invalid_param(format!(
                "{}'s step count is {count}; it must be a whole number >= 0",
                positions.label(index)
            )));
        }
        // torch resolves eps1=None once per group and step, from the first param with a grad,
        // and uses that dtype's epsilon for the group's other params too.
        let rule = &mut rules[positions.group(index)];
        rule.eps1.get_or_insert(match param.dtype {
            DType::F32 => f64::from(f32::EPSILON),
            DType::F64 => f64::EPSILON,
        });
        active.push((*rule, param, state, counter, grad, count as u64 + 1));
    }
    // Every check passed: from here on nothing fails, so no array is left half-updated.
    let mut work = Vec::with_capacity(active.len());
    for (rule, param, state, counter, grad, step) in active {
        // SAFETY: `counter` is an aligned, C-contiguous, writeable float64 array of one element
        // (checked above) that the caller's list keeps alive; the GIL is held, and no other
        // array of this step shares its memory.
        unsafe { *(counter.data.0 as *mut f64) = step as f64 };
        work.push(match param.dtype {
            DType::F32 => Work::F32(rule, tensor(param, grad, state, step)),
            DType::F64 => Work::F64(rule, tensor(param, grad, state, step)),
        });
    }
    crate::profiling::detach(py, "adafactor_step", move || adafactor::step(work))
}

/// A group's options.
fn read_options(dict: &Bound<'_, PyDict>) -> PyResult<Adafactor> {
    let py = dict.py();
    let eps = item(dict, intern!(py, "eps"))?;
    let bad_eps = || {
        wrong(
            "'eps' must be a pair (eps1, eps2) of numbers, eps1 may be None",
            &eps,
        )
    };
    let pair = items(&eps).map_err(|_| bad_eps())?;
    let [eps1, eps2] = <[Bound<'_, PyAny>; 2]>::try_from(pair).map_err(|_| bad_eps())?;
    Ok(Adafactor {
        lr: get_f64(dict, intern!(py, "lr"))?,
        beta2_decay: get_f64(dict, intern!(py, "beta2_decay"))?,
        eps1: if eps1.is_none() {
            None
        } else {
            Some(eps1.extract::<f64>().map_err(|_| bad_eps())?)
        },
        eps2: eps2.extract::<f64>().map_err(|_| bad_eps())?,
        d: get_f64(dict, intern!(py, "d"))?,
        weight_decay: get_f64(dict, intern!(py, "weight_decay"))?,
        maximize: get_bool(dict, intern!(py, "maximize"))?,
    })
}

/// A param's state arrays, named: torch's `row_var` of shape `(..., rows, 1)` and `col_var` of
/// shape `(..., 1, cols)` for a param of shape `(..., rows, cols)`, else `variance` of its shape.
fn check_state<'py>(
    param: &ArrayInfo<'py>,
    state: &Bound<'py, PyAny>,
    label: &dyn Fn() -> String,
) -> PyResult<Vec<(&'static str, ArrayInfo<'py>)>> {
    let shape = param.array.shape();
    let expected = match shape {
        [lead @ .., rows, cols] => vec![
            (ROW_VAR, [lead, &[*rows, 1]].concat()),
            (COL_VAR, [lead, &[1, *cols]].concat()),
        ],
        _ => vec![(VARIANCE, shape.to_vec())],
    };
    let arrays = items(state)?;
    if arrays.len() != expected.len() {
        let names: Vec<&str> = expected.iter().map(|(name, _)| *name).collect();
        return Err(invalid_param(format!(
            "{}: got {} state arrays, but a param of shape {} keeps {} ({})",
            label(),
            arrays.len(),
            shape_str(shape),
            names.len(),
            names.join(", ")
        )));
    }
    let mut checked = Vec::with_capacity(arrays.len());
    for ((name, needs), array) in expected.into_iter().zip(&arrays) {
        let what = || state_label(&label(), name);
        let info = check_array(array, &what, Access::Write)?;
        check_like(param, &info, &needs, &what)?;
        checked.push((name, info));
    }
    Ok(checked)
}

/// The count in a checked step counter.
fn read_count(counter: &ArrayInfo<'_>) -> f64 {
    // SAFETY: `counter` is an aligned, C-contiguous float64 array of one element (checked by the
    // caller) that the caller's list keeps alive, and the GIL is held.
    unsafe { *(counter.data.0 as *const f64) }
}

/// The slices of one param's update.
fn tensor<'a, T: Float>(
    param: &ArrayInfo<'_>,
    grad: &ArrayInfo<'_>,
    state: &[(&str, ArrayInfo<'_>)],
    step: u64,
) -> Tensor<'a, T> {
    let shape = param.array.shape();
    let slice = |info: &ArrayInfo<'_>| {
        // SAFETY: each array is C-contiguous, aligned, native-order, of type T (`check_array` and
        // the dtype checks) and `info.len` elements long, kept alive by the caller's lists for the
        // whole call. The param and state ranges are pairwise disjoint and no grad overlaps them
        // (checked), so the `&mut` slices alias nothing, and each array is sliced once. Python
        // code may not touch the arrays while the GIL is released: the optimizer steps from one
        // thread at a time, and other threads writing its arrays meanwhile is a data race the API
        // forbids, as in torch.
        unsafe { std::slice::from_raw_parts_mut(info.data.0 as *mut T, info.len) }
    };
    let grad = {
        // SAFETY: as for `slice`, but only read: grads may be read-only, and two params may
        // share one grad.
        unsafe { std::slice::from_raw_parts(grad.data.0 as *const T, grad.len) }
    };
    let moment = match (state, shape) {
        ([(_, row_var), (_, col_var)], [.., rows, cols]) => SecondMoment::Factored {
            row_var: slice(row_var),
            col_var: slice(col_var),
            rows: *rows,
            cols: *cols,
        },
        ([(_, variance)], _) => SecondMoment::Unfactored {
            variance: slice(variance),
        },
        _ => unreachable!("check_state gives two arrays for 2+ dims, else one"),
    };
    Tensor::new(slice(param), grad, moment, step)
}
