//! Adam and AdamW (`torch.optim.Adam`, `torch.optim.AdamW`): AdamW is Adam with decoupled
//! weight decay, as in torch, where `AdamW` is `Adam(decoupled_weight_decay=True)`.

use super::{non_negative_f32, unit_interval, GradPrologue, HyperError, Rule, TensorMut};
use crate::simd::{dispatch, Kernel};
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

    fn scalars(&self, step: u64, _: &mut [f64]) -> AdamScalars {
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
            one_minus_beta1: T::from_f64(1.0 - self.beta1),
            beta2: T::from_f64(self.beta2),
            one_minus_beta2: T::from_f64(1.0 - self.beta2),
            bias_correction2_sqrt: T::from_f64(scalars.bias_correction2_sqrt),
            eps: T::from_f64(self.eps),
            neg_step_size: T::from_f64(-scalars.step_size),
            tensor,
        };
        let decoupled = self.weight_decay != 0.0 && self.decoupled_weight_decay;
        match (self.amsgrad, coupled, decoupled) {
            (false, false, false) => dispatch(kernel.flags::<false, false, false>()),
            (false, true, _) => dispatch(kernel.flags::<false, true, false>()),
            (false, false, true) => dispatch(kernel.flags::<false, false, true>()),
            (true, false, false) => dispatch(kernel.flags::<true, false, false>()),
            (true, true, _) => dispatch(kernel.flags::<true, true, false>()),
            (true, false, true) => dispatch(kernel.flags::<true, false, true>()),
        }
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
    one_minus_beta1: T,
    beta2: T,
    one_minus_beta2: T,
    bias_correction2_sqrt: T,
    eps: T,
    neg_step_size: T,
    tensor: TensorMut<'a, T>,
}

impl<'a, T> AdamKernel<'a, T> {
    fn flags<const AMSGRAD: bool, const COUPLED: bool, const DECOUPLED: bool>(
        self,
    ) -> Flagged<Self, AMSGRAD, COUPLED, DECOUPLED> {
        Flagged(self)
    }
}

/// The kernel with its branches resolved at compile time, so each loop body is branch-free.
struct Flagged<K, const AMSGRAD: bool, const COUPLED: bool, const DECOUPLED: bool>(K);

impl<T: Float, const AMSGRAD: bool, const COUPLED: bool, const DECOUPLED: bool> Kernel
    for Flagged<AdamKernel<'_, T>, AMSGRAD, COUPLED, DECOUPLED>
{
    type Output = ();

    #[inline(always)]
    fn run(self) {
        let k = self.0;
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
                let m = exp_avg[i].lerp(g, k.one_minus_beta1);
                // exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
                let v = (k.one_minus_beta2 * g).mul_add(g, exp_avg_sq[i] * k.beta2);
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
