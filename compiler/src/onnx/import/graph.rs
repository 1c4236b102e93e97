//! The graph walk: one [`Builder`] per ONNX graph (the main graph and every nested If/Loop/Scan
//! body). It declares inputs, resolves names (values, then initializers, then constants inherited
//! from enclosing graphs), sorts the nodes topologically itself, and lowers each node through the
//! op registry (folding shape arithmetic on the way, see `fold`). Outer values a nested graph reads become explicit captures: extra inputs of the
//! nested graph and of its node (see `kiln_ir::op::control`); outer constants are shared into the
//! nested graph instead, so shape inference there still sees them.

use super::attrs::Attrs;
use super::node::{Lowered, OpCx};
use super::{fold, ops, tensor, ImportError};
use kiln_ir::{DType, Dim, Graph, Op, Tensor, TensorType, ValueRef};
use onnx_protobuf::{GraphProto, NodeProto, TensorProto, ValueInfoProto};
use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap, HashMap, HashSet};
use std::path::Path;

/// What every builder of one model shares.
#[derive(Clone, Copy)]
pub(crate) struct Ctx<'m> {
    pub base_dir: Option<&'m Path>,
    /// The default-domain opset.
    pub opset: i64,
}

/// What a name means in an enclosing graph, as a nested graph sees it.
pub(crate) enum Outer {
    Const(Tensor),
    Value(ValueRef, TensorType),
}

/// Builds one IR graph from one ONNX graph.
pub(crate) struct Builder<'g, 'm> {
    pub(crate) ctx: Ctx<'m>,
    pub(crate) graph: Graph,
    values: HashMap<String, ValueRef>,
    initializers: HashMap<&'g str, &'g TensorProto>,
    /// Initializers and inherited constants already converted (shared, never copied twice).
    consts: HashMap<String, Tensor>,
    /// Every value name in use, so generated names never collide.
    names: HashSet<String>,
    /// Names some node, nested graph or graph output reads.
    consumed: HashSet<String>,
    /// Constants import-time folding produced (see `fold`).
    derived: HashSet<ValueRef>,
}

impl<'g, 'm> Builder<'g, 'm> {
    /// A builder for `gp`; `inherited` are constants visible from enclosing graphs.
    pub(crate) fn new(ctx: Ctx<'m>, gp: &'g GraphProto, inherited: HashMap<String, Tensor>) -> Self {
        let mut names: HashSet<String> = gp.input.iter().map(|v| v.name.clone()).collect();
        names.extend(gp.initializer.iter().map(|t| t.name.clone()));
        names.extend(gp.node.iter().flat_map(|n| n.output.iter().cloned()));
        names.extend(inherited.keys().cloned());
        let mut consumed: HashSet<String> = gp.output.iter().map(|v| v.name.clone()).collect();
        consumed.extend(gp.node.iter().flat_map(node_reads));
        Builder {
            ctx,
            graph: Graph::new(if gp.name.is_empty() { "main" } else { gp.name.as_str() }),
            values: HashMap::new(),
            initializers: gp.initializer.iter().map(|t| (t.name.as_str(), t)).collect(),
            consts: inherited,
            names,
            consumed,
            derived: HashSet::new(),
        }
    }

