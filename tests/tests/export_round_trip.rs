//! Issue 3's export round trip on the light models: each model, with the fixture's seeded
//! weights, is exported to ONNX, imported again and run by the interpreter; its outputs must still
//! match ONNX Runtime's outputs for the original model (relative L2 error ≤ 1e-4 per output).

use kiln::onnx::{load_bytes, to_bytes};
use kiln_backends::interp::run_graph;
use kiln_tests::{rel_l2, LightModel};
use std::time::Instant;

const TOLERANCE: f64 = 1e-4;

fn check_round_trip(name: &str) {
    let start = Instant::now();
    let m = LightModel::load(name).unwrap_or_else(|e| panic!("{name}: {e:#}"));
    let bytes = to_bytes(&m.model).unwrap_or_else(|e| panic!("{name}: export: {e}"));
    let back = load_bytes(&bytes, None).unwrap_or_else(|e| panic!("{name}: re-import: {e}"));
    let g = &back.graph;
    let names: Vec<&str> = g.outputs().iter().map(|&v| g.value_name(v)).collect();
    assert_eq!(names, m.output_names, "{name}: output names survive the round trip");
    let (outputs, _) = run_graph(g, &m.inputs, &[]).unwrap_or_else(|e| panic!("{name}: {e}"));
    let errors: Vec<f64> = outputs.iter().zip(&m.expected).map(|(a, b)| rel_l2(a, b)).collect();
    eprintln!("{name}: {} bytes, {:.2?}, rel L2 {errors:?}", bytes.len(), start.elapsed());
    for (output, err) in names.iter().zip(&errors) {
        assert!(*err <= TOLERANCE, "{name}: output '{output}' has relative L2 error {err:.3e} > {TOLERANCE:e}");
    }
}

macro_rules! round_trip_tests {
    ($($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                check_round_trip(stringify!($name));
            }
        )*
    };
}

round_trip_tests!(
    bvlc_alexnet,
    densenet121,
    inception_v1,
    inception_v2,
    resnet50,
    shufflenet,
    squeezenet,
    vgg19,
    zfnet512
);
