use crate::engine::{engine_class, get_bool, get_f64, FromGroup};
use optrs_core::rules::Adadelta;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::PyDict;

impl FromGroup for Adadelta {
    fn from_group(group: &Bound<'_, PyDict>) -> PyResult<Self> {
        let py = group.py();
        Ok(Adadelta {
            lr: get_f64(group, intern!(py, "lr"))?,
            rho: get_f64(group, intern!(py, "rho"))?,
            eps: get_f64(group, intern!(py, "eps"))?,
            weight_decay: get_f64(group, intern!(py, "weight_decay"))?,
            maximize: get_bool(group, intern!(py, "maximize"))?,
        })
    }
}

engine_class!(AdadeltaEngine, Adadelta, "AdadeltaEngine");
