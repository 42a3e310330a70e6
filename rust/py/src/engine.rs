//! The state an optimizer keeps on the Rust side between steps, and the one call per step.
//!
//! An `Engine` holds, for every param, its array, its state buffers and its step counter, each as
//! a [`Held`] array: a strong reference and what the array looked like when the param group was
//! added (data pointer, dtype, shape, flags, base). Python can change any of that in place
//! between steps, so each step first re-checks, in O(1) per array, every array it will write,
//! every grad against the param as registered, every step counter's value, and whether the
//! groups still list the params registered; only then does it run every tensor's update in one
//! GIL-free call into the core.
//!
//! State buffers are NumPy arrays the optimizer hands out (`opt.state[p]`), so they are checked
//! like params rather than made unreachable. That is the cheaper robust option: the checks
//! compare a few fields per array, and the flat arrays the state views share (reachable as
//! `view.base`, and resizable through it) are checked once per step however many views they
//! hold (`held::Owners`); see `benches/bench_step_overhead.py`. Engine-owned memory would
//! still need the params checked, would make state a foreign buffer that `load_state_dict`,
//! checkpoints and list edits must copy around, and could not stop a view being re-typed.

use crate::arrays::{check_array, shape_str, Access, ArrayInfo, DType, DataPtr};
use crate::errors::{invalid_hyperparameter, invalid_param, param_dtype};
use crate::held::{Held, Owners};
use numpy::PyUntypedArrayMethods;
use optrs_core::driver::Work;
use optrs_core::layout::{disjoint_ranges, overlapping, ByteRange, LayoutError};
use optrs_core::{Float, Rule, TensorMut, MAX_STATE};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString};
use std::marker::PhantomData;

/// A rule whose hyperparameters can be read from a torch-style param group dict.
pub trait FromGroup: Rule + Sized {
    fn from_group(group: &Bound<'_, PyDict>) -> PyResult<Self>;

    /// Writes back the state a step advances that lives in the group dict (Schedule-Free's
    /// schedule); called once per group after every step. Most rules keep none there.
    fn after_step(&self, _group: &Bound<'_, PyDict>) -> PyResult<()> {
        Ok(())
    }
}

// The group readers take interned keys (`pyo3::intern!`): a step reads every option of every
// group, and interning saves building a Python string for each lookup.

/// Reads `group[key]` as a float.
pub fn get_f64(group: &Bound<'_, PyDict>, key: &Bound<'_, PyString>) -> PyResult<f64> {
    let value = required(group, key)?;
    value
        .extract::<f64>()
        .map_err(|_| wrong_type(key, &value, "a number"))
}

/// Reads `group[key]` as a bool.
pub fn get_bool(group: &Bound<'_, PyDict>, key: &Bound<'_, PyString>) -> PyResult<bool> {
    required(group, key)?.is_truthy()
}

/// Reads `group[key]` as a pair of floats, such as `betas`.
pub fn get_pair(group: &Bound<'_, PyDict>, key: &Bound<'_, PyString>) -> PyResult<(f64, f64)> {
    let value = required(group, key)?;
    // Any sequence of two numbers, as torch accepts (a list after a JSON round trip, say).
    value
        .extract::<Vec<f64>>()
        .ok()
        .filter(|pair| pair.len() == 2)
        .map(|pair| (pair[0], pair[1]))
        .ok_or_else(|| wrong_type(key, &value, "a pair of numbers"))
}

/// `group[key]`, which must be there.
pub fn required<'py>(
    group: &Bound<'py, PyDict>,
    key: &Bound<'py, PyString>,
) -> PyResult<Bound<'py, PyAny>> {
    group
        .get_item(key)?
        .ok_or_else(|| invalid_hyperparameter(format!("the param group has no '{key}'")))
}

/// An option of the wrong kind: what `key` must be (`expected`), and what it is.
pub fn wrong_type(key: &Bound<'_, PyString>, value: &Bound<'_, PyAny>, expected: &str) -> PyErr {
    let shown = value.repr().map(|r| r.to_string()).unwrap_or_default();
    invalid_hyperparameter(format!("'{key}' must be {expected}, got {shown}"))
}

/// One param and everything the step writes for it.
struct Slot {
    param: Held,
    /// Elements of the param, as registered (and of each state buffer, unless the rule is
    /// `SHAPED`).
    len: usize,
    /// The state buffers a param of this shape keeps, in the rule's slot order: the rule's slot
    /// `kept[k]`, named `names[k]`, of `state_lens[k]` elements.
    state: Vec<Held>,
    kept: Vec<usize>,
    names: Vec<&'static str>,
    state_lens: Vec<usize>,
    /// The step count, then the rule's per-param scalar state: `step_len` float64s.
    step: Held,
    step_len: usize,
    label: String,
}

struct Group {
    slots: std::ops::Range<usize>,
    state_names: &'static [&'static str],
    /// What the group dict's 'params' listed when the group was added (params or the objects
    /// that carry them, such as `Parameter`s), if it had such a list. Each step first checks
    /// that the list still holds exactly these: torch steps what the list holds, so an edited
    /// list makes `step` return false and the optimizer register the group again.
    listed: Option<Vec<Py<PyAny>>>,
}

