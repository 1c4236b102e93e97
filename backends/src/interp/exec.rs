//! The graph runner: checks inputs against the graph's declared types, runs nodes in topological
//! order, frees every intermediate value after its last use, and stops at the current limits'
//! deadline or once the live values pass `max_total_bytes`.

use super::kernel::show;
use crate::ExecError;
use kiln_ir::limits::{show_bytes, Limit, LimitError};
use kiln_ir::{Dim, Graph, NodeId, Op, Tensor, ValueRef};
use std::collections::{HashMap, HashSet};

/// How strictly inputs are checked: graph inputs fully, subgraph (loop body) inputs by count and
/// dtype only, since loop-carried values may legitimately change shape between iterations.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Check {
    Full,
    CountAndDtype,
}

/// A graph's execution order and how many times each value is read.
pub(crate) struct Plan {
    order: Vec<NodeId>,
    uses: HashMap<ValueRef, usize>,
}

impl Plan {
    pub(crate) fn new(g: &Graph) -> Result<Plan, ExecError> {
        let order = g.topo_order()?;
        let mut uses = HashMap::new();
        for &id in &order {
            for v in g.node_inputs(id).into_iter().flatten() {
                *uses.entry(v).or_insert(0) += 1;
            }
        }
        Ok(Plan { order, uses })
    }
}

/// Checks inputs against the declared input types: count, dtype, rank, known dims, and that
/// each symbolic dim has one extent across all inputs.
pub(crate) fn check_inputs(g: &Graph, inputs: &[Tensor], check: Check) -> Result<(), ExecError> {
    // Walked in place rather than collected: the JIT checks every run and must not allocate.
    let declared = g.inputs();
    if declared.len() != inputs.len() {
        return Err(ExecError::InputCount { graph: g.name.clone(), expected: declared.len(), got: inputs.len() });
    }
    let mut symbols: HashMap<&str, (usize, &str)> = HashMap::new();
    for (&node, t) in declared.iter().zip(inputs) {
        let v = ValueRef::first(node);
        let want = g.value_type(v);
        let name = g.value_name(v);
        let mismatch = |message: String| ExecError::InputMismatch {
            input: name.to_string(),
            expected: want.to_string(),
            got: format!("{}{}", t.dtype(), show(t.shape())),
            message,
        };
        if t.dtype() != want.dtype {
            return Err(mismatch(format!("dtype {} differs from the declared {}", t.dtype(), want.dtype)));
        }
        if check == Check::CountAndDtype {
            continue;
        }
        if t.rank() != want.rank() {
            return Err(mismatch(format!("rank {} differs from the declared {}", t.rank(), want.rank())));
        }
        for (i, (d, &n)) in want.shape.iter().zip(t.shape()).enumerate() {
            match d {
                Dim::Known(k) if *k != n => {
                    return Err(mismatch(format!("dim {i} is {n} but must be {k}")));
                }
                Dim::Sym(s) => match symbols.get(s.as_str()) {
                    Some(&(bound, by)) if bound != n => {
                        return Err(mismatch(format!(
                            "dim {i} ('{s}') is {n} but input '{by}' binds '{s}' to {bound}"
                        )));
                    }
                    _ => {
                        symbols.insert(s, (n, name));
                    }
                },
                Dim::Known(_) => {}
            }
        }
    }
    Ok(())
}

