//! Criterion benches of Muon's Newton-Schulz orthogonalisation (torch's defaults: five steps) on
//! the shapes Muon sees, on one thread and with every product split across the pool's threads.
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use optrs_core::newton_schulz::{orthogonalize, NewtonSchulz};
use optrs_core::pool;
use std::hint::black_box;

const SHAPES: [(usize, usize); 4] = [(8, 12), (256, 256), (1024, 4096), (4096, 1024)];

fn bench(c: &mut Criterion) {
    let options = NewtonSchulz::default();
    let pool = pool::current();
    let mut group = c.benchmark_group("newton_schulz");
    for (rows, cols) in SHAPES {
        let matrix: Vec<f32> = (0..rows * cols)
            .map(|i| ((i * 7919) % 1000) as f32 / 1000.0 - 0.5)
            .collect();
        let mut x = matrix.clone();
        if rows * cols > 1 << 20 {
            group.sample_size(10);
        }
        let id = format!("{rows}x{cols}");
        group.bench_function(BenchmarkId::new("1 thread", &id), |b| {
            b.iter(|| {
                x.copy_from_slice(&matrix);
                orthogonalize(black_box(&mut x), rows, cols, &options, false)
            })
        });
        let threads = format!("{} threads", pool.current_num_threads());
        group.bench_function(BenchmarkId::new(threads, &id), |b| {
            b.iter(|| {
                x.copy_from_slice(&matrix);
                pool.install(|| orthogonalize(black_box(&mut x), rows, cols, &options, true))
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
