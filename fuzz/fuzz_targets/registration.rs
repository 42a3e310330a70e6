//! The engines' registration arithmetic (`optrs_core::layout`): written byte ranges pairwise
//! disjoint, the owner of an overlap found, strided extents exact, nothing panics. The check is
//! `layout::check::registration`, which the corpus replay test in rust/core also runs.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| optrs_core::layout::check::registration(data));
