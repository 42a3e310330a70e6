//! Every SIMD level, every thread count and every chunking gives the same bits, for every rule.

use optrs_core::driver::Work;
use optrs_core::rules::{
    Adadelta, Adagrad, Adam, Adamax, Adopt, Asgd, Lamb, Lion, NAdam, RAdam, RMSprop, Rprop,
    ScheduleFreeAdamW, Sgd,
};
use optrs_core::simd::{self, Level};
use optrs_core::{pool, Float, Rule, TensorMut};
use proptest::prelude::*;
use std::sync::Mutex;

/// SIMD level and pool size are process-wide: tests that change them take turns.
static GLOBALS: Mutex<()> = Mutex::new(());

#[derive(Clone)]
struct Tensors<T> {
    params: Vec<Vec<T>>,
    grads: Vec<Vec<T>>,
    states: Vec<[Vec<T>; 3]>,
}

impl<T: Float> Tensors<T> {
    fn new(lens: &[usize], seed: u64) -> Self {
        let mut x = seed | 1;
        let mut next = move || {
            // xorshift: a fixed, dependency-free pseudo-random sequence in [-1, 1).
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            T::from_f64((x >> 11) as f64 / (1u64 << 52) as f64 - 1.0)
        };
        let mut vec = |n: usize| (0..n).map(|_| next()).collect::<Vec<T>>();
        let params = lens.iter().map(|&n| vec(n)).collect();
        let grads = lens.iter().map(|&n| vec(n)).collect();
        let states = lens
            .iter()
            .map(|&n| [vec(n), vec(n), vec(n)])
            .map(|s| s.map(abs_all))
            .collect();
        Tensors {
            params,
            grads,
            states,
        }
    }

    /// `steps` steps of `rule`, run as the engine runs them.
    fn run<R: Rule>(&mut self, rule: R, steps: u64) {
        let used = rule.state_names().len();
        // Per-tensor scalar state (NAdam's mu_product, ASGD's eta and mu), as the engine keeps it.
        let initial: Vec<f64> = (0..rule.scalar_state_names().len())
            .map(|i| rule.initial_scalar_state(i))
            .collect();
        let mut scalar_states = vec![initial; self.params.len()];
        for step in 1..=steps {
            let work = self
                .params
                .iter_mut()
                .zip(&self.grads)
                .zip(&mut self.states)
                .zip(&mut scalar_states)
                .map(|(((p, g), s), scalar_state)| {
                    let [a, b, c] = s;
                    let slots: [&mut [T]; 3] = [a, b, c];
                    let mut k = 0;
                    let state = slots.map(|slot| {
                        k += 1;
                        if k <= used {
                            slot
                        } else {
                            &mut [][..]
                        }
                    });
                    Work {
                        rule,
                        scalars: rule.scalars(step, scalar_state, &[]),
                        tensor: TensorMut::new(p, g, state),
                    }
                })
                .collect();
            R::run(work);
        }
    }

    fn bits(&self) -> Vec<u64> {
        self.params
            .iter()
            .chain(self.states.iter().flatten())
            .flatten()
            .map(|x| x.to_f64().to_bits())
            .collect()
    }
}

fn abs_all<T: Float>(v: Vec<T>) -> Vec<T> {
    v.into_iter().map(Float::abs).collect()
}

/// Runs one rule on a float32 and a float64 set of tensors.
type Apply = Box<dyn Fn(&mut Tensors<f32>, &mut Tensors<f64>)>;

/// Every element-wise rule (all 14), with options that take each one's branches.
fn rules() -> Vec<Apply> {
    fn both<R: Rule>(rule: R) -> Apply {
        Box::new(move |a, b| {
            // Seven steps: RAdam's rectified branch starts once its rho_t passes 5.
            a.run(rule, 7);
            b.run(rule, 7);
        })
    }
    vec![
        both(Sgd {
            lr: 0.1,
            momentum: 0.9,
            nesterov: true,
            weight_decay: 0.01,
            ..Sgd::default()
        }),
        both(Sgd {
            lr: 0.1,
            momentum: 0.5,
            dampening: 0.3,
            maximize: true,
            ..Sgd::default()
        }),
        both(Adam {
            amsgrad: true,
            weight_decay: 0.1,
            ..Adam::default()
        }),
        both(Adam {
            beta1: 0.3,
            decoupled_weight_decay: true,
            weight_decay: 0.1,
            ..Adam::default()
        }),
        both(Adagrad {
            lr_decay: 0.01,
            weight_decay: 0.1,
            initial_accumulator_value: 0.5,
            ..Adagrad::default()
        }),
        both(Adadelta {
            weight_decay: 0.05,
            ..Adadelta::default()
        }),
        both(RMSprop {
            centered: true,
            momentum: 0.5,
            weight_decay: 0.01,
            ..RMSprop::default()
        }),
        both(RMSprop {
            centered: true,
            ..RMSprop::default()
        }),
        both(Lamb::default()),
        both(Lamb {
            weight_decay: 0.0,
            maximize: true,
            ..Lamb::default()
        }),
        both(ScheduleFreeAdamW {
            weight_decay: 0.1,
            warmup_steps: 2.0,
            ..ScheduleFreeAdamW::default()
        }),
        both(Adamax {
            weight_decay: 0.1,
            maximize: true,
            ..Adamax::default()
        }),
        both(NAdam {
            weight_decay: 0.1,
            ..NAdam::default()
        }),
        both(NAdam {
            weight_decay: 0.1,
            decoupled_weight_decay: true,
            ..NAdam::default()
        }),
        both(RAdam {
            beta2: 0.9,
            weight_decay: 0.1,
            ..RAdam::default()
        }),
        both(RAdam {
            decoupled_weight_decay: true,
            weight_decay: 0.1,
            ..RAdam::default()
        }),
        both(Rprop {
            maximize: true,
            ..Rprop::default()
        }),
        // t0 = 1: averaging starts at the second step.
        both(Asgd {
            t0: 1.0,
            weight_decay: 0.1,
            ..Asgd::default()
        }),
        both(Lion {
            weight_decay: 0.1,
            ..Lion::default()
        }),
        both(Adopt {
            weight_decay: 0.1,
            ..Adopt::default()
        }),
        both(Adopt {
            decouple: true,
            clip: false,
            weight_decay: 0.1,
            maximize: true,
            ..Adopt::default()
        }),
    ]
}