/// Runs a checked graph; returns its outputs and the `extra` values.
pub(crate) fn execute(
    g: &Graph,
    plan: &Plan,
    inputs: &[Tensor],
    extra: &[ValueRef],
) -> Result<(Vec<Tensor>, Vec<Tensor>), ExecError> {
    let input_pos: HashMap<NodeId, usize> = g.inputs().iter().enumerate().map(|(i, &n)| (n, i)).collect();
    let pinned: HashSet<ValueRef> = g.outputs().iter().chain(extra).copied().collect();
    let mut remaining = plan.uses.clone();
    let mut values: HashMap<ValueRef, Tensor> = HashMap::new();
    let limits = kiln_ir::limits::current();
    for &id in &plan.order {
        let node = g.node(id);
        let limit_error = |source| ExecError::Limit { node: node.name.clone(), op: node.op.onnx_name().into(), source };
        kiln_ir::limits::check_deadline().map_err(limit_error)?;
        let outs = match &node.op {
            Op::Input => vec![inputs[input_pos[&id]].clone()],
            Op::Constant(t) => vec![t.clone()],
            op => {
                let mut ins = Vec::with_capacity(node.num_inputs);
                for (i, slot) in g.node_inputs(id).into_iter().enumerate() {
                    let Some(v) = slot else {
                        ins.push(None);
                        continue;
                    };
                    let t = take(&mut values, &mut remaining, &pinned, v).ok_or_else(|| ExecError::Kernel {
                        node: node.name.clone(),
                        op: op.onnx_name().into(),
                        message: format!(
                            "input {i} reads output {} of node '{}', which it does not have",
                            v.output,
                            g.node(v.node).name
                        ),
                    })?;
                    ins.push(Some(t));
                }
                let outs =
                    super::dispatch(op, &ins, node.outputs.len()).map_err(|f| f.at(&node.name, op.onnx_name()))?;
                check_outputs(g, id, &outs)?;
                outs
            }
        };
        for (output, t) in outs.into_iter().enumerate().take(node.outputs.len()) {
            let v = ValueRef { node: id, output };
            if remaining.get(&v).is_some_and(|&n| n > 0) || pinned.contains(&v) {
                values.insert(v, t);
            }
        }
        let live = values.values().map(tensor_bytes).fold(0u64, u64::saturating_add);
        if live > limits.max_total_bytes {
            let what = format!("the values alive after this node hold {}", show_bytes(Some(live)));
            return Err(limit_error(LimitError::new(Limit::TotalBytes, limits.max_total_bytes, what)));
        }
    }
    let fetch = |v: &ValueRef| {
        values.get(v).cloned().ok_or_else(|| ExecError::Kernel {
            node: String::new(),
            op: "output".into(),
            message: format!("value {v:?} requested as an output does not exist in graph '{}'", g.name),
        })
    };
    let outputs = g.outputs().iter().map(fetch).collect::<Result<_, _>>()?;
    let extras = extra.iter().map(fetch).collect::<Result<_, _>>()?;
    Ok((outputs, extras))
}

/// Bytes a tensor's elements occupy.
pub(crate) fn tensor_bytes(t: &Tensor) -> u64 {
    (t.len() as u64).saturating_mul(t.dtype().size_of() as u64)
}

/// Reads a value for one use, dropping it after its last use unless it is pinned. `None` when the
/// producer has no such output (a malformed, unverified graph).
fn take(
    values: &mut HashMap<ValueRef, Tensor>,
    remaining: &mut HashMap<ValueRef, usize>,
    pinned: &HashSet<ValueRef>,
    v: ValueRef,
) -> Option<Tensor> {
    let n = remaining.get_mut(&v).expect("every read value was counted");
    *n -= 1;
    if *n == 0 && !pinned.contains(&v) {
        values.remove(&v)
    } else {
        values.get(&v).cloned()
    }
}

