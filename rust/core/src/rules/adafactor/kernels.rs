//! The loops of an Adafactor step, each over one block of a tensor and compiled for the CPU's
//! SIMD level by [`dispatch`](crate::simd::dispatch). A block of a factored tensor is a run of
//! whole rows of one matrix; a block of an unfactored one is a run of elements. Every loop uses
//! exactly rounded operations only (fused multiply-adds where torch fuses, see `float.rs`), and
//! every reduction goes through [`SquareSum`] or runs in a fixed order, so no result depends on
//! the SIMD level or on which thread runs which block.

use crate::simd::Kernel;
use crate::square_sum::{sum_of_squares, SquareSum};
use crate::Float;

/// Updates computed at a time before their squares are summed: a few SIMD registers' worth.
const CHUNK: usize = 256;

/// How a gradient element and its second-moment estimate become the update (before clipping).
#[derive(Clone, Copy)]
pub struct Estimate<T> {
    /// -1 with `maximize`, else 1 (so `grad * sign` is torch's `-grad`, exactly).
    pub sign: T,
    /// `eps1 * eps1`, computed in float64 and rounded, as torch's `clamp_(min=eps1 * eps1)`.
    pub eps1_squared: T,
}

impl<T: Float> Estimate<T> {
    /// torch's `var.clamp_(min=eps1 * eps1).rsqrt_().mul_(grad)`; the clamp keeps NaN.
    #[inline(always)]
    pub fn update(self, grad: T, variance: T) -> T {
        let variance = if variance < self.eps1_squared {
            self.eps1_squared
        } else {
            variance
        };
        (T::ONE / variance.sqrt()) * (grad * self.sign)
    }
}

/// Pass 1 of a factored block: each row's sum of squared grads into `row_squares`, the block's
/// column sums of squared grads into `col_squares` (its rows added in order), and the block's sum
/// of squared params as the result.
pub struct FactoredSums<'a, T> {
    pub param: &'a [T],
    pub grad: &'a [T],
    pub cols: usize,
    pub row_squares: &'a mut [f64],
    pub col_squares: &'a mut [f64],
}

impl<T: Float> Kernel for FactoredSums<'_, T> {
    type Output = f64;

    #[inline(always)]
    fn run(self) -> f64 {
        let FactoredSums {
            param,
            grad,
            cols,
            row_squares,
            col_squares,
        } = self;
        col_squares.fill(0.0);
        for (row, row_square) in grad.chunks_exact(cols).zip(row_squares.iter_mut()) {
            *row_square = sum_of_squares(row);
            for (col, &g) in col_squares.iter_mut().zip(row) {
                let g = g.to_f64();
                *col += g * g;
            }
        }
        sum_of_squares(param)
    }
}

/// What the factored update of a block reads: each of its rows' `row_var`, the matrix's
/// `col_var`, and the matrix's `row_var` mean clamped at `eps1`.
#[derive(Clone, Copy)]
pub struct Factors<'a, T> {
    pub row_var: &'a [T],
    pub col_var: &'a [T],
    pub row_var_mean: T,
    pub estimate: Estimate<T>,
}

impl<T: Float> Factors<'_, T> {
    /// The update of element `(row, col)`: torch's `(row_var @ col_var).div_(mean)`, then
    /// [`Estimate::update`].
    #[inline(always)]
    fn update(&self, grad: T, row_var: T, col_var: T) -> T {
        self.estimate
            .update(grad, row_var * col_var / self.row_var_mean)
    }
}

/// Pass 2 of a factored block: the sum of its squared updates.
pub struct FactoredUpdateSquares<'a, T> {
    pub grad: &'a [T],
    pub factors: Factors<'a, T>,
}

