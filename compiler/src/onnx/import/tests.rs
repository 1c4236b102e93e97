//! Importer tests over small models built in code (terse proto builders below) and over the
//! light models shipped in `models/light/`.

use super::*;
use kiln_ir::op::Unary;
use kiln_ir::{DType, Dim, Op, Tensor};
use onnx_protobuf::attribute_proto::AttributeType;
use onnx_protobuf::tensor_proto::DataLocation;
use onnx_protobuf::tensor_shape_proto::{dimension, Dimension};
use onnx_protobuf::type_proto::{self, Tensor as TensorTypeProto};
use onnx_protobuf::{
    AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, StringStringEntryProto, TensorProto,
    TensorShapeProto, TypeProto, ValueInfoProto,
};

// ---- terse builders ----

fn node(op: &str, name: &str, inputs: &[&str], outputs: &[&str], attrs: Vec<AttributeProto>) -> NodeProto {
    NodeProto {
        op_type: op.into(),
        name: name.into(),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: outputs.iter().map(|s| s.to_string()).collect(),
        attribute: attrs,
        ..Default::default()
    }
}

fn attr(name: &str, ty: AttributeType, fill: impl FnOnce(&mut AttributeProto)) -> AttributeProto {
    let mut a = AttributeProto { name: name.into(), type_: ty.into(), ..Default::default() };
    fill(&mut a);
    a
}

fn ints(name: &str, v: &[i64]) -> AttributeProto {
    attr(name, AttributeType::INTS, |a| a.ints = v.to_vec())
}

fn int(name: &str, v: i64) -> AttributeProto {
    attr(name, AttributeType::INT, |a| a.i = v)
}

fn float(name: &str, v: f32) -> AttributeProto {
    attr(name, AttributeType::FLOAT, |a| a.f = v)
}

fn graph_attr(name: &str, g: GraphProto) -> AttributeProto {
    attr(name, AttributeType::GRAPH, |a| a.g = Some(g).into())
}

fn tensor_attr(name: &str, t: TensorProto) -> AttributeProto {
    attr(name, AttributeType::TENSOR, |a| a.t = Some(t).into())
}

/// Dims: a number is a known extent, `?` unknown, anything else a symbol.
fn vi(name: &str, dtype: DType, dims: &[&str]) -> ValueInfoProto {
    let dim = |d: &&str| Dimension {
        value: match *d {
            "?" => None,
            d => Some(d.parse().map_or_else(|_| dimension::Value::DimParam(d.into()), dimension::Value::DimValue)),
        },
        ..Default::default()
    };
    let shape = TensorShapeProto { dim: dims.iter().map(dim).collect(), ..Default::default() };
    let tt = TensorTypeProto { elem_type: dtype.onnx_code(), shape: Some(shape).into(), ..Default::default() };
    let ty = TypeProto { value: Some(type_proto::Value::TensorType(tt)), ..Default::default() };
    ValueInfoProto { name: name.into(), type_: Some(ty).into(), ..Default::default() }
}

/// A value info with no type (allowed for outputs and nested-graph values).
fn untyped(name: &str) -> ValueInfoProto {
    ValueInfoProto { name: name.into(), ..Default::default() }
}

fn f32s(name: &str, dims: &[i64], v: &[f32]) -> TensorProto {
    TensorProto {
        name: name.into(),
        dims: dims.to_vec(),
        data_type: DType::F32.onnx_code(),
        float_data: v.to_vec(),
        ..Default::default()
    }
}

fn i64s(name: &str, v: &[i64]) -> TensorProto {
    TensorProto {
        name: name.into(),
        dims: vec![v.len() as i64],
        data_type: DType::I64.onnx_code(),
        int64_data: v.to_vec(),
        ..Default::default()
    }
}

fn raw(name: &str, dtype: DType, dims: &[i64], bytes: Vec<u8>) -> TensorProto {
    TensorProto {
        name: name.into(),
        dims: dims.to_vec(),
        data_type: dtype.onnx_code(),
        raw_data: bytes,
        ..Default::default()
    }
}

fn graph(
    nodes: Vec<NodeProto>,
    inputs: Vec<ValueInfoProto>,
    outputs: Vec<ValueInfoProto>,
    inits: Vec<TensorProto>,
) -> GraphProto {
    GraphProto {
        name: "g".into(),
        node: nodes,
        input: inputs,
        output: outputs,
        initializer: inits,
        ..Default::default()
    }
}

fn model(g: GraphProto, opset: i64) -> ModelProto {
    ModelProto {
        ir_version: 8,
        opset_import: vec![OperatorSetIdProto { domain: String::new(), version: opset, ..Default::default() }],
        producer_name: "test".into(),
        graph: Some(g).into(),
        ..Default::default()
    }
}

fn bytes(m: &ModelProto) -> Vec<u8> {
    m.write_to_bytes().expect("a model built in code serializes")
}

fn import(m: &ModelProto) -> Result<Model, ImportError> {
    load_bytes(&bytes(m), None)
}

/// `y = Relu(x)` for x: f32[n,3].
fn relu_model() -> ModelProto {
    model(
        graph(
            vec![node("Relu", "r", &["x"], &["y"], vec![])],
            vec![vi("x", DType::F32, &["n", "3"])],
            vec![untyped("y")],
            vec![],
        ),
        13,
    )
}

/// The op of the node producing the named value.
fn op_of<'a>(m: &'a Model, value: &str) -> &'a Op {
    let v = m.graph.find_value(value).unwrap_or_else(|| panic!("no value {value}"));
    &m.graph.node(v.node).op
}

// ---- entry points and file-level errors ----

#[test]
fn imports_a_simple_model() {
    let m = import(&relu_model()).unwrap();
    m.graph.verify().unwrap();
    assert_eq!((m.opset, m.ir_version, m.producer.as_str()), (13, 8, "test"));
    assert_eq!(
        kiln_ir::text::to_text(&m.graph),
        "graph g(%x: f32[n,3]) -> (%y) {\n  %y = Relu(%x) : f32[n,3]  # r\n}\n"
    );
}

