//! One small graph per rule: the interpreter gives the same outputs before and after, and the
//! rule did what it claims (the op it removes is gone, the op it introduces is there).

mod common;
use common::*;
use kiln_ir::op::{Binary, ReduceOp, Unary};
use kiln_ir::{DType, Graph, Op, Tensor, TensorType, ValueRef};

fn x(g: &mut Graph, shape: &[usize]) -> ValueRef {
    g.add_input("x", TensorType::known(DType::F32, shape))
}

fn scalar(g: &mut Graph, name: &str, v: f32) -> ValueRef {
    g.add_const(name, Tensor::scalar(v))
}

fn bin(g: &mut Graph, name: &str, b: Binary, a: ValueRef, c: ValueRef) -> ValueRef {
    g.add(name, Op::Binary(b), &[a, c]).unwrap()
}

fn un(g: &mut Graph, name: &str, u: Unary, a: ValueRef) -> ValueRef {
    g.add(name, Op::Unary(u), &[a]).unwrap()
}

fn reduce(g: &mut Graph, name: &str, op: ReduceOp, a: ValueRef, axis: i64) -> ValueRef {
    let axes = g.add_const(format!("{name}.axes"), Tensor::vector(vec![axis]));
    g.add(name, Op::Reduce { op, keepdims: true, noop_with_empty_axes: false }, &[a, axes]).unwrap()
}

/// Optimizes, checks outputs, and returns op counts of the result for `ops`.
fn after(g: &Graph, ops: &[&str]) -> Vec<usize> {
    let (out, _) = check(g, 1e-5);
    ops.iter().map(|op| count(&out, op)).collect()
}

#[test]
fn neutral_elements_vanish() {
    let mut g = Graph::new("t");
    let x = x(&mut g, &[2, 3]);
    let one = scalar(&mut g, "one", 1.0);
    let zero = g.add_const("zero", Tensor::vector(vec![0.0f32; 3]));
    let a = bin(&mut g, "a", Binary::Mul, x, one);
    let b = bin(&mut g, "b", Binary::Add, zero, a);
    let c = bin(&mut g, "c", Binary::Div, b, one);
    let d = bin(&mut g, "d", Binary::Sub, c, zero);
    let e = g.add("e", Op::Identity, &[d]).unwrap();
    let f = un(&mut g, "f", Unary::Neg, e);
    let f = un(&mut g, "f2", Unary::Neg, f);
    let y = un(&mut g, "y", Unary::Relu, f);
    g.set_outputs(vec![y]);
    assert_eq!(after(&g, &["Mul", "Add", "Div", "Sub", "Identity", "Neg", "Relu"]), [0, 0, 0, 0, 0, 0, 1]);
}

#[test]
fn a_constant_that_broadcasts_wider_is_not_neutral() {
    let mut g = Graph::new("t");
    let x = x(&mut g, &[3]);
    let ones = g.add_const("ones", Tensor::from_vec(&[2, 3], vec![1.0f32; 6]).unwrap());
    let y = bin(&mut g, "y", Binary::Mul, x, ones);
    g.set_outputs(vec![y]);
    assert_eq!(after(&g, &["Mul"]), [1]);
}

#[test]
fn movement_chains_collapse() {
    let mut g = Graph::new("t");
    let x = x(&mut g, &[2, 3, 4]);
    let t1 = g.add("t1", Op::Transpose { perm: Some(vec![1, 2, 0]) }, &[x]).unwrap();
    let t2 = g.add("t2", Op::Transpose { perm: Some(vec![2, 0, 1]) }, &[t1]).unwrap();
    let s1 = g.add_const("s1", Tensor::vector(vec![6i64, 4]));
    let r1 = g.add("r1", Op::Reshape { allowzero: false }, &[t2, s1]).unwrap();
    let s2 = g.add_const("s2", Tensor::vector(vec![4i64, -1]));
    let r2 = g.add("r2", Op::Reshape { allowzero: false }, &[r1, s2]).unwrap();
    let c1 = g.add("c1", Op::Cast { to: DType::F64 }, &[r2]).unwrap();
    let c2 = g.add("c2", Op::Cast { to: DType::F32 }, &[c1]).unwrap();
    let y = un(&mut g, "y", Unary::Relu, c2);
    g.set_outputs(vec![y]);
    assert_eq!(after(&g, &["Transpose", "Reshape", "Cast"]), [0, 1, 0]);
}

