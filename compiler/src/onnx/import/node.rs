//! [`OpCx`]: what one op-registry function sees of its node — attributes, resolved inputs, the
//! opset — and the few things it may do: add constant inputs for attributes that later opsets
//! turned into inputs, check whether extra outputs are used, and import nested graphs.

use super::attrs::Attrs;
use super::graph::{free_names, Builder, Outer};
use super::ImportError;
use kiln_ir::{Graph, Op, Tensor, TensorType, ValueRef};
use onnx_protobuf::NodeProto;
use std::collections::HashMap;

/// An op function's result: the IR op, its inputs, and how many of the ONNX outputs it keeps
/// (`None`: all of them).
pub(crate) struct Lowered {
    pub op: Op,
    pub inputs: Vec<Option<ValueRef>>,
    pub outputs: Option<usize>,
}

impl Lowered {
    pub(crate) fn new(op: Op, inputs: Vec<Option<ValueRef>>) -> Self {
        Lowered { op, inputs, outputs: None }
    }

    /// Keeps only the first `n` ONNX outputs.
    pub(crate) fn outputs(mut self, n: usize) -> Self {
        self.outputs = Some(n);
        self
    }
}

/// One node being lowered.
pub(crate) struct OpCx<'b, 'g, 'm> {
    pub(crate) b: &'b mut Builder<'g, 'm>,
    pub(crate) node: &'g NodeProto,
    pub(crate) name: String,
    pub(crate) opset: i64,
    pub(crate) attrs: Attrs<'g>,
    /// The ONNX inputs, resolved; `None` for absent optional ones.
    pub(crate) inputs: Vec<Option<ValueRef>>,
}

impl OpCx<'_, '_, '_> {
    /// The node's inputs unchanged, with `op`.
    pub(crate) fn same(&self, op: Op) -> Lowered {
        Lowered::new(op, self.inputs.clone())
    }

    pub(crate) fn error(&self, message: impl Into<String>) -> ImportError {
        self.attrs.error(message.into())
    }

    pub(crate) fn opt(&self, i: usize) -> Option<ValueRef> {
        self.inputs.get(i).copied().flatten()
    }

    pub(crate) fn input(&self, i: usize) -> Result<ValueRef, ImportError> {
        self.opt(i).ok_or_else(|| self.error(format!("required input {i} is missing")))
    }

    pub(crate) fn input_type(&self, i: usize) -> Result<TensorType, ImportError> {
        Ok(self.b.graph.value_type(self.input(i)?).clone())
    }

    /// Adds a constant input named `<node>__<what>`.
    pub(crate) fn konst(&mut self, what: &str, t: Tensor) -> ValueRef {
        let name = self.b.fresh_name(&format!("{}__{what}", self.name));
        self.b.graph.add_const(name, t)
    }

    /// Puts `v` in input slot `slot`, extending the inputs with absent ones as needed.
    pub(crate) fn set_input(&mut self, slot: usize, v: ValueRef) {
        if self.inputs.len() <= slot {
            self.inputs.resize(slot + 1, None);
        }
        self.inputs[slot] = Some(v);
    }

    /// Adds a helper node `<node>__<what>` (for ops Kiln expresses as several IR nodes) and
    /// returns its single output; shape arithmetic is folded to a constant like any node's.
    pub(crate) fn helper(&mut self, what: &str, op: Op, inputs: &[ValueRef]) -> Result<ValueRef, ImportError> {
        let name = self.b.fresh_name(&format!("{}__{what}", self.name));
        let ins: Vec<Option<ValueRef>> = inputs.iter().copied().map(Some).collect();
        if let Some(folded) = self.b.try_fold(&op, &ins, std::slice::from_ref(&name)) {
            return Ok(folded[0]);
        }
        let id = self.b.graph.add_node(name.clone(), op, &ins, &[name])?;
        Ok(ValueRef::first(id))
    }

    /// A scalar constant of the dtype of input `like`.
    pub(crate) fn scalar_like(&mut self, what: &str, like: usize, v: f64) -> Result<ValueRef, ImportError> {
        let dtype = self.input_type(like)?.dtype;
        let t = Tensor::scalar(v).cast(dtype);
        Ok(self.konst(what, t))
    }

    /// Whether ONNX output `i` exists and something reads it.
    pub(crate) fn output_used(&self, i: usize) -> bool {
        self.node.output.get(i).is_some_and(|o| !o.is_empty() && self.b.is_consumed(o))
    }

    /// Computes ONNX output `i` (which must exist) with a node of its own, named after the
    /// output: for extra outputs Kiln expresses as separate IR nodes.
    pub(crate) fn output_node(&mut self, i: usize, op: Op, inputs: &[ValueRef]) -> Result<(), ImportError> {
        let name = self.node.output[i].clone();
        let ins: Vec<Option<ValueRef>> = inputs.iter().copied().map(Some).collect();
        let id = self.b.graph.add_node(name.clone(), op, &ins, std::slice::from_ref(&name))?;
        self.b.define(name, ValueRef::first(id));
        Ok(())
    }

    /// Refuses ONNX outputs from index `from` on that something reads (training-only outputs
    /// Kiln does not compute); unused ones are dropped.
    pub(crate) fn only_outputs(&self, from: usize, why: &str) -> Result<usize, ImportError> {
        let used = self.node.output.iter().skip(from).find(|o| !o.is_empty() && self.b.is_consumed(o));
        match used {
            Some(o) => Err(self.error(format!("output '{o}' is used, but {why}"))),
            None => Ok(from),
        }
    }

    /// Imports the nested graphs in attributes `attrs` (one If branch each, or a Loop/Scan
    /// body). `hints` type their declared inputs where the ONNX declaration is incomplete. All
    /// of them take the same captures, the outer values any of them reads, as trailing inputs;
    /// those outer values are returned for the caller to append to the node's inputs.
    pub(crate) fn subgraphs(
        &mut self,
        attrs: &[&str],
        hints: &[Option<TensorType>],
    ) -> Result<(Vec<Graph>, Vec<ValueRef>), ImportError> {
        let protos = attrs.iter().map(|a| self.attrs.graph(a)).collect::<Result<Vec<_>, _>>()?;
        let mut free: Vec<String> = Vec::new();
        for gp in &protos {
            for n in free_names(gp) {
                if !free.contains(&n) {
                    free.push(n);
                }
            }
        }
        // Outer values become captures; outer constants are shared into the nested graphs.
        let (mut typed, mut captures, mut inherited) = (Vec::new(), Vec::new(), HashMap::new());
        for n in free {
            match self.b.lookup(&n)? {
                Some(Outer::Value(v, t)) => {
                    captures.push(v);
                    typed.push((n, t));
                }
                Some(Outer::Const(t)) => {
                    inherited.insert(n, t);
                }
                // Found nowhere: the nested graph reports it as a dangling edge.
                None => {}
            }
        }
        let mut graphs = Vec::with_capacity(protos.len());
        for (gp, attr) in protos.into_iter().zip(attrs) {
            let g = Builder::new(self.b.ctx, gp, inherited.clone()).build(gp, hints, &typed).map_err(|e| {
                ImportError::Subgraph { node: self.name.clone(), attr: attr.to_string(), source: Box::new(e) }
            })?;
            graphs.push(g);
        }
        Ok((graphs, captures))
    }
}
