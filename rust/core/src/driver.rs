//! Runs one optimizer step over many tensors: inline when the work is small, else on the pool,
//! with big tensors cut into fixed-size chunks and small ones batched into tasks of about the
//! same size. Chunk boundaries depend only on the tensor sizes, never on the thread count, and
//! the rules are element-wise, so the result is the same bit for bit on any number of threads.

use crate::rules::{Rule, TensorMut};
use crate::{pool, Float};
use rayon::prelude::*;

/// Elements per task: big enough to amortise a task (~1 µs) and small enough to balance cores.
pub const CHUNK: usize = 1 << 15;

/// Below this many elements in all, a step is not worth waking other threads for.
pub const PARALLEL_MIN: usize = 1 << 15;

/// One tensor's update in this step.
pub struct Work<'a, R, T> {
    pub rule: R,
    /// Steps this tensor has taken, this one included.
    pub step: u64,
    pub tensor: TensorMut<'a, T>,
}

impl<R: Rule, T: Float> Work<'_, R, T> {
    fn apply(self) {
        self.rule.update(self.step, self.tensor);
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
    let tasks = plan(work);
    pool.install(|| {
        tasks
            .into_par_iter()
            .for_each(|task| task.into_iter().for_each(Work::apply))
    });
}

/// Cuts the work into tasks of about [`CHUNK`] elements.
fn plan<'a, R: Rule, T: Float>(work: Vec<Work<'a, R, T>>) -> Vec<Vec<Work<'a, R, T>>> {
    let mut tasks = Vec::new();
    let mut batch = Vec::new();
    let mut batch_len = 0;
    for w in work {
        if w.tensor.len() >= CHUNK {
            let Work {
                rule,
                step,
                mut tensor,
            } = w;
            while tensor.len() > CHUNK {
                let (head, tail) = tensor.split_at(CHUNK);
                tasks.push(vec![Work {
                    rule,
                    step,
                    tensor: head,
                }]);
                tensor = tail;
            }
            tasks.push(vec![Work { rule, step, tensor }]);
            continue;
        }
        batch_len += w.tensor.len();
        batch.push(w);
        if batch_len >= CHUNK {
            tasks.push(std::mem::take(&mut batch));
            batch_len = 0;
        }
    }
    if !batch.is_empty() {
        tasks.push(batch);
    }
    tasks
}
