//! What the optimizers whose step needs each tensor whole (Muon, Adafactor) share. They do not fit
//! the element-wise `Engine`: each step is one function that reads every group's options and
//! checks every array (params, state, grads: dtype, shape, layout, no shared memory) before it
//! writes anything. These are those checks.

use crate::arrays::{check_array, shape_str, Access, ArrayInfo};
use crate::errors::{invalid_hyperparameter, invalid_param, param_dtype};
use numpy::PyUntypedArrayMethods;
use optrs_core::layout::{disjoint_ranges, overlapping, ByteRange, LayoutError};
use optrs_core::HyperError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};

/// The items of a Python iterable.
pub fn items<'py>(iterable: &Bound<'py, PyAny>) -> PyResult<Vec<Bound<'py, PyAny>>> {
    iterable.try_iter()?.collect()
}

/// Every group's options, read by `read` from its dict and checked by `validate`, and where
/// each param of the groups sits. Errors name the group.
pub fn group_options<R: Copy>(
    groups: &Bound<'_, PyAny>,
    read: impl Fn(&Bound<'_, PyDict>) -> PyResult<R>,
    validate: impl Fn(&R) -> Result<(), HyperError>,
) -> PyResult<(Vec<R>, Positions)> {
    let mut options = Vec::new();
    for (index, group) in items(groups)?.iter().enumerate() {
        let label = || format!("param_groups[{index}]");
        options.push(one_group(group, &label, &read, &validate)?);
    }
    let positions = Positions::new(options.iter().map(|&(_, count)| count));
    Ok((
        options.into_iter().map(|(rule, _)| rule).collect(),
        positions,
    ))
}

/// A group's options and how many params it lists.
fn one_group<R>(
    group: &Bound<'_, PyAny>,
    label: &dyn Fn() -> String,
    read: impl Fn(&Bound<'_, PyDict>) -> PyResult<R>,
    validate: impl Fn(&R) -> Result<(), HyperError>,
) -> PyResult<(R, usize)> {
    let dict = group
        .cast::<PyDict>()
        .map_err(|_| param_dtype(format!("{} must be a dict", label())))?;
    let read = || -> PyResult<(R, usize)> {
        let rule = read(dict)?;
        let count = item(dict, pyo3::intern!(group.py(), "params"))?.len()?;
        Ok((rule, count))
    };
    let (rule, count) = read()
        .map_err(|e| invalid_hyperparameter(format!("{}: {}", label(), e.value(group.py()))))?;
    validate(&rule).map_err(|e| invalid_hyperparameter(format!("{}: {e}", label())))?;
    Ok((rule, count))
}

/// `dict[key]`, which must be there.
pub fn item<'py>(
    dict: &Bound<'py, PyDict>,
    key: &Bound<'py, PyString>,
) -> PyResult<Bound<'py, PyAny>> {
    dict.get_item(key)?
        .ok_or_else(|| invalid_hyperparameter(format!("the param group has no '{key}'")))
}

/// An option of the wrong kind: `what` it must be, and what it is.
pub fn wrong(what: &str, value: &Bound<'_, PyAny>) -> PyErr {
    let shown = value.repr().map(|r| r.to_string()).unwrap_or_default();
    invalid_hyperparameter(format!("{what}, got {shown}"))
}

/// The lists a step gets must each have one entry per param the groups list: `lists` names the
/// per-param lists besides the grads, with their lengths.
pub fn check_counts(listed: usize, lists: &[(&str, usize)], grads: usize) -> PyResult<()> {
    if lists.iter().any(|&(_, len)| len != listed) {
        let got: Vec<String> = lists
            .iter()
            .map(|(name, len)| format!("{len} {name}"))
            .collect();
        return Err(invalid_param(format!(
            "the param groups list {listed} params, but got {}",
            got.join(" and ")
        )));
    }
    if grads != listed {
        return Err(invalid_param(format!(
            "step() got {grads} grads for {listed} params; pass one grad (or None) per param, in \
             param group order"
        )));
    }
    Ok(())
}

/// Where each param sits in the groups, for error messages.
pub struct Positions(Vec<(usize, usize)>);

impl Positions {
    /// For groups of `counts` params each.
    pub fn new(counts: impl IntoIterator<Item = usize>) -> Self {
        Positions(
            counts
                .into_iter()
                .enumerate()
                .flat_map(|(group, count)| (0..count).map(move |i| (group, i)))
                .collect(),
        )
    }

