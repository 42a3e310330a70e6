//! LAMB (You et al., 2019, "Large Batch Optimization for Deep Learning: Training BERT in 76
//! minutes", Algorithm 2): Adam's bias-corrected moments give each element a direction
//! `u = m_hat / (sqrt(v_hat) + eps) + weight_decay * x`, and each tensor moves along it by
//! `lr * ||x|| / ||u||`, its trust ratio (the paper's scaling function `phi` is the identity; the
//! ratio is 1 when either norm is 0, as in the authors' implementation).
//!
//! The norms make LAMB not element-wise, so it runs its own steps ([`Rule::run`]) in two passes
//! over blocks of [`BLOCK`] elements. The first updates the moments and sums each block's `x * x`
//! and `u * u` in float64, in the order `norms` documents for `clip_grad_norm_` (lanes, a fixed
//! tree, then the blocks in order), so the norms are the same on any thread count and SIMD level.
//! The second moves `x`. On steps that fit in cache the first also keeps `u` in a scratch buffer
//! that lives between steps (`Float::scratch`, one float per parameter of the step), and the
//! second reads it; on bigger ones the second recomputes `u` from the stored moments (the same
//! operations on the same values, so the same bits): see [`KEEP_MAX`].

use super::{non_negative_f32, unit_interval, HyperError, Rule, TensorMut};
use crate::driver::Work;
use crate::norms::{combine_lanes, split_runs, task_ends, BLOCK, LANES};
use crate::simd::{dispatch, Kernel};
use crate::{pool, Float};
use rayon::prelude::*;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Lamb {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    /// `lambda`: added to the direction as `weight_decay * x`, before the trust ratio.
    pub weight_decay: f64,
    pub maximize: bool,
}

impl Default for Lamb {
    /// The paper's betas; `lr` and `eps` of the authors' implementation; the weight decay of the
    /// BERT pre-training the paper runs LAMB on.
    fn default() -> Self {
        Lamb {
            lr: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-6,
            weight_decay: 0.01,
            maximize: false,
        }
    }
}

/// The bias corrections `1 - beta^t` of a tensor's `t`-th step.
#[derive(Clone, Copy, Debug)]
pub struct LambScalars {
    bias_correction1: f64,
    bias_correction2: f64,
}

impl Rule for Lamb {
    fn state_names(&self) -> &'static [&'static str] {
        &["exp_avg", "exp_avg_sq"]
    }

    fn validate(&self) -> Result<(), HyperError> {
        non_negative_f32("lr", self.lr)?;
        non_negative_f32("eps", self.eps)?;
        unit_interval("betas[0]", self.beta1)?;
        unit_interval("betas[1]", self.beta2)?;
        non_negative_f32("weight_decay", self.weight_decay)
    }

    type Scalars = LambScalars;

    fn scalars(&self, step: u64, _: &mut [f64], _: &[usize]) -> LambScalars {
        let step = step as f64;
        LambScalars {
            bias_correction1: 1.0 - self.beta1.powf(step),
            bias_correction2: 1.0 - self.beta2.powf(step),
        }
    }

    /// One whole tensor's step on the calling thread: the reference [`Rule::run`] must match.
    fn update<T: Float>(&self, scalars: &LambScalars, tensor: TensorMut<'_, T>) {
        step(
            vec![Work {
                rule: *self,
                scalars: *scalars,
                tensor,
            }],
            false,
        );
    }

    fn run<T: Float>(work: Vec<Work<'_, Self, T>>) {
        step(work, true);
    }
}

/// A tensor's step: its constants in its dtype, and its learning rate.
#[derive(Clone, Copy)]
struct Constants<T> {
    sign: T,
    beta1: T,
    one_minus_beta1: T,
    beta2: T,
    one_minus_beta2: T,
    bias_correction1: T,
    bias_correction2: T,
    eps: T,
    weight_decay: T,
    decay: bool,
    lr: f64,
}

impl<T: Float> Constants<T> {
    fn new(rule: &Lamb, scalars: &LambScalars) -> Self {
        Constants {
            // Multiplying by -1 is exact: maximizing is minimizing with the negated gradient.
            sign: if rule.maximize { -T::ONE } else { T::ONE },
            beta1: T::from_f64(rule.beta1),
            one_minus_beta1: T::from_f64(1.0 - rule.beta1),
            beta2: T::from_f64(rule.beta2),
            one_minus_beta2: T::from_f64(1.0 - rule.beta2),
            bias_correction1: T::from_f64(scalars.bias_correction1),
            bias_correction2: T::from_f64(scalars.bias_correction2),
            eps: T::from_f64(rule.eps),
            weight_decay: T::from_f64(rule.weight_decay),
            decay: rule.weight_decay != 0.0,
            lr: rule.lr,
        }
    }

