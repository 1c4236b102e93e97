//! The optimizer must not hand the JIT an op it would run on the interpreter: graphs with the
//! activations as exporters write them (erf-GELU as Div/Erf/Add/Mul/Mul, SiLU as Sigmoid·x,
//! HardSwish as x·Clip(x+3, 0, 6)/6, tanh-GELU with Pow), optimized by the e-graph (which
//! fuses some of them into single ops) and compiled, have no interpreter step in the plan, and
//! give what the interpreter gives on the unoptimized graph.

use kiln::driver::Session;
use kiln::model::Model;
use kiln_backends::interp::run_graph;
use kiln_backends::jit::{Engine, Jit};
use kiln_ir::op::{Binary, Unary};
use kiln_ir::{DType, Graph, Op, Tensor, TensorType, ValueRef};
use kiln_tests::{rel_l2, seeded_inputs};

fn scalar(g: &mut Graph, name: &str, v: f32) -> ValueRef {
    g.add_const(name, Tensor::scalar(v))
}

fn bin(g: &mut Graph, name: &str, op: Binary, a: ValueRef, b: ValueRef) -> ValueRef {
    g.add(name, Op::Binary(op), &[a, b]).unwrap()
}

/// x → erf-GELU → SiLU → HardSwish → tanh-GELU, each written out as an exporter writes it.
fn exported_activations() -> Graph {
    let mut g = Graph::new("activations");
    let x = g.add_input("x", TensorType::known(DType::F32, &[2, 8, 5, 7]));
    // 0.5·x·(1 + erf(x/√2))
    let sqrt2 = scalar(&mut g, "sqrt2", std::f32::consts::SQRT_2);
    let d = bin(&mut g, "gelu_div", Binary::Div, x, sqrt2);
    let e = g.add("gelu_erf", Op::Unary(Unary::Erf), &[d]).unwrap();
    let one = scalar(&mut g, "one", 1.0);
    let a = bin(&mut g, "gelu_add", Binary::Add, e, one);
    let m = bin(&mut g, "gelu_mul", Binary::Mul, x, a);
    let half = scalar(&mut g, "half", 0.5);
    let gelu = bin(&mut g, "gelu", Binary::Mul, m, half);
    // y·sigmoid(y)
    let s = g.add("silu_sigmoid", Op::Unary(Unary::Sigmoid), &[gelu]).unwrap();
    let silu = bin(&mut g, "silu", Binary::Mul, gelu, s);
    // y·clip(y + 3, 0, 6)/6
    let three = scalar(&mut g, "three", 3.0);
    let t = bin(&mut g, "hs_add", Binary::Add, silu, three);
    let (zero, six) = (scalar(&mut g, "zero", 0.0), scalar(&mut g, "six", 6.0));
    let c = g.add("hs_clip", Op::Clip, &[t, zero, six]).unwrap();
    let hm = bin(&mut g, "hs_mul", Binary::Mul, silu, c);
    let hardswish = bin(&mut g, "hardswish", Binary::Div, hm, six);
    // 0.5·y·(1 + tanh(√(2/π)·(y + 0.044715·y³)))
    let three_pow = scalar(&mut g, "three_pow", 3.0);
    let cube = bin(&mut g, "tg_pow", Binary::Pow, hardswish, three_pow);
    let k = scalar(&mut g, "k", 0.044715);
    let kc = bin(&mut g, "tg_mul", Binary::Mul, cube, k);
    let inner = bin(&mut g, "tg_add", Binary::Add, hardswish, kc);
    let c0 = scalar(&mut g, "c0", (2.0 / std::f32::consts::PI).sqrt());
    let u = bin(&mut g, "tg_scale", Binary::Mul, inner, c0);
    let th = g.add("tg_tanh", Op::Unary(Unary::Tanh), &[u]).unwrap();
    let a1 = bin(&mut g, "tg_add1", Binary::Add, th, one);
    let m1 = bin(&mut g, "tg_mul1", Binary::Mul, hardswish, a1);
    let y = bin(&mut g, "y", Binary::Mul, m1, half);
    g.set_outputs(vec![y]);
    g
}

#[test]
fn optimized_activations_run_natively_and_match_the_interpreter() {
    let graph = exported_activations();
    let inputs = seeded_inputs(&graph).unwrap();
    let (want, _) = run_graph(&graph, &inputs, &[]).unwrap();
    let model = Model { graph, opset: 17, ir_version: 8, producer: "test".into() };
    let mut session = Session::from_model(model);
    session.optimize().unwrap();
    let optimized = &session.model().graph;
    let compiled = Jit::with_threads(1).compile(optimized).unwrap();
    let report = compiled.report();
    let interpreted: Vec<_> = report.steps.iter().filter(|s| s.engine == Engine::Interpreter).collect();
    assert!(interpreted.is_empty(), "steps on the interpreter: {interpreted:?}");
    assert!(report.fallback_ops.is_empty(), "{:?}", report.fallback_ops);
    let got = kiln_backends::Executable::run(&compiled, &inputs).unwrap();
    let err = rel_l2(&got[0], &want[0]);
    assert!(err <= 1e-5, "relative L2 error {err:.3e}");
}
