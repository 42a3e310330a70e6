//! `muon_step`: one Muon step over every param group. Muon needs each matrix whole, so it does not
//! fit the element-wise `Engine`: this one function checks every group's options and every array
//! (params, momentum buffers, grads: dtype, 2-D shape, layout, no shared memory) before it writes
//! anything, then runs the whole step in one GIL-free call into `optrs_core::rules::muon`.

use crate::arrays::{check_array, shape_str, Access, ArrayInfo, DType, DataPtr};
use crate::engine::{get_bool, get_f64};
use crate::errors::{invalid_hyperparameter, invalid_param, param_dtype};
use numpy::PyUntypedArrayMethods;
use optrs_core::rules::muon::{self, AdjustLr, Matrix, Muon, Work};
use optrs_core::Float;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};

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
    let groups: Vec<Bound<'_, PyAny>> = groups.try_iter()?.collect::<PyResult<_>>()?;
    let params: Vec<Bound<'_, PyAny>> = params.try_iter()?.collect::<PyResult<_>>()?;
    let grads: Vec<Bound<'_, PyAny>> = grads.try_iter()?.collect::<PyResult<_>>()?;
    let buffers: Vec<Bound<'_, PyAny>> = momentum_buffers.try_iter()?.collect::<PyResult<_>>()?;
    let mut options = Vec::with_capacity(groups.len());
    for (index, group) in groups.iter().enumerate() {
        options.push(group_options(group, &|| format!("param_groups[{index}]"))?);
    }
    let listed: usize = options.iter().map(|(_, count)| count).sum();
    if params.len() != listed || buffers.len() != listed {
        return Err(invalid_param(format!(
            "the param groups list {listed} params, but got {} params and {} momentum buffers",
            params.len(),
            buffers.len()
        )));
    }
    if grads.len() != listed {
        return Err(invalid_param(format!(
            "step() got {} grads for {listed} params; pass one grad (or None) per param, in param \
             group order",
            grads.len()
        )));
    }
    // Where each param sits, for error messages (built only on failure).
    let positions: Vec<(usize, usize)> = options
        .iter()
        .enumerate()
        .flat_map(|(group, &(_, count))| (0..count).map(move |i| (group, i)))
        .collect();
    let label = |index: usize| {
        let (group, i) = positions[index];
        format!("param_groups[{group}]['params'][{i}]")
    };
    let describe = |w: &Written| match w.holds {
        Holds::Param => label(w.index),
        Holds::Buffer => buffer_label(&label(w.index)),
    };
    let mut checked = Vec::with_capacity(listed);
    let mut written = Vec::with_capacity(2 * listed);
    for (index, &(group, _)) in positions.iter().enumerate() {
        let rule = options[group].0;
        let param = check_matrix(&params[index], &|| label(index))?;
        let what = || buffer_label(&label(index));
        let buffer = check_array(&buffers[index], &what, Access::Write)?;
        check_like_param(&param, &buffer, &what)?;
        written.push(Written::of(&param, index, Holds::Param));
        written.push(Written::of(&buffer, index, Holds::Buffer));
        let grad = &grads[index];
        let grad = if grad.is_none() {
            None
        } else {
            let what = || format!("grad of {}", label(index));
            let info = check_array(grad, &what, Access::Read)?;
            check_like_param(&param, &info, &what)?;
            Some(info)
        };
        checked.push((index, rule, param, buffer, grad));
    }
    written.retain(|w| w.start < w.end);
    written.sort_unstable_by_key(|w| w.start);
    for pair in written.windows(2) {
        // Sorted by start: if ranges i < j overlap, so do i and i + 1.
        if pair[1].start < pair[0].end {
            return Err(invalid_param(format!(
                "{} shares memory with {}; every param and momentum buffer needs its own memory \
                 (a param listed twice, or views of one array, cannot be optimized together)",
                describe(&pair[1]),
                describe(&pair[0])
            )));
        }
    }
    let mut work = Vec::new();
    for (index, rule, param, buffer, grad) in &checked {
        let Some(grad) = grad else {
            continue;
        };
        let (start, end) = grad.byte_range();
        if let Some(owner) = overlapping(&written, start, end) {
            return Err(invalid_param(format!(
                "grad of {} shares memory with {}, which the step writes; pass a separate grad \
                 array (a copy)",
                label(*index),
                describe(owner)
            )));
        }
        let shape = param.array.shape();
        let (rows, cols) = (shape[0], shape[1]);
        work.push(match param.dtype {
            DType::F32 => Work::F32(*rule, matrix(param, grad, buffer, rows, cols)),
            DType::F64 => Work::F64(*rule, matrix(param, grad, buffer, rows, cols)),
        });
    }
    // Every check passed: from here on nothing fails, so no array is left half-updated.
    py.detach(move || muon::step(work));
    Ok(())
}

