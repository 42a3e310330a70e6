//! A running sum of squares whose rounding depends only on the sequence of values added, never on
//! how that sequence is cut into slices, so that a kernel may feed it a row, a chunk or a whole
//! block at a time and always get the same bits.
//!
//! Element `k` of the sequence is squared and added, in float64, to lane `k % LANES`; the lanes
//! are combined in a fixed pairwise tree. The lane loop is a plain element-wise loop over a short
//! array, which LLVM vectorises at every SIMD width with the same per-lane order. Squares of
//! float32 values are exact in float64, so float32 input rounds only in the sums.

use crate::Float;

/// Independent accumulators: enough for two AVX-512 registers of float64 to hide the add latency,
/// few enough that the final tree costs little for short rows.
pub const LANES: usize = 16;

#[derive(Clone, Copy, Debug)]
pub struct SquareSum {
    lanes: [f64; LANES],
    /// The lane the next value goes to.
    next: usize,
}

impl Default for SquareSum {
    fn default() -> Self {
        SquareSum {
            lanes: [0.0; LANES],
            next: 0,
        }
    }
}

impl SquareSum {
    /// Adds the squares of `values`, continuing the sequence where the last call stopped.
    #[inline(always)]
    pub fn add<T: Float>(&mut self, values: &[T]) {
        let mut values = values;
        if self.next != 0 {
            let take = (LANES - self.next).min(values.len());
            let (head, rest) = values.split_at(take);
            for (lane, &x) in self.lanes[self.next..].iter_mut().zip(head) {
                *lane += square(x);
            }
            self.next = (self.next + take) % LANES;
            if rest.is_empty() {
                return;
            }
            values = rest;
        }
        let chunks = values.chunks_exact(LANES);
        let tail = chunks.remainder();
        for chunk in chunks {
            for (lane, &x) in self.lanes.iter_mut().zip(chunk) {
                *lane += square(x);
            }
        }
        for (lane, &x) in self.lanes.iter_mut().zip(tail) {
            *lane += square(x);
        }
        self.next = tail.len();
    }

    /// The sum so far.
    pub fn total(&self) -> f64 {
        pairwise_sum(self.lanes)
    }
}

/// The sum of squares of `values`.
#[inline(always)]
pub fn sum_of_squares<T: Float>(values: &[T]) -> f64 {
    let mut sum = SquareSum::default();
    sum.add(values);
    sum.total()
}

/// The lanes of a blocked sum combined in a fixed pairwise tree: lane `j` with lane `j + N/2`,
/// and so on down to one (`N` a power of two).
#[inline(always)]
pub(crate) fn pairwise_sum<const N: usize>(mut lanes: [f64; N]) -> f64 {
    let mut width = N;
    while width > 1 {
        width /= 2;
        for j in 0..width {
            lanes[j] += lanes[j + width];
        }
    }
    lanes[0]
}

#[inline(always)]
fn square<T: Float>(x: T) -> f64 {
    let x = x.to_f64();
    x * x
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn how_the_sequence_is_cut_changes_no_bit() {
        let values: Vec<f32> = (0..1000).map(|i| (i as f32 * 0.37).sin() * 1e3).collect();
        let whole = sum_of_squares(&values);
        for cut in [1, 3, 15, 16, 17, 100, 999] {
            let mut sum = SquareSum::default();
            values.chunks(cut).for_each(|c| sum.add(c));
            assert_eq!(sum.total().to_bits(), whole.to_bits(), "cut into {cut}s");
        }
        let exact: f64 = values.iter().map(|&x| f64::from(x) * f64::from(x)).sum();
        assert!((whole - exact).abs() <= 1e-12 * exact);
    }

    #[test]
    fn empty_and_nan() {
        assert_eq!(sum_of_squares::<f64>(&[]), 0.0);
        assert_eq!(sum_of_squares(&[3.0f64, -4.0]), 25.0);
        assert!(sum_of_squares(&[1.0f32, f32::NAN]).is_nan());
        assert_eq!(sum_of_squares(&[f64::NEG_INFINITY]), f64::INFINITY);
    }
}
