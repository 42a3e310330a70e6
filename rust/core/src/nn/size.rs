//! The size arithmetic of the kernels on integers that come straight from Python: output sizes by
//! torch's formulas, element counts and buffer sizes. Every function is exact or refuses; none
//! wraps around or panics. `fuzz/` (the `nn_shapes` target) checks them against the same formulas
//! computed in `i128` ([`check`]).

use super::NnError;

/// The largest padded input size and dilated kernel extent a window may have: torch's sizes are
/// int64, so beyond this its own formula overflows. Inside this bound every window coordinate,
/// `o * stride + k * dilation` for an output `o` and tap `k`, fits in a `usize`.
pub const MAX_EXTENT: usize = i64::MAX as usize;

/// One axis of a sliding window (a convolution's or a pooling's).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Axis {
    pub size: usize,
    pub kernel: usize,
    pub stride: usize,
    /// Zero (or -inf) padding on each side.
    pub padding: usize,
    pub dilation: usize,
}

/// Why an axis has no output size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AxisError {
    /// The kernel, stride or dilation (named) is zero.
    Zero(&'static str),
    /// A pooling's padding is over half its kernel, which torch refuses.
    PaddingOverHalfKernel,
    /// `size + 2 * padding` is beyond [`MAX_EXTENT`].
    PaddedTooLarge,
    /// `dilation * (kernel - 1) + 1` is beyond [`MAX_EXTENT`].
    ExtentTooLarge,
    /// No window fits: a convolution's kernel extent exceeds the padded size, or a pooling's
    /// output would be empty.
    Empty,
}

impl Axis {
    fn check_positive(&self) -> Result<(), AxisError> {
        for (name, value) in [
            ("kernel_size", self.kernel),
            ("stride", self.stride),
            ("dilation", self.dilation),
        ] {
            if value == 0 {
                return Err(AxisError::Zero(name));
            }
        }
        Ok(())
    }

    /// `size + 2 * padding`, within [`MAX_EXTENT`].
    pub fn padded(&self) -> Result<usize, AxisError> {
        self.padding
            .checked_mul(2)
            .and_then(|p| p.checked_add(self.size))
            .filter(|&p| p <= MAX_EXTENT)
            .ok_or(AxisError::PaddedTooLarge)
    }

    /// The dilated kernel's extent `dilation * (kernel - 1) + 1`, within [`MAX_EXTENT`]; the
    /// kernel must be positive.
    pub fn extent(&self) -> Result<usize, AxisError> {
        self.dilation
            .checked_mul(self.kernel - 1)
            .and_then(|e| e.checked_add(1))
            .filter(|&e| e <= MAX_EXTENT)
            .ok_or(AxisError::ExtentTooLarge)
    }

    /// torch's convolution output size, `(size + 2 pad - extent) / stride + 1`; at least one
    /// window must fit.
    pub fn conv_output(&self) -> Result<usize, AxisError> {
        self.check_positive()?;
        let padded = self.padded()?;
        let extent = self.extent()?;
        let span = padded.checked_sub(extent).ok_or(AxisError::Empty)?;
        Ok(span / self.stride + 1)
    }

    /// torch's `pooling_output_shape`: `floor` (or `ceil`) of `(size + 2 pad - extent) / stride`
    /// plus one, less one in ceil mode when the last window would start past the input and its
    /// left padding; at least one.
    pub fn pool_output(&self, ceil_mode: bool) -> Result<usize, AxisError> {
        self.check_positive()?;
        if self.padding > self.kernel / 2 {
            return Err(AxisError::PaddingOverHalfKernel);
        }
        let padded = self.padded()?;
        let extent = self.extent()?;
        let windows = match padded.checked_sub(extent) {
            Some(span) if ceil_mode => span.div_ceil(self.stride) + 1,
            Some(span) => span / self.stride + 1,
            // In ceil mode a window overhanging the padded input by less than a stride counts.
            None if ceil_mode && extent - padded < self.stride => 1,
            None => return Err(AxisError::Empty),
        };
        // `windows - 1` windows start before the last one; it must start inside the input or
        // its left padding. An overflowing start is past it.
        let last_start = (windows - 1).checked_mul(self.stride);
        let starts_inside = last_start.is_some_and(|s| s < self.size + self.padding);
        if ceil_mode && !starts_inside {
            return if windows > 1 {
                Ok(windows - 1)
            } else {
                Err(AxisError::Empty)
            };
        }
        Ok(windows)
    }
}

