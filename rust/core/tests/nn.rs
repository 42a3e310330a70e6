//! The convolution and max pooling against direct float64 loops, and the convolution's gradients
//! bit for bit across thread counts.

use optrs_core::nn::conv::{conv2d, conv2d_backward, Conv2d, ConvGrads, ConvShape};
use optrs_core::nn::pooling::{max_pool2d, Pool2d, PoolShape};
use optrs_core::pool;

fn values(len: usize, seed: u64) -> Vec<f64> {
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..len)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
        })
        .collect()
}

/// Calls `f(n, o, oh, ow, c, ih, iw, weight_index)` for every multiply-add of the convolution.
fn each_tap(s: &ConvShape, mut f: impl FnMut(usize, usize, usize, usize)) {
    let [h, w] = s.in_size;
    let [kh, kw] = s.kernel;
    let [oh_n, ow_n] = s.out_size;
    let o = &s.options;
    let (gin, gout) = (s.in_channels / o.groups, s.out_channels / o.groups);
    for n in 0..s.batch {
        for co in 0..s.out_channels {
            let g = co / gout;
            for oh in 0..oh_n {
                for ow in 0..ow_n {
                    for c in 0..gin {
                        for ki in 0..kh {
                            for kj in 0..kw {
                                let ih = (oh * o.stride[0] + ki * o.dilation[0]) as isize
                                    - o.padding[0] as isize;
                                let iw = (ow * o.stride[1] + kj * o.dilation[1]) as isize
                                    - o.padding[1] as isize;
                                if ih < 0 || iw < 0 || ih >= h as isize || iw >= w as isize {
                                    continue;
                                }
                                let ci = g * gin + c;
                                let x_at =
                                    ((n * s.in_channels + ci) * h + ih as usize) * w + iw as usize;
                                let y_at = ((n * s.out_channels + co) * oh_n + oh) * ow_n + ow;
                                let w_at = ((co * gin + c) * kh + ki) * kw + kj;
                                f(x_at, y_at, w_at, co);
                            }
                        }
                    }
                }
            }
        }
    }
}

fn assert_close(got: &[f64], want: &[f64]) {
    assert_eq!(got.len(), want.len());
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= 1e-12 * (1.0 + w.abs()),
            "element {i}: {g} != {w}"
        );
    }
}

#[test]
fn conv2d_and_gradients_match_direct_loops() {
    let cases = [
        ([2, 3, 9, 9], [4, 3, 3, 3], [1, 1], [0, 0], [1, 1], 1),
        ([2, 4, 10, 11], [6, 2, 3, 2], [2, 1], [1, 2], [2, 3], 2),
        ([3, 5, 6, 6], [4, 5, 1, 1], [1, 1], [0, 0], [1, 1], 1),
        ([1, 6, 7, 7], [6, 1, 3, 3], [2, 2], [1, 1], [1, 1], 6),
    ];
    for (x_shape, w_shape, stride, padding, dilation, groups) in cases {
        let options = Conv2d {
            stride,
            padding,
            dilation,
            groups,
        };
        let s = ConvShape::new(&x_shape, &w_shape, options).unwrap();
        let x = values(x_shape.iter().product(), 1);
        let weight = values(w_shape.iter().product(), 2);
        let bias = values(s.out_channels, 3);
        let y_len: usize = s.output_shape().iter().product();
        let grad_y = values(y_len, 4);
        let mut want_y = vec![0.0; y_len];
        let (mut want_gx, mut want_gw) = (vec![0.0; x.len()], vec![0.0; weight.len()]);
        let mut want_gb = vec![0.0; s.out_channels];
        each_tap(&s, |xi, yi, wi, _| {
            want_y[yi] += weight[wi] * x[xi];
            want_gx[xi] += weight[wi] * grad_y[yi];
            want_gw[wi] += grad_y[yi] * x[xi];
        });
        let plane = y_len / (s.batch * s.out_channels);
        for (i, y) in want_y.iter_mut().enumerate() {
            *y += bias[i / plane % s.out_channels];
            want_gb[i / plane % s.out_channels] += grad_y[i];
        }
        let mut y = vec![0.0; y_len];
        conv2d(&s, &x, &weight, Some(&bias), &mut y).unwrap();
        assert_close(&y, &want_y);
        let (mut gx, mut gw, mut gb) = (
            vec![0.0; x.len()],
            vec![0.0; weight.len()],
            vec![0.0; bias.len()],
        );
        let grads = ConvGrads {
            input: Some(&mut gx),
            weight: Some(&mut gw),
            bias: Some(&mut gb),
        };
        conv2d_backward(&s, &x, &weight, &grad_y, grads).unwrap();
        assert_close(&gx, &want_gx);
        assert_close(&gw, &want_gw);
        assert_close(&gb, &want_gb);
    }
}

