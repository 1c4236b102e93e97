//! Issue 20: hostile models through `kiln run` (in-process, as `kiln::cli::run`). Each is a tiny
//! model of the kind the mutation sweep (`scripts/mutate_models.py`) and other runtimes' fuzzers
//! found: declared dims of 2^31, shape inputs asking for petabytes, infinite Resize scales, Loops
//! with INT64_MAX trips, deep nesting. Each must fail quickly with an error naming the node (or
//! input) and the limit — not abort, hang or allocate what the file asks for — while a control
//! run of the same model within its limits succeeds.

use kiln_ir::DType;
use onnx_protobuf::tensor_shape_proto::{dimension, Dimension};
use onnx_protobuf::{
    attribute_proto::AttributeType, type_proto, AttributeProto, GraphProto, Message, ModelProto, NodeProto,
    OperatorSetIdProto, TensorProto, TensorShapeProto, TypeProto, ValueInfoProto,
};
use std::ffi::OsString;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// How long a refused model may take, including import, under a loaded machine (the runs
/// themselves stop well under a second; see the deadline test).
const PROMPT: Duration = Duration::from_secs(5);

fn value_info(name: &str, dtype: DType, dims: &[i64]) -> ValueInfoProto {
    let mut shape = TensorShapeProto::new();
    for &d in dims {
        let mut dim = Dimension::new();
        dim.value = Some(dimension::Value::DimValue(d));
        shape.dim.push(dim);
    }
    let mut tensor = type_proto::Tensor::new();
    tensor.elem_type = dtype.onnx_code();
    tensor.shape = Some(shape).into();
    let mut ty = TypeProto::new();
    ty.value = Some(type_proto::Value::TensorType(tensor));
    let mut v = ValueInfoProto::new();
    v.name = name.to_string();
    v.type_ = Some(ty).into();
    v
}

fn node(op: &str, name: &str, inputs: &[&str], outputs: &[&str]) -> NodeProto {
    let mut n = NodeProto::new();
    n.op_type = op.to_string();
    n.name = name.to_string();
    n.input = inputs.iter().map(|s| s.to_string()).collect();
    n.output = outputs.iter().map(|s| s.to_string()).collect();
    n
}

fn with_graph(mut n: NodeProto, attr: &str, g: GraphProto) -> NodeProto {
    let mut a = AttributeProto::new();
    a.name = attr.to_string();
    a.type_ = AttributeType::GRAPH.into();
    a.g = Some(g).into();
    n.attribute.push(a);
    n
}

fn with_ints(mut n: NodeProto, attr: &str, values: &[i64]) -> NodeProto {
    let mut a = AttributeProto::new();
    a.name = attr.to_string();
    a.type_ = AttributeType::INTS.into();
    a.ints = values.to_vec();
    n.attribute.push(a);
    n
}

fn with_string(mut n: NodeProto, attr: &str, value: &str) -> NodeProto {
    let mut a = AttributeProto::new();
    a.name = attr.to_string();
    a.type_ = AttributeType::STRING.into();
    a.s = value.as_bytes().to_vec();
    n.attribute.push(a);
    n
}

fn i64s(name: &str, dims: &[i64], values: &[i64]) -> TensorProto {
    let mut t = TensorProto::new();
    t.name = name.to_string();
    t.data_type = DType::I64.onnx_code();
    t.dims = dims.to_vec();
    t.int64_data = values.to_vec();
    t
}

fn f32s(name: &str, values: &[f32]) -> TensorProto {
    let mut t = TensorProto::new();
    t.name = name.to_string();
    t.data_type = DType::F32.onnx_code();
    t.dims = vec![values.len() as i64];
    t.float_data = values.to_vec();
    t
}

/// A graph; its outputs are named only (Kiln infers their types).
fn graph(nodes: Vec<NodeProto>, inputs: Vec<ValueInfoProto>, outputs: &[&str]) -> GraphProto {
    let mut g = GraphProto::new();
    g.name = "hostile".into();
    g.node = nodes;
    g.input = inputs;
    g.output = outputs.iter().map(|&o| ValueInfoProto { name: o.to_string(), ..Default::default() }).collect();
    g
}

