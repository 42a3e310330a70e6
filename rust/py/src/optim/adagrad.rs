use crate::engine::{engine_class, get_bool, get_f64, FromGroup};
use optrs_core::rules::Adagrad;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::PyDict;

impl FromGroup for Adagrad {
    fn from_group(group: &Bound<'_, PyDict>) -> PyResult<Self> {
        let py = group.py();
        Ok(Adagrad {
            lr: get_f64(group, intern!(py, "lr"))?,
            lr_decay: get_f64(group, intern!(py, "lr_decay"))?,
            weight_decay: get_f64(group, intern!(py, "weight_decay"))?,
            initial_accumulator_value: get_f64(group, intern!(py, "initial_accumulator_value"))?,
            eps: get_f64(group, intern!(py, "eps"))?,
            maximize: get_bool(group, intern!(py, "maximize"))?,
        })
    }
}

engine_class!(AdagradEngine, Adagrad, "AdagradEngine");