    /// `u = m_hat / (sqrt(v_hat) + eps) + weight_decay * x`, from the updated moments. Both
    /// passes call this, so they compute the same `u`.
    #[inline(always)]
    fn direction<const DECAY: bool>(&self, m: T, v: T, x: T) -> T {
        let r = (m / self.bias_correction1) / ((v / self.bias_correction2).sqrt() + self.eps);
        if DECAY {
            r + self.weight_decay * x
        } else {
            r
        }
    }

    /// First pass over a block: updates the moments; returns the block's `sum x*x` and `sum u*u`.
    /// First pass over a block: the moments, the direction `u` (kept in `direction` for the
    /// second pass) and the block's sums of `x^2` and `u^2`.
    #[inline(always)]
    fn moments<const DECAY: bool>(
        &self,
        piece: &mut TensorMut<'_, T>,
        direction: &mut [T],
    ) -> [f64; 2] {
        if direction.is_empty() {
            return self.moments_only::<DECAY>(piece);
        }
        let TensorMut {
            param,
            grad,
            state: [exp_avg, exp_avg_sq, _],
        } = piece;
        let n = param.len();
        let (param, grad) = (&param[..n], &grad[..n]);
        let (exp_avg, exp_avg_sq) = (&mut exp_avg[..n], &mut exp_avg_sq[..n]);
        let direction = &mut direction[..n];
        let mut x_lanes = [0.0f64; LANES];
        let mut u_lanes = [0.0f64; LANES];
        let chunks = param
            .chunks(LANES)
            .zip(grad.chunks(LANES))
            .zip(exp_avg.chunks_mut(LANES).zip(exp_avg_sq.chunks_mut(LANES)))
            .zip(direction.chunks_mut(LANES));
        for (((xs, gs), (ms, vs)), us) in chunks {
            let lanes = x_lanes.iter_mut().zip(u_lanes.iter_mut());
            let elements = xs
                .iter()
                .zip(gs)
                .zip(ms.iter_mut().zip(vs.iter_mut()))
                .zip(us);
            for ((x_lane, u_lane), (((&x, &g), (m, v)), u_out)) in lanes.zip(elements) {
                let g = g * self.sign;
                *m = self.beta1 * *m + self.one_minus_beta1 * g;
                *v = self.beta2 * *v + self.one_minus_beta2 * g * g;
                let u = self.direction::<DECAY>(*m, *v, x);
                *u_out = u;
                let (x, u) = (x.to_f64(), u.to_f64());
                *x_lane += x * x;
                *u_lane += u * u;
            }
        }
        [combine_lanes(x_lanes), combine_lanes(u_lanes)]
    }

    /// [`Self::moments`] without keeping the direction (a step too big for it to pay).
    #[inline(always)]
    fn moments_only<const DECAY: bool>(&self, piece: &mut TensorMut<'_, T>) -> [f64; 2] {
        let TensorMut {
            param,
            grad,
            state: [exp_avg, exp_avg_sq, _],
        } = piece;
        let n = param.len();
        let (param, grad) = (&param[..n], &grad[..n]);
        let (exp_avg, exp_avg_sq) = (&mut exp_avg[..n], &mut exp_avg_sq[..n]);
        let mut x_lanes = [0.0f64; LANES];
        let mut u_lanes = [0.0f64; LANES];
        let chunks = param
            .chunks(LANES)
            .zip(grad.chunks(LANES))
            .zip(exp_avg.chunks_mut(LANES).zip(exp_avg_sq.chunks_mut(LANES)));
        for ((xs, gs), (ms, vs)) in chunks {
            let lanes = x_lanes.iter_mut().zip(u_lanes.iter_mut());
            let elements = xs.iter().zip(gs).zip(ms.iter_mut().zip(vs.iter_mut()));
            for ((x_lane, u_lane), ((&x, &g), (m, v))) in lanes.zip(elements) {
                let g = g * self.sign;
                *m = self.beta1 * *m + self.one_minus_beta1 * g;
                *v = self.beta2 * *v + self.one_minus_beta2 * g * g;
                let u = self.direction::<DECAY>(*m, *v, x).to_f64();
                let x = x.to_f64();
                *x_lane += x * x;
                *u_lane += u * u;
            }
        }
        [combine_lanes(x_lanes), combine_lanes(u_lanes)]
    }

