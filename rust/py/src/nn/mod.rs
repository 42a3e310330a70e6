//! The neural-network kernels of `optrs_core::nn` over NumPy arrays (the contract of
//! `optrs.nn._kernels`): float32 or float64 inputs of one dtype, C-contiguous, int64 class
//! indices; every call checks its arguments, allocates new outputs, and runs the kernel with the
//! GIL released.

mod activation;
mod conv;
mod linear;
mod loss;
mod pooling;

use crate::arrays::{check_array, shape_str, Access, DType};
use crate::errors::{invalid_hyperparameter, invalid_param, param_dtype};
use numpy::npyffi::{get_type_object, npy_intp, NpyTypes};
use numpy::{
    Element, PyArrayDescrMethods, PyArrayDyn, PyArrayMethods, PyReadonlyArrayDyn,
    PyReadwriteArrayDyn, PyUntypedArray, PyUntypedArrayMethods, PY_ARRAY_API,
};
use optrs_core::nn::{size, NnError, Real};
use pyo3::exceptions::PyMemoryError;
use pyo3::prelude::*;
use std::os::raw::c_int;

/// Adds the kernels to the module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    conv::register(m)?;
    pooling::register(m)?;
    activation::register(m)?;
    linear::register(m)?;
    loss::register(m)
}

/// The element types the kernels run on.
pub trait Scalar: Element + Real {
    const DTYPE: DType;
}

impl Scalar for f32 {
    const DTYPE: DType = DType::F32;
}

impl Scalar for f64 {
    const DTYPE: DType = DType::F64;
}

/// Calls `$f::<f32>` or `$f::<f64>` for a [`DType`].
macro_rules! by_dtype {
    ($dtype:expr, $f:ident($($arg:expr),* $(,)?)) => {
        match $dtype {
            DType::F32 => $f::<f32>($($arg),*),
            DType::F64 => $f::<f64>($($arg),*),
        }
    };
}
pub(crate) use by_dtype;

/// The bindings' exception for a core error: `InvalidParamError` for arrays,
/// `InvalidHyperparameterError` for options, `MemoryError` for buffers too large to allocate.
pub fn nn_error(error: NnError) -> PyErr {
    match error {
        NnError::Array(message) => invalid_param(message),
        NnError::Option(message) => invalid_hyperparameter(message),
        NnError::Memory(message) => PyMemoryError::new_err(message),
    }
}

/// The dtype of the array that sets a call's dtype, checked as every float input is: a float32
/// or float64 ndarray, C-contiguous and aligned.
pub fn dtype_of(object: &Bound<'_, PyAny>, name: &str) -> PyResult<DType> {
    Ok(check_array(object, &|| name.to_string(), Access::Read)?.dtype)
}

/// A float input, checked and borrowed for reading until it is dropped.
pub struct Input<'py, T: Element> {
    array: PyReadonlyArrayDyn<'py, T>,
    name: &'static str,
}

impl<'py, T: Scalar> Input<'py, T> {
    /// Checks `object` as [`dtype_of`] does and that it has the dtype of `lead` (the argument
    /// that set the call's dtype), then borrows it.
    pub fn new(object: &Bound<'py, PyAny>, name: &'static str, lead: &str) -> PyResult<Self> {
        let info = check_array(object, &|| name.to_string(), Access::Read)?;
        if info.dtype != T::DTYPE {
            return Err(param_dtype(format!(
                "{name} has dtype {} and {lead} {}; pass arrays of one dtype",
                info.dtype.name(),
                T::DTYPE.name()
            )));
        }
        let array = object
            .cast::<PyArrayDyn<T>>()
            .map_err(|e| param_dtype(format!("{name}: {e}")))?;
        Ok(Input {
            array: borrow(array.try_readonly(), name)?,
            name,
        })
    }

    pub fn shape(&self) -> &[usize] {
        self.array.shape()
    }

    pub fn data(&self) -> PyResult<&[T]> {
        self.array
            .as_slice()
            .map_err(|e| invalid_param(format!("{}: {e}", self.name)))
    }
}

/// The input `object` (or None) as an [`Input`].
pub fn optional_input<'py, T: Scalar>(
    object: Option<&Bound<'py, PyAny>>,
    name: &'static str,
    lead: &str,
) -> PyResult<Option<Input<'py, T>>> {
    object
        .filter(|o| !o.is_none())
        .map(|o| Input::new(o, name, lead))
        .transpose()
}

