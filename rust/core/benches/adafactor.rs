//! Criterion benches of one Adafactor step (torch's defaults, float32), on one thread and on the
//! pool's threads: a 4096 x 4096 matrix (factored), 16.8 M elements in one vector (unfactored),
//! and 200 small matrices (per-tensor overhead).
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use optrs_core::pool;
use optrs_core::rules::adafactor::{step, Adafactor, SecondMoment, Tensor, Work};

struct Param {
    shape: Vec<usize>,
    data: Vec<f32>,
    grad: Vec<f32>,
    row_var: Vec<f32>,
    col_var: Vec<f32>,
    steps: u64,
}

impl Param {
    fn new(shape: &[usize]) -> Self {
        let len: usize = shape.iter().product();
        let (rows, cols) = match shape {
            [rows, cols] => (*rows, *cols),
            _ => (len, 0),
        };
        Param {
            shape: shape.to_vec(),
            data: (0..len)
                .map(|i| ((i * 7919) % 1000) as f32 / 1000.0 - 0.5)
                .collect(),
            grad: (0..len).map(|i| 0.01 * (i % 7) as f32 - 0.03).collect(),
            row_var: vec![0.0; rows],
            col_var: vec![0.0; cols],
            steps: 0,
        }
    }

    fn work(&mut self) -> Work<'_> {
        self.steps += 1;
        let moment = match self.shape[..] {
            [rows, cols] => SecondMoment::Factored {
                row_var: &mut self.row_var,
                col_var: &mut self.col_var,
                rows,
                cols,
            },
            _ => SecondMoment::Unfactored {
                variance: &mut self.row_var,
            },
        };
        let tensor = Tensor::new(&mut self.data, &self.grad, moment, self.steps);
        Work::F32(Adafactor::default(), tensor)
    }
}

fn bench(c: &mut Criterion) {
    let threads = pool::num_threads();
    let mut group = c.benchmark_group("adafactor_f32");
    for (name, count, shape) in [
        ("4096x4096", 1, vec![4096, 4096]),
        ("1x16.8M", 1, vec![1 << 24]),
        ("200x(64x64)", 200, vec![64, 64]),
    ] {
        let mut params: Vec<Param> = (0..count).map(|_| Param::new(&shape)).collect();
        let elements: usize = params.iter().map(|p| p.data.len()).sum();
        group.throughput(Throughput::Elements(elements as u64));
        if elements > 1 << 20 {
            group.sample_size(20);
        }
        let counts = if threads > 1 {
            vec![1, threads]
        } else {
            vec![1]
        };
        for n in counts {
            pool::set_num_threads(n).unwrap();
            group.bench_function(BenchmarkId::new(format!("{n} threads"), name), |b| {
                b.iter(|| step(params.iter_mut().map(Param::work).collect()))
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