/// A kernel must produce what inference promised: the declared count, dtypes, ranks, known dims.
fn check_outputs(g: &Graph, id: NodeId, outs: &[Tensor]) -> Result<(), ExecError> {
    let node = g.node(id);
    let fail = |message: String| ExecError::Kernel { node: node.name.clone(), op: node.op.onnx_name().into(), message };
    if outs.len() < node.outputs.len() {
        return Err(fail(format!("produced {} outputs, the graph declares {}", outs.len(), node.outputs.len())));
    }
    for (v, t) in node.outputs.iter().zip(outs) {
        let ty = &v.ty;
        let dims_ok =
            ty.rank() == t.rank() && ty.shape.iter().zip(t.shape()).all(|(d, &n)| d.known().is_none_or(|k| k == n));
        if t.dtype() != ty.dtype || !dims_ok {
            return Err(fail(format!(
                "output '{}' is {}{} but the graph declares {ty}",
                v.name,
                t.dtype(),
                show(t.shape())
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::interp::run_graph;
    use crate::{Backend, ExecError};
    use kiln_ir::op::{Binary, Unary};
    use kiln_ir::{DType, Dim, Graph, Op, Tensor, TensorType};

    /// `y = relu(x + b)`, `x: f32[n,2]`, with `s = x + b` also readable as an extra.
    fn small() -> (Graph, kiln_ir::ValueRef) {
        let mut g = Graph::new("small");
        let x = g.add_input("x", TensorType::new(DType::F32, [Dim::from("n"), Dim::from(2)]));
        let b = g.add_const("b", Tensor::vector(vec![1.0f32, -1.0]));
        let s = g.add("s", Op::Binary(Binary::Add), &[x, b]).unwrap();
        let y = g.add("y", Op::Unary(Unary::Relu), &[s]).unwrap();
        g.set_outputs(vec![y]);
        (g, s)
    }

    #[test]
    fn runs_and_returns_extra_values() {
        let (g, s) = small();
        let x = Tensor::from_vec(&[2, 2], vec![0.0f32, 0.5, -3.0, 2.0]).unwrap();
        let (outs, extra) = run_graph(&g, std::slice::from_ref(&x), &[s]).unwrap();
        assert_eq!(outs[0].to_vec::<f32>(), vec![1.0, 0.0, 0.0, 1.0]);
        assert_eq!(extra[0].to_vec::<f32>(), vec![1.0, -0.5, -2.0, 1.0]);
        let exe = crate::interp::Interpreter.prepare(&g).unwrap();
        assert_eq!(exe.run(&[x]).unwrap(), outs);
    }

    #[test]
    fn inputs_are_checked_against_declared_types() {
        let (g, _) = small();
        let err = |inputs: &[Tensor]| run_graph(&g, inputs, &[]).unwrap_err();
        assert!(matches!(err(&[]), ExecError::InputCount { expected: 1, got: 0, .. }));
        let wrong_dtype = Tensor::zeros(DType::F64, &[1, 2]).unwrap();
        let e = err(&[wrong_dtype]);
        assert!(matches!(&e, ExecError::InputMismatch { input, .. } if input == "x"), "{e}");
        assert!(e.to_string().contains("dtype f64"), "{e}");
        assert!(err(&[Tensor::zeros(DType::F32, &[2]).unwrap()]).to_string().contains("rank 1"));
        assert!(err(&[Tensor::zeros(DType::F32, &[2, 3]).unwrap()]).to_string().contains("dim 1 is 3 but must be 2"));
    }

    #[test]
    fn symbols_bind_consistently_and_runtime_shapes_are_checked() {
        let mut g = Graph::new("two");
        let a = g.add_input("a", TensorType::new(DType::F32, [Dim::from("n")]));
        let b = g.add_input("b", TensorType::new(DType::F32, [Dim::from("n")]));
        let c = g.add_input("c", TensorType::new(DType::F32, [Dim::from("m")]));
        let ab = g.add("ab", Op::Binary(Binary::Add), &[a, b]).unwrap();
        let abc = g.add("abc", Op::Binary(Binary::Mul), &[ab, c]).unwrap();
        g.set_outputs(vec![abc]);
        let v = |n: usize| Tensor::zeros(DType::F32, &[n]).unwrap();
        let e = run_graph(&g, &[v(2), v(3), v(2)], &[]).unwrap_err();
        assert!(e.to_string().contains("input 'a' binds 'n' to 2"), "{e}");
        let e = run_graph(&g, &[v(2), v(2), v(3)], &[]).unwrap_err();
        assert!(matches!(&e, ExecError::Kernel { node, op, .. } if node == "abc" && op == "Mul"), "{e}");
        assert!(e.to_string().contains("cannot be broadcast"), "{e}");
        assert_eq!(run_graph(&g, &[v(2), v(2), v(1)], &[]).unwrap().0[0].shape(), &[2]);
    }

    #[test]
    fn bad_data_is_an_error_naming_node_and_op() {
        let mut g = Graph::new("gather");
        let data = g.add_const("data", Tensor::vector(vec![1.0f32, 2.0, 3.0]));
        let idx = g.add_input("idx", TensorType::known(DType::I64, &[1]));
        let y = g.add("pick", Op::Gather { axis: 0 }, &[data, idx]).unwrap();
        g.set_outputs(vec![y]);
        assert_eq!(run_graph(&g, &[Tensor::vector(vec![-1i64])], &[]).unwrap().0[0].to_vec::<f32>(), vec![3.0]);
        let e = run_graph(&g, &[Tensor::vector(vec![3i64])], &[]).unwrap_err();
        assert_eq!(e.to_string(), "node 'pick' (Gather): index 3 is out of range for an axis of extent 3");
    }
}
