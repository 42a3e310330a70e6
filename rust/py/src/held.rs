//! Arrays an engine keeps between steps, and the O(1) checks that Python has not changed them.
//!
//! Python can change a NumPy array in place: `a.resize(..., refcheck=False)` and
//! `a.__setstate__(...)` replace its buffer, `a.dtype = ...`, `a.shape = ...` and `a.strides =
//! ...` reinterpret it, `a.setflags(write=False)` makes it read-only, and doing any of that to
//! the base of a view leaves the view pointing at freed memory with its own fields unchanged.
//! So an engine keeps each array it writes as a [`Held`] (what the array looked like when it was
//! registered) and the distinct ndarray bases of those arrays as [`Owners`], and compares them
//! all again before each step. Holding the arrays, their bases and descrs also keeps their
//! addresses from being reused, so comparing addresses is sound.
//!
//! The bases are checked once per step however many arrays share them (an optimizer's state
//! buffers are views of one flat array per state name), and a held view is then only compared
//! field by field: its memory was inside its base's when it was registered
//! (`check_memory_held`), neither has changed since, so it still is.

use crate::arrays::{check_memory_held, dtype_of, extent_of, shape_str, ArrayInfo, DType, DataPtr};
use crate::errors::invalid_param;
use numpy::npyffi::flags::{
    NPY_ARRAY_ALIGNED, NPY_ARRAY_C_CONTIGUOUS, NPY_ARRAY_OWNDATA, NPY_ARRAY_WRITEABLE,
};
use numpy::npyffi::PyArray_Check;
use numpy::{PyArrayDescr, PyUntypedArray, PyUntypedArrayMethods};
use pyo3::prelude::*;
use std::os::raw::c_int;

/// The flags a registered array must keep set.
const KEPT_FLAGS: c_int = NPY_ARRAY_C_CONTIGUOUS | NPY_ARRAY_ALIGNED | NPY_ARRAY_WRITEABLE;

/// The fields of a live ndarray that the checks compare.
struct Fields {
    data: *mut u8,
    flags: c_int,
    descr: *mut PyArrayDescr,
    base: *mut pyo3::ffi::PyObject,
}

fn fields_of(array: &Bound<'_, PyUntypedArray>) -> Fields {
    // SAFETY: `array` is a live ndarray; these are plain fields of its struct.
    unsafe {
        let fields = &(*array.as_array_ptr()).fields;
        Fields {
            data: fields.data.cast(),
            flags: fields.flags,
            descr: fields.descr.cast(),
            base: fields.base,
        }
    }
}

/// A new reference to `object` unless it is null.
fn hold(py: Python<'_>, object: *mut pyo3::ffi::PyObject) -> Option<Py<PyAny>> {
    // SAFETY: a non-null `object` is a live object that the array it came from refers to.
    (!object.is_null()).then(|| unsafe { Bound::from_borrowed_ptr(py, object) }.unbind())
}

/// An array an engine writes between steps, and what it looked like when it was checked: its
/// data pointer, dtype, shape, flags and base.
pub struct Held {
    array: Py<PyUntypedArray>,
    data: DataPtr,
    dtype: DType,
    descr: Py<PyArrayDescr>,
    shape: Box<[usize]>,
    owns_data: bool,
    base: Option<Py<PyAny>>,
}

impl Held {
    /// Holds a writeable array that `check_array` accepted (so its memory lies inside its base's).
    pub fn new(info: &ArrayInfo<'_>) -> Self {
        let fields = fields_of(&info.array);
        Held {
            array: info.array.clone().unbind(),
            data: info.data,
            dtype: info.dtype,
            descr: info.array.dtype().unbind(),
            shape: info.array.shape().into(),
            owns_data: fields.flags & NPY_ARRAY_OWNDATA != 0,
            base: hold(info.array.py(), fields.base),
        }
    }

    pub fn array(&self) -> &Py<PyUntypedArray> {
        &self.array
    }

    pub fn data(&self) -> DataPtr {
        self.data
    }

