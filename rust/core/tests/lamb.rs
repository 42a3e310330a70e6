//! LAMB's step equals a plain scalar transcription of its documented order (the norms summed in
//! float64 over blocks of BLOCK elements, LANES lanes each, combined pairwise, blocks in order),
//! bit for bit, on any thread count, for many tensors at once and for one tensor alone.

use optrs_core::driver::Work;
use optrs_core::norms::{BLOCK, LANES};
use optrs_core::rules::{Lamb, Rule};
use optrs_core::{pool, Float, TensorMut};
use std::sync::Mutex;

/// The pool size is process-wide: tests that change it take turns.
static GLOBALS: Mutex<()> = Mutex::new(());

/// A fixed pseudo-random sequence in [-1, 1).
fn values<T: Float>(n: usize, seed: u64) -> Vec<T> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            T::from_f64((x >> 11) as f64 / (1u64 << 52) as f64 - 1.0)
        })
        .collect()
}

#[derive(Clone, PartialEq, Debug)]
struct Tensor<T> {
    param: Vec<T>,
    exp_avg: Vec<T>,
    exp_avg_sq: Vec<T>,
}

fn tensors<T: Float>(lens: &[usize]) -> Vec<Tensor<T>> {
    lens.iter()
        .enumerate()
        .map(|(i, &n)| Tensor {
            param: values(n, 11 + i as u64),
            exp_avg: vec![T::ZERO; n],
            exp_avg_sq: vec![T::ZERO; n],
        })
        .collect()
}

/// The sum of `f(i)` over a tensor of `n` elements, in the documented order.
fn blocked_sum(n: usize, f: impl Fn(usize) -> f64) -> f64 {
    let mut total = 0.0;
    for start in (0..n).step_by(BLOCK) {
        let mut lanes = [0.0f64; LANES];
        for i in start..(start + BLOCK).min(n) {
            lanes[(i - start) % LANES] += f(i);
        }
        let mut width = LANES;
        while width > 1 {
            width /= 2;
            for j in 0..width {
                lanes[j] += lanes[j + width];
            }
        }
        total += lanes[0];
    }
    total
}

/// Step `t` of Algorithm 2 on one tensor, written out plainly in its dtype.
fn reference<T: Float>(rule: &Lamb, t: u64, tensor: &mut Tensor<T>, grad: &[T]) {
    let c = |x: f64| T::from_f64(x);
    let (bc1, bc2) = (
        1.0 - rule.beta1.powf(t as f64),
        1.0 - rule.beta2.powf(t as f64),
    );
    let sign = if rule.maximize { -T::ONE } else { T::ONE };
    for (i, &g) in grad.iter().enumerate() {
        let g = g * sign;
        tensor.exp_avg[i] = c(rule.beta1) * tensor.exp_avg[i] + c(1.0 - rule.beta1) * g;
        tensor.exp_avg_sq[i] = c(rule.beta2) * tensor.exp_avg_sq[i] + c(1.0 - rule.beta2) * g * g;
    }
    let u: Vec<T> = (0..grad.len())
        .map(|i| {
            let r = (tensor.exp_avg[i] / c(bc1))
                / ((tensor.exp_avg_sq[i] / c(bc2)).sqrt() + c(rule.eps));
            if rule.weight_decay != 0.0 {
                r + c(rule.weight_decay) * tensor.param[i]
            } else {
                r
            }
        })
        .collect();
    let x_norm = blocked_sum(grad.len(), |i| tensor.param[i].to_f64().powi(2)).sqrt();
    let u_norm = blocked_sum(grad.len(), |i| u[i].to_f64().powi(2)).sqrt();
    let ratio = if x_norm == 0.0 || u_norm == 0.0 {
        1.0
    } else {
        x_norm / u_norm
    };
    let neg_step = c(-(rule.lr * ratio));
    for (x, u) in tensor.param.iter_mut().zip(u) {
        *x = *x + neg_step * u;
    }
}

