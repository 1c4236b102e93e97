//! IR → e-graph → IR. Every node becomes an e-node (ops owning nested graphs are kept whole, each
//! equal only to itself); a multi-output node becomes one tuple e-node read through
//! [`ENode::Get`]. Translating back rebuilds a fresh graph from the extracted choice: graph inputs
//! and outputs keep their names and order, values keep their original names where their class
//! had one, and new values get fresh names derived from it.

use super::analysis::{EGraph, TensorAnalysis};
use super::cost::Extraction;
use super::lang::{ENode, OpKey};
use crate::fold::Evaluator;
use egg::Id;
use kiln_ir::{Graph, GraphError, NodeId, Op, TensorType, ValueRef};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// A graph in an e-graph, with what is needed to translate it back.
pub struct Translation {
    /// The graph output classes, in order.
    pub roots: Vec<Id>,
    graph_name: String,
    inputs: Vec<(String, TensorType)>,
    output_names: Vec<String>,
    /// Original value names by class, in topological order of the original graph.
    names: Vec<(Id, String)>,
    /// Original output names of multi-output ops, by tuple class.
    tuple_names: Vec<(Id, Vec<String>)>,
}

/// Extra outputs of these ops are optional: when nobody reads them they are dropped.
fn optional_extra_outputs(op: &Op) -> bool {
    matches!(op, Op::Dropout | Op::Pool(_) | Op::LayerNorm { .. })
}

/// Builds the e-graph of `g` (not of its nested graphs).
pub fn to_egraph(g: &Graph, evaluator: Arc<dyn Evaluator>) -> Result<(EGraph, Translation), GraphError> {
    let inputs: Vec<(String, TensorType)> =
        g.input_values().iter().map(|&v| (g.value_name(v).to_string(), g.value_type(v).clone())).collect();
    let analysis = TensorAnalysis::new(evaluator, inputs.iter().map(|(_, t)| t.clone()).collect());
    let mut eg = EGraph::new(analysis);
    let input_index: HashMap<NodeId, u32> = g.inputs().iter().enumerate().map(|(i, &n)| (n, i as u32)).collect();
    let outputs: HashSet<ValueRef> = g.outputs().iter().copied().collect();
    let mut map: HashMap<ValueRef, Id> = HashMap::new();
    let mut small_consts: HashMap<String, Id> = HashMap::new();
    let mut names = Vec::new();
    let mut tuple_names = Vec::new();
    let absent = eg.add(ENode::Absent);
    for id in g.topo_order()? {
        let node = g.node(id);
        let first = ValueRef::first(id);
        let class = match &node.op {
            Op::Input => eg.add(ENode::Input(input_index[&id])),
            Op::Constant(t) if t.len() <= 16 => {
                let key = format!("{t:?}");
                match small_consts.get(&key) {
                    Some(&c) => c,
                    None => {
                        let c = eg.analysis.constant(t.clone());
                        let c = eg.add(c);
                        small_consts.insert(key, c);
                        c
                    }
                }
            }
            Op::Constant(t) => {
                let c = eg.analysis.constant(t.clone());
                eg.add(c)
            }
            op => {
                let children: Vec<Id> = g.node_inputs(id).into_iter().map(|v| v.map_or(absent, |v| map[&v])).collect();
                let used = |k: usize| {
                    let v = ValueRef { node: id, output: k };
                    outputs.contains(&v) || !g.consumers(v).is_empty()
                };
                let mut count = node.outputs.len();
                if count > 1 && optional_extra_outputs(op) && !(1..count).any(used) {
                    count = 1;
                }
                let key = if op.subgraphs().is_empty() {
                    OpKey::with_outputs(op.clone(), count)
                } else {
                    OpKey::unique(op.clone(), count, id.index())
                };
                let class = eg.add(ENode::Op(key, children.into_boxed_slice()));
                if count > 1 {
                    tuple_names.push((class, node.outputs.iter().map(|o| o.name.clone()).collect()));
                    for k in 0..count {
                        let get = eg.add(ENode::Get(k as u32, [class]));
                        map.insert(ValueRef { node: id, output: k }, get);
                        names.push((get, node.outputs[k].name.clone()));
                    }
                    continue;
                }
                class
            }
        };
        map.insert(first, class);
        names.push((class, node.outputs[0].name.clone()));
    }
    eg.rebuild();
    let roots = g.outputs().iter().map(|v| map[v]).collect();
    let output_names = g.outputs().iter().map(|&v| g.value_name(v).to_string()).collect();
    Ok((eg, Translation { roots, graph_name: g.name.clone(), inputs, output_names, names, tuple_names }))
}

/// A value being rebuilt.
#[derive(Clone, Copy)]
enum Built {
    Value(ValueRef),
    Tuple(NodeId),
    Absent,
}