    /// Imports the graph. `hints` give types for declared inputs whose ONNX type is incomplete
    /// (nested bodies often leave them out); `captures` are outer values appended as inputs.
    pub(crate) fn build(
        mut self,
        gp: &'g GraphProto,
        hints: &[Option<TensorType>],
        captures: &[(String, TensorType)],
    ) -> Result<Graph, ImportError> {
        if let Some(s) = gp.sparse_initializer.first() {
            let name = s.values.as_ref().map_or("", |v| v.name.as_str());
            return Err(ImportError::Tensor {
                name: name.into(),
                message: "sparse initializers are not supported".into(),
            });
        }
        for (i, vi) in gp.input.iter().enumerate() {
            // Old models list initializers as inputs too: those are constants, not inputs.
            if self.initializers.contains_key(vi.name.as_str()) {
                continue;
            }
            let ty = input_type(vi, hints.get(i).cloned().flatten())?;
            let v = self.graph.add_input(vi.name.clone(), ty);
            self.values.insert(vi.name.clone(), v);
        }
        for (name, ty) in captures {
            self.names.insert(name.clone());
            let v = self.graph.add_input(name.clone(), ty.clone());
            self.values.insert(name.clone(), v);
        }
        for i in topo_order(gp)? {
            self.lower(&gp.node[i])?;
        }
        let outputs = gp
            .output
            .iter()
            .map(|o| {
                self.resolve(&o.name)?
                    .ok_or_else(|| ImportError::Dangling { node: "graph output".into(), value: o.name.clone() })
            })
            .collect::<Result<Vec<_>, _>>()?;
        self.graph.set_outputs(outputs);
        Ok(self.graph)
    }

    /// Converts an initializer or inherited constant once.
    fn constant(&mut self, name: &str) -> Result<Option<Tensor>, ImportError> {
        if let Some(t) = self.consts.get(name) {
            return Ok(Some(t.clone()));
        }
        let Some(proto) = self.initializers.get(name) else { return Ok(None) };
        let t = tensor::to_tensor(proto, self.ctx.base_dir)?;
        self.consts.insert(name.to_string(), t.clone());
        Ok(Some(t))
    }

    /// The value a name refers to in this graph, adding a constant node for an initializer or
    /// inherited constant on first use.
    pub(crate) fn resolve(&mut self, name: &str) -> Result<Option<ValueRef>, ImportError> {
        if let Some(&v) = self.values.get(name) {
            return Ok(Some(v));
        }
        let Some(t) = self.constant(name)? else { return Ok(None) };
        let v = self.graph.add_const(name, t);
        self.values.insert(name.to_string(), v);
        Ok(Some(v))
    }

    /// What a name means here, as seen by a nested graph (constants are not materialized).
    pub(crate) fn lookup(&mut self, name: &str) -> Result<Option<Outer>, ImportError> {
        if let Some(&v) = self.values.get(name) {
            return Ok(Some(match self.graph.const_value(v) {
                Some(t) => Outer::Const(t.clone()),
                None => Outer::Value(v, self.graph.value_type(v).clone()),
            }));
        }
        Ok(self.constant(name)?.map(Outer::Const))
    }

    /// A value name not yet in use, derived from `base`.
    pub(crate) fn fresh_name(&mut self, base: &str) -> String {
        let mut name = base.to_string();
        let mut k = 1;
        while !self.names.insert(name.clone()) {
            name = format!("{base}_{k}");
            k += 1;
        }
        name
    }

    /// Adds a node's outputs as constants named `names`, if it is shape arithmetic on static
    /// shapes (see `fold`).
    pub(crate) fn try_fold(&mut self, op: &Op, inputs: &[Option<ValueRef>], names: &[String]) -> Option<Vec<ValueRef>> {
        let values = fold::fold(&self.graph, &self.derived, op, inputs, names.len())?;
        let refs: Vec<ValueRef> = names.iter().zip(values).map(|(n, t)| self.graph.add_const(n.clone(), t)).collect();
        self.derived.extend(refs.iter().copied());
        Some(refs)
    }

    /// Makes `name` refer to `v` from now on.
    pub(crate) fn define(&mut self, name: String, v: ValueRef) {
        self.values.insert(name, v);
    }

    pub(crate) fn is_consumed(&self, name: &str) -> bool {
        self.consumed.contains(name)
    }