/// A group's options and how many params it lists.
fn group_options(group: &Bound<'_, PyAny>, label: &dyn Fn() -> String) -> PyResult<(Muon, usize)> {
    let dict = group
        .cast::<PyDict>()
        .map_err(|_| param_dtype(format!("{} must be a dict", label())))?;
    let read = || -> PyResult<(Muon, usize)> {
        let py = group.py();
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
        let rule = Muon {
            lr: get_f64(dict, intern!(py, "lr"))?,
            weight_decay: get_f64(dict, intern!(py, "weight_decay"))?,
            momentum: get_f64(dict, intern!(py, "momentum"))?,
            nesterov: get_bool(dict, intern!(py, "nesterov"))?,
            ns_coefficients,
            eps: get_f64(dict, intern!(py, "eps"))?,
            ns_steps,
            adjust_lr_fn,
        };
        let count = item(dict, intern!(py, "params"))?.len()?;
        Ok((rule, count))
    };
    let (rule, count) = read()
        .map_err(|e| invalid_hyperparameter(format!("{}: {}", label(), e.value(group.py()))))?;
    rule.validate()
        .map_err(|e| invalid_hyperparameter(format!("{}: {e}", label())))?;
    Ok((rule, count))
}

fn item<'py>(dict: &Bound<'py, PyDict>, key: &Bound<'py, PyString>) -> PyResult<Bound<'py, PyAny>> {
    dict.get_item(key)?
        .ok_or_else(|| invalid_hyperparameter(format!("the param group has no '{key}'")))
}

fn wrong(what: &str, value: &Bound<'_, PyAny>) -> PyErr {
    let shown = value.repr().map(|r| r.to_string()).unwrap_or_default();
    invalid_hyperparameter(format!("{what}, got {shown}"))
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

fn buffer_label(param: &str) -> String {
    format!("{param}'s state 'momentum_buffer'")
}

/// The grad or momentum buffer `info` must have its param's dtype and shape.
fn check_like_param(
    param: &ArrayInfo<'_>,
    info: &ArrayInfo<'_>,
    what: &dyn Fn() -> String,
) -> PyResult<()> {
    if info.dtype != param.dtype {
        let name = param.dtype.name();
        return Err(param_dtype(format!(
            "{} has dtype {} but the param is {name}; pass a {name} array (x.astype(np.{name}))",
            what(),
            info.dtype.name()
        )));
    }
    if info.array.shape() != param.array.shape() {
        return Err(invalid_param(format!(
            "{} has shape {} but the param has shape {}",
            what(),
            shape_str(info.array.shape()),
            shape_str(param.array.shape())
        )));
    }
    Ok(())
}

#[derive(Clone, Copy)]
enum Holds {
    Param,
    Buffer,
}

/// A byte range the step writes: param `index`'s array or its momentum buffer.
struct Written {
    start: usize,
    end: usize,
    index: usize,
    holds: Holds,
}

impl Written {
    fn of(info: &ArrayInfo<'_>, index: usize, holds: Holds) -> Self {
        let (start, end) = info.byte_range();
        Written {
            start,
            end,
            index,
            holds,
        }
    }
}

/// The written range that overlaps [start, end), if any; `written` is sorted by start and
/// pairwise disjoint.
fn overlapping(written: &[Written], start: usize, end: usize) -> Option<&Written> {
    if start == end {
        return None;
    }
    let candidates = written.partition_point(|w| w.start < end);
    let last = written.get(candidates.checked_sub(1)?)?;
    (last.end > start).then_some(last)
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
