//! The negative log-likelihood loss (`torch.nn.functional.nll_loss`) over a `rows x classes`
//! matrix of log-probabilities, the fused cross-entropy (`log_softmax` + NLL, with torch's label
//! smoothing), and their gradients.
//!
//! The reduced losses sum the rows in torch's cascade order (partial sums of 16 rows, of 16 such
//! sums, ...), on one thread, so a reduced NLL loss and its total weight are the bits torch's CPU
//! kernel computes.

use super::softmax::softmax;
use super::{expect_ndim, expect_shape, for_each_items, sum, try_filled, NnError, Real};
use std::str::FromStr;

/// torch's `reduction`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reduction {
    None,
    Mean,
    Sum,
}

impl FromStr for Reduction {
    type Err = NnError;

    fn from_str(s: &str) -> Result<Self, NnError> {
        match s {
            "none" => Ok(Reduction::None),
            "mean" => Ok(Reduction::Mean),
            "sum" => Ok(Reduction::Sum),
            other => Err(NnError::Option(format!(
                "reduction must be 'mean', 'sum' or 'none', got {other:?}"
            ))),
        }
    }
}

impl Reduction {
    /// The loss's shape for `rows` rows: `(rows,)` unreduced, `()` reduced.
    pub fn loss_shape(self, rows: usize) -> Vec<usize> {
        match self {
            Reduction::None => vec![rows],
            Reduction::Mean | Reduction::Sum => vec![],
        }
    }

    /// An error unless the upstream gradient `grad_loss` has the loss's shape.
    pub fn check_grad_loss(self, grad_loss: &[usize], rows: usize) -> Result<(), NnError> {
        expect_shape("grad_loss", grad_loss, &self.loss_shape(rows))
    }
}

/// The options shared by the losses.
#[derive(Clone, Copy, Debug)]
pub struct Nll<'a, T> {
    /// A weight per class (torch's `weight`), or `None` for 1.
    pub weight: Option<&'a [T]>,
    /// Rows whose target is this count for nothing, whatever the class count.
    pub ignore_index: i64,
    pub reduction: Reduction,
}

/// Checks a loss's input `(N, C)`, its targets `(N,)` and its class weights `(C,)`, and returns
/// `(N, C)`.
pub fn check_loss_shapes(
    name: &str,
    input: &[usize],
    target: &[usize],
    weight: Option<&[usize]>,
) -> Result<(usize, usize), NnError> {
    expect_ndim(
        name,
        input,
        2,
        "(N, C); move the classes to the last axis first",
    )?;
    expect_shape("target", target, &input[..1])?;
    if let Some(weight) = weight {
        expect_shape("weight", weight, &input[1..])?;
    }
    Ok((input[0], input[1]))
}

/// An error unless every target is a class index or `ignore_index`.
fn check_targets(target: &[i64], classes: usize, ignore_index: i64) -> Result<(), NnError> {
    let bad = target
        .iter()
        .position(|&t| t != ignore_index && !usize::try_from(t).is_ok_and(|t| t < classes));
    match bad {
        None => Ok(()),
        Some(i) => Err(NnError::Array(format!(
            "target[{i}] is {}, out of range for {classes} classes (0..{classes}) and not \
             ignore_index ({ignore_index})",
            target[i]
        ))),
    }
}

/// torch's cascade sum of a loss and its weights over rows: row `i` is added to level 0, and
/// whenever `i` is a multiple of 16 (of 256, ...) level 0 (1, ...) is flushed into the next.
struct Cascade<T> {
    loss: [T; LEVELS],
    weight: [T; LEVELS],
}

const LEVELS: usize = 8;
const LEVEL_POWER_MIN: u32 = 4;

impl<T: Real> Cascade<T> {
    /// Sums `(loss, weight)` of every counted row, in row order; rows yielding `None` (ignored)
    /// do not flush.
    fn sum(rows: usize, mut row: impl FnMut(usize) -> Option<(T, T)>) -> (T, T) {
        let level_power = LEVEL_POWER_MIN.max(rows.next_power_of_two().trailing_zeros() / 8);
        let level_mask = (1usize << level_power) - 1;
        let mut sums = Cascade {
            loss: [T::ZERO; LEVELS],
            weight: [T::ZERO; LEVELS],
        };
        for i in 0..rows {
            let Some((loss, weight)) = row(i) else {
                continue;
            };
            sums.loss[0] = sums.loss[0] + loss;
            sums.weight[0] = sums.weight[0] + weight;
            for j in 0..LEVELS - 1 {
                if i & (level_mask << (j as u32 * level_power)) != 0 {
                    break;
                }
                sums.loss[j + 1] = sums.loss[j + 1] + sums.loss[j];
                sums.weight[j + 1] = sums.weight[j + 1] + sums.weight[j];
                sums.loss[j] = T::ZERO;
                sums.weight[j] = T::ZERO;
            }
        }
        let total = |levels: [T; LEVELS]| levels.into_iter().fold(T::ZERO, |s, v| s + v);
        (total(sums.loss), total(sums.weight))
    }
}

