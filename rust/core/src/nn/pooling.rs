//! 2-D max and average pooling (`torch.nn.functional.max_pool2d` with `return_indices=True`,
//! `avg_pool2d`) and their gradients, plane by plane, with torch's windows, padding rules and
//! output sizes (`ceil_mode` included).
//!
//! Planes (one channel of one sample) are independent and each is computed by one thread in a
//! fixed order, so the gradients' scatter-adds give the same bits on any number of threads.

use super::im2col::valid_range;
use super::size::{self, Axis, AxisError};
use super::{expect_ndim, expect_shape, for_each_items, shape_str, try_filled, NnError};
use crate::{pool, Float};
use rayon::prelude::*;
use std::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering};

/// The options of a pooling: kernel, stride, zero-or-(-inf) padding on both sides, dilation (1
/// for average pooling) and `ceil_mode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pool2d {
    pub kernel: [usize; 2],
    pub stride: [usize; 2],
    pub padding: [usize; 2],
    pub dilation: [usize; 2],
    pub ceil_mode: bool,
}

/// A checked pooling: the input's and output's sizes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolShape {
    pub batch: usize,
    pub channels: usize,
    pub in_size: [usize; 2],
    pub out_size: [usize; 2],
    pub options: Pool2d,
}

impl PoolShape {
    /// Checks the options and the input's shape `(N, C, H, W)` as torch does and computes the
    /// output size exactly, refusing sizes whose arithmetic would overflow (see [`size`]);
    /// `name` names the input in errors.
    pub fn new(name: &str, input: &[usize], options: Pool2d) -> Result<Self, NnError> {
        for (what, pair) in [
            ("kernel_size", options.kernel),
            ("stride", options.stride),
            ("dilation", options.dilation),
        ] {
            if pair.contains(&0) {
                return Err(NnError::Option(format!(
                    "{what} must be positive, got {pair:?}"
                )));
            }
        }
        if (0..2).any(|a| options.padding[a] > options.kernel[a] / 2) {
            return Err(NnError::Option(format!(
                "padding must be at most half the kernel size, got padding {:?} for \
                 kernel_size {:?}",
                options.padding, options.kernel
            )));
        }
        expect_ndim(name, input, 4, "(N, C, H, W)")?;
        let &[batch, channels, h, w] = input else {
            unreachable!()
        };
        if h == 0 || w == 0 {
            return Err(NnError::Array(format!(
                "{name} has shape {}; pooling needs non-empty planes",
                shape_str(input)
            )));
        }
        let mut out_size = [0; 2];
        for (a, out) in out_size.iter_mut().enumerate() {
            let axis = Axis {
                size: [h, w][a],
                kernel: options.kernel[a],
                stride: options.stride[a],
                padding: options.padding[a],
                dilation: options.dilation[a],
            };
            *out = axis.pool_output(options.ceil_mode).map_err(|e| match e {
                AxisError::PaddedTooLarge | AxisError::ExtentTooLarge => NnError::Option(format!(
                    "kernel_size {:?}, padding {:?} and dilation {:?} give windows over more \
                     than 2^63 - 1 elements, torch's largest size; use smaller options",
                    options.kernel, options.padding, options.dilation
                )),
                _ => NnError::Array(format!(
                    "{name} has shape {}, which pools to an empty output; use a smaller kernel, \
                     stride or dilation, or more padding",
                    shape_str(input)
                )),
            })?;
        }
        let shape = PoolShape {
            batch,
            channels,
            in_size: [h, w],
            out_size,
            options,
        };
        size::checked_count(name, input)?;
        size::checked_count("the pooled output", &shape.output_shape())?;
        Ok(shape)
    }

    /// The input's shape `(N, C, H, W)`.
    pub fn input_shape(&self) -> [usize; 4] {
        let [h, w] = self.in_size;
        [self.batch, self.channels, h, w]
    }

    /// The output's shape `(N, C, H_out, W_out)`.
    pub fn output_shape(&self) -> [usize; 4] {
        let [oh, ow] = self.out_size;
        [self.batch, self.channels, oh, ow]
    }

    pub fn check_grad_y(&self, grad_y: &[usize]) -> Result<(), NnError> {
        expect_shape("grad_y", grad_y, &self.output_shape())
    }

