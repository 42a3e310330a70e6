//! The unfolding of one sample's input planes into the columns a convolution multiplies
//! (`im2col`) and its adjoint, which adds columns back into planes (`col2im`).
//!
//! Row `(c, ki, kj)` of the column matrix, in that order, holds for every output position
//! `(oh, ow)` the input element `x[c, oh * sh + ki * dh - ph, ow * sw + kj * dw - pw]`, or zero in
//! the padding. Rows of one group are consecutive, so a group's columns are a contiguous block.

use super::conv::ConvShape;
use crate::simd::{dispatch, Kernel};
use crate::Float;

/// The output positions `o` along one axis whose input position `o * stride + offset - pad`
/// lies in `0..size`, as a range `lo..hi` within `0..out`.
#[inline]
pub(super) fn valid_range(
    offset: usize,
    pad: usize,
    stride: usize,
    size: usize,
    out: usize,
) -> (usize, usize) {
    // o * stride >= pad - offset  and  o * stride < size + pad - offset
    let lo = pad.saturating_sub(offset).div_ceil(stride).min(out);
    let hi = (size + pad)
        .saturating_sub(offset)
        .div_ceil(stride)
        .clamp(lo, out);
    (lo, hi)
}

/// One row of the column matrix: for each kernel tap `(c, ki, kj)`, the input plane it reads,
/// the vertical offset `ki * dh` and the horizontal range of valid output columns.
struct Tap {
    plane: usize,
    row_offset: usize,
    col_offset: usize,
    cols: (usize, usize),
}

fn taps(shape: &ConvShape, channels: usize) -> impl Iterator<Item = Tap> + '_ {
    let [kh, kw] = shape.kernel;
    let [dh, dw] = shape.options.dilation;
    let [_, sw] = shape.options.stride;
    let [_, pw] = shape.options.padding;
    let [_, w] = shape.in_size;
    let [_, out_w] = shape.out_size;
    (0..channels * kh * kw).map(move |row| {
        let (c, ki, kj) = (row / (kh * kw), row / kw % kh, row % kw);
        let col_offset = kj * dw;
        Tap {
            plane: c,
            row_offset: ki * dh,
            col_offset,
            cols: valid_range(col_offset, pw, sw, w, out_w),
        }
    })
}

/// Writes the column matrix of one sample's input `x` (`in_channels x H x W`) into `cols`
/// (`in_channels * kH * kW` rows of `out_h * out_w`).
pub fn im2col<T: Float>(shape: &ConvShape, x: &[T], cols: &mut [T]) {
    // Compiled for the CPU's widest SIMD (a copy is a copy at any level): the rows are short
    // runs (24 elements for the seed CNN), and as calls to memcpy they made im2col a quarter of
    // the forward convolution (see `copy_run`).
    dispatch(Im2col { shape, x, cols });
}

struct Im2col<'a, T> {
    shape: &'a ConvShape,
    x: &'a [T],
    cols: &'a mut [T],
}

impl<T: Float> Kernel for Im2col<'_, T> {
    type Output = ();

    #[inline(always)]
    fn run(self) {
        let Im2col { shape, x, cols } = self;
        let [h, w] = shape.in_size;
        let [out_h, out_w] = shape.out_size;
        let [sh, sw] = shape.options.stride;
        let [ph, pw] = shape.options.padding;
        let positions = out_h * out_w;
        for (tap, row) in taps(shape, shape.in_channels).zip(cols.chunks_exact_mut(positions)) {
            let plane = &x[tap.plane * h * w..][..h * w];
            let (lo, hi) = tap.cols;
            for (oh, out_row) in row.chunks_exact_mut(out_w).enumerate() {
                let ih = (oh * sh + tap.row_offset).wrapping_sub(ph);
                if ih >= h {
                    out_row.fill(T::ZERO);
                    continue;
                }
                out_row[..lo].fill(T::ZERO);
                out_row[hi..].fill(T::ZERO);
                if lo == hi {
                    continue;
                }
                let in_row = &plane[ih * w..][..w];
                let first = lo * sw + tap.col_offset - pw;
                if sw == 1 {
                    copy_run(&mut out_row[lo..hi], &in_row[first..first + hi - lo]);
                } else {
                    for (out, &v) in out_row[lo..hi]
                        .iter_mut()
                        .zip(in_row[first..].iter().step_by(sw))
                    {
                        *out = v;
                    }
                }
            }
        }
    }
}

