//! The element types the update rules are generic over.
//!
//! Only the operations the rules need, each an exactly rounded IEEE operation, so that the
//! scalar loop, every SIMD width and every thread count produce bit-identical results. That
//! includes [`Float::mul_add`], the fused multiply-add, which IEEE 754 specifies exactly (one
//! rounding): it is one instruction where the level has FMA (AVX2, AVX-512, NEON) and libm's
//! software `fma` on x86-64 CPUs without it. The rules use it exactly where torch's CPU kernels
//! fuse on FMA hardware (`add(x, alpha=a)`, `addcmul`, `lerp`), never merely where an `a * b + c`
//! appears, so the same expression written as `a * b + c` is rounded twice, as torch's
//! `mul` then `add` are.

use std::fmt::Debug;
use std::ops::{Add, Div, Mul, Neg, Sub};

pub trait Float:
    Copy
    + Send
    + Sync
    + Debug
    + PartialOrd
    + Add<Output = Self>
    + Sub<Output = Self>
    + Mul<Output = Self>
    + Div<Output = Self>
    + Neg<Output = Self>
    + 'static
{
    const ZERO: Self;
    const ONE: Self;
    const NAN: Self;
    /// The machine epsilon (`torch.finfo(dtype).eps`): the gap between 1 and the next float.
    const EPSILON: Self;
    /// NumPy's name for the type, used in error messages.
    const NAME: &'static str;

    /// Rounds a hyperparameter computed in double precision to this type, as torch does when it
    /// passes a Python float to a kernel of this dtype.
    fn from_f64(x: f64) -> Self;
    fn to_f64(self) -> f64;
    fn sqrt(self) -> Self;
    fn abs(self) -> Self;
    fn is_nan(self) -> bool;
    /// `self * a + b` rounded once (IEEE fusedMultiplyAdd): torch's `b.add(a, alpha=self)` and
    /// `b.addcmul(t1, a, value=v)` with `self = v * t1`, as its AVX2/AVX-512 kernels compute them.
    fn mul_add(self, a: Self, b: Self) -> Self;

    /// A buffer of this type that a kernel may hold for the length of one call and that keeps its
    /// memory between calls (LAMB's directions: see `rules/lamb.rs`), so a big step neither
    /// zero-fills nor faults in fresh pages every time.
    fn scratch() -> &'static std::sync::Mutex<Vec<Self>>;

    /// `torch.maximum`: NaN in either operand gives NaN (unlike `f32::max`, which drops it).
    #[inline(always)]
    fn maximum(self, other: Self) -> Self {
        if self.is_nan() || other.is_nan() {
            Self::NAN
        } else if self > other {
            self
        } else {
            other
        }
    }

    /// `torch.lerp(self, end, weight)` with torch's two-sided formula, which is exact at both
    /// ends, fused as torch's vector kernels fuse it: `fma(weight, end - self, self)` below one
    /// half, `fma(self - end, 1 - weight, end)` (= `end - (end - self) * (1 - weight)`) above.
    #[inline(always)]
    fn lerp(self, end: Self, weight: Self) -> Self {
        let half = Self::from_f64(0.5);
        if weight.abs() < half {
            weight.mul_add(end - self, self)
        } else {
            (self - end).mul_add(Self::ONE - weight, end)
        }
    }
}

macro_rules! impl_float {
    ($t:ty, $name:literal) => {
        impl Float for $t {
            const ZERO: Self = 0.0;
            const ONE: Self = 1.0;
            const NAN: Self = <$t>::NAN;
            const EPSILON: Self = <$t>::EPSILON;
            const NAME: &'static str = $name;

            #[inline(always)]
            fn from_f64(x: f64) -> Self {
                x as $t
            }
            #[inline(always)]
            fn to_f64(self) -> f64 {
                self as f64
            }
            #[inline(always)]
            fn sqrt(self) -> Self {
                <$t>::sqrt(self)
            }
            #[inline(always)]
            fn abs(self) -> Self {
                <$t>::abs(self)
            }
            #[inline(always)]
            fn is_nan(self) -> bool {
                <$t>::is_nan(self)
            }
            #[inline(always)]
            fn mul_add(self, a: Self, b: Self) -> Self {
                <$t>::mul_add(self, a, b)
            }
            fn scratch() -> &'static std::sync::Mutex<Vec<Self>> {
                static SCRATCH: std::sync::Mutex<Vec<$t>> = std::sync::Mutex::new(Vec::new());
                &SCRATCH
            }
        }
    };
}

impl_float!(f32, "float32");
impl_float!(f64, "float64");
