//! Gradient norms and gradient scaling over many tensors (`torch.nn.utils.clip_grad_norm_`).
//!
//! The norm is a reduction, and a floating-point sum depends on its order. So the order is fixed
//! here, whatever the thread count or SIMD level: every tensor is cut into blocks of [`BLOCK`]
//! elements (the last one shorter); element `i` of a block is added, in float64, to lane
//! `i % LANES` of that block's accumulators; the lanes are combined in a fixed pairwise tree; and
//! the blocks' partial sums are added in float64 in tensor and block order. Threads only choose
//! which blocks they compute, and the lanes are the same in every vector width, so the norm is
//! bit-identical on one thread or many, with SSE2, AVX2 or AVX-512.
//!
//! Each tensor may be float32 or float64 (torch's mixed-dtype norm, computed per dtype and then
//! combined, is computed here in float64 throughout). Squares of float32 values are exact in
//! float64, so the 2-norm of float32 grads rounds only in the sums.

use crate::rules::HyperError;
use crate::simd::{dispatch, Kernel};
use crate::square_sum::pairwise_sum;
use crate::{pool, Float};
use rayon::prelude::*;

/// Elements per block: the unit of the reduction and of the parallel split.
pub const BLOCK: usize = 1 << 14;

/// Independent accumulators per block, each a running sum of every `LANES`-th element. So many
/// that the lane loop stays a loop, which LLVM vectorises as a plain element-wise loop at any
/// width (the accumulators stay in L1), and every width adds the same numbers in the same order.
pub const LANES: usize = 64;

/// Below this many elements in all, a call runs inline rather than on the pool: the kernels
/// stream about ten elements a nanosecond, so smaller calls finish before other threads wake.
const PARALLEL_MIN: usize = 1 << 18;

/// Tasks per thread, and task size bounds in elements.
const TASKS_PER_THREAD: usize = 4;
const MIN_TASK: usize = 1 << 16;
const MAX_TASK: usize = 1 << 20;

/// The norm's order `p`: torch's `norm_type`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum NormType {
    /// `max |x|` (`norm_type=inf`); NaN anywhere gives NaN, as in torch.
    Inf,
    /// `(sum |x|^p)^(1/p)` for a finite `p > 0`.
    P(f64),
}

impl NormType {
    /// The norm for torch's `norm_type`: `inf` or a finite number > 0.
    pub fn new(p: f64) -> Result<Self, HyperError> {
        if p == f64::INFINITY {
            Ok(NormType::Inf)
        } else if p.is_finite() && p > 0.0 {
            Ok(NormType::P(p))
        } else {
            Err(HyperError {
                name: "norm_type",
                value: p,
                requirement: "must be a number > 0 or inf",
            })
        }
    }
}

