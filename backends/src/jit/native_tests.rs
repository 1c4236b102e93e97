//! The kernels `native` plans, against the interpreter on odd shapes (size-1 axes, tails past a
//! block of lanes, negative axes, broadcast parameters), each also checked to leave no step on
//! the interpreter.

use super::tests::{check, engines, konst};
use super::Engine;
use kiln_ir::op::{PadMode, ReduceOp, Resize, ResizeCoord, ResizeMode, ResizeNearest};
use kiln_ir::{DType, Graph, Op, Tensor, TensorType, ValueRef};

fn input(g: &mut Graph, shape: &[usize]) -> ValueRef {
    g.add_input("x", TensorType::known(DType::F32, shape))
}

fn i64s(g: &mut Graph, name: &str, v: &[i64]) -> ValueRef {
    g.add_const(name, Tensor::vector(v.to_vec()))
}

/// Checks `g` against the interpreter and that every step is native.
fn check_native(g: &Graph) {
    check(g, 1e-5);
    let e = engines(g);
    assert!(!e.contains(&Engine::Interpreter), "{}: {e:?}", g.name);
}

#[test]
fn softmax_over_every_axis() {
    for shape in [vec![2, 3, 5], vec![1, 1, 1], vec![2, 70, 3]] {
        for axis in -3..3 {
            for log in [false, true] {
                let mut g = Graph::new(format!("softmax{shape:?}{axis}{log}"));
                let x = input(&mut g, &shape);
                let op = if log { Op::LogSoftmax { axis, legacy: false } } else { Op::Softmax { axis, legacy: false } };
                let y = g.add("y", op, &[x]).unwrap();
                let l = g.add("l", Op::Softmax { axis, legacy: true }, &[x]).unwrap();
                g.set_outputs(vec![y, l]);
                check_native(&g);
            }
        }
    }
}

#[test]
fn layer_and_instance_norms() {
    for (shape, axis, pshape) in [
        (vec![2, 3, 7], -1, vec![7]),
        (vec![2, 3, 7], 1, vec![3, 7]),
        (vec![4, 1], -1, vec![1]),
        (vec![3, 5], 0, vec![1, 5]),
    ] {
        let mut g = Graph::new("ln");
        let x = input(&mut g, &shape);
        // Far from zero, so the moments must not cancel.
        let big = g.add_const("big", Tensor::scalar(1000.0f32));
        let xb = g.add("xb", Op::Binary(kiln_ir::op::Binary::Add), &[x, big]).unwrap();
        let s = konst(&mut g, "s", &pshape);
        let b = konst(&mut g, "b", &pshape);
        let with_bias = g.add("y", Op::LayerNorm { axis, epsilon: 1e-5 }, &[xb, s, b]).unwrap();
        let no_bias = g.add("z", Op::LayerNorm { axis, epsilon: 1e-3 }, &[x, s]).unwrap();
        g.set_outputs(vec![with_bias, no_bias]);
        check(&g, 2e-4);
        assert!(!engines(&g).contains(&Engine::Interpreter));
    }
    for shape in [vec![2, 3, 4, 5], vec![1, 2, 1], vec![1, 3, 67]] {
        let mut g = Graph::new("in");
        let x = input(&mut g, &shape);
        let (s, b) = (konst(&mut g, "s", &[shape[1]]), konst(&mut g, "b", &[shape[1]]));
        let y = g.add("y", Op::InstanceNorm { epsilon: 1e-5 }, &[x, s, b]).unwrap();
        g.set_outputs(vec![y]);
        check_native(&g);
    }
}

