//! Update rules: one file per optimizer, each the single source of truth for its arithmetic.
//!
//! A rule is its hyperparameters (one value per param group). It names the per-element state
//! buffers it keeps and updates one tensor, or any contiguous piece of one, in place. Most rules
//! are element-wise, so the driver may split a tensor anywhere without changing a single bit;
//! a rule that needs whole tensors runs a step's tensors itself (LAMB's per-tensor norms), and a
//! rule may also see each tensor's shape and keep state buffers of shapes of their own
//! ([`Rule::SHAPED`]: Muon's matrices, Adafactor's row and column factors). Every optimizer
//! with a Rust update is one of these rules, stepped by the bindings' one engine.

// One module per file of this directory, and its rule types re-exported (build.rs writes this).
include!(concat!(env!("OUT_DIR"), "/rules.rs"));

use crate::driver::{self, Work};
use crate::Float;
use std::fmt;

/// The most per-element state buffers any rule keeps.
pub const MAX_STATE: usize = 3;

/// One tensor (or a contiguous piece of one): its param, grad and state buffers, all the same
/// length. Slots a rule does not use are empty.
pub struct TensorMut<'a, T> {
    pub param: &'a mut [T],
    pub grad: &'a [T],
    pub state: [&'a mut [T]; MAX_STATE],
}

impl<'a, T> TensorMut<'a, T> {
    /// Checks that every non-empty slot has the param's length; the kernels rely on it.
    pub fn new(param: &'a mut [T], grad: &'a [T], state: [&'a mut [T]; MAX_STATE]) -> Self {
        let n = param.len();
        assert_eq!(grad.len(), n, "grad length differs from param length");
        for s in &state {
            assert!(
                s.is_empty() || s.len() == n,
                "state length differs from param length"
            );
        }
        TensorMut { param, grad, state }
    }

    /// A whole tensor of a [`Rule::SHAPED`] rule, whose state buffers have lengths of their own
    /// (given by [`Rule::state_shape`]). It is never split: its rule's `run` sees it whole.
    pub fn shaped(param: &'a mut [T], grad: &'a [T], state: [&'a mut [T]; MAX_STATE]) -> Self {
        assert_eq!(
            grad.len(),
            param.len(),
            "grad length differs from param length"
        );
        TensorMut { param, grad, state }
    }

    pub fn len(&self) -> usize {
        self.param.len()
    }

    pub fn is_empty(&self) -> bool {
        self.param.is_empty()
    }

    /// Splits into elements `[0, mid)` and `[mid, len)`.
    pub fn split_at(self, mid: usize) -> (Self, Self) {
        let (p0, p1) = self.param.split_at_mut(mid);
        let (g0, g1) = self.grad.split_at(mid);
        let [s0, s1, s2] = self.state;
        let (a0, a1) = split_slot(s0, mid);
        let (b0, b1) = split_slot(s1, mid);
        let (c0, c1) = split_slot(s2, mid);
        (
            TensorMut {
                param: p0,
                grad: g0,
                state: [a0, b0, c0],
            },
            TensorMut {
                param: p1,
                grad: g1,
                state: [a1, b1, c1],
            },
        )
    }
}

fn split_slot<T>(slot: &mut [T], mid: usize) -> (&mut [T], &mut [T]) {
    if slot.is_empty() {
        (&mut [], &mut [])
    } else {
        slot.split_at_mut(mid)
    }
}

/// An optimizer's update rule, holding one param group's hyperparameters.
pub trait Rule: Copy + Send + Sync + 'static {
    /// Names of the per-element state buffers these hyperparameters need, in slot order, with
    /// torch's names (they are the keys of `optimizer.state[p]`).
    fn state_names(&self) -> &'static [&'static str];

    /// Whether torch creates the state when a param is added (Adagrad), from the options then,
    /// rather than at the param's first step, from the options of that step (every other rule).
    const EAGER_STATE: bool = false;

