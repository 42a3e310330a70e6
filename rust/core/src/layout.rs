//! Byte-range arithmetic behind the engines' memory checks, with no Python in it (so it can be
//! unit-tested and fuzzed on its own): the extent of a strided array, whether one range lies
//! inside another, and whether the ranges a step writes are pairwise disjoint.
//!
//! Every sum and product here is checked: the sizes come from arrays a user built, and a wrapped
//! addition would turn "out of bounds" into "in bounds".

use std::fmt;

/// A half-open byte range `[start, end)` and what it holds (`tag`, for error messages).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ByteRange<T> {
    pub start: usize,
    pub end: usize,
    pub tag: T,
}

/// Why a layout was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LayoutError<T> {
    /// The range of `tag` ends past `usize::MAX` (`start + len` overflows).
    Overflow(T),
    /// The ranges of `first` and `second` share at least one byte.
    Overlap { first: T, second: T },
}

impl<T: fmt::Debug> fmt::Display for LayoutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LayoutError::Overflow(tag) => write!(f, "the byte range of {tag:?} overflows"),
            LayoutError::Overlap { first, second } => {
                write!(f, "{second:?} shares memory with {first:?}")
            }
        }
    }
}

/// `count * item_size` bytes, or None when that overflows `usize`.
pub fn byte_len(count: usize, item_size: usize) -> Option<usize> {
    count.checked_mul(item_size)
}

/// Checks that the ranges `(start, len, tag)` are pairwise disjoint, and returns the non-empty
/// ones as [`ByteRange`]s sorted by start.
///
/// Contract:
/// - empty ranges (`len == 0`) touch no memory: they never overlap anything and are dropped;
/// - `start + len` must not overflow `usize`, else `Err(Overflow(tag))` for the first such range
///   in input order;
/// - if two non-empty ranges share a byte, `Err(Overlap { first, second })` where `first` is
///   the one that starts first (ties: the longer one, then input order) and `second` overlaps
///   it; which overlapping pair is named is otherwise unspecified;
/// - otherwise `Ok(sorted)`, where `sorted[i].end <= sorted[i + 1].start` for every `i`.
///
/// It never panics, and runs in O(n log n).
pub fn disjoint_ranges<T: Copy>(
    ranges: &[(usize, usize, T)],
) -> Result<Vec<ByteRange<T>>, LayoutError<T>> {
    let mut sorted = Vec::with_capacity(ranges.len());
    for &(start, len, tag) in ranges {
        let end = start.checked_add(len).ok_or(LayoutError::Overflow(tag))?;
        if len > 0 {
            sorted.push(ByteRange { start, end, tag });
        }
    }
    // Stable, so equal keys keep input order; longer first, so a range that starts with a
    // longer one is reported as overlapping it.
    sorted.sort_by_key(|r| (r.start, std::cmp::Reverse(r.end)));
    for pair in sorted.windows(2) {
        // Sorted by start: if ranges i < j overlap, so do i and i + 1 (the ones in between are
        // disjoint from i, so they end before j starts).
        if pair[1].start < pair[0].end {
            return Err(LayoutError::Overlap {
                first: pair[0].tag,
                second: pair[1].tag,
            });
        }
    }
    Ok(sorted)
}

/// The range of `written` (sorted and disjoint, as [`disjoint_ranges`] returns them) that shares
/// a byte with `[start, end)`, if any. An empty range overlaps nothing.
pub fn overlapping<T>(written: &[ByteRange<T>], start: usize, end: usize) -> Option<&ByteRange<T>> {
    if start >= end {
        return None;
    }
    // Disjoint and sorted: only the last range starting before `end` can overlap.
    let candidates = written.partition_point(|w| w.start < end);
    let last = written.get(candidates.checked_sub(1)?)?;
    (last.end > start).then_some(last)
}

/// The bytes `[lo, hi)` a strided array touches: data at address `data`, `shape[k]` elements
/// along axis k, `strides[k]` bytes apart, each `item_size` bytes. `Some((data, data))` for an
/// array of no elements; None when the arithmetic overflows or the range leaves the address
/// space (such an array cannot be valid), or when `shape` and `strides` differ in length.
pub fn extent(
    data: usize,
    shape: &[usize],
    strides: &[isize],
    item_size: usize,
) -> Option<(usize, usize)> {
    if shape.len() != strides.len() {
        return None;
    }
    if shape.contains(&0) {
        return Some((data, data));
    }
    // Offsets of the lowest and highest element from `data`, as i128 so that no product of a
    // usize and an isize overflows.
    let (mut low, mut high) = (0i128, 0i128);
    for (&count, &stride) in shape.iter().zip(strides) {
        let span = i128::try_from(count - 1)
            .ok()?
            .checked_mul(stride as i128)?;
        if span < 0 {
            low = low.checked_add(span)?;
        } else {
            high = high.checked_add(span)?;
        }
    }
    let base = i128::try_from(data).ok()?;
    let lo = usize::try_from(base.checked_add(low)?).ok()?;
    let hi = base
        .checked_add(high)?
        .checked_add(i128::try_from(item_size).ok()?)?;
    Some((lo, usize::try_from(hi).ok()?))
}