#[test]
fn reductions_over_any_axes() {
    let axes_cases: [Option<&[i64]>; 6] = [Some(&[1]), Some(&[0, 2]), Some(&[-1]), Some(&[0, 1, 2]), None, Some(&[-3])];
    for op in ReduceOp::ALL {
        for (i, axes) in axes_cases.iter().enumerate() {
            for keepdims in [false, true] {
                let mut g = Graph::new(format!("{}-{i}-{keepdims}", op.onnx_name()));
                let x = input(&mut g, &[3, 37, 2]);
                let mut ins = vec![x];
                if let Some(a) = axes {
                    ins.push(i64s(&mut g, "axes", a));
                }
                let y = g.add("y", Op::Reduce { op, keepdims, noop_with_empty_axes: false }, &ins).unwrap();
                g.set_outputs(vec![y]);
                check_native(&g);
            }
        }
    }
    // No axes with noop_with_empty_axes: the input itself.
    let mut g = Graph::new("noop");
    let x = input(&mut g, &[2, 3]);
    let y = g.add("y", Op::Reduce { op: ReduceOp::L2, keepdims: true, noop_with_empty_axes: true }, &[x]).unwrap();
    g.set_outputs(vec![y]);
    check_native(&g);
}

#[test]
fn slices_splits_pads_tiles_and_gathers() {
    let mut g = Graph::new("movement");
    let x = input(&mut g, &[3, 4, 5]);
    let (st, en, ax, sp) = (
        i64s(&mut g, "st", &[-1, 1]),
        i64s(&mut g, "en", &[i64::MIN, 100]),
        i64s(&mut g, "ax", &[0, -1]),
        i64s(&mut g, "sp", &[-2, 2]),
    );
    let sl = g.add("sl", Op::Slice, &[x, st, en, ax, sp]).unwrap();
    let (st2, en2) = (i64s(&mut g, "st2", &[1]), i64s(&mut g, "en2", &[3]));
    let rows = g.add("rows", Op::Slice, &[x, st2, en2]).unwrap();
    let sizes = i64s(&mut g, "sizes", &[1, 3, 1]);
    let split = g
        .add_node("split", Op::Split { axis: -1 }, &[Some(x), Some(sizes)], &["s0".into(), "s1".into(), "s2".into()])
        .unwrap();
    let parts: Vec<ValueRef> = (0..3).map(|o| ValueRef { node: split, output: o }).collect();
    let even = g.add_node("even", Op::Split { axis: 1 }, &[Some(x)], &["e0".into(), "e1".into()]).unwrap();
    let mut outs = vec![sl, rows, ValueRef { node: even, output: 0 }, ValueRef { node: even, output: 1 }];
    outs.extend(&parts);
    let pads = i64s(&mut g, "pads", &[1, 0, 2, 0, -1, 3]);
    let fill = g.add_const("fill", Tensor::scalar(-7.0f32));
    for (i, mode) in [PadMode::Constant, PadMode::Reflect, PadMode::Edge, PadMode::Wrap].into_iter().enumerate() {
        outs.push(g.add(&format!("pad{i}"), Op::Pad { mode }, &[x, pads, fill]).unwrap());
    }
    let reps = i64s(&mut g, "reps", &[2, 1, 3]);
    outs.push(g.add("tile", Op::Tile, &[x, reps]).unwrap());
    let idx = g.add_const("idx", Tensor::from_vec(&[2, 2], vec![3i64, -1, 0, 0]).unwrap());
    outs.push(g.add("gather", Op::Gather { axis: -1 }, &[x, idx]).unwrap());
    let table = konst(&mut g, "table", &[10, 6]);
    let tokens = g.add_const("tokens", Tensor::from_vec(&[1, 3], vec![9i64, 0, 4]).unwrap());
    outs.push(g.add("embed", Op::Gather { axis: 0 }, &[table, tokens]).unwrap());
    g.set_outputs(outs);
    check_native(&g);
}

#[test]
fn concat_on_every_axis() {
    for axis in -3..3 {
        let mut g = Graph::new("cat");
        let x = input(&mut g, &[2, 3, 4]);
        let k = konst(&mut g, "k", &[2, 3, 4]);
        let y = g.add("y", Op::Concat { axis }, &[x, k, x]).unwrap();
        g.set_outputs(vec![y]);
        check_native(&g);
    }
}