    fn in_plane(&self) -> usize {
        self.in_size[0] * self.in_size[1]
    }

    fn out_plane(&self) -> usize {
        self.out_size[0] * self.out_size[1]
    }

    /// The window's taps, for the parallel split only (so saturating).
    fn kernel_len(&self) -> usize {
        self.options.kernel[0].saturating_mul(self.options.kernel[1])
    }
}

/// Splits `planes` planes over the pool: `f(first_plane, y, indices)` on runs of planes of both.
fn for_each_plane_pair<A: Send, B: Send>(
    a: &mut [A],
    b: &mut [B],
    plane: usize,
    cost: usize,
    f: impl Fn(usize, &mut [A], &mut [B]) + Sync,
) {
    let planes = a.len() / plane.max(1);
    let tasks = super::task_count(planes, cost);
    if tasks <= 1 {
        return f(0, a, b);
    }
    let per_task = planes.div_ceil(tasks);
    pool::current().install(|| {
        a.par_chunks_mut(per_task * plane)
            .zip(b.par_chunks_mut(per_task * plane))
            .enumerate()
            .for_each(|(task, (a, b))| f(task * per_task, a, b))
    });
}

/// The taps `k` of a kernel of `kernel` taps whose input position `start + k * dilation - pad`
/// lies in `0..size`, for a window at `start` (an output position times the stride). Only these
/// are visited, so a huge kernel over a small input costs no more than the input.
fn taps(start: usize, pad: usize, dilation: usize, size: usize, kernel: usize) -> Range<usize> {
    // Within a checked shape, `start < size + pad`, and neither sum overflows.
    let Some(room) = (size + pad).checked_sub(start + 1) else {
        return 0..0;
    };
    let lo = pad.saturating_sub(start).div_ceil(dilation);
    let hi = (room / dilation + 1).min(kernel);
    lo.min(hi)..hi
}

/// A kernel column: its offset `kj * dw` and the outputs `lo..hi` it is valid for.
type KernelColumn = (usize, (usize, usize));

/// The kernel columns that lie inside the input for at least one output column, ascending (see
/// [`KernelColumn`]; the ranges are `valid_range`'s).
fn kernel_columns(shape: &PoolShape) -> Result<Vec<KernelColumn>, NnError> {
    let [_, pw] = shape.options.padding;
    let [_, sw] = shape.options.stride;
    let [_, dw] = shape.options.dilation;
    let [_, kw] = shape.options.kernel;
    let [_, width] = shape.in_size;
    let out_w = shape.out_size[1];
    // Each output column's taps; later outputs have lower taps, so walk them backwards and
    // merge into ascending, disjoint runs.
    let mut runs: Vec<Range<usize>> = Vec::new();
    for ow in (0..out_w).rev() {
        let run = taps(ow * sw, pw, dw, width, kw);
        match runs.last_mut() {
            _ if run.is_empty() => {}
            Some(last) if run.start <= last.end => last.end = last.end.max(run.end),
            _ => runs.push(run),
        }
    }
    let count = runs.iter().map(|r| r.len()).sum();
    let mut columns = try_filled(count, (0, (0, 0)), "max_pool2d's kernel columns")?;
    for (column, kj) in columns.iter_mut().zip(runs.into_iter().flatten()) {
        *column = (kj * dw, valid_range(kj * dw, pw, sw, width, out_w));
    }
    Ok(columns)
}