/// The data of an optional input.
pub fn optional_data<'a, T: Scalar>(input: &'a Option<Input<'_, T>>) -> PyResult<Option<&'a [T]>> {
    input.as_ref().map(Input::data).transpose()
}

fn borrow<A>(result: Result<A, numpy::BorrowError>, name: &str) -> PyResult<A> {
    result.map_err(|_| {
        invalid_param(format!(
            "{name} is being written by another call; pass a copy (np.array(...))"
        ))
    })
}

/// Class indices: an int64 ndarray, C-contiguous, borrowed for reading.
pub struct Targets<'py> {
    array: PyReadonlyArrayDyn<'py, i64>,
}

impl<'py> Targets<'py> {
    pub fn new(object: &Bound<'py, PyAny>, name: &'static str) -> PyResult<Self> {
        let type_error = |found: String| {
            param_dtype(format!(
                "{name} must be a numpy.ndarray of int64 class indices, got {found}; convert it \
                 with np.asarray(..., dtype=np.int64)"
            ))
        };
        let untyped = object.cast::<PyUntypedArray>().map_err(|_| {
            let type_name = object.get_type().name().map(|n| n.to_string());
            type_error(type_name.unwrap_or_default())
        })?;
        let array = object
            .cast::<PyArrayDyn<i64>>()
            .map_err(|_| type_error(format!("dtype {}", untyped.dtype())))?;
        if !array.is_c_contiguous() {
            return Err(invalid_param(format!(
                "{name} is not C-contiguous; pass np.ascontiguousarray(...) of it"
            )));
        }
        Ok(Targets {
            array: borrow(array.try_readonly(), name)?,
        })
    }

    pub fn shape(&self) -> &[usize] {
        self.array.shape()
    }

    pub fn data(&self) -> PyResult<&[i64]> {
        self.array
            .as_slice()
            .map_err(|e| invalid_param(format!("target: {e}")))
    }
}

/// A new zero-filled array for a kernel to write; `what` names it in errors.
pub fn output<'py, T: Scalar>(
    py: Python<'py>,
    shape: &[usize],
    what: &str,
) -> PyResult<Bound<'py, PyArrayDyn<T>>> {
    new_array(py, shape, true, what)
}

/// A new array for a kernel that writes every one of its elements: no zero-filling pass (for
/// the CNN's activations, a pass over megabytes on one thread while the GIL is held).
pub fn output_overwritten<'py, T: Element>(
    py: Python<'py>,
    shape: &[usize],
    what: &str,
) -> PyResult<Bound<'py, PyArrayDyn<T>>> {
    // The elements are left uninitialised. Callers hand the array to a kernel that writes every
    // element before anything reads it (each kernel's docs say so, and the tests compare every
    // element with a reference); on an error the array is dropped unread. The element types are
    // plain numbers (f32, f64, i64), for which any bit pattern is a valid value.
    new_array(py, shape, false, what)
}

