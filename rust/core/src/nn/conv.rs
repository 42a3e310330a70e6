//! 2-D convolution (`torch.nn.functional.conv2d`) and its gradients, as per-sample matrix
//! products: `y[n] = W @ cols(x[n])` with the columns unfolded by `im2col`, per group.
//!
//! The products are [`crate::matmul`]'s (the `gemm` crate). Benchmarked single-threaded on the
//! seed CNN's per-sample products in float32 (AMD EPYC, AVX-512): conv2's forward 64 x 576 x 288
//! runs at 104 GFLOP/s with `gemm`, 99 with NumPy's OpenBLAS and 102 with `matrixmultiply`; its
//! weight gradient 64 x 288 x 576 at 92, 77 and 79; its input gradient 288 x 576 x 64 at 108, 100
//! and 114. So `gemm` it is, which also runs on optrs's pool. (Those `gemm` figures are its AVX2
//! kernels; with its AVX-512 ones, enabled since, the same three products run at 149-171 GFLOP/s
//! on an Intel Xeon, 1.1-1.2x OpenBLAS there: `benches/bench_gemm.py`.)
//!
//! Work is split over samples (each with its own column buffer, products single-threaded), or,
//! with fewer samples than threads, inside each product. The weight and bias gradients sum over
//! the batch: the batch is cut into chunks fixed by the shapes alone ([`weight_chunks`]), each
//! chunk sums its samples in order (the product accumulates into the chunk's partial sum), and the
//! partial sums are added in chunk order, so no result depends on the thread count.

use super::im2col::{col2im, im2col};
use super::size::{self, Axis, AxisError};
use super::{expect_ndim, expect_shape, shape_str, try_filled, NnError};
use crate::matmul::{matmul, Layout, Parallelism};
use crate::{pool, Float};
use rayon::prelude::*;
use std::ops::Range;

/// The options of `conv2d`, as torch's (padding is explicit zero padding on both sides).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv2d {
    pub stride: [usize; 2],
    pub padding: [usize; 2],
    pub dilation: [usize; 2],
    pub groups: usize,
}

/// A checked convolution: the sizes of its input, weight and output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvShape {
    pub batch: usize,
    pub in_channels: usize,
    pub in_size: [usize; 2],
    pub out_channels: usize,
    pub kernel: [usize; 2],
    pub out_size: [usize; 2],
    pub options: Conv2d,
}

impl ConvShape {
    /// Checks the options and the shapes of `x` `(N, C_in, H, W)` and `weight` `(C_out, C_in /
    /// groups, kH, kW)` as torch does, and computes the output size exactly; refuses sizes whose
    /// arithmetic would overflow (see [`size`]).
    pub fn new(x: &[usize], weight: &[usize], options: Conv2d) -> Result<Self, NnError> {
        for (name, pair) in [("stride", options.stride), ("dilation", options.dilation)] {
            if pair.contains(&0) {
                return Err(NnError::Option(format!(
                    "{name} must be positive, got {pair:?}"
                )));
            }
        }
        let groups = options.groups;
        if groups == 0 {
            return Err(NnError::Option("groups must be positive, got 0".into()));
        }
        expect_ndim("x", x, 4, "(N, C_in, H, W)")?;
        expect_ndim("weight", weight, 4, "(C_out, C_in / groups, kH, kW)")?;
        let &[batch, in_channels, h, w] = x else {
            unreachable!()
        };
        let &[out_channels, group_in, kh, kw] = weight else {
            unreachable!()
        };
        if out_channels % groups != 0 {
            return Err(NnError::Option(format!(
                "groups={groups} does not divide weight's {out_channels} output channels \
                 (weight has shape {})",
                shape_str(weight)
            )));
        }
        if group_in.checked_mul(groups) != Some(in_channels) {
            return Err(NnError::Array(format!(
                "weight has shape {} and groups={groups}, so it expects {} input channels, but x \
                 has shape {} ({in_channels} channels)",
                shape_str(weight),
                size::count_str(&[group_in, groups]),
                shape_str(x)
            )));
        }
        if [in_channels, h, w].contains(&0) {
            return Err(NnError::Array(format!(
                "x has shape {}; a convolution needs at least one channel and non-empty planes",
                shape_str(x)
            )));
        }
        if [out_channels, kh, kw].contains(&0) {
            return Err(NnError::Array(format!(
                "weight has shape {}; a convolution needs at least one output channel and a \
                 non-empty kernel",
                shape_str(weight)
            )));
        }
        let axes = [0, 1].map(|a| Axis {
            size: [h, w][a],
            kernel: [kh, kw][a],
            stride: options.stride[a],
            padding: options.padding[a],
            dilation: options.dilation[a],
        });
        let mut out_size = [0; 2];
        for (out, axis) in out_size.iter_mut().zip(&axes) {
            *out = axis
                .conv_output()
                .map_err(|e| axis_error(e, &axes, x, &options))?;
        }
        let shape = ConvShape {
            batch,
            in_channels,
            in_size: [h, w],
            out_channels,
            kernel: [kh, kw],
            out_size,
            options,
        };
        shape.check_counts(weight)?;
        Ok(shape)
    }

