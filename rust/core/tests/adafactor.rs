//! Adafactor against a float64 transcription of torch's `_single_tensor_adafactor`, and its steps
//! bit-identical on any number of threads and at every SIMD level.

mod common;

use common::values;
use optrs_core::pool;
use optrs_core::rules::adafactor::{step, Adafactor, SecondMoment, Tensor, Work};
use optrs_core::simd::{self, Level};
use std::sync::Mutex;

/// The pool size and SIMD level are process-wide: tests that change them take turns.
static GLOBALS: Mutex<()> = Mutex::new(());

/// One param with its state, in either precision.
#[derive(Clone)]
struct Param<T> {
    shape: Vec<usize>,
    data: Vec<T>,
    /// `row_var` and `col_var` when factored, else `variance` (and an empty second).
    state: (Vec<T>, Vec<T>),
    steps: u64,
}

impl<T: optrs_core::Float> Param<T> {
    fn new(shape: &[usize], seed: u64) -> Self {
        let len = shape.iter().product();
        let data = values(len, seed).into_iter().map(T::from_f64).collect();
        let state = match shape {
            [.., rows, cols] => {
                let batches = len / (rows * cols);
                (vec![T::ZERO; batches * rows], vec![T::ZERO; batches * cols])
            }
            _ => (vec![T::ZERO; len], Vec::new()),
        };
        Param {
            shape: shape.to_vec(),
            data,
            state,
            steps: 0,
        }
    }

    fn tensor<'a>(&'a mut self, grad: &'a [T]) -> Tensor<'a, T> {
        self.steps += 1;
        let moment = match self.shape[..] {
            [.., rows, cols] => SecondMoment::Factored {
                row_var: &mut self.state.0,
                col_var: &mut self.state.1,
                rows,
                cols,
            },
            _ => SecondMoment::Unfactored {
                variance: &mut self.state.0,
            },
        };
        Tensor::new(&mut self.data, grad, moment, self.steps)
    }
}

/// torch's single-tensor step, transcribed in float64 with plain loops.
fn reference_step(rule: &Adafactor, p: &mut Param<f64>, grad: &[f64]) {
    p.steps += 1;
    let step = p.steps as f64;
    let len = p.data.len() as f64;
    let eps1 = rule.eps1.unwrap_or(f64::EPSILON);
    let grad: Vec<f64> = grad
        .iter()
        .map(|&g| if rule.maximize { -g } else { g })
        .collect();
    let weight = step.powf(rule.beta2_decay);
    let rho = rule.lr.min(1.0 / step.sqrt());
    let rms = (p.data.iter().map(|x| x * x).sum::<f64>()).sqrt() / len.sqrt();
    let alpha = rule.eps2.max(rms) * rho;
    p.data
        .iter_mut()
        .for_each(|x| *x *= 1.0 - rule.lr * rule.weight_decay);
    let lerp = |a: f64, b: f64| a + weight * (b - a);
    let variance: Vec<f64> = match p.shape[..] {
        [.., rows, cols] => {
            let (row_var, col_var) = (&mut p.state.0, &mut p.state.1);
            let mut var = vec![0.0; grad.len()];
            for b in 0..grad.len() / (rows * cols) {
                let g = |i: usize, j: usize| grad[(b * rows + i) * cols + j];
                for i in 0..rows {
                    let mean = (0..cols).map(|j| g(i, j) * g(i, j)).sum::<f64>() / cols as f64;
                    row_var[b * rows + i] = lerp(row_var[b * rows + i], mean);
                }
                for j in 0..cols {
                    let mean = (0..rows).map(|i| g(i, j) * g(i, j)).sum::<f64>() / rows as f64;
                    col_var[b * cols + j] = lerp(col_var[b * cols + j], mean);
                }
                let rows_of = &row_var[b * rows..][..rows];
                let mean = (rows_of.iter().sum::<f64>() / rows as f64).max(eps1);
                for i in 0..rows {
                    for j in 0..cols {
                        var[(b * rows + i) * cols + j] = rows_of[i] * col_var[b * cols + j] / mean;
                    }
                }
            }
            var
        }
        _ => {
            for (v, g) in p.state.0.iter_mut().zip(&grad) {
                *v = lerp(*v, g * g);
            }
            p.state.0.clone()
        }
    };
    let update: Vec<f64> = variance
        .iter()
        .zip(&grad)
        .map(|(v, g)| g / v.max(eps1 * eps1).sqrt())
        .collect();
    let update_rms = update.iter().map(|u| u * u).sum::<f64>().sqrt() / len.sqrt();
    let denom = (update_rms / rule.d).max(1.0);
    for (x, u) in p.data.iter_mut().zip(&update) {
        *x -= alpha / denom * u;
    }
}

const SHAPES: [&[usize]; 8] = [
    &[5, 7],
    &[13],
    &[],
    &[2, 3, 4],
    &[1, 9],
    &[9, 1],
    &[2, 1, 3, 5],
    &[40, 3],
];

fn rules() -> Vec<Adafactor> {
    vec![
        Adafactor::default(),
        Adafactor {
            lr: 0.05,
            weight_decay: 0.1,
            maximize: true,
            ..Adafactor::default()
        },
        Adafactor {
            lr: 1.0,
            eps1: Some(1e-4),
            eps2: 1e-2,
            d: 1.5,
            beta2_decay: -0.5,
            ..Adafactor::default()
        },
        Adafactor {
            beta2_decay: 0.0,
            d: 4.0,
            ..Adafactor::default()
        },
    ]
}

