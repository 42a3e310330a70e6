//! Adafactor (`torch.optim.Adafactor`, Shazeer & Stern 2018, with torch's use of `lr` and `eps1`):
//! a second-moment estimate kept as row and column means of the squared gradient for params of
//! two or more dims (factored over the last two, any leading dims a batch of matrices), and
//! element-wise for the others; a relative step size `min(lr, 1 / sqrt(step))` scaled by the
//! param's RMS; and the update clipped to an RMS of at most `d`.
//!
//! Adafactor is not an element-wise rule (the factors, both RMS values and the row-factor mean are
//! reductions): it is a [`Rule::SHAPED`] rule whose state has shapes of its own, and whose
//! [`Rule::run`] (as [`step`], for tensors of both dtypes at once) runs each tensor's update
//! whole, in torch's order of operations, tensors in parallel and big tensors cut into blocks on
//! the pool.
//!
//! Determinism: blocks depend only on the tensor's shape, never on the thread count; each block's
//! sums are computed in a fixed order ([`SquareSum`](crate::square_sum::SquareSum) lanes, column
//! sums row by row), and the blocks' partial sums are added in block order. So every result is
//! bit-identical on any number of threads and at any SIMD level (tested).

// This file is declared with a path attribute (see build.rs), so its module names its file.
#[path = "adafactor/kernels.rs"]
mod kernels;

use super::{non_negative_f32, HyperError, Rule, TensorMut};
use crate::driver;
use crate::simd::dispatch;
use crate::{pool, Float};
use kernels::{
    Estimate, FactoredApply, FactoredSums, FactoredUpdateSquares, Factors, Move, UnfactoredApply,
    UnfactoredSums,
};
use rayon::prelude::*;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Adafactor {
    pub lr: f64,
    /// `beta2_t = 1 - step ** beta2_decay`.
    pub beta2_decay: f64,
    /// Floor of the variance estimate's square root and of the row-factor mean; `None` is the
    /// machine epsilon of the param's dtype. (torch resolves `None` once per group and step,
    /// from the first param with a grad: callers that mimic that pass `Some` of it.)
    pub eps1: Option<f64>,
    /// Floor of the param RMS that scales the step.
    pub eps2: f64,
    /// Clipping threshold: the update's RMS is brought down to at most `d`.
    pub d: f64,
    /// Decoupled: the param shrinks by `lr * weight_decay` each step.
    pub weight_decay: f64,
    pub maximize: bool,
}

impl Default for Adafactor {
    /// torch's defaults.
    fn default() -> Self {
        Adafactor {
            lr: 1e-2,
            beta2_decay: -0.8,
            eps1: None,
            eps2: 1e-3,
            d: 1.0,
            weight_decay: 0.0,
            maximize: false,
        }
    }
}

impl Adafactor {
    /// torch's checks (`lr`, `eps`, `weight_decay` >= 0, `beta2_decay` <= 0, `d` >= 1), also
    /// rejecting NaN and inf.
    pub fn validate(&self) -> Result<(), HyperError> {
        non_negative_f32("lr", self.lr)?;
        if !(self.beta2_decay.is_finite() && self.beta2_decay <= 0.0) {
            return Err(HyperError {
                name: "beta2_decay",
                value: self.beta2_decay,
                requirement: "must be a finite number <= 0",
            });
        }
        if let Some(eps1) = self.eps1 {
            non_negative_f32("eps[0]", eps1)?;
        }
        non_negative_f32("eps[1]", self.eps2)?;
        if !(self.d.is_finite() && self.d >= 1.0) {
            return Err(HyperError {
                name: "d",
                value: self.d,
                requirement: "must be a finite number >= 1 (the clipping threshold)",
            });
        }
        non_negative_f32("weight_decay", self.weight_decay)
    }

