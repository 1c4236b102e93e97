//! The `kiln` commands on a real model (the light SqueezeNet shipped in `models/light/`), driven
//! in-process through `kiln::cli::run` with `--json`: what inspect reports, what run writes, and
//! that `opt` preserves the model's outputs.

use kiln_ir::{DType, Tensor};
use kiln_tests::kiln_json;
use std::path::PathBuf;

fn squeezenet() -> PathBuf {
    kiln_tests::workspace_root().join("models/light/squeezenet.onnx")
}

fn temp_dir(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("kiln-cmd-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn inspect_reports_squeezenet() {
    let dir = temp_dir("inspect");
    let dot = dir.join("g.dot");
    let r = kiln_json(&[&"inspect", &squeezenet(), &"--dot", &dot]);
    // SqueezeNet 1.1 has 1,235,496 parameters (as published with the model).
    assert_eq!(r["parameters"], 1_235_496);
    assert_eq!(r["opset"], 9);
    assert_eq!(r["inputs"][0]["name"], "data_0");
    assert_eq!(r["inputs"][0]["shape"], serde_json::json!([1, 3, 224, 224]));
    assert_eq!(r["ops"]["Conv"], 26);
    // About 0.35 G multiply-adds for the convolutions, plus elementwise work.
    let flops = r["flops"].as_u64().unwrap();
    assert!((650_000_000..800_000_000).contains(&flops), "{flops}");
    assert!(std::fs::read_to_string(&dot).unwrap().starts_with("digraph"));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn parameter_counts_match_the_published_ones() {
    // The counts the original papers' Caffe models are known by.
    for (model, published) in [("bvlc_alexnet", 60_965_224u64), ("vgg19", 143_667_240)] {
        let path = kiln_tests::workspace_root().join(format!("models/light/{model}.onnx"));
        assert_eq!(kiln_json(&[&"inspect", &path])["parameters"], published, "{model}");
    }
}

#[test]
fn run_writes_what_the_interpreter_computes() {
    let dir = temp_dir("run");
    let r = kiln_json(&[&"run", &squeezenet(), &"--out", &dir]);
    let out = &r["outputs"][0];
    assert_eq!(out["name"], "softmaxout_1");
    assert_eq!(out["shape"], serde_json::json!([1, 1000, 1, 1]));
    let written = kiln::npy::from_bytes(&std::fs::read(dir.join("softmaxout_1.npy")).unwrap()).unwrap();

    let model = kiln::onnx::load_file(&squeezenet()).unwrap();
    let x = Tensor::seeded(DType::F32, &[1, 3, 224, 224], "data_0", 0.0, 1.0).unwrap();
    let (want, _) = kiln_backends::interp::run_graph(&model.graph, &[x], &[]).unwrap();
    assert_eq!(written, want[0]);
    let sum: f64 = written.to_f64_vec().iter().sum();
    assert!((sum - 1.0).abs() < 1e-4, "softmax output sums to one: {sum}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn opt_folds_weights_and_keeps_outputs() {
    let dir = temp_dir("opt");
    let optimized = dir.join("squeezenet-opt.onnx");
    let r = kiln_json(&[&"opt", &squeezenet(), &"-o", &optimized]);
    assert_eq!(r["passes"][0]["pass"], "constant-fold");
    assert!(r["passes"][0]["changes"]["folded"].as_u64().unwrap() >= 39, "every ConstantOfShape folds: {r}");

    let before = kiln::onnx::load_file(&squeezenet()).unwrap();
    let after = kiln::onnx::load_file(&optimized).unwrap();
    assert!(after.graph.node_ids().iter().all(|&id| after.graph.node(id).op.onnx_name() != "ConstantOfShape"));
    let x = Tensor::seeded(DType::F32, &[1, 3, 224, 224], "data_0", 0.0, 1.0).unwrap();
    let (a, _) = kiln_backends::interp::run_graph(&before.graph, std::slice::from_ref(&x), &[]).unwrap();
    let (b, _) = kiln_backends::interp::run_graph(&after.graph, &[x], &[]).unwrap();
    assert_eq!(a, b);
    std::fs::remove_dir_all(dir).unwrap();
}
