//! Helpers for Kiln's end-to-end tests: the Rust side of the light-model fixture spec
//! (`tests/fixtures/light/README.md`) — seeded weights chosen by each weight's role, seeded
//! inputs, the logits tap — plus fixture loading (`meta.json`, `.npy` via `npyz`) and the
//! relative L2 error the comparisons use.
//!
//! ```no_run
//! let m = kiln_tests::LightModel::load("squeezenet").unwrap();
//! let outputs = m.run(kiln::BackendKind::Jit).unwrap();
//! for (got, want) in outputs.iter().zip(&m.expected) {
//!     assert!(kiln_tests::rel_l2(got, want) <= 1e-4);
//! }
//! ```

use anyhow::{bail, ensure, Context, Result};
use kiln::driver::memory::Limit;
use kiln::{BackendKind, Model, Session};
use kiln_ir::op::Binary;
use kiln_ir::{Graph, NodeId, Op, Tensor, ValueRef};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The nine ONNX "light" models, as named under `models/light/` and `tests/fixtures/light/`.
pub const LIGHT_MODELS: [&str; 9] = [
    "bvlc_alexnet",
    "densenet121",
    "inception_v1",
    "inception_v2",
    "resnet50",
    "shufflenet",
    "squeezenet",
    "vgg19",
    "zfnet512",
];

/// Ops a weight passes through unchanged (as their data input) on the way to the op using it.
const PASS_THROUGH: [&str; 5] = ["Unsqueeze", "Squeeze", "Reshape", "Flatten", "Identity"];

/// A weight's sampling range: `center ± half_width`.
#[derive(Clone, Copy, Debug, PartialEq, Deserialize)]
pub struct Range {
    pub center: f32,
    pub half_width: f32,
}

/// The workspace root (fixtures and models are found relative to it).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ lives in the workspace").to_path_buf()
}

/// Weight candidates: float constants and float `ConstantOfShape` outputs that something reads
/// ([`weight_range`] says which of them are weights).
pub fn weights(g: &Graph) -> Vec<ValueRef> {
    g.node_ids()
        .into_iter()
        .filter(|&id| matches!(g.node(id).op, Op::Constant(_) | Op::ConstantOfShape { .. }))
        .map(ValueRef::first)
        .filter(|&v| g.value_type(v).dtype.is_float() && !g.consumers(v).is_empty())
        .collect()
}

/// A weight's role: its first consumer and input slot, following through [`PASS_THROUGH`] ops,
/// with the value as it arrives there.
fn role(g: &Graph, weight: ValueRef) -> (NodeId, usize, ValueRef) {
    let mut value = weight;
    loop {
        let (node, slot) = g.consumers(value)[0];
        if slot != 0 || !PASS_THROUGH.contains(&g.node(node).op.onnx_name()) {
            return (node, slot, value);
        }
        value = ValueRef::first(node);
    }
}

/// `sqrt(6 / fan_in)`, in f64 and then rounded to f32.
fn he_range(fan_in: usize) -> Range {
    Range { center: 0.0, half_width: (6.0 / fan_in as f64).sqrt() as f32 }
}

/// The range for a weight, by its role (see the fixture README); `None` for a float constant
/// that is not a weight: the ratio input the importer makes from an old Dropout's attribute.
pub fn weight_range(g: &Graph, weight: ValueRef) -> Result<Option<Range>> {
    let (node, slot, arriving) = role(g, weight);
    let shape = g
        .value_type(arriving)
        .concrete_shape()
        .with_context(|| format!("weight '{}' has a symbolic shape", g.value_name(weight)))?;
    Ok(match (&g.node(node).op, slot) {
        (Op::Dropout, 1..) => None,
        (Op::Conv(_) | Op::ConvTranspose(_), 1) => Some(he_range(shape[1..].iter().product())),
        (Op::Gemm(gemm), 1) => Some(he_range(if gemm.trans_b { shape[1] } else { shape[0] })),
        (Op::MatMul, 1) => Some(he_range(shape[shape.len() - 2])),
        (Op::BatchNorm { .. }, 1 | 4) | (Op::Binary(Binary::Mul), _) => Some(Range { center: 1.0, half_width: 0.2 }),
        _ => Some(Range { center: 0.0, half_width: 0.1 }),
    })
}

/// Replaces every weight by its seeded random tensor; returns each weight's range by name.
pub fn randomize_weights(g: &mut Graph) -> Result<BTreeMap<String, Range>> {
    let mut ranges = BTreeMap::new();
    for w in weights(g) {
        let Some(range) = weight_range(g, w)? else { continue };
        let name = g.value_name(w).to_string();
        let ty = g.value_type(w);
        let shape = ty.concrete_shape().with_context(|| format!("weight '{name}' has a symbolic shape"))?;
        let t = Tensor::seeded(ty.dtype, &shape, &name, range.center, range.half_width)?;
        g.set_constant(w.node, t);
        ranges.insert(name, range);
    }
    Ok(ranges)
}

