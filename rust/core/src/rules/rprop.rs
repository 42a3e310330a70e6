//! Rprop, resilient backpropagation (`torch.optim.Rprop`): per-element step sizes that grow
//! while the gradient keeps its sign and shrink when it flips.

use super::{finite_f32, non_negative_f32, HyperError, Rule, TensorMut};
use crate::simd::{dispatch, Kernel};
use crate::stream::blocks;
use crate::Float;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rprop {
    pub lr: f64,
    pub etaminus: f64,
    pub etaplus: f64,
    pub step_size_min: f64,
    pub step_size_max: f64,
    pub maximize: bool,
}

impl Default for Rprop {
    /// torch's defaults.
    fn default() -> Self {
        Rprop {
            lr: 1e-2,
            etaminus: 0.5,
            etaplus: 1.2,
            step_size_min: 1e-6,
            step_size_max: 50.0,
            maximize: false,
        }
    }
}

impl Rule for Rprop {
    fn state_names(&self) -> &'static [&'static str] {
        &["prev", "step_size"]
    }

    /// `prev` starts at 0, `step_size` at lr.
    fn initial_state(&self, slot: usize) -> f64 {
        if slot == 1 {
            self.lr
        } else {
            0.0
        }
    }

    fn validate(&self) -> Result<(), HyperError> {
        non_negative_f32("lr", self.lr)?;
        if !(0.0 < self.etaminus && self.etaminus < 1.0) {
            return Err(HyperError {
                name: "etas[0]",
                value: self.etaminus,
                requirement: "must be in (0, 1)",
            });
        }
        if !(self.etaplus > 1.0 && self.etaplus <= f64::from(f32::MAX)) {
            return Err(HyperError {
                name: "etas[1]",
                value: self.etaplus,
                requirement: "must be a finite number > 1 that float32 can hold (<= 3.4028235e38)",
            });
        }
        non_negative_f32("step_sizes[0]", self.step_size_min)?;
        finite_f32("step_sizes[1]", self.step_size_max)?;
        if self.step_size_max < self.step_size_min {
            return Err(HyperError {
                name: "step_sizes[1]",
                value: self.step_size_max,
                requirement: "must be >= step_sizes[0]",
            });
        }
        Ok(())
    }

    type Scalars = ();

    fn scalars(&self, _step: u64, _: &mut [f64], _: &[usize]) {}

    fn update<T: Float>(&self, _: &(), tensor: TensorMut<'_, T>) {
        dispatch(RpropKernel {
            sign: if self.maximize { -T::ONE } else { T::ONE },
            etaminus: T::from_f64(self.etaminus),
            etaplus: T::from_f64(self.etaplus),
            step_size_min: T::from_f64(self.step_size_min),
            step_size_max: T::from_f64(self.step_size_max),
            tensor,
        })
    }
}

struct RpropKernel<'a, T> {
    sign: T,
    etaminus: T,
    etaplus: T,
    step_size_min: T,
    step_size_max: T,
    tensor: TensorMut<'a, T>,
}

/// `torch.sign`: -1, 0 or 1, and 0 for NaN (so a NaN gradient moves nothing, as in torch).
#[inline(always)]
fn sign<T: Float>(x: T) -> T {
    if x > T::ZERO {
        T::ONE
    } else if x < T::ZERO {
        -T::ONE
    } else {
        T::ZERO
    }
}

/// `torch.clamp(x, low, high)`: NaN stays NaN.
#[inline(always)]
fn clamp<T: Float>(x: T, low: T, high: T) -> T {
    if x < low {
        low
    } else if x > high {
        high
    } else {
        x
    }
}

impl<T: Float> Kernel for RpropKernel<'_, T> {
    type Output = ();

    #[inline(always)]
    fn run(self) {
        let k = self;
        for tensor in blocks(k.tensor) {
            let TensorMut {
                param,
                grad,
                state: [prev, step_size, _],
            } = tensor;
            let n = param.len();
            let (grad, prev, step_size) = (&grad[..n], &mut prev[..n], &mut step_size[..n]);
            for i in 0..n {
                let g = grad[i] * k.sign;
                // torch maps sign(g * prev) to etaplus / etaminus / 1.
                let agreement = g * prev[i];
                let factor = if agreement > T::ZERO {
                    k.etaplus
                } else if agreement < T::ZERO {
                    k.etaminus
                } else {
                    T::ONE
                };
                let size = clamp(step_size[i] * factor, k.step_size_min, k.step_size_max);
                step_size[i] = size;
                // After a sign flip the step is skipped and the flip forgotten.
                let g = if factor == k.etaminus { T::ZERO } else { g };
                param[i] = param[i] + -T::ONE * sign(g) * size;
                prev[i] = g;
            }
        }
    }
}
