//! The exceptions the bindings raise. The classes are defined in `optrs/errors.py` so that each
//! can inherit both `OptrsError` and the builtin users expect (`ValueError`, `TypeError`).

use pyo3::PyErr;

mod imported {
    pyo3::import_exception!(optrs.errors, InvalidParamError);
    pyo3::import_exception!(optrs.errors, ParamDTypeError);
    pyo3::import_exception!(optrs.errors, InvalidHyperparameterError);
    pyo3::import_exception!(optrs.errors, InternalError);
}

/// An array that cannot be used as it is: shape, layout, writeability, aliasing, count.
pub fn invalid_param(message: String) -> PyErr {
    imported::InvalidParamError::new_err(message)
}

/// Not an ndarray, or not of the dtype it must have.
pub fn param_dtype(message: String) -> PyErr {
    imported::ParamDTypeError::new_err(message)
}

/// A hyperparameter outside its domain.
pub fn invalid_hyperparameter(message: String) -> PyErr {
    imported::InvalidHyperparameterError::new_err(message)
}

/// A bug in optrs: a kernel panicked (the backstop of `profiling::detach`).
pub fn internal_error(message: String) -> PyErr {
    imported::InternalError::new_err(message)
}
