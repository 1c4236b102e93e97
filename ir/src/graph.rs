//! The dataflow graph: nodes are ops, each producing typed, named values; edges carry one value
//! from an output port to an input port. Built on petgraph's `StableDiGraph` so ids survive edits.

use crate::op::{InferCtx, InferError, Op};
use crate::{Dim, Tensor, TensorType};
use petgraph::stable_graph::{NodeIndex, StableDiGraph};
use petgraph::visit::{EdgeRef, IntoEdgeReferences};
use petgraph::Direction;
use std::collections::HashMap;

/// A node id, stable across removals.
pub type NodeId = NodeIndex<u32>;

/// One value: output `output` of node `node`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ValueRef {
    pub node: NodeId,
    pub output: usize,
}

impl ValueRef {
    /// The first (often only) output of a node.
    pub fn first(node: NodeId) -> ValueRef {
        ValueRef { node, output: 0 }
    }
}

/// An edge: which output of the source feeds which input of the target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Port {
    pub output: usize,
    pub input: usize,
}

/// A named, typed value a node produces.
#[derive(Clone, Debug, PartialEq)]
pub struct Value {
    pub name: String,
    pub ty: TensorType,
}

/// An op with its name, input arity (slots may be empty) and outputs.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    pub name: String,
    pub op: Op,
    pub num_inputs: usize,
    pub outputs: Vec<Value>,
}

/// Structural errors: what a well-formed graph never has.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GraphError {
    #[error(transparent)]
    Infer(#[from] InferError),
    #[error("node '{node}' gives {given} output names but its op produces {produced} outputs")]
    OutputCount { node: String, given: usize, produced: usize },
    #[error("node '{node}' input {input} refers to a value that does not exist")]
    Dangling { node: String, input: usize },
    #[error("the graph has a cycle through node '{0}'")]
    Cycle(String),
    #[error("node '{node}' input {input} is fed by {count} edges")]
    MultipleEdges { node: String, input: usize, count: usize },
    #[error("node '{node}' output {output} declares type {declared} but its op infers {inferred}")]
    TypeMismatch { node: String, output: usize, declared: TensorType, inferred: TensorType },
    #[error("value name '{0}' is defined more than once")]
    DuplicateName(String),
    #[error("graph output {0} refers to a value that does not exist")]
    DanglingOutput(usize),
    #[error("in subgraph of node '{node}': {source}")]
    Subgraph { node: String, source: Box<GraphError> },
}

/// A computation graph with ordered inputs and outputs.
#[derive(Clone, Debug, Default)]
pub struct Graph {
    pub name: String,
    g: StableDiGraph<Node, Port>,
    inputs: Vec<NodeId>,
    outputs: Vec<ValueRef>,
}

impl PartialEq for Graph {
    /// Structural equality by text form (node ids and order of insertion are not semantic).
    fn eq(&self, other: &Graph) -> bool {
        crate::text::to_text(self) == crate::text::to_text(other)
    }
}

impl Graph {
    pub fn new(name: impl Into<String>) -> Graph {
        Graph { name: name.into(), ..Default::default() }
    }

    /// Declares a graph input.
    pub fn add_input(&mut self, name: impl Into<String>, ty: TensorType) -> ValueRef {
        let name = name.into();
        let id = self.g.add_node(Node {
            name: name.clone(),
            op: Op::Input,
            num_inputs: 0,
            outputs: vec![Value { name, ty }],
        });
        self.inputs.push(id);
        ValueRef::first(id)
    }

    /// Adds a constant (shared, not copied).
    pub fn add_const(&mut self, name: impl Into<String>, value: Tensor) -> ValueRef {
        let name = name.into();
        let ty = value.tensor_type();
        let id = self.g.add_node(Node {
            name: name.clone(),
            op: Op::Constant(value),
            num_inputs: 0,
            outputs: vec![Value { name, ty }],
        });
        ValueRef::first(id)
    }

