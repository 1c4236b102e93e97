//! Every error path of issue 2, driven through `kiln::cli::run` in-process on files made in a
//! temporary directory: each must exit non-zero with a message that names what is wrong, and
//! leave no output file behind. A successful run of the same tiny model is the control that
//! shows the "no output" checks would notice a written file.

use kiln_ir::{DType, Tensor};
use onnx_protobuf::tensor_shape_proto::{dimension, Dimension};
use onnx_protobuf::{
    type_proto, GraphProto, Message, ModelProto, NodeProto, OperatorSetIdProto, TensorShapeProto, TypeProto,
    ValueInfoProto,
};
use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// A fresh, empty directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(test: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("kiln-cli-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `dims` entries that parse as numbers are fixed extents, the others symbols.
fn value_info(name: &str, dims: &[&str]) -> ValueInfoProto {
    let mut shape = TensorShapeProto::new();
    for d in dims {
        let mut dim = Dimension::new();
        dim.value = Some(match d.parse::<i64>() {
            Ok(n) => dimension::Value::DimValue(n),
            Err(_) => dimension::Value::DimParam(d.to_string()),
        });
        shape.dim.push(dim);
    }
    let mut tensor = type_proto::Tensor::new();
    tensor.elem_type = DType::F32.onnx_code();
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

/// An opset-17 model with one f32 input `x` of shape `dims` and output `y`.
fn model(dims: &[&str], nodes: Vec<NodeProto>) -> Vec<u8> {
    let mut g = GraphProto::new();
    g.name = "test".into();
    g.node = nodes;
    g.input.push(value_info("x", dims));
    g.output.push(value_info("y", dims));
    let mut opset = OperatorSetIdProto::new();
    opset.version = 17;
    let mut m = ModelProto::new();
    m.ir_version = 8;
    m.producer_name = "kiln-tests".into();
    m.opset_import.push(opset);
    m.graph = Some(g).into();
    m.write_to_bytes().unwrap()
}

/// `y = Relu(x)` with x: f32[dims].
fn relu(dims: &[&str]) -> Vec<u8> {
    model(dims, vec![node("Relu", "relu", &["x"], &["y"])])
}

fn npy(t: &Tensor) -> Vec<u8> {
    kiln::npy::to_bytes(t).unwrap()
}

/// Runs `kiln ARGS...`; returns (exit code, stdout, stderr).
fn kiln(args: &[&dyn AsRef<std::ffi::OsStr>]) -> (i32, String, String) {
    let argv = std::iter::once(OsString::from("kiln")).chain(args.iter().map(|a| a.as_ref().to_os_string()));
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = kiln::cli::run(argv, &mut out, &mut err);
    (code, String::from_utf8_lossy(&out).into_owned(), String::from_utf8_lossy(&err).into_owned())
}

/// Asserts a failed `kiln run ... --out OUT` whose stderr contains every `needle`, and that OUT
/// holds no file.
fn assert_fails(dir: &TempDir, args: &[&dyn AsRef<std::ffi::OsStr>], needles: &[&str]) {
    let out = dir.path("out");
    let mut all: Vec<&dyn AsRef<std::ffi::OsStr>> = args.to_vec();
    all.extend([&"--out" as &dyn AsRef<std::ffi::OsStr>, &out]);
    let (code, stdout, stderr) = kiln(&all);
    assert_ne!(code, 0, "expected a failure; stdout: {stdout}");
    assert!(stderr.starts_with("error: "), "{stderr}");
    for needle in needles {
        assert!(stderr.contains(needle), "stderr lacks '{needle}':\n{stderr}");
    }
    assert!(stdout.is_empty(), "nothing is reported on failure: {stdout}");
    assert_no_files(&out);
}

fn assert_no_files(dir: &Path) {
    let files: Vec<_> = std::fs::read_dir(dir).map(|d| d.flatten().map(|e| e.path()).collect()).unwrap_or_default();
    assert!(files.is_empty(), "files were written: {files:?}");
}

#[test]
fn a_good_run_writes_outputs_the_error_cases_must_not() {
    let dir = TempDir::new("good");
    let m = dir.write("m.onnx", &relu(&["2", "3"]));
    let out = dir.path("out");
    let (code, stdout, stderr) = kiln(&[&"run", &m, &"--out", &out]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("y: f32[2,3]"), "{stdout}");
    let written = kiln::npy::from_bytes(&std::fs::read(out.join("y.npy")).unwrap()).unwrap();
    let x = Tensor::seeded(DType::F32, &[2, 3], "x", 0.0, 1.0).unwrap();
    let want: Vec<f32> = x.to_vec::<f32>().iter().map(|v| v.max(0.0)).collect();
    assert_eq!(written.to_vec::<f32>(), want);
}

#[test]
fn truncated_model_file() {
    let dir = TempDir::new("truncated");
    let bytes = relu(&["2", "3"]);
    let m = dir.write("m.onnx", &bytes[..bytes.len() / 2]);
    assert_fails(&dir, &[&"run", &m], &["m.onnx", "not a valid ONNX model"]);
}

#[test]
fn corrupt_model_bytes() {
    let dir = TempDir::new("corrupt");
    let m = dir.write("m.onnx", b"\xff\xff\xff\xff this is not protobuf \x00\x01\x02");
    assert_fails(&dir, &[&"run", &m], &["m.onnx", "not a valid ONNX model"]);
}

#[test]
fn missing_model_file() {
    let dir = TempDir::new("nofile");
    assert_fails(&dir, &[&"run", &dir.path("absent.onnx")], &["absent.onnx"]);
}

#[test]
fn missing_input_names_it_and_its_type() {
    let dir = TempDir::new("missing");
    let m = dir.write("m.onnx", &relu(&["batch", "3"]));
    assert_fails(&dir, &[&"run", &m], &["input 'x'", "f32[batch,3]", "--dim batch=N"]);
}

#[test]
fn minus_one_dims_bind_from_dim_flags_and_inputs() {
    // paddle2onnx declares dynamic dims as -1: they become the symbols x_0, x_1.
    let dir = TempDir::new("minus-one");
    let m = dir.write("m.onnx", &relu(&["-1", "-1", "3"]));
    assert_fails(&dir, &[&"run", &m], &["input 'x'", "f32[x_0,x_1,3]", "--dim x_0=N"]);
    let (code, stdout, stderr) = kiln(&[&"run", &m, &"--dim", &"x_0=2", &"--dim", &"x_1=4"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("y: f32[2,4,3]"), "{stdout}");
    let t = dir.write("t.npy", &npy(&Tensor::zeros(DType::F32, &[5, 1, 3]).unwrap()));
    let (code, stdout, stderr) = kiln(&[&"run", &m, &"--input", &format!("x={}", t.display())]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("y: f32[5,1,3]"), "{stdout}");
}

#[test]
fn extra_input_lists_the_valid_names() {
    let dir = TempDir::new("extra");
    let m = dir.write("m.onnx", &relu(&["2", "3"]));
    let t = dir.write("t.npy", &npy(&Tensor::zeros(DType::F32, &[2, 3]).unwrap()));
    let arg = format!("nope={}", t.display());
    assert_fails(&dir, &[&"run", &m, &"--input", &arg], &["no input named 'nope'", "its inputs are: x"]);
}

#[test]
fn wrong_dtype_shows_expected_and_got() {
    let dir = TempDir::new("dtype");
    let m = dir.write("m.onnx", &relu(&["2", "3"]));
    let t = dir.write("t.npy", &npy(&Tensor::zeros(DType::I64, &[2, 3]).unwrap()));
    let arg = format!("x={}", t.display());
    assert_fails(&dir, &[&"run", &m, &"--input", &arg], &["input 'x' expects f32[2,3]", "holds i64[2,3]"]);
}

#[test]
fn wrong_shape_shows_expected_and_got() {
    let dir = TempDir::new("shape");
    let m = dir.write("m.onnx", &relu(&["2", "3"]));
    let t = dir.write("t.npy", &npy(&Tensor::zeros(DType::F32, &[3, 2]).unwrap()));
    let arg = format!("x={}", t.display());
    assert_fails(&dir, &[&"run", &m, &"--input", &arg], &["input 'x' expects f32[2,3]", "holds f32[3,2]"]);
}

#[test]
fn every_unknown_op_is_listed_in_one_error() {
    let dir = TempDir::new("unknown-op");
    let nodes = vec![
        node("FrobnicateOp", "first_mystery", &["x"], &["t"]),
        node("Relu", "relu", &["t"], &["u"]),
        node("WibbleOp", "second_mystery", &["u"], &["y"]),
    ];
    let m = dir.write("m.onnx", &model(&["2", "3"], nodes));
    let needles = ["first_mystery", "FrobnicateOp", "second_mystery", "WibbleOp", "opset 17"];
    assert_fails(&dir, &[&"run", &m], &needles);
}

#[test]
fn cycle_is_reported() {
    let dir = TempDir::new("cycle");
    let nodes = vec![
        node("Add", "a", &["x", "b_out"], &["a_out"]),
        node("Relu", "b", &["a_out"], &["b_out"]),
        node("Identity", "out", &["b_out"], &["y"]),
    ];
    let m = dir.write("m.onnx", &model(&["2", "3"], nodes));
    assert_fails(&dir, &[&"run", &m], &["cycle"]);
}

#[test]
fn dangling_edge_names_the_missing_value() {
    let dir = TempDir::new("dangling");
    let nodes = vec![node("Add", "adder", &["x", "nowhere"], &["y"])];
    let m = dir.write("m.onnx", &model(&["2", "3"], nodes));
    assert_fails(&dir, &[&"run", &m], &["adder", "nowhere"]);
}

#[test]
fn a_dim_too_large_for_memory_is_refused() {
    let dir = TempDir::new("memory");
    let m = dir.write("m.onnx", &relu(&["batch", "1000"]));
    let needles = ["memory", "f32[1000000000000,1000]", "try smaller dims"];
    assert_fails(&dir, &[&"run", &m, &"--dim", &"batch=1000000000000"], &needles);
}

#[test]
fn corrupt_npy_names_input_and_file() {
    let dir = TempDir::new("npy");
    let m = dir.write("m.onnx", &relu(&["2", "3"]));
    let good = npy(&Tensor::zeros(DType::F32, &[2, 3]).unwrap());
    let t = dir.write("t.npy", &good[..good.len() - 3]);
    let arg = format!("x={}", t.display());
    assert_fails(&dir, &[&"run", &m, &"--input", &arg], &["input 'x'", "t.npy", "truncated"]);
}

#[test]
fn opt_does_not_write_on_failure() {
    let dir = TempDir::new("opt");
    let m = dir.write("m.onnx", b"garbage");
    let out = dir.path("out.onnx");
    let (code, _, stderr) = kiln(&[&"opt", &m, &"-o", &out]);
    assert_ne!(code, 0);
    assert!(stderr.contains("not a valid ONNX model"), "{stderr}");
    assert!(!out.exists());
}

#[test]
fn compile_refuses_bad_models_prefixes_and_symbolic_dims_without_writing() {
    let dir = TempDir::new("compile");
    let out = dir.path("artifact");
    let garbage = dir.write("g.onnx", b"garbage");
    let (code, _, stderr) = kiln(&[&"compile", &garbage, &"-o", &out]);
    assert!(code != 0 && stderr.contains("not a valid ONNX model"), "{stderr}");
    let good = dir.write("m.onnx", &relu(&["2", "3"]));
    let (code, _, stderr) = kiln(&[&"compile", &good, &"-o", &out, &"--prefix", &"9-bad"]);
    assert!(code != 0 && stderr.contains("must be a Rust identifier"), "{stderr}");
    let symbolic = dir.write("s.onnx", &relu(&["n", "3"]));
    let (code, _, stderr) = kiln(&[&"compile", &symbolic, &"-o", &out]);
    assert!(code != 0 && stderr.contains("symbolic dims (n); bind each with --dim n=N"), "{stderr}");
    assert!(!out.exists(), "nothing is written on failure");
    let bound = dir.path("bound");
    let (code, _, stderr) = kiln(&[&"compile", &symbolic, &"-o", &bound, &"--dim", &"n=2"]);
    assert_eq!(code, 0, "a bound dim compiles: {stderr}");
    assert!(std::fs::metadata(bound.join("kernels.o")).unwrap().len() > 0);
    let (code, stdout, stderr) = kiln(&[&"compile", &good, &"-o", &out, &"--prefix", &"relu_model"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("1 kernels"), "{stdout}");
    let glue = std::fs::read_to_string(out.join("kernels.rs")).unwrap();
    assert!(glue.contains("fn relu_model_kernel_0("), "{glue}");
    assert!(std::fs::metadata(out.join("kernels.o")).unwrap().len() > 0 && out.join("model.onnx").exists());
}

#[test]
fn unknown_dim_lists_the_symbols() {
    let dir = TempDir::new("unknown-dim");
    let m = dir.write("m.onnx", &relu(&["batch", "3"]));
    assert_fails(&dir, &[&"run", &m, &"--dim", &"seq=4"], &["no symbolic dim named 'seq'", "its symbols are: batch"]);
}

#[test]
fn a_dim_contradicting_a_given_input_is_refused() {
    let dir = TempDir::new("dim-conflict");
    let m = dir.write("m.onnx", &relu(&["batch", "3"]));
    let t = dir.write("t.npy", &npy(&Tensor::zeros(DType::F32, &[2, 3]).unwrap()));
    let arg = format!("x={}", t.display());
    let needles = ["dim 'batch' is 3 from --dim batch=3 but 2 from input 'x'"];
    assert_fails(&dir, &[&"run", &m, &"--dim", &"batch=3", &"--input", &arg], &needles);
}

#[test]
fn an_input_given_twice_is_refused() {
    let dir = TempDir::new("twice");
    let m = dir.write("m.onnx", &relu(&["2", "3"]));
    let t = dir.write("t.npy", &npy(&Tensor::zeros(DType::F32, &[2, 3]).unwrap()));
    let arg = format!("x={}", t.display());
    assert_fails(&dir, &[&"run", &m, &"--input", &arg, &"--input", &arg], &["input 'x' is given more than once"]);
}

#[test]
fn dims_come_from_given_inputs() {
    let dir = TempDir::new("dims-from-input");
    let m = dir.write("m.onnx", &relu(&["batch", "3"]));
    let x = Tensor::from_vec(&[2, 3], vec![-1.0f32, 2.0, -3.0, 4.0, -5.0, 6.0]).unwrap();
    let t = dir.write("t.npy", &npy(&x));
    let arg = format!("x={}", t.display());
    let (code, stdout, stderr) = kiln(&[&"run", &m, &"--input", &arg]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("y: f32[2,3]") && stdout.contains("max 6.000000"), "{stdout}");
}