/// Sizes that exercise tails of every vector width, batching of small tensors and chunking (the
/// last also splits LAMB's norms over tasks).
const LENS: &[usize] = &[1, 3, 17, 33, 1000, 40_000, 100_003, 0, 7, 300_001];

fn outcome(level: Level, threads: usize) -> Vec<(Vec<u64>, Vec<u64>)> {
    simd::force(Some(level)).unwrap();
    pool::set_num_threads(threads).unwrap();
    let results = rules()
        .into_iter()
        .map(|apply| {
            let mut a = Tensors::<f32>::new(LENS, 7);
            let mut b = Tensors::<f64>::new(LENS, 7);
            apply(&mut a, &mut b);
            (a.bits(), b.bits())
        })
        .collect();
    simd::force(None).unwrap();
    results
}

#[test]
fn every_simd_level_and_thread_count_gives_the_same_bits() {
    let _turn = GLOBALS.lock().unwrap_or_else(|e| e.into_inner());
    let reference = outcome(Level::Baseline, 1);
    for level in [Level::Baseline, Level::Avx2, Level::Avx512] {
        if simd::force(Some(level)).is_err() {
            eprintln!(
                "note: this CPU lacks {}; that path is not compared here",
                level.name()
            );
            continue;
        }
        for threads in [1, 2, 3] {
            assert!(
                outcome(level, threads) == reference,
                "{} with {threads} threads differs",
                level.name()
            );
        }
    }
    simd::force(None).unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Updating a tensor in two pieces equals updating it whole: the property the driver's
    /// chunking relies on.
    #[test]
    fn split_updates_equal_whole_updates(len in 0usize..300, cut in 0usize..300, seed in 1u64..1000) {
        let cut = cut.min(len);
        let rule = Adam { amsgrad: true, weight_decay: 0.1, ..Adam::default() };
        let whole = {
            let mut t = Tensors::<f32>::new(&[len], seed);
            t.run(rule, 2);
            t.bits()
        };
        let mut t = Tensors::<f32>::new(&[len], seed);
        for step in 1..=2 {
            let [a, b, c] = &mut t.states[0];
            let tensor = TensorMut::new(&mut t.params[0], &t.grads[0], [a, b, c]);
            let (head, tail) = tensor.split_at(cut);
            rule.update(&rule.scalars(step, &mut [], &[]), head);
            rule.update(&rule.scalars(step, &mut [], &[]), tail);
        }
        prop_assert_eq!(whole, t.bits());
    }
}

#[test]
fn adam_first_step_matches_hand_computation() {
    let mut p = [1.0f64];
    let mut m = [0.0f64];
    let mut v = [0.0f64];
    let rule = Adam {
        lr: 0.1,
        ..Adam::default()
    };
    rule.update(
        &rule.scalars(1, &mut [], &[]),
        TensorMut::new(&mut p, &[0.5], [&mut m, &mut v, &mut []]),
    );
    // m = 0.05, v = 0.00025; bias-corrected m/sqrt(v) = 1, so the step is lr / (1 + eps/0.5).
    assert!((m[0] - 0.05).abs() < 1e-15);
    assert!((v[0] - 0.00025).abs() < 1e-15);
    assert!((p[0] - (1.0 - 0.1 / (1.0 + 1e-8 / 0.5))).abs() < 1e-12);
}

#[test]
fn hyperparameter_errors_name_the_value() {
    let err = Adam {
        beta1: 1.0,
        ..Adam::default()
    }
    .validate()
    .unwrap_err();
    assert_eq!(err.to_string(), "invalid betas[0]=1: must be in [0, 1)");
    assert!(Adam {
        lr: f64::NAN,
        ..Adam::default()
    }
    .validate()
    .is_err());
    assert!(Sgd {
        nesterov: true,
        ..Sgd::default()
    }
    .validate()
    .is_err());
}
