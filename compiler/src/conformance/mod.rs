//! The ONNX node conformance suite as Kiln's yardstick: discovers the cases that
//! `scripts/gen_conformance.py` wrote, runs each through a backend, compares like ONNX's own runner
//! (see [`compare`]), and tabulates pass/fail/skip per operator.
//!
//! A case that cannot be imported counts as failed; only cases using a type from the project's skip
//! list (`conformance/skip.txt`) are skipped.

mod compare;
mod skip;

pub use compare::compare;
pub use skip::skipped_types;

use crate::onnx::import;
use kiln_backends::Backend;
use kiln_ir::Tensor;
use onnx_protobuf::{ModelProto, TensorProto};
use protobuf::Message;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// How one case ended.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
#[serde(tag = "status", content = "reason", rename_all = "lowercase")]
pub enum Outcome {
    Passed,
    Failed(String),
    Skipped(String),
}

/// One case's result.
#[derive(Clone, Debug, serde::Serialize)]
pub struct CaseResult {
    pub name: String,
    /// The operator the case exercises (for the per-op table).
    pub op: String,
    #[serde(flatten)]
    pub outcome: Outcome,
}

/// Totals over a run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Totals {
    pub passed: usize,
    pub failed: usize,
    pub skipped: usize,
}

impl Totals {
    fn add(&mut self, o: &Outcome) {
        match o {
            Outcome::Passed => self.passed += 1,
            Outcome::Failed(_) => self.failed += 1,
            Outcome::Skipped(_) => self.skipped += 1,
        }
    }
}

/// Case folders under `dir` (each holding a `model.onnx`), sorted, optionally filtered by substring.
pub fn discover(dir: &Path, filter: Option<&str>) -> std::io::Result<Vec<PathBuf>> {
    let mut cases: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.join("model.onnx").is_file())
        .filter(|p| filter.is_none_or(|f| p.file_name().is_some_and(|n| n.to_string_lossy().contains(f))))
        .collect();
    cases.sort();
    Ok(cases)
}

/// Runs one case folder on `backend`. With `roundtrip`, the imported model is first exported to
/// ONNX and imported again, so the case checks export too. Never panics: a panicking kernel is
/// reported as a failure.
pub fn run_case(case: &Path, backend: &dyn Backend, roundtrip: bool) -> CaseResult {
    let name = case.file_name().map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    let bytes = std::fs::read(case.join("model.onnx"));
    let proto = bytes.as_ref().ok().and_then(|b| ModelProto::parse_from_bytes(b).ok());
    let op = proto.as_ref().map_or_else(|| "?".to_string(), |m| case_op(&name, m));
    let outcome = match (&bytes, &proto) {
        (Err(e), _) => Outcome::Failed(format!("cannot read model: {e}")),
        (_, None) => Outcome::Failed("model.onnx does not parse".into()),
        (Ok(bytes), Some(m)) => match skip::skip_reason(m) {
            Some(reason) => Outcome::Skipped(reason),
            None => {
                let run =
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| execute(case, bytes, backend, roundtrip)));
                match run {
                    Ok(Ok(())) => Outcome::Passed,
                    Ok(Err(e)) => Outcome::Failed(e),
                    Err(p) => Outcome::Failed(format!("PANIC: {}", panic_message(&p))),
                }
            }
        },
    };
    CaseResult { name, op, outcome }
}

fn panic_message(p: &Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<String>().cloned().or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string())).unwrap_or_default()
}

/// The operator a case is about: its only node's op, or (for expanded/multi-node cases) the node op
/// whose lower-case name starts the case name.
fn case_op(name: &str, m: &ModelProto) -> String {
    let ops: Vec<&str> =
        m.graph.as_ref().map_or_else(Vec::new, |g| g.node.iter().map(|n| n.op_type.as_str()).collect());
    let bare = name.trim_start_matches("test_").replace('_', "").to_lowercase();
    ops.iter()
        .filter(|op| bare.starts_with(&op.to_lowercase()))
        .max_by_key(|op| op.len())
        .or(ops.first())
        .map_or_else(|| "?".to_string(), |s| s.to_string())
}

fn read_tensor(path: &Path) -> Result<Tensor, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let proto = TensorProto::parse_from_bytes(&bytes).map_err(|e| format!("{}: {e}", path.display()))?;
    import::tensor_from_proto(&proto, None).map_err(|e| e.to_string())
}

fn read_set(dir: &Path, prefix: &str) -> Result<Vec<Tensor>, String> {
    (0..).map(|k| dir.join(format!("{prefix}_{k}.pb"))).take_while(|p| p.is_file()).map(|p| read_tensor(&p)).collect()
}

fn execute(case: &Path, bytes: &[u8], backend: &dyn Backend, roundtrip: bool) -> Result<(), String> {
    let mut model = import::load_bytes(bytes, Some(case)).map_err(|e| format!("import: {e}"))?;
    if roundtrip {
        let exported = crate::onnx::export::to_bytes(&model).map_err(|e| format!("export: {e}"))?;
        model = import::load_bytes(&exported, Some(case)).map_err(|e| format!("re-import of the export: {e}"))?;
    }
    let meta: serde_json::Value = std::fs::read_to_string(case.join("meta.json"))
        .ok()
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or_default();
    let rtol = meta["rtol"].as_f64().unwrap_or(1e-3);
    let atol = meta["atol"].as_f64().unwrap_or(1e-7);
    let exe = backend.prepare(&model.graph).map_err(|e| format!("prepare: {e}"))?;
    let mut sets: Vec<PathBuf> = std::fs::read_dir(case)
        .map_err(|e| e.to_string())?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    sets.sort();
    for set in sets {
        let inputs = read_set(&set, "input")?;
        let expected = read_set(&set, "output")?;
        let got = exe.run(&inputs).map_err(|e| format!("run: {e}"))?;
        if got.len() != expected.len() {
            return Err(format!("{} outputs expected, got {}", expected.len(), got.len()));
        }
        for (k, (e, g)) in expected.iter().zip(&got).enumerate() {
            compare(e, g, rtol, atol).map_err(|m| format!("output {k}: {m}"))?;
        }
    }
    Ok(())
}

