//! `optrs._core`: the PyO3 bindings. They only convert: NumPy arrays in, Python exceptions out,
//! the GIL released around every kernel. The arithmetic lives in `optrs-core`.

mod arrays;
mod engine;
mod errors;
mod held;
mod memory;
mod nn;
mod optim;
mod profiling;
mod utils;
mod vector;

use optrs_core::{pool, simd};
use pyo3::exceptions::{PyOverflowError, PyRuntimeWarning};
use pyo3::prelude::*;
use std::ffi::CString;

/// Sets the number of threads optimizer steps run on (results do not depend on it): 1 to 8 per
/// CPU, at least 64. The threads start with the GIL released.
#[pyfunction]
fn set_num_threads(py: Python<'_>, threads: &Bound<'_, PyAny>) -> PyResult<()> {
    let count = match threads.extract::<usize>() {
        Ok(count) => count,
        // Negative, or past a machine word: out of range, as 0 is.
        Err(e) if e.is_instance_of::<PyOverflowError>(py) => 0,
        Err(e) => return Err(e),
    };
    py.detach(|| pool::set_num_threads(count)).map_err(|e| {
        errors::invalid_hyperparameter(format!("set_num_threads(threads={threads}): {e}"))
    })
}

/// The number of threads optimizer steps run on (the first call starts them, GIL released).
#[pyfunction]
fn get_num_threads(py: Python<'_>) -> usize {
    py.detach(pool::num_threads)
}

/// The SIMD instruction set kernels use: "avx512", "avx2", "sse2", "neon" or "scalar".
#[pyfunction]
fn simd_level() -> &'static str {
    simd::active().name()
}

/// Lowers the SIMD level kernels use ("baseline", "avx2", "avx512"; None restores the default:
/// `OPTRS_SIMD`'s level if set, else detection).
/// For tests and benchmarks that compare instruction-set paths; `OPTRS_SIMD` does it for a process.
#[pyfunction]
#[pyo3(signature = (level=None))]
fn force_simd_level(level: Option<&str>) -> PyResult<()> {
    let level = match level {
        None => None,
        Some(name) => Some(simd::parse(name).ok_or_else(|| {
            pyo3::exceptions::PyValueError::new_err(format!(
                "unknown SIMD level {name:?}; use 'baseline', 'avx2', 'avx512' or None"
            ))
        })?),
    };
    simd::force(level).map_err(pyo3::exceptions::PyValueError::new_err)
}

/// How this extension was built (`optrs info` prints it): version, git revision, compiler,
/// profile, target, the target features compiled in everywhere, and RUSTFLAGS.
#[pyfunction]
fn build_info() -> Vec<(&'static str, &'static str)> {
    vec![
        ("version", env!("CARGO_PKG_VERSION")),
        ("git_revision", env!("OPTRS_GIT_REVISION")),
        ("rustc", env!("OPTRS_RUSTC_VERSION")),
        ("profile", env!("OPTRS_PROFILE")),
        ("target", env!("OPTRS_TARGET")),
        ("target_features", env!("OPTRS_TARGET_FEATURES")),
        ("rustflags", env!("OPTRS_RUSTFLAGS")),
        ("simd_dispatch", SIMD_DISPATCH),
    ]
}

/// The instruction sets kernels are compiled for besides the baseline, picked at run time.
const SIMD_DISPATCH: &str = if cfg!(target_arch = "x86_64") {
    "avx512, avx2 or sse2, picked at run time"
} else {
    "baseline only"
};

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    if let (_, Some(why)) = pool::default_threads() {
        let category = m.py().get_type::<PyRuntimeWarning>();
        PyErr::warn(m.py(), &category, &CString::new(why)?, 1)?;
    }
    if let Err(why) = simd::force_from_env() {
        let category = m.py().get_type::<PyRuntimeWarning>();
        PyErr::warn(m.py(), &category, &CString::new(why)?, 1)?;
    }
    m.add_function(wrap_pyfunction!(set_num_threads, m)?)?;
    m.add_function(wrap_pyfunction!(get_num_threads, m)?)?;
    m.add_function(wrap_pyfunction!(simd_level, m)?)?;
    m.add_function(wrap_pyfunction!(force_simd_level, m)?)?;
    m.add_function(wrap_pyfunction!(build_info, m)?)?;
    memory::register(m)?;
    utils::register(m)?;
    profiling::register(m)?;
    vector::register(m)?;
    nn::register(m)?;
    optim::register(m)?;
    Ok(())
}