/// A new C-contiguous array of `shape`, zero-filled or not. Sizes come from Python, so this
/// fails softly where rust-numpy's constructors panic: a shape NumPy cannot hold is an
/// `InvalidParamError`, one too large for memory a `MemoryError` naming its bytes.
fn new_array<'py, T: Element>(
    py: Python<'py>,
    shape: &[usize],
    zeroed: bool,
    what: &str,
) -> PyResult<Bound<'py, PyArrayDyn<T>>> {
    let item = std::mem::size_of::<T>();
    // NumPy's own limit: the product of the non-zero dimensions, in bytes, fits in an npy_intp.
    let nonzero: Vec<usize> = shape.iter().copied().filter(|&d| d != 0).collect();
    let fits = size::element_count(&nonzero).and_then(|n| size::byte_count(n, item));
    if fits.is_none() {
        let bytes = size::count_str(&[shape, &[item]].concat());
        return Err(if shape.contains(&0) {
            invalid_param(format!(
                "{what} would have shape {}, which NumPy cannot hold: the product of its \
                 non-zero sizes is over 2^63 - 1 bytes",
                shape_str(shape)
            ))
        } else {
            PyMemoryError::new_err(format!(
                "{what} would have shape {} and take {bytes} bytes, more than can be allocated; \
                 use smaller inputs or options",
                shape_str(shape)
            ))
        });
    }
    // Every size is at most isize::MAX (checked above), so each converts exactly.
    let mut dims: Vec<npy_intp> = shape.iter().map(|&d| d as npy_intp).collect();
    let ndim = dims.len() as c_int;
    // SAFETY: the NumPy C API is called with the GIL held (`py`), a dimension array of `ndim`
    // valid sizes that outlives the call, and a new reference to T's descriptor, which the call
    // steals (as rust-numpy's constructors do). Null strides and data ask NumPy to allocate a
    // C-contiguous array itself. The returned pointer is a new reference, or null with a Python
    // exception set (MemoryError when the allocation fails), which `from_owned_ptr_or_err` turns
    // into the error instead of the panic rust-numpy's constructors raise.
    let array = unsafe {
        let descr = T::get_dtype(py).into_dtype_ptr();
        let ptr = if zeroed {
            PY_ARRAY_API.PyArray_Zeros(py, ndim, dims.as_mut_ptr(), descr, 0)
        } else {
            PY_ARRAY_API.PyArray_NewFromDescr(
                py,
                get_type_object(py, NpyTypes::PyArray_Type),
                descr,
                ndim,
                dims.as_mut_ptr(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                0,
                std::ptr::null_mut(),
            )
        };
        Bound::from_owned_ptr_or_err(py, ptr)?
    };
    array
        .cast_into::<PyArrayDyn<T>>()
        .map_err(|e| invalid_param(format!("{what}: {e}")))
}

/// A new output's elements, for the kernel to write.
pub fn writable<'a, T: Element>(
    array: &'a mut PyReadwriteArrayDyn<'_, T>,
) -> PyResult<&'a mut [T]> {
    array
        .as_slice_mut()
        .map_err(|e| invalid_param(format!("output: {e}")))
}

/// A new output, borrowed for writing.
pub fn write<'py, T: Element>(
    array: &Bound<'py, PyArrayDyn<T>>,
) -> PyResult<PyReadwriteArrayDyn<'py, T>> {
    borrow(array.try_readwrite(), "output")
}

/// An int option, at least `min`.
pub fn count(value: i64, name: &str, min: i64) -> PyResult<usize> {
    if value < min {
        return Err(invalid_hyperparameter(format!(
            "{name} must be at least {min}, got {value}"
        )));
    }
    Ok(value as usize)
}

/// A pair option `(h, w)`, given as a sequence of two ints or one int for both, each at least
/// `min`.
pub fn pair(object: &Bound<'_, PyAny>, name: &str, min: i64) -> PyResult<[usize; 2]> {
    let values: [i64; 2] = if let Ok(v) = object.extract::<i64>() {
        [v, v]
    } else if let Ok((h, w)) = object.extract::<(i64, i64)>() {
        [h, w]
    } else if let Ok(v) = object.extract::<[i64; 2]>() {
        v
    } else {
        let shown = object
            .repr()
            .map(|r| r.to_string())
            .unwrap_or_else(|_| "?".into());
        return Err(invalid_hyperparameter(format!(
            "{name} must be an int or a pair of ints (h, w) below 2^63, got {shown}"
        )));
    };
    if values.iter().any(|&v| v < min) {
        let bound = if min == 1 {
            "positive".to_string()
        } else {
            format!("at least {min}")
        };
        return Err(invalid_hyperparameter(format!(
            "{name} must be {bound}, got ({}, {})",
            values[0], values[1]
        )));
    }
    Ok(values.map(|v| v as usize))
}

/// A shape given as a sequence of non-negative ints.
pub fn shape_arg(object: &Bound<'_, PyAny>, name: &str) -> PyResult<Vec<usize>> {
    let values: Vec<i64> = object.extract().map_err(|_| {
        invalid_param(format!(
            "{name} must be a tuple of ints such as x.shape, got {}",
            object
                .get_type()
                .name()
                .map(|n| n.to_string())
                .unwrap_or_default()
        ))
    })?;
    values
        .iter()
        .map(|&v| {
            usize::try_from(v).map_err(|_| {
                invalid_param(format!(
                    "{name} must hold non-negative sizes, got {values:?}"
                ))
            })
        })
        .collect()
}