impl<T: Float> Kernel for FactoredUpdateSquares<'_, T> {
    type Output = f64;

    #[inline(always)]
    fn run(self) -> f64 {
        let Factors {
            row_var, col_var, ..
        } = self.factors;
        let mut sum = SquareSum::default();
        let mut updates = [T::ZERO; CHUNK];
        for (row, &r) in self.grad.chunks_exact(col_var.len()).zip(row_var) {
            for (grads, cols) in row.chunks(CHUNK).zip(col_var.chunks(CHUNK)) {
                let updates = &mut updates[..grads.len()];
                for ((u, &g), &c) in updates.iter_mut().zip(grads).zip(cols) {
                    *u = self.factors.update(g, r, c);
                }
                sum.add(updates);
            }
        }
        sum.total()
    }
}

/// How a param element moves: `param * decay + scale * update`, torch's weight decay
/// `param.mul_(1 - lr * weight_decay)` (a factor of exactly 1 without decay, which changes no
/// value) then `param.add_(update, alpha=scale)`.
#[derive(Clone, Copy)]
pub struct Move<T> {
    pub decay: T,
    pub scale: T,
}

impl<T: Float> Move<T> {
    #[inline(always)]
    fn apply(self, param: T, update: T) -> T {
        // param.mul_(1 - lr * weight_decay); param.add_(update, alpha=scale)
        self.scale.mul_add(update, param * self.decay)
    }
}

/// Pass 3 of a factored block: the param update.
pub struct FactoredApply<'a, T> {
    pub param: &'a mut [T],
    pub grad: &'a [T],
    pub factors: Factors<'a, T>,
    pub step: Move<T>,
}

impl<T: Float> Kernel for FactoredApply<'_, T> {
    type Output = ();

    #[inline(always)]
    fn run(self) {
        let Factors {
            row_var, col_var, ..
        } = self.factors;
        let cols = col_var.len();
        let rows = self
            .param
            .chunks_exact_mut(cols)
            .zip(self.grad.chunks_exact(cols));
        for ((params, grads), &r) in rows.zip(row_var) {
            for ((p, &g), &c) in params.iter_mut().zip(grads).zip(col_var) {
                *p = self.step.apply(*p, self.factors.update(g, r, c));
            }
        }
    }
}

/// Pass 1 of an unfactored block: the variance update `variance.lerp_(grad * grad, weight)`,
/// and the block's sums of squared params and of squared updates.
pub struct UnfactoredSums<'a, T> {
    pub param: &'a [T],
    pub grad: &'a [T],
    pub variance: &'a mut [T],
    /// `1 - beta2_t`, the lerp weight.
    pub weight: T,
    pub estimate: Estimate<T>,
}

impl<T: Float> Kernel for UnfactoredSums<'_, T> {
    type Output = (f64, f64);

    #[inline(always)]
    fn run(self) -> (f64, f64) {
        let mut sum = SquareSum::default();
        let mut updates = [T::ZERO; CHUNK];
        for (grads, variances) in self.grad.chunks(CHUNK).zip(self.variance.chunks_mut(CHUNK)) {
            let updates = &mut updates[..grads.len()];
            for ((u, &g), v) in updates.iter_mut().zip(grads).zip(variances) {
                *v = v.lerp(g * g, self.weight);
                *u = self.estimate.update(g, *v);
            }
            sum.add(updates);
        }
        (sum_of_squares(self.param), sum.total())
    }
}

/// Pass 2 of an unfactored block: the param update, from the variance pass 1 left.
pub struct UnfactoredApply<'a, T> {
    pub param: &'a mut [T],
    pub grad: &'a [T],
    pub variance: &'a [T],
    pub estimate: Estimate<T>,
    pub step: Move<T>,
}

impl<T: Float> Kernel for UnfactoredApply<'_, T> {
    type Output = ();

    #[inline(always)]
    fn run(self) {
        for ((p, &g), &v) in self.param.iter_mut().zip(self.grad).zip(self.variance) {
            *p = self.step.apply(*p, self.estimate.update(g, v));
        }
    }
}
