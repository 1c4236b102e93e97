//! `tract-runner MODEL INPUT.npy RUNS THREADS WARMUP`: loads an ONNX model into tract with the
//! input's shape as its input fact, optimizes it, runs it RUNS times (after WARMUP runs) and prints
//! one JSON line `{"median_ms": …, "min_ms": …, "prepare_ms": …}` for `benches/peers`.
//! THREADS > 1 installs tract-linalg's rayon executor with that many threads.

use anyhow::{bail, Context};
use std::time::Instant;
use tract_onnx::prelude::*;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, model, input, runs, threads, warm_up] = args.as_slice() else {
        bail!("usage: tract-runner MODEL INPUT.npy RUNS THREADS WARMUP");
    };
    let warm_up: usize = warm_up.parse().context("WARMUP must be a non-negative integer")?;
    let runs: usize = runs.parse().context("RUNS must be a positive integer")?;
    let threads: usize = threads.parse().context("THREADS must be a positive integer")?;
    if runs == 0 || threads == 0 {
        bail!("RUNS and THREADS must be at least 1");
    }
    if threads > 1 {
        use tract_linalg::multithread::{set_default_executor, Executor};
        set_default_executor(Executor::multithread(threads));
    }
    let input = read_npy(input)?;
    let started = Instant::now();
    let plan = tract_onnx::onnx()
        .model_for_path(model)?
        .with_input_fact(0, f32::fact(input.shape()).into())?
        .into_optimized()?
        .into_runnable()?;
    let prepare_ms = ms(started);
    let input: TValue = input.into();
    let mut times = Vec::with_capacity(runs);
    for i in 0..warm_up + runs {
        let started = Instant::now();
        plan.run(tvec![input.clone()])?;
        if i >= warm_up {
            times.push(ms(started));
        }
    }
    times.sort_by(f64::total_cmp);
    let median = if runs % 2 == 1 { times[runs / 2] } else { (times[runs / 2 - 1] + times[runs / 2]) / 2.0 };
    println!("{{\"median_ms\": {median:.4}, \"min_ms\": {:.4}, \"prepare_ms\": {prepare_ms:.1}}}", times[0]);
    Ok(())
}

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1e3
}

/// Reads a little-endian f32 .npy file (C order) as a tract tensor.
fn read_npy(path: &str) -> anyhow::Result<Tensor> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {path}"))?;
    let file = npyz::NpyFile::new(&bytes[..]).with_context(|| format!("{path} is not a .npy file"))?;
    if file.order() != npyz::Order::C {
        bail!("{path}: Fortran-order arrays are not supported");
    }
    let shape: Vec<usize> = file.shape().iter().map(|&d| d as usize).collect();
    let data: Vec<f32> = file.into_vec().with_context(|| format!("{path} must hold f32 data"))?;
    Ok(Tensor::from_shape(&shape, &data)?)
}
