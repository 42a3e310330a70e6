//! Adamax, Adam with the infinity norm (`torch.optim.Adamax`).

use super::{
    dispatch_flags, non_negative_f32, unit_interval, FlagKernel, GradPrologue, HyperError, Rule,
    TensorMut,
};
use crate::stream::blocks;
use crate::Float;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Adamax {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
    pub maximize: bool,
}

impl Default for Adamax {
    /// torch's defaults.
    fn default() -> Self {
        Adamax {
            lr: 2e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
            maximize: false,
        }
    }
}

impl Rule for Adamax {
    fn state_names(&self) -> &'static [&'static str] {
        &["exp_avg", "exp_inf"]
    }

    fn validate(&self) -> Result<(), HyperError> {
        non_negative_f32("lr", self.lr)?;
        non_negative_f32("eps", self.eps)?;
        unit_interval("betas[0]", self.beta1)?;
        unit_interval("betas[1]", self.beta2)?;
        non_negative_f32("weight_decay", self.weight_decay)
    }

    /// torch's `clr = lr / (1 - beta1 ** step)`.
    type Scalars = f64;

    fn scalars(&self, step: u64, _: &mut [f64], _: &[usize]) -> f64 {
        self.lr / (1.0 - self.beta1.powf(step as f64))
    }

    fn update<T: Float>(&self, &clr: &f64, tensor: TensorMut<'_, T>) {
        let kernel = AdamaxKernel {
            grad: GradPrologue::new(self.maximize, self.weight_decay),
            one_minus_beta1: T::from_f64(1.0 - self.beta1),
            beta2: T::from_f64(self.beta2),
            eps: T::from_f64(self.eps),
            neg_clr: T::from_f64(-clr),
            tensor,
        };
        dispatch_flags!(kernel, [self.weight_decay != 0.0]);
    }
}

struct AdamaxKernel<'a, T> {
    grad: GradPrologue<T>,
    one_minus_beta1: T,
    beta2: T,
    eps: T,
    neg_clr: T,
    tensor: TensorMut<'a, T>,
}

/// The kernel with its branch resolved at compile time, so the loop body is branch-free.
impl<T: Float> FlagKernel for AdamaxKernel<'_, T> {
    #[inline(always)]
    fn run<const DECAY: bool, const _UNUSED: bool, const _UNUSED2: bool, const _UNUSED3: bool>(
        self,
    ) {
        let k = self;
        for tensor in blocks(k.tensor) {
            let TensorMut {
                param,
                grad,
                state: [exp_avg, exp_inf, _],
            } = tensor;
            let n = param.len();
            let (grad, exp_avg, exp_inf) = (&grad[..n], &mut exp_avg[..n], &mut exp_inf[..n]);
            for i in 0..n {
                let p = param[i];
                let g = k.grad.apply::<DECAY>(grad[i], p);
                let m = exp_avg[i].lerp(g, k.one_minus_beta1);
                exp_avg[i] = m;
                let u = (exp_inf[i] * k.beta2).maximum(g.abs() + k.eps);
                exp_inf[i] = u;
                param[i] = p + k.neg_clr * m / u;
            }
        }
    }
}