    /// The value every element of state slot `slot` starts at: set at a param's first step,
    /// from the hyperparameters of that step (with the param, if `EAGER_STATE`).
    fn initial_state(&self, _slot: usize) -> f64 {
        0.0
    }

    /// Checks the hyperparameters, as torch's constructor does (and also rejects NaN and inf).
    fn validate(&self) -> Result<(), HyperError>;

    /// Whether the rule sees each tensor's shape: its [`scalars`](Rule::scalars) depend on it,
    /// its state buffers may have shapes of their own ([`state_shape`](Rule::state_shape)), and
    /// its [`run`](Rule::run) gets each tensor whole. Element-wise rules ignore shapes.
    const SHAPED: bool = false;

    /// The shape of state buffer `slot` of a param of `shape`, or None where such a param keeps
    /// no such buffer (Adafactor's `variance` of a matrix). The param's own shape unless
    /// [`SHAPED`](Rule::SHAPED).
    fn state_shape(&self, _slot: usize, shape: &[usize]) -> Option<Vec<usize>> {
        Some(shape.to_vec())
    }

    /// Why a param of `shape` cannot be optimized, if it cannot: when it is registered, and with
    /// `stepping` when it is about to take a step (Muon takes matrices only; Adafactor cannot
    /// step a param without elements).
    fn check_shape(&self, _shape: &[usize], _stepping: bool) -> Result<(), String> {
        Ok(())
    }

    /// Sets the options that torch resolves from the dtype of a group's first param with a grad
    /// in each step (Adafactor's `eps1=None`), given that dtype's machine epsilon; called once
    /// per group and step, before any tensor's scalars.
    fn resolve_dtype(&mut self, _epsilon: f64) {}

    /// Names of the per-param scalar state besides the step count (NAdam's `mu_product`,
    /// ASGD's `eta` and `mu`), with torch's names.
    fn scalar_state_names(&self) -> &'static [&'static str] {
        &[]
    }

    /// The value scalar state `index` starts at, set as `initial_state`.
    fn initial_scalar_state(&self, _index: usize) -> f64 {
        0.0
    }

    /// What an update needs besides the hyperparameters that depends only on the step count
    /// and the scalar state (bias corrections, a decayed lr): computed once per tensor and step
    /// (once per group and step for rules without scalar state), not once per chunk.
    type Scalars: Copy + Send + Sync;

    /// The scalars of a tensor's `step`-th step (1 on its first); advances `scalar_state`
    /// (in the order of `scalar_state_names`) to after this step. `shape` is the tensor's, which
    /// only [`SHAPED`](Rule::SHAPED) rules read.
    fn scalars(&self, step: u64, scalar_state: &mut [f64], shape: &[usize]) -> Self::Scalars;

    /// Updates one tensor in place; element-wise rules (those that keep the default [`run`])
    /// also update any contiguous piece of one.
    ///
    /// [`run`]: Rule::run
    fn update<T: Float>(&self, scalars: &Self::Scalars, tensor: TensorMut<'_, T>);

    /// Runs a step's updates, whole tensors in `work`. Element-wise rules leave this to the
    /// driver, which cuts tensors into pieces; a rule that needs each tensor whole runs them
    /// itself.
    fn run<T: Float>(work: Vec<Work<'_, Self, T>>) {
        driver::run(work)
    }
}

/// A hyperparameter outside its domain.
#[derive(Clone, Debug, PartialEq)]
pub struct HyperError {
    pub name: &'static str,
    pub value: f64,
    pub requirement: &'static str,
}

impl fmt::Display for HyperError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid {}={}: {}",
            self.name, self.value, self.requirement
        )
    }
}

impl std::error::Error for HyperError {}

/// `value` must be finite and >= 0.
pub(crate) fn non_negative(name: &'static str, value: f64) -> Result<(), HyperError> {
    if value.is_finite() && value >= 0.0 {
        Ok(())
    } else {
        Err(HyperError {
            name,
            value,
            requirement: "must be a finite number >= 0",
        })
    }
}

