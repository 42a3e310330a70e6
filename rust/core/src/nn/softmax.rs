//! `log_softmax` and `softmax` over the last axis of a row-major `rows x classes` matrix, and their
//! gradients, with torch's formulas: the row's maximum is subtracted before `exp`, so no row
//! overflows; `log_softmax = (x - max) - ln(sum(exp(x - max)))`.
//!
//! Rows are independent and split over the pool; each row's sums run in a fixed order.

use super::{for_each_items, sum, Real};

/// Operations per element, for the parallel split (an `exp` costs a few dozen).
const COST: usize = 32;

/// One row's maximum (NaN if any element is NaN, as torch's) and `sum(exp(x - max))`; `exps`
/// receives `exp(x - max)`.
#[inline]
fn exp_row<T: Real>(x: &[T], exps: &mut [T]) -> (T, T) {
    let max = x
        .iter()
        .fold(T::from_f64(f64::NEG_INFINITY), |m, &v| m.maximum(v));
    for (e, &v) in exps.iter_mut().zip(x) {
        *e = (v - max).exp();
    }
    (max, sum(exps))
}

/// `y = log_softmax(x)` row by row.
pub fn log_softmax<T: Real>(x: &[T], classes: usize, y: &mut [T]) {
    assert_eq!(x.len(), y.len());
    for_each_items(y, classes, classes * COST, |first, y| {
        let x = &x[first * classes..][..y.len()];
        for (x, y) in x.chunks_exact(classes).zip(y.chunks_exact_mut(classes)) {
            let (max, total) = exp_row(x, y);
            let log_total = total.ln();
            for (y, &v) in y.iter_mut().zip(x) {
                *y = (v - max) - log_total;
            }
        }
    });
}

/// `y = softmax(x)` row by row: `exp(x - max) / sum(exp(x - max))`.
pub fn softmax<T: Real>(x: &[T], classes: usize, y: &mut [T]) {
    assert_eq!(x.len(), y.len());
    for_each_items(y, classes, classes * COST, |first, y| {
        let x = &x[first * classes..][..y.len()];
        for (x, y) in x.chunks_exact(classes).zip(y.chunks_exact_mut(classes)) {
            let (_, total) = exp_row(x, y);
            for y in y.iter_mut() {
                *y = *y / total;
            }
        }
    });
}

/// The gradient of `log_softmax` given its output `y`: `grad_y - exp(y) * sum(grad_y)`.
pub fn log_softmax_backward<T: Real>(grad_y: &[T], y: &[T], classes: usize, grad_x: &mut [T]) {
    assert!(grad_y.len() == grad_x.len() && y.len() == grad_x.len());
    for_each_items(grad_x, classes, classes * COST, |first, grad_x| {
        let range = first * classes..first * classes + grad_x.len();
        let rows = grad_y[range.clone()]
            .chunks_exact(classes)
            .zip(y[range].chunks_exact(classes));
        for ((grad_y, y), grad_x) in rows.zip(grad_x.chunks_exact_mut(classes)) {
            let total = sum(grad_y);
            for ((g, &gy), &y) in grad_x.iter_mut().zip(grad_y).zip(y) {
                *g = gy - y.exp() * total;
            }
        }
    });
}

/// The gradient of `softmax` given its output `y`: `y * (grad_y - sum(grad_y * y))`.
pub fn softmax_backward<T: Real>(grad_y: &[T], y: &[T], classes: usize, grad_x: &mut [T]) {
    assert!(grad_y.len() == grad_x.len() && y.len() == grad_x.len());
    for_each_items(grad_x, classes, classes * 4, |first, grad_x| {
        let range = first * classes..first * classes + grad_x.len();
        let rows = grad_y[range.clone()]
            .chunks_exact(classes)
            .zip(y[range].chunks_exact(classes));
        for ((grad_y, y), grad_x) in rows.zip(grad_x.chunks_exact_mut(classes)) {
            // grad_x holds the products first, so their sum runs in `sum`'s fixed order.
            for ((g, &gy), &y) in grad_x.iter_mut().zip(grad_y).zip(y) {
                *g = gy * y;
            }
            let dot = sum(grad_x);
            for ((g, &gy), &y) in grad_x.iter_mut().zip(grad_y).zip(y) {
                *g = (gy - dot) * y;
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_logits_do_not_overflow() {
        let x = [1000.0f64, 1000.0, -1000.0, 0.0];
        let mut y = [0.0; 4];
        log_softmax(&x, 2, &mut y);
        let half = -(2.0f64.ln());
        assert_eq!(y, [half, half, -1000.0, 0.0]);
        softmax(&x, 2, &mut y);
        assert_eq!(y, [0.5, 0.5, (-1000.0f64).exp(), 1.0]);
    }

    #[test]
    fn nan_poisons_its_row_only() {
        let x = [f32::NAN, 1.0, 2.0, 2.0];
        let mut y = [0.0f32; 4];
        log_softmax(&x, 2, &mut y);
        assert!(y[0].is_nan() && y[1].is_nan());
        assert_eq!(y[2], y[3]);
    }
}
