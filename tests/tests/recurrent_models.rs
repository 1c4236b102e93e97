//! LSTM, GRU and RNN models against ONNX Runtime: every case under `tests/fixtures/recurrent/`
//! (written by `scripts/make_recurrent_fixtures.py`: PyTorch's bidirectional LSTM and GRU, and
//! single nodes with layout 1, sequence_lens, peepholes, clip, input_forget and parametrized
//! activations) runs the way `kiln run` runs it, on the interpreter and on the JIT, and each
//! output must match ONNX Runtime's within 1e-5 (max abs) — the symbolic sequence dims bound
//! from the given inputs.

use kiln::driver::inputs::GivenInput;
use kiln::driver::memory::Limit;
use kiln::{BackendKind, Session};
use kiln_ir::Tensor;
use kiln_tests::{read_npy_f32, workspace_root};
use std::path::{Path, PathBuf};

const TOLERANCE: f64 = 1e-5;

fn cases() -> Vec<PathBuf> {
    let dir = workspace_root().join("tests/fixtures/recurrent");
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("readable fixture folder").path())
        .filter(|p| p.is_dir())
        .collect();
    cases.sort();
    cases
}

/// The numbered `.npy` files `<prefix>_0.npy, <prefix>_1.npy, …` of a case.
fn numbered(dir: &Path, prefix: &str) -> Vec<Tensor> {
    (0..)
        .map(|k| dir.join(format!("{prefix}_{k}.npy")))
        .take_while(|p| p.exists())
        .map(|p| read_npy_f32(&p).unwrap_or_else(|e| panic!("{e:#}")))
        .collect()
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f64 {
    assert_eq!(a.shape(), b.shape(), "shapes differ");
    a.to_f64_vec().iter().zip(b.to_f64_vec()).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max)
}

/// Runs one case on `backend`; returns its outputs.
fn run(dir: &Path, backend: BackendKind, inputs: &[Tensor]) -> Vec<Tensor> {
    let mut session = Session::load(&dir.join("model.onnx")).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let g = &session.model().graph;
    let given = g
        .input_values()
        .into_iter()
        .zip(inputs)
        .map(|(v, t)| GivenInput { name: g.value_name(v).to_string(), path: dir.into(), tensor: t.clone() })
        .collect();
    let inputs = session.prepare(&[], given, Limit::from_system()).unwrap();
    session
        .run(backend, &inputs)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .into_iter()
        .map(|(_, t)| t)
        .collect()
}

#[test]
fn recurrent_models_match_onnx_runtime() {
    let cases = cases();
    assert!(cases.len() >= 7, "expected the seven fixture cases, found {}", cases.len());
    for dir in cases {
        let (inputs, expected) = (numbered(&dir, "input"), numbered(&dir, "output"));
        assert!(!expected.is_empty(), "{}: no reference outputs", dir.display());
        for backend in [BackendKind::Interp, BackendKind::Jit] {
            let outputs = run(&dir, backend, &inputs);
            assert_eq!(outputs.len(), expected.len(), "{}: output count", dir.display());
            for (k, (a, b)) in outputs.iter().zip(&expected).enumerate() {
                let err = max_abs_diff(a, b);
                eprintln!("{} ({}) output {k}: max abs diff {err:.2e}", dir.display(), backend.name());
                assert!(err <= TOLERANCE, "{} ({}): output {k} differs by {err:.3e}", dir.display(), backend.name());
            }
        }
    }
}

/// The comparison can fail: a reference nudged by 1e-4 in one element no longer matches.
#[test]
fn a_nudged_reference_fails_the_comparison() {
    let dir = workspace_root().join("tests/fixtures/recurrent/torch_lstm_bidirectional");
    let (inputs, expected) = (numbered(&dir, "input"), numbered(&dir, "output"));
    let mut nudged = expected[0].to_vec::<f32>();
    nudged[7] += 1e-4;
    let nudged = Tensor::from_vec(expected[0].shape(), nudged).unwrap();
    let outputs = run(&dir, BackendKind::Interp, &inputs);
    assert!(max_abs_diff(&outputs[0], &expected[0]) <= TOLERANCE);
    assert!(max_abs_diff(&outputs[0], &nudged) > TOLERANCE);
}