/// Runs every case, calling `progress` after each.
pub fn run_suite(
    cases: &[PathBuf],
    backend: &dyn Backend,
    roundtrip: bool,
    mut progress: impl FnMut(&CaseResult),
) -> Vec<CaseResult> {
    cases
        .iter()
        .map(|c| {
            let r = run_case(c, backend, roundtrip);
            progress(&r);
            r
        })
        .collect()
}

/// Per-op totals and the overall totals.
pub fn tabulate(results: &[CaseResult]) -> (BTreeMap<String, Totals>, Totals) {
    let mut per_op: BTreeMap<String, Totals> = BTreeMap::new();
    let mut all = Totals::default();
    for r in results {
        per_op.entry(r.op.clone()).or_default().add(&r.outcome);
        all.add(&r.outcome);
    }
    (per_op, all)
}

/// The human-readable report: a per-op table, then failures, then the closing line
/// `N passed, N failed, N skipped`.
pub fn report(results: &[CaseResult], show_failures: bool) -> String {
    use std::fmt::Write;
    let (per_op, all) = tabulate(results);
    let mut out = format!("{:<28} {:>6} {:>6} {:>7}\n", "op", "passed", "failed", "skipped");
    for (op, t) in &per_op {
        let _ = writeln!(out, "{op:<28} {:>6} {:>6} {:>7}", t.passed, t.failed, t.skipped);
    }
    if show_failures {
        for r in results {
            if let Outcome::Failed(why) = &r.outcome {
                let short: String = why.chars().take(200).collect();
                let _ = writeln!(out, "FAIL {}: {short}", r.name);
            }
        }
    }
    let _ = writeln!(out, "{} passed, {} failed, {} skipped", all.passed, all.failed, all.skipped);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::onnx::export::{tensor_to_proto, to_proto};
    use crate::Model;
    use kiln_backends::interp::Interpreter;
    use kiln_ir::{op::Unary, DType, Graph, Op, TensorType};
    use onnx_protobuf::type_proto;

    /// A case folder holding a Relu model and one data set with the given expected output.
    fn write_case(root: &Path, name: &str, expected: Vec<f32>, elem_type: i32) -> PathBuf {
        let mut g = Graph::new("relu");
        let x = g.add_input("x", TensorType::known(DType::F32, &[3]));
        let y = g.add("y", Op::Unary(Unary::Relu), &[x]).unwrap();
        g.set_outputs(vec![y]);
        let mut proto = to_proto(&Model { graph: g, opset: 21, ir_version: 10, producer: "test".into() }).unwrap();
        if let Some(type_proto::Value::TensorType(t)) =
            proto.graph.mut_or_insert_default().input[0].type_.mut_or_insert_default().value.as_mut()
        {
            t.elem_type = elem_type;
        }
        let dir = root.join(name);
        let set = dir.join("test_data_set_0");
        std::fs::create_dir_all(&set).unwrap();
        std::fs::write(dir.join("model.onnx"), proto.write_to_bytes().unwrap()).unwrap();
        let input = tensor_to_proto("x", &Tensor::vector(vec![-1.0f32, 2.0, -3.0]));
        std::fs::write(set.join("input_0.pb"), input.write_to_bytes().unwrap()).unwrap();
        let output = tensor_to_proto("y", &Tensor::vector(expected));
        std::fs::write(set.join("output_0.pb"), output.write_to_bytes().unwrap()).unwrap();
        dir
    }

    #[test]
    fn passes_fails_and_skips_like_the_onnx_runner() {
        let root = std::env::temp_dir().join(format!("kiln-conformance-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        write_case(&root, "test_relu_good", vec![0.0, 2.0, 0.0], 1);
        write_case(&root, "test_relu_bad", vec![0.0, 2.5, 0.0], 1);
        write_case(&root, "test_relu_string", vec![0.0, 2.0, 0.0], 8);
        let cases = discover(&root, None).unwrap();
        assert_eq!(cases.len(), 3);
        for roundtrip in [false, true] {
            let results = run_suite(&cases, &Interpreter, roundtrip, |_| {});
            let by_name = |n: &str| results.iter().find(|r| r.name == n).unwrap().outcome.clone();
            assert_eq!(by_name("test_relu_good"), Outcome::Passed);
            assert!(matches!(by_name("test_relu_bad"), Outcome::Failed(m) if m.contains("flat index 1")));
            assert!(matches!(by_name("test_relu_string"), Outcome::Skipped(m) if m.starts_with("string")));
            let text = report(&results, true);
            assert!(text.ends_with("1 passed, 1 failed, 1 skipped\n"), "{text}");
            assert!(text.contains("Relu"), "{text}");
        }
        let _ = std::fs::remove_dir_all(&root);
    }
}
