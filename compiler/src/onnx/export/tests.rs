//! Export tests: the protobuf written for small graphs, checked field by field against what the
//! ONNX spec (opset 21) requires, and the atomic file write.

use super::tensor::tensor_proto;
use super::*;
use kiln_ir::op::{
    Activation, Binary, Cell, Conv, Direction, Gemm, Loop, Pool, PoolKind, Recurrent, Scan, Unary, Window,
};
use kiln_ir::{DType, Dim, Graph, Op, Tensor, TensorType, ValueRef};
use onnx_protobuf::attribute_proto::AttributeType;
use onnx_protobuf::tensor_shape_proto::dimension::Value as DimValue;
use onnx_protobuf::{AttributeProto, GraphProto, NodeProto, ValueInfoProto};

fn model(graph: Graph) -> Model {
    Model { graph, opset: 13, ir_version: 7, producer: "test".into() }
}

fn export(graph: Graph) -> GraphProto {
    let proto = to_proto(&model(graph)).unwrap();
    assert_eq!(proto.ir_version, 10);
    assert_eq!((proto.opset_import[0].domain.as_str(), proto.opset_import[0].version), ("", 21));
    proto.graph.unwrap()
}

fn op_types(g: &GraphProto) -> Vec<&str> {
    g.node.iter().map(|n| n.op_type.as_str()).collect()
}

fn node<'a>(g: &'a GraphProto, op_type: &str) -> &'a NodeProto {
    g.node.iter().find(|n| n.op_type == op_type).unwrap_or_else(|| panic!("no {op_type} node"))
}

fn attr<'a>(n: &'a NodeProto, name: &str) -> &'a AttributeProto {
    n.attribute.iter().find(|a| a.name == name).unwrap_or_else(|| panic!("{} has no attribute {name}", n.op_type))
}

fn dims_of(v: &ValueInfoProto) -> Vec<String> {
    let t = v.type_.tensor_type();
    t.shape
        .dim
        .iter()
        .map(|d| match &d.value {
            Some(DimValue::DimValue(n)) => n.to_string(),
            Some(DimValue::DimParam(p)) => p.clone(),
            _ => "?".into(),
        })
        .collect()
}

