//! The one e-class analysis: dtype and shape of every class (by the IR's own inference rules),
//! and the tensor value of classes that are constant. Constant folding lives here: an op whose
//! inputs are all constant is evaluated once through the driver's [`Evaluator`] and its class
//! gets a constant e-node (and loses its other e-nodes: nothing cheaper computes a constant).

use super::lang::{Constant, ENode};
use crate::fold::Evaluator;
use egg::{Analysis, DidMerge, Id};
use kiln_ir::op::InferCtx;
use kiln_ir::{Op, Tensor, TensorType};
use std::sync::Arc;

/// The e-graph of Kiln's passes.
pub type EGraph = egg::EGraph<ENode, TensorAnalysis>;
/// A rewrite rule over that e-graph.
pub type Rewrite = egg::Rewrite<ENode, TensorAnalysis>;

/// What is known about one e-class.
#[derive(Clone, Debug, Default)]
pub struct Data {
    /// Output types: one for a value, several for a multi-output op; `None` when unknown (an
    /// absent optional input, or inference failed).
    pub types: Option<Vec<TensorType>>,
    /// The value, when the class is constant.
    pub value: Option<Tensor>,
    /// The class stands for an absent optional input.
    pub absent: bool,
}

impl Data {
    /// The type of a single-valued class.
    pub fn ty(&self) -> Option<&TensorType> {
        match self.types.as_deref() {
            Some([t]) => Some(t),
            _ => None,
        }
    }
}

/// The analysis state: graph input types, the evaluator constant folding uses, and counters.
pub struct TensorAnalysis {
    evaluator: Arc<dyn Evaluator>,
    /// Types of the graph inputs, by [`ENode::Input`] number.
    pub inputs: Vec<TensorType>,
    /// Folding skips results larger than this.
    pub max_fold_bytes: u64,
    next_serial: u32,
    /// Classes folded to constants.
    pub folded: usize,
    /// (rule, canonical e-node) pairs an op rule has already rewritten: rules compute weights,
    /// so re-matching the same node in the next iteration must not redo the work.
    pub applied: std::collections::HashSet<(egg::Symbol, ENode)>,
}

impl TensorAnalysis {
    pub fn new(evaluator: Arc<dyn Evaluator>, inputs: Vec<TensorType>) -> TensorAnalysis {
        TensorAnalysis {
            evaluator,
            inputs,
            max_fold_bytes: 256 << 20,
            next_serial: 0,
            folded: 0,
            applied: Default::default(),
        }
    }

    /// A constant e-node with a fresh serial.
    pub fn constant(&mut self, value: Tensor) -> ENode {
        self.next_serial += 1;
        ENode::Const(Constant { serial: self.next_serial, value })
    }
}

/// Bytes a value of this type occupies, when every dim is known.
pub fn type_bytes(t: &TensorType) -> Option<u64> {
    t.concrete_shape()?.iter().try_fold(t.dtype.size_of() as u64, |acc, &d| acc.checked_mul(d as u64))
}

/// Type and, when every input is constant, value of an op node.
fn make_op(eg: &mut EGraph, op: &Op, outputs: usize, children: &[Id]) -> Data {
    let mut types = Vec::with_capacity(children.len());
    let mut values = Vec::with_capacity(children.len());
    for &c in children {
        let d = &eg[c].data;
        if d.ty().is_none() && !d.absent {
            return Data::default();
        }
        types.push(d.ty().cloned());
        values.push(d.value.clone());
    }
    let cx = InferCtx { node: "egraph", op: op.onnx_name(), inputs: &types, consts: &values, num_outputs: outputs };
    let Ok(out) = op.infer(&cx) else { return Data::default() };
    if out.len() != outputs {
        return Data::default();
    }
    let value = if outputs == 1 { fold(eg, op, &types, &values, &out[0]) } else { None };
    Data { types: Some(out), value, absent: false }
}

/// The value of a single-output op whose inputs are constant (or whose result only depends on
/// known shapes), if it can be computed and is small enough.
fn fold(
    eg: &mut EGraph,
    op: &Op,
    types: &[Option<TensorType>],
    values: &[Option<Tensor>],
    out: &TensorType,
) -> Option<Tensor> {
    if let (Op::Shape { start, end }, Some(Some(t))) = (op, types.first()) {
        let dims: Vec<i64> = t.concrete_shape()?.iter().map(|&d| d as i64).collect();
        let range = kiln_ir::op::shape_range(dims.len(), *start, *end);
        return Some(Tensor::vector(dims[range].to_vec()));
    }
    if let (Op::Size, Some(Some(t))) = (op, types.first()) {
        return Some(Tensor::scalar(t.numel()? as i64));
    }
    if matches!(op, Op::Input | Op::Constant(_)) || !op.is_pure() || !op.subgraphs().is_empty() {
        return None;
    }
    let all_constant = types.iter().zip(values).all(|(t, v)| t.is_none() || v.is_some());
    if !all_constant || type_bytes(out).is_none_or(|b| b > eg.analysis.max_fold_bytes) {
        return None;
    }
    let v = eg.analysis.evaluator.eval(op, values, 1).ok()?.into_iter().next()?;
    let fits = v.dtype() == out.dtype && out.concrete_shape().is_some_and(|s| s == v.shape());
    fits.then(|| {
        eg.analysis.folded += 1;
        v
    })
}

impl Analysis<ENode> for TensorAnalysis {
    type Data = Data;

    fn make(eg: &mut EGraph, enode: &ENode, _id: Id) -> Data {
        match enode {
            ENode::Input(k) => {
                Data { types: eg.analysis.inputs.get(*k as usize).map(|t| vec![t.clone()]), ..Default::default() }
            }
            ENode::Const(c) => {
                Data { types: Some(vec![c.value.tensor_type()]), value: Some(c.value.clone()), absent: false }
            }
            ENode::Absent => Data { absent: true, ..Default::default() },
            ENode::Get(k, [t]) => {
                let ty = eg[*t].data.types.as_ref().and_then(|ts| ts.get(*k as usize)).cloned();
                Data { types: ty.map(|t| vec![t]), ..Default::default() }
            }
            ENode::Op(key, children) => make_op(eg, key.op(), key.outputs(), children),
        }
    }

    fn merge(&mut self, a: &mut Data, b: Data) -> DidMerge {
        let (mut to_a, mut to_b) = (false, false);
        match (&a.types, b.types) {
            (None, Some(t)) => {
                a.types = Some(t);
                to_a = true;
            }
            (Some(_), None) => to_b = true,
            _ => {}
        }
        match (&a.value, b.value) {
            (None, Some(v)) => {
                a.value = Some(v);
                to_a = true;
            }
            (Some(_), None) => to_b = true,
            _ => {}
        }
        DidMerge(to_a, to_b)
    }

    fn modify(eg: &mut EGraph, id: Id) {
        let Some(value) = eg[id].data.value.clone() else { return };
        if !eg[id].nodes.iter().any(|n| matches!(n, ENode::Const(_))) {
            let c = eg.analysis.constant(value);
            let c = eg.add(c);
            eg.union(id, c);
        }
        // Nothing computes a constant more cheaply than the constant itself.
        let id = eg.find(id);
        eg[id].nodes.retain(|n| matches!(n, ENode::Const(_)));
    }
}