    pub fn dtype(&self) -> DType {
        self.dtype
    }

    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// Fails, naming the array with `what` and saying what to do with `fix`, unless it still has
    /// the data pointer, dtype, shape, flags and base it was registered with. Its base is
    /// checked by [`Owners::check`].
    pub fn check(
        &self,
        py: Python<'_>,
        what: &dyn Fn() -> String,
        fix: &dyn Fn() -> String,
    ) -> PyResult<()> {
        let array = self.array.bind(py);
        let now = fields_of(array);
        let changed = |how: String| {
            invalid_param(format!(
                "{} changed since the optimizer registered it: {how}; {}",
                what(),
                fix()
            ))
        };
        if !std::ptr::eq(now.descr, self.descr.as_ptr().cast()) {
            let dtype = array.dtype();
            if dtype_of(&dtype) != Ok(self.dtype) {
                return Err(changed(format!(
                    "its dtype is now {dtype}, it was {}",
                    self.dtype.name()
                )));
            }
        }
        if array.shape() != &*self.shape {
            return Err(changed(format!(
                "its shape is now {}, it was {}",
                shape_str(array.shape()),
                shape_str(&self.shape)
            )));
        }
        let base = self.base.as_ref().map_or(std::ptr::null_mut(), Py::as_ptr);
        if now.data != self.data.0
            || (now.flags & NPY_ARRAY_OWNDATA != 0) != self.owns_data
            || now.base != base
        {
            return Err(changed(
                "its buffer was replaced (ndarray.resize, __setstate__ or a new base)".into(),
            ));
        }
        if now.flags & KEPT_FLAGS != KEPT_FLAGS {
            if now.flags & NPY_ARRAY_WRITEABLE == 0 {
                return Err(invalid_param(format!(
                    "{} became read-only; the optimizer updates it in place, so make it writeable \
                     again (a.setflags(write=True))",
                    what()
                )));
            }
            return Err(changed("it is no longer C-contiguous and aligned".into()));
        }
        Ok(())
    }
}

/// A base array that held arrays are views of, as it was when they were registered.
struct Owner {
    array: Py<PyUntypedArray>,
    data: DataPtr,
    extent: Option<(usize, usize)>,
    owns_data: bool,
    base: Option<Py<PyAny>>,
    /// Names a view of it in errors.
    user: String,
}

/// The distinct ndarray bases of an engine's held arrays.
#[derive(Default)]
pub struct Owners(Vec<Owner>);

impl Owners {
    /// The ndarray bases of `held`, each once; `name(tag)` names a held array in errors.
    pub fn collect<'a, T>(
        py: Python<'_>,
        held: impl IntoIterator<Item = (&'a Held, T)>,
        name: impl Fn(T) -> String,
    ) -> Self {
        let mut owners: Vec<Owner> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for (held, tag) in held {
            let Some(base) = &held.base else {
                continue;
            };
            // SAFETY: `base` is a live object (held).
            if unsafe { PyArray_Check(py, base.as_ptr()) } == 0 || !seen.insert(base.as_ptr()) {
                continue;
            }
            // SAFETY: checked to be an ndarray just above.
            let array = unsafe { base.bind(py).cast_unchecked::<PyUntypedArray>() };
            let fields = fields_of(array);
            owners.push(Owner {
                array: array.clone().unbind(),
                data: DataPtr(fields.data),
                // SAFETY: `array` is a live ndarray.
                extent: unsafe { extent_of(py, array.as_ptr()) },
                owns_data: fields.flags & NPY_ARRAY_OWNDATA != 0,
                base: hold(py, fields.base),
                user: name(tag),
            });
        }
        Owners(owners)
    }

    /// Fails unless every base still has the buffer it had (data pointer, extent, whether it
    /// owns it, its own base) and, where it is itself a view, that buffer is still held.
    pub fn check(&self, py: Python<'_>) -> PyResult<()> {
        for owner in &self.0 {
            let array = owner.array.bind(py);
            let now = fields_of(array);
            let base = owner.base.as_ref().map_or(std::ptr::null_mut(), Py::as_ptr);
            // SAFETY: `array` is a live ndarray (held).
            if now.data != owner.data.0
                || (now.flags & NPY_ARRAY_OWNDATA != 0) != owner.owns_data
                || now.base != base
                || unsafe { extent_of(py, array.as_ptr()) } != owner.extent
            {
                return Err(invalid_param(format!(
                    "{}'s memory is no longer held: the array it is a view of (its .base) was \
                     resized, reshaped or reassigned in place (ndarray.resize(..., \
                     refcheck=False), __setstate__) after the optimizer registered it; load a \
                     state_dict() into a new optimizer, or give params whose buffers stay put",
                    owner.user
                )));
            }
            check_memory_held(array, &|| format!("the base of {}", owner.user))?;
        }
        Ok(())
    }
}
