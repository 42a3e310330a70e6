//! Runs one step of an element-wise rule over many tensors: inline when the work is small, else
//! on the pool, cut into a few tasks per thread of about equal size (big tensors split, small ones
//! batched). The rule is element-wise and every SIMD path rounds like the scalar one, so where
//! the cuts fall never changes a bit: results are the same on any number of threads.

use crate::rules::{Rule, TensorMut};
use crate::{pool, Float};
use rayon::prelude::*;

/// Tasks per thread: enough for work stealing to even out a slow core, few enough that each
/// task streams through long contiguous runs of memory.
const TASKS_PER_THREAD: usize = 4;

/// Task size bounds in elements: a task costs about a microsecond to schedule.
const MIN_TASK: usize = 1 << 14;
const MAX_TASK: usize = 1 << 20;

/// Below this many elements in all, a step is not worth waking other threads for.
pub const PARALLEL_MIN: usize = 1 << 15;

/// One tensor's update in this step.
pub struct Work<'a, R: Rule, T> {
    pub rule: R,
    /// `rule.scalars(step)` for this tensor's step count.
    pub scalars: R::Scalars,
    pub tensor: TensorMut<'a, T>,
}

impl<R: Rule, T: Float> Work<'_, R, T> {
    fn apply(self) {
        self.rule.update(&self.scalars, self.tensor);
    }
}

/// Applies every update.
pub fn run<R: Rule, T: Float>(work: Vec<Work<'_, R, T>>) {
    let total: usize = work.iter().map(|w| w.tensor.len()).sum();
    if total < PARALLEL_MIN {
        return work.into_iter().for_each(Work::apply);
    }
    let pool = pool::current();
    if pool.current_num_threads() == 1 {
        return work.into_iter().for_each(Work::apply);
    }
    let threads = pool.current_num_threads();
    let task_len = total
        .div_ceil(threads * TASKS_PER_THREAD)
        .clamp(MIN_TASK, MAX_TASK)
        .next_multiple_of(64);
    let tasks = plan(work, task_len);
    pool.install(|| {
        tasks
            .into_par_iter()
            .for_each(|task| task.into_iter().for_each(Work::apply))
    });
}

/// Cuts the work into tasks of about `task_len` elements.
fn plan<'a, R: Rule, T: Float>(
    work: Vec<Work<'a, R, T>>,
    task_len: usize,
) -> Vec<Vec<Work<'a, R, T>>> {
    let mut tasks = Vec::new();
    let mut batch = Vec::new();
    let mut batch_len = 0;
    for w in work {
        if w.tensor.len() >= task_len {
            let Work {
                rule,
                scalars,
                mut tensor,
            } = w;
            while tensor.len() > task_len {
                let (head, tail) = tensor.split_at(task_len);
                tasks.push(vec![Work {
                    rule,
                    scalars,
                    tensor: head,
                }]);
                tensor = tail;
            }
            tasks.push(vec![Work {
                rule,
                scalars,
                tensor,
            }]);
            continue;
        }
        batch_len += w.tensor.len();
        batch.push(w);
        if batch_len >= task_len {
            tasks.push(std::mem::take(&mut batch));
            batch_len = 0;
        }
    }
    if !batch.is_empty() {
        tasks.push(batch);
    }
    tasks
}
