//! RMSprop, optionally centered and with momentum (`torch.optim.RMSprop`).

use super::{
    dispatch_flags, non_negative_f32, square_average, FlagKernel, GradPrologue, HyperError, Rule,
    TensorMut,
};
use crate::stream::blocks;
use crate::Float;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RMSprop {
    pub lr: f64,
    pub alpha: f64,
    pub eps: f64,
    pub weight_decay: f64,
    pub momentum: f64,
    pub centered: bool,
    pub maximize: bool,
}

impl Default for RMSprop {
    /// torch's defaults.
    fn default() -> Self {
        RMSprop {
            lr: 1e-2,
            alpha: 0.99,
            eps: 1e-8,
            weight_decay: 0.0,
            momentum: 0.0,
            centered: false,
            maximize: false,
        }
    }
}

impl Rule for RMSprop {
    /// torch's order: the momentum buffer before the gradient average.
    fn state_names(&self) -> &'static [&'static str] {
        match (self.momentum > 0.0, self.centered) {
            (false, false) => &["square_avg"],
            (true, false) => &["square_avg", "momentum_buffer"],
            (false, true) => &["square_avg", "grad_avg"],
            (true, true) => &["square_avg", "momentum_buffer", "grad_avg"],
        }
    }

    fn validate(&self) -> Result<(), HyperError> {
        non_negative_f32("lr", self.lr)?;
        non_negative_f32("eps", self.eps)?;
        non_negative_f32("momentum", self.momentum)?;
        non_negative_f32("weight_decay", self.weight_decay)?;
        non_negative_f32("alpha", self.alpha)
    }

    type Scalars = ();

    fn scalars(&self, _step: u64, _: &mut [f64], _: &[usize]) {}

    fn update<T: Float>(&self, _: &(), tensor: TensorMut<'_, T>) {
        let TensorMut {
            param,
            grad,
            state: [square_avg, second, third],
        } = tensor;
        // Move the optional buffers into fixed slots: [square_avg, momentum_buffer, grad_avg].
        let (momentum_buffer, grad_avg) = match (self.momentum > 0.0, self.centered) {
            (false, true) => (third, second),
            _ => (second, third),
        };
        let kernel = RMSpropKernel {
            grad: GradPrologue::new(self.maximize, self.weight_decay),
            alpha: T::from_f64(self.alpha),
            one_minus_alpha: T::from_f64(1.0 - self.alpha),
            eps: T::from_f64(self.eps),
            momentum: T::from_f64(self.momentum),
            neg_lr: T::from_f64(-self.lr),
            tensor: TensorMut {
                param,
                grad,
                state: [square_avg, momentum_buffer, grad_avg],
            },
        };
        dispatch_flags!(
            kernel,
            [self.momentum > 0.0, self.centered, self.weight_decay != 0.0]
        );
    }
}

struct RMSpropKernel<'a, T> {
    grad: GradPrologue<T>,
    alpha: T,
    one_minus_alpha: T,
    eps: T,
    momentum: T,
    neg_lr: T,
    tensor: TensorMut<'a, T>,
}

impl<T: Float> FlagKernel for RMSpropKernel<'_, T> {
    #[inline(always)]
    fn run<const MOMENTUM: bool, const CENTERED: bool, const DECAY: bool, const _UNUSED: bool>(
        self,
    ) {
        let k = self;
        for tensor in blocks(k.tensor) {
            let TensorMut {
                param,
                grad,
                state: [square_avg, momentum_buffer, grad_avg],
            } = tensor;
            let n = param.len();
            let (grad, square_avg) = (&grad[..n], &mut square_avg[..n]);
            let momentum_buffer = if MOMENTUM {
                &mut momentum_buffer[..n]
            } else {
                momentum_buffer
            };
            let grad_avg = if CENTERED {
                &mut grad_avg[..n]
            } else {
                grad_avg
            };
            for i in 0..n {
                let p = param[i];
                let g = k.grad.apply::<DECAY>(grad[i], p);
                // square_avg.mul_(alpha).addcmul_(grad, grad, value=1 - alpha)
                let sq = square_average(square_avg[i], g, k.alpha, k.one_minus_alpha);
                square_avg[i] = sq;
                let avg = if CENTERED {
                    let ga = grad_avg[i].lerp(g, k.one_minus_alpha);
                    grad_avg[i] = ga;
                    // square_avg.addcmul(grad_avg, grad_avg, value=-1): fused, an infinite
                    // square_avg stays infinite (two roundings would give inf - inf = NaN).
                    (-ga).mul_add(ga, sq).sqrt()
                } else {
                    sq.sqrt()
                } + k.eps;
                param[i] = if MOMENTUM {
                    let b = momentum_buffer[i] * k.momentum + g / avg;
                    momentum_buffer[i] = b;
                    k.neg_lr.mul_add(b, p)
                } else {
                    p + k.neg_lr * g / avg
                };
            }
        }
    }
}