fn model(g: GraphProto, initializers: Vec<TensorProto>) -> Vec<u8> {
    let mut g = g;
    g.initializer = initializers;
    let mut opset = OperatorSetIdProto::new();
    opset.version = 17;
    let mut m = ModelProto::new();
    m.ir_version = 8;
    m.opset_import.push(opset);
    m.graph = Some(g).into();
    m.write_to_bytes().unwrap()
}

/// Writes `bytes` as a model file unique to `test`.
fn file(test: &str, bytes: &[u8]) -> PathBuf {
    let path = std::env::temp_dir().join(format!("kiln-hostile-{test}-{}.onnx", std::process::id()));
    std::fs::write(&path, bytes).unwrap();
    path
}

/// `kiln run MODEL ARGS...`: exit code, stdout, stderr and the time it took.
fn run(model: &PathBuf, args: &[&str]) -> (i32, String, String, Duration) {
    let argv = ["kiln", "run"].map(OsString::from).into_iter().chain(std::iter::once(model.into()));
    let argv = argv.chain(args.iter().map(OsString::from));
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let start = Instant::now();
    let code = kiln::cli::run(argv, &mut out, &mut err);
    (code, String::from_utf8_lossy(&out).into_owned(), String::from_utf8_lossy(&err).into_owned(), start.elapsed())
}

/// Asserts `kiln run` refuses the model promptly with every needle in its error.
fn refused(model: &PathBuf, args: &[&str], needles: &[&str]) {
    let (code, stdout, stderr, took) = run(model, args);
    assert_eq!(code, 1, "expected an error; stdout: {stdout}\nstderr: {stderr}");
    for needle in needles {
        assert!(stderr.contains(needle), "stderr lacks '{needle}':\n{stderr}");
    }
    assert!(took < PROMPT, "took {took:?}: {stderr}");
}

fn succeeds(model: &PathBuf, args: &[&str]) -> String {
    let (code, stdout, stderr, _) = run(model, args);
    assert_eq!(code, 0, "{stderr}");
    stdout
}

/// The import-time abort of issue 20: a Reshape whose shape input declares 2^31 entries made
/// shape inference build 2^31 symbolic dims (48 GiB) and the allocation failure killed the host.
#[test]
fn a_shape_input_declaring_2_31_entries_is_refused_at_import() {
    let build = |n: i64| {
        let inputs = vec![value_info("data", DType::F32, &[2, 3]), value_info("shape", DType::I64, &[n])];
        let g = graph(vec![node("Reshape", "reshape", &["data", "shape"], &["y"])], inputs, &["y"]);
        model(g, vec![])
    };
    let m = file("reshape", &build(1 << 31));
    // The declared input alone (i64[2^31], 16 GiB) passes the default tensor limit on machines
    // under 32 GiB; with the limit raised, the Reshape's rule refuses the rank it implies.
    refused(&m, &["--max-tensor-bytes", "1G"], &["graph input 'shape'", "i64", "max_tensor_bytes limit of 1.0 GiB"]);
    let needles = ["node 'reshape' (Reshape)", "shape input has 2147483648 entries", "more than the 64 dims"];
    refused(&m, &["--max-tensor-bytes", "16G"], &needles);
    let control = file("reshape-ok", &build(2));
    let given = std::env::temp_dir().join(format!("kiln-hostile-shape-{}.npy", std::process::id()));
    std::fs::write(&given, kiln::npy::to_bytes(&kiln_ir::Tensor::vector(vec![3i64, 2])).unwrap()).unwrap();
    let arg = format!("shape={}", given.display());
    assert!(succeeds(&control, &["--input", &arg]).contains("f32[3,2]"));
}

/// onnxruntime's 152-byte model: ConstantOfShape asking for petabytes, folded at load time.
#[test]
fn constant_of_shape_asking_for_petabytes_is_refused_before_allocating() {
    let build = |dims: &[i64]| {
        let g = graph(vec![node("ConstantOfShape", "fill", &["dims"], &["y"])], vec![], &["y"]);
        model(g, vec![i64s("dims", &[dims.len() as i64], dims)])
    };
    let m = file("cos", &build(&[1 << 25, 1 << 25]));
    refused(&m, &[], &["node 'fill' (ConstantOfShape)", "max_tensor_bytes", "--max-tensor-bytes"]);
    refused(&m, &["--max-tensor-bytes", "1M"], &["node 'fill'", "max_tensor_bytes limit of 1.0 MiB"]);
    assert!(succeeds(&file("cos-ok", &build(&[2, 2])), &[]).contains("f32[2,2]"));
}