    /// Adds a node, inferring its output types (which validates it). Output names are the
    /// values' names; the node takes the first one's name unless `node_name` is given.
    pub fn add_node(
        &mut self,
        node_name: impl Into<String>,
        op: Op,
        inputs: &[Option<ValueRef>],
        output_names: &[String],
    ) -> Result<NodeId, GraphError> {
        let name = node_name.into();
        for (i, v) in inputs.iter().enumerate() {
            if let Some(v) = v {
                if !self.value_exists(*v) {
                    return Err(GraphError::Dangling { node: name, input: i });
                }
            }
        }
        let types = self.infer_with(&name, &op, inputs, output_names.len())?;
        if types.len() < output_names.len() {
            return Err(GraphError::OutputCount { node: name, given: output_names.len(), produced: types.len() });
        }
        let outputs = output_names.iter().zip(types).map(|(n, ty)| Value { name: n.clone(), ty }).collect();
        let id = self.g.add_node(Node { name, op, num_inputs: inputs.len(), outputs });
        for (i, v) in inputs.iter().enumerate() {
            if let Some(v) = v {
                self.g.add_edge(v.node, id, Port { output: v.output, input: i });
            }
        }
        Ok(id)
    }

    /// Convenience: adds a single-output node named after its output, returning that value.
    pub fn add(&mut self, name: &str, op: Op, inputs: &[ValueRef]) -> Result<ValueRef, GraphError> {
        let ins: Vec<Option<ValueRef>> = inputs.iter().copied().map(Some).collect();
        Ok(ValueRef::first(self.add_node(name, op, &ins, &[name.to_string()])?))
    }

    fn infer_with(
        &self,
        name: &str,
        op: &Op,
        inputs: &[Option<ValueRef>],
        num_outputs: usize,
    ) -> Result<Vec<TensorType>, InferError> {
        let types: Vec<Option<TensorType>> = inputs.iter().map(|v| v.map(|v| self.value_type(v).clone())).collect();
        let consts: Vec<Option<Tensor>> = inputs.iter().map(|v| v.and_then(|v| self.const_value(v).cloned())).collect();
        let cx = InferCtx { node: name, op: op.onnx_name(), inputs: &types, consts: &consts, num_outputs };
        op.infer(&cx)
    }

    fn value_exists(&self, v: ValueRef) -> bool {
        self.g.node_weight(v.node).is_some_and(|n| v.output < n.outputs.len())
    }

    pub fn set_outputs(&mut self, outputs: Vec<ValueRef>) {
        self.outputs = outputs;
    }

    pub fn add_output(&mut self, v: ValueRef) {
        self.outputs.push(v);
    }

    pub fn inputs(&self) -> &[NodeId] {
        &self.inputs
    }

    /// Input values in order.
    pub fn input_values(&self) -> Vec<ValueRef> {
        self.inputs.iter().map(|&n| ValueRef::first(n)).collect()
    }

    pub fn outputs(&self) -> &[ValueRef] {
        &self.outputs
    }

    pub fn node(&self, id: NodeId) -> &Node {
        &self.g[id]
    }

    pub fn node_mut(&mut self, id: NodeId) -> &mut Node {
        &mut self.g[id]
    }

    pub fn contains(&self, id: NodeId) -> bool {
        self.g.contains_node(id)
    }

    /// Every node id, in insertion order.
    pub fn node_ids(&self) -> Vec<NodeId> {
        self.g.node_indices().collect()
    }

    pub fn num_nodes(&self) -> usize {
        self.g.node_count()
    }

    /// The underlying petgraph graph, for algorithms.
    pub fn petgraph(&self) -> &StableDiGraph<Node, Port> {
        &self.g
    }

    pub fn value(&self, v: ValueRef) -> &Value {
        &self.g[v.node].outputs[v.output]
    }

    pub fn value_type(&self, v: ValueRef) -> &TensorType {
        &self.value(v).ty
    }

    pub fn value_name(&self, v: ValueRef) -> &str {
        &self.value(v).name
    }

