//! Dot products and fused `x += alpha * y` over flat vectors: the vector arithmetic of L-BFGS.
//!
//! [`dot`] sums in a fixed order whatever the thread count or SIMD level, so L-BFGS's directions
//! do not depend on either: the vector is cut into blocks of [`BLOCK`] elements, element `i` of a
//! block goes to lane `i % LANES` of the block's float64 accumulators, the lanes are combined in
//! a fixed pairwise tree and the blocks' sums are added in block order. Threads only choose which
//! blocks they compute. Up to [`SMALL`] elements the order is MKL's `ddot` (two accumulators, even
//! and odd elements), which is what torch runs on the CPU, so small float64 problems replay
//! torch's bits.
//!
//! [`axpy`] is torch's `x.add_(y, alpha=a)`: one fused multiply-add per element, rounded once.
//! `mul_add` is exactly rounded on every CPU (an instruction where the level has FMA, libm's
//! `fma` otherwise), so its result does not depend on the SIMD level either.

use crate::simd::{dispatch, Kernel};
use crate::{pool, Float};
use rayon::prelude::*;

/// Elements per block: the unit of the reduction and of the parallel split.
pub const BLOCK: usize = 1 << 14;

/// Independent accumulators per block (the same in every vector width, see `norms.rs`).
const LANES: usize = 64;

/// Up to this many elements, the dot product uses MKL's order for short vectors.
pub const SMALL: usize = 8;

/// Below this many elements a call runs inline: smaller ones finish before other threads wake.
const PARALLEL_MIN: usize = 1 << 18;

/// `sum a[i] * b[i]`, each product and sum in float64, rounded once to `T` at the end.
///
/// # Panics
/// If the lengths differ.
pub fn dot<T: Float>(a: &[T], b: &[T]) -> T {
    assert_eq!(a.len(), b.len(), "dot of vectors of different lengths");
    if a.len() <= SMALL {
        return T::from_f64(small_dot(a, b));
    }
    let blocks = a.len().div_ceil(BLOCK);
    let mut partials = vec![0.0; blocks];
    let threads = pool::num_threads();
    if a.len() < PARALLEL_MIN || threads == 1 {
        dispatch(BlockDots {
            a,
            b,
            out: &mut partials,
        });
    } else {
        // Whole blocks per task, so the blocks (and so the sums) are those of the inline path.
        let per_task = blocks.div_ceil(threads * 4).max(1);
        pool::current().install(|| {
            partials
                .par_chunks_mut(per_task)
                .zip(a.par_chunks(per_task * BLOCK))
                .zip(b.par_chunks(per_task * BLOCK))
                .for_each(|((out, a), b)| dispatch(BlockDots { a, b, out }))
        });
    }
    // Starting from +0.0: the dot product of nothing is 0, not -0.
    T::from_f64(partials.into_iter().fold(0.0, |sum, x| sum + x))
}

/// MKL's `ddot` order for short vectors: even elements into one sum, odd into another.
fn small_dot<T: Float>(a: &[T], b: &[T]) -> f64 {
    let (mut even, mut odd) = (0.0, 0.0);
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        let product = x.to_f64() * y.to_f64();
        if i % 2 == 0 {
            even += product;
        } else {
            odd += product;
        }
    }
    even + odd
}

/// The dot products of consecutive blocks of `a` and `b`, one per element of `out`.
struct BlockDots<'a, T> {
    a: &'a [T],
    b: &'a [T],
    out: &'a mut [f64],
}

impl<T: Float> Kernel for BlockDots<'_, T> {
    type Output = ();

    #[inline(always)]
    fn run(self) {
        for ((out, a), b) in self
            .out
            .iter_mut()
            .zip(self.a.chunks(BLOCK))
            .zip(self.b.chunks(BLOCK))
        {
            *out = block_dot(a, b);
        }
    }
}

