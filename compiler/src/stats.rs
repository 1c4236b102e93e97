//! What `kiln inspect` reports about a model — inputs and outputs with their symbolic dims, op
//! histogram, parameter count, FLOPs, opset, producer — and the short summary `kiln run` prints
//! for each output tensor. Everything is computed from inferred types; nothing is evaluated.

use crate::Model;
use kiln_ir::{Graph, NodeId, Op, Tensor, TensorType};
use serde::Serialize;
use std::collections::{BTreeMap, HashSet};

/// A named, typed graph input or output.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Port {
    pub name: String,
    /// The type in text form, e.g. `f32[batch,3,224,224]`.
    #[serde(rename = "type")]
    pub ty: String,
    pub dtype: String,
    /// Each dim: a number, or the symbol's name.
    pub shape: Vec<serde_json::Value>,
}

impl Port {
    fn new(name: &str, ty: &TensorType) -> Port {
        let shape = ty
            .shape
            .iter()
            .map(|d| d.known().map_or_else(|| serde_json::Value::from(d.to_string()), serde_json::Value::from))
            .collect();
        Port { name: name.to_string(), ty: ty.to_string(), dtype: ty.dtype.to_string(), shape }
    }
}

/// The model summary `kiln inspect` prints.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ModelStats {
    pub producer: String,
    pub opset: i64,
    pub ir_version: i64,
    pub inputs: Vec<Port>,
    pub outputs: Vec<Port>,
    /// Non-constant nodes of the top-level graph (graph inputs and constants excluded).
    pub nodes: usize,
    /// ONNX op type → count, over every node (constants included).
    pub ops: BTreeMap<String, usize>,
    /// Elements of constant-derived, non-scalar float tensors that computation reads; `None`
    /// when a weight's shape is symbolic.
    pub parameters: Option<u64>,
    /// Estimated floating-point operations of one run; `None` when a dim is symbolic.
    pub flops: Option<u64>,
}

impl ModelStats {
    pub fn of(model: &Model) -> ModelStats {
        let g = &model.graph;
        let ports = |values: Vec<kiln_ir::ValueRef>| -> Vec<Port> {
            values.into_iter().map(|v| Port::new(g.value_name(v), g.value_type(v))).collect()
        };
        let mut ops = BTreeMap::new();
        for id in g.node_ids() {
            let op = &g.node(id).op;
            if !matches!(op, Op::Input) {
                *ops.entry(op.onnx_name().to_string()).or_insert(0) += 1;
            }
        }
        let constant = constant_derived(g);
        ModelStats {
            producer: model.producer.clone(),
            opset: model.opset,
            ir_version: model.ir_version,
            inputs: ports(g.input_values()),
            outputs: ports(g.outputs().to_vec()),
            nodes: g.node_ids().iter().filter(|id| !constant.contains(id)).count() - g.inputs().len(),
            ops,
            parameters: parameters(g, &constant),
            flops: g
                .node_ids()
                .into_iter()
                .filter(|id| !constant.contains(id))
                .try_fold(0u64, |acc, id| Some(acc.saturating_add(node_flops(g, id)?))),
        }
    }
}

/// Nodes whose value depends on constants only (constants, and pure nodes reading only such
/// nodes — e.g. the `ConstantOfShape` weight generators of the light models).
fn constant_derived(g: &Graph) -> HashSet<NodeId> {
    let mut set = HashSet::new();
    for id in g.topo_order().unwrap_or_else(|_| g.node_ids()) {
        let node = g.node(id);
        let is_const = match node.op {
            Op::Constant(_) => true,
            Op::Input => false,
            ref op => {
                let ins = g.node_inputs(id);
                op.is_pure() && ins.iter().any(Option::is_some) && ins.iter().flatten().all(|v| set.contains(&v.node))
            }
        };
        if is_const {
            set.insert(id);
        }
    }
    set
}

/// Elements of constant-derived float values that some non-constant node reads. Scalars are
/// attribute-like (a Dropout ratio, a Clip bound, a Pow exponent), not weights, and are left out.
fn parameters(g: &Graph, constant: &HashSet<NodeId>) -> Option<u64> {
    let mut total = 0u64;
    for &id in constant {
        for (output, value) in g.node(id).outputs.iter().enumerate() {
            let v = kiln_ir::ValueRef { node: id, output };
            let read = g.consumers(v).iter().any(|(reader, _)| !constant.contains(reader));
            if read && value.ty.dtype.is_float() && value.ty.rank() > 0 {
                total = total.saturating_add(value.ty.numel()? as u64);
            }
        }
    }
    Some(total)
}

