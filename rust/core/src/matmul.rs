//! Strided matrix products on the `gemm` crate, shared by Newton-Schulz and the convolutions.
//!
//! `gemm` is built with its `x86-v4` feature: AVX-512 micro-kernels, chosen at run time when the
//! CPU has AVX-512 (the AVX2/FMA ones otherwise, so the wheel still runs on any x86-64). Without
//! it `gemm` runs AVX2 kernels everywhere, which on an AVX-512 Intel Xeon (KVM, 1 thread, fp32)
//! capped it at the AVX2 peak, 96-100 GFLOP/s on the seed CNN's per-sample products (64 x 288 x
//! 576) and on 512^3, where NumPy's OpenBLAS ran 131-152; with it, 149-171 GFLOP/s, ahead of
//! OpenBLAS (issue 13; `python benches/bench_gemm.py --threads 1`). It splits a
//! product across the threads of the rayon pool it runs in, so on optrs's pool.
//!
//! Determinism: `gemm` splits a product across threads by output tiles only; each output element
//! is summed over the inner dimension in the same order whatever the thread count or
//! [`Parallelism`] (its depth blocking depends on the shape and the CPU's cache sizes, never on the
//! threads), so results do not depend on the thread count (tested bit for bit). They do depend on
//! the CPU: the kernels use fused multiply-add where the CPU has it, and blocking follows the
//! cache sizes.

use crate::{pool, Float};
pub use gemm::Parallelism;
use rayon::prelude::*;

/// Where element `(i, j)` of a `rows x cols` matrix lies in its slice: `i * row_stride + j *
/// col_stride`.
#[derive(Clone, Copy, Debug)]
pub struct Layout {
    pub rows: usize,
    pub cols: usize,
    pub row_stride: usize,
    pub col_stride: usize,
}

impl Layout {
    pub fn row_major(rows: usize, cols: usize) -> Self {
        Layout {
            rows,
            cols,
            row_stride: cols,
            col_stride: 1,
        }
    }

    /// The same elements read as the transposed matrix.
    pub fn transposed(self) -> Self {
        Layout {
            rows: self.cols,
            cols: self.rows,
            row_stride: self.col_stride,
            col_stride: self.row_stride,
        }
    }

    /// How many elements a slice must hold.
    fn span(self) -> usize {
        if self.rows == 0 || self.cols == 0 {
            0
        } else {
            (self.rows - 1) * self.row_stride + (self.cols - 1) * self.col_stride + 1
        }
    }
}

/// `dst = alpha * dst + beta * lhs @ rhs`, or `dst = beta * lhs @ rhs` when `read_dst` is false.
#[allow(clippy::too_many_arguments)]
pub fn matmul<T: Float>(
    dst: &mut [T],
    dst_layout: Layout,
    read_dst: bool,
    alpha: T,
    (lhs, lhs_layout): (&[T], Layout),
    (rhs, rhs_layout): (&[T], Layout),
    beta: T,
    parallelism: Parallelism,
) {
    let (m, n, k) = (dst_layout.rows, dst_layout.cols, lhs_layout.cols);
    assert!(lhs_layout.rows == m && rhs_layout.rows == k && rhs_layout.cols == n);
    assert!(dst.len() >= dst_layout.span());
    assert!(lhs.len() >= lhs_layout.span() && rhs.len() >= rhs_layout.span());
    let stride = |s: usize| s as isize;
    // SAFETY: the asserts above keep every element `gemm` addresses, `(i, j) -> i * row_stride +
    // j * col_stride` for `i < rows` and `j < cols` of each layout, inside its slice. `dst` is a
    // unique borrow, so it overlaps neither operand. Strides fit `isize` because the slices'
    // spans do. No conjugation is asked for, which is all `gemm` requires of real matrices.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            stride(dst_layout.col_stride),
            stride(dst_layout.row_stride),
            read_dst,
            lhs.as_ptr(),
            stride(lhs_layout.col_stride),
            stride(lhs_layout.row_stride),
            rhs.as_ptr(),
            stride(rhs_layout.col_stride),
            stride(rhs_layout.row_stride),
            alpha,
            beta,
            false,
            false,
            false,
            parallelism,
        )
    }
}