/// For the fuzzer ([`size::check`]): the window arithmetic of the first and last output positions
/// on each axis visits only taps inside the input, as a brute-force scan of small kernels
/// finds, and the kernel-column table of a narrow input stays small and inside the kernel.
pub(super) fn check_windows(shape: &PoolShape) {
    let o = &shape.options;
    for a in 0..2 {
        let (size, out) = (shape.in_size[a], shape.out_size[a]);
        for position in [0, out - 1] {
            let start = position * o.stride[a];
            let found = taps(start, o.padding[a], o.dilation[a], size, o.kernel[a]);
            let at = |k: usize| (start + k * o.dilation[a]).checked_sub(o.padding[a]);
            for k in [found.start, found.end.saturating_sub(1)] {
                assert!(
                    found.is_empty() || at(k).is_some_and(|c| c < size),
                    "{shape:?}"
                );
            }
            if o.kernel[a] <= 64 {
                let inside: Vec<usize> = (0..o.kernel[a])
                    .filter(|&k| at(k).is_some_and(|c| c < size))
                    .collect();
                assert_eq!(inside, found.collect::<Vec<_>>(), "{shape:?}");
            }
        }
    }
    let average = Average::new(true, None).expect("no override");
    let [out_h, out_w] = shape.out_size;
    for (oh, ow) in [(0, 0), (out_h - 1, out_w - 1)] {
        if let Some(([h0, h1, w0, w1], divisor)) = average_window(shape, &average, oh, ow) {
            assert!(h0 < h1 && h1 <= shape.in_size[0] && w0 < w1 && w1 <= shape.in_size[1]);
            assert!(divisor >= ((h1 - h0) * (w1 - w0)) as f64);
        }
    }
    // The table grows with the input's width, never with the kernel: at most 3 W + 3 columns.
    let width = shape.in_size[1];
    if width <= 1 << 12 {
        let columns = kernel_columns(shape).expect("a table of at most 3 W + 3 columns");
        assert!(columns.len() <= 3 * width + 3, "{shape:?}");
        for (offset, (lo, hi)) in columns {
            assert!(offset / o.dilation[1] < o.kernel[1] && lo <= hi && hi <= out_w);
        }
    }
}

/// `max_pool2d(x, ..., return_indices=True)` into `y` and `indices` (the flat index `h * W + w`
/// of each maximum in its input plane). As torch: the first maximum of a window wins, a NaN wins
/// over any number (the last NaN over earlier ones), and padding never does.
///
/// Each output row is computed tap by tap: for every input row and kernel column in the window's
/// order, one branch-free pass over the row's outputs, so every output sees its taps in torch's
/// order (rows, then columns) and random data costs no mispredicted branches. Fails only when
/// its small tables cannot be allocated.
pub fn max_pool2d<T: Float>(
    shape: &PoolShape,
    x: &[T],
    y: &mut [T],
    indices: &mut [i64],
) -> Result<(), NnError> {
    let (in_plane, out_plane) = (shape.in_plane(), shape.out_plane());
    assert_eq!(x.len(), shape.batch * shape.channels * in_plane);
    assert_eq!(y.len(), shape.batch * shape.channels * out_plane);
    assert_eq!(indices.len(), y.len());
    // An empty output may still have huge planes (a batch of zero): nothing to size tables for.
    if y.is_empty() {
        return Ok(());
    }
    if is_two_by_two(shape) {
        max_pool2d_two_by_two(shape, x, y, indices);
        return Ok(());
    }
    let out_w = shape.out_size[1];
    let [dh, dw] = shape.options.dilation;
    let [sh, sw] = shape.options.stride;
    let [ph, pw] = shape.options.padding;
    let kh = shape.options.kernel[0];
    let [h, width] = shape.in_size;
    let columns = kernel_columns(shape)?;
    // Per output column: torch's initial index column, the window's first column at or past
    // the input's left edge (past its right edge when no column of the window is inside).
    let mut first_columns = try_filled(out_w, 0i64, "max_pool2d's column table")?;
    for (ow, first) in first_columns.iter_mut().enumerate() {
        let (start, dw) = ((ow * sw) as i128 - pw as i128, dw as i128);
        let column = if start < 0 {
            start + (-start + dw - 1) / dw * dw
        } else {
            start
        };
        *first = i64::try_from(column).unwrap_or(i64::MAX);
    }
    let cost = out_plane.saturating_mul(shape.kernel_len());
    for_each_plane_pair(y, indices, out_plane, cost, |first, y, indices| {
        let planes = y
            .chunks_exact_mut(out_plane)
            .zip(indices.chunks_exact_mut(out_plane));
        for (p, (y, indices)) in planes.enumerate() {
            let x = &x[(first + p) * in_plane..][..in_plane];
            let rows = y
                .chunks_exact_mut(out_w)
                .zip(indices.chunks_exact_mut(out_w));
            for (oh, (y, indices)) in rows.enumerate() {
                let rows = taps(oh * sh, ph, dh, h, kh);
                let first_row = if rows.is_empty() {
                    0
                } else {
                    oh * sh + rows.start * dh - ph
                };
                y.fill(T::from_f64(f64::NEG_INFINITY));
                let row_index = (first_row * width) as i64;
                for (index, &w0) in indices.iter_mut().zip(first_columns.iter()) {
                    *index = row_index.saturating_add(w0);
                }
                for ki in rows {
                    let ih = oh * sh + ki * dh - ph;
                    let in_row = &x[ih * width..][..width];
                    for &(offset, (lo, hi)) in &columns {
                        if lo == hi {
                            continue;
                        }
                        let first_col = lo * sw + offset - pw;
                        let row_start = ih * width;
                        for (k, ow) in (lo..hi).enumerate() {
                            let col = first_col + k * sw;
                            let (v, max) = (in_row[col], y[ow]);
                            // `|`, not `||`: no branch, so the compiler can select.
                            let better = (v > max) | v.is_nan();
                            y[ow] = if better { v } else { max };
                            let at = (row_start + col) as i64;
                            indices[ow] = if better { at } else { indices[ow] };
                        }
                    }
                }
            }
        }
    });
    Ok(())
}

