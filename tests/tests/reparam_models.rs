//! Issue 5's reparameterization models (`scripts/make_reparam_models.py`): the training form
//! (parallel branches, each with its BatchNorm) optimizes to exactly one convolution per block —
//! as many as the hand-reparameterized form has — and the interpreter gives the same outputs on
//! the optimized training form as on the hand-reparameterized one. Also: saturation on the
//! densenet121 light model stops by saturating, within its node limit.

use kiln::driver::Session;
use kiln_backends::interp::run_graph;
use kiln_tests::{rel_l2, seeded_inputs, workspace_root};
use std::sync::Mutex;

/// The e-graph pass has a wall-clock limit, so its saturation is only meaningful when it has a
/// core to itself: the tests of this file optimize one at a time.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn count(s: &Session, op: &str) -> usize {
    let g = &s.model().graph;
    g.node_ids().iter().filter(|&&id| g.node(id).op.onnx_name() == op).count()
}

fn check(name: &str) {
    let _alone = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let dir = workspace_root().join("models/reparam");
    let mut train = Session::load(&dir.join(format!("{name}_train.onnx"))).unwrap();
    let deploy = Session::load(&dir.join(format!("{name}_deploy.onnx"))).unwrap();
    train.optimize().unwrap();
    assert_eq!(count(&train, "Conv"), count(&deploy, "Conv"), "{name}: one convolution per block");
    assert_eq!((count(&train, "BatchNormalization"), count(&train, "Add")), (0, 0), "{name}");
    let inputs = seeded_inputs(&deploy.model().graph).unwrap();
    let (got, _) = run_graph(&train.model().graph, &inputs, &[]).unwrap();
    let (want, _) = run_graph(&deploy.model().graph, &inputs, &[]).unwrap();
    let err = rel_l2(&got[0], &want[0]);
    assert!(err <= 1e-5, "{name}: relative L2 error {err:.3e}");
}

#[test]
fn repvgg_training_form_is_one_conv_per_block() {
    check("repvgg");
}

#[test]
fn mobileone_training_form_is_one_conv_per_block() {
    check("mobileone");
}

#[test]
fn densenet121_saturates_within_its_limits() {
    let _alone = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let mut s = Session::load(&workspace_root().join("models/light/densenet121.onnx")).unwrap();
    let stats = s.optimize().unwrap();
    let e = stats.iter().find_map(|p| p.egraph.clone()).expect("the e-graph pass ran");
    assert_eq!(e.stop_reason, "saturated", "{e:?}");
    assert!(e.nodes <= e.node_limit && e.kept_original.is_none(), "{e:?}");
    assert!(e.cost_after < e.cost_before, "{e:?}");
}