/// The largest float32, as a float64: a hyperparameter that is rounded to the params' dtype must
/// not exceed it. torch raises "value cannot be converted to type float without overflow" at the
/// step for float32 params; optrs refuses such a value when the options are set, for every dtype,
/// since it validates a group once whatever its params' dtypes.
const FLOAT32_MAX: f64 = f32::MAX as f64;

/// `value` must be finite, >= 0 and no larger than float32 can hold.
pub(crate) fn non_negative_f32(name: &'static str, value: f64) -> Result<(), HyperError> {
    if value.is_finite() && (0.0..=FLOAT32_MAX).contains(&value) {
        Ok(())
    } else {
        Err(HyperError {
            name,
            value,
            requirement: "must be a finite number >= 0 that float32 can hold (<= 3.4028235e38)",
        })
    }
}

/// `value` must be finite and no larger in magnitude than float32 can hold.
pub(crate) fn finite_f32(name: &'static str, value: f64) -> Result<(), HyperError> {
    if value.is_finite() && value.abs() <= FLOAT32_MAX {
        Ok(())
    } else {
        Err(HyperError {
            name,
            value,
            requirement: "must be a finite number that float32 can hold (|x| <= 3.4028235e38)",
        })
    }
}

/// `value` must lie in [0, 1).
pub(crate) fn unit_interval(name: &'static str, value: f64) -> Result<(), HyperError> {
    if (0.0..1.0).contains(&value) {
        Ok(())
    } else {
        Err(HyperError {
            name,
            value,
            requirement: "must be in [0, 1)",
        })
    }
}

/// `value` must lie in [0, 1].
pub(crate) fn closed_unit_interval(name: &'static str, value: f64) -> Result<(), HyperError> {
    if (0.0..=1.0).contains(&value) {
        Ok(())
    } else {
        Err(HyperError {
            name,
            value,
            requirement: "must be in [0, 1]",
        })
    }
}

/// `value` must be finite.
pub(crate) fn finite(name: &'static str, value: f64) -> Result<(), HyperError> {
    if value.is_finite() {
        Ok(())
    } else {
        Err(HyperError {
            name,
            value,
            requirement: "must be a finite number",
        })
    }
}

/// torch's gradient prologue, shared by the rules: the gradient is negated when maximizing, then
/// gets `weight_decay * param` added (L2 decay) when the rule's `DECAY` flag is set, rounded once
/// as torch's `grad.add(param, alpha=weight_decay)`.
#[derive(Clone, Copy)]
pub(crate) struct GradPrologue<T> {
    sign: T,
    weight_decay: T,
}

impl<T: Float> GradPrologue<T> {
    pub(crate) fn new(maximize: bool, weight_decay: f64) -> Self {
        // Multiplying by -1 is exact, so this is torch's `-grad`.
        let sign = if maximize { -T::ONE } else { T::ONE };
        GradPrologue {
            sign,
            weight_decay: T::from_f64(weight_decay),
        }
    }

    #[inline(always)]
    pub(crate) fn apply<const DECAY: bool>(self, grad: T, param: T) -> T {
        let g = grad * self.sign;
        if DECAY {
            self.weight_decay.mul_add(param, g)
        } else {
            g
        }
    }
}

/// Adam's moment estimates, the one place their arithmetic lives, shared by Adam, NAdam, RAdam
/// and ADOPT (Schedule-Free AdamW, Adadelta and RMSprop share the second, [`square_average`];
/// LAMB keeps the paper's unfused form, Adamax and Lion their own).
#[derive(Clone, Copy)]
pub(crate) struct Moments<T> {
    one_minus_beta1: T,
    beta2: T,
    one_minus_beta2: T,
}