/// Whether this is the usual `max_pool2d(x, 2)`: 2 x 2 windows that tile the input (stride 2,
/// no padding or dilation, every window inside).
fn is_two_by_two(shape: &PoolShape) -> bool {
    let o = &shape.options;
    (0..2).all(|a| {
        o.kernel[a] == 2
            && o.stride[a] == 2
            && o.padding[a] == 0
            && o.dilation[a] == 1
            && shape.out_size[a] * 2 <= shape.in_size[a]
    })
}

/// `max_pool2d` for [`is_two_by_two`]: each output reads its window's four taps in torch's
/// order (rows, then columns) straight from the input and is written once (about twice as fast
/// as the general tap-by-tap pass). The first tap stands in for torch's initial `-inf`: it wins
/// against `-inf` exactly when it is greater or NaN, and otherwise torch's index stays on the
/// first tap too.
fn max_pool2d_two_by_two<T: Float>(shape: &PoolShape, x: &[T], y: &mut [T], indices: &mut [i64]) {
    let (in_plane, out_plane) = (shape.in_plane(), shape.out_plane());
    let width = shape.in_size[1];
    let out_w = shape.out_size[1];
    for_each_plane_pair(y, indices, out_plane, 4 * out_plane, |first, y, indices| {
        let planes = y
            .chunks_exact_mut(out_plane)
            .zip(indices.chunks_exact_mut(out_plane));
        for (p, (y, indices)) in planes.enumerate() {
            let x = &x[(first + p) * in_plane..][..in_plane];
            let rows = y
                .chunks_exact_mut(out_w)
                .zip(indices.chunks_exact_mut(out_w));
            for (oh, (y, indices)) in rows.enumerate() {
                two_by_two_row(x, 2 * oh * width, width, y, indices);
            }
        }
    });
}

/// One output row of [`max_pool2d_two_by_two`] whose windows start at input row `top`.
#[inline(always)]
fn two_by_two_row<T: Float>(x: &[T], top: usize, width: usize, y: &mut [T], indices: &mut [i64]) {
    let len = 2 * y.len();
    let upper = x[top..top + len].chunks_exact(2);
    let lower = x[top + width..top + width + len].chunks_exact(2);
    let outputs = y.iter_mut().zip(indices.iter_mut());
    for (ow, ((up, low), (y, index))) in upper.zip(lower).zip(outputs).enumerate() {
        let (mut max, mut at) = (up[0], 0);
        for (v, offset) in [(up[1], 1), (low[0], width), (low[1], width + 1)] {
            // `|`, not `||`: no branch, so the compiler can select.
            let better = (v > max) | v.is_nan();
            max = if better { v } else { max };
            at = if better { offset } else { at };
        }
        *y = max;
        *index = (top + 2 * ow + at) as i64;
    }
}

/// The sizes `max_pool2d_backward` works on, checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnpoolShape {
    pub planes: usize,
    pub in_plane: usize,
    pub out_plane: usize,
}