#[test]
fn max_pool2d_matches_direct_loops() {
    let options = Pool2d {
        kernel: [3, 2],
        stride: [2, 1],
        padding: [1, 1],
        dilation: [2, 1],
        ceil_mode: true,
    };
    let s = PoolShape::new("x", &[2, 3, 9, 8], options).unwrap();
    let x = values(2 * 3 * 72, 5);
    let [oh_n, ow_n] = s.out_size;
    let (mut y, mut indices) = (vec![0.0; 6 * oh_n * ow_n], vec![0i64; 6 * oh_n * ow_n]);
    max_pool2d(&s, &x, &mut y, &mut indices).unwrap();
    for p in 0..6 {
        for oh in 0..oh_n {
            for ow in 0..ow_n {
                let (mut best, mut at) = (f64::NEG_INFINITY, -1i64);
                for ki in 0..3 {
                    for kj in 0..2 {
                        let ih = (oh * 2 + ki * 2) as isize - 1;
                        let iw = (ow + kj) as isize - 1;
                        if (0..9).contains(&ih) && (0..8).contains(&iw) {
                            let v = x[p * 72 + (ih * 8 + iw) as usize];
                            if at < 0 || v > best {
                                (best, at) = (v, ih as i64 * 8 + iw as i64);
                            }
                        }
                    }
                }
                let o = (p * oh_n + oh) * ow_n + ow;
                assert_eq!((y[o], indices[o]), (best, at));
            }
        }
    }
}

/// Big enough that samples, chunks and (with one sample) the products themselves are split.
fn conv_bits(threads: usize, batch: usize) -> Vec<u32> {
    pool::set_num_threads(threads).unwrap();
    let options = Conv2d {
        stride: [1, 1],
        padding: [1, 1],
        dilation: [1, 1],
        groups: 1,
    };
    let s = ConvShape::new(&[batch, 16, 20, 20], &[32, 16, 3, 3], options).unwrap();
    let x: Vec<f32> = values(batch * 16 * 400, 6)
        .iter()
        .map(|&v| v as f32)
        .collect();
    let weight: Vec<f32> = values(32 * 16 * 9, 7).iter().map(|&v| v as f32).collect();
    let grad_y: Vec<f32> = values(batch * 32 * 400, 8)
        .iter()
        .map(|&v| v as f32)
        .collect();
    let mut y = vec![0.0f32; grad_y.len()];
    conv2d(&s, &x, &weight, None, &mut y).unwrap();
    let (mut gx, mut gw, mut gb) = (vec![0.0; x.len()], vec![0.0; weight.len()], vec![0.0; 32]);
    let grads = ConvGrads {
        input: Some(&mut gx),
        weight: Some(&mut gw),
        bias: Some(&mut gb),
    };
    conv2d_backward(&s, &x, &weight, &grad_y, grads).unwrap();
    [y, gx, gw, gb]
        .concat()
        .iter()
        .map(|v| v.to_bits())
        .collect()
}

#[test]
fn conv_results_do_not_depend_on_the_thread_count() {
    for batch in [1, 37] {
        let reference = conv_bits(1, batch);
        for threads in [2, 3, 4] {
            assert!(
                conv_bits(threads, batch) == reference,
                "batch {batch}, {threads} threads"
            );
        }
    }
}