/// Elements per fixed-size copy in [`copy_run`]: one AVX-512 register of float32.
const RUN_CHUNK: usize = 16;

/// `dst.copy_from_slice(src)` for short runs: fixed-size chunks, which compile to vector moves,
/// and one last chunk that overlaps the one before (it rewrites the same values), instead of a
/// call to memcpy per run.
#[inline(always)]
fn copy_run<T: Copy>(dst: &mut [T], src: &[T]) {
    let n = dst.len();
    assert_eq!(src.len(), n);
    if n < RUN_CHUNK {
        return dst.copy_from_slice(src);
    }
    let mut at = 0;
    while at + RUN_CHUNK <= n {
        copy_chunk(&mut dst[at..at + RUN_CHUNK], &src[at..at + RUN_CHUNK]);
        at += RUN_CHUNK;
    }
    if at < n {
        let last = n - RUN_CHUNK;
        copy_chunk(&mut dst[last..], &src[last..]);
    }
}

#[inline(always)]
fn copy_chunk<T: Copy>(dst: &mut [T], src: &[T]) {
    let dst: &mut [T; RUN_CHUNK] = dst.try_into().expect("a chunk of RUN_CHUNK elements");
    *dst = *<&[T; RUN_CHUNK]>::try_from(src).expect("a chunk of RUN_CHUNK elements");
}

/// Adds the column matrix `cols` back into one sample's input gradient `grad_x` (`in_channels x
/// H x W`): every column element goes to the input element it was read from, in row order.
pub fn col2im<T: Float>(shape: &ConvShape, cols: &[T], grad_x: &mut [T]) {
    // Widest SIMD, as `im2col`: each element gets its adds in the same order at any level.
    dispatch(Col2im {
        shape,
        cols,
        grad_x,
    });
}

struct Col2im<'a, T> {
    shape: &'a ConvShape,
    cols: &'a [T],
    grad_x: &'a mut [T],
}

impl<T: Float> Kernel for Col2im<'_, T> {
    type Output = ();

    #[inline(always)]
    fn run(self) {
        let Col2im {
            shape,
            cols,
            grad_x,
        } = self;
        let [h, w] = shape.in_size;
        let [out_h, out_w] = shape.out_size;
        let [sh, sw] = shape.options.stride;
        let [ph, pw] = shape.options.padding;
        let positions = out_h * out_w;
        for (tap, row) in taps(shape, shape.in_channels).zip(cols.chunks_exact(positions)) {
            let plane = &mut grad_x[tap.plane * h * w..][..h * w];
            let (lo, hi) = tap.cols;
            for (oh, col_row) in row.chunks_exact(out_w).enumerate() {
                let ih = (oh * sh + tap.row_offset).wrapping_sub(ph);
                if ih >= h || lo == hi {
                    continue;
                }
                let in_row = &mut plane[ih * w..][..w];
                let first = lo * sw + tap.col_offset - pw;
                if sw == 1 {
                    for (g, &v) in in_row[first..first + hi - lo]
                        .iter_mut()
                        .zip(&col_row[lo..hi])
                    {
                        *g = *g + v;
                    }
                } else {
                    for (g, &v) in in_row[first..].iter_mut().step_by(sw).zip(&col_row[lo..hi]) {
                        *g = *g + v;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_ranges() {
        // size 5, pad 1, stride 1, kernel tap 0: output 0 reads -1 (padding), 1..6 read 0..5.
        assert_eq!(valid_range(0, 1, 1, 5, 5), (1, 5));
        assert_eq!(valid_range(2, 1, 1, 5, 5), (0, 4));
        // stride 2: outputs read o * 2 + 1 - 1 = 0, 2, 4.
        assert_eq!(valid_range(1, 1, 2, 5, 3), (0, 3));
        // a tap that only ever reads padding.
        assert_eq!(valid_range(0, 3, 1, 2, 2), (2, 2));
        let (lo, hi) = valid_range(9, 0, 1, 5, 2);
        assert_eq!(lo, hi);
    }

    #[test]
    fn copy_runs_of_every_length() {
        for n in 0..3 * RUN_CHUNK + 3 {
            let src: Vec<u32> = (0..n as u32).collect();
            let mut dst = vec![u32::MAX; n];
            copy_run(&mut dst, &src);
            assert_eq!(dst, src, "length {n}");
        }
    }
}
