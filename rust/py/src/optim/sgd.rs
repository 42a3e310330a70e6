use crate::engine::{engine_class, get_bool, get_f64, FromGroup};
use optrs_core::rules::Sgd;
use pyo3::prelude::*;
use pyo3::types::PyDict;

impl FromGroup for Sgd {
    fn from_group(group: &Bound<'_, PyDict>) -> PyResult<Self> {
        Ok(Sgd {
            lr: get_f64(group, "lr")?,
            momentum: get_f64(group, "momentum")?,
            dampening: get_f64(group, "dampening")?,
            weight_decay: get_f64(group, "weight_decay")?,
            nesterov: get_bool(group, "nesterov")?,
            maximize: get_bool(group, "maximize")?,
        })
    }
}

engine_class!(SGDEngine, Sgd, "SGDEngine");