/// The number of elements of an array of `shape`, if it fits in a `usize` (zero when a size is,
/// however large the others).
pub fn element_count(shape: &[usize]) -> Option<usize> {
    if shape.contains(&0) {
        return Some(0);
    }
    shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d))
}

/// The bytes of `count` elements of `item` bytes each, if an allocation may have that many
/// (at most `isize::MAX`).
pub fn byte_count(count: usize, item: usize) -> Option<usize> {
    count
        .checked_mul(item)
        .filter(|&b| b <= isize::MAX as usize)
}

/// How the element count of `shape` reads in an error: exact (the product is taken in 128 bits),
/// or "more than 2^128".
pub fn count_str(shape: &[usize]) -> String {
    shape
        .iter()
        .try_fold(1u128, |n, &d| n.checked_mul(d as u128))
        .map_or_else(|| "more than 2^128".to_string(), |n| n.to_string())
}

/// The error for a buffer of `shape` (`what`, e.g. "conv2d's output") whose element count does
/// not fit in a `usize`; its bytes are counted at 4 per element, the smallest float.
pub fn too_large(what: &str, shape: &[usize]) -> NnError {
    NnError::Memory(format!(
        "{what} would have shape {}: {} elements, at least {} bytes, more than can be \
         allocated; use smaller inputs or options",
        super::shape_str(shape),
        count_str(shape),
        count_str(&[shape, &[4]].concat())
    ))
}

/// `shape`'s element count, or [`too_large`]'s error unless the product of its non-zero sizes
/// fits in a `usize` (NumPy's rule), so that no product of some of its sizes overflows either.
pub fn checked_count(what: &str, shape: &[usize]) -> Result<usize, NnError> {
    let nonzero = shape.iter().filter(|&&d| d != 0);
    match nonzero.copied().try_fold(1usize, usize::checked_mul) {
        Some(product) if !shape.contains(&0) => Ok(product),
        Some(_) => Ok(0),
        None => Err(too_large(what, shape)),
    }
}

/// The fuzzing oracle: the same formulas in `i128`, where nothing overflows, and a check of a
/// fuzz input against them. Shared by the `nn_shapes` fuzz target and the corpus replay test.
pub mod check {
    use super::{element_count, Axis, AxisError, MAX_EXTENT};

    /// torch's convolution output size in exact arithmetic, or `None` where torch refuses (a
    /// zero option, no window fits) or its int64 arithmetic would overflow.
    pub fn conv_output(axis: &Axis) -> Option<i128> {
        let stride = axis.stride as i128;
        let (padded, extent) = padded_and_extent(axis)?;
        if padded < extent {
            return None;
        }
        Some((padded - extent) / stride + 1)
    }

    /// torch's pooling output size in exact arithmetic (`div_rtn`, then the ceil-mode
    /// correction), or `None` where torch refuses or its int64 arithmetic would overflow.
    pub fn pool_output(axis: &Axis, ceil_mode: bool) -> Option<i128> {
        let (size, kernel, stride, padding, _) = wide(axis);
        if padding > kernel / 2 {
            return None;
        }
        let (padded, extent) = padded_and_extent(axis)?;
        let round_up = if ceil_mode { stride - 1 } else { 0 };
        let mut out = (padded - extent + round_up).div_euclid(stride) + 1;
        if ceil_mode && (out - 1) * stride >= size + padding {
            out -= 1;
        }
        (out >= 1).then_some(out)
    }

    fn wide(axis: &Axis) -> (i128, i128, i128, i128, i128) {
        (
            axis.size as i128,
            axis.kernel as i128,
            axis.stride as i128,
            axis.padding as i128,
            axis.dilation as i128,
        )
    }

    /// The padded size and the dilated kernel's extent, or `None` for a zero option or one of
    /// them beyond torch's int64. The extent is taken in `u128`: `dilation * (kernel - 1)` may
    /// exceed `i128`.
    fn padded_and_extent(axis: &Axis) -> Option<(i128, i128)> {
        if axis.kernel == 0 || axis.stride == 0 || axis.dilation == 0 {
            return None;
        }
        let padded = axis.size as u128 + 2 * axis.padding as u128;
        let extent = axis.dilation as u128 * (axis.kernel as u128 - 1) + 1;
        let limit = MAX_EXTENT as u128;
        (padded <= limit && extent <= limit).then_some((padded as i128, extent as i128))
    }

