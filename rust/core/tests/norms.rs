//! The total norm is bit-identical across thread counts and SIMD levels and equals a plain
//! scalar transcription of its documented summation order; clipping scales as torch does.

use optrs_core::norms::{
    clip_coef, clip_grad_norm, total_norm, Grad, GradMut, NormType, Precision, BLOCK, LANES,
};
use optrs_core::simd::{self, Level};
use optrs_core::{pool, Float};
use proptest::prelude::*;
use std::sync::Mutex;

/// SIMD level and pool size are process-wide: tests that change them take turns.
static GLOBALS: Mutex<()> = Mutex::new(());

/// A fixed pseudo-random sequence in [-scale, scale).
fn values<T: Float>(n: usize, seed: u64, scale: f64) -> Vec<T> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            T::from_f64(((x >> 11) as f64 / (1u64 << 52) as f64 - 1.0) * scale)
        })
        .collect()
}

/// The documented order, written as plainly as possible: blocks of BLOCK elements, LANES lanes
/// per block combined pairwise, block results added in order.
fn reference<T: Float>(tensors: &[Vec<T>], p: f64) -> f64 {
    let mut total = 0.0;
    let mut max = 0.0f64;
    for tensor in tensors {
        for block in tensor.chunks(BLOCK) {
            let mut lanes = [0.0f64; LANES];
            for (i, x) in block.iter().enumerate() {
                let a = x.to_f64().abs();
                if a.is_nan() || max.is_nan() {
                    max = f64::NAN;
                } else if a > max {
                    max = a;
                }
                lanes[i % LANES] += if p == 2.0 { a * a } else { a.powf(p) };
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
    }
    match p {
        f64::INFINITY => max,
        1.0 => total,
        2.0 => total.sqrt(),
        _ => total.powf(1.0 / p),
    }
}

fn levels() -> Vec<Level> {
    [Level::Baseline, Level::Avx2, Level::Avx512]
        .into_iter()
        .filter(|&l| simd::force(Some(l)).is_ok())
        .collect()
}

/// The norm's bits at every SIMD level and thread count; panics unless they all agree.
fn norm_everywhere(grads: &[Grad<'_>], norm: NormType) -> u64 {
    let _guard = GLOBALS.lock().unwrap_or_else(|e| e.into_inner());
    let threads = pool::num_threads();
    let mut seen = Vec::new();
    for level in levels() {
        simd::force(Some(level)).unwrap();
        for n in [1, 2, 3, 8] {
            pool::set_num_threads(n).unwrap();
            seen.push((level, n, total_norm(grads, norm).to_bits()));
        }
    }
    simd::force(None).unwrap();
    pool::set_num_threads(threads).unwrap();
    let first = seen[0].2;
    for &(level, n, bits) in &seen {
        assert_eq!(
            bits,
            first,
            "{} on {n} threads: {} vs {}",
            level.name(),
            f64::from_bits(bits),
            f64::from_bits(first)
        );
    }
    first
}

#[test]
fn large_mixed_norms_are_deterministic_and_follow_the_order() {
    let lens = [3 * BLOCK + 5, 100_000, 17, 0, 1 << 20];
    let f32s: Vec<Vec<f32>> = lens.iter().map(|&n| values(n, n as u64 + 1, 3.0)).collect();
    let f64s: Vec<Vec<f64>> = lens.iter().map(|&n| values(n, n as u64 + 7, 3.0)).collect();
    for p in [1.0, 2.0, 3.5, f64::INFINITY] {
        let norm = NormType::new(p).unwrap();
        let grads: Vec<Grad<'_>> = f32s.iter().map(|v| Grad::F32(v)).collect();
        assert_eq!(norm_everywhere(&grads, norm), reference(&f32s, p).to_bits());
        let grads: Vec<Grad<'_>> = f64s.iter().map(|v| Grad::F64(v)).collect();
        assert_eq!(norm_everywhere(&grads, norm), reference(&f64s, p).to_bits());
        // Mixed: as if the float32 tensors were float64 (the conversion is exact).
        let mixed: Vec<Grad<'_>> = f32s
            .iter()
            .map(|v| Grad::F32(v))
            .chain(f64s.iter().map(|v| Grad::F64(v)))
            .collect();
        let bits = norm_everywhere(&mixed, norm);
        let widened: Vec<Vec<f64>> = f32s
            .iter()
            .map(|v| v.iter().map(|&x| x as f64).collect())
            .chain(f64s.iter().cloned())
            .collect();
        let want = reference(&widened, p);
        assert_eq!(f64::from_bits(bits), want, "p={p}");
    }
}

#[test]
fn scaling_is_deterministic() {
    let _guard = GLOBALS.lock().unwrap_or_else(|e| e.into_inner());
    let threads = pool::num_threads();
    let original: Vec<Vec<f32>> = [1 << 20, 4096, 3]
        .iter()
        .map(|&n| values(n, n as u64, 10.0))
        .collect();
    let mut results = Vec::new();
    for level in levels() {
        simd::force(Some(level)).unwrap();
        for n in [1, 3] {
            pool::set_num_threads(n).unwrap();
            let mut grads = original.clone();
            let norm = clip_grad_norm(
                grads.iter_mut().map(|g| GradMut::F32(g)).collect(),
                1.0,
                NormType::new(2.0).unwrap(),
                false,
            )
            .unwrap();
            results.push((norm.to_bits(), grads));
        }
    }
    simd::force(None).unwrap();
    pool::set_num_threads(threads).unwrap();
    let (norm, grads) = &results[0];
    let coef = clip_coef(1.0, f64::from_bits(*norm), Precision::F32) as f32;
    for (g, o) in grads.iter().zip(&original) {
        assert!(g
            .iter()
            .zip(o)
            .all(|(g, o)| g.to_bits() == (o * coef).to_bits()));
    }
    assert!(results.iter().all(|r| r == &results[0]));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn any_split_gives_the_reference(
        lens in prop::collection::vec(0usize..150_000, 0..5),
        seed in any::<u64>(),
        p in prop::sample::select(vec![1.0, 2.0, 3.5, 0.5, f64::INFINITY]),
    ) {
        let tensors: Vec<Vec<f32>> = lens
            .iter()
            .enumerate()
            .map(|(i, &n)| values(n, seed.wrapping_add(i as u64), 100.0))
            .collect();
        let grads: Vec<Grad<'_>> = tensors.iter().map(|v| Grad::F32(v)).collect();
        let bits = norm_everywhere(&grads, NormType::new(p).unwrap());
        prop_assert_eq!(bits, reference(&tensors, p).to_bits());
    }
}
