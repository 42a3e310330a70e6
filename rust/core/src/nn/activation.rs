//! ReLU and its gradient, elementwise over any shape, split over the pool for large arrays.

use super::for_each_items;
use crate::Float;

/// `y = relu(x)`: `x` where it is not below zero, so NaN stays NaN (torch's `clamp_min(0)`).
pub fn relu<T: Float>(x: &[T], y: &mut [T]) {
    assert_eq!(x.len(), y.len());
    for_each_items(y, 1, 1, |first, y| {
        for (y, &x) in y.iter_mut().zip(&x[first..]) {
            *y = if x < T::ZERO { T::ZERO } else { x };
        }
    });
}

/// The gradient of `relu` given its output `y`: `grad_y` where `y > 0`, else 0; a NaN `y` passes
/// the gradient, as torch's `threshold_backward(grad_y, y, 0)` (zero where `y <= 0`).
pub fn relu_backward<T: Float>(grad_y: &[T], y: &[T], grad_x: &mut [T]) {
    assert!(grad_y.len() == grad_x.len() && y.len() == grad_x.len());
    for_each_items(grad_x, 1, 1, |first, grad_x| {
        let inputs = grad_y[first..].iter().zip(&y[first..]);
        for (g, (&gy, &y)) in grad_x.iter_mut().zip(inputs) {
            *g = if y <= T::ZERO { T::ZERO } else { gy };
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relu_as_torch() {
        let x = [-1.0f32, 0.0, -0.0, 2.5, f32::NAN, f32::NEG_INFINITY];
        let mut y = [9.0f32; 6];
        relu(&x, &mut y);
        assert_eq!(&y[..4], &[0.0, 0.0, 0.0, 2.5]);
        assert!(y[4].is_nan());
        assert_eq!(y[5], 0.0);
        let mut g = [9.0f32; 6];
        relu_backward(&[1.0; 6], &y, &mut g);
        assert_eq!(&g[..4], &[0.0, 0.0, 0.0, 1.0]);
        assert_eq!(&g[4..], &[1.0, 0.0]);
    }
}
