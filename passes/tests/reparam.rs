//! Each reparameterization family collapses to one convolution per block, outputs unchanged.

mod common;
use common::*;
use kiln_ir::op::{Binary, Unary};
use kiln_ir::{DType, Graph, Op, TensorType};

fn input(g: &mut Graph, c: usize) -> kiln_ir::ValueRef {
    g.add_input("x", TensorType::known(DType::F32, &[1, c, 8, 8]))
}

fn add(g: &mut Graph, name: &str, a: kiln_ir::ValueRef, b: kiln_ir::ValueRef) -> kiln_ir::ValueRef {
    g.add(name, Op::Binary(Binary::Add), &[a, b]).unwrap()
}

#[test]
fn repvgg_block_is_one_conv() {
    let mut g = Graph::new("repvgg");
    let x = input(&mut g, 4);
    let c3 = conv(&mut g, "c3", x, 4, 4, [3, 3], [1, 1, 1, 1], 1, 1, false);
    let b3 = bn(&mut g, "bn3", c3, 4);
    let c1 = conv(&mut g, "c1", x, 4, 4, [1, 1], [0; 4], 1, 1, false);
    let b1 = bn(&mut g, "bn1", c1, 4);
    let b0 = bn(&mut g, "bn0", x, 4);
    let s = add(&mut g, "s", b3, b1);
    let s = add(&mut g, "s2", s, b0);
    let y = g.add("y", Op::Unary(Unary::Relu), &[s]).unwrap();
    g.set_outputs(vec![y]);
    let (out, report) = check(&g, 1e-5);
    assert_eq!((count(&out, "Conv"), count(&out, "BatchNormalization"), count(&out, "Add")), (1, 0, 0), "{report:?}");
}

/// Sum of branch outputs, then Relu: the shape of every block below.
fn block(g: &mut Graph, branches: Vec<kiln_ir::ValueRef>) {
    let mut acc = branches[0];
    for (i, &b) in branches[1..].iter().enumerate() {
        acc = add(g, &format!("sum{i}"), acc, b);
    }
    let y = g.add("y", Op::Unary(Unary::Relu), &[acc]).unwrap();
    g.set_outputs(vec![y]);
}

fn assert_one_conv(g: &Graph) {
    let (out, report) = check(g, 1e-4);
    let convs = count(&out, "Conv");
    assert_eq!((convs, count(&out, "BatchNormalization"), count(&out, "Add")), (1, 0, 0), "{report:?}");
}

#[test]
fn acnet_block_is_one_conv() {
    // 3×3, 1×3 and 3×1, each with its BatchNorm.
    let mut g = Graph::new("acnet");
    let x = input(&mut g, 4);
    let sq = conv(&mut g, "sq", x, 6, 4, [3, 3], [1, 1, 1, 1], 1, 1, false);
    let sq = bn(&mut g, "bsq", sq, 6);
    let hor = conv(&mut g, "hor", x, 6, 4, [1, 3], [0, 1, 0, 1], 1, 1, false);
    let hor = bn(&mut g, "bhor", hor, 6);
    let ver = conv(&mut g, "ver", x, 6, 4, [3, 1], [1, 0, 1, 0], 1, 1, false);
    let ver = bn(&mut g, "bver", ver, 6);
    block(&mut g, vec![sq, hor, ver]);
    assert_one_conv(&g);
}

#[test]
fn mobileone_depthwise_block_is_one_conv() {
    // k over-parameterized depthwise 3×3 branches, a depthwise 1×1 branch, a BN identity.
    let mut g = Graph::new("mobileone");
    let x = input(&mut g, 4);
    let mut branches = Vec::new();
    for i in 0..3 {
        let c = conv(&mut g, &format!("dw{i}"), x, 4, 1, [3, 3], [1, 1, 1, 1], 4, 1, false);
        branches.push(bn(&mut g, &format!("bdw{i}"), c, 4));
    }
    let s = conv(&mut g, "scale", x, 4, 1, [1, 1], [0; 4], 4, 1, false);
    branches.push(bn(&mut g, "bscale", s, 4));
    branches.push(bn(&mut g, "bid", x, 4));
    block(&mut g, branches);
    assert_one_conv(&g);
}

