//! The size arithmetic of the NN kernels (`optrs_core::nn::size` and the shape constructors):
//! no panic, every accepted size equals torch's formula computed in i128, every refusal is a
//! true refusal or overflow. The check is `size::check::nn_shapes`, which the corpus replay
//! test in rust/core also runs.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| optrs_core::nn::size::check::nn_shapes(data));
