//! The flat-vector arithmetic of L-BFGS (`optrs_core::vector`) over 1-D NumPy arrays: each call
//! checks its arrays, then runs GIL-free.

use crate::arrays::{check_array, Access, ArrayInfo, DType};
use crate::errors::{invalid_param, param_dtype};
use crate::profiling::detach;
use optrs_core::vector;
use pyo3::prelude::*;

/// Adds this file's functions to the module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(dot, m)?)?;
    m.add_function(wrap_pyfunction!(axpy, m)?)?;
    Ok(())
}

/// `a . b` in a fixed summation order (float64 accumulators), rounded to the arrays' dtype and
/// returned as a Python float.
#[pyfunction]
fn dot(py: Python<'_>, a: &Bound<'_, PyAny>, b: &Bound<'_, PyAny>) -> PyResult<f64> {
    let (a, b) = check_pair(a, b, Access::Read)?;
    let n = a.len;
    // SAFETY (every block below): `check_pair` showed both pointers are the data of live,
    // aligned, C-contiguous arrays of `n` elements of this dtype, kept alive by `a` and `b` for
    // the whole call; nothing writes them during it (another Python thread doing so is a data
    // race the API forbids).
    Ok(match a.dtype {
        DType::F32 => {
            let (a, b) = unsafe { (slice::<f32>(a.data.0, n), slice::<f32>(b.data.0, n)) };
            detach(py, "dot", move || vector::dot(a, b) as f64)?
        }
        DType::F64 => {
            let (a, b) = unsafe { (slice::<f64>(a.data.0, n), slice::<f64>(b.data.0, n)) };
            detach(py, "dot", move || vector::dot(a, b))?
        }
    })
}

/// `x += alpha * y` in place, one rounding per element (torch's `x.add_(y, alpha=alpha)`);
/// `alpha` is first rounded to the arrays' dtype.
#[pyfunction]
fn axpy(py: Python<'_>, x: &Bound<'_, PyAny>, y: &Bound<'_, PyAny>, alpha: f64) -> PyResult<()> {
    let (x, y) = check_pair(x, y, Access::Write)?;
    let n = x.len;
    // SAFETY (every block below): as in `dot`; `x` was checked writeable and `check_pair` showed
    // that `x` and `y` do not overlap, so the `&mut` slice aliases nothing.
    match x.dtype {
        DType::F32 => {
            let (x, y) = unsafe { (slice_mut::<f32>(x.data.0, n), slice::<f32>(y.data.0, n)) };
            detach(py, "axpy", move || vector::axpy(x, y, alpha as f32))?
        }
        DType::F64 => {
            let (x, y) = unsafe { (slice_mut::<f64>(x.data.0, n), slice::<f64>(y.data.0, n)) };
            detach(py, "axpy", move || vector::axpy(x, y, alpha))?
        }
    }
    Ok(())
}

/// Both arrays usable as they are, of one dtype and one length; the first written when
/// `first` is `Write`, and then not overlapping the second.
fn check_pair<'py>(
    first: &Bound<'py, PyAny>,
    second: &Bound<'py, PyAny>,
    access: Access,
) -> PyResult<(ArrayInfo<'py>, ArrayInfo<'py>)> {
    let names = match access {
        Access::Read => ("a", "b"),
        Access::Write => ("x", "y"),
    };
    let a = check_array(first, &|| names.0.to_string(), access)?;
    let b = check_array(second, &|| names.1.to_string(), Access::Read)?;
    if a.dtype != b.dtype {
        return Err(param_dtype(format!(
            "{} has dtype {} and {} {}; pass vectors of one dtype",
            names.0,
            a.dtype.name(),
            names.1,
            b.dtype.name()
        )));
    }
    if a.len != b.len {
        return Err(invalid_param(format!(
            "{} has {} elements and {} {}; pass vectors of one length",
            names.0, a.len, names.1, b.len
        )));
    }
    let ((a0, a1), (b0, b1)) = (a.byte_range(), b.byte_range());
    if access == Access::Write && a0 < b1 && b0 < a1 {
        return Err(invalid_param(format!(
            "{} shares memory with {}; x is written in place, so pass y in its own memory",
            names.0, names.1
        )));
    }
    Ok((a, b))
}

/// # Safety
/// `data` must point to `len` live, aligned elements of `T` that nothing writes meanwhile.
unsafe fn slice<'s, T>(data: *mut u8, len: usize) -> &'s [T] {
    if len == 0 {
        return &[];
    }
    // SAFETY: the caller's contract.
    unsafe { std::slice::from_raw_parts(data as *const T, len) }
}

/// # Safety
/// As [`slice`], and nothing else reads or writes the elements meanwhile.
unsafe fn slice_mut<'s, T>(data: *mut u8, len: usize) -> &'s mut [T] {
    if len == 0 {
        return &mut [];
    }
    // SAFETY: the caller's contract.
    unsafe { std::slice::from_raw_parts_mut(data as *mut T, len) }
}
