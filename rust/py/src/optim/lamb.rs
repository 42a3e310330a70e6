use crate::engine::{engine_class, get_bool, get_f64, get_pair, FromGroup};
use optrs_core::rules::Lamb;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::PyDict;

impl FromGroup for Lamb {
    fn from_group(group: &Bound<'_, PyDict>) -> PyResult<Self> {
        let py = group.py();
        let (beta1, beta2) = get_pair(group, intern!(py, "betas"))?;
        Ok(Lamb {
            lr: get_f64(group, intern!(py, "lr"))?,
            beta1,
            beta2,
            eps: get_f64(group, intern!(py, "eps"))?,
            weight_decay: get_f64(group, intern!(py, "weight_decay"))?,
            maximize: get_bool(group, intern!(py, "maximize"))?,
        })
    }
}

engine_class!(LAMBEngine, Lamb, "LAMBEngine");