impl<T: Real> Nll<'_, T> {
    fn class_weight(&self, class: usize) -> T {
        self.weight.map_or(T::ONE, |w| w[class])
    }

    /// The class of row `i`, or `None` when it is ignored (targets checked before).
    fn class(&self, target: &[i64], i: usize) -> Option<usize> {
        let t = target[i];
        (t != self.ignore_index).then_some(t as usize)
    }

    /// torch's total weight, the mean's divisor: the summed class weights of the counted rows
    /// (their number without weights), and with it the cascade sum of `row_loss`.
    fn reduce(&self, target: &[i64], row_loss: impl Fn(usize, usize) -> T) -> (T, T) {
        let (loss, weight) = Cascade::sum(target.len(), |i| {
            let class = self.class(target, i)?;
            Some((row_loss(i, class), self.class_weight(class)))
        });
        match self.weight {
            Some(_) => (loss, weight),
            None => {
                let counted = target.iter().filter(|&&t| t != self.ignore_index).count();
                (loss, T::from_f64(counted as f64))
            }
        }
    }
}

/// `nll_loss(logp, target, ...)` into `loss` (one element per row unreduced, else one); returns
/// torch's total weight (0 unreduced). A mean over no counted rows is NaN, as torch's.
pub fn nll_loss<T: Real>(
    logp: &[T],
    classes: usize,
    target: &[i64],
    options: &Nll<'_, T>,
    loss: &mut [T],
) -> Result<T, NnError> {
    assert_eq!(logp.len(), target.len() * classes);
    check_targets(target, classes, options.ignore_index)?;
    let row_loss =
        |i: usize, class: usize| -logp[i * classes + class] * options.class_weight(class);
    if options.reduction == Reduction::None {
        assert_eq!(loss.len(), target.len());
        for (i, l) in loss.iter_mut().enumerate() {
            *l = options.class(target, i).map_or(T::ZERO, |c| row_loss(i, c));
        }
        return Ok(T::ZERO);
    }
    assert_eq!(loss.len(), 1);
    let (total, total_weight) = options.reduce(target, row_loss);
    loss[0] = match options.reduction {
        Reduction::Mean => total / total_weight,
        _ => total,
    };
    Ok(total_weight)
}

/// The gradient of `nll_loss` for the upstream gradient `grad_loss` (one element reduced, one
/// per row unreduced): `-weight[t] * grad` at each counted row's target, divided by
/// `total_weight` for the mean; zero elsewhere.
pub fn nll_loss_backward<T: Real>(
    grad_loss: &[T],
    target: &[i64],
    options: &Nll<'_, T>,
    total_weight: T,
    classes: usize,
    grad_logp: &mut [T],
) -> Result<(), NnError> {
    assert_eq!(Some(grad_logp.len()), target.len().checked_mul(classes));
    check_targets(target, classes, options.ignore_index)?;
    grad_logp.fill(T::ZERO);
    for i in 0..target.len() {
        let Some(class) = options.class(target, i) else {
            continue;
        };
        let grad = match options.reduction {
            Reduction::None => -grad_loss[i],
            Reduction::Mean => -(grad_loss[0] / total_weight),
            Reduction::Sum => -grad_loss[0],
        };
        grad_logp[i * classes + class] = options.class_weight(class) * grad;
    }
    Ok(())
}

/// An error unless `label_smoothing` is in [0, 1], as torch requires.
pub fn check_label_smoothing(label_smoothing: f64) -> Result<(), NnError> {
    if (0.0..=1.0).contains(&label_smoothing) {
        Ok(())
    } else {
        Err(NnError::Option(format!(
            "label_smoothing must be in [0, 1], got {label_smoothing}"
        )))
    }
}