/// Resize with an infinite scale, a NaN scale and sizes of 2^31.
#[test]
fn resize_with_infinite_scales_or_huge_sizes_is_refused() {
    let x = || vec![value_info("x", DType::F32, &[1, 1, 2, 2])];
    let scaled = |s: f32| {
        let g = graph(vec![node("Resize", "resize", &["x", "", "scales"], &["y"])], x(), &["y"]);
        model(g, vec![f32s("scales", &[1.0, 1.0, s, s])])
    };
    refused(&file("resize-inf", &scaled(f32::INFINITY)), &[], &["node 'resize' (Resize)", "scale inf"]);
    refused(&file("resize-nan", &scaled(f32::NAN)), &[], &["node 'resize' (Resize)", "scale NaN"]);
    let sized = {
        let g = graph(vec![node("Resize", "resize", &["x", "", "", "sizes"], &["y"])], x(), &["y"]);
        model(g, vec![i64s("sizes", &[4], &[1, 1, 1 << 31, 1 << 31])])
    };
    refused(&file("resize-sizes", &sized), &[], &["'y'", "f32[1,1,2147483648,2147483648]"]);
    assert!(succeeds(&file("resize-ok", &scaled(2.0)), &[]).contains("f32[1,1,4,4]"));
}

/// The sweep's runs over 10 s: an input declaring a dim of 2^31 got an 8 GiB input made up for
/// it. Generated inputs are capped (256 MiB by default, `--max-input-bytes` raises it).
#[test]
fn generated_inputs_are_capped() {
    let relu = |n: i64| {
        let x = value_info("x", DType::F32, &[n]);
        model(graph(vec![node("Relu", "relu", &["x"], &["y"])], vec![x], &["y"]), vec![])
    };
    let needles = ["input 'x' (f32[2147483648])", "8.0 GiB", "at most 256.0 MiB", "--max-input-bytes"];
    refused(&file("input-2-31", &relu(1 << 31)), &[], &needles);
    let small = file("input-1000", &relu(1000));
    refused(&small, &["--max-input-bytes", "1K"], &["input 'x' (f32[1000])", "3.9 KiB", "at most 1.0 KiB"]);
    assert!(succeeds(&small, &["--max-input-bytes", "4000"]).contains("f32[1000]"));
}

/// `Loop(M = INT64_MAX)` whose body keeps its condition true: the iteration limit and the
/// deadline each stop it, naming the Loop node.
#[test]
fn loops_stop_at_the_iteration_limit_and_the_deadline() {
    let body = graph(
        vec![node("Identity", "keep", &["cond"], &["cond_out"]), node("Add", "step", &["acc", "acc"], &["acc_out"])],
        vec![
            value_info("iter", DType::I64, &[]),
            value_info("cond", DType::Bool, &[]),
            value_info("acc", DType::F32, &[1]),
        ],
        &["cond_out", "acc_out"],
    );
    let lp = with_graph(node("Loop", "forever", &["m", "", "acc0"], &["y"]), "body", body);
    let inputs = vec![value_info("m", DType::I64, &[])];
    let m = file("loop", &model(graph(vec![lp], inputs, &["y"]), vec![f32s("acc0", &[1.0])]));
    let trips = |n: i64| {
        let path = std::env::temp_dir().join(format!("kiln-hostile-trips-{n}-{}.npy", std::process::id()));
        std::fs::write(&path, kiln::npy::to_bytes(&kiln_ir::Tensor::scalar(n)).unwrap()).unwrap();
        format!("m={}", path.display())
    };
    let forever = trips(i64::MAX);
    // The JIT runs the optimized graph, whose nodes the e-graph pass names after their outputs.
    for (backend, node) in [("interp", "node 'forever' (Loop)"), ("jit", "node 'y' (Loop)")] {
        let args = ["--input", &forever, "--backend", backend, "--max-loop-iterations", "1000"];
        refused(&m, &args, &[node, "iteration 1001", "max_loop_iterations limit of 1000"]);
        let (code, _, stderr, took) = run(&m, &["--input", &forever, "--backend", backend, "--timeout", "0.2"]);
        assert_eq!(code, 1, "{stderr}");
        assert!(stderr.contains(node) && stderr.contains("deadline limit of 0.200 s"), "{stderr}");
        assert!(took < Duration::from_millis(1200), "{backend}: the deadline of 0.2 s stopped the run after {took:?}");
    }
    let ten = trips(10);
    assert!(succeeds(&m, &["--input", &ten, "--max-loop-iterations", "10"]).contains("max 1024.000000"));
}