    /// One tensor's step, in place (torch's `_single_tensor_adafactor` loop body); `parallel`
    /// lets a big tensor's blocks run on the threads of the pool this runs in (the result is the
    /// same either way).
    pub fn update_tensor<T: Float>(&self, tensor: Tensor<'_, T>, parallel: bool) {
        let len = tensor.param.len();
        if len == 0 {
            return;
        }
        let parallel = parallel && len >= TENSOR_PARALLEL_MIN;
        // In float64, as torch's Python scalars: `step ** beta2_decay`, `min(lr, 1 / step ** 0.5)`.
        let step = tensor.step as f64;
        let weight = step.powf(self.beta2_decay);
        let inverse_root = 1.0 / step.powf(0.5);
        let rho = if inverse_root < self.lr {
            inverse_root
        } else {
            self.lr
        };
        let eps1 = self.eps1.unwrap_or(T::EPSILON.to_f64());
        let estimate = Estimate {
            sign: if self.maximize { -T::ONE } else { T::ONE },
            eps1_squared: T::from_f64(eps1 * eps1),
        };
        let Tensor {
            param,
            grad,
            moment,
            ..
        } = tensor;
        let step = |param_squares: f64, update_squares: f64| Move {
            decay: T::from_f64(1.0 - self.lr * self.weight_decay),
            scale: self.scale::<T>(param_squares, update_squares, len, rho),
        };
        let weight = T::from_f64(weight);
        match moment {
            SecondMoment::Unfactored { variance } => {
                let blocks = || flat_blocks(len);
                let items = zip3(
                    split(param, blocks()),
                    split(grad, blocks()),
                    split_mut(variance, blocks()),
                );
                let sums = map(parallel, items, |(param, grad, variance)| {
                    dispatch(UnfactoredSums {
                        param,
                        grad,
                        variance,
                        weight,
                        estimate,
                    })
                });
                let step = step(
                    in_order(sums.iter().map(|s| s.0)),
                    in_order(sums.iter().map(|s| s.1)),
                );
                let variance: &[T] = variance;
                let items = zip3(
                    split_mut(param, blocks()),
                    split(grad, blocks()),
                    split(variance, blocks()),
                );
                map(parallel, items, |(param, grad, variance)| {
                    dispatch(UnfactoredApply {
                        param,
                        grad,
                        variance,
                        estimate,
                        step,
                    })
                });
            }
            SecondMoment::Factored {
                row_var,
                col_var,
                rows,
                cols,
            } => {
                let shape = Shape {
                    batches: len / (rows * cols),
                    rows,
                    cols,
                };
                let blocks = RowBlocks::new(shape);
                let elements = || blocks.rows.iter().map(|&(_, rows)| rows * cols);
                // Pass 1: squared grads summed along rows and columns, squared params.
                let mut row_squares = vec![0.0; shape.batches * rows];
                let mut col_squares = vec![0.0; blocks.rows.len() * cols];
                let items = zip3(
                    split(param, elements()),
                    split(grad, elements()),
                    split_mut(&mut row_squares, blocks.rows.iter().map(|&(_, r)| r)),
                );
                let items = items
                    .into_iter()
                    .zip(col_squares.chunks_mut(cols))
                    .collect();
                let param_squares = map(
                    parallel,
                    items,
                    |((param, grad, row_squares), col_squares)| {
                        dispatch(FactoredSums {
                            param,
                            grad,
                            cols,
                            row_squares,
                            col_squares,
                        })
                    },
                );
                let col_squares = blocks.column_sums(&mut col_squares, cols);
                let means = shape.update_factors(
                    (row_var, col_var),
                    (&row_squares, &col_squares),
                    weight,
                    T::from_f64(eps1),
                );
                let (row_var, col_var): (&[T], &[T]) = (row_var, col_var);
                let row_vars = split(row_var, blocks.rows.iter().map(|&(_, r)| r));
                let factors: Vec<Factors<'_, T>> = (row_vars.into_iter().zip(&blocks.rows))
                    .map(|(row_var, &(batch, _))| Factors {
                        row_var,
                        col_var: &col_var[batch * cols..][..cols],
                        row_var_mean: means[batch],
                        estimate,
                    })
                    .collect();
                // Pass 2: the squared updates, for the clipping RMS.
                let items = split(grad, elements())
                    .into_iter()
                    .zip(factors.clone())
                    .collect();
                let update_squares = map(parallel, items, |(grad, factors)| {
                    dispatch(FactoredUpdateSquares { grad, factors })
                });
                let step = step(in_order(param_squares), in_order(update_squares));
                // Pass 3: the param update, computing each update again rather than storing it.
                let items = zip3(
                    split_mut(param, elements()),
                    split(grad, elements()),
                    factors,
                );
                map(parallel, items, |(param, grad, factors)| {
                    dispatch(FactoredApply {
                        param,
                        grad,
                        factors,
                        step,
                    })
                });
            }
        }
    }