#[test]
fn resize_in_every_mode() {
    let coords = [
        ResizeCoord::HalfPixel,
        ResizeCoord::HalfPixelSymmetric,
        ResizeCoord::PytorchHalfPixel,
        ResizeCoord::AlignCorners,
        ResizeCoord::Asymmetric,
        ResizeCoord::TfCropAndResize,
    ];
    let modes = [
        (ResizeMode::Nearest, ResizeNearest::RoundPreferFloor),
        (ResizeMode::Nearest, ResizeNearest::RoundPreferCeil),
        (ResizeMode::Nearest, ResizeNearest::Floor),
        (ResizeMode::Nearest, ResizeNearest::Ceil),
        (ResizeMode::Linear, ResizeNearest::Floor),
        (ResizeMode::Cubic, ResizeNearest::Floor),
    ];
    for coord in coords {
        for (mode, nearest) in modes {
            for scales in [[1.0f32, 1.0, 2.0, 2.0], [1.0, 1.0, 0.6, 1.75], [1.0, 1.0, 1.0, 3.0]] {
                let mut g = Graph::new(format!("resize-{coord:?}-{mode:?}-{nearest:?}-{scales:?}"));
                let x = input(&mut g, &[1, 2, 5, 4]);
                let roi = g.add_const("roi", Tensor::vector(vec![0f32, 0., 0.1, 0.2, 1., 1., 0.9, 1.1]));
                let sc = g.add_const("sc", Tensor::vector(scales.to_vec()));
                let r = Resize { mode, coord, nearest, extrapolation_value: -3.0, ..Default::default() };
                let id = g.add_node("y", Op::Resize(r), &[Some(x), Some(roi), Some(sc)], &["y".into()]).unwrap();
                g.set_outputs(vec![ValueRef::first(id)]);
                check_native(&g);
            }
        }
    }
    // By sizes, antialiased downsampling.
    let mut g = Graph::new("resize-sizes");
    let x = input(&mut g, &[2, 1, 9, 7]);
    let sizes = i64s(&mut g, "sizes", &[2, 1, 4, 10]);
    let r = Resize { mode: ResizeMode::Linear, antialias: true, ..Default::default() };
    let id = g.add_node("y", Op::Resize(r), &[Some(x), None, None, Some(sizes)], &["y".into()]).unwrap();
    g.set_outputs(vec![ValueRef::first(id)]);
    check_native(&g);
}

#[test]
fn conv_transpose_geometries() {
    use kiln_ir::op::{AutoPad, ConvTranspose, Window};
    /// (input, weight, group, strides, pads, output_padding, dilations, auto_pad, bias)
    type Case = (
        &'static [usize],
        &'static [usize],
        usize,
        &'static [usize],
        &'static [usize],
        &'static [usize],
        &'static [usize],
        AutoPad,
        bool,
    );
    let cases: [Case; 7] = [
        (&[1, 4, 5, 6], &[4, 3, 2, 2], 1, &[2, 2], &[0, 0, 0, 0], &[], &[], AutoPad::NotSet, true),
        (&[2, 4, 3, 3], &[4, 2, 3, 3], 2, &[1, 1], &[1, 1, 1, 1], &[], &[], AutoPad::NotSet, false),
        (&[1, 3, 4, 5], &[3, 5, 3, 3], 1, &[2, 3], &[1, 0, 2, 1], &[1, 2], &[], AutoPad::NotSet, true),
        (&[1, 2, 3, 4], &[2, 2, 3, 2], 1, &[2, 2], &[0, 0, 0, 0], &[], &[2, 3], AutoPad::NotSet, true),
        (&[1, 6, 1, 1], &[6, 1, 4, 4], 3, &[2, 2], &[], &[], &[], AutoPad::SameUpper, false),
        (&[1, 3, 7], &[3, 2, 4], 1, &[3], &[1, 2], &[1], &[], AutoPad::NotSet, true),
        (&[1, 5, 9, 9], &[5, 1, 4, 4], 1, &[2, 2], &[1, 1, 1, 1], &[], &[], AutoPad::NotSet, true),
    ];
    for (i, (xs, ws, group, strides, pads, output_padding, dilations, auto_pad, bias)) in cases.into_iter().enumerate()
    {
        let mut g = Graph::new(format!("deconv{i}"));
        let x = input(&mut g, xs);
        let w = konst(&mut g, "w", ws);
        let mut ins = vec![x, w];
        if bias {
            ins.push(konst(&mut g, "b", &[ws[1] * group]));
        }
        let window = Window {
            strides: strides.to_vec(),
            pads: pads.to_vec(),
            dilations: dilations.to_vec(),
            auto_pad,
            ..Default::default()
        };
        let op = Op::ConvTranspose(ConvTranspose {
            window,
            group,
            output_padding: output_padding.to_vec(),
            output_shape: None,
        });
        let y = g.add("y", op, &ins).unwrap();
        g.set_outputs(vec![y]);
        check_native(&g);
    }
}