/// The logits: the input of the Softmax producing the first graph output, else that output.
pub fn logits(g: &Graph) -> ValueRef {
    let out = g.outputs()[0];
    match g.node(out.node).op {
        Op::Softmax { .. } => g.node_inputs(out.node)[0].expect("Softmax has its input"),
        _ => out,
    }
}

/// `kiln run`'s default inputs: `Tensor::seeded(dtype, shape, name, 0, 1)` per graph input.
pub fn seeded_inputs(g: &Graph) -> Result<Vec<Tensor>> {
    g.input_values()
        .into_iter()
        .map(|v| {
            let ty = g.value_type(v);
            let name = g.value_name(v);
            let shape = ty.concrete_shape().with_context(|| format!("input '{name}' has a symbolic shape"))?;
            Ok(Tensor::seeded(ty.dtype, &shape, name, 0.0, 1.0)?)
        })
        .collect()
}

/// Relative L2 error `|a - b| / |b|` of `a` against the reference `b` (`|a - b|` when `b` is
/// zero); infinite when the shapes differ.
pub fn rel_l2(a: &Tensor, b: &Tensor) -> f64 {
    if a.shape() != b.shape() {
        return f64::INFINITY;
    }
    let (a, b) = (a.to_f64_vec(), b.to_f64_vec());
    let diff = a.iter().zip(&b).map(|(x, y)| (x - y) * (x - y)).sum::<f64>().sqrt();
    let norm = b.iter().map(|y| y * y).sum::<f64>().sqrt();
    if norm == 0.0 {
        diff
    } else {
        diff / norm
    }
}

/// Population standard deviation of a tensor's elements.
pub fn std_dev(t: &Tensor) -> f64 {
    let v = t.to_f64_vec();
    let mean = v.iter().sum::<f64>() / v.len() as f64;
    (v.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / v.len() as f64).sqrt()
}

/// Reads a little-endian f32 `.npy` file (what the fixture script writes).
pub fn read_npy_f32(path: &Path) -> Result<Tensor> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let npy = npyz::NpyFile::new(&bytes[..]).with_context(|| format!("parsing {}", path.display()))?;
    ensure!(npy.order() == npyz::Order::C, "{}: only C-order arrays are expected", path.display());
    let shape: Vec<usize> = npy.shape().iter().map(|&d| d as usize).collect();
    let data: Vec<f32> = npy.into_vec().with_context(|| format!("{}: expected f32 data", path.display()))?;
    Ok(Tensor::from_vec(&shape, data)?)
}

/// One seeded graph input as the fixture script made it.
#[derive(Debug, Deserialize)]
pub struct InputMeta {
    pub name: String,
    pub shape: Vec<usize>,
    /// The first values of the seeded input, as numpy computed them.
    pub head: Vec<f32>,
}

/// A value the fixture holds a reference for.
#[derive(Debug, Deserialize)]
pub struct ValueMeta {
    pub name: String,
    pub file: String,
}

/// `tests/fixtures/light/<name>/meta.json`.
#[derive(Debug, Deserialize)]
pub struct Meta {
    pub model: String,
    pub inputs: Vec<InputMeta>,
    pub outputs: Vec<ValueMeta>,
    pub logits: ValueMeta,
    /// Each weight's range (`[center, half_width]` in the file) as the script chose it.
    pub weights: BTreeMap<String, Range>,
    /// The fixture directory.
    #[serde(skip)]
    pub dir: PathBuf,
}

impl Meta {
    /// Reads `tests/fixtures/light/<name>/meta.json`.
    pub fn load(name: &str) -> Result<Meta> {
        let dir = workspace_root().join("tests/fixtures/light").join(name);
        let path = dir.join("meta.json");
        let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        let meta: Meta = serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        Ok(Meta { dir, ..meta })
    }

    /// ONNX Runtime's value for an output or the logits.
    pub fn reference(&self, value: &ValueMeta) -> Result<Tensor> {
        read_npy_f32(&self.dir.join(&value.file))
    }
}

/// A light model ready to run: seeded weights, logits exposed as the last output (unless the
/// logits are the output itself), seeded inputs, and the references for every output.
pub struct LightModel {
    pub name: String,
    pub model: Model,
    /// The spec's inputs (what `kiln run` generates when none are given).
    pub inputs: Vec<Tensor>,
    /// Names of the graph outputs, in order (the model's outputs, then the logits if added).
    pub output_names: Vec<String>,
    /// ONNX Runtime's values for `output_names`, in the same order.
    pub expected: Vec<Tensor>,
    pub meta: Meta,
    /// The range Kiln chose for each weight.
    pub ranges: BTreeMap<String, Range>,
}