#[test]
fn lossy_cast_chains_stay() {
    let mut g = Graph::new("t");
    let x = x(&mut g, &[4]);
    let c1 = g.add("c1", Op::Cast { to: DType::I32 }, &[x]).unwrap();
    let y = g.add("y", Op::Cast { to: DType::F32 }, &[c1]).unwrap();
    g.set_outputs(vec![y]);
    assert_eq!(after(&g, &["Cast"]), [2]);
}

#[test]
fn constant_subgraphs_fold_and_common_subexpressions_merge() {
    let mut g = Graph::new("t");
    let x = x(&mut g, &[3]);
    let a = g.add_const("a", Tensor::vector(vec![1.0f32, 2.0, 3.0]));
    let e = un(&mut g, "e", Unary::Exp, a);
    let s = bin(&mut g, "s", Binary::Mul, e, a);
    let p = bin(&mut g, "p", Binary::Add, x, s);
    let q = bin(&mut g, "q", Binary::Add, x, s);
    let y = bin(&mut g, "y", Binary::Mul, p, q);
    g.set_outputs(vec![y]);
    assert_eq!(after(&g, &["Exp", "Add", "Mul"]), [0, 1, 1]);
}

#[test]
fn dropout_and_single_sums_vanish_and_sums_become_adds() {
    let mut g = Graph::new("t");
    let x = x(&mut g, &[4]);
    let d = g.add("d", Op::Dropout, &[x]).unwrap();
    let s1 = g.add("s1", Op::Variadic(kiln_ir::op::Variadic::Sum), &[d]).unwrap();
    let s = g.add("s", Op::Variadic(kiln_ir::op::Variadic::Sum), &[s1, x]).unwrap();
    g.set_outputs(vec![s]);
    assert_eq!(after(&g, &["Dropout", "Sum", "Add"]), [0, 0, 1]);
}

#[test]
fn matmul_add_becomes_gemm() {
    let mut g = Graph::new("t");
    let x = x(&mut g, &[3, 4]);
    let w = weight(&mut g, "w", &[4, 5], 0.0, 1.0);
    let b = weight(&mut g, "b", &[5], 0.0, 1.0);
    let m = g.add("m", Op::MatMul, &[x, w]).unwrap();
    let y = bin(&mut g, "y", Binary::Add, b, m);
    g.set_outputs(vec![y]);
    assert_eq!(after(&g, &["MatMul", "Add", "Gemm"]), [0, 0, 1]);
}

#[test]
fn decomposed_softmax_is_recognized() {
    let mut g = Graph::new("t");
    let x = x(&mut g, &[2, 5]);
    let m = reduce(&mut g, "m", ReduceOp::Max, x, -1);
    let d = bin(&mut g, "d", Binary::Sub, x, m);
    let e = un(&mut g, "e", Unary::Exp, d);
    let s = reduce(&mut g, "s", ReduceOp::Sum, e, 1);
    let y = bin(&mut g, "y", Binary::Div, e, s);
    g.set_outputs(vec![y]);
    assert_eq!(after(&g, &["Softmax", "Exp", "ReduceSum"]), [1, 0, 0]);
}

#[test]
fn decomposed_layernorm_with_affine_tail_is_recognized() {
    let mut g = Graph::new("t");
    let x = x(&mut g, &[2, 3, 8]);
    let mean = reduce(&mut g, "mean", ReduceOp::Mean, x, -1);
    let d = bin(&mut g, "d", Binary::Sub, x, mean);
    let two = scalar(&mut g, "two", 2.0);
    let sq = bin(&mut g, "sq", Binary::Pow, d, two);
    let var = reduce(&mut g, "var", ReduceOp::Mean, sq, -1);
    let eps = scalar(&mut g, "eps", 1e-5);
    let ve = bin(&mut g, "ve", Binary::Add, var, eps);
    let sd = un(&mut g, "sd", Unary::Sqrt, ve);
    let n = bin(&mut g, "n", Binary::Div, d, sd);
    let gamma = weight(&mut g, "gamma", &[8], 1.0, 0.5);
    let beta = weight(&mut g, "beta", &[8], 0.0, 0.5);
    let sc = bin(&mut g, "sc", Binary::Mul, n, gamma);
    let y = bin(&mut g, "y", Binary::Add, sc, beta);
    g.set_outputs(vec![y]);
    assert_eq!(after(&g, &["LayerNormalization", "ReduceMean", "Mul", "Add"]), [1, 0, 0, 0]);
}

