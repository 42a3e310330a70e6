//! `max_pool2d`, `avg_pool2d` and their gradients (`optrs_core::nn::pooling`).

use super::{
    by_dtype, dtype_of, nn_error, output, output_overwritten, pair, shape_arg, writable, write,
    Input, Scalar, Targets,
};
use crate::arrays::DType;
use crate::profiling::detach;
use optrs_core::nn::pooling::{self, Average, Pool2d, PoolShape, UnpoolShape};
use pyo3::prelude::*;

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(max_pool2d, m)?)?;
    m.add_function(wrap_pyfunction!(max_pool2d_backward, m)?)?;
    m.add_function(wrap_pyfunction!(avg_pool2d, m)?)?;
    m.add_function(wrap_pyfunction!(avg_pool2d_backward, m)?)?;
    Ok(())
}

/// The window options; average pooling has no dilation (`None`: 1).
fn options(
    kernel_size: &Bound<'_, PyAny>,
    stride: &Bound<'_, PyAny>,
    padding: &Bound<'_, PyAny>,
    dilation: Option<&Bound<'_, PyAny>>,
    ceil_mode: bool,
) -> PyResult<Pool2d> {
    Ok(Pool2d {
        kernel: pair(kernel_size, "kernel_size", 1)?,
        stride: pair(stride, "stride", 1)?,
        padding: pair(padding, "padding", 0)?,
        dilation: dilation.map_or(Ok([1, 1]), |d| pair(d, "dilation", 1))?,
        ceil_mode,
    })
}

/// `torch.nn.functional.max_pool2d(x, ..., return_indices=True)`: `(y, indices)`, indices int64
/// flat `h * W + w` into each input plane.
#[pyfunction]
fn max_pool2d<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    kernel_size: &Bound<'py, PyAny>,
    stride: &Bound<'py, PyAny>,
    padding: &Bound<'py, PyAny>,
    dilation: &Bound<'py, PyAny>,
    ceil_mode: bool,
) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyAny>)> {
    let options = options(kernel_size, stride, padding, Some(dilation), ceil_mode)?;
    by_dtype!(dtype_of(x, "x")?, max_forward(py, x, options))
}

fn max_forward<'py, T: Scalar>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    options: Pool2d,
) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyAny>)> {
    let x = Input::<T>::new(x, "x", "x")?;
    let shape = PoolShape::new("x", x.shape(), options).map_err(nn_error)?;
    let y = output_overwritten::<T>(py, &shape.output_shape(), "max_pool2d's output")?;
    let indices = output_overwritten::<i64>(py, &shape.output_shape(), "max_pool2d's indices")?;
    let (mut y_out, mut indices_out) = (write(&y)?, write(&indices)?);
    let (x, y_data, indices_data) = (
        x.data()?,
        writable(&mut y_out)?,
        writable(&mut indices_out)?,
    );
    detach(py, "max_pool2d", || {
        pooling::max_pool2d(&shape, x, y_data, indices_data)
    })?
    .map_err(nn_error)?;
    drop((y_out, indices_out));
    Ok((y.into_any(), indices.into_any()))
}

/// The gradient of `max_pool2d`: `grad_y` scattered back through `indices` onto an input of
/// `input_shape` `(N, C, H, W)`.
#[pyfunction]
fn max_pool2d_backward<'py>(
    py: Python<'py>,
    grad_y: &Bound<'py, PyAny>,
    indices: &Bound<'py, PyAny>,
    input_shape: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    by_dtype!(
        dtype_of(grad_y, "grad_y")?,
        max_backward(py, grad_y, indices, input_shape)
    )
}

