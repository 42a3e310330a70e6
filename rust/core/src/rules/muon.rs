//! Muon (`torch.optim.Muon`): momentum, then the update orthogonalised by Newton-Schulz, with
//! decoupled weight decay and a learning rate scaled by the matrix's shape.
//!
//! Muon is not an element-wise rule (orthogonalising needs the whole matrix): it is a
//! [`Rule::SHAPED`] rule whose [`Rule::run`] runs each matrix's update whole, the matrices in
//! parallel on the pool and each product on the pool's threads ([`step`] does the same for
//! matrices of both dtypes at once).

use super::{finite, non_negative_f32, HyperError, Rule, TensorMut};
use crate::driver;
use crate::newton_schulz::{self, NewtonSchulz, MAX_STEPS};
use crate::{pool, Float};

/// torch's `adjust_lr_fn`: how the learning rate is scaled for an `A x B` matrix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AdjustLr {
    /// `None` or `"original"` (Keller Jordan's): `sqrt(max(1, A / B))`.
    Original,
    /// `"match_rms_adamw"` (Moonshot's): `0.2 * sqrt(max(A, B))`.
    MatchRmsAdamw,
}

impl AdjustLr {
    /// The option for torch's `adjust_lr_fn` value (`None` is `Original`).
    pub fn from_name(name: Option<&str>) -> Option<Self> {
        match name {
            None | Some("original") => Some(AdjustLr::Original),
            Some("match_rms_adamw") => Some(AdjustLr::MatchRmsAdamw),
            Some(_) => None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Muon {
    pub lr: f64,
    /// Decoupled: the param shrinks by `lr * weight_decay` (the unadjusted lr) each step.
    pub weight_decay: f64,
    pub momentum: f64,
    pub nesterov: bool,
    pub ns_coefficients: [f64; 3],
    pub eps: f64,
    pub ns_steps: usize,
    pub adjust_lr_fn: AdjustLr,
}

impl Default for Muon {
    /// torch's defaults.
    fn default() -> Self {
        Muon {
            lr: 1e-3,
            weight_decay: 0.1,
            momentum: 0.95,
            nesterov: true,
            ns_coefficients: newton_schulz::DEFAULT_COEFFICIENTS,
            eps: newton_schulz::DEFAULT_EPS,
            ns_steps: newton_schulz::DEFAULT_STEPS,
            adjust_lr_fn: AdjustLr::Original,
        }
    }
}

impl Muon {
    /// torch's checks (`lr`, `momentum` and `weight_decay` >= 0, fewer than 100 Newton-Schulz
    /// steps), also rejecting NaN and inf.
    pub fn validate(&self) -> Result<(), HyperError> {
        non_negative_f32("lr", self.lr)?;
        non_negative_f32("weight_decay", self.weight_decay)?;
        non_negative_f32("momentum", self.momentum)?;
        non_negative_f32("eps", self.eps)?;
        for (name, value) in [
            "ns_coefficients[0]",
            "ns_coefficients[1]",
            "ns_coefficients[2]",
        ]
        .into_iter()
        .zip(self.ns_coefficients)
        {
            finite(name, value)?;
        }
        if self.ns_steps >= MAX_STEPS {
            return Err(HyperError {
                name: "ns_steps",
                value: self.ns_steps as f64,
                requirement: "must be less than 100 for computational efficiency",
            });
        }
        Ok(())
    }

    /// torch's `_adjust_lr`: the learning rate the orthogonalised update of a `rows x cols`
    /// matrix is applied with, computed in float64 in torch's order.
    pub fn adjusted_lr(&self, rows: usize, cols: usize) -> f64 {
        let (a, b) = (rows as f64, cols as f64);
        let ratio = match self.adjust_lr_fn {
            AdjustLr::Original => (a / b).max(1.0).sqrt(),
            AdjustLr::MatchRmsAdamw => 0.2 * a.max(b).sqrt(),
        };
        self.lr * ratio
    }

    fn newton_schulz(&self) -> NewtonSchulz {
        let [a, b, c] = self.ns_coefficients;
        NewtonSchulz {
            coefficients: [a as f32, b as f32, c as f32],
            steps: self.ns_steps,
            eps: self.eps as f32,
        }
    }

    /// One matrix's step, in place (torch's `_single_tensor_muon` body). The momentum and the
    /// param update run in the param's dtype; the orthogonalisation in float32.
    pub fn update_matrix<T: Float>(&self, matrix: Matrix<'_, T>, parallel: bool) {
        let Matrix {
            param,
            grad,
            momentum_buffer,
            rows,
            cols,
        } = matrix;
        let one_minus_momentum = T::from_f64(1.0 - self.momentum);
        let momentum = T::from_f64(self.momentum);
        // buf.lerp_(grad, 1 - momentum); update = grad.lerp(buf, momentum) if nesterov else buf;
        // then `.float()` for the float32 Newton-Schulz.
        let mut update: Vec<f32> = grad
            .iter()
            .zip(momentum_buffer.iter_mut())
            .map(|(&g, buf)| {
                *buf = buf.lerp(g, one_minus_momentum);
                let u = if self.nesterov {
                    g.lerp(*buf, momentum)
                } else {
                    *buf
                };
                u.to_f64() as f32
            })
            .collect();
        newton_schulz::orthogonalize(&mut update, rows, cols, &self.newton_schulz(), parallel);
        // param.mul_(1 - lr * weight_decay); param.add_(update, alpha=-adjusted_lr)
        let decay = T::from_f64(1.0 - self.lr * self.weight_decay);
        let alpha = T::from_f64(-self.adjusted_lr(rows, cols));
        for (p, &u) in param.iter_mut().zip(&update) {
            *p = alpha.mul_add(T::from_f64(f64::from(u)), *p * decay);
        }
    }
}

/// One 2-D param of a Muon step: row-major `rows x cols`, with its grad and momentum buffer.
pub struct Matrix<'a, T> {
    pub param: &'a mut [T],
    pub grad: &'a [T],
    pub momentum_buffer: &'a mut [T],
    pub rows: usize,
    pub cols: usize,
}

impl<'a, T> Matrix<'a, T> {
    /// Checks that every slice holds `rows * cols` elements.
    pub fn new(
        param: &'a mut [T],
        grad: &'a [T],
        momentum_buffer: &'a mut [T],
        rows: usize,
        cols: usize,
    ) -> Self {
        let len = rows.checked_mul(cols).expect("rows * cols overflows");
        assert_eq!(param.len(), len, "param length differs from rows * cols");
        assert_eq!(grad.len(), len, "grad length differs from rows * cols");
        assert_eq!(
            momentum_buffer.len(),
            len,
            "momentum buffer length differs from rows * cols"
        );
        Matrix {
            param,
            grad,
            momentum_buffer,
            rows,
            cols,
        }
    }

    /// Multiply-adds of its Newton-Schulz iteration per step, roughly: what scheduling weighs.
    fn cost(&self) -> usize {
        let (m, n) = (self.rows.min(self.cols), self.rows.max(self.cols));
        m * m * (2 * n + m)
    }
}

/// One matrix of a step, of either dtype, with its group's options.
pub enum Work<'a> {
    F32(Muon, Matrix<'a, f32>),
    F64(Muon, Matrix<'a, f64>),
}

impl Work<'_> {
    fn cost(&self) -> usize {
        match self {
            Work::F32(muon, m) => muon.cost(m),
            Work::F64(muon, m) => muon.cost(m),
        }
    }

    fn run(self, parallel: bool) {
        match self {
            Work::F32(muon, matrix) => muon.update_matrix(matrix, parallel),
            Work::F64(muon, matrix) => muon.update_matrix(matrix, parallel),
        }
    }
}

/// Below this many multiply-adds in all, a step runs on the calling thread.
const PARALLEL_MIN: usize = 1 << 22;

/// Runs every matrix's update: inline when the step is small, else on the pool, the matrices in
/// parallel and each product split across the pool's threads. Every matrix is computed the same
/// way on any number of threads, so the results do not depend on it.
pub fn step(work: Vec<Work<'_>>) {
    let total: usize = work.iter().map(Work::cost).sum();
    pool::for_each(work, total < PARALLEL_MIN, Work::run);
}

impl Muon {
    /// What scheduling weighs a matrix's step by.
    fn cost<T>(&self, matrix: &Matrix<'_, T>) -> usize {
        self.ns_steps.max(1) * matrix.cost()
    }
}

/// The shape of the tensors Muon steps: the rows and columns of a matrix.
pub type MatrixShape = (usize, usize);

impl Rule for Muon {
    fn state_names(&self) -> &'static [&'static str] {
        &["momentum_buffer"]
    }

    fn validate(&self) -> Result<(), HyperError> {
        Muon::validate(self)
    }

    const SHAPED: bool = true;

    fn check_shape(&self, shape: &[usize], _stepping: bool) -> Result<(), String> {
        if shape.len() == 2 {
            Ok(())
        } else {
            Err(
                "Muon only supports 2D parameters (matrices); optimize biases, embeddings and \
                 other params with another optimizer, such as AdamW"
                    .into(),
            )
        }
    }

    type Scalars = MatrixShape;

    fn scalars(&self, _step: u64, _: &mut [f64], shape: &[usize]) -> MatrixShape {
        (shape[0], shape[1])
    }

    /// One matrix's step on the calling thread.
    fn update<T: Float>(&self, &(rows, cols): &MatrixShape, tensor: TensorMut<'_, T>) {
        self.update_matrix(matrix_of(rows, cols, tensor), false);
    }

    fn run<T: Float>(work: Vec<driver::Work<'_, Self, T>>) {
        let work: Vec<(Muon, Matrix<'_, T>)> = work
            .into_iter()
            .map(|w| (w.rule, matrix_of(w.scalars.0, w.scalars.1, w.tensor)))
            .collect();
        let total: usize = work.iter().map(|(muon, m)| muon.cost(m)).sum();
        pool::for_each(work, total < PARALLEL_MIN, |(muon, matrix), parallel| {
            muon.update_matrix(matrix, parallel)
        });
    }
}

fn matrix_of<T>(rows: usize, cols: usize, tensor: TensorMut<'_, T>) -> Matrix<'_, T> {
    let TensorMut {
        param,
        grad,
        state: [momentum_buffer, _, _],
    } = tensor;
    Matrix::new(param, grad, momentum_buffer, rows, cols)
}
