//! Shared helpers for rule tests: the interpreter as evaluator and oracle, seeded inputs, and a
//! small graph builder.
#![allow(dead_code)]

use kiln_backends::interp;
use kiln_ir::op::{Conv, Window};
use kiln_ir::{DType, Graph, Op, Tensor, ValueRef};
use kiln_passes::{EGraphPass, EGraphReport, Evaluator};
use std::sync::Arc;

pub struct Interp;

impl Evaluator for Interp {
    fn eval(&self, op: &Op, inputs: &[Option<Tensor>], n: usize) -> Result<Vec<Tensor>, String> {
        interp::eval_node(op, inputs, n).map_err(|e| e.to_string())
    }
}

pub fn evaluator() -> Arc<dyn Evaluator> {
    Arc::new(Interp)
}

/// Runs every rule table on a copy of `g`.
pub fn optimize(g: &Graph) -> (Graph, EGraphReport) {
    let mut out = g.clone();
    let report = EGraphPass::all(evaluator()).optimize(&mut out).expect("the pass runs");
    out.verify().expect("the result verifies");
    (out, report)
}

/// Seeded inputs for every graph input.
pub fn inputs(g: &Graph, seed: &str) -> Vec<Tensor> {
    g.input_values()
        .iter()
        .map(|&v| {
            let t = g.value_type(v);
            let shape = t.concrete_shape().expect("tests use static shapes");
            Tensor::seeded(t.dtype, &shape, &format!("{seed}/{}", g.value_name(v)), 0.0, 1.0).unwrap()
        })
        .collect()
}

/// Largest |a − b| / (1 + |b|) over all outputs.
pub fn max_error(a: &[Tensor], b: &[Tensor]) -> f64 {
    a.iter()
        .zip(b)
        .flat_map(|(x, y)| {
            assert_eq!(x.shape(), y.shape());
            x.to_f64_vec().into_iter().zip(y.to_f64_vec()).map(|(p, q)| (p - q).abs() / (1.0 + q.abs()))
        })
        .fold(0.0, f64::max)
}

/// Optimizes `g`, checks outputs agree on seeded inputs within `tol`, returns the result.
pub fn check(g: &Graph, tol: f64) -> (Graph, EGraphReport) {
    let (out, report) = optimize(g);
    assert!(report.kept_original.is_none(), "{:?}", report.kept_original);
    for seed in ["a", "b"] {
        let ins = inputs(g, seed);
        let want = interp::run_graph(g, &ins, &[]).unwrap().0;
        let got = interp::run_graph(&out, &ins, &[]).unwrap().0;
        let err = max_error(&got, &want);
        assert!(
            err <= tol,
            "outputs differ by {err} (report {report:?})\nbefore:\n{}\nafter:\n{}",
            kiln_ir::text::to_text(g),
            kiln_ir::text::to_text(&out)
        );
    }
    (out, report)
}

/// Number of nodes with this ONNX op type.
pub fn count(g: &Graph, onnx: &str) -> usize {
    g.node_ids().iter().filter(|&&id| g.node(id).op.onnx_name() == onnx).count()
}

/// A seeded constant.
pub fn weight(g: &mut Graph, name: &str, shape: &[usize], center: f32, half: f32) -> ValueRef {
    g.add_const(name, Tensor::seeded(DType::F32, shape, name, center, half).unwrap())
}

/// A convolution with seeded weights `[m, c/group, kh, kw]`, optional bias.
#[allow(clippy::too_many_arguments)]
pub fn conv(
    g: &mut Graph,
    name: &str,
    x: ValueRef,
    m: usize,
    cg: usize,
    k: [usize; 2],
    pads: [usize; 4],
    group: usize,
    dilation: usize,
    bias: bool,
) -> ValueRef {
    let w = weight(g, &format!("{name}.w"), &[m, cg, k[0], k[1]], 0.0, 0.5);
    let mut ins = vec![x, w];
    if bias {
        ins.push(weight(g, &format!("{name}.b"), &[m], 0.0, 0.5));
    }
    let window = Window {
        kernel_shape: Some(k.to_vec()),
        pads: pads.to_vec(),
        dilations: if dilation > 1 { vec![dilation; 2] } else { vec![] },
        ..Default::default()
    };
    g.add(name, Op::Conv(Conv { window, group }), &ins).unwrap()
}

/// Inference BatchNormalization over `c` channels with seeded statistics.
pub fn bn(g: &mut Graph, name: &str, x: ValueRef, c: usize) -> ValueRef {
    let s = weight(g, &format!("{name}.scale"), &[c], 1.0, 0.5);
    let b = weight(g, &format!("{name}.bias"), &[c], 0.0, 0.5);
    let m = weight(g, &format!("{name}.mean"), &[c], 0.0, 0.5);
    let v = weight(g, &format!("{name}.var"), &[c], 1.0, 0.5);
    g.add(name, Op::BatchNorm { epsilon: 1e-5 }, &[x, s, b, m, v]).unwrap()
}