fn max_backward<'py, T: Scalar>(
    py: Python<'py>,
    grad_y: &Bound<'py, PyAny>,
    indices: &Bound<'py, PyAny>,
    input_shape: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    let grad_y = Input::<T>::new(grad_y, "grad_y", "grad_y")?;
    let indices = Targets::new(indices, "indices")?;
    let input_shape = shape_arg(input_shape, "input_shape")?;
    let shape =
        UnpoolShape::new(grad_y.shape(), indices.shape(), &input_shape).map_err(nn_error)?;
    let grad_x = output_overwritten::<T>(py, &input_shape, "max_pool2d_backward's output")?;
    let mut grad_x_out = write(&grad_x)?;
    let (grad_y, indices, grad_x_data) =
        (grad_y.data()?, indices.data()?, writable(&mut grad_x_out)?);
    detach(py, "max_pool2d_backward", || {
        pooling::max_pool2d_backward(&shape, grad_y, indices, grad_x_data)
    })?
    .map_err(nn_error)?;
    drop(grad_x_out);
    Ok(grad_x.into_any())
}

/// `torch.nn.functional.avg_pool2d(x, kernel_size, stride, padding, ceil_mode,
/// count_include_pad, divisor_override)`.
#[pyfunction]
#[allow(clippy::too_many_arguments)]
fn avg_pool2d<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    kernel_size: &Bound<'py, PyAny>,
    stride: &Bound<'py, PyAny>,
    padding: &Bound<'py, PyAny>,
    ceil_mode: bool,
    count_include_pad: bool,
    divisor_override: Option<i64>,
) -> PyResult<Bound<'py, PyAny>> {
    let options = options(kernel_size, stride, padding, None, ceil_mode)?;
    let average = Average::new(count_include_pad, divisor_override).map_err(nn_error)?;
    by_dtype!(dtype_of(x, "x")?, avg_forward(py, x, options, average))
}

fn avg_forward<'py, T: Scalar>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    options: Pool2d,
    average: Average,
) -> PyResult<Bound<'py, PyAny>> {
    let x = Input::<T>::new(x, "x", "x")?;
    let shape = PoolShape::new("x", x.shape(), options).map_err(nn_error)?;
    let y = output::<T>(py, &shape.output_shape(), "avg_pool2d's output")?;
    let mut y_out = write(&y)?;
    let (x, y_data) = (x.data()?, writable(&mut y_out)?);
    detach(py, "avg_pool2d", || {
        pooling::avg_pool2d(&shape, &average, x, y_data)
    })?;
    drop(y_out);
    Ok(y.into_any())
}

/// The gradient of `avg_pool2d` for an input of `input_shape` `(N, C, H, W)`.
#[pyfunction]
#[allow(clippy::too_many_arguments)]
fn avg_pool2d_backward<'py>(
    py: Python<'py>,
    grad_y: &Bound<'py, PyAny>,
    input_shape: &Bound<'py, PyAny>,
    kernel_size: &Bound<'py, PyAny>,
    stride: &Bound<'py, PyAny>,
    padding: &Bound<'py, PyAny>,
    ceil_mode: bool,
    count_include_pad: bool,
    divisor_override: Option<i64>,
) -> PyResult<Bound<'py, PyAny>> {
    let options = options(kernel_size, stride, padding, None, ceil_mode)?;
    let average = Average::new(count_include_pad, divisor_override).map_err(nn_error)?;
    by_dtype!(
        dtype_of(grad_y, "grad_y")?,
        avg_backward(py, grad_y, input_shape, options, average)
    )
}

fn avg_backward<'py, T: Scalar>(
    py: Python<'py>,
    grad_y: &Bound<'py, PyAny>,
    input_shape: &Bound<'py, PyAny>,
    options: Pool2d,
    average: Average,
) -> PyResult<Bound<'py, PyAny>> {
    let grad_y = Input::<T>::new(grad_y, "grad_y", "grad_y")?;
    let input_shape = shape_arg(input_shape, "input_shape")?;
    let shape = PoolShape::new("input_shape", &input_shape, options).map_err(nn_error)?;
    shape.check_grad_y(grad_y.shape()).map_err(nn_error)?;
    let grad_x = output::<T>(py, &shape.input_shape(), "avg_pool2d_backward's output")?;
    let mut grad_x_out = write(&grad_x)?;
    let (grad_y, grad_x_data) = (grad_y.data()?, writable(&mut grad_x_out)?);
    detach(py, "avg_pool2d_backward", || {
        pooling::avg_pool2d_backward(&shape, &average, grad_y, grad_x_data)
    })?;
    drop(grad_x_out);
    Ok(grad_x.into_any())
}