    /// The tensor, if this value is a constant.
    pub fn const_value(&self, v: ValueRef) -> Option<&Tensor> {
        match &self.g[v.node].op {
            Op::Constant(t) => Some(t),
            _ => None,
        }
    }

    /// The node's inputs by slot (`None` for absent optional inputs).
    pub fn node_inputs(&self, id: NodeId) -> Vec<Option<ValueRef>> {
        let mut ins = vec![None; self.g[id].num_inputs];
        for e in self.g.edges_directed(id, Direction::Incoming) {
            let p = e.weight();
            if let Some(slot) = ins.get_mut(p.input) {
                *slot = Some(ValueRef { node: e.source(), output: p.output });
            }
        }
        ins
    }

    /// Nodes reading a value, with the input slot.
    pub fn consumers(&self, v: ValueRef) -> Vec<(NodeId, usize)> {
        let mut c: Vec<(NodeId, usize)> = self
            .g
            .edges_directed(v.node, Direction::Outgoing)
            .filter(|e| e.weight().output == v.output)
            .map(|e| (e.target(), e.weight().input))
            .collect();
        c.sort();
        c
    }

    /// Finds a value by name.
    pub fn find_value(&self, name: &str) -> Option<ValueRef> {
        self.g.node_indices().find_map(|id| {
            self.g[id].outputs.iter().position(|o| o.name == name).map(|output| ValueRef { node: id, output })
        })
    }

    /// Makes every reader of `old` (and graph outputs) read `new` instead.
    pub fn replace_uses(&mut self, old: ValueRef, new: ValueRef) {
        let edges: Vec<_> = self
            .g
            .edges_directed(old.node, Direction::Outgoing)
            .filter(|e| e.weight().output == old.output)
            .map(|e| (e.id(), e.target(), e.weight().input))
            .collect();
        for (e, target, input) in edges {
            self.g.remove_edge(e);
            self.g.add_edge(new.node, target, Port { output: new.output, input });
        }
        for o in &mut self.outputs {
            if *o == old {
                *o = new;
            }
        }
    }

    /// Makes input `slot` of `node` read `value` instead of what fed it (one edge, not every
    /// reader of the old value, unlike [`Graph::replace_uses`]). Types are not re-inferred.
    pub fn set_input(&mut self, node: NodeId, slot: usize, value: ValueRef) {
        let old: Vec<_> = self
            .g
            .edges_directed(node, Direction::Incoming)
            .filter(|e| e.weight().input == slot)
            .map(|e| e.id())
            .collect();
        for e in old {
            self.g.remove_edge(e);
        }
        self.g.add_edge(value.node, node, Port { output: value.output, input: slot });
    }

    /// Replaces a node's op and re-infers its output types, keeping names and edges.
    pub fn replace_op(&mut self, id: NodeId, op: Op) -> Result<(), GraphError> {
        let ins = self.node_inputs(id);
        let n = self.g[id].outputs.len();
        let types = self.infer_with(&self.g[id].name, &op, &ins, n)?;
        let node = &mut self.g[id];
        node.op = op;
        for (o, t) in node.outputs.iter_mut().zip(types) {
            o.ty = t;
        }
        Ok(())
    }

    /// Turns a single-output node into a constant holding `value`, dropping its input edges
    /// (constant folding, weight substitution). The value keeps its name and readers.
    pub fn set_constant(&mut self, id: NodeId, value: Tensor) {
        let incoming: Vec<_> = self.g.edges_directed(id, Direction::Incoming).map(|e| e.id()).collect();
        for e in incoming {
            self.g.remove_edge(e);
        }
        let node = &mut self.g[id];
        node.outputs.truncate(1);
        node.outputs[0].ty = value.tensor_type();
        node.op = Op::Constant(value);
        node.num_inputs = 0;
        self.inputs.retain(|&i| i != id);
    }

    /// Removes a node and its edges. Graph inputs stay declared only if not removed.
    pub fn remove_node(&mut self, id: NodeId) {
        self.g.remove_node(id);
        self.inputs.retain(|&i| i != id);
    }

