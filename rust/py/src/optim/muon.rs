//! `muon_step`: one Muon step over every param group. Muon needs each matrix whole, so it does not
//! fit the element-wise `Engine`: this one function checks every group's options and every array
//! (params, momentum buffers, grads: dtype, 2-D shape, layout, no shared memory; see `whole.rs`)
//! before it writes anything, then runs the whole step in one GIL-free call into
//! `optrs_core::rules::muon`.

use crate::arrays::{check_array, shape_str, Access, ArrayInfo, DType, DataPtr};
use crate::engine::{get_bool, get_f64};
use crate::errors::{invalid_hyperparameter, invalid_param};
use crate::whole::{
    check_counts, check_grad, check_like, group_options, item, items, state_label, wrong,
    WrittenRanges,
};
use numpy::PyUntypedArrayMethods;
use optrs_core::rules::muon::{self, AdjustLr, Matrix, Muon, Work};
use optrs_core::Float;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::PyDict;

const BUFFER: &str = "momentum_buffer";

/// One Muon step. `groups` are the param group dicts (their options, and `len(group["params"])`
/// params each); `params`, `grads` and `momentum_buffers` list every param's array, grad (None
/// skips the param, as in torch) and momentum buffer, in group order. With every grad None it
/// only checks the arrays and options.
#[pyfunction]
pub fn muon_step(
    py: Python<'_>,
    groups: &Bound<'_, PyAny>,
    params: &Bound<'_, PyAny>,
    grads: &Bound<'_, PyAny>,
    momentum_buffers: &Bound<'_, PyAny>,
) -> PyResult<()> {
    let (params, grads, buffers) = (items(params)?, items(grads)?, items(momentum_buffers)?);
    let (rules, positions) = group_options(groups, read_options, Muon::validate)?;
    let listed = positions.len();
    let lists = [
        ("params", params.len()),
        ("momentum buffers", buffers.len()),
    ];
    check_counts(listed, &lists, grads.len())?;
    let mut checked = Vec::with_capacity(listed);
    let mut written = WrittenRanges::default();
    for index in 0..listed {
        let label = || positions.label(index);
        let param = check_matrix(&params[index], &label)?;
        let what = || state_label(&label(), BUFFER);
        let buffer = check_array(&buffers[index], &what, Access::Write)?;
        check_like(&param, &buffer, param.array.shape(), &what)?;
        written.add(&param, index, None);
        written.add(&buffer, index, Some(BUFFER));
        let grad = check_grad(&grads[index], &param, &label)?;
        checked.push((rules[positions.group(index)], param, buffer, grad));
    }
    written.check_disjoint(&positions)?;
    let mut work = Vec::new();
    for (index, (rule, param, buffer, grad)) in checked.iter().enumerate() {
        let Some(grad) = grad else {
            continue;
        };
        written.check_grad(grad, index, &positions)?;
        let shape = param.array.shape();
        let (rows, cols) = (shape[0], shape[1]);
        work.push(match param.dtype {
            DType::F32 => Work::F32(*rule, matrix(param, grad, buffer, rows, cols)),
            DType::F64 => Work::F64(*rule, matrix(param, grad, buffer, rows, cols)),
        });
    }
    // Every check passed: from here on nothing fails, so no array is left half-updated.
    crate::profiling::detach(py, "muon_step", move || muon::step(work))
}

/// A group's options.
fn read_options(dict: &Bound<'_, PyDict>) -> PyResult<Muon> {
    let py = dict.py();
    let coefficients = item(dict, intern!(py, "ns_coefficients"))?;
    let ns_coefficients = coefficients
        .extract::<Vec<f64>>()
        .ok()
        .and_then(|v| <[f64; 3]>::try_from(v).ok())
        .ok_or_else(|| {
            wrong(
                "'ns_coefficients' must be a tuple of exactly 3 numbers (a, b, c)",
                &coefficients,
            )
        })?;
    let steps = item(dict, intern!(py, "ns_steps"))?;
    let ns_steps = steps
        .extract::<usize>()
        .map_err(|_| wrong("'ns_steps' must be a whole number >= 0", &steps))?;
    let adjust = item(dict, intern!(py, "adjust_lr_fn"))?;
    let name = if adjust.is_none() {
        None
    } else {
        Some(adjust.extract::<String>().map_err(|_| {
            wrong(
                "'adjust_lr_fn' must be None, 'original' or 'match_rms_adamw'",
                &adjust,
            )
        })?)
    };
    let adjust_lr_fn = AdjustLr::from_name(name.as_deref()).ok_or_else(|| {
        invalid_hyperparameter(format!(
            "Adjust learning rate function {} is not supported; use None, 'original' or \
             'match_rms_adamw'",
            name.unwrap_or_default()
        ))
    })?;
    Ok(Muon {
        lr: get_f64(dict, intern!(py, "lr"))?,
        weight_decay: get_f64(dict, intern!(py, "weight_decay"))?,
        momentum: get_f64(dict, intern!(py, "momentum"))?,
        nesterov: get_bool(dict, intern!(py, "nesterov"))?,
        ns_coefficients,
        eps: get_f64(dict, intern!(py, "eps"))?,
        ns_steps,
        adjust_lr_fn,
    })
}

/// A writeable float32/float64 param of two dimensions, as torch's Muon requires.
fn check_matrix<'py>(
    param: &Bound<'py, PyAny>,
    label: &dyn Fn() -> String,
) -> PyResult<ArrayInfo<'py>> {
    let info = check_array(param, label, Access::Write)?;
    if info.array.ndim() != 2 {
        return Err(invalid_param(format!(
            "{} has shape {}: Muon only supports 2D parameters (matrices); optimize biases, \
             embeddings and other params with another optimizer, such as AdamW",
            label(),
            shape_str(info.array.shape())
        )));
    }
    Ok(info)
}

/// The slices of one param's update.
fn matrix<'a, T: Float>(
    param: &ArrayInfo<'_>,
    grad: &ArrayInfo<'_>,
    buffer: &ArrayInfo<'_>,
    rows: usize,
    cols: usize,
) -> Matrix<'a, T> {
    let len = param.len;
    let (param, grad, buffer): (DataPtr, DataPtr, DataPtr) = (param.data, grad.data, buffer.data);
    // SAFETY: each pointer is the data of a C-contiguous, aligned, native-order array of `len`
    // elements of type T (`check_array` and the dtype and shape checks), kept alive by the
    // caller's lists for the whole call. The param and buffer ranges are pairwise disjoint and no
    // grad overlaps them (checked above), so the `&mut` slices alias nothing. Python code may not
    // touch the arrays while the GIL is released: the optimizer steps from one thread at a time,
    // and other threads writing its arrays meanwhile is a data race the API forbids, as in torch.
    unsafe {
        Matrix::new(
            std::slice::from_raw_parts_mut(param.0 as *mut T, len),
            std::slice::from_raw_parts(grad.0 as *const T, len),
            std::slice::from_raw_parts_mut(buffer.0 as *mut T, len),
            rows,
            cols,
        )
    }
}