impl UnpoolShape {
    /// Checks that `grad_y` and `indices` have one shape `(N, C, H_out, W_out)` and that
    /// `input_shape` is `(N, C, H, W)`.
    pub fn new(
        grad_y: &[usize],
        indices: &[usize],
        input_shape: &[usize],
    ) -> Result<Self, NnError> {
        expect_ndim("grad_y", grad_y, 4, "(N, C, H_out, W_out)")?;
        expect_shape("indices", indices, grad_y)?;
        expect_ndim("input_shape", input_shape, 4, "(N, C, H, W)")?;
        if input_shape[..2] != grad_y[..2] {
            return Err(NnError::Array(format!(
                "input_shape {} and grad_y's shape {} differ in (N, C)",
                shape_str(input_shape),
                shape_str(grad_y)
            )));
        }
        size::checked_count("grad_y", grad_y)?;
        size::checked_count("max_pool2d_backward's output", input_shape)?;
        // Products of some of the checked sizes: they fit too.
        let count = |shape: &[usize]| shape.iter().product();
        Ok(UnpoolShape {
            planes: count(&grad_y[..2]),
            in_plane: count(&input_shape[2..]),
            out_plane: count(&grad_y[2..]),
        })
    }
}

/// The gradient of `max_pool2d`: each element of `grad_y` is added to the input element its
/// index names, plane by plane in output order. An index outside its plane is an error (and
/// `grad_x` is then unspecified).
pub fn max_pool2d_backward<T: Float>(
    shape: &UnpoolShape,
    grad_y: &[T],
    indices: &[i64],
    grad_x: &mut [T],
) -> Result<(), NnError> {
    let UnpoolShape {
        planes,
        in_plane,
        out_plane,
    } = *shape;
    assert_eq!(grad_y.len(), planes * out_plane);
    assert_eq!(indices.len(), grad_y.len());
    assert_eq!(grad_x.len(), planes * in_plane);
    let in_range = |i: i64| usize::try_from(i).is_ok_and(|i| i < in_plane);
    let bad_index = AtomicBool::new(false);
    for_each_items(grad_x, in_plane, out_plane, |first, grad_x| {
        for (p, grad_x) in grad_x.chunks_exact_mut(in_plane).enumerate() {
            grad_x.fill(T::ZERO);
            let plane = (first + p) * out_plane..(first + p + 1) * out_plane;
            for (&g, &i) in grad_y[plane.clone()].iter().zip(&indices[plane]) {
                if in_range(i) {
                    grad_x[i as usize] = grad_x[i as usize] + g;
                } else {
                    bad_index.store(true, Ordering::Relaxed);
                }
            }
        }
    });
    if !bad_index.into_inner() {
        return Ok(());
    }
    let (position, &index) = indices
        .iter()
        .enumerate()
        .find(|&(_, &i)| !in_range(i))
        .expect("a bad index was seen");
    Err(NnError::Array(format!(
        "indices holds {index} at flat position {position}, outside the input planes of {in_plane} \
         elements; pass the indices max_pool2d returned for this input shape"
    )))
}

/// The average pooling options beyond the window's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Average {
    pub count_include_pad: bool,
    /// Divide every window's sum by this instead of its size (torch: nonzero).
    pub divisor_override: Option<i64>,
}

impl Average {
    pub fn new(count_include_pad: bool, divisor_override: Option<i64>) -> Result<Self, NnError> {
        if divisor_override == Some(0) {
            return Err(NnError::Option(
                "divisor_override must not be zero; pass None to divide by the window size".into(),
            ));
        }
        Ok(Average {
            count_include_pad,
            divisor_override,
        })
    }
}