#[test]
fn truncated_and_corrupt_bytes_are_reported() {
    let b = bytes(&relu_model());
    let err = load_bytes(&b[..b.len() / 2], None).unwrap_err();
    assert!(matches!(err, ImportError::Corrupt { .. }), "{err}");
    assert!(err.to_string().contains("truncated or corrupt"), "{err}");
    let dir = tempdir("corrupt");
    let path = dir.join("bad.onnx");
    std::fs::write(&path, [0xff, 0xff, 0xff, 0x07, 0x01]).unwrap();
    let err = load_file(&path).unwrap_err();
    assert!(err.to_string().contains(&path.display().to_string()), "{err}");
    let err = load_file(&dir.join("missing.onnx")).unwrap_err();
    assert!(matches!(err, ImportError::Io { .. }), "{err}");
    let no_graph = ModelProto { ir_version: 8, ..Default::default() };
    assert!(matches!(import(&no_graph), Err(ImportError::NoGraph { .. })));
}

#[test]
fn opsets_and_domains_are_checked() {
    let mut m = relu_model();
    m.opset_import[0].version = 6;
    assert!(matches!(import(&m), Err(ImportError::OldOpset(6))));
    m.opset_import[0].domain = "ai.onnx.ml".into();
    assert!(matches!(import(&m), Err(ImportError::NoOpset)));
}

#[test]
fn every_unsupported_op_is_listed_at_once() {
    let mut custom = node("Relu", "c", &["y"], &["z"], vec![]);
    custom.domain = "com.example".into();
    let then_b = graph(vec![node("Frobnicate", "inner", &["x"], &["t"], vec![])], vec![], vec![untyped("t")], vec![]);
    let else_b = graph(vec![node("Identity", "e", &["x"], &["u"], vec![])], vec![], vec![untyped("u")], vec![]);
    let g = graph(
        vec![
            node("Relu", "r", &["x"], &["y"], vec![]),
            node("Mystery", "m", &["y"], &["w"], vec![]),
            custom,
            node(
                "If",
                "if",
                &["c"],
                &["o"],
                vec![graph_attr("then_branch", then_b), graph_attr("else_branch", else_b)],
            ),
        ],
        vec![vi("x", DType::F32, &["3"]), vi("c", DType::Bool, &[])],
        vec![untyped("w"), untyped("z"), untyped("o")],
        vec![],
    );
    let mut m = model(g, 17);
    m.opset_import.push(OperatorSetIdProto { domain: "com.example".into(), version: 1, ..Default::default() });
    let Err(ImportError::Unsupported(ops)) = import(&m) else { panic!("expected an unsupported-op error") };
    let listed: Vec<String> = ops.iter().map(ToString::to_string).collect();
    assert_eq!(
        listed,
        [
            "node 'm': Mystery (opset 17)",
            "node 'c': com.example::Relu (opset 1)",
            "node 'inner': Frobnicate (opset 17)"
        ]
    );
}

#[test]
fn cycles_and_dangling_edges_name_the_node() {
    let g = graph(
        vec![
            node("Relu", "head", &["x"], &["a"], vec![]),
            node("Add", "loop1", &["a", "c"], &["b"], vec![]),
            node("Relu", "loop2", &["b"], &["c"], vec![]),
            node("Relu", "tail", &["c"], &["y"], vec![]),
        ],
        vec![vi("x", DType::F32, &["3"])],
        vec![untyped("y")],
        vec![],
    );
    let err = import(&model(g, 13)).unwrap_err();
    let ImportError::Cycle { node: on_cycle } = &err else { panic!("expected a cycle, got {err}") };
    assert!(on_cycle == "loop1" || on_cycle == "loop2", "{err}");

    let g = graph(
        vec![node("Add", "adder", &["x", "nobody"], &["y"], vec![])],
        vec![vi("x", DType::F32, &["3"])],
        vec![untyped("y")],
        vec![],
    );
    let err = import(&model(g, 13)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "node 'adder' reads value 'nobody', which no node, graph input or initializer produces"
    );
}

#[test]
fn unsorted_nodes_are_sorted() {
    let g = graph(
        vec![node("Relu", "second", &["a"], &["y"], vec![]), node("Neg", "first", &["x"], &["a"], vec![])],
        vec![vi("x", DType::F32, &["3"])],
        vec![untyped("y")],
        vec![],
    );
    let m = import(&model(g, 13)).unwrap();
    m.graph.verify().unwrap();
    assert_eq!(op_of(&m, "y"), &Op::Unary(Unary::Relu));
}

#[test]
fn invalid_attributes_name_the_node() {
    let g = graph(
        vec![node("Transpose", "tr", &["x"], &["y"], vec![ints("perm", &[0, 0])])],
        vec![vi("x", DType::F32, &["2", "3"])],
        vec![untyped("y")],
        vec![],
    );
    let err = import(&model(g, 13)).unwrap_err().to_string();
    assert!(err.contains("'tr'") && err.contains("perm"), "{err}");
    let g = graph(
        vec![node("Transpose", "tr", &["x"], &["y"], vec![float("perm", 1.0)])],
        vec![vi("x", DType::F32, &["2", "3"])],
        vec![untyped("y")],
        vec![],
    );
    let err = import(&model(g, 13)).unwrap_err().to_string();
    assert!(err.contains("'tr'") && err.contains("INTS"), "{err}");
}

#[test]
fn non_tensor_inputs_are_refused() {
    let seq = type_proto::Sequence { elem_type: vi("e", DType::F32, &["2"]).type_, ..Default::default() };
    let ty = TypeProto { value: Some(type_proto::Value::SequenceType(seq)), ..Default::default() };
    let x = ValueInfoProto { name: "x".into(), type_: Some(ty).into(), ..Default::default() };
    let g = graph(vec![node("Identity", "i", &["x"], &["y"], vec![])], vec![x], vec![untyped("y")], vec![]);
    let err = import(&model(g, 13)).unwrap_err().to_string();
    assert!(err.contains("'x'") && err.contains("only tensors"), "{err}");
}

#[test]
fn empty_pool_windows_are_refused() {
    let g = graph(
        vec![node("MaxPool", "pool", &["x"], &["y"], vec![ints("kernel_shape", &[0, 2])])],
        vec![vi("x", DType::F32, &["1", "1", "4", "4"])],
        vec![untyped("y")],
        vec![],
    );
    let err = import(&model(g, 13)).unwrap_err().to_string();
    assert!(err.contains("'pool'") && err.contains("kernel_shape"), "{err}");
}

