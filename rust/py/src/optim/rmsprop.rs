use crate::engine::{engine_class, get_bool, get_f64, FromGroup};
use optrs_core::rules::RMSprop;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::PyDict;

impl FromGroup for RMSprop {
    fn from_group(group: &Bound<'_, PyDict>) -> PyResult<Self> {
        let py = group.py();
        Ok(RMSprop {
            lr: get_f64(group, intern!(py, "lr"))?,
            alpha: get_f64(group, intern!(py, "alpha"))?,
            eps: get_f64(group, intern!(py, "eps"))?,
            weight_decay: get_f64(group, intern!(py, "weight_decay"))?,
            momentum: get_f64(group, intern!(py, "momentum"))?,
            centered: get_bool(group, intern!(py, "centered"))?,
            maximize: get_bool(group, intern!(py, "maximize"))?,
        })
    }
}

engine_class!(RMSpropEngine, RMSprop, "RMSpropEngine");
