//! Kernel timings for `optrs.profiler`: every binding that does real work runs its GIL-free
//! section through [`detach`], which records (name, start, duration, thread) while profiling is
//! on and costs one relaxed atomic load while it is off. Python drains the records and places
//! them inside its own events, timed on the same clock ([`profiler_now_ns`]).

use crate::errors::internal_error;
use pyo3::prelude::*;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

static ENABLED: AtomicBool = AtomicBool::new(false);
static RECORDS: Mutex<Vec<Record>> = Mutex::new(Vec::new());
static EPOCH: OnceLock<Instant> = OnceLock::new();
static NEXT_THREAD: AtomicU64 = AtomicU64::new(1);

thread_local! {
    /// A small id per thread, shared with Python through [`profiler_thread_id`].
    static THREAD: u64 = NEXT_THREAD.fetch_add(1, Ordering::Relaxed);
}

/// One kernel call: its name, start (ns since the epoch), duration (ns) and thread id.
type Record = (&'static str, u64, u64, u64);

fn now_ns() -> u64 {
    EPOCH.get_or_init(Instant::now).elapsed().as_nanos() as u64
}

fn thread_id() -> u64 {
    THREAD.with(|id| *id)
}

/// Runs `kernel` with the GIL released (`py.detach`), timing it as `name` while profiling is on.
///
/// A panic inside the kernel is a bug in optrs (arguments are checked before, and sizes with
/// checked arithmetic); as a backstop it becomes `optrs.InternalError`, a `RuntimeError` that
/// `except Exception` catches, rather than pyo3's `PanicException`, which it does not.
pub fn detach<T, F>(py: Python<'_>, name: &'static str, kernel: F) -> PyResult<T>
where
    F: Send + FnOnce() -> T,
    T: Send,
{
    // Unwind safety: on a panic the kernel's outputs may be partly written; the error says so,
    // and nothing else the kernel touched outlives the call.
    let result = py.detach(|| {
        std::panic::catch_unwind(AssertUnwindSafe(|| {
            if !ENABLED.load(Ordering::Relaxed) {
                return kernel();
            }
            let start = now_ns();
            let result = kernel();
            let record = (name, start, now_ns() - start, thread_id());
            RECORDS
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(record);
            result
        }))
    });
    result.map_err(|payload| {
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        internal_error(format!(
            "optrs's {name} kernel panicked ({message}); this is a bug in optrs, please report \
             it with the call that caused it. The arrays it was writing may be partly updated"
        ))
    })
}

/// Turns kernel timing on or off (`optrs.profiler.profile` does this).
#[pyfunction]
fn profiler_set_enabled(enabled: bool) {
    ENABLED.store(enabled, Ordering::Relaxed);
}

/// The kernel calls timed since the last drain, as (name, start ns, duration ns, thread id).
#[pyfunction]
fn profiler_drain() -> Vec<Record> {
    std::mem::take(&mut *RECORDS.lock().unwrap_or_else(|e| e.into_inner()))
}

/// Nanoseconds since a fixed point of this process: the clock kernel records use.
#[pyfunction]
fn profiler_now_ns() -> u64 {
    now_ns()
}

/// The calling thread's id as kernel records give it.
#[pyfunction]
fn profiler_thread_id() -> u64 {
    thread_id()
}

/// Adds the profiler's functions to the module; the clock starts at import.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    EPOCH.get_or_init(Instant::now);
    m.add_function(wrap_pyfunction!(profiler_set_enabled, m)?)?;
    m.add_function(wrap_pyfunction!(profiler_drain, m)?)?;
    m.add_function(wrap_pyfunction!(profiler_now_ns, m)?)?;
    m.add_function(wrap_pyfunction!(profiler_thread_id, m)?)
}
