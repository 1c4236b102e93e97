//! The stable, readable text form of a graph (for dumps and golden tests) and Graphviz DOT.
//!
//! ```text
//! graph main(%x: f32[n,4]) -> (%z) {
//!   %b = Constant f32[4] [1, 1, 1, 1]
//!   %y = Add(%x, %b) : f32[n,4]
//!   %z = Relu(%y) : f32[n,4]
//! }
//! ```

use crate::graph::{Graph, NodeId};
use crate::op::Op;
use crate::{with_array, Tensor};
use std::fmt::Write;

/// Renders a graph, nodes in topological order (insertion order where the graph has a cycle).
pub fn to_text(g: &Graph) -> String {
    let mut out = String::new();
    write_graph(g, 0, &mut out);
    out
}

fn write_graph(g: &Graph, indent: usize, out: &mut String) {
    let pad = "  ".repeat(indent);
    let inputs: Vec<String> =
        g.input_values().iter().map(|&v| format!("%{}: {}", g.value_name(v), g.value_type(v))).collect();
    let outputs: Vec<String> = g.outputs().iter().map(|&v| format!("%{}", g.value_name(v))).collect();
    let _ = writeln!(out, "{pad}graph {}({}) -> ({}) {{", g.name, inputs.join(", "), outputs.join(", "));
    let order = g.topo_order().unwrap_or_else(|_| g.node_ids());
    for id in order {
        write_node(g, id, indent + 1, out);
    }
    let _ = writeln!(out, "{pad}}}");
}

fn write_node(g: &Graph, id: NodeId, indent: usize, out: &mut String) {
    let node = g.node(id);
    if matches!(node.op, Op::Input) {
        return;
    }
    let pad = "  ".repeat(indent);
    let results: Vec<String> = node.outputs.iter().map(|o| format!("%{}", o.name)).collect();
    let lhs = results.join(", ");
    if let Op::Constant(t) = &node.op {
        let _ = writeln!(out, "{pad}{lhs} = Constant {}", tensor_summary(t));
        return;
    }
    let args: Vec<String> = g
        .node_inputs(id)
        .iter()
        .map(|v| v.map_or_else(|| "_".to_string(), |v| format!("%{}", g.value_name(v))))
        .collect();
    let types: Vec<String> = node.outputs.iter().map(|o| o.ty.to_string()).collect();
    let named = if node.name != node.outputs.first().map_or("", |o| o.name.as_str()) {
        format!("  # {}", node.name)
    } else {
        String::new()
    };
    let _ = writeln!(out, "{pad}{lhs} = {}({}) : {}{named}", op_label(&node.op), args.join(", "), types.join(", "));
    for sub in node.op.subgraphs() {
        write_graph(sub, indent + 1, out);
    }
}

/// The op name with its attributes, e.g. `Conv{group: 1, strides: [2, 2], ...}`.
pub fn op_label(op: &Op) -> String {
    let debug = match op {
        Op::If { .. } => String::new(),
        Op::Loop(l) => format!("{{num_captures: {}}}", l.num_captures),
        Op::Scan(s) => format!("{{num_scan_inputs: {}, num_captures: {}}}", s.num_scan_inputs, s.num_captures),
        Op::ConstantOfShape { value } => format!("{{value: {}}}", tensor_summary(value)),
        other => attrs_of(other),
    };
    format!("{}{}", op.onnx_name(), debug)
}

/// The attribute part of an op's Debug form (`Conv(Conv { .. })` → `{ .. }`).
fn attrs_of(op: &Op) -> String {
    let d = format!("{op:?}");
    match d.find(['(', '{']) {
        None => String::new(),
        Some(i) => {
            let inner = &d[i..];
            let inner = inner.strip_prefix('(').and_then(|s| s.strip_suffix(')')).unwrap_or(inner);
            if inner.chars().all(|c| c.is_alphanumeric() || c == '_') {
                // A bare variant (`Binary(Add)`): the op name already says it.
                return String::new();
            }
            match inner.find('{') {
                Some(j) if inner[..j].chars().all(|c| c.is_alphanumeric() || c == ' ' || c == '_') => {
                    format!("{{{}}}", inner[j + 1..inner.len() - 1].trim())
                }
                _ => format!("{{{}}}", inner.trim()),
            }
        }
    }
}

/// `f32[2,2] [1, 2, 3, 4]`, eliding long data as `[1, 2, 3, … (1000 values)]`.
pub fn tensor_summary(t: &Tensor) -> String {
    let head: Vec<String> = with_array!(t, a => a.iter().take(8).map(|v| format!("{v:?}")).collect());
    let more = if t.len() > 8 { format!(", … ({} values)", t.len()) } else { String::new() };
    format!("{} [{}{more}]", t.tensor_type(), head.join(", "))
}

/// Graphviz DOT: one box per op, one edge per value use, labelled with the value's type.
pub fn to_dot(g: &Graph) -> String {
    let mut out = String::from("digraph kiln {\n  rankdir=TB;\n  node [shape=box, fontname=\"monospace\"];\n");
    let esc = |s: &str| s.replace('\\', "\\\\").replace('"', "\\\"");
    for id in g.node_ids() {
        let node = g.node(id);
        let (label, shape) = match &node.op {
            Op::Input => (format!("{}\\n{}", esc(&node.name), node.outputs[0].ty), "ellipse"),
            Op::Constant(t) => (format!("{}\\n{}", esc(&node.name), t.tensor_type()), "note"),
            op => (format!("{}\\n{}", op.onnx_name(), esc(&node.name)), "box"),
        };
        let _ = writeln!(out, "  n{} [label=\"{label}\", shape={shape}];", id.index());
    }
    for id in g.node_ids() {
        for v in g.node_inputs(id).into_iter().flatten() {
            let _ = writeln!(out, "  n{} -> n{} [label=\"{}\"];", v.node.index(), id.index(), g.value_type(v));
        }
    }
    for (i, &o) in g.outputs().iter().enumerate() {
        let _ = writeln!(
            out,
            "  out{i} [label=\"{}\", shape=ellipse];\n  n{} -> out{i};",
            esc(g.value_name(o)),
            o.node.index()
        );
    }
    out.push_str("}\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::op::{Binary, Unary};
    use crate::{DType, Dim, TensorType};

    #[test]
    fn golden_text() {
        let mut g = Graph::new("main");
        let x = g.add_input("x", TensorType::new(DType::F32, [Dim::from("n"), Dim::from(4)]));
        let b = g.add_const("b", Tensor::vector(vec![1.0f32; 4]));
        let y = g.add("y", Op::Binary(Binary::Add), &[x, b]).unwrap();
        let z = g.add("z", Op::Unary(Unary::LeakyRelu { alpha: 0.5 }), &[y]).unwrap();
        g.set_outputs(vec![z]);
        let want = "graph main(%x: f32[n,4]) -> (%z) {\n  %b = Constant f32[4] [1.0, 1.0, 1.0, 1.0]\n  %y = Add(%x, %b) : f32[n,4]\n  %z = LeakyRelu{alpha: 0.5}(%y) : f32[n,4]\n}\n";
        assert_eq!(to_text(&g), want);
        assert!(to_dot(&g).contains("-> n"));
    }
}
