//! Strided matrix products on the `gemm` crate, shared by Newton-Schulz and the convolutions.
//!
//! `gemm` was chosen by benchmark: on Muon's shapes it runs near 100 GFLOP/s per core here, level
//! with `faer` and `matrixmultiply`, and on the convolutions' per-sample products (e.g. 64 x 576
//! x 288) it is level with NumPy's OpenBLAS and ahead of `matrixmultiply` (see `nn/conv.rs`). It
//! splits a product across the threads of the rayon pool it runs in, so on optrs's pool.
//!
//! Determinism: `gemm` splits a product across threads by output tiles only; each output element
//! is summed over the inner dimension in the same order whatever the thread count or
//! [`Parallelism`] (its depth blocking depends on the shape and the CPU's cache sizes, never on the
//! threads), so results do not depend on the thread count (tested bit for bit). They do depend on
//! the CPU: the kernels use fused multiply-add where the CPU has it, and blocking follows the
//! cache sizes.

use crate::Float;
pub use gemm::Parallelism;

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
