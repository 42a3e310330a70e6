use crate::engine::{engine_class, get_bool, get_f64, FromGroup};
use optrs_core::rules::Adadelta;
use pyo3::prelude::*;
use pyo3::types::PyDict;

impl FromGroup for Adadelta {
    fn from_group(group: &Bound<'_, PyDict>) -> PyResult<Self> {
        Ok(Adadelta {
            lr: get_f64(group, "lr")?,
            rho: get_f64(group, "rho")?,
            eps: get_f64(group, "eps")?,
            weight_decay: get_f64(group, "weight_decay")?,
            maximize: get_bool(group, "maximize")?,
        })
    }
}

engine_class!(AdadeltaEngine, Adadelta, "AdadeltaEngine");
