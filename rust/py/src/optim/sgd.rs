use crate::engine::{engine_class, get_bool, get_f64, FromGroup};
use optrs_core::rules::Sgd;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::PyDict;

impl FromGroup for Sgd {
    fn from_group(group: &Bound<'_, PyDict>) -> PyResult<Self> {
        let py = group.py();
        Ok(Sgd {
            lr: get_f64(group, intern!(py, "lr"))?,
            momentum: get_f64(group, intern!(py, "momentum"))?,
            dampening: get_f64(group, intern!(py, "dampening"))?,
            weight_decay: get_f64(group, intern!(py, "weight_decay"))?,
            nesterov: get_bool(group, intern!(py, "nesterov"))?,
            maximize: get_bool(group, intern!(py, "maximize"))?,
        })
    }
}

engine_class!(SGDEngine, Sgd, "SGDEngine");