/// What a written byte range holds: the slot, and which of its arrays.
type Tag = (usize, Holds);

pub struct Engine<R> {
    slots: Vec<Slot>,
    groups: Vec<Group>,
    /// Every written byte range, sorted by start and pairwise disjoint.
    written: Vec<ByteRange<Tag>>,
    /// The arrays that held params, state buffers and step counters are views of.
    owners: Owners,
    /// Whether a param's first step (its count going from 0 to 1) starts by setting its state to
    /// the initial values of that step's options, as torch creates state lazily. False for
    /// rules whose state torch creates with the param (Adagrad) and for the functional API,
    /// whose caller passes the state to start from.
    create_state: bool,
    rule: PhantomData<R>,
}

impl<R: FromGroup> Default for Engine<R> {
    fn default() -> Self {
        Engine {
            slots: Vec::new(),
            groups: Vec::new(),
            written: Vec::new(),
            owners: Owners::default(),
            create_state: !R::EAGER_STATE,
            rule: PhantomData,
        }
    }
}

/// Reads and validates a group's hyperparameters.
/// `label` names the group in errors; it is only called on failure.
pub fn group_rule<R: FromGroup>(
    group: &Bound<'_, PyAny>,
    label: &dyn Fn() -> String,
) -> PyResult<R> {
    let dict = group
        .cast::<PyDict>()
        .map_err(|_| param_dtype(format!("{} must be a dict", label())))?;
    let rule = R::from_group(dict)
        .map_err(|e| invalid_hyperparameter(format!("{}: {}", label(), e.value(group.py()))))?;
    rule.validate()
        .map_err(|e| invalid_hyperparameter(format!("{}: {e}", label())))?;
    Ok(rule)
}