    /// Every buffer the kernels index (input, weight, output, per-sample columns) has an
    /// element count that fits in a `usize`, so the length arithmetic below cannot overflow.
    fn check_counts(&self, weight: &[usize]) -> Result<(), NnError> {
        size::checked_count("x", &self.input_shape())?;
        size::checked_count("weight", weight)?;
        size::checked_count("conv2d's output", &self.output_shape())?;
        let rows = [
            self.options.groups,
            self.group_in(),
            self.kernel[0],
            self.kernel[1],
        ];
        let columns = [&rows[..], &self.out_size].concat();
        size::checked_count("conv2d's per-sample column buffer", &columns)?;
        Ok(())
    }

    /// `x`'s shape `(N, C_in, H, W)`.
    pub fn input_shape(&self) -> [usize; 4] {
        let [h, w] = self.in_size;
        [self.batch, self.in_channels, h, w]
    }

    /// `y`'s shape `(N, C_out, H_out, W_out)`.
    pub fn output_shape(&self) -> [usize; 4] {
        let [oh, ow] = self.out_size;
        [self.batch, self.out_channels, oh, ow]
    }

    /// `weight`'s shape.
    pub fn weight_shape(&self) -> [usize; 4] {
        let [kh, kw] = self.kernel;
        [self.out_channels, self.group_in(), kh, kw]
    }

    pub fn check_bias(&self, bias: &[usize]) -> Result<(), NnError> {
        expect_shape("bias", bias, &[self.out_channels])
    }

    pub fn check_grad_y(&self, grad_y: &[usize]) -> Result<(), NnError> {
        expect_shape("grad_y", grad_y, &self.output_shape())
    }

    fn group_in(&self) -> usize {
        self.in_channels / self.options.groups
    }

    fn group_out(&self) -> usize {
        self.out_channels / self.options.groups
    }

    /// Rows of a group's column matrix: `C_in / groups * kH * kW`.
    fn group_rows(&self) -> usize {
        self.group_in() * self.kernel[0] * self.kernel[1]
    }

    fn positions(&self) -> usize {
        self.out_size[0] * self.out_size[1]
    }

    fn in_len(&self) -> usize {
        self.in_channels * self.in_size[0] * self.in_size[1]
    }

    fn out_len(&self) -> usize {
        self.out_channels * self.positions()
    }

    fn weight_len(&self) -> usize {
        self.out_channels * self.group_rows()
    }

    /// A 1x1 kernel without stride or padding: the columns are the input itself.
    fn is_pointwise(&self) -> bool {
        self.kernel == [1, 1] && self.options.stride == [1, 1] && self.options.padding == [0, 0]
    }