/// Below this many multiply-adds a product runs on the calling thread.
const PARALLEL_MIN: usize = 1 << 16;

/// Products with at most this many outputs and at least [`SPLIT_INNER_MIN`] inner elements have
/// their inner dimension cut into pieces of about [`SPLIT_PIECE`] (see [`inner_pieces`]).
const SPLIT_OUT_MAX: usize = 1 << 14;
const SPLIT_INNER_MIN: usize = 1 << 12;
const SPLIT_PIECE: usize = 1 << 11;
const SPLIT_PIECES_MAX: usize = 8;

/// How many pieces the inner dimension of an `m x k` by `k x n` product is cut into: 1, or for a
/// small output over a long inner dimension (a linear layer's forward on a batch: 64 x 128 from
/// 9,216) a few. `gemm` shares a product among threads by output tiles, and such an output has
/// too few: one thread did all of it (1.87 ms on 2 threads vs 1.77 on 1, Intel Xeon KVM). The
/// pieces depend on the shape alone, so the result does not depend on the thread count.
fn inner_pieces(m: usize, n: usize, k: usize) -> usize {
    if m.saturating_mul(n) <= SPLIT_OUT_MAX && k >= SPLIT_INNER_MIN {
        (k / SPLIT_PIECE).clamp(2, SPLIT_PIECES_MAX)
    } else {
        1
    }
}

/// `out = lhs @ rhs` into the row-major `out` (`lhs.rows x rhs.cols`), split across the pool's
/// threads when it is big enough. Thread-count independent, as [`matmul`].
pub fn product<T: Float>(out: &mut [T], lhs: (&[T], Layout), rhs: (&[T], Layout)) {
    let layout = Layout::row_major(lhs.1.rows, rhs.1.cols);
    assert_eq!(out.len(), layout.rows * layout.cols);
    if out.is_empty() {
        return;
    }
    if lhs.1.cols == 0 {
        out.fill(T::ZERO);
        return;
    }
    let pieces = inner_pieces(layout.rows, layout.cols, lhs.1.cols);
    if pieces > 1 {
        return split_inner(out, layout, lhs, rhs, pieces);
    }
    let threads = pool::num_threads();
    let work = out.len().saturating_mul(lhs.1.cols);
    if threads == 1 || work < PARALLEL_MIN {
        return matmul(
            out,
            layout,
            false,
            T::ZERO,
            lhs,
            rhs,
            T::ONE,
            Parallelism::None,
        );
    }
    pool::current().install(|| {
        let parallelism = Parallelism::Rayon(threads);
        matmul(out, layout, false, T::ZERO, lhs, rhs, T::ONE, parallelism)
    })
}