    /// Nodes in a topological order (inputs before their readers); ties broken by insertion order.
    pub fn topo_order(&self) -> Result<Vec<NodeId>, GraphError> {
        let mut indeg: HashMap<NodeId, usize> = self.g.node_indices().map(|n| (n, 0)).collect();
        for e in (&self.g).edge_references() {
            *indeg.get_mut(&e.target()).expect("edge target exists") += 1;
        }
        let mut ready: std::collections::BTreeSet<NodeId> =
            indeg.iter().filter(|(_, &d)| d == 0).map(|(&n, _)| n).collect();
        let mut order = Vec::with_capacity(indeg.len());
        while let Some(n) = ready.pop_first() {
            order.push(n);
            for e in self.g.edges_directed(n, Direction::Outgoing) {
                let d = indeg.get_mut(&e.target()).expect("edge target exists");
                *d -= 1;
                if *d == 0 {
                    ready.insert(e.target());
                }
            }
        }
        if order.len() != indeg.len() {
            let stuck =
                indeg.iter().filter(|(n, _)| !order.contains(n)).map(|(n, _)| *n).min().expect("some node is stuck");
            return Err(GraphError::Cycle(self.g[stuck].name.clone()));
        }
        Ok(order)
    }

    /// Re-runs type inference over the whole graph (after input types change or nodes were
    /// rewritten), in topological order.
    pub fn reinfer(&mut self) -> Result<(), GraphError> {
        for id in self.topo_order()? {
            if matches!(self.g[id].op, Op::Input | Op::Constant(_)) {
                continue;
            }
            let ins = self.node_inputs(id);
            let n = self.g[id].outputs.len();
            let types = self.infer_with(&self.g[id].name, &self.g[id].op, &ins, n)?;
            for (o, t) in self.g[id].outputs.iter_mut().zip(types) {
                o.ty = t;
            }
        }
        Ok(())
    }

    /// Binds symbolic input dims to numbers and re-infers every type.
    pub fn bind_dims(&mut self, bindings: &HashMap<String, usize>) -> Result<(), GraphError> {
        for &id in &self.inputs {
            for o in &mut self.g[id].outputs {
                o.ty.shape = o.ty.shape.iter().map(|d| d.bind(bindings)).collect();
            }
        }
        self.reinfer()
    }

    /// Symbols that appear in the input types, in order of first appearance.
    pub fn input_symbols(&self) -> Vec<String> {
        let mut syms = Vec::new();
        for &id in &self.inputs {
            for d in &self.g[id].outputs[0].ty.shape {
                if let Dim::Sym(s) = d {
                    if !syms.contains(s) {
                        syms.push(s.clone());
                    }
                }
            }
        }
        syms
    }

    /// Types of the graph outputs.
    pub fn output_types(&self) -> Vec<TensorType> {
        self.outputs.iter().map(|&v| self.value_type(v).clone()).collect()
    }

    /// Removes every node that no graph output depends on (graph inputs are kept). Returns how
    /// many nodes were removed.
    pub fn remove_dead(&mut self) -> usize {
        let mut live = std::collections::HashSet::new();
        let mut stack: Vec<NodeId> = self.outputs.iter().map(|v| v.node).collect();
        while let Some(n) = stack.pop() {
            if live.insert(n) {
                stack.extend(self.g.neighbors_directed(n, Direction::Incoming));
            }
        }
        let dead: Vec<NodeId> =
            self.g.node_indices().filter(|n| !live.contains(n) && !self.inputs.contains(n)).collect();
        for &n in &dead {
            self.g.remove_node(n);
        }
        dead.len()
    }