    /// Elements of the per-sample column buffer (none when the input is used as it is).
    fn cols_len(&self) -> usize {
        if self.is_pointwise() {
            0
        } else {
            self.options.groups * self.group_rows() * self.positions()
        }
    }

    /// Multiply-adds of one sample's forward product.
    fn sample_cost(&self) -> usize {
        self.out_len().saturating_mul(self.group_rows())
    }

    /// Group `g`'s block of a sample's output: `group_out x positions`.
    fn out_block(&self, g: usize) -> (Range<usize>, Layout) {
        block(g, self.group_out(), self.positions())
    }

    /// Group `g`'s rows of the weight: `group_out x group_rows`.
    fn weight_block(&self, g: usize) -> (Range<usize>, Layout) {
        block(g, self.group_out(), self.group_rows())
    }

    /// Group `g`'s rows of a sample's column matrix: `group_rows x positions`.
    fn cols_block(&self, g: usize) -> (Range<usize>, Layout) {
        block(g, self.group_rows(), self.positions())
    }
}

/// The error for the first axis of `axes` that has no output size.
fn axis_error(error: AxisError, axes: &[Axis; 2], x: &[usize], options: &Conv2d) -> NnError {
    match error {
        AxisError::PaddedTooLarge => NnError::Option(format!(
            "padding {:?} is too large for x of shape {}: the padded size (H or W plus twice the \
             padding) must be at most 2^63 - 1, torch's largest size",
            options.padding,
            shape_str(x)
        )),
        AxisError::ExtentTooLarge => NnError::Option(format!(
            "dilation {:?} spreads weight's {} x {} kernel over more than 2^63 - 1 elements; use \
             a smaller dilation",
            options.dilation, axes[0].kernel, axes[1].kernel
        )),
        _ => {
            let [padded, extent] = [Axis::padded, Axis::extent]
                .map(|f| axes.map(|a| f(&a).map_or_else(|_| "?".into(), |v| v.to_string())));
            NnError::Array(format!(
                "x has shape {}: its padded size {} x {} is smaller than the kernel's extent {} x \
                 {} (dilation included); pad more, or use a smaller kernel or dilation",
                shape_str(x),
                padded[0],
                padded[1],
                extent[0],
                extent[1]
            ))
        }
    }
}

/// The `g`-th of consecutive row-major `rows x cols` blocks.
fn block(g: usize, rows: usize, cols: usize) -> (Range<usize>, Layout) {
    let len = rows * cols;
    (g * len..(g + 1) * len, Layout::row_major(rows, cols))
}

/// Below this many multiply-adds a call runs on the calling thread.
const PARALLEL_MIN: usize = 1 << 16;

/// Tasks per thread when splitting over samples or chunks, so that uneven tasks still balance.
const TASKS_PER_THREAD: usize = 4;

/// How a call spreads over the pool: units (samples or chunks) inline with the products split
/// across threads, or runs of units as tasks with single-threaded products.
enum Plan {
    Inline(Parallelism),
    Tasks(usize),
}

fn plan(units: usize, cost: usize) -> Plan {
    let threads = pool::num_threads();
    if threads == 1 || units.saturating_mul(cost) < PARALLEL_MIN {
        Plan::Inline(Parallelism::None)
    } else if units < threads {
        Plan::Inline(Parallelism::Rayon(threads))
    } else {
        Plan::Tasks(units.min(threads * TASKS_PER_THREAD))
    }
}