/// Whether `inner` lies inside `outer` (both `[lo, hi)`); an empty `inner` lies anywhere.
pub fn contains(outer: (usize, usize), inner: (usize, usize)) -> bool {
    inner.0 >= inner.1 || (outer.0 <= inner.0 && inner.1 <= outer.1)
}

/// The fuzz check of the engines' registration arithmetic, shared by the `registration` fuzz
/// target (`fuzz/`) and the corpus replay test, so the cases the fuzzer found run on stable Rust.
pub mod check {
    use super::{contains, disjoint_ranges, extent, overlapping, LayoutError};

    /// Reads `data` as byte ranges near the edges of the address space and checks
    /// [`disjoint_ranges`] and [`overlapping`] against a brute-force pairwise comparison in
    /// `u128`, and [`extent`] / [`contains`] against the same formula over every element index
    /// of a small strided array. Panics on any disagreement.
    pub fn registration(data: &[u8]) {
        let mut words = data.chunks(8).map(|chunk| {
            let mut bytes = [0u8; 8];
            bytes[..chunk.len()].copy_from_slice(chunk);
            u64::from_le_bytes(bytes) as usize
        });
        let mode = words.next().unwrap_or(0);
        let values: Vec<usize> = words.map(|w| near_edges(w, mode)).collect();
        ranges(&values);
        strided(&values);
    }

    /// Maps a word to an interesting size: small, near a power of two, or near `usize::MAX`.
    fn near_edges(word: usize, mode: usize) -> usize {
        let small = word & 0xff;
        match (word >> 60) ^ (mode & 3) {
            0 => usize::MAX - small,
            1 => 1usize.checked_shl(((word >> 8) & 63) as u32).unwrap_or(0) ^ small,
            2 => word,
            _ => small,
        }
    }

    fn ranges(values: &[usize]) {
        let ranges: Vec<(usize, usize, usize)> = values
            .chunks_exact(2)
            .take(12)
            .enumerate()
            .map(|(tag, pair)| {
                // Odd lengths keep their size (near the edges); even ones are small.
                let len = if pair[1] & 1 == 1 {
                    pair[1]
                } else {
                    pair[1] % 4096
                };
                (pair[0], len, tag)
            })
            .collect();
        let end = |start: usize, len: usize| start as u128 + len as u128;
        let overflow = ranges
            .iter()
            .find(|&&(start, len, _)| end(start, len) > usize::MAX as u128);
        let shares = |a: &(usize, usize, usize), b: &(usize, usize, usize)| {
            a.1 > 0 && b.1 > 0 && (a.0 as u128) < end(b.0, b.1) && (b.0 as u128) < end(a.0, a.1)
        };
        let any_overlap = ranges
            .iter()
            .enumerate()
            .any(|(i, a)| ranges[i + 1..].iter().any(|b| shares(a, b)));
        match disjoint_ranges(&ranges) {
            Err(LayoutError::Overflow(tag)) => assert_eq!(Some(tag), overflow.map(|r| r.2)),
            Err(LayoutError::Overlap { first, second }) => {
                assert!(overflow.is_none(), "an overflow must be reported first");
                assert!(shares(&ranges[first], &ranges[second]), "a false overlap");
            }
            Ok(sorted) => {
                assert!(
                    overflow.is_none() && !any_overlap,
                    "a missed overflow or overlap"
                );
                assert!(sorted.windows(2).all(|w| w[0].end <= w[1].start));
                assert_eq!(sorted.len(), ranges.iter().filter(|r| r.1 > 0).count());
                // Every probe range overlaps exactly the written ranges it shares a byte with.
                for probe in ranges
                    .iter()
                    .map(|&(start, len, _)| (start, start.saturating_add(len)))
                {
                    // An empty probe overlaps nothing.
                    let want = sorted
                        .iter()
                        .find(|w| probe.0 < probe.1 && probe.0 < w.end && w.start < probe.1);
                    let got = overlapping(&sorted, probe.0, probe.1);
                    assert_eq!(
                        got.is_some(),
                        want.is_some(),
                        "overlapping disagrees on {probe:?}"
                    );
                }
            }
        }
    }