#[test]
fn tensors_are_little_endian_raw_data() {
    let f = tensor_proto("w", &Tensor::from_vec(&[1, 2], vec![1.0f32, -2.0]).unwrap());
    assert_eq!((f.name.as_str(), f.dims.as_slice(), f.data_type), ("w", &[1i64, 2][..], 1));
    assert_eq!(f.raw_data, [0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x00, 0xc0]);
    let i = tensor_proto("i", &Tensor::vector(vec![1i64, -1]));
    assert_eq!(i.data_type, 7);
    assert_eq!(i.raw_data, [1, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
    let b = tensor_proto("b", &Tensor::scalar(true));
    assert_eq!((b.dims.len(), b.data_type, b.raw_data.as_slice()), (0, 9, &[1u8][..]));
    let h = tensor_proto("h", &Tensor::vector(vec![half::f16::from_f32(1.0)]));
    assert_eq!((h.data_type, h.raw_data.as_slice()), (10, &[0x00u8, 0x3c][..]));
}

/// x: f32[batch,3,8,8] → Conv → Relu → MaxPool → GlobalAveragePool → Flatten → Gemm → Softmax.
fn cnn() -> Graph {
    cnn_with(true)
}

fn cnn_with(legacy_softmax: bool) -> Graph {
    let mut g = Graph::new("cnn");
    let x = g.add_input("x", TensorType::new(DType::F32, [Dim::from("batch"), 3.into(), 8.into(), 8.into()]));
    let w = g.add_const("w", Tensor::seeded(DType::F32, &[4, 3, 3, 3], "w", 0.0, 0.1).unwrap());
    let b = g.add_const("b", Tensor::vector(vec![0.5f32; 4]));
    let conv = Conv { window: Window { pads: vec![1; 4], ..Default::default() }, group: 1 };
    let c = g.add("c", Op::Conv(conv), &[x, w, b]).unwrap();
    let r = g.add("r", Op::Unary(Unary::LeakyRelu { alpha: 0.25 }), &[c]).unwrap();
    let window = Window { kernel_shape: Some(vec![2, 2]), strides: vec![2, 2], ..Default::default() };
    let pool = Pool { kind: PoolKind::Max, window, ceil_mode: false, storage_order: 0 };
    let p = g.add("p", Op::Pool(pool), &[r]).unwrap();
    let gp = g.add("gp", Op::GlobalPool(PoolKind::Average { count_include_pad: false }), &[p]).unwrap();
    let f = g.add("f", Op::Flatten { axis: 1 }, &[gp]).unwrap();
    let w2 = g.add_const("w2", Tensor::seeded(DType::F32, &[2, 4], "w2", 0.0, 0.1).unwrap());
    let gemm = Gemm { trans_b: true, ..Default::default() };
    let y = g.add("logits", Op::Gemm(gemm), &[f, w2]).unwrap();
    let s = g.add("prob", Op::Softmax { axis: 1, legacy: legacy_softmax }, &[y]).unwrap();
    g.set_outputs(vec![s]);
    g
}

#[test]
fn a_small_cnn_exports_names_types_initializers_and_attributes() {
    let g = export(cnn());
    assert_eq!(op_types(&g), ["Conv", "LeakyRelu", "MaxPool", "GlobalAveragePool", "Flatten", "Gemm", "Softmax"]);
    assert_eq!(g.input.len(), 1, "constants are initializers, not inputs");
    assert_eq!(
        (g.input[0].name.as_str(), dims_of(&g.input[0])),
        ("x", vec!["batch".into(), "3".into(), "8".into(), "8".into()])
    );
    assert_eq!(g.input[0].type_.tensor_type().elem_type, 1);
    let inits: Vec<&str> = g.initializer.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(inits, ["w", "b", "w2"]);
    assert_eq!(g.initializer[0].raw_data.len(), 4 * 3 * 3 * 3 * 4);
    let conv = node(&g, "Conv");
    assert_eq!(
        (conv.input.as_slice(), conv.output.as_slice()),
        (&["x".to_string(), "w".into(), "b".into()][..], &["c".to_string()][..])
    );
    assert_eq!(attr(conv, "pads").ints, [1, 1, 1, 1]);
    assert_eq!((attr(conv, "group").i, attr(conv, "group").type_.enum_value()), (1, Ok(AttributeType::INT)));
    assert!(conv.attribute.iter().all(|a| a.name != "auto_pad"), "pads and auto_pad are exclusive");
    assert_eq!(attr(node(&g, "LeakyRelu"), "alpha").f, 0.25);
    let pool = node(&g, "MaxPool");
    assert_eq!(
        (attr(pool, "kernel_shape").ints.as_slice(), attr(pool, "strides").ints.as_slice()),
        (&[2i64, 2][..], &[2i64, 2][..])
    );
    assert_eq!(attr(node(&g, "Gemm"), "transB").i, 1);
    // Legacy softmax over the last axis is the opset-13 softmax over axis -1.
    assert_eq!(attr(node(&g, "Softmax"), "axis").i, -1);
    let out = dims_of(&g.output[0]);
    assert_eq!((g.output[0].name.as_str(), out[1].as_str()), ("prob", "2"));
    assert!(out[0].parse::<usize>().is_err(), "the batch dim stays symbolic: {out:?}");
}

#[test]
fn legacy_softmax_on_an_inner_axis_is_lowered_through_flatten() {
    let mut g = Graph::new("t");
    let x = g.add_input("x", TensorType::known(DType::F32, &[2, 3, 4]));
    let y = g.add("y", Op::LogSoftmax { axis: 1, legacy: true }, &[x]).unwrap();
    g.set_outputs(vec![y]);
    let g = export(g);
    assert_eq!(op_types(&g), ["Shape", "Flatten", "LogSoftmax", "Reshape"]);
    let (shape, flat, norm, reshape) = (&g.node[0], &g.node[1], &g.node[2], &g.node[3]);
    assert_eq!((shape.input[0].as_str(), flat.input[0].as_str()), ("x", "x"));
    assert_eq!((attr(flat, "axis").i, attr(norm, "axis").i), (1, 1));
    assert_eq!(norm.input, flat.output);
    assert_eq!(reshape.input, [norm.output[0].clone(), shape.output[0].clone()]);
    assert_eq!(reshape.output, ["y"]);
}

#[test]
fn split_without_sizes_bitshift_and_optional_inputs() {
    let mut g = Graph::new("t");
    let x = g.add_input("x", TensorType::known(DType::F32, &[6]));
    let names: Vec<String> = ["a", "b", "c"].map(String::from).to_vec();
    let split = g.add_node("split", Op::Split { axis: 0 }, &[Some(x)], &names).unwrap();
    let min = g.add_const("min", Tensor::scalar(0.0f32));
    let clip = g.add_node("clip", Op::Clip, &[Some(ValueRef::first(split)), Some(min), None], &["d".into()]).unwrap();
    let i = g.add_input("i", TensorType::known(DType::U8, &[2]));
    let k = g.add_const("k", Tensor::vector(vec![1u8, 2]));
    let s = g.add("s", Op::Binary(Binary::BitShiftLeft), &[i, k]).unwrap();
    let parts = (1..3).map(|output| ValueRef { node: split, output });
    g.set_outputs([ValueRef::first(clip), s].into_iter().chain(parts).collect());
    let g = export(g);
    let split = node(&g, "Split");
    assert_eq!((split.input.len(), attr(split, "num_outputs").i, split.output.len()), (1, 3, 3));
    assert_eq!(node(&g, "Clip").input, ["a", "min"], "trailing absent inputs are dropped");
    assert_eq!(attr(node(&g, "BitShift"), "direction").s, b"LEFT");
}

#[test]
fn loop_bodies_read_captures_as_outer_names() {
    // Body: (i, cond, acc, scale) -> (cond, acc * scale); `scale` is the outer capture.
    let mut body = Graph::new("body");
    body.add_input("i", TensorType::scalar(DType::I64));
    let cond = body.add_input("cond_in", TensorType::scalar(DType::Bool));
    let acc = body.add_input("acc", TensorType::known(DType::F32, &[2]));
    let scale = body.add_input("scale_inner", TensorType::known(DType::F32, &[2]));
    let next = body.add("next", Op::Binary(Binary::Mul), &[acc, scale]).unwrap();
    body.set_outputs(vec![cond, next]);

    let mut g = Graph::new("t");
    let x = g.add_input("x", TensorType::known(DType::F32, &[2]));
    let scale = g.add_input("scale", TensorType::known(DType::F32, &[2]));
    let m = g.add_const("m", Tensor::scalar(3i64));
    let l = Op::Loop(Loop { body, num_captures: 1 });
    let id = g.add_node("loop", l, &[Some(m), None, Some(x), Some(scale)], &["out".into()]).unwrap();
    g.set_outputs(vec![ValueRef::first(id)]);
    let g = export(g);
    let lp = node(&g, "Loop");
    assert_eq!(lp.input, ["m", "", "x"], "the capture is no longer a node input");
    let body = attr(lp, "body");
    assert_eq!(body.type_.enum_value(), Ok(AttributeType::GRAPH));
    let body = body.g.as_ref().unwrap();
    let inputs: Vec<&str> = body.input.iter().map(|v| v.name.as_str()).collect();
    assert_eq!(inputs, ["i", "cond_in", "acc"]);
    assert_eq!(body.node[0].input, ["acc", "scale"], "the body reads the outer value by name");
    let outputs: Vec<&str> = body.output.iter().map(|v| v.name.as_str()).collect();
    assert_eq!(outputs, ["cond_in", "next"]);
}

/// `if c then x + k else x * k`, then `- k`: the branches capture `x` and share the outer `k`.
fn if_graph() -> Graph {
    let mut g = Graph::new("t");
    let c = g.add_input("c", TensorType::scalar(DType::Bool));
    let x = g.add_input("x", TensorType::known(DType::F32, &[2]));
    let k = Tensor::vector(vec![2.0f32, 3.0]);
    let branch = |op: Binary| {
        let mut b = Graph::new("branch");
        let xin = b.add_input("x", TensorType::known(DType::F32, &[2]));
        let kin = b.add_const("k", k.clone());
        let y = b.add("y", Op::Binary(op), &[xin, kin]).unwrap();
        b.set_outputs(vec![y]);
        b
    };
    let op = Op::If { then_branch: Box::new(branch(Binary::Add)), else_branch: Box::new(branch(Binary::Mul)) };
    let id = g.add_node("if", op, &[Some(c), Some(x)], &["out".into()]).unwrap();
    let kout = g.add_const("k", k.clone());
    let z = g.add("z", Op::Binary(Binary::Sub), &[ValueRef::first(id), kout]).unwrap();
    g.set_outputs(vec![z]);
    g
}

#[test]
fn if_branches_reference_captures_and_shared_constants_by_outer_name() {
    let g = if_graph();
    let g = export(g);
    let n = node(&g, "If");
    assert_eq!(n.input, ["c"]);
    for (name, op_type) in [("then_branch", "Add"), ("else_branch", "Mul")] {
        let b = attr(n, name).g.as_ref().unwrap();
        assert!(
            b.input.is_empty() && b.initializer.is_empty(),
            "{name}: captures and shared weights come from outside"
        );
        assert_eq!(
            (b.node[0].op_type.as_str(), b.node[0].input.as_slice()),
            (op_type, &["x".to_string(), "k".into()][..])
        );
    }
}

#[test]
fn save_file_is_atomic() {
    let dir = std::env::temp_dir().join(format!("kiln-export-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("m.onnx");
    let m = model(cnn());
    save_file(&m, &path).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), to_bytes(&m).unwrap());
    let listing: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(listing, ["m.onnx"], "no temporary file is left behind");
    let missing = dir.join("no-such-dir").join("m.onnx");
    assert!(matches!(save_file(&m, &missing), Err(ExportError::Io { .. })));
    assert!(!missing.exists());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn unexportable_attributes_are_errors_naming_the_node() {
    let mut g = Graph::new("t");
    let x = g.add_input("x", TensorType::known(DType::F32, &[1, 1, 4, 4]));
    let y = g.add("lp", Op::GlobalPool(PoolKind::Lp { p: 1.5 }), &[x]).unwrap();
    g.set_outputs(vec![y]);
    let err = to_bytes(&model(g)).unwrap_err();
    assert!(err.to_string().contains("node 'lp' (GlobalLpPool)"), "{err}");
}

/// Export, then import with Kiln's importer.
fn reimport(g: &Graph) -> Graph {
    let bytes = to_bytes(&model(g.clone())).unwrap();
    let back = crate::onnx::import::load_bytes(&bytes, None).unwrap();
    assert_eq!(back.opset, TARGET_OPSET);
    back.graph
}

/// The text form survives export → import unchanged.
fn assert_round_trip(g: Graph) {
    g.verify().unwrap();
    let back = reimport(&g);
    back.verify().unwrap();
    assert_eq!(kiln_ir::text::to_text(&back), kiln_ir::text::to_text(&g));
}

#[test]
fn round_trip_cnn() {
    assert_round_trip(cnn_with(false));
}

#[test]
fn round_trip_control_flow() {
    let mut body = Graph::new("body");
    body.add_input("i", TensorType::scalar(DType::I64));
    let cond = body.add_input("cond_in", TensorType::scalar(DType::Bool));
    let acc = body.add_input("acc", TensorType::known(DType::F32, &[2]));
    let scale = body.add_input("scale", TensorType::known(DType::F32, &[2]));
    let next = body.add("next", Op::Binary(Binary::Mul), &[acc, scale]).unwrap();
    body.set_outputs(vec![cond, next, next]);
    let mut g = Graph::new("t");
    let x = g.add_input("x", TensorType::known(DType::F32, &[2]));
    let scale = g.add_input("scale", TensorType::known(DType::F32, &[2]));
    let m = g.add_const("m", Tensor::scalar(3i64));
    let l = Op::Loop(Loop { body, num_captures: 1 });
    let id = g.add_node("loop", l, &[Some(m), None, Some(x), Some(scale)], &["out".into(), "scans".into()]).unwrap();
    g.set_outputs(vec![ValueRef::first(id), ValueRef { node: id, output: 1 }]);
    assert_round_trip(g);
    assert_round_trip(if_graph());
    assert_round_trip(scan_graph());
}

/// A running sum over the rows of `xs`, each step scaled by the captured `k`.
fn scan_graph() -> Graph {
    let mut body = Graph::new("body");
    let st = body.add_input("st", TensorType::known(DType::F32, &[4]));
    let el = body.add_input("el", TensorType::known(DType::F32, &[4]));
    let k = body.add_input("k", TensorType::scalar(DType::F32));
    let s1 = body.add("s1", Op::Binary(Binary::Add), &[st, el]).unwrap();
    let s2 = body.add("s2", Op::Binary(Binary::Mul), &[s1, k]).unwrap();
    body.set_outputs(vec![s1, s2]);
    let mut g = Graph::new("t");
    let xs = g.add_input("xs", TensorType::known(DType::F32, &[4, 3]));
    let k = g.add_input("k", TensorType::scalar(DType::F32));
    let init = g.add_const("init", Tensor::vector(vec![0.0f32; 4]));
    let scan = Scan {
        body,
        num_scan_inputs: 1,
        num_captures: 1,
        scan_input_axes: vec![1],
        scan_input_directions: vec![1],
        scan_output_axes: vec![0],
        scan_output_directions: vec![0],
    };
    let names = ["last".to_string(), "ys".to_string()];
    let id = g.add_node("scan", Op::Scan(scan), &[Some(init), Some(xs), Some(k)], &names).unwrap();
    g.set_outputs(vec![ValueRef::first(id), ValueRef { node: id, output: 1 }]);
    g
}

/// One node of (almost) every op kind over a 4-D input, for round trips.
fn zoo() -> Graph {
    use kiln_ir::op::*;
    let mut g = Graph::new("zoo");
    let x = g.add_input("x", TensorType::new(DType::F32, [1.into(), 2.into(), Dim::from("h"), 4.into()]));
    let k = |g: &mut Graph, name: &str, t: Tensor| g.add_const(name, t);
    let i64s = |v: &[i64]| Tensor::vector(v.to_vec());
    let unaries = [
        Unary::Elu { alpha: 0.5 },
        Unary::Selu { alpha: 1.5, gamma: 1.1 },
        Unary::Celu { alpha: 1.0 },
        Unary::ThresholdedRelu { alpha: 0.3 },
        Unary::HardSigmoid { alpha: 0.2, beta: 0.5 },
        Unary::HardSwish,
        Unary::Mish,
        Unary::Round,
        Unary::Gelu { tanh_approx: true },
    ];
    let mut outs: Vec<ValueRef> =
        unaries.iter().enumerate().map(|(i, &u)| g.add(&format!("u{i}"), Op::Unary(u), &[x]).unwrap()).collect();
    // Constants are created just before their first reader, where the importer creates them.
    let two = k(&mut g, "two", Tensor::scalar(2.0f32));
    let mut add = |g: &mut Graph, name: &str, op: Op, ins: &[ValueRef]| {
        let v = g.add(name, op, ins).unwrap();
        outs.push(v);
        v
    };
    add(&mut g, "pow", Op::Binary(Binary::Pow), &[x, two]);
    add(&mut g, "fmod", Op::Binary(Binary::Mod { fmod: true }), &[x, two]);
    let lt = add(&mut g, "lt", Op::Binary(Binary::Less), &[x, two]);
    let ge = add(&mut g, "ge", Op::Binary(Binary::GreaterOrEqual), &[x, two]);
    let both = add(&mut g, "both", Op::Binary(Binary::And), &[lt, ge]);
    add(&mut g, "not", Op::Unary(Unary::Not), &[both]);
    add(&mut g, "where", Op::Where, &[lt, x, two]);
    add(&mut g, "sum", Op::Variadic(Variadic::Sum), &[x, two, x]);
    add(&mut g, "mean", Op::Variadic(Variadic::Mean), &[x, two]);
    let xi = add(&mut g, "xi", Op::Cast { to: DType::I32 }, &[x]);
    add(&mut g, "band", Op::Binary(Binary::BitwiseAnd), &[xi, xi]);
    add(&mut g, "castlike", Op::CastLike, &[xi, x]);
    let wt = k(&mut g, "wt", Tensor::seeded(DType::F32, &[2, 3, 3, 3], "wt", 0.0, 0.1).unwrap());
    let window = Window { strides: vec![2, 2], pads: vec![1, 1, 1, 1], ..Default::default() };
    let ct = ConvTranspose { window, group: 1, output_padding: vec![1, 1], output_shape: None };
    add(&mut g, "convt", Op::ConvTranspose(ct), &[x, wt]);
    let (sc, bi) =
        (k(&mut g, "sc", Tensor::vector(vec![1.0f32, 2.0])), k(&mut g, "bi", Tensor::vector(vec![0.0f32, 1.0])));
    let (mn, vr) =
        (k(&mut g, "mn", Tensor::vector(vec![0.1f32, 0.2])), k(&mut g, "vr", Tensor::vector(vec![1.0f32, 2.0])));
    add(&mut g, "bn", Op::BatchNorm { epsilon: 1e-5 }, &[x, sc, bi, mn, vr]);
    add(&mut g, "inorm", Op::InstanceNorm { epsilon: 1e-5 }, &[x, sc, bi]);
    let s4 = k(&mut g, "s4", Tensor::vector(vec![1.0f32; 4]));
    add(&mut g, "ln", Op::LayerNorm { axis: -1, epsilon: 1e-5 }, &[x, s4]);
    add(&mut g, "lrn", Op::Lrn(Lrn { size: 3, alpha: 1e-4, beta: 0.75, bias: 1.0 }), &[x]);
    let window = Window { kernel_shape: Some(vec![2, 2]), auto_pad: AutoPad::SameUpper, ..Default::default() };
    add(
        &mut g,
        "lp",
        Op::Pool(Pool { kind: PoolKind::Lp { p: 2.0 }, window, ceil_mode: false, storage_order: 0 }),
        &[x],
    );
    add(&mut g, "glp", Op::GlobalPool(PoolKind::Lp { p: 2.0 }), &[x]);
    add(&mut g, "gmp", Op::GlobalPool(PoolKind::Max), &[x]);
    add(&mut g, "hardmax", Op::Hardmax { axis: 1, legacy: false }, &[x]);
    add(&mut g, "argmax", Op::ArgMax { axis: 1, keepdims: true, select_last_index: true }, &[x]);
    add(&mut g, "argmin", Op::ArgMin { axis: -1, keepdims: false, select_last_index: false }, &[x]);
    add(&mut g, "cat", Op::Concat { axis: 1 }, &[x, x]);
    let idx = k(&mut g, "idx", i64s(&[1, 0]));
    add(&mut g, "gather", Op::Gather { axis: 1 }, &[x, idx]);
    let idxn = k(&mut g, "idxn", Tensor::from_vec(&[1, 2], vec![0i64, 1]).unwrap());
    add(&mut g, "gathernd", Op::GatherNd { batch_dims: 0 }, &[x, idxn]);
    let shape = k(&mut g, "shape", i64s(&[2, -1]));
    add(&mut g, "reshape", Op::Reshape { allowzero: false }, &[x, shape]);
    add(&mut g, "flat", Op::Flatten { axis: 2 }, &[x]);
    add(&mut g, "perm", Op::Transpose { perm: Some(vec![0, 3, 1, 2]) }, &[x]);
    add(&mut g, "rev", Op::Transpose { perm: None }, &[x]);
    let ax0 = k(&mut g, "ax0", i64s(&[0]));
    let sq = add(&mut g, "squeeze", Op::Squeeze, &[x, ax0]);
    add(&mut g, "unsqueeze", Op::Unsqueeze, &[sq, ax0]);
    let eshape = k(&mut g, "eshape", i64s(&[3, 1, 1, 1]));
    add(&mut g, "expand", Op::Expand, &[x, eshape]);
    let reps = k(&mut g, "reps", i64s(&[1, 1, 2, 1]));
    add(&mut g, "tile", Op::Tile, &[x, reps]);
    add(&mut g, "size", Op::Size, &[x]);
    let shp = add(&mut g, "shp", Op::Shape { start: 1, end: Some(-1) }, &[x]);
    add(&mut g, "fill", Op::ConstantOfShape { value: Tensor::vector(vec![7i64]) }, &[shp]);
    let (r0, r1, r2) = (
        k(&mut g, "r0", Tensor::scalar(0i64)),
        k(&mut g, "r1", Tensor::scalar(5i64)),
        k(&mut g, "r2", Tensor::scalar(2i64)),
    );
    add(&mut g, "range", Op::Range, &[r0, r1, r2]);
    let pads = k(&mut g, "pads", i64s(&[0, 0, 1, 1, 0, 0, 1, 1]));
    add(&mut g, "pad", Op::Pad { mode: PadMode::Reflect }, &[x, pads]);
    let (starts, ends, axes) =
        (k(&mut g, "starts", i64s(&[1])), k(&mut g, "ends", i64s(&[3])), k(&mut g, "axes", i64s(&[3])));
    add(&mut g, "slice", Op::Slice, &[x, starts, ends, axes]);
    add(
        &mut g,
        "reduce",
        Op::Reduce { op: ReduceOp::LogSumExp, keepdims: false, noop_with_empty_axes: false },
        &[x, axes],
    );
    add(&mut g, "identity", Op::Identity, &[x]);
    let w44 = k(&mut g, "w44", Tensor::seeded(DType::F32, &[4, 4], "w44", 0.0, 0.5).unwrap());
    add(&mut g, "matmul", Op::MatMul, &[x, w44]);
    let idx4 = k(&mut g, "idx4", Tensor::from_vec(&[1, 2, 1, 4], vec![0i64, 1, 2, 3, 3, 2, 1, 0]).unwrap());
    add(&mut g, "gatherel", Op::GatherElements { axis: 3 }, &[x, idx4]);
    let u8x = add(&mut g, "u8x", Op::Cast { to: DType::U8 }, &[x]);
    let shift = k(&mut g, "shift", Tensor::scalar(1u8));
    add(&mut g, "shr", Op::Binary(Binary::BitShiftRight), &[u8x, shift]);
    let clip = g.add_node("clip", Op::Clip, &[Some(x), None, Some(two)], &["clip".into()]).unwrap();
    let halves = ["half0".to_string(), "half1".to_string()];
    let split = g.add_node("split", Op::Split { axis: 3 }, &[Some(x)], &halves).unwrap();
    outs.extend([ValueRef::first(clip), ValueRef::first(split), ValueRef { node: split, output: 1 }]);
    let scales = k(&mut g, "scales", Tensor::vector(vec![1.0f32, 1.0, 2.0, 2.0]));
    let resize = Resize { mode: ResizeMode::Linear, coord: ResizeCoord::AlignCorners, ..Default::default() };
    let rz = g.add_node("resize", Op::Resize(resize), &[Some(x), None, Some(scales)], &["resize".into()]).unwrap();
    let dr = g.add_node("dropout", Op::Dropout, &[Some(x)], &["dropout".into(), "mask".into()]).unwrap();
    outs.extend([ValueRef::first(rz), ValueRef::first(dr), ValueRef { node: dr, output: 1 }]);
    g.set_outputs(outs);
    g
}

#[test]
fn round_trip_op_zoo() {
    assert_round_trip(zoo());
}

/// LSTM, GRU and RNN with every attribute away from its default survive export and import.
#[test]
fn round_trip_recurrent() {
    let acts = vec![
        Activation::HardSigmoid { alpha: 0.3, beta: 0.4 },
        Activation::LeakyRelu { alpha: 0.2 },
        Activation::ScaledTanh { alpha: 1.5, beta: 0.7 },
        Activation::Sigmoid,
        Activation::Elu { alpha: 0.9 },
        Activation::Affine { alpha: 2.0, beta: -1.0 },
    ];
    let cells = [
        (Cell::Lstm { input_forget: true }, 4, acts),
        (Cell::Gru { linear_before_reset: true }, 3, [Activation::Softsign, Activation::Softplus].repeat(2)),
        (Cell::Rnn, 1, vec![Activation::Relu, Activation::ThresholdedRelu { alpha: 0.5 }]),
    ];
    for (cell, gates, activations) in cells {
        let mut g = Graph::new("t");
        let x = g.add_input("x", TensorType::new(DType::F32, [Dim::Known(2), Dim::from("seq"), Dim::Known(3)]));
        let w = g.add_input("w", TensorType::known(DType::F32, &[2, gates * 4, 3]));
        let r = g.add_input("r", TensorType::known(DType::F32, &[2, gates * 4, 4]));
        let op = Recurrent {
            cell,
            direction: Direction::Bidirectional,
            hidden_size: 4,
            activations,
            clip: Some(2.5),
            batch_major: true,
        };
        let outs = ["y".to_string(), "y_h".to_string()];
        let id = g.add_node("rec", Op::Recurrent(op), &[Some(x), Some(w), Some(r)], &outs).unwrap();
        g.set_outputs(vec![ValueRef { node: id, output: 1 }, ValueRef::first(id)]);
        let back = reimport(&g);
        assert_eq!(back.node(back.outputs()[0].node).op, g.node(id).op);
        assert_round_trip(g);
    }
}

#[test]
fn a_dangling_graph_output_is_an_error() {
    let mut g = Graph::new("t");
    let x = g.add_input("x", TensorType::known(DType::F32, &[2]));
    let y = g.add("y", Op::Unary(Unary::Relu), &[x]).unwrap();
    g.set_outputs(vec![y]);
    g.remove_node(y.node);
    let err = to_bytes(&model(g)).unwrap_err();
    assert!(matches!(&err, ExportError::Graph { graph, .. } if graph == "t"), "{err}");
}
