use crate::engine::{engine_class, get_bool, get_f64, FromGroup};
use optrs_core::rules::RMSprop;
use pyo3::prelude::*;
use pyo3::types::PyDict;

impl FromGroup for RMSprop {
    fn from_group(group: &Bound<'_, PyDict>) -> PyResult<Self> {
        Ok(RMSprop {
            lr: get_f64(group, "lr")?,
            alpha: get_f64(group, "alpha")?,
            eps: get_f64(group, "eps")?,
            weight_decay: get_f64(group, "weight_decay")?,
            momentum: get_f64(group, "momentum")?,
            centered: get_bool(group, "centered")?,
            maximize: get_bool(group, "maximize")?,
        })
    }
}

engine_class!(RMSpropEngine, RMSprop, "RMSpropEngine");