/// Names and initial values of the state a param of a group with these options keeps.
pub type Spec = Vec<(&'static str, f64)>;

/// The state a group with these hyperparameters needs: its per-element buffers, and its
/// per-param scalars after the step count. `label` names the group in errors.
pub fn state_spec<R: FromGroup>(group: &Bound<'_, PyAny>, label: &str) -> PyResult<(Spec, Spec)> {
    let rule: R = group_rule(group, &|| label.to_string())?;
    let buffers = rule.state_names().iter().enumerate();
    let scalars = rule.scalar_state_names().iter().enumerate();
    Ok((
        buffers
            .map(|(k, &name)| (name, rule.initial_state(k)))
            .collect(),
        scalars
            .map(|(k, &name)| (name, rule.initial_scalar_state(k)))
            .collect(),
    ))
}

/// The shape of each state buffer (in `state_spec`'s order, None where a param of that shape keeps
/// no such buffer) of a param of each of `shapes`, for a group with these options: the param's own
/// shape, unless the rule keeps buffers of other shapes (Adafactor's factors).
pub fn state_shapes<R: FromGroup>(
    group: &Bound<'_, PyAny>,
    shapes: &Bound<'_, PyAny>,
    label: &str,
) -> PyResult<Vec<Vec<Option<Vec<usize>>>>> {
    let rule: R = group_rule(group, &|| label.to_string())?;
    let count = rule.state_names().len();
    shapes
        .try_iter()?
        .map(|shape| {
            let shape: Vec<usize> = shape?.extract()?;
            Ok((0..count).map(|k| rule.state_shape(k, &shape)).collect())
        })
        .collect()
}

/// What to do about a param that changed since it was registered.
fn param_fix() -> String {
    "the optimizer keeps state for the array as registered, so undo the change, or give the \
     changed param a fresh start: remove it from its group's 'params' and add the new array \
     (opt.param_groups[g]['params'][i] = new_array), or create a new optimizer"
        .into()
}

/// What to do about a state array that changed since it was registered.
fn state_fix() -> String {
    "optimizer state can be written in place or assigned (opt.state[p][name] = value), but not \
     resized, re-typed or reshaped; load a state_dict() to restore it, or create a new optimizer"
        .into()
}

impl<R: FromGroup> Engine<R> {
    /// An engine for one functional call: it steps from the state it is given, whatever the
    /// step counts.
    pub fn functional() -> Self {
        Engine {
            create_state: false,
            ..Default::default()
        }
    }

    /// Registers a param group: `params[i]` with its state arrays `states[i]` (in the order of
    /// `state_spec`) and its step counter `steps[i]` (a float64 array of one element).
    /// `prefix` names the params in errors, e.g. "param_groups[1]['params']". When
    /// `group["params"]` is a list of as many objects, a step checks that it still lists them.
    pub fn add_group(
        &mut self,
        group: &Bound<'_, PyAny>,
        params: &Bound<'_, PyAny>,
        states: &Bound<'_, PyAny>,
        steps: &Bound<'_, PyAny>,
        prefix: &str,
    ) -> PyResult<()> {
        let group_index = self.groups.len();
        let rule: R = group_rule(group, &|| format!("param_groups[{group_index}]"))?;
        // The new arrays are compared with the held ones' memory: a held array whose base was
        // resized since would name memory it no longer has (and maybe the new arrays now do).
        self.owners.check(group.py())?;
        let all_names = rule.state_names();
        let params: Vec<Bound<'_, PyAny>> = params.try_iter()?.collect::<PyResult<_>>()?;
        let states: Vec<Bound<'_, PyAny>> = states.try_iter()?.collect::<PyResult<_>>()?;
        let steps: Vec<Bound<'_, PyAny>> = steps.try_iter()?.collect::<PyResult<_>>()?;
        if states.len() != params.len() || steps.len() != params.len() {
            return Err(invalid_param(format!(
                "{prefix}: got {} params, {} state lists and {} step counters; pass one of each per param",
                params.len(),
                states.len(),
                steps.len()
            )));
        }
        let step_len = 1 + rule.scalar_state_names().len();
        let mut slots = Vec::with_capacity(params.len());
        for (i, ((param, state), step)) in params.iter().zip(&states).zip(&steps).enumerate() {
            let label = format!("{prefix}[{i}]");
            let info = check_array(param, &|| label.clone(), Access::Write)?;
            let shape = info.array.shape();
            rule.check_shape(shape, false).map_err(|why| {
                invalid_param(format!("{label} has shape {}: {why}", shape_str(shape)))
            })?;
            // The buffers a param of this shape keeps, and their shapes.
            let buffers: Vec<(usize, Vec<usize>)> = (0..all_names.len())
                .filter_map(|k| Some((k, rule.state_shape(k, shape)?)))
                .collect();
            let kept: Vec<usize> = buffers.iter().map(|&(k, _)| k).collect();
            let names: Vec<&'static str> = kept.iter().map(|&k| all_names[k]).collect();
            let shapes: Vec<&Vec<usize>> = buffers.iter().map(|(_, shape)| shape).collect();
            let state: Vec<Bound<'_, PyAny>> = state.try_iter()?.collect::<PyResult<_>>()?;
            if state.len() != names.len() {
                return Err(invalid_param(format!(
                    "{label}: got {} state buffers, the rule keeps {} ({}) for a param of shape {}",
                    state.len(),
                    names.len(),
                    names.join(", "),
                    shape_str(shape)
                )));
            }
            let mut held = Vec::with_capacity(names.len());
            let mut state_lens = Vec::with_capacity(names.len());
            for ((buffer, name), &needs) in state.iter().zip(&names).zip(&shapes) {
                let what = || format!("{label}'s state '{name}'");
                let buffer_info = check_array(buffer, &what, Access::Write)?;
                check_same_layout(&info, &buffer_info, needs, &what())?;
                state_lens.push(buffer_info.len);
                held.push(Held::new(&buffer_info));
            }
            let step_info =
                check_array(step, &|| format!("{label}'s step counter"), Access::Write)?;
            if step_info.dtype != DType::F64 || step_info.len != step_len {
                return Err(invalid_param(format!(
                    "{label}'s step counter must be a float64 array of {step_len} element(s): \
                     the step count, then the scalar state ({})",
                    rule.scalar_state_names().join(", ")
                )));
            }
            slots.push(Slot {
                param: Held::new(&info),
                len: info.len,
                state: held,
                kept,
                names,
                state_lens,
                step: Held::new(&step_info),
                step_len,
                label,
            });
        }
        let listed = listed_params(group, params.len())?;
        let start = self.slots.len();
        let mut all: Vec<&Slot> = self.slots.iter().collect();
        all.extend(&slots);
        self.written = written_ranges(&all)?;
        self.slots.extend(slots);
        self.groups.push(Group {
            slots: start..self.slots.len(),
            state_names: all_names,
            listed,
        });
        self.owners = owners_of(group.py(), &self.slots);
        Ok(())
    }

    /// Points the engine at new param arrays (after `Parameter.data` was replaced). Each must
    /// have the dtype and size of the one it replaces, since the state buffers are kept.
    pub fn refresh(&mut self, params: &Bound<'_, PyAny>) -> PyResult<()> {
        let py = params.py();
        let params: Vec<Bound<'_, PyAny>> = params.try_iter()?.collect::<PyResult<_>>()?;
        if params.len() != self.slots.len() {
            return Err(invalid_param(format!(
                "got {} params, the optimizer has {}; add params with add_param_group",
                params.len(),
                self.slots.len()
            )));
        }
        // As in `add_group`: the held arrays must still have the memory they are compared by.
        self.owners.check(py)?;
        let mut replaced = Vec::new();
        for (index, (param, slot)) in params.iter().zip(&self.slots).enumerate() {
            if param.is(slot.param.array().bind(param.py())) {
                continue;
            }
            let info = check_array(param, &|| slot.label.clone(), Access::Write)?;
            if R::SHAPED && info.array.shape() != slot.param.shape() {
                return Err(invalid_param(format!(
                    "{} was replaced by an array of shape {} and dtype {}, but its state was made \
                     for shape {} and dtype {}; create a new optimizer for params that change \
                     shape or dtype",
                    slot.label,
                    shape_str(info.array.shape()),
                    info.dtype.name(),
                    shape_str(slot.param.shape()),
                    slot.param.dtype().name()
                )));
            }
            if info.dtype != slot.param.dtype() || info.len != slot.len {
                return Err(invalid_param(format!(
                    "{} was replaced by an array of {} {} elements, but its state holds {} {} elements; \
                     create a new optimizer for params that change size or dtype",
                    slot.label,
                    info.len,
                    info.dtype.name(),
                    slot.len,
                    slot.param.dtype().name()
                )));
            }
            replaced.push((index, Held::new(&info)));
        }
        if replaced.is_empty() {
            return Ok(());
        }
        for (index, held) in &mut replaced {
            std::mem::swap(&mut self.slots[*index].param, held);
        }
        let all: Vec<&Slot> = self.slots.iter().collect();
        match written_ranges(&all) {
            Ok(written) => {
                self.written = written;
                self.owners = owners_of(py, &self.slots);
                Ok(())
            }
            Err(err) => {
                for (index, held) in &mut replaced {
                    std::mem::swap(&mut self.slots[*index].param, held);
                }
                Err(err)
            }
        }
    }

    /// One optimizer step: `grads` has one entry per param in group order (None skips that
    /// param, as in torch); `groups` are the current param group dicts. `kernel` names the
    /// update in profiler records. Returns false, having done nothing, when a group's 'params'
    /// no longer lists the params registered, or when the options of a group whose params have
    /// not stepped yet need other state buffers (the caller registers the groups again).
    pub fn step(
        &mut self,
        py: Python<'_>,
        grads: &Bound<'_, PyAny>,
        groups: &Bound<'_, PyList>,
        kernel: &'static str,
    ) -> PyResult<bool> {
        if groups.len() != self.groups.len() {
            return Err(invalid_param(format!(
                "the optimizer has {} param groups registered but param_groups has {}; add groups with add_param_group",
                self.groups.len(),
                groups.len()
            )));
        }
        for (dict, group) in groups.iter().zip(&self.groups) {
            if !group.still_listed(&dict)? {
                return Ok(false);
            }
        }
        // Read every group's options first: reading one may run Python code (a `__float__`).
        let mut rules: Vec<R> = (groups.iter().enumerate())
            .map(|(index, dict)| group_rule(&dict, &|| format!("param_groups[{index}]")))
            .collect::<PyResult<_>>()?;
        // No Python code runs between this check and the reads that follow it: a base resized in
        // place since registration would otherwise leave the engine reading freed memory.
        self.owners.check(py)?;
        let mut relayout = false;
        for (index, (rule, group)) in rules.iter().zip(&self.groups).enumerate() {
            if rule.state_names() != group.state_names {
                // torch creates a param's state at its first step, so before any param of the
                // group has stepped its options may ask for other buffers (amsgrad, momentum,
                // centered): the caller registers the groups again, with state for these options.
                if R::EAGER_STATE || !self.stateless(py, group)? {
                    return Err(invalid_hyperparameter(format!(
                        "param_groups[{index}]: its options now need the state buffers ({}) instead \
                         of ({}); options that change the optimizer's state (amsgrad, momentum, \
                         centered) cannot change once a param of the group has taken a step, create \
                         a new optimizer instead",
                        rule.state_names().join(", "),
                        group.state_names.join(", ")
                    )));
                }
                relayout = true;
            }
        }
        if relayout {
            return Ok(false);
        }
        // Collecting the grads may run Python code (an iterator), hence the second check.
        let grads: Vec<Bound<'_, PyAny>> = grads.try_iter()?.collect::<PyResult<_>>()?;
        if grads.len() != self.slots.len() {
            return Err(invalid_param(format!(
                "step() got {} grads for {} params; pass one grad (or None) per param, in param group order",
                grads.len(),
                self.slots.len()
            )));
        }
        self.owners.check(py)?;
        let mut active = Vec::with_capacity(grads.len());
        for (group_index, group) in self.groups.iter().enumerate() {
            for index in group.slots.clone() {
                let grad = &grads[index];
                if grad.is_none() {
                    continue;
                }
                self.check_slot(py, index)?;
                let grad_info = self.check_grad(grad, index)?;
                let slot = &self.slots[index];
                if R::SHAPED {
                    let shape = slot.param.shape();
                    rules[group_index].check_shape(shape, true).map_err(|why| {
                        invalid_param(format!(
                            "{} has shape {}: {why}",
                            slot.label,
                            shape_str(shape)
                        ))
                    })?;
                }
                if active.last().is_none_or(|&(g, _, _)| g != group_index) {
                    rules[group_index].resolve_dtype(slot.param.dtype().epsilon());
                }
                active.push((group_index, index, grad_info.data));
            }
        }
        // Every check passed: from here on nothing fails, so no array is left half-updated.
        if self.create_state {
            self.create_state(py, &rules, &active)?;
        }
        let mut work32 = Vec::new();
        let mut work64 = Vec::new();
        // Params of a group usually share their step count: unless the rule keeps scalar state
        // of its own, compute the step's scalars once.
        let mut last: Option<(usize, u64, R::Scalars)> = None;
        for (group, index, grad) in active {
            let slot = &self.slots[index];
            // SAFETY: `step` points at `step_len` float64s of a writeable, aligned array this
            // engine holds and `check_slot` found unchanged; the GIL is held, and no other
            // written range overlaps them.
            let counters = unsafe {
                std::slice::from_raw_parts_mut(slot.step.data().0 as *mut f64, slot.step_len)
            };
            counters[0] += 1.0;
            let step = counters[0] as u64;
            let rule = rules[group];
            let scalars = match last {
                Some((g, s, scalars)) if g == group && s == step => scalars,
                _ => rule.scalars(step, &mut counters[1..], slot.param.shape()),
            };
            if slot.step_len == 1 && !R::SHAPED {
                last = Some((group, step, scalars));
            }
            if slot.len == 0 {
                continue;
            }
            match slot.param.dtype() {
                DType::F32 => work32.push(Work {
                    rule,
                    scalars,
                    tensor: tensor_of::<f32>(slot, grad, slot.state_ptrs(), R::SHAPED),
                }),
                DType::F64 => work64.push(Work {
                    rule,
                    scalars,
                    tensor: tensor_of::<f64>(slot, grad, slot.state_ptrs(), R::SHAPED),
                }),
            }
        }
        crate::profiling::detach(py, kernel, move || {
            R::run(work32);
            R::run(work64);
        })?;
        for (dict, rule) in groups.iter().zip(&rules) {
            rule.after_step(dict.cast::<PyDict>()?)?;
        }
        Ok(true)
    }

    /// Sets the state of each param of `active` (group, slot, grad) that takes its first step to
    /// the initial values of its group's `rules`: torch creates a param's state at its first step,
    /// from the options of that step (ASGD's `eta` and Rprop's `step_size` start at its lr). Only
    /// a first step pays for it; the buffers are filled with the GIL released.
    fn create_state(
        &self,
        py: Python<'_>,
        rules: &[R],
        active: &[(usize, usize, DataPtr)],
    ) -> PyResult<()> {
        let mut fills = Vec::new();
        for &(group, index, _) in active {
            let slot = &self.slots[index];
            if slot.step_count() != 0.0 {
                continue;
            }
            let rule = rules[group];
            // SAFETY: as for the step's counters: `step_len` float64s of a writeable, aligned
            // array this engine holds, checked unchanged, written with the GIL held.
            let scalars = unsafe {
                std::slice::from_raw_parts_mut(slot.step.data().0 as *mut f64, slot.step_len)
            };
            for (k, value) in scalars[1..].iter_mut().enumerate() {
                *value = rule.initial_scalar_state(k);
            }
            for ((held, &len), &k) in slot.state.iter().zip(&slot.state_lens).zip(&slot.kept) {
                fills.push((held.data(), len, slot.param.dtype(), rule.initial_state(k)));
            }
        }
        if fills.is_empty() {
            return Ok(());
        }
        crate::profiling::detach(py, "optimizer.create_state", move || {
            for (data, len, dtype, value) in fills {
                // SAFETY: `data` is a state buffer of `len` elements of `dtype`, C-contiguous,
                // aligned, writeable and checked unchanged (`check_slot`); no other slice of it
                // exists until the step's updates are built after this returns.
                unsafe {
                    match dtype {
                        DType::F32 => std::slice::from_raw_parts_mut(data.0 as *mut f32, len)
                            .fill(value as f32),
                        DType::F64 => {
                            std::slice::from_raw_parts_mut(data.0 as *mut f64, len).fill(value)
                        }
                    }
                }
            }
        })
    }

    /// Runs `rules[g]` over every param of group `g` that has taken a step, with the param's
    /// state buffer `state` in the grad's place (`None` leaves a group alone): passes over params
    /// and state outside a step, such as Schedule-Free's moves between its train and eval points.
    /// `kernel` names the pass in profiler records.
    /// Every param is checked before any is changed.
    pub fn apply_to_state<S: Rule<Scalars = ()>>(
        &mut self,
        py: Python<'_>,
        state: usize,
        rules: &[Option<S>],
        kernel: &'static str,
    ) -> PyResult<()> {
        if rules.len() != self.groups.len() {
            return Err(invalid_param(format!(
                "the optimizer has {} param groups registered but got options for {}; add groups with add_param_group",
                self.groups.len(),
                rules.len()
            )));
        }
        self.owners.check(py)?;
        let mut targets = Vec::new();
        for (group, rule) in self.groups.iter().zip(rules) {
            let Some(rule) = rule else {
                continue;
            };
            assert!(
                state < group.state_names.len(),
                "the group keeps no state buffer {state}"
            );
            for index in group.slots.clone() {
                self.check_slot(py, index)?;
                let slot = &self.slots[index];
                // The buffer is read in the grad's place, as `len` elements.
                assert_eq!(
                    slot.state_lens.get(state),
                    Some(&slot.len),
                    "state buffer {state} is not shaped like its param"
                );
                if slot.step_count() == 0.0 || slot.len == 0 {
                    continue;
                }
                targets.push((*rule, slot));
            }
        }
        // Every check passed: from here on nothing fails, so no param is left half-moved.
        let mut work32 = Vec::new();
        let mut work64 = Vec::new();
        let no_state = [DataPtr(std::ptr::null_mut()); MAX_STATE];
        for (rule, slot) in targets {
            let from = slot.state[state].data();
            match slot.param.dtype() {
                DType::F32 => work32.push(Work {
                    rule,
                    scalars: (),
                    tensor: tensor_of::<f32>(slot, from, no_state, false),
                }),
                DType::F64 => work64.push(Work {
                    rule,
                    scalars: (),
                    tensor: tensor_of::<f64>(slot, from, no_state, false),
                }),
            }
        }
        crate::profiling::detach(py, kernel, move || {
            S::run(work32);
            S::run(work64);
        })
    }

    /// Whether no param of `group` has taken a step (so none has state yet, as torch sees it).
    fn stateless(&self, py: Python<'_>, group: &Group) -> PyResult<bool> {
        for slot in &self.slots[group.slots.clone()] {
            // Only the counter is read: a param skipped this step may have changed meanwhile.
            slot.step
                .check(py, &|| format!("{}'s step counter", slot.label), &state_fix)?;
            if slot.step_count() != 0.0 {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Fails unless the param, state buffers and step counter of slot `index` are as registered
    /// and its step count is a whole number >= 0 (as `load_state_dict` requires; a user can
    /// write it through `opt.state[p]['step']`).
    fn check_slot(&self, py: Python<'_>, index: usize) -> PyResult<()> {
        let slot = &self.slots[index];
        slot.param.check(py, &|| slot.label.clone(), &param_fix)?;
        for (held, name) in slot.state.iter().zip(&slot.names) {
            held.check(
                py,
                &|| format!("{}'s state '{name}'", slot.label),
                &state_fix,
            )?;
        }
        slot.step
            .check(py, &|| format!("{}'s step counter", slot.label), &state_fix)?;
        let step = slot.step_count();
        if !(step.is_finite() && step >= 0.0 && step.fract() == 0.0) {
            return Err(invalid_hyperparameter(format!(
                "{}'s state 'step' is {step}; it must be a whole number >= 0 (as load_state_dict \
                 requires): set it with opt.state[p]['step'] = n",
                slot.label
            )));
        }
        Ok(())
    }

    /// The grad of slot `index`: checked against the param as registered (its element count,
    /// dtype and shape), never against what the param's array says now.
    fn check_grad<'py>(&self, grad: &Bound<'py, PyAny>, index: usize) -> PyResult<ArrayInfo<'py>> {
        let slot = &self.slots[index];
        let what = || format!("grad of {}", slot.label);
        let info = check_array(grad, &what, Access::Read)?;
        let dtype = slot.param.dtype();
        if info.dtype != dtype {
            return Err(param_dtype(format!(
                "{} has dtype {} but the param is {}; pass a {} grad (g.astype(np.{}))",
                what(),
                info.dtype.name(),
                dtype.name(),
                dtype.name(),
                dtype.name()
            )));
        }
        if info.array.shape() != slot.param.shape() || info.len != slot.len {
            return Err(invalid_param(format!(
                "{} has shape {} but the param has shape {}",
                what(),
                shape_str(info.array.shape()),
                shape_str(slot.param.shape())
            )));
        }
        let (start, end) = info.byte_range();
        if let Some(owner) = overlapping(&self.written, start, end) {
            return Err(invalid_param(format!(
                "{} shares memory with {}, which the step writes; pass a separate grad array (a copy)",
                what(),
                describe(&self.slots[owner.tag.0], owner.tag.1)
            )));
        }
        Ok(info)
    }
}

impl Group {
    /// Whether `dict['params']` still lists exactly the objects registered (always true for a
    /// group registered without such a list, and for a non-dict, which the caller then rejects).
    fn still_listed(&self, dict: &Bound<'_, PyAny>) -> PyResult<bool> {
        let (Some(listed), Ok(dict)) = (&self.listed, dict.cast::<PyDict>()) else {
            return Ok(true);
        };
        let Some(params) = dict.get_item(intern!(dict.py(), "params"))? else {
            return Ok(false);
        };
        let Ok(list) = params.cast::<PyList>() else {
            return Ok(false);
        };
        Ok(list.len() == listed.len() && list.iter().zip(listed).all(|(item, held)| item.is(held)))
    }
}

/// The distinct bases of every array the slots hold.
fn owners_of(py: Python<'_>, slots: &[Slot]) -> Owners {
    let held = slots.iter().enumerate().flat_map(|(index, slot)| {
        let state =
            (slot.state.iter().enumerate()).map(move |(k, held)| (held, (index, Holds::State(k))));
        std::iter::once((&slot.param, (index, Holds::Param)))
            .chain(state)
            .chain(std::iter::once((&slot.step, (index, Holds::Step))))
    });
    Owners::collect(py, held, |(index, holds): Tag| {
        describe(&slots[index], holds)
    })
}

/// The objects `group['params']` lists, if it is a list of `count` (the arrays registered).
fn listed_params(group: &Bound<'_, PyAny>, count: usize) -> PyResult<Option<Vec<Py<PyAny>>>> {
    let Ok(dict) = group.cast::<PyDict>() else {
        return Ok(None);
    };
    let Some(params) = dict.get_item(intern!(group.py(), "params"))? else {
        return Ok(None);
    };
    Ok(params
        .cast::<PyList>()
        .ok()
        .filter(|list| list.len() == count)
        .map(|list| list.iter().map(Bound::unbind).collect()))
}

impl Slot {
    /// How many steps the param has taken.
    fn step_count(&self) -> f64 {
        // SAFETY: `step` points at an aligned float64 of an array this engine holds (checked
        // unchanged by `check_slot` before this is read); it is read with the GIL held, so no
        // step is writing it.
        unsafe { *(self.step.data().0 as *const f64) }
    }

    /// The data of the state buffers in slot order; unused slots are null and never read.
    fn state_ptrs(&self) -> [DataPtr; MAX_STATE] {
        let mut ptrs = [DataPtr(std::ptr::null_mut()); MAX_STATE];
        for (ptr, held) in ptrs.iter_mut().zip(&self.state) {
            *ptr = held.data();
        }
        ptrs
    }
}

/// The slices of one param's update: its param, `grad` in the grad's place, and the `state`
/// buffers (null for none), of the lengths registered; `shaped` for a [`Rule::SHAPED`] rule's
/// whole tensor, whose buffers may have lengths of their own.
fn tensor_of<'a, T: Float>(
    slot: &Slot,
    grad: DataPtr,
    state: [DataPtr; MAX_STATE],
    shaped: bool,
) -> TensorMut<'a, T> {
    let len = slot.len;
    // SAFETY: every pointer belongs to a C-contiguous, aligned array of type T (of `len` elements,
    // a state buffer of its registered `state_lens` entry)
    // that the engine or the caller's grad list keeps alive for the whole step: the param and
    // state arrays were checked unchanged since registration (`check_slot`: data pointer, dtype,
    // shape, flags, and memory still held by their bases), the grad against the registered
    // dtype and shape (`check_grad`). The written ranges (param, state, step) are pairwise
    // disjoint and no grad overlaps them (`written_ranges`, `check_grad`), so these `&mut`
    // slices alias nothing; a state buffer read in the grad's place is not also passed as
    // state. Python code may not touch the arrays meanwhile: the step's caller holds the engine
    // mutably, and other threads writing an optimizer's params during its step is a data race
    // the API documents as forbidden, as in torch.
    unsafe {
        let param = std::slice::from_raw_parts_mut(slot.param.data().0 as *mut T, len);
        let grad = std::slice::from_raw_parts(grad.0 as *const T, len);
        let mut lens = slot.state_lens.iter();
        let state = state.map(|ptr| match lens.next() {
            Some(&state_len) if !ptr.0.is_null() => {
                std::slice::from_raw_parts_mut(ptr.0 as *mut T, state_len)
            }
            _ => &mut [][..],
        });
        if shaped {
            TensorMut::shaped(param, grad, state)
        } else {
            TensorMut::new(param, grad, state)
        }
    }
}

