//! Checks on NumPy arrays and raw access to their data.
//!
//! Arrays are checked once, with the GIL held, and then read and written through raw pointers
//! while the GIL is released. The checks here are what makes that sound: float32/float64 in
//! native byte order, C-contiguous, aligned, writeable where written, and (in `engine.rs`) no
//! two written arrays and no grad sharing memory with a written array.

use crate::errors::{invalid_param, param_dtype};
use numpy::npyffi::flags::{NPY_ARRAY_ALIGNED, NPY_ARRAY_C_CONTIGUOUS, NPY_ARRAY_WRITEABLE};
use numpy::{PyArrayDescrMethods, PyUntypedArray, PyUntypedArrayMethods};
use pyo3::prelude::*;

/// The element types optimizers run on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DType {
    F32,
    F64,
}

impl DType {
    pub fn name(self) -> &'static str {
        match self {
            DType::F32 => "float32",
            DType::F64 => "float64",
        }
    }

    pub fn size(self) -> usize {
        match self {
            DType::F32 => 4,
            DType::F64 => 8,
        }
    }
}

/// A pointer into an array's data that may cross into the GIL-free part of a call.
#[derive(Clone, Copy, Debug)]
pub struct DataPtr(pub *mut u8);

// SAFETY: a DataPtr is only dereferenced inside a step, while the engine holds a reference to the
// array that owns the memory (so it stays allocated) and after the aliasing checks have shown
// that no two threads write the same bytes.
unsafe impl Send for DataPtr {}
// SAFETY: as above; shared references to a DataPtr only copy the address.
unsafe impl Sync for DataPtr {}

/// What a checked array looks like.
pub struct ArrayInfo<'py> {
    pub array: Bound<'py, PyUntypedArray>,
    pub dtype: DType,
    pub data: DataPtr,
    pub len: usize,
}

impl ArrayInfo<'_> {
    /// The bytes the array occupies, as [start, end).
    pub fn byte_range(&self) -> (usize, usize) {
        let start = self.data.0 as usize;
        (start, start + self.len * self.dtype.size())
    }
}

/// Whether the array is written by the step (params, state) or only read (grads).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Read,
    Write,
}

/// Checks that `object` is a float32/float64 ndarray the kernels can use as it is.
/// `what` names it in errors, e.g. "param_groups[0]['params'][1]" or "grad of ..."; it is only
/// called on failure, so the check costs no allocation.
pub fn check_array<'py>(
    object: &Bound<'py, PyAny>,
    what: &dyn Fn() -> String,
    access: Access,
) -> PyResult<ArrayInfo<'py>> {
    let array = object.cast::<PyUntypedArray>().map_err(|_| {
        let type_name = object
            .get_type()
            .name()
            .map(|n| n.to_string())
            .unwrap_or_default();
        param_dtype(format!(
            "{what} must be a numpy.ndarray of float32 or float64, got {type_name}",
            what = what()
        ))
    })?;
    let descr = array.dtype();
    let dtype = match (descr.kind(), descr.itemsize()) {
        (b'f', 4) => DType::F32,
        (b'f', 8) => DType::F64,
        _ => {
            return Err(param_dtype(format!(
                "{what} has dtype {}; optimizers run on float32 or float64 arrays (convert with .astype(np.float32))",
                descr, what = what())))
        }
    };
    if descr.is_native_byteorder() == Some(false) {
        return Err(param_dtype(format!(
            "{what} has non-native byte order ({}); convert it with .astype({})",
            descr,
            dtype.name(),
            what = what()
        )));
    }
    // SAFETY: `array` is a live ndarray (the cast above checked its type), so its object struct
    // can be read; `flags` is a plain field.
    let flags = unsafe { (*array.as_array_ptr()).fields.flags };
    if flags & NPY_ARRAY_C_CONTIGUOUS == 0 {
        return Err(invalid_param(format!(
            "{what} is not C-contiguous (strides {:?}); pass np.ascontiguousarray(...) of it",
            array.strides(),
            what = what()
        )));
    }
    if flags & NPY_ARRAY_ALIGNED == 0 {
        return Err(invalid_param(format!(
            "{what} is not aligned for {}; pass a copy (np.array(...))",
            dtype.name(),
            what = what()
        )));
    }
    if access == Access::Write && flags & NPY_ARRAY_WRITEABLE == 0 {
        return Err(invalid_param(format!(
            "{what} is read-only; the optimizer updates it in place, so pass a writeable array (np.array(x) makes one)", what = what())));
    }
    // SAFETY: as above, `data` is a plain field of the live array struct.
    let data = DataPtr(unsafe { (*array.as_array_ptr()).fields.data } as *mut u8);
    let len = array.len();
    Ok(ArrayInfo {
        array: array.clone(),
        dtype,
        data,
        len,
    })
}

/// Whether a registered array's writeable flag is still set (a user may clear it between steps).
pub fn is_writeable(array: &Bound<'_, PyUntypedArray>) -> bool {
    // SAFETY: `array` is a live ndarray; `flags` is a plain field.
    unsafe { (*array.as_array_ptr()).fields.flags & NPY_ARRAY_WRITEABLE != 0 }
}

/// Formats a shape as NumPy prints it: `(3,)`, `(2, 3)`, `()`.
pub fn shape_str(shape: &[usize]) -> String {
    match shape {
        [one] => format!("({one},)"),
        _ => format!(
            "({})",
            shape
                .iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}
