//! `relu`, `softmax`, `log_softmax` and their gradients (`optrs_core::nn::{activation, softmax}`).

use super::{dtype_of, nn_error, output_overwritten, writable, write, Input, Scalar};
use crate::arrays::DType;
use crate::profiling::detach;
use optrs_core::nn::softmax as softmax_rows;
use optrs_core::nn::{activation, expect_ndim, expect_shape};
use pyo3::prelude::*;

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(relu, m)?)?;
    m.add_function(wrap_pyfunction!(relu_backward, m)?)?;
    m.add_function(wrap_pyfunction!(log_softmax, m)?)?;
    m.add_function(wrap_pyfunction!(log_softmax_backward, m)?)?;
    m.add_function(wrap_pyfunction!(softmax, m)?)?;
    m.add_function(wrap_pyfunction!(softmax_backward, m)?)?;
    Ok(())
}

/// A kernel of one input into an output of its shape, given the class count (0 for any shape).
type Unary<T> = fn(&[T], usize, &mut [T]);

/// A gradient kernel of `(grad_y, y)` into an output of their shape, given the class count.
type Binary<T> = fn(&[T], &[T], usize, &mut [T]);

/// Runs the kernel `name` for `x`'s dtype; `rows` asks for a 2-D `(rows, classes)` input.
fn unary<'py>(
    py: Python<'py>,
    name: &'static str,
    x: &Bound<'py, PyAny>,
    rows: bool,
    kernels: (Unary<f32>, Unary<f64>),
) -> PyResult<Bound<'py, PyAny>> {
    match dtype_of(x, "x")? {
        DType::F32 => unary_as(py, name, x, rows, kernels.0),
        DType::F64 => unary_as(py, name, x, rows, kernels.1),
    }
}

fn unary_as<'py, T: Scalar>(
    py: Python<'py>,
    name: &'static str,
    x: &Bound<'py, PyAny>,
    rows: bool,
    kernel: Unary<T>,
) -> PyResult<Bound<'py, PyAny>> {
    let x = Input::<T>::new(x, "x", "x")?;
    let classes = classes("x", x.shape(), rows)?;
    let y = output_overwritten::<T>(py, x.shape(), name)?;
    let mut y_out = write(&y)?;
    let (x, y_data) = (x.data()?, writable(&mut y_out)?);
    detach(py, name, || kernel(x, classes, y_data))?;
    drop(y_out);
    Ok(y.into_any())
}

/// Runs the gradient kernel `name` for `grad_y`'s dtype; `y` must have its dtype and shape.
fn binary<'py>(
    py: Python<'py>,
    name: &'static str,
    grad_y: &Bound<'py, PyAny>,
    y: &Bound<'py, PyAny>,
    rows: bool,
    kernels: (Binary<f32>, Binary<f64>),
) -> PyResult<Bound<'py, PyAny>> {
    match dtype_of(grad_y, "grad_y")? {
        DType::F32 => binary_as(py, name, grad_y, y, rows, kernels.0),
        DType::F64 => binary_as(py, name, grad_y, y, rows, kernels.1),
    }
}

fn binary_as<'py, T: Scalar>(
    py: Python<'py>,
    name: &'static str,
    grad_y: &Bound<'py, PyAny>,
    y: &Bound<'py, PyAny>,
    rows: bool,
    kernel: Binary<T>,
) -> PyResult<Bound<'py, PyAny>> {
    let grad_y = Input::<T>::new(grad_y, "grad_y", "grad_y")?;
    let y = Input::<T>::new(y, "y", "grad_y")?;
    let classes = classes("grad_y", grad_y.shape(), rows)?;
    expect_shape("y", y.shape(), grad_y.shape()).map_err(nn_error)?;
    let grad_x = output_overwritten::<T>(py, grad_y.shape(), name)?;
    let mut grad_x_out = write(&grad_x)?;
    let (grad_y, y, grad_x_data) = (grad_y.data()?, y.data()?, writable(&mut grad_x_out)?);
    detach(py, name, || kernel(grad_y, y, classes, grad_x_data))?;
    drop(grad_x_out);
    Ok(grad_x.into_any())
}

/// The class count of a 2-D `(rows, classes)` input, when `rows` asks for one.
fn classes(name: &str, shape: &[usize], rows: bool) -> PyResult<usize> {
    if !rows {
        return Ok(0);
    }
    expect_ndim(name, shape, 2, "(rows, classes)").map_err(nn_error)?;
    Ok(shape[1])
}

/// `torch.relu(x)`, any shape.
#[pyfunction]
fn relu<'py>(py: Python<'py>, x: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    unary(
        py,
        "relu",
        x,
        false,
        (
            |x, _, y| activation::relu(x, y),
            |x, _, y| activation::relu(x, y),
        ),
    )
}

/// The gradient of `relu` given its output `y`: grad_y where y > 0, else 0.
#[pyfunction]
fn relu_backward<'py>(
    py: Python<'py>,
    grad_y: &Bound<'py, PyAny>,
    y: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    binary(
        py,
        "relu_backward",
        grad_y,
        y,
        false,
        (
            |g, y, _, gx| activation::relu_backward(g, y, gx),
            |g, y, _, gx| activation::relu_backward(g, y, gx),
        ),
    )
}

/// `log_softmax` over the last axis of a 2-D `(rows, classes)` array.
#[pyfunction]
fn log_softmax<'py>(py: Python<'py>, x: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    unary(
        py,
        "log_softmax",
        x,
        true,
        (softmax_rows::log_softmax, softmax_rows::log_softmax),
    )
}

/// The gradient of `log_softmax` given its output `y`.
#[pyfunction]
fn log_softmax_backward<'py>(
    py: Python<'py>,
    grad_y: &Bound<'py, PyAny>,
    y: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    let kernels: (Binary<f32>, Binary<f64>) = (
        softmax_rows::log_softmax_backward,
        softmax_rows::log_softmax_backward,
    );
    binary(py, "log_softmax_backward", grad_y, y, true, kernels)
}

/// `softmax` over the last axis of a 2-D `(rows, classes)` array.
#[pyfunction]
fn softmax<'py>(py: Python<'py>, x: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    unary(
        py,
        "softmax",
        x,
        true,
        (softmax_rows::softmax, softmax_rows::softmax),
    )
}

/// The gradient of `softmax` given its output `y`.
#[pyfunction]
fn softmax_backward<'py>(
    py: Python<'py>,
    grad_y: &Bound<'py, PyAny>,
    y: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    let kernels: (Binary<f32>, Binary<f64>) = (
        softmax_rows::softmax_backward,
        softmax_rows::softmax_backward,
    );
    binary(py, "softmax_backward", grad_y, y, true, kernels)
}