/// Three steps over all tensors at once, as the engine runs them.
fn run_all<T: Float>(rule: Lamb, tensors: &mut [Tensor<T>], grads: &[Vec<Vec<T>>]) {
    for (t, step_grads) in grads.iter().enumerate() {
        let work = tensors
            .iter_mut()
            .zip(step_grads)
            .map(|(tensor, grad)| Work {
                rule,
                scalars: rule.scalars(t as u64 + 1, &mut [], &[]),
                tensor: TensorMut::new(
                    &mut tensor.param,
                    grad,
                    [&mut tensor.exp_avg, &mut tensor.exp_avg_sq, &mut []],
                ),
            })
            .collect();
        Lamb::run(work);
    }
}

fn check<T: Float + PartialEq>(rule: Lamb) {
    let lens = [0, 1, 63, 65, BLOCK - 1, BLOCK + 1, 5 * BLOCK + 17, 300_001];
    let grads: Vec<Vec<Vec<T>>> = (0..3)
        .map(|t| {
            lens.iter()
                .map(|&n| values(n, 100 * t + n as u64))
                .collect()
        })
        .collect();
    let mut want = tensors::<T>(&lens);
    for (t, step_grads) in grads.iter().enumerate() {
        for (tensor, grad) in want.iter_mut().zip(step_grads) {
            reference(&rule, t as u64 + 1, tensor, grad);
        }
    }
    for threads in [1, 2, 3] {
        pool::set_num_threads(threads).unwrap();
        let mut got = tensors::<T>(&lens);
        run_all(rule, &mut got, &grads);
        assert!(got == want, "{} with {threads} threads", T::NAME);
    }
    // `update` on one whole tensor is the same step.
    let mut alone = tensors::<T>(&lens).swap_remove(6);
    for (t, step_grads) in grads.iter().enumerate() {
        let tensor = &mut alone;
        rule.update(
            &rule.scalars(t as u64 + 1, &mut [], &[]),
            TensorMut::new(
                &mut tensor.param,
                &step_grads[6],
                [&mut tensor.exp_avg, &mut tensor.exp_avg_sq, &mut []],
            ),
        );
    }
    assert!(alone == want[6], "{} update alone", T::NAME);
}

#[test]
fn equals_the_documented_order_on_any_thread_count() {
    let _turn = GLOBALS.lock().unwrap_or_else(|e| e.into_inner());
    let before = pool::num_threads();
    for rule in [
        Lamb::default(),
        Lamb {
            lr: 0.1,
            weight_decay: 0.0,
            maximize: true,
            ..Lamb::default()
        },
    ] {
        check::<f32>(rule);
        check::<f64>(rule);
    }
    pool::set_num_threads(before).unwrap();
}

#[test]
fn trust_ratio_is_one_when_a_norm_is_zero() {
    let rule = Lamb {
        lr: 0.5,
        weight_decay: 0.0,
        ..Lamb::default()
    };
    // A zero param moves by -lr * u; on the first step u = g / (|g| + eps).
    let (mut x, mut m, mut v) = ([0.0f64; 2], [0.0; 2], [0.0; 2]);
    let g = [2.0, -0.5];
    rule.update(
        &rule.scalars(1, &mut [], &[]),
        TensorMut::new(&mut x, &g, [&mut m, &mut v, &mut []]),
    );
    assert_eq!(
        x,
        [-0.5 * (2.0 / (2.0 + 1e-6)), -0.5 * (-0.5 / (0.5 + 1e-6))]
    );
    // A zero gradient (and no decay) leaves the param where it is.
    let (mut x, mut m, mut v) = ([3.0f32; 4], [0.0; 4], [0.0; 4]);
    rule.update(
        &rule.scalars(1, &mut [], &[]),
        TensorMut::new(&mut x, &[0.0; 4], [&mut m, &mut v, &mut []]),
    );
    assert_eq!(x, [3.0; 4]);
}

#[test]
fn nan_in_one_element_makes_its_whole_tensor_nan() {
    let rule = Lamb::default();
    let (mut x, mut m, mut v) = ([1.0f64; 5], [0.0; 5], [0.0; 5]);
    rule.update(
        &rule.scalars(1, &mut [], &[]),
        TensorMut::new(
            &mut x,
            &[1.0, f64::NAN, 1.0, 1.0, 1.0],
            [&mut m, &mut v, &mut []],
        ),
    );
    assert!(x.iter().all(|x| x.is_nan()), "{x:?}");
}
