//! Run-time selection of the instruction set a kernel is compiled for.
//!
//! Kernels are plain element loops that LLVM auto-vectorises. [`dispatch`] calls the loop through
//! a `#[target_feature]` function for the widest instruction set this CPU has, so one wheel runs
//! on every x86-64 and aarch64 machine and still uses AVX2 or AVX-512 where present (no
//! `target-cpu` flag, which would make the wheel crash with SIGILL on older CPUs). Every path
//! computes the same exactly rounded operations, so results do not depend on the level.

use std::sync::atomic::{AtomicU8, Ordering};

/// An instruction set a kernel can run with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    /// Whatever the compile target guarantees (SSE2 on x86-64, NEON on aarch64).
    Baseline,
    /// x86-64-v3: AVX2 + FMA (`Float::mul_add` becomes one instruction, see `float.rs`).
    Avx2,
    /// x86-64-v4: AVX-512 F/VL/BW/DQ.
    Avx512,
}

impl Level {
    pub fn name(self) -> &'static str {
        match self {
            Level::Baseline if cfg!(target_arch = "aarch64") => "neon",
            Level::Baseline if cfg!(target_arch = "x86_64") => "sse2",
            Level::Baseline => "scalar",
            Level::Avx2 => "avx2",
            Level::Avx512 => "avx512",
        }
    }
}

/// A unit of work whose loop should be compiled for the detected instruction set.
///
/// Implementations mark `run` `#[inline(always)]`, so that it is inlined into the
/// `#[target_feature]` wrappers below and vectorised with their features.
pub trait Kernel {
    type Output;
    fn run(self) -> Self::Output;
}

const UNKNOWN: u8 = u8::MAX;
static DETECTED: AtomicU8 = AtomicU8::new(UNKNOWN);
static FORCED: AtomicU8 = AtomicU8::new(UNKNOWN);
/// The level [`SIMD_ENV`] set for the process, which `force(None)` returns to.
static FROM_ENV: AtomicU8 = AtomicU8::new(UNKNOWN);

fn encode(level: Level) -> u8 {
    level as u8
}

fn decode(code: u8) -> Level {
    match code {
        1 => Level::Avx2,
        2 => Level::Avx512,
        _ => Level::Baseline,
    }
}

/// The widest instruction set this CPU supports.
pub fn detected() -> Level {
    let code = DETECTED.load(Ordering::Relaxed);
    if code != UNKNOWN {
        return decode(code);
    }
    let level = detect();
    DETECTED.store(encode(level), Ordering::Relaxed);
    level
}

#[cfg(target_arch = "x86_64")]
fn detect() -> Level {
    if is_x86_feature_detected!("avx512f")
        && is_x86_feature_detected!("avx512vl")
        && is_x86_feature_detected!("avx512bw")
        && is_x86_feature_detected!("avx512dq")
    {
        Level::Avx512
    } else if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
        Level::Avx2
    } else {
        Level::Baseline
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn detect() -> Level {
    Level::Baseline
}

/// The level kernels run with: the detected one, unless [`force`] lowered it.
pub fn active() -> Level {
    let forced = FORCED.load(Ordering::Relaxed);
    if forced != UNKNOWN {
        decode(forced)
    } else {
        detected()
    }
}

/// Runs kernels with `level` (for tests and benchmarks that compare paths); `None` restores the
/// process default: [`SIMD_ENV`]'s level if it set one, else detection. A level the CPU lacks is
/// refused, since running it would be undefined behaviour.
pub fn force(level: Option<Level>) -> Result<(), String> {
    match level {
        None => FORCED.store(FROM_ENV.load(Ordering::Relaxed), Ordering::Relaxed),
        Some(level) => {
            if encode(level) > encode(detected()) {
                return Err(format!(
                    "this CPU does not support {}; it supports up to {}",
                    level.name(),
                    detected().name()
                ));
            }
            FORCED.store(encode(level), Ordering::Relaxed);
        }
    }
    Ok(())
}

/// The environment variable that lowers the SIMD level for a whole process: `baseline`, `avx2` or
/// `avx512`, as [`force`] takes them. CI runs the unit tests once with `OPTRS_SIMD=baseline`, so the
/// paths a CPU without AVX takes are tested on one that has it.
pub const SIMD_ENV: &str = "OPTRS_SIMD";

/// Parses a level's name as [`SIMD_ENV`] and `force_simd_level` take it.
pub fn parse(name: &str) -> Option<Level> {
    match name.trim().to_ascii_lowercase().as_str() {
        "baseline" | "sse2" | "neon" | "scalar" => Some(Level::Baseline),
        "avx2" => Some(Level::Avx2),
        "avx512" => Some(Level::Avx512),
        _ => None,
    }
}

/// Applies [`SIMD_ENV`] if it is set (the extension calls this once, when imported). `Err` says why
/// the value was not applied; detection stays in force then.
pub fn force_from_env() -> Result<(), String> {
    let value = match std::env::var(SIMD_ENV) {
        Err(std::env::VarError::NotPresent) => return Ok(()),
        Err(std::env::VarError::NotUnicode(value)) => format!("{value:?}"),
        Ok(value) if value.trim().is_empty() => return Ok(()),
        Ok(value) => value,
    };
    let detected = detected().name();
    let level = parse(&value).ok_or_else(|| {
        format!(
            "{SIMD_ENV}={value:?} is not a SIMD level; use baseline, avx2 or avx512 \
             (optrs uses {detected})"
        )
    })?;
    force(Some(level))
        .map_err(|why| format!("{SIMD_ENV}={value}: {why}; optrs uses {detected}"))?;
    FROM_ENV.store(encode(level), Ordering::Relaxed);
    Ok(())
}

/// Runs `kernel` compiled for [`active`]'s instruction set.
#[inline(always)]
pub fn dispatch<K: Kernel>(kernel: K) -> K::Output {
    match active() {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `active()` only returns Avx512 when `detect()` saw avx512f/vl/bw/dq on this CPU.
        Level::Avx512 => unsafe { run_avx512(kernel) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `active()` only returns Avx2 when `detect()` saw avx2 and fma on this CPU.
        Level::Avx2 => unsafe { run_avx2(kernel) },
        _ => kernel.run(),
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512vl,avx512bw,avx512dq,avx2,fma")]
unsafe fn run_avx512<K: Kernel>(kernel: K) -> K::Output {
    kernel.run()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn run_avx2<K: Kernel>(kernel: K) -> K::Output {
    kernel.run()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn level_names_parse_back() {
        for level in [Level::Baseline, Level::Avx2, Level::Avx512] {
            assert_eq!(parse(level.name()), Some(level));
        }
        assert_eq!(parse(" Baseline "), Some(Level::Baseline));
        assert_eq!(parse("avx"), None);
    }
}
