//! The thread pool the kernels run on, resizable at run time.
//!
//! Rayon's global pool can be configured only once per process, so optrs keeps its own pool and
//! swaps it when the user calls `set_num_threads`. The default size comes from
//! `OPTRS_NUM_THREADS`, else the number of CPUs the process may use.
//!
//! A pool has at most [`max_threads`] threads: starting a thread costs a stack and a system call
//! (ten thousand took over 20 s), and more than a few per CPU only adds switching.

use rayon::prelude::*;
use rayon::{ThreadPool, ThreadPoolBuilder};
use std::env::VarError;
use std::num::IntErrorKind;
use std::sync::{Arc, RwLock};

/// The environment variable that sets the default number of threads.
pub const THREADS_ENV: &str = "OPTRS_NUM_THREADS";
/// Threads per CPU a pool may have ...
pub const THREADS_PER_CPU: usize = 8;
/// ... and at least this many, whatever the CPU count.
pub const MIN_MAX_THREADS: usize = 64;

static POOL: RwLock<Option<Arc<ThreadPool>>> = RwLock::new(None);

fn cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The most threads a pool may have: 8 per CPU the process may use, at least 64.
pub fn max_threads() -> usize {
    cpus().saturating_mul(THREADS_PER_CPU).max(MIN_MAX_THREADS)
}

/// The default pool size, and why `OPTRS_NUM_THREADS` was not taken as it is when it was set but
/// not used: a value above [`max_threads`] is clamped to it, anything but a positive whole number
/// falls back to the CPU count.
pub fn default_threads() -> (usize, Option<String>) {
    let (cpus, max) = (cpus(), max_threads());
    let value = match std::env::var(THREADS_ENV) {
        Err(VarError::NotPresent) => return (cpus, None),
        Err(VarError::NotUnicode(value)) => format!("{value:?}"),
        Ok(value) => match value.trim().parse::<usize>() {
            Ok(threads @ 1..) if threads <= max => return (threads, None),
            Ok(1..) => return (max, Some(too_many(&value, max))),
            Err(e) if *e.kind() == IntErrorKind::PosOverflow => {
                return (max, Some(too_many(&value, max)))
            }
            _ => format!("{value:?}"),
        },
    };
    let why =
        format!("{THREADS_ENV}={value} is not a positive whole number; optrs uses the {cpus} CPUs");
    (cpus, Some(why))
}

fn too_many(value: &str, max: usize) -> String {
    format!(
        "{THREADS_ENV}={value} is more threads than optrs starts ({max}: {THREADS_PER_CPU} per CPU, at least \
         {MIN_MAX_THREADS}); it uses {max}"
    )
}

fn build(threads: usize) -> Result<Arc<ThreadPool>, String> {
    ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("optrs-{i}"))
        .build()
        .map(Arc::new)
        .map_err(|e| format!("could not start {threads} threads: {e}"))
}

/// The current pool, created on first use.
pub fn current() -> Arc<ThreadPool> {
    if let Some(pool) = POOL.read().unwrap_or_else(|e| e.into_inner()).as_ref() {
        return Arc::clone(pool);
    }
    let mut slot = POOL.write().unwrap_or_else(|e| e.into_inner());
    if let Some(pool) = slot.as_ref() {
        return Arc::clone(pool);
    }
    let pool = build(default_threads().0)
        .unwrap_or_else(|_| build(1).expect("rayon could not start even one thread"));
    *slot = Some(Arc::clone(&pool));
    pool
}

/// Replaces the pool with one of `threads` threads, 1 to [`max_threads`]. Steps already running
/// finish on the old one.
pub fn set_num_threads(threads: usize) -> Result<(), String> {
    let max = max_threads();
    if !(1..=max).contains(&threads) {
        return Err(format!(
            "the number of threads must be between 1 and {max} ({THREADS_PER_CPU} per CPU the \
             process may use, at least {MIN_MAX_THREADS})"
        ));
    }
    let pool = build(threads)?;
    *POOL.write().unwrap_or_else(|e| e.into_inner()) = Some(pool);
    Ok(())
}

pub fn num_threads() -> usize {
    current().current_num_threads()
}

/// Runs `run(item, parallel)` for every item of a step: on the calling thread with `parallel`
/// false when the step is `small` or the pool has one thread (waking threads would cost more),
/// else on the pool, the items in parallel and `parallel` true, so that each item may split its
/// own work across the pool too.
pub fn for_each<W: Send>(work: Vec<W>, small: bool, run: impl Fn(W, bool) + Sync + Send) {
    let pool = current();
    if small || pool.current_num_threads() == 1 {
        return work.into_iter().for_each(|w| run(w, false));
    }
    pool.install(|| work.into_par_iter().for_each(|w| run(w, true)));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thread_counts_outside_one_to_the_cap_are_refused_before_any_thread_starts() {
        let max = max_threads();
        assert!(max >= MIN_MAX_THREADS && max >= THREADS_PER_CPU * cpus());
        for threads in [0, max + 1, usize::MAX] {
            let error = set_num_threads(threads).unwrap_err();
            assert!(error.contains(&format!("between 1 and {max}")), "{error}");
        }
    }
}