#[test]
fn matches_a_float64_transcription_of_torchs() {
    for (r, rule) in rules().into_iter().enumerate() {
        rule.validate().unwrap();
        for (s, shape) in SHAPES.iter().enumerate() {
            let seed = (10 * r + s) as u64;
            let mut ours = Param::<f64>::new(shape, seed);
            let mut theirs = ours.clone();
            for t in 0..12 {
                let grad: Vec<f64> = values(ours.data.len(), 1000 + seed * 20 + t)
                    .iter()
                    .map(|g| g * (1 + t % 3) as f64)
                    .collect();
                rule.update_tensor(ours.tensor(&grad), false);
                reference_step(&rule, &mut theirs, &grad);
            }
            for (a, b) in ours.data.iter().zip(&theirs.data) {
                assert!(
                    (a - b).abs() <= 1e-12 * b.abs().max(1.0),
                    "rule {r}, shape {shape:?}: {a} vs {b}"
                );
            }
        }
    }
}

#[test]
fn torchs_corner_cases() {
    // A zero param takes a step of `eps2 * rho`, clipped to an update RMS of `d`.
    let rule = Adafactor::default();
    let mut p = Param::<f64>::new(&[4], 0);
    p.data.fill(0.0);
    let grad = [1.0, -1.0, 2.0, 0.0];
    rule.update_tensor(p.tensor(&grad), false);
    // Step 1: the variance is grad^2, so the update is sign(grad) (0 for the zero grad), RMS
    // sqrt(3/4) < 1: no clipping; alpha = 1e-3 * min(1e-2, 1).
    assert_eq!(p.data, [-1e-5, 1e-5, -1e-5, 0.0]);
    // NaN in a grad spreads through the update's RMS to the whole tensor, as in torch.
    let mut p = Param::<f32>::new(&[3, 4], 1);
    let mut grad = vec![0.5f32; 12];
    grad[5] = f32::NAN;
    rule.update_tensor(p.tensor(&grad), false);
    assert!(p.data.iter().all(|x| x.is_nan()));
}

/// Changes one option of a rule.
type Spoil = fn(&mut Adafactor);

#[test]
fn bad_hyperparameters_are_rejected() {
    let bad: [(&str, Spoil); 9] = [
        ("lr", |r| r.lr = -1.0),
        ("lr", |r| r.lr = f64::INFINITY),
        ("beta2_decay", |r| r.beta2_decay = 0.1),
        ("beta2_decay", |r| r.beta2_decay = f64::NAN),
        ("eps[0]", |r| r.eps1 = Some(-1e-3)),
        ("eps[1]", |r| r.eps2 = f64::NAN),
        ("d", |r| r.d = 0.5),
        ("d", |r| r.d = f64::INFINITY),
        ("weight_decay", |r| r.weight_decay = -0.1),
    ];
    for (name, spoil) in bad {
        let mut rule = Adafactor::default();
        spoil(&mut rule);
        assert_eq!(rule.validate().unwrap_err().name, name);
    }
}

/// Big enough that every tensor is cut into blocks and the step runs on the pool.
fn determinism_step(threads: usize, level: Option<Level>) -> Vec<Vec<u64>> {
    pool::set_num_threads(threads).unwrap();
    simd::force(level).unwrap();
    let rule = Adafactor {
        weight_decay: 0.01,
        ..Adafactor::default()
    };
    let mut small = [
        Param::<f32>::new(&[700, 600], 1),
        Param::<f32>::new(&[3, 300, 500], 2),
        Param::<f32>::new(&[200_001], 3),
        Param::<f32>::new(&[70_000, 3], 4),
        Param::<f32>::new(&[2, 100_000], 5),
    ];
    let mut wide = [
        Param::<f64>::new(&[333, 401], 6),
        Param::<f64>::new(&[99_999], 7),
    ];
    for t in 0..3 {
        let grads32: Vec<Vec<f32>> = small
            .iter()
            .enumerate()
            .map(|(i, p)| {
                values(p.data.len(), 100 * t + i as u64)
                    .into_iter()
                    .map(|x| x as f32)
                    .collect()
            })
            .collect();
        let grads64: Vec<Vec<f64>> = wide
            .iter()
            .enumerate()
            .map(|(i, p)| values(p.data.len(), 100 * t + 50 + i as u64))
            .collect();
        let mut work: Vec<Work<'_>> = Vec::new();
        for (p, g) in small.iter_mut().zip(&grads32) {
            work.push(Work::F32(rule, p.tensor(g)));
        }
        for (p, g) in wide.iter_mut().zip(&grads64) {
            work.push(Work::F64(rule, p.tensor(g)));
        }
        step(work);
    }
    simd::force(None).unwrap();
    let bits32 = small.iter().flat_map(|p| {
        [&p.data, &p.state.0, &p.state.1]
            .map(|v| v.iter().map(|x| u64::from(x.to_bits())).collect())
    });
    let bits64 = wide.iter().flat_map(|p| {
        [&p.data, &p.state.0, &p.state.1].map(|v| v.iter().map(|x| x.to_bits()).collect())
    });
    bits32.chain(bits64).collect()
}

#[test]
fn thread_count_and_simd_level_change_no_bit() {
    let _guard = GLOBALS.lock().unwrap_or_else(|e| e.into_inner());
    let before = pool::num_threads();
    let one = determinism_step(1, Some(Level::Baseline));
    for (threads, level) in [(1, None), (2, None), (3, None), (2, Some(Level::Baseline))] {
        assert!(
            determinism_step(threads, level) == one,
            "{threads} threads at {level:?} differ from 1 thread at baseline"
        );
    }
    pool::set_num_threads(before).unwrap();
}
