//! Adafactor's options. Its rule sees each tensor whole (`Rule::SHAPED`) and keeps `row_var` and
//! `col_var` (or `variance`) of shapes of their own, which the engine checks at registration.

use crate::engine::{engine_class, get_bool, get_f64, required, wrong_type, FromGroup};
use optrs_core::rules::adafactor::Adafactor;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::PyDict;

impl FromGroup for Adafactor {
    fn from_group(group: &Bound<'_, PyDict>) -> PyResult<Self> {
        let py = group.py();
        let key = intern!(py, "eps");
        let eps = required(group, key)?;
        let bad_eps = || {
            wrong_type(
                key,
                &eps,
                "a pair (eps1, eps2) of numbers, eps1 may be None",
            )
        };
        let pair: Vec<Bound<'_, PyAny>> = (eps.try_iter().map_err(|_| bad_eps())?)
            .collect::<PyResult<_>>()
            .map_err(|_| bad_eps())?;
        let [eps1, eps2] = <[Bound<'_, PyAny>; 2]>::try_from(pair).map_err(|_| bad_eps())?;
        Ok(Adafactor {
            lr: get_f64(group, intern!(py, "lr"))?,
            beta2_decay: get_f64(group, intern!(py, "beta2_decay"))?,
            eps1: if eps1.is_none() {
                None
            } else {
                Some(eps1.extract::<f64>().map_err(|_| bad_eps())?)
            },
            eps2: eps2.extract::<f64>().map_err(|_| bad_eps())?,
            d: get_f64(group, intern!(py, "d"))?,
            weight_decay: get_f64(group, intern!(py, "weight_decay"))?,
            maximize: get_bool(group, intern!(py, "maximize"))?,
        })
    }
}

engine_class!(AdafactorEngine, Adafactor, "AdafactorEngine");
