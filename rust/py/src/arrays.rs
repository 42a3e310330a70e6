//! Checks on NumPy arrays and raw access to their data.
//!
//! Arrays are checked with the GIL held, and then read and written through raw pointers while
//! the GIL is released. The checks here are what makes that sound: float32/float64 in native
//! byte order, C-contiguous, aligned, writeable where written, memory still held by the arrays
//! it was cut from, and (in `engine.rs`) no two written arrays and no grad sharing memory with a
//! written array. An engine that keeps arrays between steps keeps each as a `held::Held`, which
//! re-checks in O(1) that Python has not changed it since.

use crate::errors::{invalid_param, param_dtype};
use numpy::npyffi::flags::{NPY_ARRAY_ALIGNED, NPY_ARRAY_C_CONTIGUOUS, NPY_ARRAY_WRITEABLE};
use numpy::npyffi::PyArray_Check;
use numpy::{PyArrayDescr, PyArrayDescrMethods, PyUntypedArray, PyUntypedArrayMethods};
use optrs_core::layout::{contains, extent};
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

    /// The machine epsilon, as a float64.
    pub fn epsilon(self) -> f64 {
        match self {
            DType::F32 => f64::from(f32::EPSILON),
            DType::F64 => f64::EPSILON,
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
    let dtype = dtype_of(&descr).map_err(|()| {
        param_dtype(format!(
            "{what} has dtype {descr}; optimizers run on float32 or float64 arrays in native byte \
             order (convert with .astype(np.float32))",
            what = what()
        ))
    })?;
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
    check_memory_held(array, what)?;
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

/// The element type of `descr`, if optimizers run on it (float32/float64, native byte order).
pub fn dtype_of(descr: &Bound<'_, PyArrayDescr>) -> Result<DType, ()> {
    let dtype = match (descr.kind(), descr.itemsize()) {
        (b'f', 4) => DType::F32,
        (b'f', 8) => DType::F64,
        _ => return Err(()),
    };
    match descr.is_native_byteorder() {
        Some(false) => Err(()),
        _ => Ok(dtype),
    }
}

/// The bytes `[lo, hi)` an ndarray's elements occupy, from its live struct (None if its strides
/// describe memory outside the address space, which no valid array has).
///
/// # Safety
/// `array` must point at a live ndarray.
pub unsafe fn extent_of(py: Python<'_>, array: *mut pyo3::ffi::PyObject) -> Option<(usize, usize)> {
    // SAFETY: the caller passes a live ndarray, whose `dimensions` and `strides` hold `nd`
    // entries each (none, and possibly null pointers, when `nd` is 0).
    unsafe {
        let fields = &(*array.cast::<numpy::npyffi::PyArrayObject>()).fields;
        let nd = usize::try_from(fields.nd).ok()?;
        let (shape, strides): (&[usize], &[isize]) = if nd == 0 {
            (&[], &[])
        } else {
            (
                std::slice::from_raw_parts(fields.dimensions.cast::<usize>(), nd),
                std::slice::from_raw_parts(fields.strides, nd),
            )
        };
        let item_size = Bound::from_borrowed_ptr(py, array)
            .cast_into_unchecked::<PyUntypedArray>()
            .dtype()
            .itemsize();
        extent(fields.data as usize, shape, strides, item_size)
    }
}

/// Fails unless the memory `array` views is still inside the memory of each array it was cut
/// from. NumPy lets Python free an array's buffer under its views (`base.resize(...,
/// refcheck=False)`, `base.__setstate__(...)`); a view then points at freed memory with its own
/// fields unchanged, so only its base's current extent shows it. O(length of the base chain),
/// which NumPy collapses to the owning array (one or two links; longer only through ndarray
/// subclasses). A base that is not an ndarray (bytes, mmap, a memoryview) exports its buffer to
/// the view and cannot be resized while it does.
pub fn check_memory_held(
    array: &Bound<'_, PyUntypedArray>,
    what: &dyn Fn() -> String,
) -> PyResult<()> {
    let py = array.py();
    let mut child = array.as_ptr();
    // Computed once the array turns out to have an ndarray base (most arrays own their data).
    let mut known: Option<Option<(usize, usize)>> = None;
    loop {
        // SAFETY: `child` is a live ndarray: `array`, or a base that the previous one holds a
        // reference to; `base` is a plain field.
        let base = unsafe { (*child.cast::<numpy::npyffi::PyArrayObject>()).fields.base };
        // SAFETY: `base` is null or a live object (the child holds a reference to it).
        if base.is_null() || unsafe { PyArray_Check(py, base) } == 0 {
            return Ok(());
        }
        // SAFETY: `child` is a live ndarray (as above).
        let inner = *known.get_or_insert_with(|| unsafe { extent_of(py, child) });
        // SAFETY: `base` is a live ndarray (checked just above).
        let outer = unsafe { extent_of(py, base) };
        match (inner, outer) {
            (Some(inside), Some(around)) if contains(around, inside) => {}
            _ => {
                return Err(invalid_param(format!(
                    "{}'s memory is no longer held by the array it is a view of: that array was \
                     resized or reassigned in place (ndarray.resize(..., refcheck=False), \
                     __setstate__) after the view was made; use arrays whose buffers stay put \
                     (a copy: np.array(x))",
                    what()
                )))
            }
        }
        (child, known) = (base, Some(outer));
    }
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
