//! Muon's Newton-Schulz against a float64 transcription of torch's, and its step bit-identical on
//! any number of threads.

mod common;

use common::values;
use optrs_core::newton_schulz::{frobenius_norm, orthogonalize, NewtonSchulz};
use optrs_core::pool;
use optrs_core::rules::muon::{step, AdjustLr, Matrix, Muon, Work};
use std::sync::Mutex;

/// The pool size is process-wide: tests that change it take turns.
static POOL: Mutex<()> = Mutex::new(());

/// `a (r x k) @ b (k x c)`, row-major, in float64.
fn matmul(a: &[f64], b: &[f64], r: usize, k: usize, c: usize) -> Vec<f64> {
    let mut out = vec![0.0; r * c];
    for i in 0..r {
        for j in 0..c {
            out[i * c + j] = (0..k).map(|l| a[i * k + l] * b[l * c + j]).sum();
        }
    }
    out
}

fn transpose(a: &[f64], r: usize, c: usize) -> Vec<f64> {
    (0..c * r).map(|idx| a[(idx % r) * c + idx / r]).collect()
}

/// torch's `_zeropower_via_newtonschulz`, transcribed in float64.
fn reference(x: &[f64], rows: usize, cols: usize, options: &NewtonSchulz) -> Vec<f64> {
    let [a, b, c] = options.coefficients.map(f64::from);
    let tall = rows > cols;
    let (m, n) = if tall { (cols, rows) } else { (rows, cols) };
    let mut y = if tall {
        transpose(x, rows, cols)
    } else {
        x.to_vec()
    };
    let norm = y.iter().map(|v| v * v).sum::<f64>().sqrt();
    let norm = norm.max(f64::from(options.eps));
    y.iter_mut().for_each(|v| *v /= norm);
    for _ in 0..options.steps {
        let gram = matmul(&y, &transpose(&y, m, n), m, n, m);
        let gram2 = matmul(&gram, &gram, m, m, m);
        let update: Vec<f64> = gram
            .iter()
            .zip(&gram2)
            .map(|(g, g2)| b * g + c * g2)
            .collect();
        let uy = matmul(&update, &y, m, m, n);
        y = y.iter().zip(&uy).map(|(v, u)| a * v + u).collect();
    }
    if tall {
        transpose(&y, m, n)
    } else {
        y
    }
}

#[test]
fn newton_schulz_matches_a_float64_transcription_of_torchs() {
    let options = NewtonSchulz::default();
    for (k, &(rows, cols)) in [(5, 7), (7, 5), (6, 6), (1, 4), (4, 1), (33, 17), (16, 80)]
        .iter()
        .enumerate()
    {
        let x = values(rows * cols, k as u64 + 1);
        let mut ours: Vec<f32> = x.iter().map(|&v| v as f32).collect();
        let exact: Vec<f64> = ours.iter().map(|&v| f64::from(v)).collect();
        orthogonalize(&mut ours, rows, cols, &options, false);
        let want = reference(&exact, rows, cols, &options);
        let scale = want.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        for (i, (&got, &want)) in ours.iter().zip(&want).enumerate() {
            assert!(
                (f64::from(got) - want).abs() <= 2e-6 * scale,
                "{rows}x{cols}: element {i} is {got}, float64 gives {want}"
            );
        }
    }
}

#[test]
fn newton_schulz_edge_cases() {
    let options = NewtonSchulz::default();
    // A zero matrix is divided by eps and stays zero.
    let mut zeros = vec![0.0f32; 12];
    orthogonalize(&mut zeros, 3, 4, &options, false);
    assert!(zeros.iter().all(|&v| v == 0.0));
    // No steps: only the normalisation.
    let mut x = vec![3.0f32, 4.0];
    orthogonalize(
        &mut x,
        1,
        2,
        &NewtonSchulz {
            steps: 0,
            ..options
        },
        false,
    );
    assert_eq!(x, [0.6, 0.8]);
    // NaN spreads, as in torch; an empty matrix is fine.
    let mut x = vec![1.0f32, f32::NAN, 2.0, 3.0];
    orthogonalize(&mut x, 2, 2, &options, false);
    assert!(x.iter().all(|v| v.is_nan()));
    orthogonalize(&mut [], 0, 5, &options, false);
}

#[test]
fn frobenius_norm_is_the_rounded_float64_norm() {
    for len in [0, 1, 7, 8, 9, 1000, 4097] {
        let x: Vec<f32> = values(len, len as u64).iter().map(|&v| v as f32).collect();
        let exact = x.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>().sqrt();
        let got = frobenius_norm(&x);
        assert!(
            (f64::from(got) - exact).abs() <= exact * 1e-7,
            "{len}: {got} vs {exact}"
        );
    }
}