    /// How many params the groups list.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// The group of param `index`.
    pub fn group(&self, index: usize) -> usize {
        self.0[index].0
    }

    /// `param_groups[g]['params'][i]` of param `index`.
    pub fn label(&self, index: usize) -> String {
        let (group, i) = self.0[index];
        format!("param_groups[{group}]['params'][{i}]")
    }
}

/// How errors name a state array of a param.
pub fn state_label(param: &str, name: &str) -> String {
    format!("{param}'s state '{name}'")
}

/// The grad of param `label` (None skips the param): an array of the param's dtype and shape.
pub fn check_grad<'py>(
    grad: &Bound<'py, PyAny>,
    param: &ArrayInfo<'_>,
    label: &dyn Fn() -> String,
) -> PyResult<Option<ArrayInfo<'py>>> {
    if grad.is_none() {
        return Ok(None);
    }
    let what = || format!("grad of {}", label());
    let info = check_array(grad, &what, Access::Read)?;
    check_like(param, &info, param.array.shape(), &what)?;
    Ok(Some(info))
}

/// `info` (a grad or state array, named by `what`) must have the param's dtype and `shape` (the
/// param's own shape for grads).
pub fn check_like(
    param: &ArrayInfo<'_>,
    info: &ArrayInfo<'_>,
    shape: &[usize],
    what: &dyn Fn() -> String,
) -> PyResult<()> {
    if info.dtype != param.dtype {
        let name = param.dtype.name();
        return Err(param_dtype(format!(
            "{} has dtype {} but the param is {name}; pass a {name} array (x.astype(np.{name}))",
            what(),
            info.dtype.name()
        )));
    }
    if info.array.shape() != shape {
        let param_shape = param.array.shape();
        let needs = if shape == param_shape {
            String::new()
        } else {
            format!(", so it needs shape {}", shape_str(shape))
        };
        return Err(invalid_param(format!(
            "{} has shape {} but the param has shape {}{needs}",
            what(),
            shape_str(info.array.shape()),
            shape_str(param_shape),
        )));
    }
    Ok(())
}

/// What a written byte range holds: param `index`'s array (None) or its state array `state`.
type Tag = (usize, Option<&'static str>);

/// Every array a step writes. Once [`check_disjoint`](Self::check_disjoint) passed, no two of
/// them share memory, and grads are checked against them all.
#[derive(Default)]
pub struct WrittenRanges {
    added: Vec<(usize, usize, Tag)>,
    sorted: Vec<ByteRange<Tag>>,
}

impl WrittenRanges {
    /// Records param `index`'s array (`state` None) or its state array `state`.
    pub fn add(&mut self, info: &ArrayInfo<'_>, index: usize, state: Option<&'static str>) {
        let (start, end) = info.byte_range();
        self.added.push((start, end - start, (index, state)));
    }

    /// Fails when two recorded arrays share memory.
    pub fn check_disjoint(&mut self, positions: &Positions) -> PyResult<()> {
        self.sorted = disjoint_ranges(&self.added).map_err(|err| match err {
            LayoutError::Overlap { first, second } => invalid_param(format!(
                "{} shares memory with {}; every param and state array needs its own memory \
                 (a param listed twice, or views of one array, cannot be optimized together)",
                describe(second, positions),
                describe(first, positions)
            )),
            LayoutError::Overflow(tag) => invalid_param(format!(
                "{} lies at the end of the address space; pass a copy (np.array(x))",
                describe(tag, positions)
            )),
        })?;
        Ok(())
    }

    /// Fails when the grad of param `index` shares memory with an array the step writes.
    pub fn check_grad(
        &self,
        grad: &ArrayInfo<'_>,
        index: usize,
        positions: &Positions,
    ) -> PyResult<()> {
        let (start, end) = grad.byte_range();
        match overlapping(&self.sorted, start, end) {
            Some(owner) => Err(invalid_param(format!(
                "grad of {} shares memory with {}, which the step writes; pass a separate grad \
                 array (a copy)",
                positions.label(index),
                describe(owner.tag, positions)
            ))),
            None => Ok(()),
        }
    }
}

fn describe((index, state): Tag, positions: &Positions) -> String {
    let param = positions.label(index);
    match state {
        None => param,
        Some(name) => state_label(&param, name),
    }
}
