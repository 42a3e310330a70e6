//! `nll_loss`, `cross_entropy` and their gradients (`optrs_core::nn::loss`).

use super::{
    by_dtype, count, dtype_of, nn_error, optional_data, optional_input, output, writable, write,
    Input, Scalar, Targets,
};
use crate::arrays::DType;
use crate::profiling::detach;
use optrs_core::nn::loss::{self, check_loss_shapes, Nll, Reduction};
use optrs_core::nn::{expect_ndim, expect_shape};
use pyo3::prelude::*;

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(nll_loss, m)?)?;
    m.add_function(wrap_pyfunction!(nll_loss_backward, m)?)?;
    m.add_function(wrap_pyfunction!(cross_entropy, m)?)?;
    m.add_function(wrap_pyfunction!(cross_entropy_backward, m)?)?;
    Ok(())
}

fn reduction(name: &str) -> PyResult<Reduction> {
    name.parse().map_err(nn_error)
}

/// `torch.nn.functional.nll_loss(logp, target, weight, ignore_index=..., reduction=...)` over
/// `(N, C)` log-probabilities: `(loss, total_weight)`, loss 0-d (mean, sum) or `(N,)` (none).
#[pyfunction]
fn nll_loss<'py>(
    py: Python<'py>,
    logp: &Bound<'py, PyAny>,
    target: &Bound<'py, PyAny>,
    weight: Option<&Bound<'py, PyAny>>,
    ignore_index: i64,
    reduction: &str,
) -> PyResult<(Bound<'py, PyAny>, f64)> {
    let reduction = self::reduction(reduction)?;
    by_dtype!(
        dtype_of(logp, "logp")?,
        nll_forward(py, logp, target, weight, ignore_index, reduction)
    )
}

fn nll_forward<'py, T: Scalar>(
    py: Python<'py>,
    logp: &Bound<'py, PyAny>,
    target: &Bound<'py, PyAny>,
    weight: Option<&Bound<'py, PyAny>>,
    ignore_index: i64,
    reduction: Reduction,
) -> PyResult<(Bound<'py, PyAny>, f64)> {
    let logp = Input::<T>::new(logp, "logp", "logp")?;
    let target = Targets::new(target, "target")?;
    let weight = optional_input::<T>(weight, "weight", "logp")?;
    let (rows, classes) = check_loss_shapes(
        "logp",
        logp.shape(),
        target.shape(),
        weight.as_ref().map(Input::shape),
    )
    .map_err(nn_error)?;
    let loss = output::<T>(py, &reduction.loss_shape(rows), "nll_loss's output")?;
    let mut loss_out = write(&loss)?;
    let options = Nll {
        weight: optional_data(&weight)?,
        ignore_index,
        reduction,
    };
    let (logp, target, loss_data) = (logp.data()?, target.data()?, writable(&mut loss_out)?);
    let total_weight = detach(py, "nll_loss", || {
        loss::nll_loss(logp, classes, target, &options, loss_data)
    })?
    .map_err(nn_error)?;
    drop(loss_out);
    Ok((loss.into_any(), total_weight.to_f64()))
}

/// The gradient of `nll_loss` for the upstream gradient `grad_loss` (0-d for mean and sum, `(N,)`
/// for none): `(N, num_classes)`.
#[pyfunction]
#[allow(clippy::too_many_arguments)]
fn nll_loss_backward<'py>(
    py: Python<'py>,
    grad_loss: &Bound<'py, PyAny>,
    target: &Bound<'py, PyAny>,
    weight: Option<&Bound<'py, PyAny>>,
    ignore_index: i64,
    reduction: &str,
    total_weight: f64,
    num_classes: i64,
) -> PyResult<Bound<'py, PyAny>> {
    let reduction = self::reduction(reduction)?;
    let classes = count(num_classes, "num_classes", 0)?;
    let options = (ignore_index, reduction, total_weight, classes);
    by_dtype!(
        dtype_of(grad_loss, "grad_loss")?,
        nll_backward(py, grad_loss, target, weight, options)
    )
}

fn nll_backward<'py, T: Scalar>(
    py: Python<'py>,
    grad_loss: &Bound<'py, PyAny>,
    target: &Bound<'py, PyAny>,
    weight: Option<&Bound<'py, PyAny>>,
    (ignore_index, reduction, total_weight, classes): (i64, Reduction, f64, usize),
) -> PyResult<Bound<'py, PyAny>> {
    let grad_loss = Input::<T>::new(grad_loss, "grad_loss", "grad_loss")?;
    let target = Targets::new(target, "target")?;
    let weight = optional_input::<T>(weight, "weight", "grad_loss")?;
    expect_ndim("target", target.shape(), 1, "(N,)").map_err(nn_error)?;
    let rows = target.shape()[0];
    reduction
        .check_grad_loss(grad_loss.shape(), rows)
        .map_err(nn_error)?;
    if let Some(weight) = &weight {
        expect_shape("weight", weight.shape(), &[classes]).map_err(nn_error)?;
    }
    let grad_logp = output::<T>(py, &[rows, classes], "nll_loss_backward's output")?;
    let mut grad_logp_out = write(&grad_logp)?;
    let options = Nll {
        weight: optional_data(&weight)?,
        ignore_index,
        reduction,
    };
    let (grad_loss, target, grad_data) = (
        grad_loss.data()?,
        target.data()?,
        writable(&mut grad_logp_out)?,
    );
    let total_weight = T::from_f64(total_weight);
    detach(py, "nll_loss_backward", || {
        loss::nll_loss_backward(
            grad_loss,
            target,
            &options,
            total_weight,
            classes,
            grad_data,
        )
    })?
    .map_err(nn_error)?;
    drop(grad_logp_out);
    Ok(grad_logp.into_any())
}