#[test]
fn attention_mask_path_and_integer_values() {
    use kiln_ir::op::{Binary, Unary};
    let mut g = Graph::new("mask");
    let ids = g.add_input("ids", TensorType::known(DType::I64, &[2, 5]));
    let mask = g.add_input("mask", TensorType::known(DType::I64, &[2, 5]));
    let x = g.add_input("x", TensorType::known(DType::F32, &[2, 5, 3]));
    let table = konst(&mut g, "table", &[7, 3]);
    let emb = g.add("emb", Op::Gather { axis: 0 }, &[table, ids]).unwrap();
    let zero = g.add_const("zero", Tensor::scalar(0i64));
    let pad = g.add("pad", Op::Binary(Binary::Equal), &[mask, zero]).unwrap();
    let ax = i64s(&mut g, "ax", &[-1]);
    let pad3 = g.add("pad3", Op::Unsqueeze, &[pad, ax]).unwrap();
    let neg = g.add_const("neg", Tensor::scalar(-1e4f32));
    let masked = g.add("masked", Op::Where, &[pad3, neg, emb]).unwrap();
    let mf = g.add("mf", Op::Cast { to: DType::F32 }, &[mask]).unwrap();
    let keep = g.add("keep", Op::Unary(Unary::Not), &[pad]).unwrap();
    let both = g.add("both", Op::Binary(Binary::Or), &[keep, pad]).unwrap();
    let bf = g.add("bf", Op::Cast { to: DType::F32 }, &[both]).unwrap();
    let less = g.add("less", Op::Binary(Binary::Less), &[x, emb]).unwrap();
    let sum = g.add("sum", Op::Binary(Binary::Add), &[ids, mask]).unwrap();
    let arg = g.add("arg", Op::ArgMax { axis: -1, keepdims: false, select_last_index: false }, &[masked]).unwrap();
    let argmin = g.add("argmin", Op::ArgMin { axis: 1, keepdims: true, select_last_index: true }, &[bf]).unwrap();
    let expanded = g.add_const("shape", Tensor::vector(vec![3i64, 2, 5]));
    let wide = g.add("wide", Op::Expand, &[pad, expanded]).unwrap();
    g.set_outputs(vec![masked, mf, bf, less, sum, arg, argmin, wide]);
    let inputs = [
        Tensor::from_vec(&[2, 5], vec![0i64, 6, -1, 3, 2, 5, 5, 1, -7, 4]).unwrap(),
        Tensor::from_vec(&[2, 5], vec![1i64, 1, 1, 0, 0, 1, 0, 1, 1, 0]).unwrap(),
        Tensor::seeded(DType::F32, &[2, 5, 3], "x", 0.0, 1.0).unwrap(),
    ];
    super::tests::check_with(&g, &inputs, 1e-6);
    assert!(!engines(&g).contains(&Engine::Interpreter), "{:?}", engines(&g));

    // An index out of range is an error, not a crash.
    let mut bad = inputs.clone();
    bad[0] = Tensor::from_vec(&[2, 5], vec![0i64, 7, 0, 0, 0, 0, 0, 0, 0, 0]).unwrap();
    let exe = super::Jit::with_threads(1).compile(&g).unwrap();
    let err = crate::Executable::run(&exe, &bad).unwrap_err().to_string();
    assert!(err.contains("out of range"), "{err}");
}