    /// Lowers one node through the registry and adds it to the graph.
    fn lower(&mut self, node: &'g NodeProto) -> Result<(), ImportError> {
        let name = node_name(node);
        let mut inputs = Vec::with_capacity(node.input.len());
        for value in &node.input {
            if value.is_empty() {
                inputs.push(None);
                continue;
            }
            let v = self.resolve(value)?;
            inputs.push(Some(v.ok_or_else(|| ImportError::Dangling { node: name.clone(), value: value.clone() })?));
        }
        let func = ops::lookup(&node.op_type).ok_or_else(|| {
            ImportError::Unsupported(vec![super::UnsupportedOp {
                node: name.clone(),
                op: node.op_type.clone(),
                opset: self.ctx.opset,
            }])
        })?;
        let opset = self.ctx.opset;
        let mut cx = OpCx { b: self, node, name: name.clone(), opset, attrs: Attrs::new(node, name.clone()), inputs };
        let Lowered { op, inputs, outputs } = func(&mut cx)?;
        let wanted = outputs.unwrap_or(node.output.len()).min(node.output.len());
        let mut out_names: Vec<String> = node.output[..wanted].to_vec();
        while out_names.last().is_some_and(String::is_empty) {
            out_names.pop();
        }
        for (i, o) in out_names.iter_mut().enumerate() {
            if o.is_empty() {
                *o = self.fresh_name(&format!("{name}__out{i}"));
            }
        }
        if let Some(folded) = self.try_fold(&op, &inputs, &out_names) {
            self.values.extend(out_names.into_iter().zip(folded));
            return Ok(());
        }
        // ONNX Constant nodes are literals of the computation: shape arithmetic may fold them.
        let literal = matches!(op, Op::Constant(_));
        let id = self.graph.add_node(name, op, &inputs, &out_names)?;
        if literal {
            self.derived.insert(ValueRef::first(id));
        }
        for (i, o) in out_names.into_iter().enumerate() {
            self.values.insert(o, ValueRef { node: id, output: i });
        }
        Ok(())
    }
}

/// A node's name: its own, else its first output's.
pub(crate) fn node_name(node: &NodeProto) -> String {
    if !node.name.is_empty() {
        return node.name.clone();
    }
    node.output.iter().find(|o| !o.is_empty()).map_or_else(|| node.op_type.clone(), Clone::clone)
}

/// The declared type of a graph input, or `hint` where the declaration is incomplete. Dims
/// without a value, or with a negative one, become symbols named `<input>_<axis>`.
fn input_type(vi: &ValueInfoProto, hint: Option<TensorType>) -> Result<TensorType, ImportError> {
    let err = |message: String| ImportError::Input { name: vi.name.clone(), message };
    if vi.type_.as_ref().is_some_and(|t| t.value.is_some() && !t.has_tensor_type()) {
        return Err(err("only tensors are supported (not sequences, maps or optionals)".into()));
    }
    let declared = vi.type_.as_ref().map(|t| t.tensor_type());
    let Some(tt) = declared.filter(|t| t.elem_type != 0 && t.shape.is_some()) else {
        return hint.ok_or_else(|| err("has no tensor type with a shape".into()));
    };
    let dtype = DType::from_onnx_code(tt.elem_type)
        .ok_or_else(|| err(format!("element type {} is not supported", tensor::dtype_name(tt.elem_type))))?;
    use onnx_protobuf::tensor_shape_proto::dimension::Value;
    let shape: Vec<Dim> = tt
        .shape
        .dim
        .iter()
        .enumerate()
        .map(|(i, d)| match &d.value {
            // paddle2onnx writes a dynamic dim as -1: symbolic, as ONNX Runtime reads it. A 0
            // stays an extent: inputs such as an empty `axes` really are empty.
            Some(Value::DimValue(v)) if *v >= 0 => {
                usize::try_from(*v).map(Dim::Known).map_err(|_| err(format!("dim {i} ({v}) does not fit")))
            }
            Some(Value::DimParam(p)) if !p.is_empty() => Ok(Dim::Sym(p.clone())),
            _ => Ok(Dim::Sym(format!("{}_{i}", vi.name))),
        })
        .collect::<Result<_, _>>()?;
    if shape.len() > kiln_ir::limits::MAX_RANK {
        return Err(err(format!(
            "has {} dims, more than the {} a tensor may have",
            shape.len(),
            kiln_ir::limits::MAX_RANK
        )));
    }
    let ty = TensorType { dtype, shape };
    if let Some(dims) = ty.concrete_shape() {
        kiln_ir::tensor::check_alloc(dtype, &dims).map_err(|e| err(e.to_string()))?;
    }
    Ok(ty)
}

