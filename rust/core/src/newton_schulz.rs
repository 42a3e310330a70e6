//! torch's `_zeropower_via_newtonschulz` (the orthogonalisation at the heart of Muon), in float32.
//!
//! torch runs it in bfloat16; optrs runs it in float32, which is what torch computes when its
//! Newton-Schulz is patched to float32 (the reference files are made that way). The matrix
//! products are the `gemm` crate's, chosen by benchmark over `matrixmultiply` and `faer` on
//! Muon's shapes (8x12, 256x256, 1024x4096): all three run near 100 GFLOP/s per core here (faer
//! a few percent faster, matrixmultiply a few percent slower on big matrices), and `gemm` splits
//! its products on rayon, so on optrs's pool, with few dependencies. `cargo bench -p optrs-core
//! --bench newton_schulz` times this file.
//!
//! Determinism: the products ([`crate::matmul`]) do not depend on the thread count (tested bit
//! for bit), though they do on the CPU (fused multiply-add, cache blocking); the Frobenius norm is
//! summed in float64 in a fixed order.

use crate::matmul::{matmul, Layout, Parallelism};

/// torch's defaults (Keller Jordan's coefficients).
pub const DEFAULT_COEFFICIENTS: [f64; 3] = [3.4445, -4.7750, 2.0315];
pub const DEFAULT_STEPS: usize = 5;
pub const DEFAULT_EPS: f64 = 1e-7;

/// torch's bound: `ns_steps` must be below it.
pub const MAX_STEPS: usize = 100;

/// The iteration's options, in the precision it runs in.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NewtonSchulz {
    /// `(a, b, c)`: each step maps `X` to `a X + (b A + c A A) X` with `A = X X^T`.
    pub coefficients: [f32; 3],
    pub steps: usize,
    /// The Frobenius norm `X` is divided by is at least this.
    pub eps: f32,
}

impl Default for NewtonSchulz {
    fn default() -> Self {
        let [a, b, c] = DEFAULT_COEFFICIENTS;
        NewtonSchulz {
            coefficients: [a as f32, b as f32, c as f32],
            steps: DEFAULT_STEPS,
            eps: DEFAULT_EPS as f32,
        }
    }
}

/// `torch.linalg.norm` of the whole slice, summed in float64 (where squares of float32 values are
/// exact) over eight fixed lanes, combined in a fixed tree, then rounded to float32.
pub fn frobenius_norm(x: &[f32]) -> f32 {
    const LANES: usize = 8;
    let mut lanes = [0.0f64; LANES];
    let chunks = x.chunks_exact(LANES);
    let tail = chunks.remainder();
    for chunk in chunks {
        for (lane, &v) in lanes.iter_mut().zip(chunk) {
            *lane += f64::from(v) * f64::from(v);
        }
    }
    for (lane, &v) in lanes.iter_mut().zip(tail) {
        *lane += f64::from(v) * f64::from(v);
    }
    let [a, b, c, d, e, f, g, h] = lanes;
    (((a + b) + (c + d)) + ((e + f) + (g + h))).sqrt() as f32
}

/// Replaces the row-major `rows x cols` matrix `x` by torch's Newton-Schulz orthogonalisation of
/// it: divided by its Frobenius norm (at least `eps`), then `steps` quintic iterations, run on the
/// transpose when `rows > cols` so that the Gram matrix is the smaller one.
///
/// `parallel`: let each product use the threads of the rayon pool this runs in (the result is the
/// same either way).
pub fn orthogonalize(
    x: &mut [f32],
    rows: usize,
    cols: usize,
    options: &NewtonSchulz,
    parallel: bool,
) {
    assert_eq!(
        x.len(),
        rows * cols,
        "matrix length differs from rows * cols"
    );
    if x.is_empty() {
        return;
    }
    let norm = frobenius_norm(x);
    // `clamp(min=eps)`, which keeps a NaN norm NaN.
    let denom = if norm < options.eps {
        options.eps
    } else {
        norm
    };
    x.iter_mut().for_each(|v| *v /= denom);
    if options.steps == 0 {
        return;
    }
    let stored = Layout::row_major(rows, cols);
    // The iterated matrix, `m x n` with `m <= n`: `x` itself or its transpose, in place.
    let wide = if rows > cols {
        stored.transposed()
    } else {
        stored
    };
    let m = wide.rows;
    let square = Layout::row_major(m, m);
    let parallelism = if parallel {
        Parallelism::Rayon(0)
    } else {
        Parallelism::None
    };
    let [a, b, c] = options.coefficients;
    let mut gram = vec![0.0f32; m * m];
    let mut gram_update = vec![0.0f32; m * m];
    let mut next = vec![0.0f32; x.len()];
    let mut current: &mut [f32] = x;
    let mut spare: &mut [f32] = &mut next;
    for _ in 0..options.steps {
        // gram = X X^T
        matmul(
            &mut gram,
            square,
            false,
            0.0,
            (current, wide),
            (current, wide.transposed()),
            1.0,
            parallelism,
        );
        // gram_update = b gram + c gram gram (torch.addmm(gram, gram, gram, beta=b, alpha=c))
        gram_update.copy_from_slice(&gram);
        matmul(
            &mut gram_update,
            square,
            true,
            b,
            (&gram, square),
            (&gram, square),
            c,
            parallelism,
        );
        // X = a X + gram_update X (torch.addmm(X, gram_update, X, beta=a)), into the spare buffer
        spare.copy_from_slice(current);
        matmul(
            spare,
            wide,
            true,
            a,
            (&gram_update, square),
            (current, wide),
            1.0,
            parallelism,
        );
        std::mem::swap(&mut current, &mut spare);
    }
    if options.steps % 2 == 1 {
        // After an odd number of swaps the result is in `next` and `spare` is `x`.
        spare.copy_from_slice(current);
    }
}