#[test]
fn group_norm_as_imported_is_native() {
    // The importer's decomposition of GroupNormalization: Reshape, ReduceMean, Sub, Mul,
    // ReduceMean, Add, Sqrt, Div, Reshape, then the per-channel affine.
    use kiln_ir::op::{Binary, Unary};
    let mut g = Graph::new("gn");
    let x = input(&mut g, &[2, 6, 3, 5]);
    let grouped_shape = i64s(&mut g, "gs", &[0, 3, -1]);
    let grouped = g.add("grouped", Op::Reshape { allowzero: false }, &[x, grouped_shape]).unwrap();
    let axes = i64s(&mut g, "axes", &[2]);
    let mean_op = Op::Reduce { op: ReduceOp::Mean, keepdims: true, noop_with_empty_axes: false };
    let mean = g.add("mean", mean_op.clone(), &[grouped, axes]).unwrap();
    let centered = g.add("centered", Op::Binary(Binary::Sub), &[grouped, mean]).unwrap();
    let squared = g.add("squared", Op::Binary(Binary::Mul), &[centered, centered]).unwrap();
    let var = g.add("var", mean_op, &[squared, axes]).unwrap();
    let eps = g.add_const("eps", Tensor::scalar(1e-5f32));
    let shifted = g.add("shifted", Op::Binary(Binary::Add), &[var, eps]).unwrap();
    let std = g.add("std", Op::Unary(Unary::Sqrt), &[shifted]).unwrap();
    let normed = g.add("normed", Op::Binary(Binary::Div), &[centered, std]).unwrap();
    let back_shape = i64s(&mut g, "bs", &[2, 6, 3, 5]);
    let back = g.add("back", Op::Reshape { allowzero: false }, &[normed, back_shape]).unwrap();
    let s = konst(&mut g, "s", &[6, 1, 1]);
    let y = g.add("y", Op::Binary(Binary::Mul), &[back, s]).unwrap();
    g.set_outputs(vec![y]);
    check_native(&g);
}

#[test]
fn contiguous_splits_and_slices_are_views() {
    use kiln_ir::op::Unary;
    let mut g = Graph::new("views");
    let x = input(&mut g, &[1, 6, 4]);
    let r = g.add("r", Op::Unary(Unary::Relu), &[x]).unwrap();
    let sizes = i64s(&mut g, "sizes", &[2, 4]);
    let split = g.add_node("split", Op::Split { axis: 1 }, &[Some(r), Some(sizes)], &["a".into(), "b".into()]).unwrap();
    let (a, b) = (ValueRef { node: split, output: 0 }, ValueRef { node: split, output: 1 });
    let (st, en, ax) = (i64s(&mut g, "st", &[1]), i64s(&mut g, "en", &[3]), i64s(&mut g, "ax", &[1]));
    let rows = g.add("rows", Op::Slice, &[b, st, en, ax]).unwrap();
    let t = g.add("t", Op::Unary(Unary::Tanh), &[rows]).unwrap();
    g.set_outputs(vec![a, t, b]);
    check_native(&g);
    assert_eq!(engines(&g), vec![Engine::Cranelift, Engine::Cranelift], "the split and the slice copy nothing");
}
