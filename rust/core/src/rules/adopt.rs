//! ADOPT (Taniguchi et al., 2024, "ADOPT: Modified Adam Can Converge with Any β2 with the
//! Optimal Rate", Algorithm 2 with clipping): the second moment is initialised from the first
//! gradient, and each step normalises the gradient by the second moment of the *previous* steps
//! before the momentum, which removes Adam's need for a β2 tuned to the problem.

use super::{
    dispatch_flags, non_negative_f32, unit_interval, FlagKernel, GradPrologue, HyperError, Moments,
    Rule, TensorMut,
};
use crate::stream::blocks;
use crate::Float;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Adopt {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
    /// AdamW-style decay (shrink the param) instead of adding decay to the gradient.
    pub decouple: bool,
    /// Clip the normalised gradient to ±t^(1/4), the paper's stabilised variant.
    pub clip: bool,
    pub maximize: bool,
}

impl Default for Adopt {
    /// The paper's defaults.
    fn default() -> Self {
        Adopt {
            lr: 1e-3,
            beta1: 0.9,
            beta2: 0.9999,
            eps: 1e-6,
            weight_decay: 0.0,
            decouple: false,
            clip: true,
            maximize: false,
        }
    }
}

/// Which phase a step is in: the first step only initialises the second moment.
#[derive(Clone, Copy, Debug)]
pub enum AdoptScalars {
    Initialise,
    /// A regular step with the clipping bound t^(1/4) (infinite without clipping).
    Update {
        clip: f64,
    },
}

impl Rule for Adopt {
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

    type Scalars = AdoptScalars;

    fn scalars(&self, step: u64, _: &mut [f64], _: &[usize]) -> AdoptScalars {
        if step == 1 {
            return AdoptScalars::Initialise;
        }
        // The paper counts the initialising gradient as t = 0.
        let t = (step - 1) as f64;
        AdoptScalars::Update {
            clip: if self.clip {
                t.powf(0.25)
            } else {
                f64::INFINITY
            },
        }
    }

    fn update<T: Float>(&self, scalars: &AdoptScalars, tensor: TensorMut<'_, T>) {
        let clip = match *scalars {
            AdoptScalars::Initialise => None,
            AdoptScalars::Update { clip } => Some(clip),
        };
        let kernel = AdoptKernel {
            grad: GradPrologue::new(self.maximize, self.weight_decay),
            decay_factor: T::from_f64(1.0 - self.lr * self.weight_decay),
            moments: Moments::new(self.beta1, self.beta2),
            eps: T::from_f64(self.eps),
            clip: T::from_f64(clip.unwrap_or(0.0)),
            neg_lr: T::from_f64(-self.lr),
            tensor,
        };
        let decay = self.weight_decay != 0.0;
        dispatch_flags!(
            kernel,
            [
                clip.is_none(),
                decay && !self.decouple,
                decay && self.decouple
            ]
        );
    }
}

struct AdoptKernel<'a, T> {
    grad: GradPrologue<T>,
    decay_factor: T,
    moments: Moments<T>,
    eps: T,
    clip: T,
    neg_lr: T,
    tensor: TensorMut<'a, T>,
}

impl<T: Float> FlagKernel for AdoptKernel<'_, T> {
    #[inline(always)]
    fn run<
        const INITIALISE: bool,
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
                let v = exp_avg_sq[i];
                if INITIALISE {
                    exp_avg_sq[i] = g.mul_add(g, v);
                    param[i] = p;
                    continue;
                }
                let denom = v.sqrt().maximum(k.eps);
                let normed = g / denom;
                // Clamp to [-clip, clip]; NaN stays NaN.
                let normed = if normed > k.clip {
                    k.clip
                } else if normed < -k.clip {
                    -k.clip
                } else {
                    normed
                };
                let m = k.moments.first(exp_avg[i], normed);
                exp_avg[i] = m;
                param[i] = k.neg_lr.mul_add(m, p);
                exp_avg_sq[i] = k.moments.second(v, g);
            }
        }
    }
}