#[test]
fn absurd_input_dims_are_refused() {
    let g = graph(
        vec![node("Relu", "r", &["x"], &["y"], vec![])],
        vec![vi("x", DType::F32, &["1000000000", "1000000000"])],
        vec![untyped("y")],
        vec![],
    );
    let err = import(&model(g, 13)).unwrap_err();
    assert!(matches!(err, ImportError::Input { .. }), "{err}");
}

// ---- tensors ----

/// Little-endian bytes of a slice of numbers.
macro_rules! le {
    ($v:expr) => {
        $v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>()
    };
}

#[test]
fn raw_and_typed_initializers_agree() {
    use half::f16;
    let typed = |dtype: DType, fill: &dyn Fn(&mut TensorProto)| {
        let mut t = TensorProto { dims: vec![2, 2], data_type: dtype.onnx_code(), ..Default::default() };
        fill(&mut t);
        tensor::to_tensor(&t, None).unwrap()
    };
    let from_raw = |dtype: DType, b: Vec<u8>| tensor::to_tensor(&raw("t", dtype, &[2, 2], b), None).unwrap();
    let f = [1.5f32, -2.0, 0.0, 3.25];
    let cases: Vec<(Tensor, Tensor, Tensor)> = vec![
        (
            typed(DType::F32, &|t| t.float_data = f.to_vec()),
            from_raw(DType::F32, le!(f)),
            Tensor::from_vec(&[2, 2], f.to_vec()).unwrap(),
        ),
        (
            typed(DType::F64, &|t| t.double_data = vec![1.0, 2.0, -3.0, 4.5]),
            from_raw(DType::F64, le!([1.0f64, 2.0, -3.0, 4.5])),
            Tensor::from_vec(&[2, 2], vec![1.0f64, 2.0, -3.0, 4.5]).unwrap(),
        ),
        (
            typed(DType::I64, &|t| t.int64_data = vec![1, -2, 1 << 40, 4]),
            from_raw(DType::I64, le!([1i64, -2, 1 << 40, 4])),
            Tensor::from_vec(&[2, 2], vec![1i64, -2, 1 << 40, 4]).unwrap(),
        ),
        (
            typed(DType::I32, &|t| t.int32_data = vec![7, -8, 9, 0]),
            from_raw(DType::I32, le!([7i32, -8, 9, 0])),
            Tensor::from_vec(&[2, 2], vec![7i32, -8, 9, 0]).unwrap(),
        ),
        (
            typed(DType::F16, &|t| t.int32_data = f.iter().map(|&x| f16::from_f32(x).to_bits() as i32).collect()),
            from_raw(DType::F16, le!(f.map(f16::from_f32))),
            Tensor::from_vec(&[2, 2], f.map(f16::from_f32).to_vec()).unwrap(),
        ),
        (
            typed(DType::Bool, &|t| t.int32_data = vec![1, 0, 0, 1]),
            from_raw(DType::Bool, vec![1, 0, 0, 1]),
            Tensor::from_vec(&[2, 2], vec![true, false, false, true]).unwrap(),
        ),
        (
            typed(DType::I8, &|t| t.int32_data = vec![-128, 127, -1, 0]),
            from_raw(DType::I8, vec![0x80, 0x7f, 0xff, 0]),
            Tensor::from_vec(&[2, 2], vec![-128i8, 127, -1, 0]).unwrap(),
        ),
        (
            typed(DType::U8, &|t| t.int32_data = vec![255, 0, 1, 128]),
            from_raw(DType::U8, vec![255, 0, 1, 128]),
            Tensor::from_vec(&[2, 2], vec![255u8, 0, 1, 128]).unwrap(),
        ),
        (
            typed(DType::U64, &|t| t.uint64_data = vec![u64::MAX, 0, 1, 2]),
            from_raw(DType::U64, le!([u64::MAX, 0, 1, 2])),
            Tensor::from_vec(&[2, 2], vec![u64::MAX, 0, 1, 2]).unwrap(),
        ),
    ];
    for (typed, raw, want) in cases {
        assert_eq!(typed, want);
        assert_eq!(raw, want);
    }
}

#[test]
fn initializer_sizes_must_match_dims() {
    let short = f32s("w", &[2, 3], &[1.0, 2.0]);
    let err = tensor::to_tensor(&short, None).unwrap_err().to_string();
    assert!(err.contains("'w'") && err.contains("need 6"), "{err}");
    let bad_raw = raw("r", DType::F32, &[4], vec![0; 15]);
    assert!(tensor::to_tensor(&bad_raw, None).unwrap_err().to_string().contains("raw_data holds 15 bytes"));
    let huge = raw("h", DType::F32, &[1 << 40, 1 << 40], vec![]);
    assert!(tensor::to_tensor(&huge, None).unwrap_err().to_string().contains("refusing"));
    let negative = raw("n", DType::F32, &[-1], vec![]);
    assert!(tensor::to_tensor(&negative, None).unwrap_err().to_string().contains("negative"));
    let string = TensorProto { name: "s".into(), data_type: 8, ..Default::default() };
    assert!(tensor::to_tensor(&string, None).unwrap_err().to_string().contains("STRING"));
}

/// A fresh, empty directory under the system temp dir for one test (per process).
fn tempdir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("kiln-import-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn external(name: &str, dims: &[i64], entries: &[(&str, &str)]) -> TensorProto {
    TensorProto {
        name: name.into(),
        dims: dims.to_vec(),
        data_type: DType::F32.onnx_code(),
        data_location: DataLocation::EXTERNAL.into(),
        external_data: entries
            .iter()
            .map(|(k, v)| StringStringEntryProto { key: k.to_string(), value: v.to_string(), ..Default::default() })
            .collect(),
        ..Default::default()
    }
}

/// `y = x + w` with `w` given by `init`; written into `dir` and loaded from there.
fn load_with_init(dir: &std::path::Path, init: TensorProto) -> Result<Model, ImportError> {
    let g = graph(
        vec![node("Add", "add", &["x", "w"], &["y"], vec![])],
        vec![vi("x", DType::F32, &["3"])],
        vec![untyped("y")],
        vec![init],
    );
    let path = dir.join("model.onnx");
    std::fs::write(&path, bytes(&model(g, 13))).unwrap();
    load_file(&path)
}