/// One output element's window as torch's average pooling sees it: the input rows and columns it
/// covers and the divisor of its sum. `None` for a window entirely in the padding.
#[inline]
fn average_window(
    shape: &PoolShape,
    average: &Average,
    oh: usize,
    ow: usize,
) -> Option<([usize; 4], f64)> {
    // Within a checked shape every window start and the padded input's end fit in an i64 (see
    // `size`); a window's end may not, but it is clipped to the padded input, so saturate it.
    let [h, w] = shape.in_size.map(|s| s as i64);
    let [ph, pw] = shape.options.padding.map(|p| p as i64);
    let [kh, kw] = shape.options.kernel.map(|k| k as i64);
    let [sh, sw] = shape.options.stride;
    let (h0, w0) = ((oh * sh) as i64 - ph, (ow * sw) as i64 - pw);
    // Clipped to the padded input, the window's size is count_include_pad's divisor; clipped to
    // the input, it is what is summed.
    let (h1, w1) = (
        h0.saturating_add(kh).min(h + ph),
        w0.saturating_add(kw).min(w + pw),
    );
    // As floats: a window clipped to the padded input may still cover over 2^63 taps.
    let padded = (h1 - h0) as f64 * (w1 - w0) as f64;
    let (h0, w0, h1, w1) = (h0.max(0), w0.max(0), h1.min(h), w1.min(w));
    if h0 >= h1 || w0 >= w1 {
        return None;
    }
    let divisor = match average.divisor_override {
        Some(d) => d as f64,
        None if average.count_include_pad => padded,
        None => ((h1 - h0) * (w1 - w0)) as f64,
    };
    Some(([h0, h1, w0, w1].map(|v| v as usize), divisor))
}

/// `avg_pool2d(x, ...)` into `y`: each window's sum, in row-major order, divided by torch's
/// divisor; 0 for a window entirely in the padding.
pub fn avg_pool2d<T: Float>(shape: &PoolShape, average: &Average, x: &[T], y: &mut [T]) {
    let (in_plane, out_plane) = (shape.in_plane(), shape.out_plane());
    assert_eq!(x.len(), shape.batch * shape.channels * in_plane);
    assert_eq!(y.len(), shape.batch * shape.channels * out_plane);
    let [out_h, out_w] = shape.out_size;
    let width = shape.in_size[1];
    let cost = out_plane * shape.kernel_len();
    for_each_items(y, out_plane, cost, |first, y| {
        for (p, y) in y.chunks_exact_mut(out_plane).enumerate() {
            let x = &x[(first + p) * in_plane..][..in_plane];
            for oh in 0..out_h {
                for ow in 0..out_w {
                    y[oh * out_w + ow] = match average_window(shape, average, oh, ow) {
                        None => T::ZERO,
                        Some(([h0, h1, w0, w1], divisor)) => {
                            let mut sum = T::ZERO;
                            for row in x[h0 * width..h1 * width].chunks_exact(width) {
                                for &v in &row[w0..w1] {
                                    sum = sum + v;
                                }
                            }
                            sum / T::from_f64(divisor)
                        }
                    };
                }
            }
        }
    });
}

/// The gradient of `avg_pool2d`: each element of `grad_y`, divided by its window's divisor, is
/// added to every input element of its window, plane by plane in output order.
pub fn avg_pool2d_backward<T: Float>(
    shape: &PoolShape,
    average: &Average,
    grad_y: &[T],
    grad_x: &mut [T],
) {
    let (in_plane, out_plane) = (shape.in_plane(), shape.out_plane());
    assert_eq!(grad_y.len(), shape.batch * shape.channels * out_plane);
    assert_eq!(grad_x.len(), shape.batch * shape.channels * in_plane);
    let [out_h, out_w] = shape.out_size;
    let width = shape.in_size[1];
    let cost = out_plane * shape.kernel_len();
    for_each_items(grad_x, in_plane, cost, |first, grad_x| {
        for (p, grad_x) in grad_x.chunks_exact_mut(in_plane).enumerate() {
            grad_x.fill(T::ZERO);
            let grad_y = &grad_y[(first + p) * out_plane..][..out_plane];
            for oh in 0..out_h {
                for ow in 0..out_w {
                    let Some(([h0, h1, w0, w1], divisor)) = average_window(shape, average, oh, ow)
                    else {
                        continue;
                    };
                    let delta = grad_y[oh * out_w + ow] / T::from_f64(divisor);
                    for row in grad_x[h0 * width..h1 * width].chunks_exact_mut(width) {
                        for g in &mut row[w0..w1] {
                            *g = *g + delta;
                        }
                    }
                }
            }
        }
    });
}