    fn strided(values: &[usize]) {
        let Some((&data, rest)) = values.split_first() else {
            return;
        };
        let ndim = rest.len().min(6) / 2;
        let shape: Vec<usize> = rest[..ndim].iter().map(|v| v % 5).collect();
        let strides: Vec<isize> = rest[ndim..2 * ndim].iter().map(|&v| v as isize).collect();
        let item = 1 + data % 8;
        // Brute force over every element (at most 4^3 of them), in u128/i128.
        let mut lo = i128::MAX;
        let mut hi = i128::MIN;
        let count: usize = shape.iter().product();
        for flat in 0..count {
            let (mut rem, mut offset) = (flat, data as i128);
            for (&n, &stride) in shape.iter().zip(&strides).rev() {
                offset += (rem % n) as i128 * stride as i128;
                rem /= n;
            }
            lo = lo.min(offset);
            hi = hi.max(offset + item as i128);
        }
        let want = if count == 0 {
            Some((data, data))
        } else {
            match (usize::try_from(lo), usize::try_from(hi)) {
                (Ok(lo), Ok(hi)) => Some((lo, hi)),
                _ => None,
            }
        };
        let got = extent(data, &shape, &strides, item);
        assert_eq!(got, want, "extent of {shape:?} {strides:?} at {data}");
        if let Some(inner) = got {
            assert!(contains(inner, inner));
            assert!(contains((0, usize::MAX), inner) || inner.1 < inner.0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disjoint_ranges_sort_and_drop_empty_ones() {
        let got =
            disjoint_ranges(&[(100, 8, 'a'), (0, 4, 'b'), (50, 0, 'c'), (4, 4, 'd')]).unwrap();
        let starts: Vec<(usize, usize, char)> =
            got.iter().map(|r| (r.start, r.end, r.tag)).collect();
        assert_eq!(starts, [(0, 4, 'b'), (4, 8, 'd'), (100, 108, 'a')]);
    }

    #[test]
    fn overlaps_are_found_whatever_the_order() {
        // A long range hiding a short one that starts later.
        let err = disjoint_ranges(&[(20, 4, 'c'), (0, 100, 'a'), (10, 4, 'b')]).unwrap_err();
        assert_eq!(
            err,
            LayoutError::Overlap {
                first: 'a',
                second: 'b'
            }
        );
        // Same start: the longer one is named first.
        let err = disjoint_ranges(&[(0, 4, 's'), (0, 8, 'l')]).unwrap_err();
        assert_eq!(
            err,
            LayoutError::Overlap {
                first: 'l',
                second: 's'
            }
        );
        // Touching ranges do not overlap; an empty range inside another is fine.
        assert!(disjoint_ranges(&[(0, 4, 0), (4, 4, 1), (2, 0, 2)]).is_ok());
    }

    #[test]
    fn overflowing_ranges_are_refused() {
        let err = disjoint_ranges(&[(0, 4, 'a'), (usize::MAX - 1, 2, 'b')]).unwrap_err();
        assert_eq!(err, LayoutError::Overflow('b'));
        assert!(disjoint_ranges(&[(usize::MAX - 1, 1, 'a')]).is_ok());
        assert_eq!(byte_len(usize::MAX / 2, 4), None);
        assert_eq!(byte_len(3, 8), Some(24));
    }

    #[test]
    fn overlapping_finds_the_owner() {
        let written = disjoint_ranges(&[(0, 8, 'a'), (16, 8, 'b')]).unwrap();
        assert_eq!(overlapping(&written, 8, 16), None);
        assert_eq!(overlapping(&written, 7, 9).map(|r| r.tag), Some('a'));
        assert_eq!(overlapping(&written, 10, 100).map(|r| r.tag), Some('b'));
        assert_eq!(overlapping(&written, 4, 4), None);
        assert_eq!(overlapping(&written, 30, 20), None);
    }

    #[test]
    fn extents_of_strided_arrays() {
        // C-contiguous 2 x 3 float32.
        assert_eq!(extent(1000, &[2, 3], &[12, 4], 4), Some((1000, 1024)));
        // Reversed along the only axis: data points at the last element in memory.
        assert_eq!(extent(1012, &[4], &[-4], 4), Some((1000, 1016)));
        // Broadcast (stride 0), empty, and 0-d arrays.
        assert_eq!(extent(1000, &[5], &[0], 8), Some((1000, 1008)));
        assert_eq!(extent(1000, &[0, 3], &[12, 4], 4), Some((1000, 1000)));
        assert_eq!(extent(1000, &[], &[], 8), Some((1000, 1008)));
        // Leaves the address space, or mismatched lengths.
        assert_eq!(extent(8, &[4], &[-4], 4), None);
        assert_eq!(extent(usize::MAX - 4, &[2], &[4], 4), None);
        assert_eq!(extent(0, &[usize::MAX, 2], &[isize::MAX, 1], 1), None);
        assert_eq!(extent(0, &[1], &[], 4), None);
    }

    #[test]
    fn containment() {
        assert!(contains((0, 100), (10, 20)));
        assert!(contains((0, 100), (0, 100)));
        assert!(!contains((0, 100), (90, 101)));
        assert!(!contains((10, 100), (0, 20)));
        assert!(contains((0, 0), (50, 50)));
    }
}