#[test]
fn external_data_is_read_next_to_the_model() {
    let dir = tempdir("external");
    let mut data = vec![0xAAu8; 8];
    data.extend(le!([1.0f32, 2.0, 3.0]));
    std::fs::create_dir_all(dir.join("weights")).unwrap();
    std::fs::write(dir.join("weights/w.bin"), &data).unwrap();
    let init = external("w", &[3], &[("location", "weights/w.bin"), ("offset", "8"), ("length", "12")]);
    let m = load_with_init(&dir, init).unwrap();
    let w = m.graph.const_value(m.graph.find_value("w").unwrap()).unwrap();
    assert_eq!(w.to_vec::<f32>(), vec![1.0, 2.0, 3.0]);

    for (entries, complaint) in [
        (vec![("location", "../w.bin")], "leaves the model's directory"),
        (vec![("location", "/etc/passwd")], "leaves the model's directory"),
        (vec![("location", "weights/w.bin"), ("offset", "16")], "too few"),
        (vec![("location", "weights/w.bin"), ("length", "8")], "length 8 differs"),
        (vec![("location", "weights/none.bin")], "cannot open"),
    ] {
        let err = load_with_init(&dir, external("w", &[3], &entries)).unwrap_err().to_string();
        assert!(err.contains(complaint), "{entries:?}: {err}");
    }
    let err = load_bytes(&std::fs::read(dir.join("model.onnx")).unwrap(), None).unwrap_err().to_string();
    assert!(err.contains("model's directory"), "{err}");
    #[cfg(unix)]
    {
        let outside = tempdir("external-outside");
        std::fs::write(outside.join("w.bin"), le!([1.0f32, 2.0, 3.0])).unwrap();
        std::os::unix::fs::symlink(outside.join("w.bin"), dir.join("link.bin")).unwrap();
        let err = load_with_init(&dir, external("w", &[3], &[("location", "link.bin")])).unwrap_err().to_string();
        assert!(err.contains("leaves the model's directory"), "a symlink out: {err}");
    }
}

#[test]
fn initializers_listed_as_inputs_become_constants() {
    let g = graph(
        vec![node("Add", "add", &["x", "w"], &["y"], vec![])],
        vec![vi("x", DType::F32, &["2"]), vi("w", DType::F32, &["2"])],
        vec![untyped("y")],
        vec![f32s("w", &[2], &[1.0, 2.0])],
    );
    let m = import(&model(g, 9)).unwrap();
    m.graph.verify().unwrap();
    let names: Vec<&str> = m.graph.input_values().iter().map(|&v| m.graph.value_name(v)).collect();
    assert_eq!(names, ["x"]);
    assert!(matches!(op_of(&m, "w"), Op::Constant(t) if t.to_vec::<f32>() == [1.0, 2.0]));
}

#[test]
fn symbolic_and_unknown_dims() {
    let g = graph(
        vec![node("Relu", "r", &["x"], &["y"], vec![])],
        vec![vi("x", DType::F32, &["batch", "?", "4"])],
        vec![untyped("y")],
        vec![],
    );
    let m = import(&model(g, 13)).unwrap();
    assert_eq!(m.graph.value_type(m.graph.input_values()[0]).to_string(), "f32[batch,x_1,4]");
}

#[test]
fn negative_dims_are_symbolic_and_zero_is_an_extent() {
    // paddle2onnx writes dynamic dims as -1; ONNX Runtime accepts them. A 0 is a real, empty
    // extent (the conformance suite feeds empty `axes` inputs declared so).
    let g = graph(
        vec![node("Relu", "r", &["x"], &["y"], vec![])],
        vec![vi("x", DType::F32, &["-1", "3", "-1"])],
        vec![untyped("y")],
        vec![],
    );
    let m = import(&model(g, 13)).unwrap();
    assert_eq!(m.graph.value_type(m.graph.input_values()[0]).to_string(), "f32[x_0,3,x_2]");
    let x = Tensor::from_vec(&[2, 3, 5], vec![-1.0f32; 30]).unwrap();
    let out = kiln_backends::interp::run_graph(&m.graph, &[x], &[]).unwrap().0;
    assert_eq!(out[0].shape(), [2, 3, 5]);
    let g = graph(
        vec![node("Relu", "r", &["x"], &["y"], vec![])],
        vec![vi("x", DType::F32, &["0", "3"])],
        vec![untyped("y")],
        vec![],
    );
    let m = import(&model(g, 13)).unwrap();
    assert_eq!(m.graph.value_type(m.graph.input_values()[0]).to_string(), "f32[0,3]");
}

// ---- ops and opset differences ----

#[test]
fn softmax_is_legacy_before_opset_13() {
    let sm = |opset| {
        let g = graph(
            vec![node("Softmax", "s", &["x"], &["y"], vec![])],
            vec![vi("x", DType::F32, &["2", "5"])],
            vec![untyped("y")],
            vec![],
        );
        import(&model(g, opset)).unwrap()
    };
    assert_eq!(op_of(&sm(11), "y"), &Op::Softmax { axis: 1, legacy: true });
    assert_eq!(op_of(&sm(13), "y"), &Op::Softmax { axis: -1, legacy: false });
}

#[test]
fn attributes_that_became_inputs_give_the_same_ir() {
    let x = vi("x", DType::F32, &["3", "4"]);
    let old = graph(
        vec![node("Unsqueeze", "u", &["x"], &["y"], vec![ints("axes", &[0, 3])])],
        vec![x.clone()],
        vec![untyped("y")],
        vec![],
    );
    let new = graph(
        vec![node("Unsqueeze", "u", &["x", "u__axes"], &["y"], vec![])],
        vec![x],
        vec![untyped("y")],
        vec![i64s("u__axes", &[0, 3])],
    );
    let (old, new) = (import(&model(old, 11)).unwrap(), import(&model(new, 13)).unwrap());
    assert_eq!(old.graph.value_type(old.graph.outputs()[0]).to_string(), "f32[1,3,4,1]");
    assert_eq!(kiln_ir::text::to_text(&old.graph), kiln_ir::text::to_text(&new.graph));
}

