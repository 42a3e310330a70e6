//! ASGD, averaged stochastic gradient descent (`torch.optim.ASGD`): SGD with a decaying step
//! size `eta`, whose running average of the params (`ax`) starts after `t0` steps.

use super::{
    dispatch_flags, finite, finite_f32, non_negative_f32, FlagKernel, GradPrologue, HyperError,
    Rule, TensorMut,
};
use crate::stream::blocks;
use crate::Float;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Asgd {
    pub lr: f64,
    pub lambd: f64,
    pub alpha: f64,
    pub t0: f64,
    pub weight_decay: f64,
    pub maximize: bool,
}

impl Default for Asgd {
    /// torch's defaults.
    fn default() -> Self {
        Asgd {
            lr: 1e-2,
            lambd: 1e-4,
            alpha: 0.75,
            t0: 1e6,
            weight_decay: 0.0,
            maximize: false,
        }
    }
}

/// The step size and averaging weight of the current step (the values before this step
/// advances them).
#[derive(Clone, Copy, Debug)]
pub struct AsgdScalars {
    eta: f64,
    mu: f64,
}

/// torch keeps `eta` and `mu` in float32 tensors: every value is rounded to float32.
fn as_f32(x: f64) -> f64 {
    x as f32 as f64
}

impl Rule for Asgd {
    fn state_names(&self) -> &'static [&'static str] {
        &["ax"]
    }

    fn scalar_state_names(&self) -> &'static [&'static str] {
        &["eta", "mu"]
    }

    fn initial_scalar_state(&self, index: usize) -> f64 {
        if index == 0 {
            as_f32(self.lr)
        } else {
            1.0
        }
    }

    fn validate(&self) -> Result<(), HyperError> {
        non_negative_f32("lr", self.lr)?;
        non_negative_f32("weight_decay", self.weight_decay)?;
        finite_f32("lambd", self.lambd)?;
        finite("alpha", self.alpha)?;
        finite("t0", self.t0)?;
        // torch computes the first step's `lr / (1 + lambd * lr * step) ** alpha` in Python
        // floats, which raise OverflowError (or ZeroDivisionError, or give a complex eta) where
        // the power is not a finite positive number; optrs refuses such options instead of
        // taking eta as 0, inf or NaN.
        let base = 1.0 + self.lambd * self.lr;
        if base <= 0.0 {
            return Err(HyperError {
                name: "lambd",
                value: self.lambd,
                requirement:
                    "must keep 1 + lambd * lr > 0 (eta's power of a negative base is not real)",
            });
        }
        let power = base.powf(self.alpha);
        if !(power.is_finite() && power > 0.0) {
            return Err(HyperError {
                name: "alpha",
                value: self.alpha,
                requirement:
                    "must keep (1 + lambd * lr) ** alpha a finite number > 0 (eta = lr / that)",
            });
        }
        Ok(())
    }

    type Scalars = AsgdScalars;

    fn scalars(&self, step: u64, scalar_state: &mut [f64], _: &[usize]) -> AsgdScalars {
        let current = AsgdScalars {
            eta: scalar_state[0],
            mu: scalar_state[1],
        };
        let step = step as f64;
        scalar_state[0] = as_f32(self.lr / (1.0 + self.lambd * self.lr * step).powf(self.alpha));
        scalar_state[1] = as_f32(1.0 / f64::max(1.0, step - self.t0));
        current
    }

    fn update<T: Float>(&self, scalars: &AsgdScalars, tensor: TensorMut<'_, T>) {
        let kernel = AsgdKernel {
            grad: GradPrologue::new(self.maximize, self.weight_decay),
            decay_factor: T::from_f64(1.0 - self.lambd * scalars.eta),
            neg_eta: T::from_f64(-scalars.eta),
            mu: T::from_f64(scalars.mu),
            tensor,
        };
        // While mu is 1 torch copies the param into ax instead of averaging.
        dispatch_flags!(kernel, [self.weight_decay != 0.0, scalars.mu != 1.0]);
    }
}

struct AsgdKernel<'a, T> {
    grad: GradPrologue<T>,
    decay_factor: T,
    neg_eta: T,
    mu: T,
    tensor: TensorMut<'a, T>,
}

impl<T: Float> FlagKernel for AsgdKernel<'_, T> {
    #[inline(always)]
    fn run<const DECAY: bool, const AVERAGE: bool, const _UNUSED: bool, const _UNUSED2: bool>(
        self,
    ) {
        let k = self;
        for tensor in blocks(k.tensor) {
            let TensorMut {
                param,
                grad,
                state: [ax, _, _],
            } = tensor;
            let n = param.len();
            let (grad, ax) = (&grad[..n], &mut ax[..n]);
            for i in 0..n {
                let p = param[i];
                let g = k.grad.apply::<DECAY>(grad[i], p);
                // param.mul_(1 - lambd * eta); param.add_(grad, alpha=-eta)
                let p = k.neg_eta.mul_add(g, p * k.decay_factor);
                param[i] = p;
                ax[i] = if AVERAGE {
                    ax[i] + (p - ax[i]) * k.mu
                } else {
                    p
                };
            }
        }
    }
}
