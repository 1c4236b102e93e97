//! The demo that ships in `models/demo/` (a small CNN trained on scikit-learn's 8×8 digits by
//! `scripts/make_digits_demo.py`) classifies its 360 held-out images exactly as ONNX Runtime did
//! when the script exported it: the same number of correct labels, under the JIT and the
//! interpreter, through the CLI and the API.

use kiln_ir::Tensor;
use kiln_tests::kiln_json;
use serde_json::Value;
use std::path::PathBuf;

fn demo(file: &str) -> PathBuf {
    kiln_tests::workspace_root().join("models/demo").join(file)
}

/// What the training script recorded: ONNX Runtime's number of correct held-out labels.
fn reference_correct() -> u64 {
    let facts: Value = serde_json::from_str(&std::fs::read_to_string(demo("digits.json")).unwrap()).unwrap();
    facts["onnxruntime_correct"].as_u64().unwrap()
}

#[test]
fn the_readme_command_scores_what_onnx_runtime_scored_on_both_backends() {
    let images = format!("images={}", demo("digits_images.npy").display());
    for backend in ["jit", "interp"] {
        let r = kiln_json(&[
            &"run",
            &demo("digits.onnx"),
            &"--input",
            &images,
            &"--labels",
            &demo("digits_labels.npy"),
            &"--compare",
            &"--backend",
            &backend,
        ]);
        let accuracy = &r["outputs"][0]["accuracy"];
        assert_eq!(accuracy["total"], 360, "{backend}");
        assert_eq!(accuracy["correct"], reference_correct(), "{backend}");
        assert_eq!(r["outputs"][0]["classes"].as_array().unwrap().len(), 360);
        let diff = r["compared"]["max_abs_diff"].as_f64().unwrap();
        assert!(diff < 1e-3, "{backend}: JIT and interpreter logits differ by {diff}");
    }
}

#[test]
fn the_api_classifies_the_demo_images() {
    let images = kiln_tests::read_npy_f32(&demo("digits_images.npy")).unwrap();
    let labels = std::fs::read(demo("digits_labels.npy")).unwrap();
    let labels = kiln::npy::from_bytes(&labels).unwrap().to_i64_vec();
    let model = kiln::Compiler::new().dim("batch", labels.len()).compile_file(demo("digits.onnx")).unwrap();
    let logits: Tensor = model.run(&[images]).unwrap().remove(0);
    let scores = logits.to_vec::<f32>();
    let correct = labels
        .iter()
        .enumerate()
        .filter(|&(row, &label)| {
            let row = &scores[row * 10..(row + 1) * 10];
            let best = (0..10).max_by(|&a, &b| row[a].total_cmp(&row[b])).unwrap();
            best as i64 == label
        })
        .count();
    assert_eq!(correct as u64, reference_correct());
}
