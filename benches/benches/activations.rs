//! Elementwise throughput of the JIT's generated kernels on 1M-element f32 tensors, one
//! thread: SiLU (Sigmoid·x, as exporters write it), GELU (erf form, one op after the e-graph's
//! fusion), tanh-GELU, Exp and Relu (the memory-bound floor). Throughput is bytes read plus
//! written (8 per element). `cargo bench -p kiln-benches --bench activations`.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use kiln_backends::jit::Jit;
use kiln_ir::op::{Binary, Unary};
use kiln_ir::{DType, Graph, Op, Tensor, TensorType};
use std::time::Duration;

const N: usize = 1 << 20;

/// `y = op(x)`, or `x·sigmoid(x)` for `None`.
fn graph(op: Option<Unary>) -> Graph {
    let mut g = Graph::new("act");
    let x = g.add_input("x", TensorType::known(DType::F32, &[N]));
    let y = match op {
        Some(op) => g.add("y", Op::Unary(op), &[x]).expect("valid"),
        None => {
            let s = g.add("s", Op::Unary(Unary::Sigmoid), &[x]).expect("valid");
            g.add("y", Op::Binary(Binary::Mul), &[x, s]).expect("valid")
        }
    };
    g.set_outputs(vec![y]);
    g
}

fn activations(c: &mut Criterion) {
    let x = Tensor::seeded(DType::F32, &[N], "x", 0.0, 4.0).expect("valid");
    let mut group = c.benchmark_group("activation-1M");
    group.throughput(Throughput::Bytes((N * 8) as u64)).warm_up_time(Duration::from_millis(300));
    for (name, op) in [
        ("silu", None),
        ("gelu", Some(Unary::Gelu { tanh_approx: false })),
        ("gelu-tanh", Some(Unary::Gelu { tanh_approx: true })),
        ("exp", Some(Unary::Exp)),
        ("relu", Some(Unary::Relu)),
    ] {
        let compiled = Jit::with_threads(1).compile(&graph(op)).expect("compiles");
        let mut out = vec![Tensor::zeros(DType::F32, &[N]).expect("valid")];
        group.bench_function(name, |b| b.iter(|| compiled.run_into(std::slice::from_ref(&x), &mut out).expect("runs")));
    }
    group.finish();
}

criterion_group!(benches, activations);
criterion_main!(benches);
