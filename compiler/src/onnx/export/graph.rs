//! The graph walk: names every value (keeping the IR's names; renaming only what would shadow an
//! enclosing graph's value), writes constants as initializers and inputs/outputs as value infos,
//! and hands every other node to the op registry. Nested graphs are written through the same
//! walk: their capture inputs are dropped and reads of them become references to the outer
//! names again; constants the importer shared into a body from an enclosing graph are referenced,
//! not duplicated.

use super::ops;
use super::tensor::{tensor_proto, value_info};
use super::ExportError;
use kiln_ir::{Graph, NodeId, Op, Tensor, TensorType, ValueRef};
use onnx_protobuf::{AttributeProto, GraphProto, NodeProto};
use std::collections::{HashMap, HashSet};

/// The names a graph can see, each with its constant value when it is an initializer.
pub(super) type Scope<'g> = HashMap<String, Option<&'g Tensor>>;

/// State shared by the whole model's export: every name in use, so fresh names never collide.
pub(super) struct Writer {
    taken: HashSet<String>,
}

impl Writer {
    pub(super) fn new(g: &Graph) -> Writer {
        fn collect(g: &Graph, taken: &mut HashSet<String>) {
            for id in g.node_ids() {
                let node = g.node(id);
                taken.insert(node.name.clone());
                taken.extend(node.outputs.iter().map(|o| o.name.clone()));
                node.op.subgraphs().into_iter().for_each(|s| collect(s, taken));
            }
        }
        let mut taken = HashSet::new();
        collect(g, &mut taken);
        Writer { taken }
    }

    /// A name not used anywhere in the model, derived from `base`.
    pub(super) fn fresh(&mut self, base: &str) -> String {
        let name = (0..).map(|i| format!("{base}__{i}")).find(|n| !self.taken.contains(n)).expect("unbounded");
        self.taken.insert(name.clone());
        name
    }

    /// Writes `g`. `outer` is what enclosing graphs define; `captures` are the outer names that
    /// `g`'s trailing capture inputs stand for, in order.
    pub(super) fn graph<'g>(
        &mut self,
        g: &'g Graph,
        outer: &Scope<'g>,
        captures: &[String],
    ) -> Result<GraphProto, ExportError> {
        let graph_error = |message: String| ExportError::Graph { graph: g.name.clone(), message };
        let order = g.topo_order().map_err(|e| graph_error(e.to_string()))?;
        let first_capture =
            g.inputs().len().checked_sub(captures.len()).ok_or_else(|| {
                graph_error(format!("{} captures but only {} inputs", captures.len(), g.inputs().len()))
            })?;
        let captured: HashMap<NodeId, &String> = g.inputs()[first_capture..].iter().copied().zip(captures).collect();

        // Name every value first, so nested graphs see this graph's whole scope.
        let mut scope = outer.clone();
        let mut names: HashMap<ValueRef, String> = HashMap::new();
        let mut shared: HashSet<NodeId> = HashSet::new();
        for &id in &order {
            let node = g.node(id);
            let constant = match &node.op {
                Op::Constant(t) => Some(t),
                _ => None,
            };
            if let Some(&outer_name) = captured.get(&id) {
                names.insert(ValueRef::first(id), outer_name.clone());
                continue;
            }
            if let (Some(t), Some(Some(outer_t))) = (constant, outer.get(&node.outputs[0].name)) {
                if *outer_t == t {
                    shared.insert(id);
                    names.insert(ValueRef::first(id), node.outputs[0].name.clone());
                    continue;
                }
            }
            for (output, o) in node.outputs.iter().enumerate() {
                let name = if outer.contains_key(&o.name) { self.fresh(&o.name) } else { o.name.clone() };
                scope.insert(name.clone(), constant);
                names.insert(ValueRef { node: id, output }, name);
            }
        }

        let mut proto = GraphProto { name: g.name.clone(), ..Default::default() };
        for &id in &g.inputs()[..first_capture] {
            let v = ValueRef::first(id);
            proto.input.push(value_info(&names[&v], g.value_type(v)));
        }
        for &id in &order {
            let node = g.node(id);
            match &node.op {
                Op::Input => {}
                Op::Constant(_) if shared.contains(&id) => {}
                Op::Constant(t) => proto.initializer.push(tensor_proto(&names[&ValueRef::first(id)], t)),
                op => {
                    let ins = g.node_inputs(id);
                    let mut cx = NodeCx {
                        name: &node.name,
                        op,
                        inputs: ins.iter().map(|v| v.map_or_else(String::new, |v| names[&v].clone())).collect(),
                        input_types: ins.iter().map(|v| v.map(|v| g.value_type(v).clone())).collect(),
                        outputs: (0..node.outputs.len())
                            .map(|output| names[&ValueRef { node: id, output }].clone())
                            .collect(),
                        nodes: Vec::new(),
                        scope: &scope,
                        writer: self,
                    };
                    ops::export(&mut cx)?;
                    proto.node.extend(cx.nodes);
                }
            }
        }
        for (i, &v) in g.outputs().iter().enumerate() {
            let mut name =
                names.get(&v).cloned().ok_or_else(|| graph_error(format!("output {i} refers to a removed value")))?;
            if captured.contains_key(&v.node) || shared.contains(&v.node) {
                // A body output must be produced inside the body: copy the outer value in.
                let copy = self.fresh(&name);
                proto.node.push(node_proto(
                    "Identity",
                    self.fresh(&format!("{name}_copy")),
                    vec![name],
                    vec![copy.clone()],
                    vec![],
                ));
                name = copy;
            }
            proto.output.push(value_info(&name, g.value_type(v)));
        }
        Ok(proto)
    }
}