    /// torch's step: `-alpha / denom` with `alpha = max(eps2, RMS(param)) * rho` and
    /// `denom = max(1, RMS(update) / d)`, each norm rounded to the param's dtype as torch's
    /// `.norm(2).item()` is, the rest in float64 (Python's `max(a, b)` keeps `a` unless `b > a`).
    fn scale<T: Float>(&self, param_squares: f64, update_squares: f64, len: usize, rho: f64) -> T {
        let root_len = (len as f64).powf(0.5);
        let norm = |squares: f64| T::from_f64(squares.sqrt()).to_f64();
        let param_rms = norm(param_squares) / root_len;
        let alpha = if param_rms > self.eps2 {
            param_rms
        } else {
            self.eps2
        } * rho;
        let update_rms = norm(update_squares) / (root_len * self.d);
        let denom = if update_rms > 1.0 { update_rms } else { 1.0 };
        T::from_f64(-alpha / denom)
    }
}

/// The second-moment state of one param.
pub enum SecondMoment<'a, T> {
    /// A param of two or more dims, read as a batch of row-major `rows x cols` matrices (its
    /// last two dims): `row_var` holds `batch * rows` values (torch's shape `(..., rows, 1)`),
    /// `col_var` `batch * cols` (`(..., 1, cols)`).
    Factored {
        row_var: &'a mut [T],
        col_var: &'a mut [T],
        rows: usize,
        cols: usize,
    },
    /// A param of zero or one dims: `variance` has its shape.
    Unfactored { variance: &'a mut [T] },
}

/// One param's step: its data, grad, second moment and the step number (1 on its first step).
pub struct Tensor<'a, T> {
    param: &'a mut [T],
    grad: &'a [T],
    moment: SecondMoment<'a, T>,
    step: u64,
}

impl<'a, T> Tensor<'a, T> {
    /// Checks that every slice has the length the shape implies.
    pub fn new(param: &'a mut [T], grad: &'a [T], moment: SecondMoment<'a, T>, step: u64) -> Self {
        let len = param.len();
        assert_eq!(grad.len(), len, "grad length differs from param length");
        match &moment {
            SecondMoment::Unfactored { variance } => {
                assert_eq!(
                    variance.len(),
                    len,
                    "variance length differs from param length"
                )
            }
            SecondMoment::Factored {
                row_var,
                col_var,
                rows,
                cols,
            } => {
                let matrix = rows.checked_mul(*cols).expect("rows * cols overflows");
                let batches = len.checked_div(matrix).unwrap_or(0);
                assert_eq!(
                    batches * matrix,
                    len,
                    "param length is not a multiple of rows * cols"
                );
                assert_eq!(
                    row_var.len(),
                    batches * rows,
                    "row_var length differs from batch * rows"
                );
                assert_eq!(
                    col_var.len(),
                    batches * cols,
                    "col_var length differs from batch * cols"
                );
            }
        }
        Tensor {
            param,
            grad,
            moment,
            step,
        }
    }

    pub fn len(&self) -> usize {
        self.param.len()
    }

    pub fn is_empty(&self) -> bool {
        self.param.is_empty()
    }
}

/// One tensor of a step, of either dtype, with its group's options.
pub enum Work<'a> {
    F32(Adafactor, Tensor<'a, f32>),
    F64(Adafactor, Tensor<'a, f64>),
}

impl Work<'_> {
    fn len(&self) -> usize {
        match self {
            Work::F32(_, t) => t.len(),
            Work::F64(_, t) => t.len(),
        }
    }

    fn run(self, parallel: bool) {
        match self {
            Work::F32(rule, tensor) => rule.update_tensor(tensor, parallel),
            Work::F64(rule, tensor) => rule.update_tensor(tensor, parallel),
        }
    }
}

/// Below this many elements in all, a step runs on the calling thread.
const PARALLEL_MIN: usize = 1 << 15;

/// Below this many elements, a tensor's blocks run one after another on one thread.
const TENSOR_PARALLEL_MIN: usize = 1 << 17;

/// Elements per block of an unfactored tensor.
const FLAT_BLOCK: usize = 1 << 15;

/// A factored tensor's blocks hold at least this many elements (whole rows, at least one) ...
const MIN_BLOCK: usize = 1 << 16;

/// ... and each matrix is cut into at most this many, which bounds the memory of the blocks'
/// partial column sums (a float64 per column and block) to 256 bytes per column.
const MAX_BLOCKS: usize = 32;