/// Runs `work(unit, buffer, parallelism)` over `units` following [`plan`], giving each task a
/// column buffer of `buffer_len` elements that its units reuse. Fails, leaving the outputs
/// partly written, when a buffer cannot be allocated.
fn run_units<U: Send, T: Float>(
    units: Vec<U>,
    cost: usize,
    buffer_len: usize,
    work: impl Fn(U, &mut [T], Parallelism) + Sync,
) -> Result<(), NnError> {
    const WHAT: &str = "conv2d's per-sample column buffer";
    match plan(units.len(), cost) {
        Plan::Inline(parallelism) => {
            let mut buffer = try_filled(buffer_len, T::ZERO, WHAT)?;
            let run = || {
                for unit in units {
                    work(unit, &mut buffer, parallelism);
                }
            };
            match parallelism {
                Parallelism::None => run(),
                _ => pool::current().install(run),
            }
            Ok(())
        }
        Plan::Tasks(tasks) => {
            let per_task = units.len().div_ceil(tasks);
            let mut runs: Vec<Vec<U>> = Vec::with_capacity(tasks);
            let mut units = units.into_iter().peekable();
            while units.peek().is_some() {
                runs.push(units.by_ref().take(per_task).collect());
            }
            pool::current().install(|| {
                runs.into_par_iter().try_for_each(|run| {
                    let mut buffer = try_filled(buffer_len, T::ZERO, WHAT)?;
                    for unit in run {
                        work(unit, &mut buffer, Parallelism::None);
                    }
                    Ok(())
                })
            })
        }
    }
}

/// `torch.nn.functional.conv2d(x, weight, bias, stride, padding, dilation, groups)` into `y`
/// (the slices are C-contiguous arrays of the shapes `shape` was made from). Fails only when its
/// column buffer cannot be allocated.
pub fn conv2d<T: Float>(
    shape: &ConvShape,
    x: &[T],
    weight: &[T],
    bias: Option<&[T]>,
    y: &mut [T],
) -> Result<(), NnError> {
    assert_eq!(x.len(), shape.batch * shape.in_len());
    assert_eq!(weight.len(), shape.weight_len());
    assert_eq!(y.len(), shape.batch * shape.out_len());
    if let Some(bias) = bias {
        assert_eq!(bias.len(), shape.out_channels);
    }
    if y.is_empty() {
        return Ok(());
    }
    let positions = shape.positions();
    let samples: Vec<(&[T], &mut [T])> = x
        .chunks_exact(shape.in_len().max(1))
        .zip(y.chunks_exact_mut(shape.out_len()))
        .collect();
    run_units(
        samples,
        shape.sample_cost(),
        shape.cols_len(),
        |(x, y), buffer, parallelism| {
            let cols = if shape.is_pointwise() {
                x
            } else {
                im2col(shape, x, buffer);
                buffer
            };
            for g in 0..shape.options.groups {
                let (out, out_layout) = shape.out_block(g);
                let (w, w_layout) = shape.weight_block(g);
                let (c, c_layout) = shape.cols_block(g);
                let y_g = &mut y[out];
                if let Some(bias) = bias {
                    let bias = &bias[g * shape.group_out()..][..shape.group_out()];
                    for (row, &b) in y_g.chunks_exact_mut(positions).zip(bias) {
                        row.fill(b);
                    }
                }
                matmul(
                    y_g,
                    out_layout,
                    bias.is_some(),
                    T::ONE,
                    (&weight[w], w_layout),
                    (&cols[c], c_layout),
                    T::ONE,
                    parallelism,
                );
            }
        },
    )
}

/// The gradients `conv2d_backward` computes, each into a C-contiguous slice of its input's shape;
/// `None` skips it.
pub struct ConvGrads<'a, T> {
    pub input: Option<&'a mut [T]>,
    pub weight: Option<&'a mut [T]>,
    pub bias: Option<&'a mut [T]>,
}

/// At most this many chunks (tasks for the pool when the batch is large).
const MAX_CHUNKS: usize = 32;

/// The chunks' partial sums of the weight and bias gradients stay under this many elements.
const PARTIALS_MAX: usize = 1 << 22;

/// How many chunks the batch is cut into for the weight and bias gradients: fixed by the shapes
/// alone, so their sums (see the module docs) never depend on the thread count.
pub fn weight_chunks(shape: &ConvShape) -> usize {
    let partial_len = shape.weight_len().saturating_add(shape.out_channels);
    shape
        .batch
        .min(MAX_CHUNKS)
        .min(PARTIALS_MAX / partial_len)
        .max(1)
}