impl<T: Float> Moments<T> {
    pub(crate) fn new(beta1: f64, beta2: f64) -> Self {
        Moments {
            one_minus_beta1: T::from_f64(1.0 - beta1),
            beta2: T::from_f64(beta2),
            one_minus_beta2: T::from_f64(1.0 - beta2),
        }
    }

    /// torch's `exp_avg.lerp_(grad, 1 - beta1)`.
    #[inline(always)]
    pub(crate) fn first(self, exp_avg: T, grad: T) -> T {
        exp_avg.lerp(grad, self.one_minus_beta1)
    }

    /// torch's `exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)`.
    #[inline(always)]
    pub(crate) fn second(self, exp_avg_sq: T, grad: T) -> T {
        square_average(exp_avg_sq, grad, self.beta2, self.one_minus_beta2)
    }
}

/// A running average of squares, `average * decay + (1 - decay) * grad * grad` as torch's
/// `mul_(decay).addcmul_(grad, grad, value=1 - decay)` rounds it (one fused multiply-add): Adam's
/// second moment, Adadelta's and RMSprop's `square_avg`.
#[inline(always)]
pub(crate) fn square_average<T: Float>(average: T, grad: T, decay: T, one_minus_decay: T) -> T {
    (one_minus_decay * grad).mul_add(grad, average * decay)
}

/// A kernel whose loop has up to four branches that a step's options decide (momentum or not,
/// coupled or decoupled weight decay, ...): [`dispatch_flags!`] turns the options into the const
/// parameters of `run`, so each instantiated loop body is branch-free. Flags a kernel does not
/// use are always false. Implementations mark `run` `#[inline(always)]`, as [`Kernel::run`]:
/// it is inlined into the `#[target_feature]` wrappers of [`simd::dispatch`] and vectorised with
/// their features.
///
/// [`Kernel::run`]: crate::simd::Kernel::run
/// [`simd::dispatch`]: crate::simd::dispatch
pub(crate) trait FlagKernel {
    fn run<const A: bool, const B: bool, const C: bool, const D: bool>(self);
}

/// A [`FlagKernel`] with its flags fixed: the [`Kernel`](crate::simd::Kernel) that
/// [`simd::dispatch`](crate::simd::dispatch) runs.
pub(crate) struct Flagged<K, const A: bool, const B: bool, const C: bool, const D: bool>(pub K);

impl<K: FlagKernel, const A: bool, const B: bool, const C: bool, const D: bool> crate::simd::Kernel
    for Flagged<K, A, B, C, D>
{
    type Output = ();

    #[inline(always)]
    fn run(self) {
        self.0.run::<A, B, C, D>()
    }
}

/// `dispatch_flags!(kernel, [a, b])` runs the [`FlagKernel`] `kernel` through
/// [`simd::dispatch`](crate::simd::dispatch) with `run::<a, b, false, false>`: up to four runtime
/// bools become const parameters (each combination is one instantiation of the loop).
macro_rules! dispatch_flags {
    ($kernel:expr, [$($flag:expr),* $(,)?]) => {{
        let kernel = $kernel;
        $crate::rules::dispatch_flags!(@next kernel [] $($flag),*)
    }};
    (@next $kernel:ident [$a:tt $b:tt $c:tt $d:tt]) => {
        $crate::simd::dispatch($crate::rules::Flagged::<_, $a, $b, $c, $d>($kernel))
    };
    (@next $kernel:ident [$($done:tt)*]) => {
        $crate::rules::dispatch_flags!(@next $kernel [$($done)* false])
    };
    (@next $kernel:ident [$($done:tt)*] $flag:expr $(, $rest:expr)*) => {
        if $flag {
            $crate::rules::dispatch_flags!(@next $kernel [$($done)* true] $($rest),*)
        } else {
            $crate::rules::dispatch_flags!(@next $kernel [$($done)* false] $($rest),*)
        }
    };
}
pub(crate) use dispatch_flags;