/// [`product`] as `pieces` products over consecutive runs of the inner dimension, computed in
/// parallel and added in order: `out = P0 + P1 + ...`.
fn split_inner<T: Float>(
    out: &mut [T],
    layout: Layout,
    (lhs, lhs_layout): (&[T], Layout),
    (rhs, rhs_layout): (&[T], Layout),
    pieces: usize,
) {
    let k = lhs_layout.cols;
    let len = out.len();
    let mut partials = vec![T::ZERO; (pieces - 1) * len];
    let piece = |p: usize, dst: &mut [T]| {
        let (start, end) = (p * k / pieces, (p + 1) * k / pieces);
        let lhs_part = Layout {
            cols: end - start,
            ..lhs_layout
        };
        let rhs_part = Layout {
            rows: end - start,
            ..rhs_layout
        };
        matmul(
            dst,
            layout,
            false,
            T::ZERO,
            (&lhs[start * lhs_layout.col_stride..], lhs_part),
            (&rhs[start * rhs_layout.row_stride..], rhs_part),
            T::ONE,
            Parallelism::None,
        );
    };
    let slots = std::iter::once(&mut *out).chain(partials.chunks_exact_mut(len));
    let work: Vec<(usize, &mut [T])> = slots.enumerate().collect();
    if pool::num_threads() == 1 {
        work.into_iter().for_each(|(p, dst)| piece(p, dst));
    } else {
        pool::current().install(|| work.into_par_iter().for_each(|(p, dst)| piece(p, dst)));
    }
    for partial in partials.chunks_exact(len) {
        for (o, &v) in out.iter_mut().zip(partial) {
            *o = *o + v;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_inner_dimension_is_cut_by_shape_alone() {
        assert_eq!(inner_pieces(64, 128, 9216), 4);
        assert_eq!(inner_pieces(64, 128, 4095), 1);
        assert_eq!(inner_pieces(128, 256, 9216), 1);
        assert_eq!(inner_pieces(1, 1, 1 << 20), SPLIT_PIECES_MAX);
        let (m, k, n) = (3, 5000, 2);
        let a: Vec<f64> = (0..m * k).map(|i| (i as f64 * 0.37).sin()).collect();
        let b: Vec<f64> = (0..k * n).map(|i| (i as f64 * 0.91).cos()).collect();
        let b_t: Vec<f64> = (0..n * k).map(|i| b[(i % k) * n + i / k]).collect();
        for rhs in [
            (&b[..], Layout::row_major(k, n)),
            (&b_t[..], Layout::row_major(n, k).transposed()),
        ] {
            let mut out = vec![f64::NAN; m * n];
            product(&mut out, (&a, Layout::row_major(m, k)), rhs);
            for (ij, o) in out.iter().enumerate() {
                let e: f64 = (0..k).map(|p| a[ij / n * k + p] * b[p * n + ij % n]).sum();
                assert!((o - e).abs() < 1e-9, "{o} vs {e}");
            }
        }
    }

    #[test]
    fn product_matches_a_direct_loop_in_every_orientation() {
        let (m, k, n) = (5, 7, 3);
        let a: Vec<f64> = (0..m * k).map(|i| (i as f64 * 0.37).sin()).collect();
        let b: Vec<f64> = (0..k * n).map(|i| (i as f64 * 0.91).cos()).collect();
        let expected: Vec<f64> = (0..m * n)
            .map(|ij| (0..k).map(|p| a[ij / n * k + p] * b[p * n + ij % n]).sum())
            .collect();
        // The same products read through transposed storage.
        let a_t: Vec<f64> = (0..k * m).map(|i| a[(i % m) * k + i / m]).collect();
        let b_t: Vec<f64> = (0..n * k).map(|i| b[(i % k) * n + i / k]).collect();
        let cases = [
            (&a, Layout::row_major(m, k), &b, Layout::row_major(k, n)),
            (
                &a_t,
                Layout::row_major(k, m).transposed(),
                &b,
                Layout::row_major(k, n),
            ),
            (
                &a,
                Layout::row_major(m, k),
                &b_t,
                Layout::row_major(n, k).transposed(),
            ),
        ];
        for (lhs, lhs_layout, rhs, rhs_layout) in cases {
            let mut out = vec![f64::NAN; m * n];
            product(&mut out, (lhs, lhs_layout), (rhs, rhs_layout));
            for (o, e) in out.iter().zip(&expected) {
                assert!((o - e).abs() < 1e-12, "{o} vs {e}");
            }
        }
        let mut empty_inner = vec![f64::NAN; 4];
        product(
            &mut empty_inner,
            (&[], Layout::row_major(2, 0)),
            (&[], Layout::row_major(0, 2)),
        );
        assert_eq!(empty_inner, [0.0; 4]);
    }
}