/// A run of consecutive samples and where its gradients go: the caller's output for the first
/// chunk, partial sums for the others.
struct Chunk<'a, T> {
    x: &'a [T],
    grad_y: &'a [T],
    grad_x: Option<&'a mut [T]>,
    grad_weight: Option<&'a mut [T]>,
    grad_bias: Option<&'a mut [T]>,
}

/// The gradients of `conv2d` for the upstream gradient `grad_y` (of `y`'s shape): of the input, of
/// the weight and of the bias (the sum of `grad_y` over the batch and positions). Fails only
/// when a scratch buffer cannot be allocated.
pub fn conv2d_backward<T: Float>(
    shape: &ConvShape,
    x: &[T],
    weight: &[T],
    grad_y: &[T],
    grads: ConvGrads<'_, T>,
) -> Result<(), NnError> {
    let (in_len, out_len, weight_len) = (shape.in_len(), shape.out_len(), shape.weight_len());
    let ConvGrads {
        input: grad_x,
        weight: mut grad_weight,
        bias: mut grad_bias,
    } = grads;
    assert_eq!(x.len(), shape.batch * in_len);
    assert_eq!(weight.len(), weight_len);
    assert_eq!(grad_y.len(), shape.batch * out_len);
    assert!(grad_x.as_ref().is_none_or(|g| g.len() == x.len()));
    assert!(grad_weight.as_ref().is_none_or(|g| g.len() == weight_len));
    assert!(grad_bias
        .as_ref()
        .is_none_or(|g| g.len() == shape.out_channels));
    if shape.batch == 0 {
        grad_weight.iter_mut().for_each(|g| g.fill(T::ZERO));
        grad_bias.iter_mut().for_each(|g| g.fill(T::ZERO));
        return Ok(());
    }
    let chunks = weight_chunks(shape);
    let per_chunk = shape.batch.div_ceil(chunks);
    let chunks = shape.batch.div_ceil(per_chunk);
    let partial_len = |grad: &Option<&mut [T]>, len: usize| match grad {
        Some(_) => (chunks - 1) * len,
        None => 0,
    };
    let what = "conv2d_backward's partial sums";
    let mut partial_weight = try_filled(partial_len(&grad_weight, weight_len), T::ZERO, what)?;
    let mut partial_bias = try_filled(partial_len(&grad_bias, shape.out_channels), T::ZERO, what)?;
    let mut weights = slots(grad_weight.as_deref_mut(), &mut partial_weight, chunks);
    let mut biases = slots(grad_bias.as_deref_mut(), &mut partial_bias, chunks);
    let mut units = Vec::with_capacity(chunks);
    let (mut x, mut grad_y, mut grad_x) = (x, grad_y, grad_x);
    for c in 0..chunks {
        let samples = per_chunk.min(shape.batch - c * per_chunk);
        let (x_c, x_rest) = x.split_at(samples * in_len);
        let (gy_c, gy_rest) = grad_y.split_at(samples * out_len);
        let (gx_c, gx_rest) = match grad_x {
            Some(g) => {
                let (head, tail) = g.split_at_mut(samples * in_len);
                (Some(head), Some(tail))
            }
            None => (None, None),
        };
        units.push(Chunk {
            x: x_c,
            grad_y: gy_c,
            grad_x: gx_c,
            grad_weight: weights[c].take(),
            grad_bias: biases[c].take(),
        });
        (x, grad_y, grad_x) = (x_rest, gy_rest, gx_rest);
    }
    run_units(
        units,
        per_chunk
            .saturating_mul(2)
            .saturating_mul(shape.sample_cost()),
        shape.cols_len(),
        |chunk, buffer, parallelism| backward_chunk(shape, weight, chunk, buffer, parallelism),
    )?;
    add_partials(grad_weight, &partial_weight);
    add_partials(grad_bias, &partial_bias);
    Ok(())
}

