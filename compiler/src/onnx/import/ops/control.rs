//! Control flow with nested graphs: If, Loop, Scan (opset 9+ form). Outer values the nested
//! graphs read are appended to the node's inputs as captures (`kiln_ir::op::control`); declared
//! body inputs without a complete type take the type the op implies.

use super::Registry;
use crate::onnx::import::node::{Lowered, OpCx};
use crate::onnx::import::ImportError;
use kiln_ir::op::{normalize_axis, Loop, Scan};
use kiln_ir::{DType, Op, TensorType, ValueRef};

pub(super) fn register(r: &mut Registry) {
    r.insert("If", if_);
    r.insert("Loop", loop_);
    r.insert("Scan", scan);
}

/// Appends captured outer values to the node's inputs.
fn with_captures(mut inputs: Vec<Option<ValueRef>>, captures: Vec<ValueRef>) -> Vec<Option<ValueRef>> {
    inputs.extend(captures.into_iter().map(Some));
    inputs
}

/// Both branches take the same captures (every outer value either reads), in the same order.
fn if_(cx: &mut OpCx) -> Result<Lowered, ImportError> {
    let cond = cx.input(0)?;
    let (mut graphs, captures) = cx.subgraphs(&["then_branch", "else_branch"], &[])?;
    let (else_branch, then_branch) = (graphs.pop(), graphs.pop());
    let (Some(then_branch), Some(else_branch)) = (then_branch, else_branch) else {
        unreachable!("two graphs were imported")
    };
    let op = Op::If { then_branch: Box::new(then_branch), else_branch: Box::new(else_branch) };
    Ok(Lowered::new(op, with_captures(vec![Some(cond)], captures)))
}

/// Node inputs: `M?`, `cond?`, carried values; body inputs: iteration, condition, carried values.
fn loop_(cx: &mut OpCx) -> Result<Lowered, ImportError> {
    let mut inputs = cx.inputs.clone();
    if inputs.len() < 2 {
        inputs.resize(2, None);
    }
    let mut hints = vec![Some(TensorType::scalar(DType::I64)), Some(TensorType::scalar(DType::Bool))];
    for i in 2..inputs.len() {
        hints.push(Some(cx.input_type(i)?));
    }
    let (mut graphs, captures) = cx.subgraphs(&["body"], &hints)?;
    let body = graphs.pop().expect("one graph was imported");
    let op = Op::Loop(Loop { body, num_captures: captures.len() });
    Ok(Lowered::new(op, with_captures(inputs, captures)))
}

/// Node inputs: `N` state values, then `M` scan inputs; the body sees one slice of each scan
/// input (its scan axis removed). Opset 8's batched form is not supported.
fn scan(cx: &mut OpCx) -> Result<Lowered, ImportError> {
    if cx.opset < 9 {
        return Err(cx.error("the opset 8 form of Scan (with sequence_lens) is not supported"));
    }
    let a = &cx.attrs;
    let m = a.usize_or("num_scan_inputs", 0)?;
    if m == 0 || m > cx.inputs.len() {
        return Err(cx.error(format!("num_scan_inputs {m} does not fit {} inputs", cx.inputs.len())));
    }
    let n = cx.inputs.len() - m;
    let scan_input_axes = a.ints("scan_input_axes")?.unwrap_or_else(|| vec![0; m]);
    let scan_input_directions = a.ints("scan_input_directions")?.unwrap_or_else(|| vec![0; m]);
    let (out_axes, out_dirs) = (a.ints("scan_output_axes")?, a.ints("scan_output_directions")?);
    if scan_input_axes.len() != m || scan_input_directions.len() != m {
        return Err(cx.error(format!("scan_input_axes/directions must have {m} entries")));
    }
    let mut hints = Vec::with_capacity(cx.inputs.len());
    for i in 0..cx.inputs.len() {
        let mut t = cx.input_type(i)?;
        if i >= n {
            let axis = scan_input_axes[i - n];
            let ax = normalize_axis(axis, t.rank())
                .ok_or_else(|| cx.error(format!("scan input axis {axis} is out of range for {t}")))?;
            t.shape.remove(ax);
        }
        hints.push(Some(t));
    }
    let inputs = cx.inputs.clone();
    let (mut graphs, captures) = cx.subgraphs(&["body"], &hints)?;
    let body = graphs.pop().expect("one graph was imported");
    let k = body.outputs().len().saturating_sub(n);
    let op = Op::Scan(Scan {
        body,
        num_scan_inputs: m,
        num_captures: captures.len(),
        scan_input_axes,
        scan_input_directions,
        scan_output_axes: out_axes.unwrap_or_else(|| vec![0; k]),
        scan_output_directions: out_dirs.unwrap_or_else(|| vec![0; k]),
    });
    Ok(Lowered::new(op, with_captures(inputs, captures)))
}
