//! RAdam, Adam with a rectified adaptive learning rate (`torch.optim.RAdam`): while the
//! variance estimate is unreliable (rho_t <= 5) the step is plain bias-corrected momentum.

use super::{
    dispatch_flags, non_negative_f32, unit_interval, FlagKernel, GradPrologue, HyperError, Moments,
    Rule, TensorMut,
};
use crate::stream::blocks;
use crate::Float;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RAdam {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
    pub decoupled_weight_decay: bool,
    pub maximize: bool,
}

impl Default for RAdam {
    /// torch's defaults.
    fn default() -> Self {
        RAdam {
            lr: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
            decoupled_weight_decay: false,
            maximize: false,
        }
    }
}

/// torch's bias corrections and rectification term; `rect` is None while rho_t <= 5.
#[derive(Clone, Copy, Debug)]
pub struct RAdamScalars {
    bias_correction1: f64,
    bias_correction2_sqrt: f64,
    rect: Option<f64>,
}

impl Rule for RAdam {
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

    type Scalars = RAdamScalars;

    fn scalars(&self, step: u64, _: &mut [f64], _: &[usize]) -> RAdamScalars {
        let step = step as f64;
        let bias_correction2 = 1.0 - self.beta2.powf(step);
        let rho_inf = 2.0 / (1.0 - self.beta2) - 1.0;
        let rho_t = rho_inf - 2.0 * step * self.beta2.powf(step) / bias_correction2;
        let rect = (rho_t > 5.0).then(|| {
            ((rho_t - 4.0) * (rho_t - 2.0) * rho_inf / ((rho_inf - 4.0) * (rho_inf - 2.0) * rho_t))
                .sqrt()
        });
        RAdamScalars {
            bias_correction1: 1.0 - self.beta1.powf(step),
            bias_correction2_sqrt: bias_correction2.sqrt(),
            rect,
        }
    }

    fn update<T: Float>(&self, scalars: &RAdamScalars, tensor: TensorMut<'_, T>) {
        let kernel = RAdamKernel {
            grad: GradPrologue::new(self.maximize, self.weight_decay),
            decay_factor: T::from_f64(1.0 - self.lr * self.weight_decay),
            moments: Moments::new(self.beta1, self.beta2),
            bias_correction1: T::from_f64(scalars.bias_correction1),
            bias_correction2_sqrt: T::from_f64(scalars.bias_correction2_sqrt),
            eps: T::from_f64(self.eps),
            lr: T::from_f64(self.lr),
            rect: T::from_f64(scalars.rect.unwrap_or(0.0)),
            tensor,
        };
        let decay = self.weight_decay != 0.0;
        let coupled = decay && !self.decoupled_weight_decay;
        let decoupled = decay && self.decoupled_weight_decay;
        dispatch_flags!(kernel, [scalars.rect.is_some(), coupled, decoupled]);
    }
}

struct RAdamKernel<'a, T> {
    grad: GradPrologue<T>,
    decay_factor: T,
    moments: Moments<T>,
    bias_correction1: T,
    bias_correction2_sqrt: T,
    eps: T,
    lr: T,
    rect: T,
    tensor: TensorMut<'a, T>,
}

impl<T: Float> FlagKernel for RAdamKernel<'_, T> {
    #[inline(always)]
    fn run<
        const RECTIFIED: bool,
        const COUPLED: bool,
        const DECOUPLED: bool,
        const _UNUSED: bool,
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
                let update = if RECTIFIED {
                    let adaptive_lr = k.bias_correction2_sqrt / (v.sqrt() + k.eps);
                    m / k.bias_correction1 * k.lr * adaptive_lr * k.rect
                } else {
                    m / k.bias_correction1 * k.lr
                };
                param[i] = p - update;
            }
        }
    }
}
