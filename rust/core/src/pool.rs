//! The thread pool the kernels run on, resizable at run time.
//!
//! Rayon's global pool can be configured only once per process, so optrs keeps its own pool and
//! swaps it when the user calls `set_num_threads`. The default size comes from
//! `OPTRS_NUM_THREADS`, else the number of CPUs the process may use.

use rayon::prelude::*;
use rayon::{ThreadPool, ThreadPoolBuilder};
use std::sync::{Arc, RwLock};

/// The environment variable that sets the default number of threads.
pub const THREADS_ENV: &str = "OPTRS_NUM_THREADS";

static POOL: RwLock<Option<Arc<ThreadPool>>> = RwLock::new(None);

fn default_threads() -> usize {
    std::env::var(THREADS_ENV)
        .ok()
        .and_then(|s| s.trim().parse::<usize>().ok())
        .filter(|&n| n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
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
    let pool = build(default_threads())
        .unwrap_or_else(|_| build(1).expect("rayon could not start even one thread"));
    *slot = Some(Arc::clone(&pool));
    pool
}

/// Replaces the pool with one of `threads` threads. Steps already running finish on the old one.
pub fn set_num_threads(threads: usize) -> Result<(), String> {
    if threads == 0 {
        return Err("the number of threads must be at least 1".into());
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