#[test]
fn constants_in_every_spelling() {
    let t = f32s("", &[2], &[1.0, 2.0]);
    let g = graph(
        vec![
            node("Constant", "a", &[], &["a"], vec![tensor_attr("value", t.clone())]),
            node("Constant", "b", &[], &["b"], vec![float("value_float", 2.5)]),
            node("Constant", "c", &[], &["c"], vec![ints("value_ints", &[2, 3])]),
            node("Constant", "d", &[], &["d"], vec![int("value_int", 7)]),
            node("ConstantOfShape", "e", &["c"], &["e"], vec![tensor_attr("value", f32s("", &[1], &[0.5]))]),
            node("ConstantOfShape", "f", &["c"], &["f"], vec![]),
        ],
        vec![],
        vec![untyped("a"), untyped("b"), untyped("c"), untyped("d"), untyped("e"), untyped("f")],
        vec![],
    );
    let m = import(&model(g, 13)).unwrap();
    m.graph.verify().unwrap();
    assert_eq!(op_of(&m, "a"), &Op::Constant(Tensor::vector(vec![1.0f32, 2.0])));
    assert_eq!(op_of(&m, "b"), &Op::Constant(Tensor::scalar(2.5f32)));
    assert_eq!(op_of(&m, "c"), &Op::Constant(Tensor::vector(vec![2i64, 3])));
    assert_eq!(op_of(&m, "d"), &Op::Constant(Tensor::scalar(7i64)));
    let types: Vec<String> = m.graph.output_types().iter().map(ToString::to_string).collect();
    assert_eq!(types, ["f32[2]", "f32[]", "i64[2]", "i64[]", "f32[2,3]", "f32[2,3]"]);
}

#[test]
fn batch_norm_training_outputs_are_refused_only_when_used() {
    let bn = |outputs: &[&str], graph_outputs: Vec<ValueInfoProto>| {
        let inits = ["s", "b", "m", "v"].map(|n| f32s(n, &[2], &[1.0, 1.0])).to_vec();
        let g = graph(
            vec![node("BatchNormalization", "bn", &["x", "s", "b", "m", "v"], outputs, vec![])],
            vec![vi("x", DType::F32, &["1", "2", "3"])],
            graph_outputs,
            inits,
        );
        import(&model(g, 9))
    };
    let m = bn(&["y", "mean", "var", "", ""], vec![untyped("y")]).unwrap();
    m.graph.verify().unwrap();
    assert_eq!(m.graph.node(m.graph.outputs()[0].node).outputs.len(), 1);
    let err = bn(&["y", "mean"], vec![untyped("y"), untyped("mean")]).unwrap_err().to_string();
    assert!(err.contains("'bn'") && err.contains("'mean' is used"), "{err}");
}

#[test]
fn clip_pad_and_slice_attributes_become_constant_inputs() {
    let g = graph(
        vec![
            node("Clip", "clip", &["x"], &["c"], vec![float("min", 0.0), float("max", 6.0)]),
            node("Pad", "pad", &["c"], &["p"], vec![ints("pads", &[0, 1, 0, 1])]),
            node("Slice", "sl", &["p"], &["y"], vec![ints("starts", &[1]), ints("ends", &[3]), ints("axes", &[1])]),
        ],
        vec![vi("x", DType::F32, &["2", "3"])],
        vec![untyped("y")],
        vec![],
    );
    let m = import(&model(g, 9)).unwrap();
    m.graph.verify().unwrap();
    assert_eq!(m.graph.output_types()[0].to_string(), "f32[2,2]");
    let clip = m.graph.find_value("c").unwrap();
    let bounds: Vec<f64> = m.graph.node_inputs(clip.node)[1..]
        .iter()
        .map(|v| m.graph.const_value(v.unwrap()).unwrap().to_f64_vec()[0])
        .collect();
    assert_eq!(bounds, [0.0, 6.0]);
    assert!(m.graph.find_value("sl__starts").is_some());
}

// ---- nested graphs ----

#[test]
fn if_branches_capture_outer_values() {
    let then_b = graph(vec![node("Add", "t", &["x", "w"], &["t_out"], vec![])], vec![], vec![untyped("t_out")], vec![]);
    let else_b = graph(vec![node("Neg", "e", &["z"], &["e_out"], vec![])], vec![], vec![untyped("e_out")], vec![]);
    let g = graph(
        vec![
            node("Relu", "z", &["x"], &["z"], vec![]),
            node(
                "If",
                "if",
                &["c"],
                &["y"],
                vec![graph_attr("then_branch", then_b), graph_attr("else_branch", else_b)],
            ),
        ],
        vec![vi("c", DType::Bool, &[]), vi("x", DType::F32, &["n"])],
        vec![untyped("y")],
        vec![f32s("w", &[1], &[5.0])],
    );
    let m = import(&model(g, 13)).unwrap();
    m.graph.verify().unwrap();
    let y = m.graph.outputs()[0];
    let ins: Vec<&str> = m.graph.node_inputs(y.node).iter().map(|v| m.graph.value_name(v.unwrap())).collect();
    assert_eq!(ins, ["c", "x", "z"], "the constant w is shared into the branch, not captured");
    let Op::If { then_branch, else_branch } = &m.graph.node(y.node).op else { panic!("not an If") };
    for b in [then_branch, else_branch] {
        let names: Vec<&str> = b.input_values().iter().map(|&v| b.value_name(v)).collect();
        assert_eq!(names, ["x", "z"]);
    }
    assert!(then_branch.const_value(then_branch.find_value("w").unwrap()).is_some());
    assert_eq!(m.graph.output_types()[0].to_string(), "f32[n]");
}

#[test]
fn loop_bodies_get_types_from_the_loop_and_capture_outer_values() {
    // for i in 0..M: acc = acc + x   (x read from the outer graph)
    let body = graph(
        vec![
            node("Identity", "keep", &["cond_in"], &["cond_out"], vec![]),
            node("Add", "acc_add", &["acc_in", "x"], &["acc_out"], vec![]),
        ],
        vec![untyped("i"), untyped("cond_in"), untyped("acc_in")],
        vec![untyped("cond_out"), untyped("acc_out")],
        vec![],
    );
    let g = graph(
        vec![node("Loop", "loop", &["m", "", "acc0"], &["acc"], vec![graph_attr("body", body)])],
        vec![vi("m", DType::I64, &[]), vi("acc0", DType::F32, &["3"]), vi("x", DType::F32, &["3"])],
        vec![untyped("acc")],
        vec![],
    );
    let m = import(&model(g, 13)).unwrap();
    m.graph.verify().unwrap();
    let l = m.graph.outputs()[0];
    let Op::Loop(lp) = &m.graph.node(l.node).op else { panic!("not a Loop") };
    assert_eq!(lp.num_captures, 1);
    assert_eq!(m.graph.node_inputs(l.node).len(), 4);
    let types: Vec<String> = lp.body.input_values().iter().map(|&v| lp.body.value_type(v).to_string()).collect();
    assert_eq!(types, ["i64[]", "bool[]", "f32[3]", "f32[3]"]);
}