    /// Reads the fuzzer's bytes as little-endian `u64`s, each mapped onto a value near an
    /// interesting size (0, 1, small, powers of two, the `i64`/`u64` limits), so that a short
    /// input reaches the edges.
    pub fn words(data: &[u8]) -> impl Iterator<Item = usize> + '_ {
        data.chunks(8).map(|chunk| {
            let mut bytes = [0u8; 8];
            bytes[..chunk.len()].copy_from_slice(chunk);
            let raw = u64::from_le_bytes(bytes);
            let near: u64 = match raw & 7 {
                0 => 0,
                1 => 1 << ((raw >> 3) & 63),
                2 => i64::MAX as u64,
                3 => u64::MAX,
                4 => (i64::MAX as u64) / 2,
                _ => return ((raw >> 3) & 0xff) as usize,
            };
            let offset = (raw >> 10) & 0xf;
            (if raw & 0x200 == 0 {
                near.wrapping_add(offset)
            } else {
                near.wrapping_sub(offset)
            }) as usize
        })
    }

    /// One fuzz case: the words of `data` as an axis, a ceil mode and a shape. Panics (which the
    /// fuzzer reports) when a function panics, an `Ok` differs from the exact formula, or a
    /// refusal is not a true refusal of the formula or an overflow.
    pub fn nn_shapes(data: &[u8]) {
        let mut words = words(data);
        let mut next = || words.next().unwrap_or(1);
        let axis = Axis {
            size: next(),
            kernel: next(),
            stride: next(),
            padding: next(),
            dilation: next(),
        };
        let ceil_mode = next() & 1 == 1;
        check_axis(&axis, ceil_mode);
        let shape: Vec<usize> = (0..next() % 5).map(|_| next()).collect();
        // In 128 bits a product of two sizes cannot overflow; past that, a zero anywhere wins.
        let exact = if shape.contains(&0) {
            Some(0)
        } else {
            shape
                .iter()
                .map(|&d| d as u128)
                .try_fold(1u128, u128::checked_mul)
        };
        match element_count(&shape) {
            Some(n) => assert_eq!(Some(n as u128), exact, "element_count({shape:?})"),
            None => assert!(exact.is_none_or(|n| n > usize::MAX as u128)),
        }
        let (groups, out_channels, group_in) = (next(), next(), next());
        let weight = [out_channels, group_in, axis.kernel, axis.kernel];
        check_shapes(&axis, ceil_mode, &shape, groups, weight);
    }

    fn check_axis(axis: &Axis, ceil_mode: bool) {
        match (axis.conv_output(), conv_output(axis)) {
            (Ok(out), Some(exact)) => assert_eq!(out as i128, exact, "conv {axis:?}"),
            (Err(_), None) => {}
            (got, exact) => panic!("conv {axis:?}: got {got:?}, exact {exact:?}"),
        }
        match (axis.pool_output(ceil_mode), pool_output(axis, ceil_mode)) {
            (Ok(out), Some(exact)) => assert_eq!(out as i128, exact, "pool {axis:?} {ceil_mode}"),
            (Err(_), None) => {}
            (got, exact) => panic!("pool {axis:?} ceil {ceil_mode}: got {got:?}, exact {exact:?}"),
        }
        if let Err(AxisError::Zero(name)) = axis.conv_output() {
            assert!(["kernel_size", "stride", "dilation"].contains(&name));
        }
    }

    /// The shape constructors on `shape` as the input, with `axis` on both spatial axes (and
    /// `groups` and `weight` for the convolution; a `group_in` of 0 asks for the one that fits
    /// the input's channels): they must not panic, and what they accept must hold the exact
    /// output sizes and counts.
    fn check_shapes(
        axis: &Axis,
        ceil_mode: bool,
        shape: &[usize],
        groups: usize,
        mut weight: [usize; 4],
    ) {
        use crate::nn::conv::{Conv2d, ConvShape};
        use crate::nn::pooling::{Pool2d, PoolShape, UnpoolShape};
        let pair = |v: usize| [v, v];
        let pool = Pool2d {
            kernel: pair(axis.kernel),
            stride: pair(axis.stride),
            padding: pair(axis.padding),
            dilation: pair(axis.dilation),
            ceil_mode,
        };
        if let Ok(pooled) = PoolShape::new("x", shape, pool) {
            let [h, w] = pooled.in_size;
            for (a, size) in [h, w].into_iter().enumerate() {
                let exact = pool_output(&Axis { size, ..*axis }, ceil_mode);
                assert_eq!(
                    Some(pooled.out_size[a] as i128),
                    exact,
                    "{shape:?} {pool:?}"
                );
            }
            assert!(element_count(&pooled.output_shape()).is_some());
            crate::nn::pooling::check_windows(&pooled);
        }
        let conv = Conv2d {
            stride: pair(axis.stride),
            padding: pair(axis.padding),
            dilation: pair(axis.dilation),
            groups,
        };
        if let [batch, channels, ..] = *shape {
            if weight[1] == 0 {
                weight[1] = channels.checked_div(groups).unwrap_or(0);
            }
            if let Ok(convolved) = ConvShape::new(shape, &weight, conv) {
                let [h, w] = convolved.in_size;
                for (a, size) in [h, w].into_iter().enumerate() {
                    let exact = conv_output(&Axis { size, ..*axis });
                    assert_eq!(
                        Some(convolved.out_size[a] as i128),
                        exact,
                        "{shape:?} {conv:?}"
                    );
                }
                assert_eq!(convolved.batch, batch);
                assert!(element_count(&convolved.output_shape()).is_some());
            }
        }
        if shape.len() == 4 {
            let grad = [shape[0], shape[1], axis.stride, axis.padding];
            if let Ok(unpool) = UnpoolShape::new(&grad, &grad, shape) {
                let exact = |part: &[usize]| part.iter().map(|&d| d as u128).product::<u128>();
                assert_eq!(unpool.planes as u128, exact(&shape[..2]));
                assert_eq!(unpool.in_plane as u128, exact(&shape[2..]));
                assert_eq!(unpool.out_plane as u128, exact(&grad[2..]));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn axis(size: usize, kernel: usize, stride: usize, padding: usize, dilation: usize) -> Axis {
        Axis {
            size,
            kernel,
            stride,
            padding,
            dilation,
        }
    }

    #[test]
    fn torch_output_sizes() {
        assert_eq!(axis(28, 5, 1, 0, 1).conv_output(), Ok(24));
        assert_eq!(
            axis(3, 1, 1 << 62, 1 << 62, 1).conv_output(),
            Err(AxisError::PaddedTooLarge)
        );
        assert_eq!(
            axis(3, 1, 1, usize::MAX / 2, 1).conv_output(),
            Err(AxisError::PaddedTooLarge)
        );
        assert_eq!(
            axis(3, 2, 1, 0, usize::MAX).conv_output(),
            Err(AxisError::ExtentTooLarge)
        );
        assert_eq!(axis(3, 4, 1, 0, 1).conv_output(), Err(AxisError::Empty));
        assert_eq!(axis(3, 2, usize::MAX, 0, 1).conv_output(), Ok(1));
        assert_eq!(axis(3, 4, 2, 0, 1).pool_output(true), Ok(1));
        assert_eq!(axis(3, 5, 2, 0, 1).pool_output(true), Err(AxisError::Empty));
        assert_eq!(axis(5, 2, 2, 0, 1).pool_output(true), Ok(3));
        assert_eq!(axis(4, 2, 2, 1, 1).pool_output(true), Ok(3));
        assert_eq!(
            axis(3, usize::MAX, 1, 0, 2).pool_output(false),
            Err(AxisError::ExtentTooLarge)
        );
        assert_eq!(
            axis(3, 3, 1, 2, 1).pool_output(false),
            Err(AxisError::PaddingOverHalfKernel)
        );
        assert_eq!(axis(3, 1 << 62, 1, 1 << 61, 1).pool_output(false), Ok(4));
    }

    #[test]
    fn counts() {
        assert_eq!(element_count(&[]), Some(1));
        assert_eq!(element_count(&[0, usize::MAX]), Some(0));
        assert_eq!(element_count(&[1 << 40, 1 << 40, 0]), Some(0));
        assert!(checked_count("x", &[1 << 40, 1 << 40, 0]).is_err());
        assert_eq!(checked_count("x", &[1 << 40, 0]).ok(), Some(0));
        assert_eq!(element_count(&[1 << 40, 1 << 40]), None);
        assert_eq!(byte_count(1 << 61, 4), None);
        assert_eq!(byte_count(1 << 60, 4), Some(1 << 62));
        assert_eq!(count_str(&[1 << 40, 1 << 40, 4]), (1u128 << 82).to_string());
        assert_eq!(count_str(&[usize::MAX; 3]), "more than 2^128");
    }
}