/// Runs every tensor's update: inline when the step is small, else on the pool, the tensors in
/// parallel and big tensors' blocks too.
pub fn step(work: Vec<Work<'_>>) {
    let total: usize = work.iter().map(Work::len).sum();
    pool::for_each(work, total < PARALLEL_MIN, Work::run);
}

/// A tensor's step number (1 on its first) and, for a param of two or more dims, the rows and
/// columns of its matrices (its last two dims), over which its second moment is factored.
#[derive(Clone, Copy, Debug)]
pub struct AdafactorScalars {
    step: u64,
    factored: Option<(usize, usize)>,
}

impl Rule for Adafactor {
    /// `row_var` and `col_var` for params of two or more dims, `variance` for the others.
    fn state_names(&self) -> &'static [&'static str] {
        &["row_var", "col_var", "variance"]
    }

    fn validate(&self) -> Result<(), HyperError> {
        Adafactor::validate(self)
    }

    const SHAPED: bool = true;

    /// torch's `row_var` of shape `(..., rows, 1)` and `col_var` of shape `(..., 1, cols)` for a
    /// param of shape `(..., rows, cols)`, else `variance` of the param's shape.
    fn state_shape(&self, slot: usize, shape: &[usize]) -> Option<Vec<usize>> {
        match (slot, shape) {
            (0, [lead @ .., rows, _]) => Some([lead, &[*rows, 1]].concat()),
            (1, [lead @ .., _, cols]) => Some([lead, &[1, *cols]].concat()),
            (2, [] | [_]) => Some(shape.to_vec()),
            _ => None,
        }
    }

    fn check_shape(&self, shape: &[usize], stepping: bool) -> Result<(), String> {
        if stepping && shape.contains(&0) {
            Err(
                "it has no elements; Adafactor divides by a param's size (torch fails with \
                 ZeroDivisionError), so leave empty params out of it"
                    .into(),
            )
        } else {
            Ok(())
        }
    }

    /// torch resolves `eps1=None` once per group and step, from the first param with a grad,
    /// and uses that dtype's epsilon for the group's other params too.
    fn resolve_dtype(&mut self, epsilon: f64) {
        self.eps1.get_or_insert(epsilon);
    }

    type Scalars = AdafactorScalars;

    fn scalars(&self, step: u64, _: &mut [f64], shape: &[usize]) -> AdafactorScalars {
        AdafactorScalars {
            step,
            factored: match shape {
                [.., rows, cols] => Some((*rows, *cols)),
                _ => None,
            },
        }
    }

    /// One tensor's step on the calling thread.
    fn update<T: Float>(&self, scalars: &AdafactorScalars, tensor: TensorMut<'_, T>) {
        self.update_tensor(tensor_of(scalars, tensor), false);
    }

    fn run<T: Float>(work: Vec<driver::Work<'_, Self, T>>) {
        let work: Vec<(Adafactor, Tensor<'_, T>)> = work
            .into_iter()
            .map(|w| (w.rule, tensor_of(&w.scalars, w.tensor)))
            .collect();
        let total: usize = work.iter().map(|(_, t)| t.len()).sum();
        pool::for_each(work, total < PARALLEL_MIN, |(rule, tensor), parallel| {
            rule.update_tensor(tensor, parallel)
        });
    }
}

/// The engine's tensor as Adafactor reads it: state slot 0 and 1 the factors, or slot 0 the
/// unfactored variance (the slots of the buffers its param keeps, in order).
fn tensor_of<'a, T>(scalars: &AdafactorScalars, tensor: TensorMut<'a, T>) -> Tensor<'a, T> {
    let TensorMut {
        param,
        grad,
        state: [first, second, _],
    } = tensor;
    let moment = match scalars.factored {
        Some((rows, cols)) => SecondMoment::Factored {
            row_var: first,
            col_var: second,
            rows,
            cols,
        },
        None => SecondMoment::Unfactored { variance: first },
    };
    Tensor::new(param, grad, moment, scalars.step)
}

#[derive(Clone, Copy)]
struct Shape {
    batches: usize,
    rows: usize,
    cols: usize,
}

