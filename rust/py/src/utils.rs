//! `torch.nn.utils`' gradient norm functions over lists of NumPy arrays: each checks every array
//! first, then runs the norm and the scaling in one GIL-free call into `optrs_core::norms`.

use crate::arrays::{check_array, Access, ArrayInfo, DType};
use crate::errors::{invalid_hyperparameter, invalid_param};
use crate::profiling::detach;
use optrs_core::norms::{self, Grad, GradMut, NormType, Precision};
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::types::PyFloat;

/// Adds this file's functions to the module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(clip_grad_norm, m)?)?;
    m.add_function(wrap_pyfunction!(clip_grads_with_norm, m)?)?;
    m.add_function(wrap_pyfunction!(total_norm, m)?)?;
    Ok(())
}

/// Scales the arrays in `grads` (None entries are skipped) so that their total `norm_type`-norm
/// is at most `max_norm`, as `torch.nn.utils.clip_grad_norm_`; returns the total norm before
/// clipping and its dtype name. `name` names the list in errors (`name[3]`).
#[pyfunction]
#[pyo3(signature = (grads, max_norm, norm_type=2.0, error_if_nonfinite=false, name="grads"))]
fn clip_grad_norm(
    py: Python<'_>,
    grads: &Bound<'_, PyAny>,
    max_norm: f64,
    norm_type: f64,
    error_if_nonfinite: bool,
    name: &str,
) -> PyResult<(f64, &'static str)> {
    let norm = norm_type_of(norm_type)?;
    let infos = check_grads(grads, name, Access::Write)?;
    let grads: Vec<GradMut<'_>> = infos.iter().map(grad_mut).collect();
    let precision = Precision::of(grads.iter().map(GradMut::as_grad));
    let result = detach(py, "clip_grad_norm", move || {
        norms::clip_grad_norm(grads, max_norm, norm, error_if_nonfinite)
    })?;
    match result {
        Ok(total) => Ok((total, dtype_name(precision))),
        Err(_) => Err(non_finite(py, norm_type)),
    }
}

/// Scales the arrays in `grads` by torch's clip coefficient for a total norm computed before,
/// of dtype `norm_dtype` ("float32" or "float64"), as `torch.nn.utils.clip_grads_with_norm_`.
#[pyfunction]
#[pyo3(signature = (grads, max_norm, total_norm, norm_dtype="float64", name="grads"))]
fn clip_grads_with_norm(
    py: Python<'_>,
    grads: &Bound<'_, PyAny>,
    max_norm: f64,
    total_norm: f64,
    norm_dtype: &str,
    name: &str,
) -> PyResult<()> {
    let precision = match norm_dtype {
        "float32" => Precision::F32,
        "float64" => Precision::F64,
        other => {
            return Err(invalid_hyperparameter(format!(
                "total_norm has dtype {other}; pass a float32 or float64 norm (or a Python float)"
            )))
        }
    };
    let infos = check_grads(grads, name, Access::Write)?;
    let grads: Vec<GradMut<'_>> = infos.iter().map(grad_mut).collect();
    detach(py, "clip_grads_with_norm", move || {
        norms::clip_grads_with_norm(grads, max_norm, total_norm, precision)
    })?;
    Ok(())
}

/// The total `norm_type`-norm of the arrays in `tensors` (None entries are skipped), as
/// `torch.nn.utils.get_total_norm`; returns it and its dtype name.
#[pyfunction]
#[pyo3(signature = (tensors, norm_type=2.0, error_if_nonfinite=false, name="tensors"))]
fn total_norm(
    py: Python<'_>,
    tensors: &Bound<'_, PyAny>,
    norm_type: f64,
    error_if_nonfinite: bool,
    name: &str,
) -> PyResult<(f64, &'static str)> {
    let norm = norm_type_of(norm_type)?;
    let infos = check_grads(tensors, name, Access::Read)?;
    let grads: Vec<Grad<'_>> = infos.iter().map(grad_ref).collect();
    let precision = Precision::of(grads.iter().copied());
    let total = detach(py, "total_norm", move || {
        precision.round(norms::total_norm(&grads, norm))
    })?;
    if error_if_nonfinite && !total.is_finite() {
        return Err(non_finite(py, norm_type));
    }
    Ok((total, dtype_name(precision)))
}

fn norm_type_of(norm_type: f64) -> PyResult<NormType> {
    NormType::new(norm_type).map_err(|e| invalid_hyperparameter(e.to_string()))
}

