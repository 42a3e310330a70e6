//! Adadelta (`torch.optim.Adadelta`).

use super::{
    closed_unit_interval, dispatch_flags, non_negative_f32, square_average, FlagKernel,
    GradPrologue, HyperError, Rule, TensorMut,
};
use crate::stream::blocks;
use crate::Float;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Adadelta {
    pub lr: f64,
    pub rho: f64,
    pub eps: f64,
    pub weight_decay: f64,
    pub maximize: bool,
}

impl Default for Adadelta {
    /// torch's defaults.
    fn default() -> Self {
        Adadelta {
            lr: 1.0,
            rho: 0.9,
            eps: 1e-6,
            weight_decay: 0.0,
            maximize: false,
        }
    }
}

impl Rule for Adadelta {
    fn state_names(&self) -> &'static [&'static str] {
        &["square_avg", "acc_delta"]
    }

    fn validate(&self) -> Result<(), HyperError> {
        non_negative_f32("lr", self.lr)?;
        closed_unit_interval("rho", self.rho)?;
        non_negative_f32("eps", self.eps)?;
        non_negative_f32("weight_decay", self.weight_decay)
    }

    type Scalars = ();

    fn scalars(&self, _step: u64, _: &mut [f64], _: &[usize]) {}

    fn update<T: Float>(&self, _: &(), tensor: TensorMut<'_, T>) {
        let kernel = AdadeltaKernel {
            grad: GradPrologue::new(self.maximize, self.weight_decay),
            rho: T::from_f64(self.rho),
            one_minus_rho: T::from_f64(1.0 - self.rho),
            eps: T::from_f64(self.eps),
            neg_lr: T::from_f64(-self.lr),
            tensor,
        };
        dispatch_flags!(kernel, [self.weight_decay != 0.0]);
    }
}

struct AdadeltaKernel<'a, T> {
    grad: GradPrologue<T>,
    rho: T,
    one_minus_rho: T,
    eps: T,
    neg_lr: T,
    tensor: TensorMut<'a, T>,
}

/// The kernel with its branch resolved at compile time, so the loop body is branch-free.
impl<T: Float> FlagKernel for AdadeltaKernel<'_, T> {
    #[inline(always)]
    fn run<const DECAY: bool, const _UNUSED: bool, const _UNUSED2: bool, const _UNUSED3: bool>(
        self,
    ) {
        let k = self;
        for tensor in blocks(k.tensor) {
            let TensorMut {
                param,
                grad,
                state: [square_avg, acc_delta, _],
            } = tensor;
            let n = param.len();
            let (grad, square_avg, acc_delta) =
                (&grad[..n], &mut square_avg[..n], &mut acc_delta[..n]);
            for i in 0..n {
                let p = param[i];
                let g = k.grad.apply::<DECAY>(grad[i], p);
                let sq = square_average(square_avg[i], g, k.rho, k.one_minus_rho);
                square_avg[i] = sq;
                let std = (sq + k.eps).sqrt();
                let delta = (acc_delta[i] + k.eps).sqrt() / std * g;
                acc_delta[i] = (k.one_minus_rho * delta).mul_add(delta, acc_delta[i] * k.rho);
                param[i] = k.neg_lr.mul_add(delta, p);
            }
        }
    }
}