/// Names a node reads: its inputs and whatever its nested graphs read from outside themselves.
pub(crate) fn node_reads(node: &NodeProto) -> Vec<String> {
    let mut reads: Vec<String> = node.input.iter().filter(|i| !i.is_empty()).cloned().collect();
    for (_, g) in Attrs::graphs(node) {
        reads.extend(free_names(g));
    }
    reads
}

/// Names a graph reads but does not define (its outer-scope references), in first-use order.
pub(crate) fn free_names(gp: &GraphProto) -> Vec<String> {
    let mut defined: HashSet<&str> = gp.input.iter().map(|v| v.name.as_str()).collect();
    defined.extend(gp.initializer.iter().map(|t| t.name.as_str()));
    defined.extend(gp.node.iter().flat_map(|n| n.output.iter().map(String::as_str)));
    let mut seen = HashSet::new();
    let reads = gp.node.iter().flat_map(node_reads).chain(gp.output.iter().map(|o| o.name.clone()));
    reads.filter(|r| !defined.contains(r.as_str()) && seen.insert(r.clone())).collect()
}

/// Node indices in a topological order (ties in file order). ONNX files should already be sorted,
/// but some are not; a cycle is reported with a node that lies on it.
pub(crate) fn topo_order(gp: &GraphProto) -> Result<Vec<usize>, ImportError> {
    let mut producer: HashMap<&str, usize> = HashMap::new();
    for (i, n) in gp.node.iter().enumerate() {
        for o in n.output.iter().filter(|o| !o.is_empty()) {
            if let Some(&first) = producer.get(o.as_str()) {
                return Err(ImportError::Redefined {
                    value: o.clone(),
                    first: node_name(&gp.node[first]),
                    second: node_name(n),
                });
            }
            producer.insert(o, i);
        }
    }
    let preds: Vec<BTreeSet<usize>> = gp
        .node
        .iter()
        .map(|n| node_reads(n).iter().filter_map(|r| producer.get(r.as_str()).copied()).collect())
        .collect();
    let mut succs = vec![Vec::new(); gp.node.len()];
    for (i, ps) in preds.iter().enumerate() {
        for &p in ps {
            succs[p].push(i);
        }
    }
    let mut indeg: Vec<usize> = preds.iter().map(BTreeSet::len).collect();
    let mut ready: BinaryHeap<Reverse<usize>> = (0..indeg.len()).filter(|&i| indeg[i] == 0).map(Reverse).collect();
    let mut order = Vec::with_capacity(indeg.len());
    while let Some(Reverse(i)) = ready.pop() {
        order.push(i);
        for &s in &succs[i] {
            indeg[s] -= 1;
            if indeg[s] == 0 {
                ready.push(Reverse(s));
            }
        }
    }
    if order.len() == gp.node.len() {
        return Ok(order);
    }
    // Walk back through stuck predecessors until a node repeats: that node is on a cycle.
    let stuck = |i: usize| indeg[i] > 0;
    let mut at = (0..indeg.len()).find(|&i| stuck(i)).expect("some node is stuck");
    let mut visited = HashSet::new();
    while visited.insert(at) {
        at = *preds[at].iter().find(|&&p| stuck(p)).expect("a stuck node has a stuck predecessor");
    }
    Err(ImportError::Cycle { node: node_name(&gp.node[at]) })
}