#[test]
fn adjusted_lr_is_torchs() {
    let original = Muon {
        lr: 0.02,
        ..Muon::default()
    };
    assert_eq!(original.adjusted_lr(8, 12), 0.02);
    assert_eq!(original.adjusted_lr(16, 5), 0.02 * (16.0f64 / 5.0).sqrt());
    let rms = Muon {
        adjust_lr_fn: AdjustLr::MatchRmsAdamw,
        ..original
    };
    assert_eq!(rms.adjusted_lr(4, 9), 0.02 * (0.2 * 3.0));
    assert_eq!(rms.adjusted_lr(6, 6), 0.02 * (0.2 * 6.0f64.sqrt()));
    assert_eq!(AdjustLr::from_name(None), Some(AdjustLr::Original));
    assert_eq!(
        AdjustLr::from_name(Some("original")),
        Some(AdjustLr::Original)
    );
    assert_eq!(AdjustLr::from_name(Some("other")), None);
}

#[test]
fn validate_rejects_what_torch_rejects_and_nan() {
    let ok = Muon::default();
    assert!(ok.validate().is_ok());
    for (bad, name) in [
        (Muon { lr: f64::NAN, ..ok }, "lr"),
        (Muon { lr: -1.0, ..ok }, "lr"),
        (
            Muon {
                momentum: -0.1,
                ..ok
            },
            "momentum",
        ),
        (
            Muon {
                weight_decay: f64::INFINITY,
                ..ok
            },
            "weight_decay",
        ),
        (
            Muon {
                eps: f64::NAN,
                ..ok
            },
            "eps",
        ),
        (
            Muon {
                ns_coefficients: [1.0, f64::NAN, 1.0],
                ..ok
            },
            "ns_coefficients[1]",
        ),
        (
            Muon {
                ns_steps: 100,
                ..ok
            },
            "ns_steps",
        ),
    ] {
        assert_eq!(bad.validate().unwrap_err().name, name);
    }
    // torch allows momentum above 1.
    assert!(Muon {
        momentum: 1.5,
        ..ok
    }
    .validate()
    .is_ok());
}

/// Matrices big enough that the step runs on the pool and each product is split across threads,
/// plus small, tall, wide, float64 and empty ones.
const SHAPES: &[(usize, usize)] = &[(300, 200), (64, 520), (129, 129), (8, 12), (1, 7), (0, 5)];

fn run(threads: usize) -> Vec<u64> {
    pool::set_num_threads(threads).unwrap();
    let lens: Vec<usize> = SHAPES.iter().map(|&(r, c)| r * c).collect();
    let make = |seed: u64| -> Vec<Vec<f64>> {
        lens.iter()
            .enumerate()
            .map(|(i, &n)| values(n, seed + i as u64))
            .collect()
    };
    let single = |v: &Vec<Vec<f64>>| -> Vec<Vec<f32>> {
        v.iter()
            .map(|x| x.iter().map(|&v| v as f32).collect())
            .collect()
    };
    let (mut p32, mut b32) = (single(&make(10)), single(&make(20)));
    let (mut p64, mut b64) = (make(30), make(40));
    let rule = Muon {
        lr: 0.02,
        nesterov: true,
        ..Muon::default()
    };
    let plain = Muon {
        nesterov: false,
        adjust_lr_fn: AdjustLr::MatchRmsAdamw,
        ..rule
    };
    for t in 0..3 {
        let (g32, g64) = (single(&make(100 + t)), make(200 + t));
        let mut work = Vec::new();
        for (k, (p, b)) in p32.iter_mut().zip(&mut b32).enumerate() {
            let (r, c) = SHAPES[k];
            work.push(Work::F32(rule, Matrix::new(p, &g32[k], b, r, c)));
        }
        for (k, (p, b)) in p64.iter_mut().zip(&mut b64).enumerate() {
            let (r, c) = SHAPES[k];
            work.push(Work::F64(plain, Matrix::new(p, &g64[k], b, r, c)));
        }
        step(work);
    }
    let bits32 = p32
        .iter()
        .chain(&b32)
        .flatten()
        .map(|v| u64::from(v.to_bits()));
    let bits64 = p64.iter().chain(&b64).flatten().map(|v| v.to_bits());
    bits32.chain(bits64).collect()
}

#[test]
fn every_thread_count_gives_the_same_bits() {
    let _turn = POOL.lock().unwrap_or_else(|e| e.into_inner());
    let one = run(1);
    for threads in [2, 3, 4] {
        assert!(run(threads) == one, "{threads} threads differ from 1");
    }
}
