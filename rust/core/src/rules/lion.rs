//! Lion, evolved sign momentum (Chen et al., 2023, "Symbolic Discovery of Optimization
//! Algorithms", Algorithm 2), with the paper's defaults.

use super::{non_negative_f32, unit_interval, HyperError, Rule, TensorMut};
use crate::simd::{dispatch, Kernel};
use crate::stream::blocks;
use crate::Float;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Lion {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub weight_decay: f64,
    pub maximize: bool,
}

impl Default for Lion {
    /// The paper's defaults.
    fn default() -> Self {
        Lion {
            lr: 1e-4,
            beta1: 0.9,
            beta2: 0.99,
            weight_decay: 0.0,
            maximize: false,
        }
    }
}

impl Rule for Lion {
    fn state_names(&self) -> &'static [&'static str] {
        &["exp_avg"]
    }

    fn validate(&self) -> Result<(), HyperError> {
        non_negative_f32("lr", self.lr)?;
        unit_interval("betas[0]", self.beta1)?;
        unit_interval("betas[1]", self.beta2)?;
        non_negative_f32("weight_decay", self.weight_decay)
    }

    type Scalars = ();

    fn scalars(&self, _step: u64, _: &mut [f64], _: &[usize]) {}

    fn update<T: Float>(&self, _: &(), tensor: TensorMut<'_, T>) {
        dispatch(LionKernel {
            sign: if self.maximize { -T::ONE } else { T::ONE },
            decay_factor: T::from_f64(1.0 - self.lr * self.weight_decay),
            neg_lr: T::from_f64(-self.lr),
            beta1: T::from_f64(self.beta1),
            one_minus_beta1: T::from_f64(1.0 - self.beta1),
            beta2: T::from_f64(self.beta2),
            one_minus_beta2: T::from_f64(1.0 - self.beta2),
            tensor,
        })
    }
}

struct LionKernel<'a, T> {
    sign: T,
    decay_factor: T,
    neg_lr: T,
    beta1: T,
    one_minus_beta1: T,
    beta2: T,
    one_minus_beta2: T,
    tensor: TensorMut<'a, T>,
}

/// -1, 0 or 1, and NaN for NaN: torch's CPU `sign(nan)` is 0, which would freeze an element
/// whose gradient is NaN instead of letting the NaN reach the param.
#[inline(always)]
fn sign<T: Float>(x: T) -> T {
    if x > T::ZERO {
        T::ONE
    } else if x < T::ZERO {
        -T::ONE
    } else if x.is_nan() {
        x
    } else {
        T::ZERO
    }
}

impl<T: Float> Kernel for LionKernel<'_, T> {
    type Output = ();

    #[inline(always)]
    fn run(self) {
        let k = self;
        for tensor in blocks(k.tensor) {
            let TensorMut {
                param,
                grad,
                state: [exp_avg, _, _],
            } = tensor;
            let n = param.len();
            let (grad, exp_avg) = (&grad[..n], &mut exp_avg[..n]);
            for i in 0..n {
                let g = grad[i] * k.sign;
                let m = exp_avg[i];
                // The update interpolates with beta1, the momentum it keeps with beta2.
                let direction = sign(k.beta1 * m + k.one_minus_beta1 * g);
                param[i] = param[i] * k.decay_factor + k.neg_lr * direction;
                // exp_avg.mul_(beta2).add_(grad, alpha=1 - beta2)
                exp_avg[i] = k.one_minus_beta2.mul_add(g, m * k.beta2);
            }
        }
    }
}
