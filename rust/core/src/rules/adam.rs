//! Adam and AdamW (`torch.optim.Adam`, `torch.optim.AdamW`): AdamW is Adam with decoupled
//! weight decay, as in torch, where `AdamW` is `Adam(decoupled_weight_decay=True)`.

use super::{
    dispatch_flags, non_negative_f32, unit_interval, FlagKernel, GradPrologue, HyperError, Moments,
    Rule, TensorMut,
};
use crate::stream::blocks;
use crate::Float;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Adam {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
    pub amsgrad: bool,
    pub maximize: bool,
    /// AdamW: shrink the param by `lr * weight_decay` instead of adding decay to the gradient.
    pub decoupled_weight_decay: bool,
}

impl Default for Adam {
    /// torch's defaults.
    fn default() -> Self {
        Adam {
            lr: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
            amsgrad: false,
            maximize: false,
            decoupled_weight_decay: false,
        }
    }
}

impl Rule for Adam {
    fn state_names(&self) -> &'static [&'static str] {
        if self.amsgrad {
            &["exp_avg", "exp_avg_sq", "max_exp_avg_sq"]
        } else {
            &["exp_avg", "exp_avg_sq"]
        }
    }

    fn validate(&self) -> Result<(), HyperError> {
        non_negative_f32("lr", self.lr)?;
        non_negative_f32("eps", self.eps)?;
        unit_interval("betas[0]", self.beta1)?;
        unit_interval("betas[1]", self.beta2)?;
        non_negative_f32("weight_decay", self.weight_decay)
    }

    type Scalars = AdamScalars;

    fn scalars(&self, step: u64, _: &mut [f64], _: &[usize]) -> AdamScalars {
        let step = step as f64;
        let bias_correction1 = 1.0 - self.beta1.powf(step);
        let bias_correction2 = 1.0 - self.beta2.powf(step);
        AdamScalars {
            step_size: self.lr / bias_correction1,
            bias_correction2_sqrt: bias_correction2.sqrt(),
        }
    }

    fn update<T: Float>(&self, scalars: &AdamScalars, tensor: TensorMut<'_, T>) {
        let coupled = self.weight_decay != 0.0 && !self.decoupled_weight_decay;
        let kernel = AdamKernel {
            grad: GradPrologue::new(self.maximize, self.weight_decay),
            decay_factor: T::from_f64(1.0 - self.lr * self.weight_decay),
            moments: Moments::new(self.beta1, self.beta2),
            bias_correction2_sqrt: T::from_f64(scalars.bias_correction2_sqrt),
            eps: T::from_f64(self.eps),
            neg_step_size: T::from_f64(-scalars.step_size),
            tensor,
        };
        let decoupled = self.weight_decay != 0.0 && self.decoupled_weight_decay;
        dispatch_flags!(kernel, [self.amsgrad, coupled, decoupled]);
    }
}

/// torch's `step_size = lr / bias_correction1` and `bias_correction2 ** 0.5`.
#[derive(Clone, Copy, Debug)]
pub struct AdamScalars {
    step_size: f64,
    bias_correction2_sqrt: f64,
}

struct AdamKernel<'a, T> {
    grad: GradPrologue<T>,
    decay_factor: T,
    moments: Moments<T>,
    bias_correction2_sqrt: T,
    eps: T,
    neg_step_size: T,
    tensor: TensorMut<'a, T>,
}

impl<T: Float> FlagKernel for AdamKernel<'_, T> {
    #[inline(always)]
    fn run<const AMSGRAD: bool, const COUPLED: bool, const DECOUPLED: bool, const _UNUSED: bool>(
        self,
    ) {
        let k = self;
        for tensor in blocks(k.tensor) {
            let TensorMut {
                param,
                grad,
                state: [exp_avg, exp_avg_sq, max_exp_avg_sq],
            } = tensor;
            let n = param.len();
            let (grad, exp_avg, exp_avg_sq) = (&grad[..n], &mut exp_avg[..n], &mut exp_avg_sq[..n]);
            let max_exp_avg_sq = if AMSGRAD {
                &mut max_exp_avg_sq[..n]
            } else {
                max_exp_avg_sq
            };
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
                let v_hat = if AMSGRAD {
                    let v_max = max_exp_avg_sq[i].maximum(v);
                    max_exp_avg_sq[i] = v_max;
                    v_max
                } else {
                    v
                };
                let denom = v_hat.sqrt() / k.bias_correction2_sqrt + k.eps;
                param[i] = p + k.neg_step_size * m / denom;
            }
        }
    }
}