/// A state buffer must have its param's dtype and the shape `needs` (the param's own, unless the
/// rule keeps buffers of other shapes).
fn check_same_layout(
    param: &ArrayInfo<'_>,
    buffer: &ArrayInfo<'_>,
    needs: &[usize],
    what: &str,
) -> PyResult<()> {
    if buffer.dtype != param.dtype {
        return Err(param_dtype(format!(
            "{what} has dtype {} but its param is {}",
            buffer.dtype.name(),
            param.dtype.name()
        )));
    }
    if buffer.array.shape() != needs {
        let param_shape = param.array.shape();
        let so = if needs == param_shape {
            String::new()
        } else {
            format!(", so it needs shape {}", shape_str(needs))
        };
        return Err(invalid_param(format!(
            "{what} has shape {} but its param has shape {}{so}",
            shape_str(buffer.array.shape()),
            shape_str(param_shape)
        )));
    }
    Ok(())
}

/// What a written byte range holds.
#[derive(Clone, Copy, Debug)]
enum Holds {
    Param,
    State(usize),
    Step,
}

fn describe(slot: &Slot, holds: Holds) -> String {
    let label = &slot.label;
    match holds {
        Holds::Param => label.clone(),
        Holds::Step => format!("{label}'s step counter"),
        Holds::State(k) => format!(
            "{label}'s state '{}'",
            slot.names.get(k).copied().unwrap_or("?")
        ),
    }
}