#[test]
fn erf_gelu_is_recognized() {
    let mut g = Graph::new("t");
    let x = x(&mut g, &[2, 6]);
    let r2 = scalar(&mut g, "r2", std::f32::consts::SQRT_2);
    let u = bin(&mut g, "u", Binary::Div, x, r2);
    let e = un(&mut g, "e", Unary::Erf, u);
    let one = scalar(&mut g, "one", 1.0);
    let p = bin(&mut g, "p", Binary::Add, e, one);
    let xp = bin(&mut g, "xp", Binary::Mul, x, p);
    let half = scalar(&mut g, "half", 0.5);
    let y = bin(&mut g, "y", Binary::Mul, xp, half);
    g.set_outputs(vec![y]);
    assert_eq!(after(&g, &["Gelu", "Erf", "Mul"]), [1, 0, 0]);
}

#[test]
fn tanh_gelu_is_recognized() {
    let mut g = Graph::new("t");
    let x = x(&mut g, &[2, 6]);
    let three = scalar(&mut g, "three", 3.0);
    let cube = bin(&mut g, "cube", Binary::Pow, x, three);
    let k = scalar(&mut g, "k", 0.044715);
    let kc = bin(&mut g, "kc", Binary::Mul, k, cube);
    let inner = bin(&mut g, "inner", Binary::Add, x, kc);
    let c = scalar(&mut g, "c", (2.0f32 / std::f32::consts::PI).sqrt());
    let v = bin(&mut g, "v", Binary::Mul, inner, c);
    let t = un(&mut g, "t", Unary::Tanh, v);
    let one = scalar(&mut g, "one", 1.0);
    let p = bin(&mut g, "p", Binary::Add, one, t);
    let half = scalar(&mut g, "half", 0.5);
    let hx = bin(&mut g, "hx", Binary::Mul, half, x);
    let y = bin(&mut g, "y", Binary::Mul, hx, p);
    g.set_outputs(vec![y]);
    assert_eq!(after(&g, &["Gelu", "Tanh", "Pow"]), [1, 0, 0]);
}

#[test]
fn hardswish_is_recognized_in_both_forms() {
    let mut g = Graph::new("t");
    let x = x(&mut g, &[2, 6]);
    let hs = un(&mut g, "hs", Unary::HardSigmoid { alpha: 1.0 / 6.0, beta: 0.5 }, x);
    let a = bin(&mut g, "a", Binary::Mul, x, hs);
    let three = scalar(&mut g, "three", 3.0);
    let p3 = bin(&mut g, "p3", Binary::Add, x, three);
    let lo = scalar(&mut g, "lo", 0.0);
    let hi = scalar(&mut g, "hi", 6.0);
    let r6 = g.add("r6", Op::Clip, &[p3, lo, hi]).unwrap();
    let m = bin(&mut g, "m", Binary::Mul, x, r6);
    let six = scalar(&mut g, "six", 6.0);
    let b = bin(&mut g, "b", Binary::Div, m, six);
    g.set_outputs(vec![a, b]);
    assert_eq!(after(&g, &["HardSwish", "Clip", "HardSigmoid"]), [1, 0, 0]);
}

#[test]
fn constant_matmul_chains_merge() {
    let mut g = Graph::new("t");
    let x = x(&mut g, &[2, 16]);
    let a = weight(&mut g, "a", &[16, 16], 0.0, 0.3);
    let b = weight(&mut g, "b", &[16, 4], 0.0, 0.3);
    let m1 = g.add("m1", Op::MatMul, &[x, a]).unwrap();
    let y = g.add("y", Op::MatMul, &[m1, b]).unwrap();
    g.set_outputs(vec![y]);
    assert_eq!(after(&g, &["MatMul"]), [1]);
}