// ---- the light models ----

fn light_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/light")
}

fn declared_shape(v: &ValueInfoProto) -> Vec<Dim> {
    let dims = &v.type_.tensor_type().shape.dim;
    dims.iter().map(|d| Dim::Known(d.dim_value() as usize)).collect()
}

#[test]
fn light_models_import_and_verify() {
    let dir = light_dir();
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .map(|d| {
            d.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.extension().is_some_and(|e| e == "onnx")).collect()
        })
        .unwrap_or_default();
    if paths.is_empty() {
        eprintln!("no models in {}; skipping", dir.display());
        return;
    }
    paths.sort();
    for p in paths {
        let m = load_file(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        m.graph.verify().unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        assert_eq!(m.graph.inputs().len(), 1, "{}: weights are constants, not inputs", p.display());
        // Oracle: the output shapes the model file declares.
        let proto = ModelProto::parse_from_bytes(&std::fs::read(&p).unwrap()).unwrap();
        let declared: Vec<Vec<Dim>> = proto.graph.output.iter().map(declared_shape).collect();
        let inferred: Vec<Vec<Dim>> = m.graph.output_types().into_iter().map(|t| t.shape).collect();
        assert_eq!(inferred, declared, "{}", p.display());
    }
}

#[test]
fn corrupted_models_give_errors_not_panics() {
    for name in ["squeezenet", "inception_v2", "shufflenet"] {
        let path = light_dir().join(format!("{name}.onnx"));
        let Ok(original) = std::fs::read(&path) else {
            eprintln!("{} is missing; skipping", path.display());
            continue;
        };
        let mut rng = kiln_ir::SeededRng::for_name(name);
        for _ in 0..ROUNDS {
            let mut b = original.clone();
            for _ in 0..1 + rng.next_u64() % 4 {
                let at = (rng.next_u64() % b.len() as u64) as usize;
                b[at] = rng.next_u64() as u8;
            }
            // Any outcome but a panic is acceptable; a successful import must still verify.
            if let Ok(m) = load_bytes(&b, None) {
                m.graph.verify().unwrap();
            }
        }
    }
}

const ROUNDS: usize = 200;

#[test]
fn scan_bodies_see_one_slice_and_capture_outer_values() {
    // acc = acc + x[i] + bias; the scan output stacks every acc.
    let body = graph(
        vec![
            node("Add", "step", &["acc_in", "x_i"], &["s"], vec![]),
            node("Add", "biased", &["s", "bias"], &["acc_out"], vec![]),
            node("Identity", "emit", &["acc_out"], &["scan_out"], vec![]),
        ],
        vec![untyped("acc_in"), untyped("x_i")],
        vec![untyped("acc_out"), untyped("scan_out")],
        vec![],
    );
    let g = graph(
        vec![node(
            "Scan",
            "scan",
            &["acc0", "x"],
            &["acc", "all"],
            vec![graph_attr("body", body), int("num_scan_inputs", 1)],
        )],
        vec![vi("acc0", DType::F32, &["2"]), vi("x", DType::F32, &["3", "2"]), vi("bias", DType::F32, &["2"])],
        vec![untyped("acc"), untyped("all")],
        vec![],
    );
    let m = import(&model(g, 11)).unwrap();
    m.graph.verify().unwrap();
    let types: Vec<String> = m.graph.output_types().iter().map(ToString::to_string).collect();
    assert_eq!(types, ["f32[2]", "f32[3,2]"]);
    let Op::Scan(scan) = &m.graph.node(m.graph.outputs()[0].node).op else { panic!("not a Scan") };
    assert_eq!((scan.num_scan_inputs, scan.num_captures), (1, 1));
    let body_inputs: Vec<String> = scan
        .body
        .input_values()
        .iter()
        .map(|&v| format!("{}: {}", scan.body.value_name(v), scan.body.value_type(v)))
        .collect();
    assert_eq!(body_inputs, ["acc_in: f32[2]", "x_i: f32[2]", "bias: f32[2]"]);
}

#[test]
fn captures_pass_through_every_level_of_nesting() {
    // A Loop body holds an If whose then-branch reads `x` from the main graph.
    let then_b = graph(vec![node("Neg", "neg", &["x"], &["t"], vec![])], vec![], vec![untyped("t")], vec![]);
    let else_b = graph(vec![node("Identity", "id", &["acc_in"], &["e"], vec![])], vec![], vec![untyped("e")], vec![]);
    let body = graph(
        vec![
            node("Identity", "keep", &["cond_in"], &["cond_out"], vec![]),
            node(
                "If",
                "pick",
                &["cond_in"],
                &["acc_out"],
                vec![graph_attr("then_branch", then_b), graph_attr("else_branch", else_b)],
            ),
        ],
        vec![untyped("i"), untyped("cond_in"), untyped("acc_in")],
        vec![untyped("cond_out"), untyped("acc_out")],
        vec![],
    );
    let g = graph(
        vec![node("Loop", "loop", &["m", "c", "acc0"], &["acc"], vec![graph_attr("body", body)])],
        vec![
            vi("m", DType::I64, &[]),
            vi("c", DType::Bool, &[]),
            vi("acc0", DType::F32, &["3"]),
            vi("x", DType::F32, &["3"]),
        ],
        vec![untyped("acc")],
        vec![],
    );
    let m = import(&model(g, 13)).unwrap();
    m.graph.verify().unwrap();
    let l = m.graph.outputs()[0].node;
    let Op::Loop(lp) = &m.graph.node(l).op else { panic!("not a Loop") };
    let outer: Vec<&str> = m.graph.node_inputs(l).iter().map(|v| m.graph.value_name(v.unwrap())).collect();
    assert_eq!(outer, ["m", "c", "acc0", "x"]);
    let pick = lp.body.find_value("acc_out").unwrap().node;
    let inner: Vec<&str> = lp.body.node_inputs(pick).iter().map(|v| lp.body.value_name(v.unwrap())).collect();
    assert_eq!(inner, ["cond_in", "x", "acc_in"]);
}