/// The estimated FLOPs of one node: 2·MACs for convolutions and matrix products, the input size
/// for reductions, the window size per output for pools, one per output element for elementwise
/// math and normalizations, zero for data movement. `None` while a needed dim is symbolic.
pub(crate) fn node_flops(g: &Graph, id: NodeId) -> Option<u64> {
    let node = g.node(id);
    let ins = g.node_inputs(id);
    let in_ty = |i: usize| ins.get(i).copied().flatten().map(|v| g.value_type(v));
    let dims = |i: usize| in_ty(i).and_then(TensorType::concrete_shape);
    let out = || node.outputs.first().and_then(|o| o.ty.numel()).map(|n| n as u64);
    let input_size = || in_ty(0).and_then(TensorType::numel).map(|n| n as u64);
    let flops = match &node.op {
        Op::Conv(_) => mul(&[2, out()?, product(dims(1)?.get(1..)?)]),
        Op::ConvTranspose(_) => mul(&[2, input_size()?, product(dims(1)?.get(1..)?)]),
        Op::Gemm(gemm) => {
            let a = dims(0)?;
            let k = if gemm.trans_a { a[0] } else { *a.get(1)? };
            mul(&[2, out()?, k as u64])
        }
        Op::MatMul => {
            let a = dims(0)?;
            mul(&[2, out()?, *a.last()? as u64])
        }
        Op::Recurrent(r) => {
            let x = dims(0)?;
            let (sa, ba) = r.seq_batch_axes();
            r.flops(*x.get(sa)? as f64, *x.get(ba)? as f64, *x.get(2)? as f64) as u64
        }
        Op::Pool(p) => mul(&[out()?, product(p.kernel())]),
        Op::GlobalPool(_) | Op::Reduce { .. } | Op::ArgMax { .. } | Op::ArgMin { .. } => input_size()?,
        Op::Unary(_)
        | Op::Binary(_)
        | Op::Variadic(_)
        | Op::Clip
        | Op::Where
        | Op::BatchNorm { .. }
        | Op::InstanceNorm { .. }
        | Op::LayerNorm { .. }
        | Op::Lrn(_)
        | Op::Softmax { .. }
        | Op::LogSoftmax { .. }
        | Op::Hardmax { .. }
        | Op::Resize(_) => out()?,
        _ => 0,
    };
    Some(flops)
}

fn product(dims: &[usize]) -> u64 {
    dims.iter().fold(1u64, |acc, &d| acc.saturating_mul(d as u64))
}

fn mul(factors: &[u64]) -> u64 {
    factors.iter().fold(1u64, |acc, &f| acc.saturating_mul(f))
}

/// The short summary `kiln run` prints for an output: min, max, mean and the first values.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TensorSummary {
    #[serde(rename = "type")]
    pub ty: String,
    pub shape: Vec<usize>,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub mean: Option<f64>,
    /// How many elements are NaN (they are left out of min/max/mean).
    pub nan: usize,
    pub first: Vec<f64>,
}

/// How many leading values a summary shows.
pub const FIRST_VALUES: usize = 5;

impl TensorSummary {
    pub fn of(t: &Tensor) -> TensorSummary {
        let values = t.to_f64_vec();
        let finite: Vec<f64> = values.iter().copied().filter(|v| !v.is_nan()).collect();
        let (min, max, mean) = if finite.is_empty() {
            (None, None, None)
        } else {
            let min = finite.iter().copied().fold(f64::INFINITY, f64::min);
            let max = finite.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            (Some(min), Some(max), Some(finite.iter().sum::<f64>() / finite.len() as f64))
        };
        TensorSummary {
            ty: t.tensor_type().to_string(),
            shape: t.shape().to_vec(),
            min,
            max,
            mean,
            nan: values.len() - finite.len(),
            first: values.iter().copied().take(FIRST_VALUES).collect(),
        }
    }
}

