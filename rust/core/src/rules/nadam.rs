//! NAdam, Adam with Nesterov momentum and momentum decay (`torch.optim.NAdam`).

use super::{
    dispatch_flags, non_negative, non_negative_f32, unit_interval, FlagKernel, GradPrologue,
    HyperError, Moments, Rule, TensorMut,
};
use crate::stream::blocks;
use crate::Float;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NAdam {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
    pub momentum_decay: f64,
    pub decoupled_weight_decay: bool,
    pub maximize: bool,
}

impl Default for NAdam {
    /// torch's defaults.
    fn default() -> Self {
        NAdam {
            lr: 2e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
            momentum_decay: 4e-3,
            decoupled_weight_decay: false,
            maximize: false,
        }
    }
}

/// The two coefficients of torch's two `addcdiv_` and the bias correction of `exp_avg_sq`.
#[derive(Clone, Copy, Debug)]
pub struct NAdamScalars {
    grad_coefficient: f64,
    exp_avg_coefficient: f64,
    bias_correction2: f64,
}

impl Rule for NAdam {
    fn state_names(&self) -> &'static [&'static str] {
        &["exp_avg", "exp_avg_sq"]
    }

    fn scalar_state_names(&self) -> &'static [&'static str] {
        &["mu_product"]
    }

    fn initial_scalar_state(&self, _index: usize) -> f64 {
        1.0
    }

    fn validate(&self) -> Result<(), HyperError> {
        non_negative_f32("lr", self.lr)?;
        non_negative_f32("eps", self.eps)?;
        unit_interval("betas[0]", self.beta1)?;
        unit_interval("betas[1]", self.beta2)?;
        non_negative_f32("weight_decay", self.weight_decay)?;
        non_negative("momentum_decay", self.momentum_decay)
    }

    type Scalars = NAdamScalars;

    fn scalars(&self, step: u64, scalar_state: &mut [f64], _: &[usize]) -> NAdamScalars {
        let step = step as f64;
        let mu = self.beta1 * (1.0 - 0.5 * 0.96f64.powf(step * self.momentum_decay));
        let mu_next = self.beta1 * (1.0 - 0.5 * 0.96f64.powf((step + 1.0) * self.momentum_decay));
        // torch keeps mu_product in a float32 tensor, so it is rounded to float32 every step.
        let mu_product = (scalar_state[0] as f32 * mu as f32) as f64;
        scalar_state[0] = mu_product;
        let mu_product_next = mu_product * mu_next;
        NAdamScalars {
            grad_coefficient: -self.lr * (1.0 - mu) / (1.0 - mu_product),
            exp_avg_coefficient: (-self.lr * mu_next) / (1.0 - mu_product_next),
            bias_correction2: 1.0 - self.beta2.powf(step),
        }
    }

    fn update<T: Float>(&self, scalars: &NAdamScalars, tensor: TensorMut<'_, T>) {
        let kernel = NAdamKernel {
            grad: GradPrologue::new(self.maximize, self.weight_decay),
            decay_factor: T::from_f64(1.0 - self.lr * self.weight_decay),
            moments: Moments::new(self.beta1, self.beta2),
            bias_correction2: T::from_f64(scalars.bias_correction2),
            eps: T::from_f64(self.eps),
            grad_coefficient: T::from_f64(scalars.grad_coefficient),
            exp_avg_coefficient: T::from_f64(scalars.exp_avg_coefficient),
            tensor,
        };
        let decay = self.weight_decay != 0.0;
        dispatch_flags!(
            kernel,
            [
                decay && !self.decoupled_weight_decay,
                decay && self.decoupled_weight_decay
            ]
        );
    }
}

struct NAdamKernel<'a, T> {
    grad: GradPrologue<T>,
    decay_factor: T,
    moments: Moments<T>,
    bias_correction2: T,
    eps: T,
    grad_coefficient: T,
    exp_avg_coefficient: T,
    tensor: TensorMut<'a, T>,
}

impl<T: Float> FlagKernel for NAdamKernel<'_, T> {
    #[inline(always)]
    fn run<
        const COUPLED: bool,
        const DECOUPLED: bool,
        const _UNUSED: bool,
        const _UNUSED2: bool,
    >(
        self,
    ) {
        let k = self;
        for tensor in blocks(k.tensor) {
            let TensorMut {
                param,
                grad,
                state: [exp_avg, exp_avg_sq, _],
            } = tensor;
            let n = param.len();
            let (grad, exp_avg, exp_avg_sq) = (&grad[..n], &mut exp_avg[..n], &mut exp_avg_sq[..n]);
            for i in 0..n {
                let mut p = param[i];
                let g = k.grad.apply::<COUPLED>(grad[i], p);
                if DECOUPLED {
                    p = p * k.decay_factor;
                }
                let m = k.moments.first(exp_avg[i], g);
                let v = k.moments.second(exp_avg_sq[i], g);
                exp_avg[i] = m;
                exp_avg_sq[i] = v;
                let denom = (v / k.bias_correction2).sqrt() + k.eps;
                p = p + k.grad_coefficient * g / denom;
                param[i] = p + k.exp_avg_coefficient * m / denom;
            }
        }
    }
}