/// Subgraphs nested deeper than `--max-nesting`, and more nodes than `--max-nodes`.
#[test]
fn nesting_and_node_counts_are_limited_at_import() {
    let leaf = graph(vec![node("Identity", "leaf", &["c"], &["leaf_out"])], vec![], &["leaf_out"]);
    let nest = |inner: GraphProto, name: &str| {
        let out = format!("{name}_out");
        let n = with_graph(node("If", name, &["c"], &[&out]), "then_branch", inner.clone());
        let n = with_graph(n, "else_branch", inner);
        graph(vec![n], vec![], &[&out])
    };
    // if1 { if2 { if3 { leaf } } }: the leaf's graph is nested 3 deep; 15 nodes in all.
    let mut g = leaf;
    for depth in (1..=3).rev() {
        g = nest(g, &format!("if{depth}"));
    }
    let mut c = TensorProto::new();
    c.name = "c".into();
    c.data_type = DType::Bool.onnx_code();
    c.int32_data = vec![1];
    let m = file("nesting", &model(g, vec![c]));
    refused(&m, &["--max-nesting", "2"], &["node 'if3'", "nest 3 deep", "max_nesting limit of 2"]);
    refused(&m, &["--max-nodes", "14"], &["at least 15 nodes", "max_nodes limit of 14"]);
    assert!(succeeds(&m, &["--max-nesting", "3", "--max-nodes", "15"]).contains("if1_out: bool[]"));
}

/// Found by the sweep: a MaxPool whose kernel_shape is INT64_MAX under SAME_UPPER padding made
/// the JIT size a padded plane of 2^63 rows (a capacity-overflow panic in a worker thread).
#[test]
fn a_pool_window_whose_padded_plane_cannot_exist_is_refused() {
    let build = |kernel: &[i64]| {
        let pool = with_ints(node("MaxPool", "pool", &["x"], &["y"]), "kernel_shape", kernel);
        let pool = with_string(pool, "auto_pad", "SAME_UPPER");
        model(graph(vec![pool], vec![value_info("x", DType::F32, &[1, 3, 32, 32])], &["y"]), vec![])
    };
    let needles = ["node 'pool' (MaxPool)", "the padded input plane", "max_tensor_bytes"];
    refused(&file("pool", &build(&[i64::MAX, 2])), &[], &needles);
    assert!(succeeds(&file("pool-ok", &build(&[2, 2])), &[]).contains("y: f32[1,3,32,32]"));
}

/// Found by the sweep: BatchNormalization parameters of the wrong length (a mutated weight shape
/// in resnet50 and shufflenet) made the JIT's folding index past them (a panic).
#[test]
fn batch_norm_parameters_must_match_the_channels() {
    let build = |len: usize| {
        let bn = node("BatchNormalization", "bn", &["x", "scale", "bias", "mean", "var"], &["y"]);
        let params = ["scale", "bias", "mean", "var"].map(|p| f32s(p, &vec![1.0; len]));
        model(graph(vec![bn], vec![value_info("x", DType::F32, &[1, 3, 4, 4])], &["y"]), params.to_vec())
    };
    let needles = ["node 'bn' (BatchNormalization)", "f32[2] must hold one value for each of the 3 channels"];
    for backend in ["jit", "interp"] {
        refused(&file("bn", &build(2)), &["--backend", backend], &needles);
    }
    assert!(succeeds(&file("bn-ok", &build(3)), &[]).contains("y: f32[1,3,4,4]"));
}