/// Adds the other chunks' partial sums to the first chunk's, in chunk order.
fn add_partials<T: Float>(total: Option<&mut [T]>, partials: &[T]) {
    let Some(total) = total else { return };
    for partial in partials.chunks_exact(total.len()) {
        for (t, &p) in total.iter_mut().zip(partial) {
            *t = *t + p;
        }
    }
}

/// One slot per chunk: `total` for the first, consecutive pieces of `partials` for the others;
/// all `None` without `total`.
fn slots<'a, T>(
    total: Option<&'a mut [T]>,
    mut partials: &'a mut [T],
    chunks: usize,
) -> Vec<Option<&'a mut [T]>> {
    let Some(total) = total else {
        return (0..chunks).map(|_| None).collect();
    };
    let len = total.len();
    let mut slots = Vec::with_capacity(chunks);
    slots.push(Some(total));
    for _ in 1..chunks {
        let (piece, rest) = std::mem::take(&mut partials).split_at_mut(len);
        slots.push(Some(piece));
        partials = rest;
    }
    slots
}

/// The gradients of one chunk: the input gradient of each sample, and the chunk's sums of the
/// weight and bias gradients, in sample order.
fn backward_chunk<T: Float>(
    shape: &ConvShape,
    weight: &[T],
    chunk: Chunk<'_, T>,
    buffer: &mut [T],
    parallelism: Parallelism,
) {
    let (in_len, out_len) = (shape.in_len(), shape.out_len());
    let Chunk {
        x,
        grad_y,
        mut grad_x,
        mut grad_weight,
        mut grad_bias,
    } = chunk;
    let samples = x.chunks_exact(in_len).zip(grad_y.chunks_exact(out_len));
    for (n, (x, grad_y)) in samples.enumerate() {
        let first = n == 0;
        if let Some(grad_weight) = grad_weight.as_deref_mut() {
            let cols = if shape.is_pointwise() {
                x
            } else {
                im2col(shape, x, buffer);
                &*buffer
            };
            for g in 0..shape.options.groups {
                let (out, out_layout) = shape.out_block(g);
                let (w, w_layout) = shape.weight_block(g);
                let (c, c_layout) = shape.cols_block(g);
                // grad_weight (+)= grad_y @ cols^T: the chunk's samples accumulate in order.
                matmul(
                    &mut grad_weight[w],
                    w_layout,
                    !first,
                    T::ONE,
                    (&grad_y[out], out_layout),
                    (&cols[c], c_layout.transposed()),
                    T::ONE,
                    parallelism,
                );
            }
        }
        if let Some(grad_bias) = grad_bias.as_deref_mut() {
            let positions = shape.positions();
            for (b, row) in grad_bias.iter_mut().zip(grad_y.chunks_exact(positions)) {
                let s = super::sum(row);
                *b = if first { s } else { *b + s };
            }
        }
        if let Some(grad_x) = grad_x.as_deref_mut() {
            let grad_x = &mut grad_x[n * in_len..][..in_len];
            // cols of the gradient = weight^T @ grad_y, folded back onto the input; for a
            // pointwise kernel the columns are the input gradient itself.
            let cols: &mut [T] = if shape.is_pointwise() {
                &mut *grad_x
            } else {
                buffer
            };
            for g in 0..shape.options.groups {
                let (out, out_layout) = shape.out_block(g);
                let (w, w_layout) = shape.weight_block(g);
                let (c, c_layout) = shape.cols_block(g);
                matmul(
                    &mut cols[c],
                    c_layout,
                    false,
                    T::ZERO,
                    (&weight[w], w_layout.transposed()),
                    (&grad_y[out], out_layout),
                    T::ONE,
                    parallelism,
                );
            }
            if !shape.is_pointwise() {
                grad_x.fill(T::ZERO);
                col2im(shape, buffer, grad_x);
            }
        }
    }
}
