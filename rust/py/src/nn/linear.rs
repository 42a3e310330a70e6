//! `matmul`: the 2-D products of the linear layers (`optrs_core::matmul::product`), on the
//! `gemm` crate and optrs's pool rather than NumPy's BLAS, whose own threads fight the pool's on
//! a small machine.

use super::{by_dtype, dtype_of, nn_error, output_overwritten, writable, write, Input, Scalar};
use crate::arrays::DType;
use crate::profiling::detach;
use optrs_core::matmul::{product, Layout};
use optrs_core::nn::{expect_ndim, NnError};
use pyo3::prelude::*;

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(matmul, m)?)
}

/// `op(a) @ op(b)` for 2-D arrays of one dtype, `op` transposing when asked: a new
/// `(rows, cols)` array.
#[pyfunction]
#[pyo3(signature = (a, b, transpose_a=false, transpose_b=false))]
fn matmul<'py>(
    py: Python<'py>,
    a: &Bound<'py, PyAny>,
    b: &Bound<'py, PyAny>,
    transpose_a: bool,
    transpose_b: bool,
) -> PyResult<Bound<'py, PyAny>> {
    by_dtype!(
        dtype_of(a, "a")?,
        matmul_as(py, a, b, [transpose_a, transpose_b])
    )
}

fn matmul_as<'py, T: Scalar>(
    py: Python<'py>,
    a: &Bound<'py, PyAny>,
    b: &Bound<'py, PyAny>,
    transpose: [bool; 2],
) -> PyResult<Bound<'py, PyAny>> {
    let a = Input::<T>::new(a, "a", "a")?;
    let b = Input::<T>::new(b, "b", "a")?;
    expect_ndim("a", a.shape(), 2, "(rows, inner)").map_err(nn_error)?;
    expect_ndim("b", b.shape(), 2, "(inner, cols)").map_err(nn_error)?;
    let layout = |shape: &[usize], t: bool| {
        let stored = Layout::row_major(shape[0], shape[1]);
        if t {
            stored.transposed()
        } else {
            stored
        }
    };
    let (a_layout, b_layout) = (
        layout(a.shape(), transpose[0]),
        layout(b.shape(), transpose[1]),
    );
    if a_layout.cols != b_layout.rows {
        return Err(nn_error(NnError::Array(format!(
            "a is {} x {} and b {} x {} (after transpose_a={}, transpose_b={}); a's columns must \
             match b's rows",
            a_layout.rows, a_layout.cols, b_layout.rows, b_layout.cols, transpose[0], transpose[1]
        ))));
    }
    let out = output_overwritten::<T>(py, &[a_layout.rows, b_layout.cols], "matmul's output")?;
    let mut out_array = write(&out)?;
    let (a, b, out_data) = (a.data()?, b.data()?, writable(&mut out_array)?);
    detach(py, "matmul", || {
        product(out_data, (a, a_layout), (b, b_layout))
    })?;
    drop(out_array);
    Ok(out.into_any())
}