#[test]
fn dbb_block_is_one_conv() {
    // k×k + 1×1 + (1×1 → k×k) + average pooling, each with its BatchNorm.
    let mut g = Graph::new("dbb");
    let x = input(&mut g, 4);
    let kk = conv(&mut g, "kk", x, 4, 4, [3, 3], [1, 1, 1, 1], 1, 1, false);
    let kk = bn(&mut g, "bkk", kk, 4);
    let one = conv(&mut g, "one", x, 4, 4, [1, 1], [0; 4], 1, 1, false);
    let one = bn(&mut g, "bone", one, 4);
    let mid = conv(&mut g, "mid", x, 6, 4, [1, 1], [0; 4], 1, 1, false);
    let seq = conv(&mut g, "seq", mid, 4, 6, [3, 3], [1, 1, 1, 1], 1, 1, false);
    let seq = bn(&mut g, "bseq", seq, 4);
    let pool = kiln_ir::op::Pool {
        kind: kiln_ir::op::PoolKind::Average { count_include_pad: true },
        window: kiln_ir::op::Window { kernel_shape: Some(vec![3, 3]), pads: vec![1; 4], ..Default::default() },
        ceil_mode: false,
        storage_order: 0,
    };
    let avg = g.add("avg", Op::Pool(pool), &[x]).unwrap();
    let avg = bn(&mut g, "bavg", avg, 4);
    block(&mut g, vec![kk, one, seq, avg]);
    assert_one_conv(&g);
}

#[test]
fn dilated_branches_merge_into_one_large_kernel() {
    // UniRepLKNet: a 5×5 kernel plus a dilated 3×3 (dilation 2, i.e. a sparse 5×5) plus 3×3.
    let mut g = Graph::new("dilated");
    let x = input(&mut g, 4);
    let big = conv(&mut g, "big", x, 4, 1, [5, 5], [2; 4], 4, 1, false);
    let big = bn(&mut g, "bbig", big, 4);
    let dil = conv(&mut g, "dil", x, 4, 1, [3, 3], [2; 4], 4, 2, false);
    let dil = bn(&mut g, "bdil", dil, 4);
    let small = conv(&mut g, "small", x, 4, 1, [3, 3], [1; 4], 4, 1, true);
    block(&mut g, vec![big, dil, small]);
    assert_one_conv(&g);
}

#[test]
fn a_conv_that_is_read_elsewhere_keeps_its_batchnorm() {
    // The conv output feeds the BN and a second consumer: folding would need two convolutions,
    // which extraction refuses (a greedy choice proposes it; the DAG-wide swaps undo it).
    let mut g = Graph::new("shared");
    let x = input(&mut g, 4);
    let c = conv(&mut g, "c", x, 4, 4, [3, 3], [1; 4], 1, 1, true);
    let b = bn(&mut g, "b", c, 4);
    let r = g.add("r", Op::Unary(Unary::Relu), &[c]).unwrap();
    g.set_outputs(vec![b, r]);
    let (out, _) = check(&g, 1e-5);
    assert_eq!((count(&out, "Conv"), count(&out, "BatchNormalization")), (1, 1));
}

#[test]
fn batchnorm_and_per_channel_affine_fold_into_gemm_and_matmul() {
    let mut g = Graph::new("linear");
    let x = g.add_input("x", TensorType::known(DType::F32, &[3, 8]));
    let w = weight(&mut g, "w", &[8, 5], 0.0, 0.5);
    let c = weight(&mut g, "c", &[5], 0.0, 0.5);
    let gemm = g.add("gemm", Op::Gemm(kiln_ir::op::Gemm { alpha: 0.5, ..Default::default() }), &[x, w, c]).unwrap();
    let y = bn(&mut g, "bn", gemm, 5);
    let w2 = weight(&mut g, "w2", &[5, 6], 0.0, 0.5);
    let mm = g.add("mm", Op::MatMul, &[y, w2]).unwrap();
    let s = weight(&mut g, "s", &[6], 1.0, 0.5);
    let z = g.add("z", Op::Binary(Binary::Mul), &[mm, s]).unwrap();
    g.set_outputs(vec![z]);
    let (out, report) = check(&g, 1e-5);
    assert_eq!((count(&out, "BatchNormalization"), count(&out, "Mul")), (0, 0), "{report:?}");
}
