//! Schedule-Free AdamW (Defazio et al., 2024, "The Road Less Scheduled"), as the authors'
//! implementation (`schedulefree.AdamWScheduleFree`) computes it, operation for operation.
//!
//! Besides the param the method keeps two sequences: `z`, moved by AdamW-style steps, and `x`,
//! the average of the `z`s with weights `c`; gradients are taken at
//! `y = (1 - beta1) * z + beta1 * x`, which the param holds while training. `x` is not stored:
//! each step moves `y` to where `x`'s and `z`'s updates take it, and `eval()` / `train()` move
//! the param between `y` and `x` ([`SwitchPoint`]).
//!
//! The schedule (warmup, averaging weights) is per param group, as in the reference: its state
//! ([`GroupSchedule`]) lives in the group dict and advances once per step, also for params that
//! had no grad.

use super::{
    dispatch_flags, finite, non_negative, non_negative_f32, square_average, unit_interval,
    FlagKernel, HyperError, Rule, TensorMut,
};
use crate::simd::{dispatch, Kernel};
use crate::stream::blocks;
use crate::Float;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ScheduleFreeAdamW {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    /// Decay at `y`: `weight_decay * y` is added to the normalised gradient.
    pub weight_decay: f64,
    /// Steps over which the learning rate grows linearly to `lr`.
    pub warmup_steps: f64,
    /// The averaging weight of step `k + 1` is `(k + 1)^r * lr_max^weight_lr_power`.
    pub r: f64,
    pub weight_lr_power: f64,
    pub maximize: bool,
    /// The group's schedule before this step.
    pub schedule: GroupSchedule,
    /// Whether the params hold `y` (train mode) rather than `x` (eval mode).
    pub train_mode: bool,
}

/// A param group's schedule state, with the reference's names.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GroupSchedule {
    /// Steps taken.
    pub k: u64,
    /// The sum of the averaging weights so far.
    pub weight_sum: f64,
    /// The largest scheduled learning rate so far; -1 before the first step.
    pub lr_max: f64,
}

impl Default for ScheduleFreeAdamW {
    /// The authors' defaults, and a fresh schedule in eval mode (the reference starts there:
    /// `train()` must be called before the first step).
    fn default() -> Self {
        ScheduleFreeAdamW {
            lr: 0.0025,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
            warmup_steps: 0.0,
            r: 0.0,
            weight_lr_power: 2.0,
            maximize: false,
            schedule: GroupSchedule {
                k: 0,
                weight_sum: 0.0,
                lr_max: -1.0,
            },
            train_mode: false,
        }
    }
}

/// One step of a group's schedule, computed as the reference computes it in Python (double).
#[derive(Clone, Copy, Debug)]
pub struct ScheduleFreeScalars {
    /// The scheduled learning rate (`lr` after warmup); the reference logs it as `scheduled_lr`.
    pub lr: f64,
    /// `c_{k+1}`: the weight of the new `z` in the average `x`.
    pub ckp1: f64,
    pub bias_correction2: f64,
    /// The group's schedule after this step.
    pub next: GroupSchedule,
    /// The param's first step: `z` starts at the param.
    first: bool,
}

impl ScheduleFreeAdamW {
    /// This step's schedule, the same for every param of the group.
    pub fn schedule(&self) -> ScheduleFreeScalars {
        let GroupSchedule {
            k,
            weight_sum,
            lr_max,
        } = self.schedule;
        let k1 = (k + 1) as f64;
        let sched = if (k as f64) < self.warmup_steps {
            k1 / self.warmup_steps
        } else {
            1.0
        };
        let lr = self.lr * sched;
        let lr_max = lr.max(lr_max);
        let weight = k1.powf(self.r) * lr_max.powf(self.weight_lr_power);
        let weight_sum = weight_sum + weight;
        // The reference catches the ZeroDivisionError of a zero sum (lr = 0) as c = 0.
        let ckp1 = if weight_sum == 0.0 {
            0.0
        } else {
            weight / weight_sum
        };
        ScheduleFreeScalars {
            lr,
            ckp1,
            bias_correction2: 1.0 - self.beta2.powf(k1),
            next: GroupSchedule {
                k: k + 1,
                weight_sum,
                lr_max,
            },
            first: false,
        }
    }

    /// The move of the params to `y` (`train`) or to `x`: the reference's `train()` and `eval()`.
    pub fn switch_to(&self, train: bool) -> SwitchPoint {
        SwitchPoint {
            weight: if train {
                1.0 - self.beta1
            } else {
                1.0 - 1.0 / self.beta1
            },
        }
    }
}

