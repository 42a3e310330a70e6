//! `conv2d` and `conv2d_backward` (`optrs_core::nn::conv`).

use super::{
    by_dtype, count, dtype_of, nn_error, optional_data, optional_input, output_overwritten, pair,
    writable, write, Input, Scalar,
};
use crate::arrays::DType;
use crate::profiling::detach;
use numpy::PyArrayDyn;
use optrs_core::nn::conv::{self, Conv2d, ConvGrads, ConvShape};
use pyo3::prelude::*;

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(conv2d, m)?)?;
    m.add_function(wrap_pyfunction!(conv2d_backward, m)?)?;
    Ok(())
}

fn options(
    stride: &Bound<'_, PyAny>,
    padding: &Bound<'_, PyAny>,
    dilation: &Bound<'_, PyAny>,
    groups: i64,
) -> PyResult<Conv2d> {
    Ok(Conv2d {
        stride: pair(stride, "stride", 1)?,
        padding: pair(padding, "padding", 0)?,
        dilation: pair(dilation, "dilation", 1)?,
        groups: count(groups, "groups", 1)?,
    })
}

/// `torch.nn.functional.conv2d(x, weight, bias, stride, padding, dilation, groups)`: x `(N, C_in,
/// H, W)`, weight `(C_out, C_in / groups, kH, kW)`, bias `(C_out,)` or None.
#[pyfunction]
#[allow(clippy::too_many_arguments)]
fn conv2d<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    weight: &Bound<'py, PyAny>,
    bias: Option<&Bound<'py, PyAny>>,
    stride: &Bound<'py, PyAny>,
    padding: &Bound<'py, PyAny>,
    dilation: &Bound<'py, PyAny>,
    groups: i64,
) -> PyResult<Bound<'py, PyAny>> {
    let options = options(stride, padding, dilation, groups)?;
    by_dtype!(dtype_of(x, "x")?, forward(py, x, weight, bias, options))
}

fn forward<'py, T: Scalar>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    weight: &Bound<'py, PyAny>,
    bias: Option<&Bound<'py, PyAny>>,
    options: Conv2d,
) -> PyResult<Bound<'py, PyAny>> {
    let x = Input::<T>::new(x, "x", "x")?;
    let weight = Input::<T>::new(weight, "weight", "x")?;
    let bias = optional_input::<T>(bias, "bias", "x")?;
    let shape = ConvShape::new(x.shape(), weight.shape(), options).map_err(nn_error)?;
    if let Some(bias) = &bias {
        shape.check_bias(bias.shape()).map_err(nn_error)?;
    }
    let y = output_overwritten::<T>(py, &shape.output_shape(), "conv2d's output")?;
    let mut y_out = write(&y)?;
    let (x, weight, bias, y_data) = (
        x.data()?,
        weight.data()?,
        optional_data(&bias)?,
        writable(&mut y_out)?,
    );
    detach(py, "conv2d", || {
        conv::conv2d(&shape, x, weight, bias, y_data)
    })?
    .map_err(nn_error)?;
    drop(y_out);
    Ok(y.into_any())
}

type Grads<'py> = (
    Option<Bound<'py, PyAny>>,
    Option<Bound<'py, PyAny>>,
    Option<Bound<'py, PyAny>>,
);

/// The gradients of `conv2d` for the upstream gradient `grad_y` (of y's shape): `(grad_x,
/// grad_weight, grad_bias)`, each None unless asked for.
#[pyfunction]
#[allow(clippy::too_many_arguments)]
fn conv2d_backward<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    weight: &Bound<'py, PyAny>,
    grad_y: &Bound<'py, PyAny>,
    stride: &Bound<'py, PyAny>,
    padding: &Bound<'py, PyAny>,
    dilation: &Bound<'py, PyAny>,
    groups: i64,
    need_input: bool,
    need_weight: bool,
    need_bias: bool,
) -> PyResult<Grads<'py>> {
    let options = options(stride, padding, dilation, groups)?;
    let needs = [need_input, need_weight, need_bias];
    by_dtype!(
        dtype_of(x, "x")?,
        backward(py, x, weight, grad_y, options, needs)
    )
}

fn backward<'py, T: Scalar>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    weight: &Bound<'py, PyAny>,
    grad_y: &Bound<'py, PyAny>,
    options: Conv2d,
    [need_input, need_weight, need_bias]: [bool; 3],
) -> PyResult<Grads<'py>> {
    let x = Input::<T>::new(x, "x", "x")?;
    let weight = Input::<T>::new(weight, "weight", "x")?;
    let grad_y = Input::<T>::new(grad_y, "grad_y", "x")?;
    let shape = ConvShape::new(x.shape(), weight.shape(), options).map_err(nn_error)?;
    shape.check_grad_y(grad_y.shape()).map_err(nn_error)?;
    let new = |need: bool, shape: &[usize], what: &str| {
        need.then(|| output_overwritten::<T>(py, shape, what))
            .transpose()
    };
    let grad_x = new(need_input, x.shape(), "grad_x")?;
    let grad_weight = new(need_weight, weight.shape(), "grad_weight")?;
    let grad_bias = new(need_bias, &[shape.out_channels], "grad_bias")?;
    let write_all = |a: &Option<Bound<'py, PyArrayDyn<T>>>| a.as_ref().map(write).transpose();
    let (mut gx, mut gw, mut gb) = (
        write_all(&grad_x)?,
        write_all(&grad_weight)?,
        write_all(&grad_bias)?,
    );
    let grads = ConvGrads {
        input: gx.as_mut().map(writable).transpose()?,
        weight: gw.as_mut().map(writable).transpose()?,
        bias: gb.as_mut().map(writable).transpose()?,
    };
    let (x, weight, grad_y) = (x.data()?, weight.data()?, grad_y.data()?);
    detach(py, "conv2d_backward", || {
        conv::conv2d_backward(&shape, x, weight, grad_y, grads)
    })?
    .map_err(nn_error)?;
    drop((gx, gw, gb));
    let any = |a: Option<Bound<'py, PyArrayDyn<T>>>| a.map(Bound::into_any);
    Ok((any(grad_x), any(grad_weight), any(grad_bias)))
}
