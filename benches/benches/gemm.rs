//! f32 GEMM throughput (criterion's elements/s here are FLOP/s) on square sizes and on the
//! im2col shapes of typical convolutions, single-threaded: the Kiln JIT on a one-node MatMul
//! graph, the interpreter on the same graph, and the two GEMM crates Kiln could build its core
//! on — `gemm` (its x86-v4 AVX-512 kernels; the one chosen) and `matrixmultiply`. The issue's
//! target is 150 GFLOP/s for the JIT at 512×512×512. `gemm/fma-peak` is the ceiling: one core's
//! f32 multiply-add throughput (independent AVX-512 FMA chains), which no GEMM can exceed.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use kiln_backends::{interp::Interpreter, jit::Jit, Backend};
use std::time::Duration;

fn gemm_sweep(c: &mut Criterion) {
    let mut group = c.benchmark_group("gemm");
    group.sample_size(10).warm_up_time(Duration::from_millis(300)).measurement_time(Duration::from_secs(1));
    for (m, k, n) in kiln_benches::GEMM_SHAPES {
        let shape = format!("{m}x{k}x{n}");
        group.throughput(Throughput::Elements(kiln_benches::gemm_flops(m, k, n)));
        let problem = kiln_benches::matmul(m, k, n);
        for (label, backend) in [("kiln-jit", &Jit::with_threads(1) as &dyn Backend), ("interp", &Interpreter)] {
            let exe = backend.prepare(&problem.graph).unwrap_or_else(|e| panic!("{shape} on {label}: {e}"));
            group.bench_function(BenchmarkId::new(label, &shape), |b| {
                b.iter(|| exe.run(&problem.inputs).expect("MatMul runs"))
            });
        }
        let a = problem.inputs[0].to_vec::<f32>();
        let b = problem.inputs[1].to_vec::<f32>();
        let mut y = vec![0.0f32; m * n];
        group.bench_function(BenchmarkId::new("gemm-crate", &shape), |bench| {
            // SAFETY: `a`, `b` and `y` are row-major m×k, k×n and m×n buffers of exactly those
            // sizes; the strides below describe that layout and `y` aliases neither operand.
            bench.iter(|| unsafe {
                // Row-major C = A·B handed over as column-major Cᵀ = Bᵀ·Aᵀ, as Kiln's core does.
                gemm_f32::gemm::f32::get_gemm_fn()(
                    n,
                    m,
                    k,
                    y.as_mut_ptr(),
                    n as isize,
                    1,
                    false,
                    b.as_ptr(),
                    n as isize,
                    1,
                    a.as_ptr(),
                    k as isize,
                    1,
                    0.0,
                    1.0,
                    false,
                    false,
                    false,
                    gemm_common::Parallelism::None,
                )
            })
        });
        group.bench_function(BenchmarkId::new("matrixmultiply", &shape), |bench| {
            // SAFETY: as above; matrixmultiply takes row and column strides in elements.
            bench.iter(|| unsafe {
                matrixmultiply::sgemm(
                    m,
                    k,
                    n,
                    1.0,
                    a.as_ptr(),
                    k as isize,
                    1,
                    b.as_ptr(),
                    n as isize,
                    1,
                    0.0,
                    y.as_mut_ptr(),
                    n as isize,
                    1,
                )
            })
        });
    }
    group.finish();
}

/// Multiply-adds per `fma_chains` call: 12 independent chains of 16-lane FMAs, 1024 rounds.
const PEAK_FLOPS: u64 = 12 * 16 * 2 * 1024;

/// Twelve independent FMA dependency chains, enough to keep every FMA unit busy.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn fma_chains(seed: f32) -> f32 {
    use std::arch::x86_64::*;
    let (b, c) = (_mm512_set1_ps(1.000_000_1), _mm512_set1_ps(-1e-7));
    let mut acc = [_mm512_set1_ps(seed); 12];
    for _ in 0..1024 {
        for a in &mut acc {
            *a = _mm512_fmadd_ps(*a, b, c);
        }
    }
    acc.iter().map(|&a| _mm512_reduce_add_ps(a)).sum()
}

fn fma_peak(c: &mut Criterion) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") {
        let mut group = c.benchmark_group("gemm");
        group.sample_size(10).warm_up_time(Duration::from_millis(300)).measurement_time(Duration::from_secs(1));
        group.throughput(Throughput::Elements(PEAK_FLOPS));
        // SAFETY: AVX-512F was just detected.
        group.bench_function("fma-peak", |b| b.iter(|| unsafe { fma_chains(std::hint::black_box(1.0)) }));
        group.finish();
    }
}

criterion_group!(benches, fma_peak, gemm_sweep);
criterion_main!(benches);