/// A tensor read by the norm, of either dtype.
#[derive(Clone, Copy, Debug)]
pub enum Grad<'a> {
    F32(&'a [f32]),
    F64(&'a [f64]),
}

/// A tensor scaled in place, of either dtype.
#[derive(Debug)]
pub enum GradMut<'a> {
    F32(&'a mut [f32]),
    F64(&'a mut [f64]),
}

impl<'a> Grad<'a> {
    pub fn len(&self) -> usize {
        match self {
            Grad::F32(x) => x.len(),
            Grad::F64(x) => x.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends the tensor's blocks, in order (none for an empty tensor).
    fn push_blocks(self, blocks: &mut Vec<Grad<'a>>) {
        match self {
            Grad::F32(x) => blocks.extend(x.chunks(BLOCK).map(Grad::F32)),
            Grad::F64(x) => blocks.extend(x.chunks(BLOCK).map(Grad::F64)),
        }
    }
}

impl<'a> GradMut<'a> {
    pub fn len(&self) -> usize {
        match self {
            GradMut::F32(x) => x.len(),
            GradMut::F64(x) => x.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A shared view, for the norm.
    pub fn as_grad(&self) -> Grad<'_> {
        match self {
            GradMut::F32(x) => Grad::F32(x),
            GradMut::F64(x) => Grad::F64(x),
        }
    }

    /// Appends pieces of at most [`BLOCK`] elements covering the tensor.
    fn push_pieces(self, pieces: &mut Vec<GradMut<'a>>) {
        match self {
            GradMut::F32(x) => pieces.extend(x.chunks_mut(BLOCK).map(GradMut::F32)),
            GradMut::F64(x) => pieces.extend(x.chunks_mut(BLOCK).map(GradMut::F64)),
        }
    }
}

/// The precision torch computes the clip coefficient in: the total norm's dtype, which is
/// float64 when any grad is float64 and float32 otherwise (also for no grads at all).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Precision {
    F32,
    F64,
}

impl Precision {
    /// The dtype torch's total norm of these tensors has.
    pub fn of<'a>(grads: impl IntoIterator<Item = Grad<'a>>) -> Self {
        if grads.into_iter().any(|g| matches!(g, Grad::F64(_))) {
            Precision::F64
        } else {
            Precision::F32
        }
    }

    /// Rounds a value to this precision.
    pub fn round(self, x: f64) -> f64 {
        match self {
            Precision::F32 => x as f32 as f64,
            Precision::F64 => x,
        }
    }
}

/// The `p`-norm of all the tensors' elements together, computed in float64 (see the module
/// docs for the summation order). Zero for no elements.
pub fn total_norm(grads: &[Grad<'_>], norm: NormType) -> f64 {
    let mut blocks = Vec::new();
    for grad in grads {
        grad.push_blocks(&mut blocks);
    }
    let mut partials = vec![0.0; blocks.len()];
    let power = Power::of(norm);
    let lens: Vec<usize> = blocks.iter().map(Grad::len).collect();
    match task_ends(&lens) {
        None => dispatch(Partials {
            power,
            blocks: &blocks,
            out: &mut partials,
        }),
        Some(ends) => {
            let tasks: Vec<_> = split_runs(&mut blocks, &ends)
                .into_iter()
                .zip(split_runs(&mut partials, &ends))
                .collect();
            pool::current().install(|| {
                tasks
                    .into_par_iter()
                    .for_each(|(blocks, out)| dispatch(Partials { power, blocks, out }))
            });
        }
    }
    match norm {
        NormType::Inf => partials.into_iter().fold(0.0, <f64 as Float>::maximum),
        // Starting from +0.0: `Sum` for floats starts from -0.0, the norm of nothing is 0.
        NormType::P(p) => root(partials.into_iter().fold(0.0, |sum, x| sum + x), p),
    }
}

/// `sum^(1/p)`, exactly rounded for the usual 1- and 2-norms.
fn root(sum: f64, p: f64) -> f64 {
    if p == 1.0 {
        sum
    } else if p == 2.0 {
        sum.sqrt()
    } else {
        sum.powf(1.0 / p)
    }
}

/// Multiplies every element by `coef`, rounded to each tensor's dtype (torch's `_foreach_mul_`
/// by a 0-d tensor: float32 grads are multiplied by the float32 coefficient).
pub fn scale(grads: Vec<GradMut<'_>>, coef: f64) {
    let mut pieces = Vec::new();
    for grad in grads {
        grad.push_pieces(&mut pieces);
    }
    let lens: Vec<usize> = pieces.iter().map(GradMut::len).collect();
    match task_ends(&lens) {
        None => dispatch(Scale {
            coef,
            pieces: &mut pieces,
        }),
        Some(ends) => {
            let tasks = split_runs(&mut pieces, &ends);
            pool::current().install(|| {
                tasks
                    .into_par_iter()
                    .for_each(|pieces| dispatch(Scale { coef, pieces }))
            });
        }
    }
}

/// torch's clip coefficient, `clamp(max_norm / (total_norm + 1e-6), max=1.0)`, computed in
/// `precision` as torch computes it on a 0-d tensor: `max_norm / t` is `t.reciprocal() *
/// max_norm`, so two roundings. NaN stays NaN.
pub fn clip_coef(max_norm: f64, total_norm: f64, precision: Precision) -> f64 {
    fn coef<T: Float>(max_norm: f64, total_norm: f64) -> f64 {
        let denominator = T::from_f64(total_norm) + T::from_f64(1e-6);
        let coef = (T::ONE / denominator) * T::from_f64(max_norm);
        if coef > T::ONE { T::ONE } else { coef }.to_f64()
    }
    match precision {
        Precision::F32 => coef::<f32>(max_norm, total_norm),
        Precision::F64 => coef::<f64>(max_norm, total_norm),
    }
}

/// The total norm was NaN or infinite and the caller asked for an error; no grad was changed.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NonFiniteNorm(pub f64);

/// `torch.nn.utils.clip_grad_norm_` in one pass over the norm and one over the scaling: returns
/// the total norm, rounded to the grads' [`Precision`].
///
/// torch always multiplies, also by a coefficient of exactly 1.0; `x * 1.0 == x` for every
/// float (NaN stays NaN), so that pass is skipped here without changing any value.
pub fn clip_grad_norm(
    grads: Vec<GradMut<'_>>,
    max_norm: f64,
    norm: NormType,
    error_if_nonfinite: bool,
) -> Result<f64, NonFiniteNorm> {
    let shared: Vec<Grad<'_>> = grads.iter().map(GradMut::as_grad).collect();
    let precision = Precision::of(shared.iter().copied());
    let total = precision.round(total_norm(&shared, norm));
    if error_if_nonfinite && !total.is_finite() {
        return Err(NonFiniteNorm(total));
    }
    clip_grads_with_norm(grads, max_norm, total, precision);
    Ok(total)
}

/// `torch.nn.utils.clip_grads_with_norm_`: scales the grads by the clip coefficient of a total
/// norm computed before, of dtype `precision`.
pub fn clip_grads_with_norm(
    grads: Vec<GradMut<'_>>,
    max_norm: f64,
    total_norm: f64,
    precision: Precision,
) {
    let coef = clip_coef(max_norm, total_norm, precision);
    if coef != 1.0 {
        scale(grads, coef);
    }
}

/// Consecutive runs of items of about a task's worth of elements each, as the end index of each
/// run; `None` when the work is better done inline on the calling thread.
pub(crate) fn task_ends(lens: &[usize]) -> Option<Vec<usize>> {
    let total: usize = lens.iter().sum();
    if total < PARALLEL_MIN {
        return None;
    }
    let threads = pool::num_threads();
    if threads == 1 {
        return None;
    }
    let task_len = total
        .div_ceil(threads * TASKS_PER_THREAD)
        .clamp(MIN_TASK, MAX_TASK);
    let mut ends = Vec::new();
    let mut run = 0;
    for (i, &len) in lens.iter().enumerate() {
        run += len;
        if run >= task_len {
            ends.push(i + 1);
            run = 0;
        }
    }
    if run > 0 || ends.is_empty() {
        ends.push(lens.len());
    }
    Some(ends)
}

/// Splits `items` at the run ends from [`task_ends`].
pub(crate) fn split_runs<'s, X>(mut items: &'s mut [X], ends: &[usize]) -> Vec<&'s mut [X]> {
    let mut runs = Vec::with_capacity(ends.len());
    let mut start = 0;
    for &end in ends {
        let (run, rest) = items.split_at_mut(end - start);
        runs.push(run);
        items = rest;
        start = end;
    }
    runs
}

/// What each element contributes to a block's partial result.
#[derive(Clone, Copy)]
enum Power {
    Max,
    Abs,
    Square,
    Pow(f64),
}

impl Power {
    fn of(norm: NormType) -> Self {
        match norm {
            NormType::Inf => Power::Max,
            NormType::P(1.0) => Power::Abs,
            NormType::P(2.0) => Power::Square,
            NormType::P(p) => Power::Pow(p),
        }
    }

    /// The partial result of one block: `max |x|`, or `sum |x|^p` in the fixed lane order.
    #[inline(always)]
    fn partial<T: AbsBits>(self, block: &[T]) -> f64 {
        match self {
            Power::Max => max_abs(block),
            Power::Abs => sum_lanes(block, |x| x.abs()),
            Power::Square => sum_lanes(block, |x| x * x),
            Power::Pow(p) => sum_lanes(block, |x| x.abs().powf(p)),
        }
    }
}

/// `sum f(x)` over a block: element `i` goes to lane `i % LANES`, the lanes are combined in a
/// fixed pairwise tree.
#[inline(always)]
fn sum_lanes<T: Float>(block: &[T], f: impl Fn(f64) -> f64) -> f64 {
    let mut lanes = [0.0f64; LANES];
    let mut chunks = block.chunks_exact(LANES);
    for chunk in &mut chunks {
        for (lane, &x) in lanes.iter_mut().zip(chunk) {
            *lane += f(x.to_f64());
        }
    }
    for (lane, &x) in lanes.iter_mut().zip(chunks.remainder()) {
        *lane += f(x.to_f64());
    }
    combine_lanes(lanes)
}

/// The sum of a block's lanes, combined in the fixed pairwise tree.
#[inline(always)]
pub(crate) fn combine_lanes(lanes: [f64; LANES]) -> f64 {
    pairwise_sum(lanes)
}

/// Floats whose absolute values order like their bit patterns read as unsigned integers, with
/// every NaN above infinity: so `max |x|` is an integer max, which vectorises at every level,
/// and a NaN anywhere wins it (torch's NaN-propagating max). Max is exact, so no order matters.
trait AbsBits: Float {
    type Bits: Copy + Ord;
    const ZERO_BITS: Self::Bits;
    fn abs_bits(self) -> Self::Bits;
    fn from_abs_bits(bits: Self::Bits) -> f64;
}

impl AbsBits for f32 {
    type Bits = u32;
    const ZERO_BITS: u32 = 0;
    #[inline(always)]
    fn abs_bits(self) -> u32 {
        self.to_bits() & !(1 << 31)
    }
    fn from_abs_bits(bits: u32) -> f64 {
        f32::from_bits(bits) as f64
    }
}

impl AbsBits for f64 {
    type Bits = u64;
    const ZERO_BITS: u64 = 0;
    #[inline(always)]
    fn abs_bits(self) -> u64 {
        self.to_bits() & !(1 << 63)
    }
    fn from_abs_bits(bits: u64) -> f64 {
        f64::from_bits(bits)
    }
}

/// `max |x|` over a block, NaN if any element is NaN.
#[inline(always)]
fn max_abs<T: AbsBits>(block: &[T]) -> f64 {
    let mut lanes = [T::ZERO_BITS; LANES];
    let mut chunks = block.chunks_exact(LANES);
    for chunk in &mut chunks {
        for (lane, &x) in lanes.iter_mut().zip(chunk) {
            *lane = (*lane).max(x.abs_bits());
        }
    }
    for (lane, &x) in lanes.iter_mut().zip(chunks.remainder()) {
        *lane = (*lane).max(x.abs_bits());
    }
    T::from_abs_bits(lanes.into_iter().fold(T::ZERO_BITS, Ord::max))
}

/// Computes the partial results of a run of blocks.
struct Partials<'s, 'a> {
    power: Power,
    blocks: &'s [Grad<'a>],
    out: &'s mut [f64],
}

impl Kernel for Partials<'_, '_> {
    type Output = ();

    #[inline(always)]
    fn run(self) {
        for (block, out) in self.blocks.iter().zip(self.out.iter_mut()) {
            *out = match *block {
                Grad::F32(x) => self.power.partial(x),
                Grad::F64(x) => self.power.partial(x),
            };
        }
    }
}

/// Multiplies a run of pieces by the coefficient.
struct Scale<'s, 'a> {
    coef: f64,
    pieces: &'s mut [GradMut<'a>],
}

