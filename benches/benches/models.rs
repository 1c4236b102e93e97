//! The JIT against the interpreter on the nine light models (`models/light/`), each prepared as
//! `kiln bench` prepares it (imported, inputs generated, weights folded by the passes).
//! `compile/<model>` times the JIT's code generation alone; `run/<model>/...` times runs of an
//! executable prepared once. Sample counts are criterion's minimum so that the interpreter
//! (seconds per run on vgg19) keeps a full `cargo bench` to a few minutes; filter with
//! `cargo bench -p kiln-benches --bench models -- resnet50`.

use criterion::{criterion_group, criterion_main, Criterion, SamplingMode};
use kiln_backends::{interp::Interpreter, jit::Jit, Backend};
use std::time::Duration;

fn models(c: &mut Criterion) {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut jits = vec![("jit-1-thread".to_string(), Jit::with_threads(1))];
    if cores > 1 {
        jits.push((format!("jit-{cores}-threads"), Jit::with_threads(cores)));
    }
    for name in kiln_benches::LIGHT_MODELS {
        let model = kiln_benches::light_model(name).unwrap_or_else(|e| panic!("{name}: {}", e.report()));

        let mut compile = c.benchmark_group("compile");
        compile.sample_size(10).sampling_mode(SamplingMode::Flat).warm_up_time(Duration::from_millis(100));
        compile.bench_function(name, |b| b.iter(|| jits[0].1.prepare(&model.graph).expect("JIT compiles")));
        compile.finish();

        let mut run = c.benchmark_group(format!("run/{name}"));
        run.sample_size(10).sampling_mode(SamplingMode::Flat).warm_up_time(Duration::from_millis(100));
        let backends: Vec<(&str, &dyn Backend)> = jits
            .iter()
            .map(|(label, jit)| (label.as_str(), jit as &dyn Backend))
            .chain([("interp", &Interpreter as &dyn Backend)])
            .collect();
        for (label, backend) in backends {
            let exe = backend.prepare(&model.graph).unwrap_or_else(|e| panic!("{name} on {label}: {e}"));
            run.bench_function(label, |b| b.iter(|| exe.run(&model.inputs).expect("the model runs")));
        }
        run.finish();
    }
}

criterion_group!(benches, models);
criterion_main!(benches);