#[inline(always)]
fn block_dot<T: Float>(a: &[T], b: &[T]) -> f64 {
    let mut lanes = [0.0f64; LANES];
    let mut a_rows = a.chunks_exact(LANES);
    let mut b_rows = b.chunks_exact(LANES);
    for (a, b) in a_rows.by_ref().zip(b_rows.by_ref()) {
        for ((lane, x), y) in lanes.iter_mut().zip(a).zip(b) {
            *lane += x.to_f64() * y.to_f64();
        }
    }
    for ((lane, x), y) in lanes
        .iter_mut()
        .zip(a_rows.remainder())
        .zip(b_rows.remainder())
    {
        *lane += x.to_f64() * y.to_f64();
    }
    // A fixed pairwise tree: halve the lanes until one is left.
    let mut width = LANES;
    while width > 1 {
        width /= 2;
        for i in 0..width {
            lanes[i] += lanes[i + width];
        }
    }
    lanes[0]
}

/// `x[i] = y[i] * alpha + x[i]`, rounded once (torch's `x.add_(y, alpha=alpha)`).
///
/// # Panics
/// If the lengths differ.
pub fn axpy<T: Float>(x: &mut [T], y: &[T], alpha: T) {
    assert_eq!(x.len(), y.len(), "axpy of vectors of different lengths");
    let threads = pool::num_threads();
    if x.len() < PARALLEL_MIN || threads == 1 {
        dispatch(Axpy { x, y, alpha });
        return;
    }
    let per_task = x.len().div_ceil(threads * 4).max(BLOCK);
    pool::current().install(|| {
        x.par_chunks_mut(per_task)
            .zip(y.par_chunks(per_task))
            .for_each(|(x, y)| dispatch(Axpy { x, y, alpha }))
    });
}

struct Axpy<'a, T> {
    x: &'a mut [T],
    y: &'a [T],
    alpha: T,
}

impl<T: Float> Kernel for Axpy<'_, T> {
    type Output = ();

    #[inline(always)]
    fn run(self) {
        for (x, &y) in self.x.iter_mut().zip(self.y) {
            *x = y.mul_add(self.alpha, *x);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vector(n: usize, seed: u64) -> Vec<f64> {
        let mut state = seed;
        (0..n)
            .map(|_| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                (state >> 11) as f64 / (1u64 << 53) as f64 - 0.5
            })
            .collect()
    }

    #[test]
    fn short_vectors_sum_even_and_odd_elements_apart() {
        let a = [1e16, 1.0, -1e16, 1.0, 3.0];
        let b = [1.0; 5];
        // Even: 1e16 - 1e16 + 3 = 3; odd: 2. A left-to-right sum would lose the first 1.0.
        assert_eq!(dot(&a, &b), 5.0);
    }

    #[test]
    fn long_dot_is_close_to_an_exact_sum_and_float32_rounds_once() {
        let a = vector(100_003, 1);
        let b = vector(100_003, 2);
        let naive: f64 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        assert!((dot(&a, &b) - naive).abs() < 1e-10);
        let a32: Vec<f32> = a.iter().map(|&x| x as f32).collect();
        let b32: Vec<f32> = b.iter().map(|&x| x as f32).collect();
        let wide: f64 = a32
            .iter()
            .zip(&b32)
            .map(|(&x, &y)| x as f64 * y as f64)
            .sum();
        assert!((dot(&a32, &b32) as f64 - wide).abs() <= wide.abs() * 1e-7);
    }

    #[test]
    fn dot_and_axpy_do_not_depend_on_the_thread_count() {
        let a = vector(1 << 20, 3);
        let b = vector(1 << 20, 4);
        let run = |threads: usize| {
            pool::set_num_threads(threads).unwrap();
            let mut x = a.clone();
            axpy(&mut x, &b, 0.3);
            (dot(&a, &b).to_bits(), x)
        };
        let one = run(1);
        let two = run(2);
        let three = run(3);
        pool::set_num_threads(2).unwrap();
        assert_eq!(one, two);
        assert_eq!(one, three);
    }

    #[test]
    fn axpy_rounds_once() {
        // (1 + 2^-30)(1 - 2^-30) - 1 = -2^-60 exactly, which an FMA keeps; rounding the product
        // first gives 1.0 and so 0.
        let (x0, y, alpha) = (-1.0, 1.0 + 2f64.powi(-30), 1.0 - 2f64.powi(-30));
        let mut x = [x0];
        axpy(&mut x, &[y], alpha);
        assert_eq!(x[0], -(2f64.powi(-60)));
        assert_ne!(y * alpha + x0, x[0]);
    }
}
