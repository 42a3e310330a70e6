//! The heavy kernels of a convolutional network's forward and backward passes, on NCHW slices:
//! convolution, pooling, (log-)softmax, the NLL and cross-entropy losses and ReLU, computing what
//! `torch.nn.functional` computes.
//!
//! Every kernel writes a caller-provided output and reads its inputs; the shape structs
//! ([`conv::ConvShape`], [`pooling::PoolShape`]) check the arguments first and say which one is
//! wrong. Work is split over the batch, planes or rows on optrs's pool, and no result depends on
//! the thread count: every output element is computed by the same code in the same order on any
//! split, and sums over the batch (weight and bias gradients) add fixed per-chunk partial sums in
//! chunk order.

pub mod activation;
pub mod conv;
mod im2col;
pub mod loss;
pub mod pooling;
pub mod size;
pub mod softmax;

use crate::{pool, Float};
use rayon::prelude::*;
use std::fmt;

/// A bad argument: the message names it and says what was expected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NnError {
    /// An array whose shape or contents do not fit the call (mismatched shapes, an input smaller
    /// than the kernel, a class index out of range).
    Array(String),
    /// An option outside its domain (zero stride, padding over half the kernel, groups that do
    /// not divide the channels).
    Option(String),
    /// An output or scratch buffer too large to allocate; the message names its bytes.
    Memory(String),
}

impl fmt::Display for NnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NnError::Array(message) | NnError::Option(message) | NnError::Memory(message) => {
                f.write_str(message)
            }
        }
    }
}

impl std::error::Error for NnError {}

/// The float operations the kernels need beyond [`Float`]'s.
pub trait Real: Float {
    fn exp(self) -> Self;
    fn ln(self) -> Self;
    fn from_i64(x: i64) -> Self;
}

impl Real for f32 {
    #[inline(always)]
    fn exp(self) -> Self {
        f32::exp(self)
    }
    #[inline(always)]
    fn ln(self) -> Self {
        f32::ln(self)
    }
    #[inline(always)]
    fn from_i64(x: i64) -> Self {
        x as f32
    }
}

impl Real for f64 {
    #[inline(always)]
    fn exp(self) -> Self {
        f64::exp(self)
    }
    #[inline(always)]
    fn ln(self) -> Self {
        f64::ln(self)
    }
    #[inline(always)]
    fn from_i64(x: i64) -> Self {
        x as f64
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

/// An error unless `shape` is `expected`.
pub fn expect_shape(name: &str, shape: &[usize], expected: &[usize]) -> Result<(), NnError> {
    if shape == expected {
        Ok(())
    } else {
        Err(NnError::Array(format!(
            "{name} has shape {}; expected {}",
            shape_str(shape),
            shape_str(expected)
        )))
    }
}

/// An error unless `shape` has `ndim` dimensions; `what` says what they are, e.g. "(N, C, H, W)".
pub fn expect_ndim(name: &str, shape: &[usize], ndim: usize, what: &str) -> Result<(), NnError> {
    if shape.len() == ndim {
        Ok(())
    } else {
        Err(NnError::Array(format!(
            "{name} has shape {}; expected {ndim} dimensions {what}",
            shape_str(shape)
        )))
    }
}

/// A buffer of `len` copies of `value` for a kernel's scratch (`what` names it in the error), or
/// an error naming its bytes when it cannot be allocated: sizes come from Python, so allocation
/// must fail softly rather than abort.
fn try_filled<T: Clone>(len: usize, value: T, what: &str) -> Result<Vec<T>, NnError> {
    let mut buffer = Vec::new();
    buffer.try_reserve_exact(len).map_err(|_| {
        NnError::Memory(format!(
            "{what} needs {} bytes, which could not be allocated; use smaller inputs or fewer \
             threads",
            size::count_str(&[len, std::mem::size_of::<T>()])
        ))
    })?;
    buffer.resize(len, value);
    Ok(buffer)
}

/// Independent accumulators of [`sum`]: a vector's worth at every SIMD width, so the lane loop
/// vectorises while every width adds the same numbers in the same order.
const LANES: usize = 16;

/// The sum of `x` in a fixed order: element `i` goes to lane `i % LANES`, the lanes are combined
/// in a fixed pairwise tree.
fn sum<T: Float>(x: &[T]) -> T {
    let mut lanes = [T::ZERO; LANES];
    let mut chunks = x.chunks_exact(LANES);
    for chunk in &mut chunks {
        for (lane, &v) in lanes.iter_mut().zip(chunk) {
            *lane = *lane + v;
        }
    }
    for (lane, &v) in lanes.iter_mut().zip(chunks.remainder()) {
        *lane = *lane + v;
    }
    let mut width = LANES;
    while width > 1 {
        width /= 2;
        for j in 0..width {
            lanes[j] = lanes[j] + lanes[j + width];
        }
    }
    lanes[0]
}

/// Below this many element operations a call runs on the calling thread: smaller calls finish
/// before the pool's threads wake.
const PARALLEL_MIN: usize = 1 << 15;

/// Tasks per thread, so that uneven tasks still balance.
const TASKS_PER_THREAD: usize = 4;

/// How many tasks `items` items of `cost` element operations each are split into: 1 (run inline)
/// for small calls or one thread. The split only decides who computes what, never a result.
fn task_count(items: usize, cost: usize) -> usize {
    if items.saturating_mul(cost) < PARALLEL_MIN {
        return 1;
    }
    let threads = pool::num_threads();
    if threads == 1 {
        1
    } else {
        items.min(threads * TASKS_PER_THREAD)
    }
}

/// Calls `f(first_item, items)` on consecutive runs of the `item_len`-element items of `out`,
/// in parallel on the pool when there is enough work (`cost` element operations per item).
fn for_each_items<T: Send>(
    out: &mut [T],
    item_len: usize,
    cost: usize,
    f: impl Fn(usize, &mut [T]) + Sync,
) {
    if item_len == 0 || out.is_empty() {
        return;
    }
    let items = out.len() / item_len;
    let tasks = task_count(items, cost);
    if tasks <= 1 {
        return f(0, out);
    }
    let per_task = items.div_ceil(tasks);
    pool::current().install(|| {
        out.par_chunks_mut(per_task * item_len)
            .enumerate()
            .for_each(|(task, run)| f(task * per_task, run))
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_are_named() {
        assert_eq!(shape_str(&[3]), "(3,)");
        assert_eq!(shape_str(&[2, 3]), "(2, 3)");
        assert_eq!(shape_str(&[]), "()");
        let err = expect_shape("grad_y", &[2, 3], &[2, 4]).unwrap_err();
        assert_eq!(err.to_string(), "grad_y has shape (2, 3); expected (2, 4)");
        assert!(expect_ndim("x", &[2, 3], 4, "(N, C, H, W)").is_err());
    }

    #[test]
    fn items_are_each_visited_once() {
        let mut out = vec![0u32; 3 * 1000];
        for_each_items(&mut out, 3, 100, |first, run| {
            for (i, item) in run.chunks_mut(3).enumerate() {
                item.fill((first + i) as u32);
            }
        });
        let want: Vec<u32> = (0..3000).map(|i| (i / 3) as u32).collect();
        assert_eq!(out, want);
    }
}
