//! Criterion benches of the Rust kernels alone (no Python): one Adam step over the three
//! shapes, at every SIMD level this CPU has, reported as elements per second.
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use optrs_core::driver::{run, Work};
use optrs_core::rules::{Adam, Sgd};
use optrs_core::simd::{self, Level};
use optrs_core::{Rule, TensorMut};

struct Buffers {
    params: Vec<Vec<f32>>,
    grads: Vec<Vec<f32>>,
    exp_avg: Vec<Vec<f32>>,
    exp_avg_sq: Vec<Vec<f32>>,
}

impl Buffers {
    fn new(tensors: usize, len: usize) -> Self {
        let make = |v: f32| (0..tensors).map(|_| vec![v; len]).collect::<Vec<_>>();
        let grads = (0..tensors)
            .map(|_| (0..len).map(|i| 0.01 * (i % 7) as f32).collect())
            .collect();
        Buffers {
            params: make(0.5),
            grads,
            exp_avg: make(0.0),
            exp_avg_sq: make(0.0),
        }
    }

    fn step<R: Rule>(&mut self, rule: R, step: u64) {
        let work = self
            .params
            .iter_mut()
            .zip(&self.grads)
            .zip(self.exp_avg.iter_mut().zip(self.exp_avg_sq.iter_mut()))
            .map(|((p, g), (m, v))| Work {
                rule,
                scalars: rule.scalars(step, &mut [], &[]),
                tensor: TensorMut::new(p, g, [m, v, &mut []]),
            })
            .collect();
        run(work);
    }
}

fn levels() -> Vec<Level> {
    [Level::Baseline, Level::Avx2, Level::Avx512]
        .into_iter()
        .filter(|&l| simd::force(Some(l)).is_ok())
        .collect()
}

fn adam(c: &mut Criterion) {
    let mut group = c.benchmark_group("adam_f32");
    for (name, tensors, len) in [
        ("1x16.8M", 1, 1 << 24),
        ("200x4096", 200, 4096),
        ("1x10", 1, 10),
    ] {
        let mut buffers = Buffers::new(tensors, len);
        group.throughput(Throughput::Elements((tensors * len) as u64));
        if len > 1 << 20 {
            group.sample_size(20);
        }
        for level in levels() {
            simd::force(Some(level)).unwrap();
            let mut step = 0;
            group.bench_function(BenchmarkId::new(name, level.name()), |b| {
                b.iter(|| {
                    step += 1;
                    buffers.step(Adam::default(), step)
                })
            });
        }
        simd::force(None).unwrap();
    }
    group.finish();
}

fn sgd(c: &mut Criterion) {
    let mut group = c.benchmark_group("sgd_momentum_f32");
    let mut buffers = Buffers::new(200, 4096);
    group.throughput(Throughput::Elements(200 * 4096));
    let rule = Sgd {
        momentum: 0.9,
        ..Sgd::default()
    };
    let mut step = 0;
    group.bench_function("200x4096", |b| {
        b.iter(|| {
            step += 1;
            buffers.step(rule, step)
        })
    });
    group.finish();
}

criterion_group!(benches, adam, sgd);
criterion_main!(benches);