impl Rule for ScheduleFreeAdamW {
    fn state_names(&self) -> &'static [&'static str] {
        &["z", "exp_avg_sq"]
    }

    fn validate(&self) -> Result<(), HyperError> {
        non_negative_f32("lr", self.lr)?;
        non_negative_f32("eps", self.eps)?;
        if !(self.beta1 > 0.0 && self.beta1 < 1.0) {
            return Err(HyperError {
                name: "betas[0]",
                value: self.beta1,
                requirement: "must be in (0, 1): eval() recovers the average x from y and z by \
                              dividing by betas[0]",
            });
        }
        unit_interval("betas[1]", self.beta2)?;
        non_negative_f32("weight_decay", self.weight_decay)?;
        non_negative("warmup_steps", self.warmup_steps)?;
        non_negative("r", self.r)?;
        non_negative("weight_lr_power", self.weight_lr_power)?;
        non_negative("weight_sum", self.schedule.weight_sum)?;
        finite("lr_max", self.schedule.lr_max)
    }

    type Scalars = ScheduleFreeScalars;

    fn scalars(&self, step: u64, _: &mut [f64], _: &[usize]) -> ScheduleFreeScalars {
        ScheduleFreeScalars {
            first: step == 1,
            ..self.schedule()
        }
    }

    fn update<T: Float>(&self, scalars: &ScheduleFreeScalars, tensor: TensorMut<'_, T>) {
        let kernel = StepKernel {
            // Multiplying by -1 is exact: maximizing is minimizing with the negated gradient.
            sign: if self.maximize { -T::ONE } else { T::ONE },
            beta2: T::from_f64(self.beta2),
            one_minus_beta2: T::from_f64(1.0 - self.beta2),
            bias_correction2: T::from_f64(scalars.bias_correction2),
            eps: T::from_f64(self.eps),
            weight_decay: T::from_f64(self.weight_decay),
            ckp1: T::from_f64(scalars.ckp1),
            // `x` moves toward the new `z` by c, `z` by -lr times the normalised gradient: `y`
            // moves by their combination, the reference's `lr * (beta1 * (1 - c) - 1)`.
            y_step: T::from_f64(scalars.lr * (self.beta1 * (1.0 - scalars.ckp1) - 1.0)),
            lr: T::from_f64(scalars.lr),
            tensor,
        };
        dispatch_flags!(kernel, [scalars.first, self.weight_decay != 0.0]);
    }
}

struct StepKernel<'a, T> {
    sign: T,
    beta2: T,
    one_minus_beta2: T,
    bias_correction2: T,
    eps: T,
    weight_decay: T,
    ckp1: T,
    y_step: T,
    lr: T,
    tensor: TensorMut<'a, T>,
}

impl<T: Float> FlagKernel for StepKernel<'_, T> {
    #[inline(always)]
    fn run<const FIRST: bool, const DECAY: bool, const _UNUSED: bool, const _UNUSED2: bool>(self) {
        let k = self;
        for tensor in blocks(k.tensor) {
            let TensorMut {
                param,
                grad,
                state: [z, exp_avg_sq, _],
            } = tensor;
            let n = param.len();
            let (grad, z, exp_avg_sq) = (&grad[..n], &mut z[..n], &mut exp_avg_sq[..n]);
            for i in 0..n {
                let y = param[i];
                let z_i = if FIRST { y } else { z[i] };
                let g = grad[i] * k.sign;
                // exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
                let v = square_average(exp_avg_sq[i], g, k.beta2, k.one_minus_beta2);
                exp_avg_sq[i] = v;
                let denom = (v / k.bias_correction2).sqrt() + k.eps;
                let normalised = if DECAY {
                    k.weight_decay.mul_add(y, g / denom)
                } else {
                    g / denom
                };
                // y.lerp_(z, ckp1); y.add_(grad, alpha=y_step); z.sub_(grad, alpha=lr)
                param[i] = k.y_step.mul_add(normalised, y.lerp(z_i, k.ckp1));
                z[i] = (-k.lr).mul_add(normalised, z_i);
            }
        }
    }
}

/// Moves params between the train point `y` and the eval point `x`, `param = lerp(param, z,
/// weight)` as the reference's `p.lerp_(z, weight)`. An element-wise pass the driver runs: it
/// reads `z` in the grad's place and keeps no state.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SwitchPoint {
    weight: f64,
}

impl Rule for SwitchPoint {
    fn state_names(&self) -> &'static [&'static str] {
        &[]
    }

    fn validate(&self) -> Result<(), HyperError> {
        finite("weight", self.weight)
    }

    type Scalars = ();

    fn scalars(&self, _step: u64, _: &mut [f64], _: &[usize]) {}

    fn update<T: Float>(&self, _: &(), tensor: TensorMut<'_, T>) {
        dispatch(SwitchKernel {
            weight: T::from_f64(self.weight),
            tensor,
        })
    }
}

struct SwitchKernel<'a, T> {
    weight: T,
    tensor: TensorMut<'a, T>,
}

impl<T: Float> Kernel for SwitchKernel<'_, T> {
    type Output = ();

    #[inline(always)]
    fn run(self) {
        let TensorMut { param, grad: z, .. } = self.tensor;
        let z = &z[..param.len()];
        for (p, &z) in param.iter_mut().zip(z) {
            *p = p.lerp(z, self.weight);
        }
    }
}
