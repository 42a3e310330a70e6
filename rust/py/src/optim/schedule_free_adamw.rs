//! Schedule-Free AdamW keeps its schedule in the param group dict, as the reference does: the
//! engine reads it with the options and writes it back after each step, and `set_train_mode`
//! moves the params between the train and eval points.

use crate::engine::{engine_class, get_bool, get_f64, get_pair, group_rule, FromGroup};
use crate::errors::invalid_hyperparameter;
use optrs_core::rules::schedule_free_adamw::{GroupSchedule, ScheduleFreeAdamW};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString};

/// The state slot of `z`.
const Z: usize = 0;

impl FromGroup for ScheduleFreeAdamW {
    fn from_group(group: &Bound<'_, PyDict>) -> PyResult<Self> {
        let py = group.py();
        let (beta1, beta2) = get_pair(group, intern!(py, "betas"))?;
        Ok(ScheduleFreeAdamW {
            lr: get_f64(group, intern!(py, "lr"))?,
            beta1,
            beta2,
            eps: get_f64(group, intern!(py, "eps"))?,
            weight_decay: get_f64(group, intern!(py, "weight_decay"))?,
            warmup_steps: get_f64(group, intern!(py, "warmup_steps"))?,
            r: get_f64(group, intern!(py, "r"))?,
            weight_lr_power: get_f64(group, intern!(py, "weight_lr_power"))?,
            maximize: get_bool(group, intern!(py, "maximize"))?,
            schedule: GroupSchedule {
                k: get_count(group, intern!(py, "k"))?,
                weight_sum: get_f64(group, intern!(py, "weight_sum"))?,
                lr_max: get_f64(group, intern!(py, "lr_max"))?,
            },
            train_mode: get_bool(group, intern!(py, "train_mode"))?,
        })
    }

    fn after_step(&self, group: &Bound<'_, PyDict>) -> PyResult<()> {
        let py = group.py();
        let step = self.schedule();
        group.set_item(intern!(py, "k"), step.next.k)?;
        group.set_item(intern!(py, "weight_sum"), step.next.weight_sum)?;
        group.set_item(intern!(py, "lr_max"), step.next.lr_max)?;
        group.set_item(intern!(py, "scheduled_lr"), step.lr)
    }
}

/// Reads `group[key]` as a step count: a whole number >= 0 (a float such as 3.0 is fine).
fn get_count(group: &Bound<'_, PyDict>, key: &Bound<'_, PyString>) -> PyResult<u64> {
    let value = get_f64(group, key)?;
    // Counts up to 2^53 are exact in a float64, as torch's float step counters are.
    if (0.0..=9_007_199_254_740_992.0).contains(&value) && value.fract() == 0.0 {
        Ok(value as u64)
    } else {
        Err(invalid_hyperparameter(format!(
            "'{key}' must be a whole number >= 0, got {value}"
        )))
    }
}

engine_class!(
    ScheduleFreeAdamWEngine,
    ScheduleFreeAdamW,
    "ScheduleFreeAdamWEngine",
    {
        /// Puts every group in train mode (params at `y`) or eval mode (params at the average `x`),
        /// moving the params of the groups not yet in that mode, and sets their `train_mode`.
        fn set_train_mode(
            &mut self,
            py: Python<'_>,
            groups: &Bound<'_, PyList>,
            train: bool,
        ) -> PyResult<()> {
            let mut moves = Vec::with_capacity(groups.len());
            for (index, group) in groups.iter().enumerate() {
                let rule: ScheduleFreeAdamW =
                    group_rule(&group, &|| format!("param_groups[{index}]"))?;
                moves.push((rule.train_mode != train).then(|| rule.switch_to(train)));
            }
            self.0
                .apply_to_state(py, Z, &moves, "ScheduleFreeAdamWEngine.set_train_mode")?;
            for group in groups.iter() {
                group.set_item(intern!(py, "train_mode"), train)?;
            }
            Ok(())
        }
    }
);