/// `cross_entropy(x, target, ..., label_smoothing)` into `loss`, keeping `softmax(x)` for the
/// gradient. torch's formula: with `logp = log_softmax(x)`, `(1 - s) * nll_loss(logp) + s / C *
/// smooth`, where `smooth` reduces `-sum_c weight[c] * logp[c]` over the counted rows as the NLL
/// loss is reduced (the mean divides by the same total weight).
pub fn cross_entropy<T: Real>(
    x: &[T],
    classes: usize,
    target: &[i64],
    options: &Nll<'_, T>,
    label_smoothing: f64,
    loss: &mut [T],
    probabilities: &mut [T],
) -> Result<(), NnError> {
    assert_eq!(x.len(), target.len() * classes);
    assert_eq!(probabilities.len(), x.len());
    check_label_smoothing(label_smoothing)?;
    check_targets(target, classes, options.ignore_index)?;
    let rows = target.len();
    // Per row: the NLL term and the smoothing term, both from log_softmax(x) of the row.
    let mut terms = try_filled(2 * rows, T::ZERO, "cross_entropy's per-row terms")?;
    for_each_items(&mut terms, 2, classes * 8, |first, terms| {
        for (r, terms) in terms.chunks_exact_mut(2).enumerate() {
            let i = first + r;
            let Some(class) = options.class(target, i) else {
                continue;
            };
            let x = &x[i * classes..][..classes];
            let max = x
                .iter()
                .fold(T::from_f64(f64::NEG_INFINITY), |m, &v| m.maximum(v));
            let log_total = x.iter().fold(T::ZERO, |s, &v| s + (v - max).exp()).ln();
            let logp = |c: usize| (x[c] - max) - log_total;
            terms[0] = -logp(class) * options.class_weight(class);
            if label_smoothing > 0.0 {
                let weighted = (0..classes).map(|c| logp(c) * options.class_weight(c));
                terms[1] = -weighted.fold(T::ZERO, |s, v| s + v);
            }
        }
    });
    softmax(x, classes, probabilities);
    let smoothing = T::from_f64(label_smoothing);
    let share = T::from_f64(label_smoothing / classes as f64);
    let mix = |nll: T, smooth: T| {
        if label_smoothing > 0.0 {
            (T::ONE - smoothing) * nll + smooth * share
        } else {
            nll
        }
    };
    if options.reduction == Reduction::None {
        assert_eq!(loss.len(), rows);
        for (l, t) in loss.iter_mut().zip(terms.chunks_exact(2)) {
            *l = mix(t[0], t[1]);
        }
        return Ok(());
    }
    assert_eq!(loss.len(), 1);
    let (nll, total_weight) = options.reduce(target, |i, _| terms[2 * i]);
    let (smooth, _) = options.reduce(target, |i, _| terms[2 * i + 1]);
    loss[0] = match options.reduction {
        Reduction::Mean => mix(nll / total_weight, smooth / total_weight),
        _ => mix(nll, smooth),
    };
    Ok(())
}

/// The gradient of `cross_entropy` from the kept `softmax(x)`: per counted row, with `g` the
/// row's upstream gradient (divided by the total weight for the mean), the gradient with respect
/// to `logp` is `-(1 - s) * weight[t] * g` at the target and `-s / C * weight[c] * g` everywhere,
/// and through `log_softmax` `grad_x = grad_logp - softmax * sum(grad_logp)`. Ignored rows get 0.
#[allow(clippy::too_many_arguments)]
pub fn cross_entropy_backward<T: Real>(
    grad_loss: &[T],
    probabilities: &[T],
    classes: usize,
    target: &[i64],
    options: &Nll<'_, T>,
    label_smoothing: f64,
    grad_x: &mut [T],
) -> Result<(), NnError> {
    assert_eq!(probabilities.len(), target.len() * classes);
    assert_eq!(grad_x.len(), probabilities.len());
    check_label_smoothing(label_smoothing)?;
    check_targets(target, classes, options.ignore_index)?;
    let total_weight = match options.reduction {
        Reduction::Mean => options.reduce(target, |_, _| T::ZERO).1,
        _ => T::ONE,
    };
    let keep = T::from_f64(1.0 - label_smoothing);
    let share = T::from_f64(label_smoothing / classes as f64);
    for_each_items(grad_x, classes, classes * 4, |first, grad_x| {
        for (r, grad_x) in grad_x.chunks_exact_mut(classes).enumerate() {
            let i = first + r;
            let Some(class) = options.class(target, i) else {
                grad_x.fill(T::ZERO);
                continue;
            };
            let g = match options.reduction {
                Reduction::None => grad_loss[i],
                _ => grad_loss[0] / total_weight,
            };
            let p = &probabilities[i * classes..][..classes];
            for (c, gx) in grad_x.iter_mut().enumerate() {
                *gx = -(share * options.class_weight(c) * g);
            }
            grad_x[class] = grad_x[class] - keep * options.class_weight(class) * g;
            let total = sum(grad_x);
            for (gx, &p) in grad_x.iter_mut().zip(p) {
                *gx = *gx - p * total;
            }
        }
    });
    Ok(())
}
