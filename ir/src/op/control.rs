//! Control flow with nested graphs: If, Loop, Scan. Outer values a body reads are explicit
//! inputs of the node (appended after the ONNX inputs) and explicit inputs of the body, so every
//! graph is closed and can be verified, dumped and run on its own.

use super::infer::{InferCtx, InferError};
use crate::{Dim, Graph, TensorType};

/// Output types of If: both branches must produce the same number of outputs with equal dtypes;
/// dims that disagree become data-dependent.
pub(crate) fn infer_if(cx: &InferCtx, then_b: &Graph, else_b: &Graph) -> Result<Vec<TensorType>, InferError> {
    cx.input(0)?;
    let (t, e) = (then_b.output_types(), else_b.output_types());
    if t.len() != e.len() {
        return Err(cx.error(format!("branches produce {} and {} outputs", t.len(), e.len())));
    }
    t.into_iter()
        .zip(e)
        .enumerate()
        .map(|(i, (a, b))| {
            if a.dtype != b.dtype {
                return Err(cx.error(format!("branch output {i} has dtypes {} and {}", a.dtype, b.dtype)));
            }
            if a.shape == b.shape {
                return Ok(a);
            }
            let rank_a = a.rank();
            let shape = if rank_a == b.rank() {
                a.shape
                    .iter()
                    .zip(&b.shape)
                    .enumerate()
                    .map(|(k, (x, y))| if x == y { x.clone() } else { cx.fresh(format!("out{i}_{k}")) })
                    .collect()
            } else {
                (0..rank_a).map(|k| cx.fresh(format!("out{i}_{k}"))).collect()
            };
            Ok(TensorType { dtype: a.dtype, shape })
        })
        .collect()
}

/// A Loop. Node inputs: `M?` (i64 trip count), `cond?` (bool), `N` loop-carried initial values,
/// then captures. Body inputs: iteration number, condition, `N` carried values, captures. Body
/// outputs: condition, `N` carried values, `K` scan outputs (stacked along a new first axis).
#[derive(Clone, Debug, PartialEq)]
pub struct Loop {
    pub body: Graph,
    /// How many trailing node inputs are captured outer values.
    pub num_captures: usize,
}

impl Loop {
    pub(crate) fn infer(&self, cx: &InferCtx) -> Result<Vec<TensorType>, InferError> {
        let outs = self.body.output_types();
        let carried =
            cx.inputs.len().checked_sub(2 + self.num_captures).ok_or_else(|| cx.error("too few inputs".into()))?;
        if outs.len() < 1 + carried {
            return Err(cx.error(format!("body has {} outputs but the loop carries {carried} values", outs.len())));
        }
        let mut types = Vec::with_capacity(outs.len() - 1);
        for (k, t) in outs[1..1 + carried].iter().enumerate() {
            let init = cx.input(2 + k)?;
            let shape = if init.shape == t.shape {
                t.shape.clone()
            } else {
                (0..t.rank()).map(|d| cx.fresh(format!("carried{k}_{d}"))).collect()
            };
            types.push(TensorType { dtype: t.dtype, shape });
        }
        for (k, t) in outs[1 + carried..].iter().enumerate() {
            let mut shape = vec![cx.fresh(format!("iterations{k}"))];
            shape.extend(t.shape.iter().cloned());
            types.push(TensorType { dtype: t.dtype, shape });
        }
        Ok(types)
    }
}

/// A Scan (opset 9+ form). Node inputs: `N` state initial values, `M` scan inputs, then captures.
#[derive(Clone, Debug, PartialEq)]
pub struct Scan {
    pub body: Graph,
    pub num_scan_inputs: usize,
    pub num_captures: usize,
    pub scan_input_axes: Vec<i64>,
    pub scan_input_directions: Vec<i64>,
    pub scan_output_axes: Vec<i64>,
    pub scan_output_directions: Vec<i64>,
}

impl Scan {
    pub(crate) fn infer(&self, cx: &InferCtx) -> Result<Vec<TensorType>, InferError> {
        let outs = self.body.output_types();
        let n_state = cx
            .inputs
            .len()
            .checked_sub(self.num_scan_inputs + self.num_captures)
            .ok_or_else(|| cx.error("too few inputs".into()))?;
        let seq_len = match cx.input(n_state) {
            Ok(first_scan) => {
                let axis = self.scan_input_axes.first().copied().unwrap_or(0);
                let a = cx.axis(axis, first_scan.rank())?;
                first_scan.shape[a].clone()
            }
            Err(_) => cx.fresh("sequence"),
        };
        let mut types: Vec<TensorType> = outs[..n_state.min(outs.len())].to_vec();
        for (k, t) in outs.iter().enumerate().skip(n_state) {
            let j = k - n_state;
            let axis = self.scan_output_axes.get(j).copied().unwrap_or(0);
            let rank = t.rank() + 1;
            let a = cx.axis(axis, rank)?;
            let mut shape: Vec<Dim> = t.shape.clone();
            shape.insert(a, seq_len.clone());
            types.push(TensorType { dtype: t.dtype, shape });
        }
        Ok(types)
    }
}
