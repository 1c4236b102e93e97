//! Property test: random small graphs built from the ingredients the rules match (neutral
//! constants, identities, movement chains, casts, per-channel affines after convolutions,
//! parallel conv branches, matmuls with bias) give the same interpreter outputs before and after
//! the e-graph pass.

mod common;
use common::*;
use kiln_ir::op::{Binary, Unary};
use kiln_ir::{DType, Graph, Op, Tensor, TensorType, ValueRef};
use proptest::prelude::*;

/// One step applied to the current value `v` (f32[1,4,5,5]) of a growing graph.
#[derive(Clone, Debug)]
enum Step {
    Neutral(bool),
    Unary(u8),
    Identity,
    Dropout,
    TransposePair,
    ReshapePair,
    CastPair,
    AffineConst(bool),
    ConvBn { k: usize, bn: bool },
    Branches { k: usize, identity: bool },
    Reuse,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        any::<bool>().prop_map(Step::Neutral),
        (0u8..4).prop_map(Step::Unary),
        Just(Step::Identity),
        Just(Step::Dropout),
        Just(Step::TransposePair),
        Just(Step::ReshapePair),
        Just(Step::CastPair),
        any::<bool>().prop_map(Step::AffineConst),
        ((0usize..2), any::<bool>()).prop_map(|(k, bn)| Step::ConvBn { k: 2 * k + 1, bn }),
        ((0usize..2), any::<bool>()).prop_map(|(k, identity)| Step::Branches { k: 2 * k + 1, identity }),
        Just(Step::Reuse),
    ]
}

fn build(steps: &[Step]) -> Graph {
    let mut g = Graph::new("random");
    let x = g.add_input("x", TensorType::known(DType::F32, &[1, 4, 5, 5]));
    let (mut v, mut seen) = (x, vec![x]);
    for (i, s) in steps.iter().enumerate() {
        let n = |what: &str| format!("{what}{i}");
        v = match s {
            Step::Neutral(mul) => {
                let c = g.add_const(n("c"), Tensor::scalar(if *mul { 1.0f32 } else { 0.0 }));
                let b = if *mul { Binary::Mul } else { Binary::Add };
                g.add(&n("neutral"), Op::Binary(b), &[v, c]).unwrap()
            }
            Step::Unary(u) => {
                let u = [Unary::Relu, Unary::Neg, Unary::Sigmoid, Unary::Tanh][*u as usize];
                g.add(&n("u"), Op::Unary(u), &[v]).unwrap()
            }
            Step::Identity => g.add(&n("id"), Op::Identity, &[v]).unwrap(),
            Step::Dropout => g.add(&n("drop"), Op::Dropout, &[v]).unwrap(),
            Step::TransposePair => {
                let t = g.add(&n("t"), Op::Transpose { perm: Some(vec![0, 2, 3, 1]) }, &[v]).unwrap();
                g.add(&n("tt"), Op::Transpose { perm: Some(vec![0, 3, 1, 2]) }, &[t]).unwrap()
            }
            Step::ReshapePair => {
                let s1 = g.add_const(n("s1"), Tensor::vector(vec![4i64, 25]));
                let r = g.add(&n("r"), Op::Reshape { allowzero: false }, &[v, s1]).unwrap();
                let s2 = g.add_const(n("s2"), Tensor::vector(vec![1i64, 4, 5, -1]));
                g.add(&n("rr"), Op::Reshape { allowzero: false }, &[r, s2]).unwrap()
            }
            Step::CastPair => {
                let c = g.add(&n("cast"), Op::Cast { to: DType::F64 }, &[v]).unwrap();
                g.add(&n("back"), Op::Cast { to: DType::F32 }, &[c]).unwrap()
            }
            Step::AffineConst(mul) => {
                let c = weight(&mut g, &n("pc"), &[4, 1, 1], 1.0, 0.5);
                let b = if *mul { Binary::Mul } else { Binary::Add };
                g.add(&n("affine"), Op::Binary(b), &[v, c]).unwrap()
            }
            Step::ConvBn { k, bn: with_bn } => {
                let p = k / 2;
                let c = conv(&mut g, &n("conv"), v, 4, 4, [*k, *k], [p; 4], 1, 1, true);
                if *with_bn {
                    bn(&mut g, &n("bn"), c, 4)
                } else {
                    c
                }
            }
            Step::Branches { k, identity } => {
                let p = k / 2;
                let a = conv(&mut g, &n("ba"), v, 4, 4, [*k, *k], [p; 4], 1, 1, false);
                let a = bn(&mut g, &n("bna"), a, 4);
                let b = conv(&mut g, &n("bb"), v, 4, 4, [1, 1], [0; 4], 1, 1, true);
                let s = g.add(&n("sum"), Op::Binary(Binary::Add), &[a, b]).unwrap();
                if *identity {
                    g.add(&n("sumid"), Op::Binary(Binary::Add), &[s, v]).unwrap()
                } else {
                    s
                }
            }
            Step::Reuse => {
                let other = seen[i % seen.len()];
                g.add(&n("mix"), Op::Binary(Binary::Add), &[v, other]).unwrap()
            }
        };
        seen.push(v);
    }
    g.set_outputs(vec![v]);
    g
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn the_pass_preserves_outputs(steps in proptest::collection::vec(step(), 1..8)) {
        let g = build(&steps);
        let (out, report) = optimize(&g);
        for seed in ["p", "q"] {
            let ins = inputs(&g, seed);
            let want = kiln_backends::interp::run_graph(&g, &ins, &[]).unwrap().0;
            let got = kiln_backends::interp::run_graph(&out, &ins, &[]).unwrap().0;
            let err = max_error(&got, &want);
            prop_assert!(err <= 1e-4, "error {} for {:?} ({:?})", err, steps, report);
        }
        prop_assert!(report.cost_after <= report.cost_before * (1.0 + 1e-9) || report.kept_original.is_some());
    }
}

/// Values that are only ever read by graph outputs survive under their names.
#[test]
fn output_names_survive() {
    let g = build(&[Step::Identity, Step::Neutral(true)]);
    let (out, _) = optimize(&g);
    let names = |g: &Graph| g.outputs().iter().map(|&v: &ValueRef| g.value_name(v).to_string()).collect::<Vec<_>>();
    assert_eq!(names(&out), names(&g));
    assert_eq!(out.num_nodes(), 2, "x and the Identity that keeps the output's name");
}
