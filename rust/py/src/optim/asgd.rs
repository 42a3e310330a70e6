use crate::engine::{engine_class, get_bool, get_f64, FromGroup};
use optrs_core::rules::Asgd;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::PyDict;

impl FromGroup for Asgd {
    fn from_group(group: &Bound<'_, PyDict>) -> PyResult<Self> {
        let py = group.py();
        Ok(Asgd {
            lr: get_f64(group, intern!(py, "lr"))?,
            lambd: get_f64(group, intern!(py, "lambd"))?,
            alpha: get_f64(group, intern!(py, "alpha"))?,
            t0: get_f64(group, intern!(py, "t0"))?,
            weight_decay: get_f64(group, intern!(py, "weight_decay"))?,
            maximize: get_bool(group, intern!(py, "maximize"))?,
        })
    }
}

engine_class!(ASGDEngine, Asgd, "ASGDEngine");
