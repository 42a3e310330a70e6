use crate::engine::{engine_class, get_bool, get_f64, get_pair, FromGroup};
use optrs_core::rules::Rprop;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::PyDict;

impl FromGroup for Rprop {
    fn from_group(group: &Bound<'_, PyDict>) -> PyResult<Self> {
        let py = group.py();
        let (etaminus, etaplus) = get_pair(group, intern!(py, "etas"))?;
        let (step_size_min, step_size_max) = get_pair(group, intern!(py, "step_sizes"))?;
        Ok(Rprop {
            lr: get_f64(group, intern!(py, "lr"))?,
            etaminus,
            etaplus,
            step_size_min,
            step_size_max,
            maximize: get_bool(group, intern!(py, "maximize"))?,
        })
    }
}

engine_class!(RpropEngine, Rprop, "RpropEngine");