struct Builder<'a> {
    eg: &'a EGraph,
    choice: &'a HashMap<Id, ENode>,
    g: Graph,
    inputs: Vec<ValueRef>,
    built: HashMap<Id, Built>,
    /// Names reserved for classes (graph outputs first, then original names).
    reserved: HashMap<Id, String>,
    tuple_names: HashMap<Id, Vec<String>>,
    used: HashSet<String>,
    fresh: usize,
}

impl Builder<'_> {
    fn fresh_name(&mut self, base: &str) -> String {
        loop {
            self.fresh += 1;
            let name = format!("{base}_k{}", self.fresh);
            if self.used.insert(name.clone()) {
                return name;
            }
        }
    }

    /// The name a class's value gets: its reserved name the first time, else a fresh one.
    fn name_for(&mut self, class: Id) -> String {
        match self.reserved.remove(&class) {
            Some(name) => name,
            None => self.fresh_name("v"),
        }
    }

    fn build(&mut self, class: Id) -> Result<Built, GraphError> {
        let class = self.eg.find(class);
        if let Some(&b) = self.built.get(&class) {
            return Ok(b);
        }
        let node = self.choice.get(&class).ok_or(GraphError::Cycle(format!("e-class {class}")))?.clone();
        let built = match node {
            ENode::Input(k) => Built::Value(self.inputs[k as usize]),
            ENode::Absent => Built::Absent,
            ENode::Const(c) => {
                let name = self.name_for(class);
                Built::Value(self.g.add_const(name, c.value))
            }
            ENode::Get(k, [t]) => match self.build(t)? {
                Built::Tuple(node) => Built::Value(ValueRef { node, output: k as usize }),
                _ => return Err(GraphError::Cycle(format!("e-class {class} reads an output of a non-tuple"))),
            },
            ENode::Op(key, children) => {
                let mut ins = Vec::with_capacity(children.len());
                for &c in children.iter() {
                    ins.push(match self.build(c)? {
                        Built::Value(v) => Some(v),
                        Built::Absent => None,
                        Built::Tuple(_) => return Err(GraphError::Cycle(format!("e-class {c} is a tuple"))),
                    });
                }
                if key.outputs() == 1 {
                    let name = self.name_for(class);
                    let id = self.g.add_node(name.clone(), key.op().clone(), &ins, &[name])?;
                    Built::Value(ValueRef::first(id))
                } else {
                    let wanted = self.tuple_names.remove(&class).unwrap_or_default();
                    let mut names = Vec::with_capacity(key.outputs());
                    for k in 0..key.outputs() {
                        match wanted.get(k) {
                            Some(n) if self.used.insert(n.clone()) => names.push(n.clone()),
                            _ => names.push(self.fresh_name("t")),
                        }
                    }
                    Built::Tuple(self.g.add_node(names[0].clone(), key.op().clone(), &ins, &names)?)
                }
            }
        };
        self.built.insert(class, built);
        Ok(built)
    }
}

impl Translation {
    /// Rebuilds a graph from an extraction of this e-graph.
    pub fn to_graph(&self, eg: &EGraph, ext: &Extraction) -> Result<Graph, GraphError> {
        let mut g = Graph::new(self.graph_name.clone());
        let inputs = self.inputs.iter().map(|(n, t)| g.add_input(n.clone(), t.clone())).collect();
        let mut used: HashSet<String> = self.inputs.iter().map(|(n, _)| n.clone()).collect();
        used.extend(self.output_names.iter().cloned());
        let mut reserved = HashMap::new();
        for (&r, name) in self.roots.iter().zip(&self.output_names) {
            reserved.entry(eg.find(r)).or_insert_with(|| name.clone());
        }
        for (c, name) in &self.names {
            let c = eg.find(*c);
            if !reserved.contains_key(&c) && ext.choice.contains_key(&c) && used.insert(name.clone()) {
                reserved.insert(c, name.clone());
            }
        }
        let tuple_names = self.tuple_names.iter().map(|(c, n)| (eg.find(*c), n.clone())).collect();
        let mut b = Builder {
            eg,
            choice: &ext.choice,
            g,
            inputs,
            built: HashMap::new(),
            reserved,
            tuple_names,
            used,
            fresh: 0,
        };
        let mut outs = Vec::with_capacity(self.roots.len());
        for (&r, name) in self.roots.iter().zip(&self.output_names) {
            let v = match b.build(r)? {
                Built::Value(v) => v,
                _ => return Err(GraphError::DanglingOutput(outs.len())),
            };
            let v = if b.g.value_name(v) == name.as_str() { v } else { b.g.add(name, Op::Identity, &[v])? };
            outs.push(v);
        }
        b.g.set_outputs(outs);
        Ok(b.g)
    }
}