/// Collects the byte ranges the step writes, sorted, and fails if any two overlap.
fn written_ranges(slots: &[&Slot]) -> PyResult<Vec<ByteRange<Tag>>> {
    let mut ranges = Vec::new();
    for (index, slot) in slots.iter().enumerate() {
        // Both fit: numpy allocated arrays of these sizes.
        let bytes = slot.len.saturating_mul(slot.param.dtype().size());
        ranges.push((slot.param.data().0 as usize, bytes, (index, Holds::Param)));
        for (k, (held, &len)) in slot.state.iter().zip(&slot.state_lens).enumerate() {
            let bytes = len.saturating_mul(slot.param.dtype().size());
            ranges.push((held.data().0 as usize, bytes, (index, Holds::State(k))));
        }
        let step_bytes = slot.step_len.saturating_mul(8);
        ranges.push((
            slot.step.data().0 as usize,
            step_bytes,
            (index, Holds::Step),
        ));
    }
    let name = |(index, holds): Tag| describe(slots[index], holds);
    disjoint_ranges(&ranges).map_err(|err| match err {
        LayoutError::Overlap { first, second } => invalid_param(format!(
            "{} shares memory with {}; every param needs its own memory (a param listed twice, \
             or views of one array, cannot be optimized together)",
            name(second),
            name(first)
        )),
        LayoutError::Overflow(tag) => invalid_param(format!(
            "{} lies at the end of the address space; pass a copy (np.array(x))",
            name(tag)
        )),
    })
}

