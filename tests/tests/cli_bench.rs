//! `kiln bench`, driven in-process through `kiln::cli::run`: the JSON report's shape and the
//! relations between its numbers (no timing thresholds — only what must hold on any machine),
//! inputs given as files, and the usage and error paths.

use kiln::{Model, Session};
use kiln_ir::{op::Unary, DType, Dim, Graph, Op, Tensor, TensorType};
use serde_json::Value;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// Runs `kiln bench ARGS...`; returns exit code, stdout and stderr.
fn bench(args: &[&dyn AsRef<std::ffi::OsStr>]) -> (i32, String, String) {
    let argv = ["kiln", "bench"].into_iter().map(OsString::from).chain(args.iter().map(|a| a.as_ref().into()));
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = kiln::cli::run(argv, &mut out, &mut err);
    (code, String::from_utf8_lossy(&out).into_owned(), String::from_utf8_lossy(&err).into_owned())
}

fn bench_json(args: &[&dyn AsRef<std::ffi::OsStr>]) -> Value {
    let (code, out, err) = bench(&[args, &[&"--json"]].concat());
    assert_eq!(code, 0, "{err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

fn squeezenet() -> PathBuf {
    kiln_tests::workspace_root().join("models/light/squeezenet.onnx")
}

/// A directory of its own under the system temp dir.
fn temp_dir(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("kiln-bench-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Writes `y = Relu(x)`, `x: f32[batch,3]` as ONNX in `dir`.
fn relu_model(dir: &Path) -> PathBuf {
    let mut graph = Graph::new("relu");
    let x = graph.add_input("x", TensorType::new(DType::F32, [Dim::from("batch"), Dim::from(3)]));
    let y = graph.add("y", Op::Unary(Unary::Relu), &[x]).unwrap();
    graph.set_outputs(vec![y]);
    let path = dir.join("relu.onnx");
    Session::from_model(Model { graph, opset: 17, ir_version: 8, producer: "cli_bench".into() }).save(&path).unwrap();
    path
}

fn npy_file(dir: &Path, name: &str, t: &Tensor) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, kiln::npy::to_bytes(t).unwrap()).unwrap();
    path
}

fn ms(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

#[test]
fn json_reports_both_backends_and_the_compile_phases() {
    let r = bench_json(&[&squeezenet(), &"--threads", &"1", &"--runs", &"3", &"--warmup", &"1"]);
    assert_eq!((r["threads"].as_u64(), r["runs"].as_u64(), r["warmup"].as_u64()), (Some(1), Some(3), Some(1)));
    for backend in ["jit", "interp"] {
        let (median, min) = (ms(&r[backend]["median_ms"]), ms(&r[backend]["min_ms"]));
        assert!(min > 0.0 && min <= median, "{backend}: min {min}, median {median}");
    }
    let ratio = ms(&r["interp"]["median_ms"]) / ms(&r["jit"]["median_ms"]);
    assert!((ms(&r["ratio"]) - ratio).abs() <= 1e-9 * ratio, "ratio is interp median / jit median: {r}");
    for phase in ["import", "passes", "codegen"] {
        assert!(ms(&r["compile_ms"][phase]) > 0.0, "{phase}: {r}");
    }
    // SqueezeNet ends in a softmax: the JIT must agree with the interpreter to float rounding.
    assert!(ms(&r["max_abs_diff"]) < 1e-4, "{r}");
    // The weights alone (1.2 M parameters, 4.9 MB) are resident at the peak.
    assert!(r["peak_rss_bytes"].as_u64().is_none_or(|b| b > 4_900_000), "{r}");
}

#[test]
fn no_interp_reports_the_jit_alone() {
    let r = bench_json(&[&squeezenet(), &"--runs", &"1", &"--warmup", &"0", &"--no-interp"]);
    assert!(ms(&r["jit"]["median_ms"]) > 0.0);
    assert!(r["interp"].is_null() && r["ratio"].is_null() && r["max_abs_diff"].is_null(), "{r}");
    let cores = std::thread::available_parallelism().unwrap().get() as u64;
    assert_eq!(r["threads"].as_u64(), Some(cores), "all cores by default");
    let (code, out, err) = bench(&[&squeezenet(), &"--runs", &"1", &"--no-interp"]);
    assert_eq!(code, 0, "{err}");
    for needle in ["import", "passes", "codegen", "jit", "interp", "skipped"] {
        assert!(out.contains(needle), "text output lacks '{needle}':\n{out}");
    }
}

#[test]
fn given_input_fixes_the_symbolic_dims() {
    let dir = temp_dir("input");
    let model = relu_model(&dir);
    let (code, _, err) = bench(&[&model, &"--runs", &"1"]);
    assert_eq!(code, 1);
    assert!(err.contains("input 'x'") && err.contains("--dim batch=N"), "{err}");

    let x = npy_file(&dir, "x.npy", &Tensor::from_vec(&[2, 3], vec![-1.0f32, 2.0, -3.0, 4.0, 5.0, -6.0]).unwrap());
    let r = bench_json(&[&model, &"--runs", &"2", &"--input", &format!("x={}", x.display())]);
    assert_eq!(r["max_abs_diff"].as_f64(), Some(0.0), "{r}");
    let r = bench_json(&[&model, &"--runs", &"1", &"--dim", &"batch=4", &"--profile"]);
    assert!(r["jit"]["median_ms"].is_number(), "{r}");
    assert_eq!(r["profile"][0]["ops"], serde_json::json!(["Relu"]), "the bound graph's one step: {r}");

    let wrong = npy_file(&dir, "wrong.npy", &Tensor::from_vec(&[2, 4], vec![0.0f32; 8]).unwrap());
    let (code, _, err) = bench(&[&model, &"--input", &format!("x={}", wrong.display())]);
    assert_eq!(code, 1);
    assert!(err.contains("input 'x' expects f32[batch,3]") && err.contains("f32[2,4]"), "{err}");
    let (code, _, err) = bench(&[&model, &"--input", &format!("y={}", x.display())]);
    assert_eq!(code, 1);
    assert!(err.contains("no input named 'y'") && err.contains("its inputs are: x"), "{err}");
    std::fs::write(dir.join("junk.npy"), b"not numpy").unwrap();
    let (code, _, err) = bench(&[&model, &"--input", &format!("x={}", dir.join("junk.npy").display())]);
    assert_eq!(code, 1);
    assert!(err.contains("junk.npy"), "{err}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn usage_and_file_errors() {
    let (code, out, err) = bench(&[&"absent.onnx"]);
    assert_eq!(code, 1);
    assert!(out.is_empty() && err.starts_with("error: ") && err.contains("absent.onnx"), "{err}");
    for (flag, value) in [("--threads", "0"), ("--runs", "0"), ("--threads", "two")] {
        let (code, _, err) = bench(&[&squeezenet(), &flag, &value]);
        assert_eq!(code, 2, "{flag} {value}: {err}");
        assert!(err.contains(flag) && err.contains(value), "{err}");
    }
}

/// `--profile` times every step of the plan `kiln inspect --plan` shows, in its order; the
/// shares are each median over their sum, convolutions get a FLOP rate, and text mode lists the
/// N slowest.
#[test]
fn profile_covers_every_step_of_the_plan() {
    let r = bench_json(&[&squeezenet(), &"--runs", &"2", &"--warmup", &"1", &"--no-interp", &"--profile"]);
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let argv = ["kiln", "inspect", "--plan", "--json"].map(OsString::from).into_iter().chain([squeezenet().into()]);
    assert_eq!(kiln::cli::run(argv, &mut out, &mut err), 0, "{}", String::from_utf8_lossy(&err));
    let plan: Value = serde_json::from_slice(&out).unwrap();
    let plan_steps = plan["plan"]["steps"].as_array().unwrap_or_else(|| panic!("no plan steps: {plan}"));
    let steps = r["profile"].as_array().unwrap_or_else(|| panic!("no profile: {r}"));
    assert_eq!(steps.len(), plan_steps.len(), "one entry per plan step");
    let total: f64 = steps.iter().map(|s| ms(&s["median_ms"])).sum();
    for (s, p) in steps.iter().zip(plan_steps) {
        for key in ["nodes", "ops", "engine", "method"] {
            assert_eq!(s.get(key), p.get(key), "{key}: {s}");
        }
        let (median, min) = (ms(&s["median_ms"]), ms(&s["min_ms"]));
        assert!(min >= 0.0 && min <= median, "{s}");
        assert!((ms(&s["share"]) - median / total).abs() <= 1e-9, "{s}");
        if s["ops"][0] == "Conv" && median > 0.0 {
            assert!(ms(&s["gflop_per_s"]) > 0.0, "a convolution has a FLOP rate: {s}");
        }
    }

    let (code, out, err) = bench(&[&squeezenet(), &"--runs", &"1", &"--no-interp", &"--profile", &"3"]);
    assert_eq!(code, 0, "{err}");
    let listing: Vec<&str> = out.lines().skip_while(|l| !l.starts_with("profile")).collect();
    assert_eq!(listing.len(), 6, "a header, the 3 slowest steps, the per-op and the per-engine lines:\n{out}");
    assert!(listing[1..4].iter().all(|l| l.contains(" ms ") && l.ends_with(']')), "{out}");
    assert!(listing[4].starts_with("by op") && listing[4].contains("Conv"), "{out}");
    assert!(listing[5].starts_with("engines") && listing[5].contains("fallback 0.0% in 0 steps"), "{out}");
    assert!(!out.contains("-0.0%"), "{out}");
    let r = bench_json(&[&squeezenet(), &"--runs", &"1", &"--no-interp"]);
    assert!(r.get("profile").is_none(), "no profile unless asked: {r}");
}

#[test]
fn trace_holds_every_profiled_step_of_every_run_as_chrome_events() {
    let dir = temp_dir("trace");
    let trace = dir.join("t.json");
    let r = bench_json(&[
        &squeezenet(),
        &"--threads",
        &"1",
        &"--runs",
        &"2",
        &"--warmup",
        &"0",
        &"--no-interp",
        &"--profile",
        &"--trace",
        &trace,
    ]);
    let steps = r["profile"].as_array().unwrap().len();
    let t: Value = serde_json::from_slice(&std::fs::read(&trace).unwrap()).unwrap();
    let events = t["traceEvents"].as_array().unwrap();
    let complete: Vec<&Value> = events.iter().filter(|e| e["ph"] == "X" && e["cat"] != "run").collect();
    assert_eq!(complete.len(), 2 * steps, "one event per step per run");
    assert!(complete
        .iter()
        .all(|e| e["dur"].as_f64().unwrap() >= 0.0 && e["name"].as_str().is_some_and(|n| !n.is_empty())));
    let runs = events.iter().filter(|e| e["cat"] == "run").count();
    assert_eq!(runs, 2);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn report_writes_one_self_contained_page() {
    let dir = temp_dir("report");
    let page = dir.join("r.html");
    let argv = ["kiln", "report"].into_iter().map(OsString::from).chain([
        squeezenet().into_os_string(),
        "-o".into(),
        page.clone().into_os_string(),
        "--runs".into(),
        "1".into(),
    ]);
    let (mut out, mut err) = (Vec::new(), Vec::new());
    assert_eq!(kiln::cli::run(argv, &mut out, &mut err), 0, "{}", String::from_utf8_lossy(&err));
    let html = std::fs::read_to_string(&page).unwrap();
    for section in ["<h2>Passes</h2>", "<h2>Graph</h2>", "<h2>Profile</h2>", "<h2>Memory</h2>"] {
        assert!(html.contains(section), "{section}");
    }
    assert!(html.matches("<g class=\"node\">").count() > 50, "both graphs are drawn");
    assert!(!html.contains("<script") && !html.contains("src=\""), "nothing is fetched or run");
    // The report makes up inputs under the same cap as run and bench, and writes nothing past it.
    let capped = dir.join("capped.html");
    let argv = ["kiln", "report"].into_iter().map(OsString::from).chain([
        squeezenet().into_os_string(),
        "-o".into(),
        capped.clone().into_os_string(),
        "--max-input-bytes".into(),
        "1K".into(),
    ]);
    let (mut out, mut err) = (Vec::new(), Vec::new());
    assert_eq!(kiln::cli::run(argv, &mut out, &mut err), 1);
    assert!(String::from_utf8_lossy(&err).contains("--max-input-bytes"), "{}", String::from_utf8_lossy(&err));
    assert!(!capped.exists());
    std::fs::remove_dir_all(dir).unwrap();
}
