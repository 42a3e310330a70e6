//! 2-D max and average pooling (`torch.nn.functional.max_pool2d` with `return_indices=True`,
//! `avg_pool2d`) and their gradients, plane by plane, with torch's windows, padding rules and
//! output sizes (`ceil_mode` included).
//!
//! Planes (one channel of one sample) are independent and each is computed by one thread in a
//! fixed order, so the gradients' scatter-adds give the same bits on any number of threads.

use super::im2col::valid_range;
use super::{expect_ndim, expect_shape, for_each_items, shape_str, NnError};
use crate::{pool, Float};
use rayon::prelude::*;
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
    /// Checks the options and the input's shape `(N, C, H, W)` as torch does; `name` names the
    /// input in errors.
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
        let out_size = [0, 1].map(|a| output_size([h, w][a], a, &options));
        if out_size.iter().any(|&o| o < 1) {
            return Err(NnError::Array(format!(
                "{name} has shape {}, which pools to an empty output ({} x {}); use a smaller \
                 kernel, stride or dilation, or more padding",
                shape_str(input),
                out_size[0],
                out_size[1]
            )));
        }
        Ok(PoolShape {
            batch,
            channels,
            in_size: [h, w],
            out_size: out_size.map(|o| o as usize),
            options,
        })
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

    fn kernel_len(&self) -> usize {
        self.options.kernel[0] * self.options.kernel[1]
    }
}

/// torch's `pooling_output_shape`: `floor` (or `ceil`) of `(size + 2 pad - extent) / stride + 1`,
/// less one in ceil mode when the last window would start past the input and its left padding.
fn output_size(size: usize, axis: usize, options: &Pool2d) -> isize {
    let (kernel, stride) = (options.kernel[axis] as isize, options.stride[axis] as isize);
    let (pad, dilation) = (
        options.padding[axis] as isize,
        options.dilation[axis] as isize,
    );
    let size = size as isize;
    let round_up = if options.ceil_mode { stride - 1 } else { 0 };
    let mut out = (size + 2 * pad - dilation * (kernel - 1) - 1 + round_up).div_euclid(stride) + 1;
    if options.ceil_mode && (out - 1) * stride >= size + pad {
        out -= 1;
    }
    out
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

/// `max_pool2d(x, ..., return_indices=True)` into `y` and `indices` (the flat index `h * W + w`
/// of each maximum in its input plane). As torch: the first maximum of a window wins, a NaN wins
/// over any number (the last NaN over earlier ones), and padding never does.
///
/// Each output row is computed tap by tap: for every input row and kernel column in the window's
/// order, one branch-free pass over the row's outputs, so every output sees its taps in torch's
/// order (rows, then columns) and random data costs no mispredicted branches.
pub fn max_pool2d<T: Float>(shape: &PoolShape, x: &[T], y: &mut [T], indices: &mut [i64]) {
    let (in_plane, out_plane) = (shape.in_plane(), shape.out_plane());
    assert_eq!(x.len(), shape.batch * shape.channels * in_plane);
    assert_eq!(y.len(), shape.batch * shape.channels * out_plane);
    assert_eq!(indices.len(), y.len());
    let out_w = shape.out_size[1];
    let [dh, dw] = shape.options.dilation;
    let [sh, sw] = shape.options.stride;
    let [ph, pw] = shape.options.padding;
    let [kh, kw] = shape.options.kernel;
    let [h, width] = shape.in_size;
    // Per kernel column: its offset and the outputs whose tap lies inside the input.
    let columns: Vec<(usize, (usize, usize))> = (0..kw)
        .map(|kj| (kj * dw, valid_range(kj * dw, pw, sw, width, out_w)))
        .collect();
    // Per output column: the first kernel column inside the input (torch's initial index).
    let first_columns: Vec<usize> = (0..out_w)
        .map(|ow| {
            let start = (ow * sw) as isize - pw as isize;
            let skip = if start < 0 {
                ((-start) as usize).div_ceil(dw) * dw
            } else {
                0
            };
            (start + skip as isize) as usize
        })
        .collect();
    let cost = out_plane * shape.kernel_len();
    if is_two_by_two(shape) {
        return max_pool2d_two_by_two(shape, x, y, indices);
    }
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
                let taps = (0..kh)
                    .map(|ki| (oh * sh + ki * dh).wrapping_sub(ph))
                    .filter(|&ih| ih < h);
                let first_row = taps.clone().next().unwrap_or(0);
                y.fill(T::from_f64(f64::NEG_INFINITY));
                for (index, &w0) in indices.iter_mut().zip(&first_columns) {
                    *index = (first_row * width + w0) as i64;
                }
                for ih in taps {
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
        Ok(UnpoolShape {
            planes: grad_y[0] * grad_y[1],
            in_plane: input_shape[2] * input_shape[3],
            out_plane: grad_y[2] * grad_y[3],
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
    let in_range = |i: i64| (0..in_plane as i64).contains(&i);
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
    let [h, w] = shape.in_size.map(|s| s as isize);
    let [ph, pw] = shape.options.padding.map(|p| p as isize);
    let [kh, kw] = shape.options.kernel.map(|k| k as isize);
    let [sh, sw] = shape.options.stride;
    let (h0, w0) = ((oh * sh) as isize - ph, (ow * sw) as isize - pw);
    // Clipped to the padded input, the window's size is count_include_pad's divisor; clipped to
    // the input, it is what is summed.
    let (h1, w1) = ((h0 + kh).min(h + ph), (w0 + kw).min(w + pw));
    let padded = (h1 - h0) * (w1 - w0);
    let (h0, w0, h1, w1) = (h0.max(0), w0.max(0), h1.min(h), w1.min(w));
    if h0 >= h1 || w0 >= w1 {
        return None;
    }
    let divisor = match average.divisor_override {
        Some(d) => d as f64,
        None if average.count_include_pad => padded as f64,
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
