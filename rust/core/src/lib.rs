//! optrs-core: torch-identical optimizer update rules on plain slices, with run-time SIMD
//! dispatch and a deterministic parallel driver. No Python here: the bindings live in `rust/py`.

pub mod driver;
mod float;
pub mod layout;
pub mod matmul;
pub mod newton_schulz;
pub mod nn;
pub mod norms;
pub mod pool;
pub mod rules;
pub mod simd;
pub mod square_sum;
pub mod stream;
pub mod vector;

pub use float::Float;
pub use rules::{HyperError, Rule, TensorMut, MAX_STATE};
