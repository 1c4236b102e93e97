//! Issue 19's pruning end to end: the zero-group fixture (`scripts/make_prune_fixture.py`, with
//! ONNX Runtime's reference output) loses every planted unit and still gives that output, through
//! export and re-import; a FLOPs budget is met on a light model; bad options fail with a message
//! and leave no output file. `scripts/prune_check.py` runs the pruned models under ONNX Runtime.

use kiln::driver::Session;
use kiln::prune::Allocation;
use kiln::Pruner;
use kiln_backends::interp::run_graph;
use kiln_tests::{read_npy_f32, rel_l2, workspace_root};
use std::ffi::OsString;

fn fixture() -> std::path::PathBuf {
    workspace_root().join("models/prune")
}

#[test]
fn planted_zero_groups_are_removed_and_outputs_match_onnx_runtime() {
    let model = Session::load(&fixture().join("residual_zero.onnx")).unwrap().into_model();
    let (pruned, report) = Pruner::new().prune(model).unwrap();
    let zero: usize = report.groups.iter().map(|g| g.zero_removed).sum();
    assert_eq!(zero, 4, "two units of the residual stream and one in each bottleneck: {:?}", report.groups);
    assert!(report.params_after < report.params_before);
    let dir = std::env::temp_dir().join(format!("kiln-prune-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("pruned.onnx");
    Session::from_model(pruned).save(&path).unwrap();
    let reloaded = Session::load(&path).unwrap();
    let x = read_npy_f32(&fixture().join("residual_zero.input.npy")).unwrap();
    let want = read_npy_f32(&fixture().join("residual_zero.output.npy")).unwrap();
    let (got, _) = run_graph(&reloaded.model().graph, &[x], &[]).unwrap();
    let err = rel_l2(&got[0], &want);
    assert!(err <= 1e-6, "relative L2 against ONNX Runtime's output: {err:.3e}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_flops_budget_is_met_on_squeezenet() {
    let model = Session::load(&workspace_root().join("models/light/squeezenet.onnx")).unwrap().into_model();
    for allocation in [Allocation::Uniform, Allocation::Lamp] {
        let (_, r) = Pruner::new().ratio(0.3).allocation(allocation).prune(model.clone()).unwrap();
        let drop = 1.0 - r.flops_after as f64 / r.flops_before as f64;
        assert!(drop >= 0.3 * 0.95, "{allocation:?}: FLOPs dropped by {drop:.3}");
        assert!(
            r.groups.iter().any(|g| g.blocked.iter().any(|w| w.contains("Softmax"))),
            "the classifier is left whole"
        );
    }
}

fn cli(args: &[&str]) -> (i32, String) {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = kiln::cli::run(args.iter().map(OsString::from), &mut out, &mut err);
    (code, String::from_utf8_lossy(&err).into_owned())
}

#[test]
fn bad_options_fail_without_output() {
    let model = fixture().join("residual_zero.onnx");
    let out = std::env::temp_dir().join(format!("kiln-prune-bad-{}.onnx", std::process::id()));
    let model = model.to_str().unwrap();
    let o = out.to_str().unwrap();
    let (code, err) = cli(&["kiln", "prune", model, "-o", o, "--ratio", "1.5"]);
    assert_eq!(code, 1);
    assert!(err.contains("--ratio must be in [0, 1)"), "{err}");
    let (code, err) = cli(&["kiln", "prune", model, "-o", o, "--protect", "nosuch"]);
    assert_eq!(code, 1);
    assert!(err.contains("no node of that name"), "{err}");
    let (code, err) = cli(&["kiln", "prune", model, "-o", o, "--allocation", "best"]);
    assert_eq!(code, 2, "{err}");
    assert!(!out.exists(), "no output file after a failure");
    let (code, err) = cli(&["kiln", "prune", model, "-o", o, "--ratio", "0.3", "--allocation", "dp"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.exists(), "the control run writes its output");
    std::fs::remove_file(&out).unwrap();
}
