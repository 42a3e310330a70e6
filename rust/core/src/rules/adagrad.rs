//! Adagrad with learning-rate decay (`torch.optim.Adagrad`).

use super::{
    dispatch_flags, non_negative, non_negative_f32, FlagKernel, GradPrologue, HyperError, Rule,
    TensorMut,
};
use crate::stream::blocks;
use crate::Float;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Adagrad {
    pub lr: f64,
    pub lr_decay: f64,
    pub weight_decay: f64,
    pub initial_accumulator_value: f64,
    pub eps: f64,
    pub maximize: bool,
}

impl Default for Adagrad {
    /// torch's defaults.
    fn default() -> Self {
        Adagrad {
            lr: 1e-2,
            lr_decay: 0.0,
            weight_decay: 0.0,
            initial_accumulator_value: 0.0,
            eps: 1e-10,
            maximize: false,
        }
    }
}

impl Rule for Adagrad {
    /// torch fills `sum` with `initial_accumulator_value` in the constructor.
    const EAGER_STATE: bool = true;

    fn state_names(&self) -> &'static [&'static str] {
        &["sum"]
    }

    fn initial_state(&self, _slot: usize) -> f64 {
        self.initial_accumulator_value
    }

    fn validate(&self) -> Result<(), HyperError> {
        non_negative_f32("lr", self.lr)?;
        non_negative("lr_decay", self.lr_decay)?;
        non_negative_f32("weight_decay", self.weight_decay)?;
        non_negative_f32("initial_accumulator_value", self.initial_accumulator_value)?;
        non_negative_f32("eps", self.eps)
    }

    /// The decayed learning rate.
    type Scalars = f64;

    fn scalars(&self, step: u64, _: &mut [f64], _: &[usize]) -> f64 {
        self.lr / (1.0 + (step as f64 - 1.0) * self.lr_decay)
    }

    fn update<T: Float>(&self, &clr: &f64, tensor: TensorMut<'_, T>) {
        let kernel = AdagradKernel {
            grad: GradPrologue::new(self.maximize, self.weight_decay),
            eps: T::from_f64(self.eps),
            neg_clr: T::from_f64(-clr),
            tensor,
        };
        dispatch_flags!(kernel, [self.weight_decay != 0.0]);
    }
}

struct AdagradKernel<'a, T> {
    grad: GradPrologue<T>,
    eps: T,
    neg_clr: T,
    tensor: TensorMut<'a, T>,
}

/// The kernel with its branch resolved at compile time, so the loop body is branch-free.
impl<T: Float> FlagKernel for AdagradKernel<'_, T> {
    #[inline(always)]
    fn run<const DECAY: bool, const _UNUSED: bool, const _UNUSED2: bool, const _UNUSED3: bool>(
        self,
    ) {
        let k = self;
        for tensor in blocks(k.tensor) {
            let TensorMut {
                param,
                grad,
                state: [sum, _, _],
            } = tensor;
            let n = param.len();
            let (grad, sum) = (&grad[..n], &mut sum[..n]);
            for i in 0..n {
                let p = param[i];
                let g = k.grad.apply::<DECAY>(grad[i], p);
                // state_sum.addcmul_(grad, grad, value=1)
                let s = g.mul_add(g, sum[i]);
                sum[i] = s;
                param[i] = p + k.neg_clr * g / (s.sqrt() + k.eps);
            }
        }
    }
}