impl LightModel {
    /// Imports `models/light/<name>.onnx`, randomizes it per the spec and loads its fixture.
    pub fn load(name: &str) -> Result<LightModel> {
        let meta = Meta::load(name)?;
        let mut model = kiln::onnx::load_file(&workspace_root().join(&meta.model))?;
        let graph = &mut model.graph;
        let ranges = randomize_weights(graph)?;
        let tap = logits(graph);
        if !graph.outputs().contains(&tap) {
            graph.add_output(tap);
        }
        let inputs = seeded_inputs(graph)?;
        let output_names: Vec<String> = graph.outputs().iter().map(|&v| graph.value_name(v).to_string()).collect();
        let expected = output_names
            .iter()
            .map(|n| match meta.outputs.iter().chain([&meta.logits]).find(|m| &m.name == n) {
                Some(m) => meta.reference(m),
                None => bail!("{name}: the fixture has no reference for output '{n}'"),
            })
            .collect::<Result<_>>()?;
        Ok(LightModel { name: name.to_string(), model, inputs, output_names, expected, meta, ranges })
    }

    /// Runs the model the way `kiln run` does (driver session, default inputs) on `backend`,
    /// checking on the way that the inputs it generates are the spec's.
    pub fn run(&self, backend: BackendKind) -> Result<Vec<Tensor>> {
        let mut session = Session::from_model(self.model.clone());
        let inputs = session.prepare(&[], vec![], Limit::from_system())?;
        ensure!(inputs == self.inputs, "{}: kiln run's default inputs are not the spec's", self.name);
        Ok(session.run(backend, &inputs)?.into_iter().map(|(_, t)| t).collect())
    }

    /// Checks that Kiln re-created the script's randomization: the same weights with the same
    /// ranges, the same logits and inputs whose first values agree.
    pub fn check_spec(&self) -> Result<()> {
        let (ours, theirs) = (&self.ranges, &self.meta.weights);
        for (n, r) in theirs {
            ensure!(ours.get(n) == Some(r), "{}: weight '{n}': script {r:?}, Kiln {:?}", self.name, ours.get(n));
        }
        let extra: Vec<&String> = ours.keys().filter(|n| !theirs.contains_key(*n)).collect();
        ensure!(extra.is_empty(), "{}: Kiln randomized weights the script did not: {extra:?}", self.name);
        ensure!(self.output_names.contains(&self.meta.logits.name), "{}: logits differ", self.name);
        ensure!(self.inputs.len() == self.meta.inputs.len(), "{}: input count differs", self.name);
        for (t, m) in self.inputs.iter().zip(&self.meta.inputs) {
            ensure!(t.shape() == m.shape.as_slice(), "{}: input '{}' shape differs", self.name, m.name);
            ensure!(t.to_vec::<f32>()[..m.head.len()] == m.head[..], "{}: input '{}' values differ", self.name, m.name);
        }
        Ok(())
    }

    /// Index of the logits among the graph outputs.
    pub fn logits_index(&self) -> usize {
        self.output_names.iter().position(|n| n == &self.meta.logits.name).expect("checked by check_spec")
    }
}

/// Runs `kiln ARGS... --json` in-process, asserts success, and parses what it printed.
pub fn kiln_json(args: &[&dyn AsRef<std::ffi::OsStr>]) -> serde_json::Value {
    let argv = std::iter::once(std::ffi::OsString::from("kiln"))
        .chain(args.iter().map(|a| a.as_ref().to_os_string()))
        .chain([std::ffi::OsString::from("--json")]);
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = kiln::cli::run(argv, &mut out, &mut err);
    assert_eq!(code, 0, "{}", String::from_utf8_lossy(&err));
    serde_json::from_slice(&out).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use kiln_ir::DType;

    #[test]
    fn seeded_tensor_matches_python() {
        // Printed by `python3 scripts/kiln_random.py`: seeded(f32, [4], "conv1_w_0", 0, 0.5).
        let t = Tensor::seeded(DType::F32, &[4], "conv1_w_0", 0.0, 0.5).unwrap();
        // Compared bit for bit: 0.17919374, 0.4934438, 0.14382172, 0.102495253.
        let bits: Vec<u32> = t.to_vec::<f32>().iter().map(|x| x.to_bits()).collect();
        assert_eq!(bits, [0x3e37_7e90, 0x3efc_a4aa, 0x3e13_4600, 0x3dd1_e908]);
    }

    #[test]
    fn rel_l2_is_relative_to_the_reference() {
        let b = Tensor::vector(vec![3.0f32, 4.0]);
        let a = Tensor::vector(vec![3.0f32, 4.5]);
        assert!((rel_l2(&a, &b) - 0.1).abs() < 1e-12);
        assert_eq!(rel_l2(&b, &b), 0.0);
        assert_eq!(rel_l2(&Tensor::vector(vec![1.0f32]), &b), f64::INFINITY);
    }
}