/// The largest `|a - b|` over all elements of all outputs; NaN where a value is NaN in one output
/// only, or where shapes differ (the outputs then do not correspond).
pub fn max_abs_diff(a: &[Tensor], b: &[Tensor]) -> f64 {
    let mut worst = 0.0f64;
    for (x, y) in a.iter().zip(b) {
        if x.shape() != y.shape() {
            return f64::NAN;
        }
        for (u, v) in x.to_f64_vec().into_iter().zip(y.to_f64_vec()) {
            if u.is_nan() != v.is_nan() {
                return f64::NAN;
            }
            if !u.is_nan() {
                worst = worst.max((u - v).abs());
            }
        }
    }
    worst
}

#[cfg(test)]
mod tests {
    use super::*;
    use kiln_ir::op::{Conv, Unary, Window};
    use kiln_ir::{DType, Dim};

    /// x → Conv(3→4, 3×3, pad 1, bias) → Clip(0, 6); weights generated by ConstantOfShape.
    fn conv_model(batch: Dim) -> Model {
        let mut g = Graph::new("m");
        let x = g.add_input("x", TensorType::new(DType::F32, [batch, Dim::from(3), Dim::from(8), Dim::from(8)]));
        let wshape = g.add_const("wshape", Tensor::vector(vec![4i64, 3, 3, 3]));
        let fill = Op::ConstantOfShape { value: Tensor::vector(vec![0.02f32]) };
        let w = g.add("w", fill, &[wshape]).unwrap();
        let b = g.add_const("b", Tensor::vector(vec![0.0f32; 4]));
        let conv = Conv { window: Window { pads: vec![1; 4], ..Default::default() }, group: 1 };
        let y = g.add("y", Op::Conv(conv), &[x, w, b]).unwrap();
        let lo = g.add_const("lo", Tensor::scalar(0.0f32));
        let hi = g.add_const("hi", Tensor::scalar(6.0f32));
        let z = g.add("z", Op::Clip, &[y, lo, hi]).unwrap();
        let r = g.add("r", Op::Unary(Unary::Relu), &[z]).unwrap();
        g.set_outputs(vec![r]);
        Model { graph: g, opset: 17, ir_version: 8, producer: "test".into() }
    }

    #[test]
    fn counts_by_hand() {
        let s = ModelStats::of(&conv_model(Dim::from(1)));
        // Weights 4·3·3·3 = 108 plus bias 4; the Clip bounds are scalars, not parameters.
        assert_eq!(s.parameters, Some(112));
        // Conv: 2 · (4·8·8 outputs) · (3·3·3 MACs each) = 13824; Clip and Relu: 256 each.
        assert_eq!(s.flops, Some(13824 + 256 + 256));
        assert_eq!(s.nodes, 3, "Conv, Clip, Relu; inputs, constants and weight generators excluded");
        assert_eq!(s.ops.get("ConstantOfShape"), Some(&1));
        assert_eq!(s.inputs[0].ty, "f32[1,3,8,8]");
    }

    #[test]
    fn symbolic_dims_make_flops_unknown_but_not_parameters() {
        let s = ModelStats::of(&conv_model(Dim::from("batch")));
        assert_eq!(s.flops, None);
        assert_eq!(s.parameters, Some(112));
        assert_eq!(s.inputs[0].shape[0], serde_json::Value::from("batch"));
    }

    #[test]
    fn summaries_skip_nan() {
        let t = Tensor::vector(vec![1.0f32, f32::NAN, 3.0]);
        let s = TensorSummary::of(&t);
        assert_eq!((s.min, s.max, s.mean, s.nan), (Some(1.0), Some(3.0), Some(2.0), 1));
        assert_eq!(s.first.len(), 3);
    }

    #[test]
    fn diff_is_nan_when_outputs_do_not_correspond() {
        let a = [Tensor::vector(vec![1.0f32, 2.0])];
        assert_eq!(max_abs_diff(&a, &[Tensor::vector(vec![1.5f32, 2.0])]), 0.5);
        assert!(max_abs_diff(&a, &[Tensor::vector(vec![1.0f32])]).is_nan());
        assert!(max_abs_diff(&a, &[Tensor::vector(vec![f32::NAN, 2.0])]).is_nan());
    }
}