    /// Checks every structural invariant: acyclic, every edge lands on an existing output and a
    /// declared input slot at most once, required inputs present (via inference), declared types
    /// equal inferred ones, value names unique, outputs exist; recursively for subgraphs.
    pub fn verify(&self) -> Result<(), GraphError> {
        let order = self.topo_order()?;
        let mut names = std::collections::HashSet::new();
        for &id in &order {
            let node = &self.g[id];
            for o in &node.outputs {
                if !names.insert(o.name.as_str()) {
                    return Err(GraphError::DuplicateName(o.name.clone()));
                }
            }
            let mut seen = vec![0usize; node.num_inputs];
            for e in self.g.edges_directed(id, Direction::Incoming) {
                let p = e.weight();
                if p.input >= node.num_inputs || p.output >= self.g[e.source()].outputs.len() {
                    return Err(GraphError::Dangling { node: node.name.clone(), input: p.input });
                }
                seen[p.input] += 1;
            }
            if let Some((input, &count)) = seen.iter().enumerate().find(|(_, &c)| c > 1) {
                return Err(GraphError::MultipleEdges { node: node.name.clone(), input, count });
            }
            if !matches!(node.op, Op::Input | Op::Constant(_)) {
                let inferred = self.infer_with(&node.name, &node.op, &self.node_inputs(id), node.outputs.len())?;
                for (output, (o, t)) in node.outputs.iter().zip(inferred).enumerate() {
                    if o.ty != t {
                        return Err(GraphError::TypeMismatch {
                            node: node.name.clone(),
                            output,
                            declared: o.ty.clone(),
                            inferred: t,
                        });
                    }
                }
            }
            for sub in node.op.subgraphs() {
                sub.verify().map_err(|e| GraphError::Subgraph { node: node.name.clone(), source: Box::new(e) })?;
            }
        }
        for (i, &o) in self.outputs.iter().enumerate() {
            if !self.value_exists(o) {
                return Err(GraphError::DanglingOutput(i));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::op::{Binary, Unary};
    use crate::DType;

    fn small() -> (Graph, ValueRef) {
        let mut g = Graph::new("t");
        let x = g.add_input("x", TensorType::new(DType::F32, [Dim::from("n"), Dim::from(4)]));
        let b = g.add_const("b", Tensor::vector(vec![1.0f32; 4]));
        let y = g.add("y", Op::Binary(Binary::Add), &[x, b]).unwrap();
        let z = g.add("z", Op::Unary(Unary::Relu), &[y]).unwrap();
        g.set_outputs(vec![z]);
        (g, z)
    }

    #[test]
    fn builds_infers_and_verifies() {
        let (g, z) = small();
        assert_eq!(g.value_type(z).to_string(), "f32[n,4]");
        g.verify().unwrap();
        assert_eq!(g.topo_order().unwrap().len(), 4);
    }

    #[test]
    fn bad_nodes_are_rejected() {
        let (mut g, z) = small();
        let wrong = g.add_const("w", Tensor::vector(vec![1i64; 3]));
        let err = g.add("bad", Op::Binary(Binary::Add), &[z, wrong]).unwrap_err();
        assert!(err.to_string().contains("dtypes differ"), "{err}");
        let dangling = ValueRef { node: z.node, output: 7 };
        assert!(matches!(g.add("d", Op::Identity, &[dangling]), Err(GraphError::Dangling { .. })));
    }

    #[test]
    fn binding_dims_and_dead_code() {
        let (mut g, z) = small();
        g.add("unused", Op::Unary(Unary::Exp), &[z]).unwrap();
        assert_eq!(g.remove_dead(), 1);
        g.bind_dims(&HashMap::from([("n".to_string(), 2)])).unwrap();
        assert_eq!(g.value_type(z).to_string(), "f32[2,4]");
        assert_eq!(g.input_symbols(), Vec::<String>::new());
    }

    #[test]
    fn verifier_catches_cycles_and_type_drift() {
        let (mut g, z) = small();
        g.node_mut(z.node).outputs[0].ty = TensorType::known(DType::F32, &[9]);
        assert!(matches!(g.verify(), Err(GraphError::TypeMismatch { .. })));
        let (mut g, z) = small();
        let y = g.node_inputs(z.node)[0].unwrap();
        g.g.add_edge(z.node, y.node, Port { output: 0, input: 1 });
        assert!(matches!(g.verify(), Err(GraphError::Cycle(_))));
    }
}
