//! Stochastic gradient descent with momentum, dampening and Nesterov (`torch.optim.SGD`).

use super::{
    dispatch_flags, finite_f32, non_negative_f32, FlagKernel, GradPrologue, HyperError, Rule,
    TensorMut,
};
use crate::stream::blocks;
use crate::Float;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sgd {
    pub lr: f64,
    pub momentum: f64,
    pub dampening: f64,
    pub weight_decay: f64,
    pub nesterov: bool,
    pub maximize: bool,
}

impl Default for Sgd {
    /// torch's defaults.
    fn default() -> Self {
        Sgd {
            lr: 1e-3,
            momentum: 0.0,
            dampening: 0.0,
            weight_decay: 0.0,
            nesterov: false,
            maximize: false,
        }
    }
}

impl Rule for Sgd {
    fn state_names(&self) -> &'static [&'static str] {
        if self.momentum != 0.0 {
            &["momentum_buffer"]
        } else {
            &[]
        }
    }

    fn validate(&self) -> Result<(), HyperError> {
        non_negative_f32("lr", self.lr)?;
        non_negative_f32("momentum", self.momentum)?;
        finite_f32("dampening", self.dampening)?;
        non_negative_f32("weight_decay", self.weight_decay)?;
        if self.nesterov && (self.momentum <= 0.0 || self.dampening != 0.0) {
            return Err(HyperError {
                name: "nesterov",
                value: 1.0,
                requirement: "Nesterov momentum requires a momentum > 0 and zero dampening",
            });
        }
        Ok(())
    }

    /// Whether this is the tensor's first step, which starts the momentum buffer.
    type Scalars = bool;

    fn scalars(&self, step: u64, _: &mut [f64], _: &[usize]) -> bool {
        step == 1
    }

    fn update<T: Float>(&self, &first: &bool, tensor: TensorMut<'_, T>) {
        let kernel = SgdKernel {
            grad: GradPrologue::new(self.maximize, self.weight_decay),
            momentum: T::from_f64(self.momentum),
            one_minus_dampening: T::from_f64(1.0 - self.dampening),
            neg_lr: T::from_f64(-self.lr),
            tensor,
        };
        let momentum = self.momentum != 0.0;
        // torch starts the momentum buffer as a copy of the first gradient.
        dispatch_flags!(
            kernel,
            [
                momentum,
                momentum && first,
                momentum && self.nesterov,
                self.weight_decay != 0.0
            ]
        );
    }
}

struct SgdKernel<'a, T> {
    grad: GradPrologue<T>,
    momentum: T,
    one_minus_dampening: T,
    neg_lr: T,
    tensor: TensorMut<'a, T>,
}

impl<T: Float> FlagKernel for SgdKernel<'_, T> {
    #[inline(always)]
    fn run<const MOMENTUM: bool, const FIRST: bool, const NESTEROV: bool, const DECAY: bool>(self) {
        let k = self;
        for tensor in blocks(k.tensor) {
            let TensorMut {
                param,
                grad,
                state: [buffer, _, _],
            } = tensor;
            let n = param.len();
            let grad = &grad[..n];
            let buffer = if MOMENTUM { &mut buffer[..n] } else { buffer };
            for i in 0..n {
                let p = param[i];
                let mut g = k.grad.apply::<DECAY>(grad[i], p);
                if MOMENTUM {
                    let b = if FIRST {
                        g
                    } else {
                        // buf.mul_(momentum).add_(grad, alpha=1 - dampening)
                        k.one_minus_dampening.mul_add(g, buffer[i] * k.momentum)
                    };
                    buffer[i] = b;
                    g = if NESTEROV {
                        k.momentum.mul_add(b, g)
                    } else {
                        b
                    };
                }
                param[i] = k.neg_lr.mul_add(g, p);
            }
        }
    }
}