/// Defines the Python class of one optimizer's engine; methods of its own may follow in braces.
macro_rules! engine_class {
    ($class:ident, $rule:ty, $name:literal $(, { $($methods:tt)* })?) => {
        #[pyo3::pyclass(name = $name, module = "optrs._core")]
        pub struct $class($crate::engine::Engine<$rule>);

        #[pyo3::pymethods]
        impl $class {
            #[new]
            fn new() -> Self {
                Self(Default::default())
            }

            /// Names and initial values of the state a group with these options keeps: the
            /// per-element buffers, and the per-param scalars after the step count.
            #[staticmethod]
            #[pyo3(signature = (group, label = "param group"))]
            fn state_spec(
                group: &pyo3::Bound<'_, pyo3::PyAny>,
                label: &str,
            ) -> pyo3::PyResult<($crate::engine::Spec, $crate::engine::Spec)> {
                $crate::engine::state_spec::<$rule>(group, label)
            }

            /// The shapes of the state buffers of params of `shapes` (see `state_shapes`).
            #[staticmethod]
            #[pyo3(signature = (group, shapes, label = "param group"))]
            fn state_shapes(
                group: &pyo3::Bound<'_, pyo3::PyAny>,
                shapes: &pyo3::Bound<'_, pyo3::PyAny>,
                label: &str,
            ) -> pyo3::PyResult<Vec<Vec<Option<Vec<usize>>>>> {
                $crate::engine::state_shapes::<$rule>(group, shapes, label)
            }

            fn add_group(
                &mut self,
                group: &pyo3::Bound<'_, pyo3::PyAny>,
                params: &pyo3::Bound<'_, pyo3::PyAny>,
                states: &pyo3::Bound<'_, pyo3::PyAny>,
                steps: &pyo3::Bound<'_, pyo3::PyAny>,
                prefix: &str,
            ) -> pyo3::PyResult<()> {
                self.0.add_group(group, params, states, steps, prefix)
            }

            fn refresh(&mut self, params: &pyo3::Bound<'_, pyo3::PyAny>) -> pyo3::PyResult<()> {
                self.0.refresh(params)
            }

            fn step(
                slf: &pyo3::Bound<'_, Self>,
                grads: &pyo3::Bound<'_, pyo3::PyAny>,
                groups: &pyo3::Bound<'_, pyo3::types::PyList>,
            ) -> pyo3::PyResult<bool> {
                let mut engine = slf.try_borrow_mut().map_err(|_| {
                    pyo3::exceptions::PyRuntimeError::new_err(
                        "this optimizer is already stepping in another thread; \
                         step an optimizer from one thread at a time",
                    )
                })?;
                engine.0.step(slf.py(), grads, groups, concat!($name, ".step"))
            }

            /// One step on arrays the caller keeps: the functional API.
            #[staticmethod]
            fn apply(
                py: pyo3::Python<'_>,
                group: &pyo3::Bound<'_, pyo3::PyAny>,
                params: &pyo3::Bound<'_, pyo3::PyAny>,
                grads: &pyo3::Bound<'_, pyo3::PyAny>,
                states: &pyo3::Bound<'_, pyo3::PyAny>,
                steps: &pyo3::Bound<'_, pyo3::PyAny>,
            ) -> pyo3::PyResult<()> {
                let mut engine = $crate::engine::Engine::<$rule>::functional();
                engine.add_group(group, params, states, steps, "params")?;
                let groups = pyo3::types::PyList::new(py, [group])?;
                engine.step(py, grads, &groups, concat!($name, ".apply"))?;
                Ok(())
            }

            $($($methods)*)?
        }
    };
}
pub(crate) use engine_class;