    /// Second pass over a block whose direction was not kept: `u` computed again from the
    /// moments (the same operations on the same values, so the same bits).
    #[inline(always)]
    fn apply_recomputing<const DECAY: bool>(&self, neg_step: T, piece: &mut TensorMut<'_, T>) {
        if neg_step.is_nan() {
            return piece.param.fill(neg_step);
        }
        let TensorMut {
            param,
            state: [exp_avg, exp_avg_sq, _],
            ..
        } = piece;
        let n = param.len();
        let (exp_avg, exp_avg_sq) = (&exp_avg[..n], &exp_avg_sq[..n]);
        for ((x, &m), &v) in param.iter_mut().zip(exp_avg).zip(exp_avg_sq) {
            *x = *x + neg_step * self.direction::<DECAY>(m, v, *x);
        }
    }

    /// Second pass over a block: `x = x - step * u`, with `neg_step = -lr * trust_ratio` and `u`
    /// the direction the first pass computed from the same `x` (the param is written only here).
    #[inline(always)]
    fn apply(neg_step: T, param: &mut [T], direction: &[T]) {
        if neg_step.is_nan() {
            // A NaN in the tensor's norms: every element becomes this NaN. `x + neg_step * u`
            // would too, but with a NaN `u` as well its sign bit would be whichever NaN operand
            // the instruction order picks, which differs between the SIMD levels.
            return param.fill(neg_step);
        }
        let direction = &direction[..param.len()];
        for (x, &u) in param.iter_mut().zip(direction) {
            *x = *x + neg_step * u;
        }
    }
}

/// At most [`BLOCK`] elements of one tensor: the unit of both passes and of the norms' order.
struct Block<'a, T> {
    constants: Constants<T>,
    piece: TensorMut<'a, T>,
    /// Where the first pass keeps the block's direction for the second (a piece of the scratch
    /// buffer), or empty when the step does not keep them ([`KEEP_MAX`]).
    direction: &'a mut [T],
    /// `-lr * trust_ratio` of its tensor, known after the first pass.
    neg_step: T,
}

/// The most elements a step keeps its directions for. A step that fits in cache is bound by the
/// division and square root of the direction, and keeping it spares the second pass both: 200 x
/// 4,096 took 0.74x the time on 1 thread and 0.79x on 2 (Intel Xeon KVM, AVX-512). A step that
/// streams from memory pays more for writing the directions (the stores read each line first)
/// than it saves: 1 x 16.8 M took 1.04x and 1.03x, so it computes them again instead.
const KEEP_MAX: usize = 1 << 21;

/// One LAMB step over whole tensors, on the pool when `parallel` and the step is big enough.
fn step<T: Float>(work: Vec<Work<'_, Lamb, T>>, parallel: bool) {
    let total: usize = work.iter().map(|w| w.tensor.len()).sum();
    step_keeping(work, parallel, total <= KEEP_MAX);
}

/// [`step`], keeping the directions or not.
fn step_keeping<T: Float>(work: Vec<Work<'_, Lamb, T>>, parallel: bool, keep: bool) {
    let total: usize = work.iter().map(|w| w.tensor.len()).sum();
    // The direction is kept only for steps small enough to stay in cache (see `KEEP_MAX`). The
    // scratch buffer lives between steps (`Float::scratch`): one step at a time holds it. A
    // panic in an earlier step left nothing in it that this one reads before writing.
    let mut scratch = T::scratch().lock().unwrap_or_else(|e| e.into_inner());
    if keep && scratch.len() < total {
        scratch.resize(total, T::ZERO);
    }
    let mut free: &mut [T] = if keep { &mut scratch[..total] } else { &mut [] };
    let mut blocks = Vec::new();
    // Tensor `i` owns blocks `starts[i]..starts[i + 1]`.
    let mut starts = Vec::with_capacity(work.len() + 1);
    for Work {
        rule,
        scalars,
        mut tensor,
    } in work
    {
        starts.push(blocks.len());
        let constants = Constants::new(&rule, &scalars);
        while !tensor.is_empty() {
            let len = tensor.len().min(BLOCK);
            let (piece, rest) = tensor.split_at(len);
            let (direction, unused) =
                std::mem::take(&mut free).split_at_mut(if keep { len } else { 0 });
            free = unused;
            blocks.push(Block {
                constants,
                piece,
                direction,
                neg_step: T::ZERO,
            });
            tensor = rest;
        }
    }
    starts.push(blocks.len());

    let lens: Vec<usize> = blocks.iter().map(|b| b.piece.len()).collect();
    let ends = if parallel { task_ends(&lens) } else { None };
    let mut sums = vec![[0.0; 2]; blocks.len()];
    match &ends {
        None => dispatch(Moments {
            blocks: &mut blocks,
            sums: &mut sums,
        }),
        Some(ends) => {
            let tasks: Vec<_> = split_runs(&mut blocks, ends)
                .into_iter()
                .zip(split_runs(&mut sums, ends))
                .collect();
            pool::current().install(|| {
                tasks
                    .into_par_iter()
                    .for_each(|(blocks, sums)| dispatch(Moments { blocks, sums }))
            });
        }
    }

    for range in starts.windows(2) {
        let (tensor_blocks, tensor_sums) =
            (&mut blocks[range[0]..range[1]], &sums[range[0]..range[1]]);
        // Starting from +0.0, in block order (`Sum` for floats starts from -0.0).
        let [x_sum, u_sum] = tensor_sums
            .iter()
            .fold([0.0, 0.0], |[x, u], [bx, bu]| [x + bx, u + bu]);
        let (x_norm, u_norm) = (x_sum.sqrt(), u_sum.sqrt());
        let ratio = if x_norm == 0.0 || u_norm == 0.0 {
            1.0
        } else {
            x_norm / u_norm
        };
        for block in tensor_blocks {
            block.neg_step = T::from_f64(-(block.constants.lr * ratio));
        }
    }

    match &ends {
        None => dispatch(Apply {
            blocks: &mut blocks,
        }),
        Some(ends) => {
            let tasks = split_runs(&mut blocks, ends);
            pool::current().install(|| {
                tasks
                    .into_par_iter()
                    .for_each(|blocks| dispatch(Apply { blocks }))
            });
        }
    }
}