impl Kernel for Scale<'_, '_> {
    type Output = ();

    #[inline(always)]
    fn run(self) {
        fn mul<T: Float>(x: &mut [T], coef: f64) {
            let coef = T::from_f64(coef);
            for v in x {
                *v = *v * coef;
            }
        }
        for piece in self.pieces.iter_mut() {
            match piece {
                GradMut::F32(x) => mul(x, self.coef),
                GradMut::F64(x) => mul(x, self.coef),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(p: f64) -> NormType {
        NormType::new(p).unwrap()
    }

    #[test]
    fn norm_types() {
        assert_eq!(p(f64::INFINITY), NormType::Inf);
        assert_eq!(p(3.5), NormType::P(3.5));
        for bad in [0.0, -1.0, f64::NAN, f64::NEG_INFINITY] {
            assert!(NormType::new(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn small_norms_are_exact() {
        let a = [3.0f32, -4.0];
        let b = [12.0f64];
        let grads = [Grad::F32(&a), Grad::F64(&b)];
        assert_eq!(total_norm(&grads, p(2.0)), 13.0);
        assert_eq!(total_norm(&grads, p(1.0)), 19.0);
        assert_eq!(total_norm(&grads, NormType::Inf), 12.0);
        assert_eq!(total_norm(&[Grad::F32(&a)], p(3.0)), 91f64.powf(1.0 / 3.0));
        assert_eq!(total_norm(&[], p(2.0)), 0.0);
        assert_eq!(total_norm(&[Grad::F32(&[])], NormType::Inf), 0.0);
    }

    #[test]
    fn nan_and_inf_propagate() {
        let inf = [1.0f32, f32::INFINITY];
        let nan = [f32::NAN, 1.0];
        let both = [f32::NEG_INFINITY, f32::NAN];
        let wide_inf = [f64::NEG_INFINITY, -0.0];
        let wide_nan = [-f64::NAN, 2.0];
        for norm in [p(1.0), p(2.0), p(3.5), NormType::Inf] {
            assert_eq!(total_norm(&[Grad::F32(&inf)], norm), f64::INFINITY);
            assert!(total_norm(&[Grad::F32(&nan)], norm).is_nan());
            assert!(total_norm(&[Grad::F32(&both)], norm).is_nan());
            assert_eq!(total_norm(&[Grad::F64(&wide_inf)], norm), f64::INFINITY);
            assert!(total_norm(&[Grad::F64(&wide_nan)], norm).is_nan());
        }
        assert_eq!(total_norm(&[Grad::F64(&[-0.0, -3.0])], NormType::Inf), 3.0);
    }

    #[test]
    fn coefficient_as_torch() {
        // torch: (1 / (norm + 1e-6)) * max_norm in float32, clamped to 1.
        let want = ((1.0f32 / (10.0f32 + 1e-6f32)) * 1.0f32) as f64;
        assert_eq!(clip_coef(1.0, 10.0, Precision::F32), want);
        assert_eq!(clip_coef(1.0, 0.5, Precision::F64), 1.0);
        assert!(clip_coef(1.0, f64::NAN, Precision::F64).is_nan());
        assert_eq!(clip_coef(1.0, f64::INFINITY, Precision::F32), 0.0);
    }

    #[test]
    fn clips_in_place() {
        let mut a = vec![3.0f32, 4.0];
        let mut b = vec![0.0f64; 3];
        let grads = vec![GradMut::F32(&mut a), GradMut::F64(&mut b)];
        assert_eq!(clip_grad_norm(grads, 1.0, p(2.0), false), Ok(5.0));
        let coef = clip_coef(1.0, 5.0, Precision::F64);
        assert_eq!(a, [3.0 * coef as f32, 4.0 * coef as f32]);

        let mut c = vec![f32::NAN];
        let grads = vec![GradMut::F32(&mut c)];
        let err = clip_grad_norm(grads, 1.0, p(2.0), true).unwrap_err();
        assert!(err.0.is_nan());
    }

    #[test]
    fn mixed_dtypes_round_to_float64() {
        assert_eq!(Precision::of([Grad::F32(&[1.0])]), Precision::F32);
        assert_eq!(Precision::of([]), Precision::F32);
        let one = [1.0f64];
        assert_eq!(
            Precision::of([Grad::F32(&[1.0]), Grad::F64(&one)]),
            Precision::F64
        );
        assert_eq!(Precision::F32.round(0.1), 0.1f32 as f64);
    }

    #[test]
    fn task_runs_cover_every_item() {
        let lens = vec![BLOCK; 40];
        if let Some(ends) = task_ends(&lens) {
            assert_eq!(*ends.last().unwrap(), lens.len());
            assert!(ends.windows(2).all(|w| w[0] < w[1]));
        }
        assert_eq!(task_ends(&[10, 20]), None);
    }
}