/// torch's error, with `norm_type` written as Python writes it (`2.0`, `inf`).
fn non_finite(py: Python<'_>, norm_type: f64) -> PyErr {
    let shown = PyFloat::new(py, norm_type)
        .repr()
        .map(|r| r.to_string())
        .unwrap_or_else(|_| norm_type.to_string());
    PyRuntimeError::new_err(format!(
        "The total norm of order {shown} for gradients from `parameters` is non-finite, so it \
         cannot be clipped. To disable this error and scale the gradients by the non-finite norm \
         anyway, set `error_if_nonfinite=False`"
    ))
}

fn dtype_name(precision: Precision) -> &'static str {
    match precision {
        Precision::F32 => DType::F32.name(),
        Precision::F64 => DType::F64.name(),
    }
}

/// Checks every array of `list` (skipping None) before any is touched; arrays that are written
/// must not share memory, or a grad listed twice would be scaled twice by racing threads.
fn check_grads<'py>(
    list: &Bound<'py, PyAny>,
    name: &str,
    access: Access,
) -> PyResult<Vec<ArrayInfo<'py>>> {
    let mut infos = Vec::new();
    let mut ranges = Vec::new();
    for (index, item) in list.try_iter()?.enumerate() {
        let item = item?;
        if item.is_none() {
            continue;
        }
        let info = check_array(&item, &|| format!("{name}[{index}]"), access)?;
        let (start, end) = info.byte_range();
        if start < end {
            ranges.push((start, end, index));
        }
        infos.push(info);
    }
    if access == Access::Write {
        ranges.sort_unstable();
        // The range reaching furthest so far is the one a later range would overlap first.
        let mut furthest: Option<(usize, usize, usize)> = None;
        for range in ranges {
            if let Some(previous) = furthest.filter(|p| range.0 < p.1) {
                let (first, second) = (previous.2.min(range.2), previous.2.max(range.2));
                return Err(invalid_param(format!(
                    "{name}[{second}] shares memory with {name}[{first}]; each grad is scaled in \
                     place, so pass every grad once and in its own memory"
                )));
            }
            if furthest.is_none_or(|p| range.1 > p.1) {
                furthest = Some(range);
            }
        }
    }
    Ok(infos)
}

/// The array's elements as a shared slice.
///
/// Only call on arrays that `check_grads` checked; the slice must not outlive the call that
/// checked it, which holds references to the arrays and so keeps them allocated.
fn grad_ref<'s>(info: &'s ArrayInfo<'_>) -> Grad<'s> {
    if info.len == 0 {
        return match info.dtype {
            DType::F32 => Grad::F32(&[]),
            DType::F64 => Grad::F64(&[]),
        };
    }
    // SAFETY: `check_array` showed the pointer is the data of a live, aligned, C-contiguous array
    // of `len` elements of this dtype, which `info` keeps alive for the slice's lifetime. Nothing
    // in this call writes it; another Python thread writing it during the GIL-free call is a data
    // race the API forbids, as for optimizer steps.
    unsafe {
        match info.dtype {
            DType::F32 => Grad::F32(std::slice::from_raw_parts(
                info.data.0 as *const f32,
                info.len,
            )),
            DType::F64 => Grad::F64(std::slice::from_raw_parts(
                info.data.0 as *const f64,
                info.len,
            )),
        }
    }
}

/// The array's elements as a mutable slice.
///
/// Only call on arrays that `check_grads` checked for writing; the slice must not outlive the
/// call that checked it, which holds references to the arrays and so keeps them allocated.
fn grad_mut<'s>(info: &'s ArrayInfo<'_>) -> GradMut<'s> {
    if info.len == 0 {
        return match info.dtype {
            DType::F32 => GradMut::F32(&mut []),
            DType::F64 => GradMut::F64(&mut []),
        };
    }
    // SAFETY: `check_array` showed the pointer is the data of a live, aligned, C-contiguous,
    // writeable array of `len` elements of this dtype, which `info` keeps alive for the slice's
    // lifetime. Arrays checked for writing are pairwise disjoint (`check_grads`), so no two
    // `&mut` slices alias. Another Python thread writing these arrays during the GIL-free
    // call is a data race the API forbids, as for optimizer steps.
    unsafe {
        match info.dtype {
            DType::F32 => GradMut::F32(std::slice::from_raw_parts_mut(
                info.data.0 as *mut f32,
                info.len,
            )),
            DType::F64 => GradMut::F64(std::slice::from_raw_parts_mut(
                info.data.0 as *mut f64,
                info.len,
            )),
        }
    }
}
