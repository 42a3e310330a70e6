//! Keeping freed memory for reuse: glibc's malloc tuned at import so that a training step's
//! arrays reuse the pages of the step before instead of faulting fresh ones in.
//!
//! A step allocates and frees the same large arrays every time (activations, their gradients,
//! im2col buffers: about 60 MB per seed-CNN step). glibc serves allocations above its mmap
//! threshold (128 KiB, raised as such blocks are freed) with fresh mappings, and hands free memory
//! at the top of the heap back to the kernel above its trim threshold; either way the next step
//! touches new pages and pays a page fault per 4 KiB. On the seed CNN that was about 2,900 faults
//! and 9% of a 1-thread step on an Intel Xeon (KVM): 68.6 -> 62.4 ms with the settings below, 0
//! faults per step (README "Performance"). The price is that up to [`TRIM_THRESHOLD`] of freed
//! memory stays mapped to the process, as a caching allocator's does.
//!
//! The user's own settings win: nothing changes when `OPTRS_KEEP_FREED_MEMORY=0`, or when the
//! environment already tunes these glibc parameters (`MALLOC_TRIM_THRESHOLD_`,
//! `MALLOC_MMAP_THRESHOLD_`, or `GLIBC_TUNABLES` naming them).

use pyo3::prelude::*;

/// Free memory at the top of the heap kept rather than returned to the kernel.
pub const TRIM_THRESHOLD: usize = 512 << 20;
/// Allocations up to this size come from the heap (glibc's largest allowed value on 64-bit):
/// larger ones are mapped, and unmapped when freed, as before.
pub const MMAP_THRESHOLD: usize = 32 << 20;

/// What `optrs info` reports: whether freed memory is kept, and why not if it is not.
static POLICY: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Applies the policy once per process (at import); later calls do nothing.
pub fn keep_freed_memory_from_env() {
    POLICY.get_or_init(|| match reason_to_leave_alone() {
        Some(why) => format!("not kept: {why}"),
        None if set_thresholds() => format!(
            "kept for reuse (glibc malloc: trim threshold {} MiB, mmap threshold {} MiB; \
             OPTRS_KEEP_FREED_MEMORY=0 turns this off)",
            TRIM_THRESHOLD >> 20,
            MMAP_THRESHOLD >> 20
        ),
        None => "not kept: this C library has no glibc mallopt".into(),
    });
}

fn reason_to_leave_alone() -> Option<String> {
    let var = |name: &str| std::env::var(name).ok();
    if var("OPTRS_KEEP_FREED_MEMORY").is_some_and(|v| v.trim() == "0") {
        return Some("OPTRS_KEEP_FREED_MEMORY=0".into());
    }
    for name in ["MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_"] {
        if var(name).is_some() {
            return Some(format!("{name} is set, so glibc follows it"));
        }
    }
    let tunables = var("GLIBC_TUNABLES").unwrap_or_default();
    if tunables.contains("glibc.malloc.trim_threshold")
        || tunables.contains("glibc.malloc.mmap_threshold")
    {
        return Some("GLIBC_TUNABLES sets malloc thresholds, so glibc follows them".into());
    }
    None
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn set_thresholds() -> bool {
    use std::ffi::c_int;
    extern "C" {
        fn mallopt(param: c_int, value: c_int) -> c_int;
    }
    // glibc's <malloc.h>.
    const M_TRIM_THRESHOLD: c_int = -1;
    const M_MMAP_THRESHOLD: c_int = -3;
    // SAFETY: mallopt is glibc's documented, thread-safe way to change these two tuning values (it
    // takes the arena lock); it reads no memory of ours, and both values fit in a c_int.
    unsafe {
        mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD as c_int) == 1
            && mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD as c_int) == 1
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn set_thresholds() -> bool {
    false
}

/// Whether optrs keeps freed memory for reuse, and its settings (see `optrs info`).
#[pyfunction]
fn freed_memory_policy() -> String {
    keep_freed_memory_from_env();
    POLICY.get().cloned().unwrap_or_default()
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    keep_freed_memory_from_env();
    m.add_function(wrap_pyfunction!(freed_memory_policy, m)?)
}