/// The first pass over a run of blocks.
struct Moments<'s, 'a, T> {
    blocks: &'s mut [Block<'a, T>],
    sums: &'s mut [[f64; 2]],
}

impl<T: Float> Kernel for Moments<'_, '_, T> {
    type Output = ();

    #[inline(always)]
    fn run(self) {
        for (block, sums) in self.blocks.iter_mut().zip(self.sums.iter_mut()) {
            let constants = block.constants;
            *sums = if constants.decay {
                constants.moments::<true>(&mut block.piece, block.direction)
            } else {
                constants.moments::<false>(&mut block.piece, block.direction)
            };
        }
    }
}

/// The second pass over a run of blocks.
struct Apply<'s, 'a, T> {
    blocks: &'s mut [Block<'a, T>],
}

impl<T: Float> Kernel for Apply<'_, '_, T> {
    type Output = ();

    #[inline(always)]
    fn run(self) {
        for block in self.blocks.iter_mut() {
            let (constants, neg_step) = (block.constants, block.neg_step);
            if !block.direction.is_empty() {
                Constants::apply(neg_step, block.piece.param, block.direction);
            } else if constants.decay {
                constants.apply_recomputing::<true>(neg_step, &mut block.piece);
            } else {
                constants.apply_recomputing::<false>(neg_step, &mut block.piece);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Both second passes give the same bits: keeping the directions or computing them again.
    #[test]
    fn keeping_the_directions_changes_no_bit() {
        let run = |keep: bool| {
            let n = 5_000;
            let mut params: Vec<Vec<f32>> = (0..3)
                .map(|t| (0..n).map(|i| ((i * 7 + t) as f32 * 0.013).sin()).collect())
                .collect();
            let mut states = vec![vec![0.0f32; n]; 6];
            for step_count in 1..=3u64 {
                let grads: Vec<Vec<f32>> = (0..3)
                    .map(|t| {
                        let scale = step_count as f32;
                        (0..n)
                            .map(|i| ((i + t) as f32 * 0.7 * scale).cos())
                            .collect()
                    })
                    .collect();
                let rule = Lamb::default();
                let scalars = rule.scalars(step_count, &mut [], &[n]);
                let mut state_slots = states.iter_mut();
                let work = params
                    .iter_mut()
                    .zip(&grads)
                    .map(|(param, grad)| {
                        let (m, v) = (state_slots.next().unwrap(), state_slots.next().unwrap());
                        Work {
                            rule,
                            scalars,
                            tensor: TensorMut::new(param, grad, [m, v, &mut []]),
                        }
                    })
                    .collect();
                step_keeping(work, true, keep);
            }
            params
        };
        let bits =
            |p: Vec<Vec<f32>>| -> Vec<u32> { p.concat().iter().map(|x| x.to_bits()).collect() };
        assert_eq!(bits(run(true)), bits(run(false)));
    }
}