/// A `NodeProto` in the default domain; trailing absent inputs are dropped.
fn node_proto(
    op_type: &str,
    name: String,
    mut inputs: Vec<String>,
    outputs: Vec<String>,
    attribute: Vec<AttributeProto>,
) -> NodeProto {
    while inputs.last().is_some_and(String::is_empty) {
        inputs.pop();
    }
    NodeProto { op_type: op_type.to_string(), name, input: inputs, output: outputs, attribute, ..Default::default() }
}

/// One IR node being exported: its ONNX-side names, and where its ONNX nodes go.
pub(super) struct NodeCx<'a, 'g> {
    pub name: &'g str,
    pub op: &'g Op,
    /// Input names by slot (`""` for absent optional inputs), captures included.
    pub inputs: Vec<String>,
    pub input_types: Vec<Option<TensorType>>,
    pub outputs: Vec<String>,
    pub nodes: Vec<NodeProto>,
    scope: &'a Scope<'g>,
    writer: &'a mut Writer,
}

impl<'g> NodeCx<'_, 'g> {
    pub fn error(&self, message: impl Into<String>) -> ExportError {
        ExportError::Node { node: self.name.to_string(), op: self.op.onnx_name().to_string(), message: message.into() }
    }

    /// Emits the node that produces this IR node's outputs, under its name.
    pub fn emit_main(&mut self, op_type: &str, inputs: Vec<String>, attrs: Vec<AttributeProto>) {
        let node = node_proto(op_type, self.name.to_string(), inputs, self.outputs.clone(), attrs);
        self.nodes.push(node);
    }

    /// Emits a helper node of a lowered sequence, returning its (fresh) output name.
    pub fn emit_helper(
        &mut self,
        op_type: &str,
        what: &str,
        inputs: Vec<String>,
        attrs: Vec<AttributeProto>,
    ) -> String {
        let out = self.writer.fresh(&format!("{}_{what}", self.name));
        let node = node_proto(op_type, out.clone(), inputs, vec![out.clone()], attrs);
        self.nodes.push(node);
        out
    }

    /// Writes a nested graph whose last `num_captures` inputs are this node's last `num_captures`
    /// inputs.
    pub fn subgraph(&mut self, g: &'g Graph, num_captures: usize) -> Result<GraphProto, ExportError> {
        let first = self
            .inputs
            .len()
            .checked_sub(num_captures)
            .ok_or_else(|| self.error(format!("{num_captures} captures but only {} inputs", self.inputs.len())))?;
        let captures = self.inputs[first..].to_vec();
        self.writer.graph(g, self.scope, &captures)
    }

    /// The node's inputs without its trailing `num_captures` captures.
    pub fn inputs_without_captures(&self, num_captures: usize) -> Vec<String> {
        self.inputs[..self.inputs.len().saturating_sub(num_captures)].to_vec()
    }
}