#[test]
fn generated_names_avoid_captured_ones() {
    // The body's Unsqueeze 'u' (opset 11) needs a constant `u__axes`; the body also captures an
    // outer value of that very name.
    let body = graph(
        vec![
            node("Identity", "keep", &["cond_in"], &["cond_out"], vec![]),
            node("Unsqueeze", "u", &["u__axes"], &["acc_out"], vec![ints("axes", &[0])]),
        ],
        vec![untyped("i"), untyped("cond_in")],
        vec![untyped("cond_out"), untyped("acc_out")],
        vec![],
    );
    let g = graph(
        vec![node("Loop", "loop", &["m", "c"], &["stacked"], vec![graph_attr("body", body)])],
        vec![vi("m", DType::I64, &[]), vi("c", DType::Bool, &[]), vi("u__axes", DType::F32, &["2"])],
        vec![untyped("stacked")],
        vec![],
    );
    let m = import(&model(g, 11)).unwrap();
    m.graph.verify().unwrap();
    let Op::Loop(lp) = &m.graph.node(m.graph.outputs()[0].node).op else { panic!("not a Loop") };
    assert!(lp.body.find_value("u__axes_1").is_some());
    assert_eq!(m.graph.output_types()[0].to_string(), "f32[loop:iterations0,1,2]");
}

/// Runs a single-input model through the reference interpreter.
fn run_one(m: &Model, x: Tensor) -> Vec<f32> {
    use kiln_backends::{interp::Interpreter, Backend};
    let out = Interpreter.prepare(&m.graph).unwrap().run(&[x]).unwrap();
    out[0].to_vec::<f32>()
}

#[test]
fn composite_ops_expand_to_ir_nodes() {
    let one = |op: &str, attrs: Vec<AttributeProto>, x: &[&str], inits: Vec<TensorProto>| {
        let inputs: Vec<&str> = ["x"].into_iter().chain(inits.iter().map(|t| t.name.as_str())).collect();
        let g = graph(
            vec![node(op, "op", &inputs, &["y"], attrs)],
            vec![vi("x", DType::F32, x)],
            vec![untyped("y")],
            inits,
        );
        let m = import(&model(g, 13)).unwrap();
        m.graph.verify().unwrap();
        m
    };
    let prelu = one("PRelu", vec![], &["3"], vec![f32s("slope", &[1], &[0.5])]);
    assert_eq!(run_one(&prelu, Tensor::vector(vec![-2.0f32, 3.0, 0.0])), [-1.0, 3.0, 0.0]);

    // Eight channels of one pixel; ONNX's formulas give the expected orders.
    let x = Tensor::from_vec(&[1, 8, 1, 1], (0..8).map(|v| v as f32).collect()).unwrap();
    let mode = |m: &str| attr("mode", AttributeType::STRING, |a| a.s = m.as_bytes().to_vec());
    for (m, want) in
        [("DCR", [0.0, 2.0, 4.0, 6.0, 1.0, 3.0, 5.0, 7.0]), ("CRD", [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0])]
    {
        let d2s = one("DepthToSpace", vec![int("blocksize", 2), mode(m)], &["1", "8", "1", "1"], vec![]);
        assert_eq!(d2s.graph.output_types()[0].to_string(), "f32[1,2,2,2]");
        assert_eq!(run_one(&d2s, x.clone()), want, "{m}");
    }
    // SpaceToDepth inverts DepthToSpace (DCR).
    let s2d = one("SpaceToDepth", vec![int("blocksize", 2)], &["1", "2", "2", "2"], vec![]);
    let y = Tensor::from_vec(&[1, 2, 2, 2], vec![0.0f32, 2.0, 4.0, 6.0, 1.0, 3.0, 5.0, 7.0]).unwrap();
    assert_eq!(run_one(&s2d, y), (0..8).map(|v| v as f32).collect::<Vec<_>>());
    let err = import(&model(
        graph(
            vec![node("DepthToSpace", "d", &["x"], &["y"], vec![int("blocksize", i64::MAX)])],
            vec![vi("x", DType::F32, &["1", "8", "1", "1"])],
            vec![untyped("y")],
            vec![],
        ),
        13,
    ))
    .unwrap_err();
    assert!(err.to_string().contains("overflows"), "{err}");
}

fn i64_scalar(name: &str, v: i64) -> TensorProto {
    TensorProto { dims: vec![], ..i64s(name, &[v]) }
}

#[test]
fn shape_arithmetic_is_folded_while_importing() {
    // t = Concat(Gather(Shape(x), [0]), [-1]); y = Reshape(x, t); z = ReduceSum(y, Range(1, Size(t), 1))
    let g = graph(
        vec![
            node("Shape", "s", &["x"], &["s"], vec![]),
            node("Gather", "b", &["s", "zero"], &["b"], vec![]),
            node("Concat", "t", &["b", "minus1"], &["t"], vec![int("axis", 0)]),
            node("Reshape", "y", &["x", "t"], &["y"], vec![]),
            node("Size", "rank", &["t"], &["rank"], vec![]),
            node("Range", "axes", &["one", "rank", "one"], &["axes"], vec![]),
            node("ReduceSum", "z", &["y", "axes"], &["z"], vec![int("keepdims", 0)]),
            node("Range", "spelled_out", &["one", "two", "one"], &["r"], vec![]),
            node("Constant", "literal", &[], &["literal"], vec![ints("value_ints", &[3])]),
            node("Neg", "negated", &["literal"], &["negated"], vec![]),
        ],
        vec![vi("x", DType::F32, &["2", "3", "4"])],
        vec![untyped("y"), untyped("z"), untyped("r"), untyped("negated")],
        vec![i64s("zero", &[0]), i64s("minus1", &[-1]), i64_scalar("one", 1), i64_scalar("two", 2)],
    );
    let m = import(&model(g, 13)).unwrap();
    m.graph.verify().unwrap();
    let types: Vec<String> = m.graph.output_types().iter().map(ToString::to_string).collect();
    assert_eq!(types, ["f32[2,12]", "f32[2]", "i64[1]", "i64[1]"]);
    assert_eq!(op_of(&m, "t"), &Op::Constant(Tensor::vector(vec![2i64, -1])));
    assert_eq!(op_of(&m, "axes"), &Op::Constant(Tensor::vector(vec![1i64])));
    // ONNX Constant nodes are literals of the computation and fold too ...
    assert_eq!(op_of(&m, "negated"), &Op::Constant(Tensor::vector(vec![-3i64])));
    // ... while float math, and integer math on initializers alone, stay as written.
    assert!(matches!(op_of(&m, "y"), Op::Reshape { .. }));
    assert_eq!(op_of(&m, "r"), &Op::Range);
}

