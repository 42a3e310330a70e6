//! Muon's options. Its rule sees each matrix whole (`Rule::SHAPED`) and takes 2-D params only,
//! which the engine checks when a param is registered.

use crate::engine::{engine_class, get_bool, get_f64, required, wrong_type, FromGroup};
use crate::errors::invalid_hyperparameter;
use optrs_core::rules::muon::{AdjustLr, Muon};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::PyDict;

impl FromGroup for Muon {
    fn from_group(group: &Bound<'_, PyDict>) -> PyResult<Self> {
        let py = group.py();
        let key = intern!(py, "ns_coefficients");
        let coefficients = required(group, key)?;
        let ns_coefficients = coefficients
            .extract::<Vec<f64>>()
            .ok()
            .and_then(|v| <[f64; 3]>::try_from(v).ok())
            .ok_or_else(|| {
                wrong_type(key, &coefficients, "a tuple of exactly 3 numbers (a, b, c)")
            })?;
        let key = intern!(py, "ns_steps");
        let steps = required(group, key)?;
        let ns_steps = steps
            .extract::<usize>()
            .map_err(|_| wrong_type(key, &steps, "a whole number >= 0"))?;
        let key = intern!(py, "adjust_lr_fn");
        let adjust = required(group, key)?;
        let name =
            if adjust.is_none() {
                None
            } else {
                Some(adjust.extract::<String>().map_err(|_| {
                    wrong_type(key, &adjust, "None, 'original' or 'match_rms_adamw'")
                })?)
            };
        let adjust_lr_fn = AdjustLr::from_name(name.as_deref()).ok_or_else(|| {
            invalid_hyperparameter(format!(
                "Adjust learning rate function {} is not supported; use None, 'original' or \
                 'match_rms_adamw'",
                name.unwrap_or_default()
            ))
        })?;
        Ok(Muon {
            lr: get_f64(group, intern!(py, "lr"))?,
            weight_decay: get_f64(group, intern!(py, "weight_decay"))?,
            momentum: get_f64(group, intern!(py, "momentum"))?,
            nesterov: get_bool(group, intern!(py, "nesterov"))?,
            ns_coefficients,
            eps: get_f64(group, intern!(py, "eps"))?,
            ns_steps,
            adjust_lr_fn,
        })
    }
}

engine_class!(MuonEngine, Muon, "MuonEngine");
