//! Import-time folding of shape arithmetic. Exporters often compute axes, shapes and sizes from
//! static shapes with small integer subgraphs (`Shape` → `Gather` → `Concat` → `Reshape`,
//! `Size` → `Range` for axes); the IR's shape rules need those values as constants. So while
//! importing, `Shape`/`Size` of a value whose shape is known become constants ("derived", as are
//! the literals of ONNX `Constant` nodes), and so does any pure op reading a derived value whose
//! inputs are all small integer or bool constants. Arithmetic on initializers only, and all
//! float math, stays as written (folding those is the `ConstantFold` pass's job), so export →
//! import round-trips.

use kiln_ir::op::{shape_range, InferCtx};
use kiln_ir::{DType, Graph, Op, Tensor, TensorType, ValueRef};
use std::collections::HashSet;

/// Largest integer tensor (elements) folded at import time.
const MAX_FOLD: usize = 4096;

fn foldable(t: &Tensor) -> bool {
    (t.dtype().is_int() || t.dtype() == DType::Bool) && t.len() <= MAX_FOLD
}

/// The node's outputs as constants, if it is shape arithmetic Kiln can evaluate now. `derived`
/// holds the values earlier folding produced.
pub(crate) fn fold(
    graph: &Graph,
    derived: &HashSet<ValueRef>,
    op: &Op,
    inputs: &[Option<ValueRef>],
    num_outputs: usize,
) -> Option<Vec<Tensor>> {
    let known = |i: usize| inputs.get(i).copied().flatten().and_then(|v| graph.value_type(v).concrete_shape());
    match op {
        Op::Shape { start, end } => {
            let dims = known(0)?;
            let range = shape_range(dims.len(), *start, *end);
            return Some(vec![Tensor::vector(dims[range].iter().map(|&d| d as i64).collect())]);
        }
        Op::Size => return Some(vec![Tensor::scalar(known(0)?.iter().product::<usize>() as i64)]),
        Op::Input | Op::Constant(_) => return None,
        _ if !op.is_pure() || !op.subgraphs().is_empty() => return None,
        _ => {}
    }
    let mut consts = Vec::with_capacity(inputs.len());
    for v in inputs {
        consts.push(match v {
            None => None,
            Some(v) => Some(graph.const_value(*v).filter(|t| foldable(t))?.clone()),
        });
    }
    if !inputs.iter().flatten().any(|v| derived.contains(v)) {
        return None;
    }
    // The op's own shape rule sizes the results before anything is evaluated.
    let types: Vec<Option<TensorType>> = consts.iter().map(|c| c.as_ref().map(Tensor::tensor_type)).collect();
    let cx = InferCtx { node: "", op: op.onnx_name(), inputs: &types, consts: &consts, num_outputs };
    let small =
        |t: &TensorType| (t.dtype.is_int() || t.dtype == DType::Bool) && t.numel().is_some_and(|n| n <= MAX_FOLD);
    if !op.infer(&cx).ok()?.iter().all(small) {
        return None;
    }
    let outs = kiln_backends::interp::eval_node(op, &consts, num_outputs).ok()?;
    (outs.len() == num_outputs && outs.iter().all(foldable)).then_some(outs)
}