#[test]
fn layer_norm_statistics_are_computed_when_read() {
    let g = graph(
        vec![node("LayerNormalization", "ln", &["x", "scale"], &["y", "mean", "inv_std"], vec![float("epsilon", 0.0)])],
        vec![vi("x", DType::F32, &["1", "4"])],
        vec![untyped("y"), untyped("mean"), untyped("inv_std")],
        vec![f32s("scale", &[4], &[1.0; 4])],
    );
    let m = import(&model(g, 17)).unwrap();
    m.graph.verify().unwrap();
    use kiln_backends::{interp::Interpreter, Backend};
    let x = Tensor::from_vec(&[1, 4], vec![1.0f32, 2.0, 3.0, 4.0]).unwrap();
    let out = Interpreter.prepare(&m.graph).unwrap().run(&[x]).unwrap();
    // mean 2.5, variance 1.25
    let inv = 1.0 / 1.25f32.sqrt();
    assert_eq!(out[1].shape(), &[1, 1]);
    assert_eq!(out[1].to_vec::<f32>(), [2.5]);
    assert!((out[2].to_vec::<f32>()[0] - inv).abs() < 1e-6);
    let y = out[0].to_vec::<f32>();
    assert!((y[0] + 1.5 * inv).abs() < 1e-5, "{y:?}");
}

#[test]
fn trilu_masks_by_diagonal_offset() {
    let tri = |attrs: Vec<AttributeProto>, inputs: &[&str], inits: Vec<TensorProto>| {
        let g = graph(
            vec![node("Trilu", "tri", inputs, &["y"], attrs)],
            vec![vi("x", DType::F32, &["2", "3"])],
            vec![untyped("y")],
            inits,
        );
        let m = import(&model(g, 14)).unwrap();
        m.graph.verify().unwrap();
        run_one(&m, Tensor::from_vec(&[2, 3], vec![1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0]).unwrap())
    };
    assert_eq!(tri(vec![], &["x"], vec![]), [1.0, 2.0, 3.0, 0.0, 5.0, 6.0]);
    assert_eq!(tri(vec![int("upper", 0)], &["x", "k"], vec![i64_scalar("k", -1)]), [0.0, 0.0, 0.0, 4.0, 0.0, 0.0]);
    assert_eq!(tri(vec![], &["x", "k"], vec![i64_scalar("k", 2)]), [0.0, 0.0, 3.0, 0.0, 0.0, 0.0]);
}

#[test]
fn one_hot_marks_positions_along_the_new_axis() {
    let hot = |axis: i64| {
        let g = graph(
            vec![node("OneHot", "oh", &["i", "depth", "values"], &["y"], vec![int("axis", axis)])],
            vec![vi("i", DType::I64, &["3"])],
            vec![untyped("y")],
            vec![i64_scalar("depth", 3), f32s("values", &[2], &[0.0, 1.0])],
        );
        let m = import(&model(g, 11)).unwrap();
        m.graph.verify().unwrap();
        assert_eq!(m.graph.output_types()[0].to_string(), "f32[3,3]");
        run_one(&m, Tensor::vector(vec![0i64, -1, 5]))
    };
    // Index -1 counts from the end; 5 is out of range and marks nothing.
    assert_eq!(hot(-1), [1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0]);
    assert_eq!(hot(0), [1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0]);
}

#[test]
fn group_norm_scales_per_channel_or_per_group_by_opset() {
    let gn = |opset: i64, scale: &[f32], bias: &[f32]| {
        let n = scale.len() as i64;
        let g = graph(
            vec![node(
                "GroupNormalization",
                "gn",
                &["x", "s", "b"],
                &["y"],
                vec![int("num_groups", 2), float("epsilon", 0.0)],
            )],
            vec![vi("x", DType::F32, &["1", "4", "1"])],
            vec![untyped("y")],
            vec![f32s("s", &[n], scale), f32s("b", &[n], bias)],
        );
        let m = import(&model(g, opset)).unwrap();
        m.graph.verify().unwrap();
        assert_eq!(m.graph.output_types()[0].to_string(), "f32[1,4,1]");
        run_one(&m, Tensor::from_vec(&[1, 4, 1], vec![1.0f32, 2.0, 3.0, 4.0]).unwrap())
    };
    // Each group of two normalizes to [-1, 1].
    assert_eq!(gn(21, &[1.0, 2.0, 3.0, 4.0], &[0.0, 0.0, 0.0, 1.0]), [-1.0, 2.0, -3.0, 5.0]);
    assert_eq!(gn(18, &[1.0, 2.0], &[0.0, 1.0]), [-1.0, 1.0, -1.0, 3.0]);
}

#[test]
fn window_functions_follow_their_formulas() {
    let window = |op: &str, size: i64, periodic: i64| {
        let g = graph(
            vec![node(op, "w", &["size"], &["y"], vec![int("periodic", periodic)])],
            vec![],
            vec![untyped("y")],
            vec![i64_scalar("size", size)],
        );
        let m = import(&model(g, 17)).unwrap();
        m.graph.verify().unwrap();
        use kiln_backends::{interp::Interpreter, Backend};
        let out = Interpreter.prepare(&m.graph).unwrap().run(&[]).unwrap();
        out[0].to_vec::<f32>().iter().map(|v| (v * 1e4).round() / 1e4).collect::<Vec<f32>>()
    };
    assert_eq!(window("HannWindow", 4, 1), [0.0, 0.5, 1.0, 0.5]);
    assert_eq!(window("HannWindow", 3, 0), [0.0, 1.0, 0.0]);
    assert_eq!(window("BlackmanWindow", 2, 1), [0.0, 1.0]);
    assert_eq!(window("HammingWindow", 2, 1), [(4.0f32 / 46.0 * 1e4).round() / 1e4, 1.0]);
}
