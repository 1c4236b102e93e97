//! The nine ONNX light models, with seeded random weights and their logits exposed, match ONNX
//! Runtime's outputs (relative L2 error ≤ 1e-4 per output) when run the way `kiln run` runs them
//! (driver session, default inputs), on the reference interpreter and on the JIT. Fixtures and
//! the randomization spec: `tests/fixtures/light/`.

use kiln::BackendKind;
use kiln_ir::Tensor;
use kiln_tests::{rel_l2, std_dev, LightModel, Meta, LIGHT_MODELS};
use std::time::Instant;

const TOLERANCE: f64 = 1e-4;

/// Imports, randomizes and runs one model; checks every output against its reference.
fn check_model(name: &str, backend: BackendKind) {
    let start = Instant::now();
    let m = LightModel::load(name).unwrap_or_else(|e| panic!("{name}: {e:#}"));
    m.check_spec().unwrap_or_else(|e| panic!("{e:#}"));
    let loaded = start.elapsed();
    let outputs = m.run(backend).unwrap_or_else(|e| panic!("{name}: {e:#}"));
    let errors: Vec<(&str, f64)> = m
        .output_names
        .iter()
        .zip(outputs.iter().zip(&m.expected))
        .map(|(n, (a, b))| (n.as_str(), rel_l2(a, b)))
        .collect();
    eprintln!(
        "{name} ({}): load {loaded:.2?}, run {:.2?}, rel L2 {errors:?}",
        backend.name(),
        start.elapsed() - loaded
    );
    for (output, err) in &errors {
        assert!(*err <= TOLERANCE, "{name}: output '{output}' has relative L2 error {err:.3e} > {TOLERANCE:e}");
    }
}

macro_rules! light_tests {
    ($($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                check_model(stringify!($name), BackendKind::Interp);
                check_model(stringify!($name), BackendKind::Jit);
            }
        )*

        #[test]
        fn every_light_model_has_a_test() {
            assert_eq!([$(stringify!($name)),*], LIGHT_MODELS);
        }
    };
}

light_tests!(bvlc_alexnet, densenet121, inception_v1, inception_v2, resnet50, shufflenet, squeezenet, vgg19, zfnet512);

/// The references are informative: with seeded weights the logits vary across classes (with the
/// shipped 0.02 weights they would be uniform, and a broken kernel would still match).
#[test]
fn reference_logits_are_far_from_uniform() {
    for name in LIGHT_MODELS {
        let meta = Meta::load(name).unwrap();
        let logits = meta.reference(&meta.logits).unwrap();
        assert!(std_dev(&logits) > 0.5, "{name}: logits std dev {} is too small", std_dev(&logits));
    }
}

/// The comparison catches a small error: scaling one weight by 1.001 breaks the match.
#[test]
fn a_perturbed_weight_fails_the_comparison() {
    let mut m = LightModel::load("squeezenet").unwrap();
    let g = &mut m.model.graph;
    let w = g.find_value("conv10_w_0").expect("squeezenet's last conv weight");
    let weight = g.const_value(w).expect("weights are constants");
    let perturbed = Tensor::from_vec(weight.shape(), weight.to_vec::<f32>().iter().map(|x| x * 1.001).collect());
    g.set_constant(w.node, perturbed.unwrap());
    for backend in [BackendKind::Interp, BackendKind::Jit] {
        let outputs = m.run(backend).unwrap();
        let i = m.logits_index();
        let err = rel_l2(&outputs[i], &m.expected[i]);
        eprintln!("perturbed squeezenet ({}): logits rel L2 {err:.3e}", backend.name());
        assert!(err > TOLERANCE, "perturbed squeezenet still matches on {}: rel L2 {err:.3e}", backend.name());
    }
}
