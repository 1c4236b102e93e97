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