impl Shape {
    /// torch's factor updates, per matrix: `row_var.lerp_(row_mean, weight)` with `row_mean =
    /// norm(grad, dim=-1).square_().div_(cols)` (likewise `col_var`), then the row factors' mean
    /// clamped at `eps1`, returned per matrix.
    fn update_factors<T: Float>(
        self,
        (row_var, col_var): (&mut [T], &mut [T]),
        (row_squares, col_squares): (&[f64], &[f64]),
        weight: T,
        eps1: T,
    ) -> Vec<T> {
        let mean_square = |squares: f64, count: usize| {
            let norm = T::from_f64(squares.sqrt());
            norm * norm / T::from_f64(count as f64)
        };
        for (var, &squares) in row_var.iter_mut().zip(row_squares) {
            *var = var.lerp(mean_square(squares, self.cols), weight);
        }
        for (var, &squares) in col_var.iter_mut().zip(col_squares) {
            *var = var.lerp(mean_square(squares, self.rows), weight);
        }
        row_var
            .chunks_exact(self.rows)
            .map(|rows| {
                let sum = rows.iter().fold(0.0, |sum, r| sum + r.to_f64());
                let mean = T::from_f64(sum / self.rows as f64);
                // `clamp_(min=eps1)`, which keeps NaN.
                if mean < eps1 {
                    eps1
                } else {
                    mean
                }
            })
            .collect()
    }
}

/// How a factored tensor is cut: runs of whole rows of one matrix, in memory order, as
/// `(matrix, rows)`. Depends on the shape only.
struct RowBlocks {
    rows: Vec<(usize, usize)>,
}

impl RowBlocks {
    fn new(shape: Shape) -> Self {
        let per_block = MIN_BLOCK
            .div_ceil(shape.cols)
            .max(shape.rows.div_ceil(MAX_BLOCKS))
            .clamp(1, shape.rows);
        let mut rows = Vec::new();
        for batch in 0..shape.batches {
            let mut start = 0;
            while start < shape.rows {
                let count = per_block.min(shape.rows - start);
                rows.push((batch, count));
                start += count;
            }
        }
        RowBlocks { rows }
    }

    /// Adds the blocks' partial column sums (`cols` per block) matrix by matrix, in block order,
    /// and returns each matrix's column sums (`cols` per matrix).
    fn column_sums(&self, partials: &mut [f64], cols: usize) -> Vec<f64> {
        let mut sums: Vec<f64> = Vec::new();
        let mut last = None;
        for (&(batch, _), partial) in self.rows.iter().zip(partials.chunks_exact(cols)) {
            if last == Some(batch) {
                let start = sums.len() - cols;
                for (sum, &x) in sums[start..].iter_mut().zip(partial) {
                    *sum += x;
                }
            } else {
                sums.extend_from_slice(partial);
            }
            last = Some(batch);
        }
        sums
    }
}

/// Blocks of an unfactored tensor of `len` elements, as their lengths.
fn flat_blocks(len: usize) -> impl Iterator<Item = usize> {
    (0..len.div_ceil(FLAT_BLOCK)).map(move |k| FLAT_BLOCK.min(len - k * FLAT_BLOCK))
}

/// Float64 partial sums added in order, from +0.0.
fn in_order(partials: impl IntoIterator<Item = f64>) -> f64 {
    partials.into_iter().fold(0.0, |sum, x| sum + x)
}

/// Runs `f` on every item, on the current pool's threads when `parallel`; results in item order.
fn map<I: Send, O: Send>(
    parallel: bool,
    items: Vec<I>,
    f: impl Fn(I) -> O + Sync + Send,
) -> Vec<O> {
    if parallel {
        items.into_par_iter().map(f).collect()
    } else {
        items.into_iter().map(f).collect()
    }
}

fn split<T>(mut data: &[T], sizes: impl IntoIterator<Item = usize>) -> Vec<&[T]> {
    sizes
        .into_iter()
        .map(|size| {
            let (head, rest) = data.split_at(size);
            data = rest;
            head
        })
        .collect()
}

fn split_mut<T>(mut data: &mut [T], sizes: impl IntoIterator<Item = usize>) -> Vec<&mut [T]> {
    sizes
        .into_iter()
        .map(|size| {
            let (head, rest) = std::mem::take(&mut data).split_at_mut(size);
            data = rest;
            head
        })
        .collect()
}

fn zip3<A, B, C>(a: Vec<A>, b: Vec<B>, c: Vec<C>) -> Vec<(A, B, C)> {
    a.into_iter()
        .zip(b)
        .zip(c)
        .map(|((a, b), c)| (a, b, c))
        .collect()
}