/// `torch.nn.functional.cross_entropy(x, target, weight, ignore_index=..., reduction=...,
/// label_smoothing=...)` over `(N, C)` logits: `(loss, softmax(x))`, the softmax kept for the
/// gradient.
#[pyfunction]
fn cross_entropy<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    target: &Bound<'py, PyAny>,
    weight: Option<&Bound<'py, PyAny>>,
    ignore_index: i64,
    reduction: &str,
    label_smoothing: f64,
) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyAny>)> {
    let reduction = self::reduction(reduction)?;
    loss::check_label_smoothing(label_smoothing).map_err(nn_error)?;
    let options = (ignore_index, reduction, label_smoothing);
    by_dtype!(
        dtype_of(x, "x")?,
        cross_entropy_forward(py, x, target, weight, options)
    )
}

fn cross_entropy_forward<'py, T: Scalar>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    target: &Bound<'py, PyAny>,
    weight: Option<&Bound<'py, PyAny>>,
    (ignore_index, reduction, label_smoothing): (i64, Reduction, f64),
) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyAny>)> {
    let x = Input::<T>::new(x, "x", "x")?;
    let target = Targets::new(target, "target")?;
    let weight = optional_input::<T>(weight, "weight", "x")?;
    let (rows, classes) = check_loss_shapes(
        "x",
        x.shape(),
        target.shape(),
        weight.as_ref().map(Input::shape),
    )
    .map_err(nn_error)?;
    let loss = output::<T>(py, &reduction.loss_shape(rows), "cross_entropy's output")?;
    let probabilities = output::<T>(py, x.shape(), "cross_entropy's softmax")?;
    let (mut loss_out, mut probabilities_out) = (write(&loss)?, write(&probabilities)?);
    let options = Nll {
        weight: optional_data(&weight)?,
        ignore_index,
        reduction,
    };
    let (x, target) = (x.data()?, target.data()?);
    let (loss_data, probabilities_data) =
        (writable(&mut loss_out)?, writable(&mut probabilities_out)?);
    detach(py, "cross_entropy", || {
        loss::cross_entropy(
            x,
            classes,
            target,
            &options,
            label_smoothing,
            loss_data,
            probabilities_data,
        )
    })?
    .map_err(nn_error)?;
    drop((loss_out, probabilities_out));
    Ok((loss.into_any(), probabilities.into_any()))
}

/// The gradient of `cross_entropy` with respect to its logits, from the kept softmax.
#[pyfunction]
#[allow(clippy::too_many_arguments)]
fn cross_entropy_backward<'py>(
    py: Python<'py>,
    grad_loss: &Bound<'py, PyAny>,
    softmax: &Bound<'py, PyAny>,
    target: &Bound<'py, PyAny>,
    weight: Option<&Bound<'py, PyAny>>,
    ignore_index: i64,
    reduction: &str,
    label_smoothing: f64,
) -> PyResult<Bound<'py, PyAny>> {
    let reduction = self::reduction(reduction)?;
    loss::check_label_smoothing(label_smoothing).map_err(nn_error)?;
    let options = (ignore_index, reduction, label_smoothing);
    by_dtype!(
        dtype_of(grad_loss, "grad_loss")?,
        cross_entropy_grad(py, grad_loss, softmax, target, weight, options)
    )
}

fn cross_entropy_grad<'py, T: Scalar>(
    py: Python<'py>,
    grad_loss: &Bound<'py, PyAny>,
    softmax: &Bound<'py, PyAny>,
    target: &Bound<'py, PyAny>,
    weight: Option<&Bound<'py, PyAny>>,
    (ignore_index, reduction, label_smoothing): (i64, Reduction, f64),
) -> PyResult<Bound<'py, PyAny>> {
    let grad_loss = Input::<T>::new(grad_loss, "grad_loss", "grad_loss")?;
    let probabilities = Input::<T>::new(softmax, "softmax", "grad_loss")?;
    let target = Targets::new(target, "target")?;
    let weight = optional_input::<T>(weight, "weight", "grad_loss")?;
    let (rows, classes) = check_loss_shapes(
        "softmax",
        probabilities.shape(),
        target.shape(),
        weight.as_ref().map(Input::shape),
    )
    .map_err(nn_error)?;
    reduction
        .check_grad_loss(grad_loss.shape(), rows)
        .map_err(nn_error)?;
    let grad_x = output::<T>(py, probabilities.shape(), "cross_entropy_backward's output")?;
    let mut grad_x_out = write(&grad_x)?;
    let options = Nll {
        weight: optional_data(&weight)?,
        ignore_index,
        reduction,
    };
    let (grad_loss, probabilities, target) =
        (grad_loss.data()?, probabilities.data()?, target.data()?);
    let grad_data = writable(&mut grad_x_out)?;
    detach(py, "cross_entropy_backward", || {
        loss::cross_entropy_backward(
            grad_loss,
            probabilities,
            classes,
            target,
            &options,
            label_smoothing,
            grad_data,
        )
    })?
    .map_err(nn_error)?;
    drop(grad_x_out);
    Ok(grad_x.into_any())
}
