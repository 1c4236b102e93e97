//! A graph drawn as SVG by a layered layout, in pure Rust: each node sits on the row after its
//! deepest producer, rows are ordered by the mean position of each node's producers (one sweep
//! from the inputs down), and edges are curves from a producer's bottom to a consumer's top.
//! Constants (weights) are not drawn; their count is in the caption. Each node can carry a fill
//! colour, a band colour (its fused group) and a tooltip.

use super::escape;
use kiln_ir::{Graph, NodeId, Op};
use std::collections::HashMap;
use std::fmt::Write;

const NODE_W: f64 = 150.0;
const NODE_H: f64 = 26.0;
const GAP_X: f64 = 14.0;
const ROW_H: f64 = 46.0;
const MARGIN: f64 = 10.0;

/// How one node is drawn.
#[derive(Clone, Debug, Default)]
pub struct NodeStyle {
    /// Fill colour (CSS).
    pub fill: String,
    /// A band on the node's left edge: its fused group's colour, if it shares a step.
    pub band: Option<String>,
    /// Extra tooltip lines.
    pub note: String,
}

/// The SVG of `g`, each node styled by `style`.
pub fn draw(g: &Graph, style: &dyn Fn(NodeId) -> NodeStyle) -> Result<String, kiln_ir::GraphError> {
    let order: Vec<NodeId> =
        g.topo_order()?.into_iter().filter(|&id| !matches!(g.node(id).op, Op::Constant(_))).collect();
    let mut row: HashMap<NodeId, usize> = HashMap::new();
    for &id in &order {
        let depth = producers(g, id).filter_map(|p| row.get(&p)).map(|r| r + 1).max().unwrap_or(0);
        row.insert(id, depth);
    }
    let rows = row.values().max().map_or(0, |r| r + 1);
    let mut by_row: Vec<Vec<NodeId>> = vec![Vec::new(); rows];
    for &id in &order {
        by_row[row[&id]].push(id);
    }
    // Position within a row: the mean slot of the node's producers, then first come first.
    let mut slot: HashMap<NodeId, f64> = HashMap::new();
    for nodes in &mut by_row {
        let key = |id: &NodeId| {
            let ps: Vec<f64> = producers(g, *id).filter_map(|p| slot.get(&p).copied()).collect();
            if ps.is_empty() {
                f64::MAX
            } else {
                ps.iter().sum::<f64>() / ps.len() as f64
            }
        };
        let mut keyed: Vec<(f64, usize, NodeId)> = nodes.iter().enumerate().map(|(i, id)| (key(id), i, *id)).collect();
        keyed.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        *nodes = keyed.into_iter().map(|(_, _, id)| id).collect();
        for (i, id) in nodes.iter().enumerate() {
            slot.insert(*id, i as f64);
        }
    }
    let widest = by_row.iter().map(Vec::len).max().unwrap_or(1).max(1) as f64;
    let width = 2.0 * MARGIN + widest * (NODE_W + GAP_X) - GAP_X;
    let height = 2.0 * MARGIN + rows as f64 * ROW_H - (ROW_H - NODE_H);
    let mut pos: HashMap<NodeId, (f64, f64)> = HashMap::new();
    for (r, nodes) in by_row.iter().enumerate() {
        let row_w = nodes.len() as f64 * (NODE_W + GAP_X) - GAP_X;
        let x0 = (width - row_w) / 2.0;
        for (i, id) in nodes.iter().enumerate() {
            pos.insert(*id, (x0 + i as f64 * (NODE_W + GAP_X), MARGIN + r as f64 * ROW_H));
        }
    }
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="graph" width="{width:.0}" height="{height:.0}" viewBox="0 0 {width:.0} {height:.0}">"#
    );
    svg.push_str(r#"<g class="edges" fill="none" stroke="rgb(138,143,152)" stroke-width="1.2">"#);
    for &id in &order {
        let (x, y) = pos[&id];
        for p in producers(g, id) {
            let Some(&(px, py)) = pos.get(&p) else { continue };
            let (x1, y1, x2, y2) = (px + NODE_W / 2.0, py + NODE_H, x + NODE_W / 2.0, y);
            let mid = (y1 + y2) / 2.0;
            let _ = write!(svg, r#"<path d="M{x1:.1},{y1:.1} C{x1:.1},{mid:.1} {x2:.1},{mid:.1} {x2:.1},{y2:.1}"/>"#);
        }
    }
    svg.push_str("</g>");
    for &id in &order {
        let (x, y) = pos[&id];
        let node = g.node(id);
        let s = style(id);
        let label = match &node.op {
            Op::Input => node.name.clone(),
            op => op.onnx_name().to_string(),
        };
        let shown: String =
            if label.chars().count() > 20 { label.chars().take(19).collect::<String>() + "…" } else { label };
        let out_ty = node.outputs.first().map(|o| o.ty.to_string()).unwrap_or_default();
        let _ = write!(
            svg,
            r#"<g class="node"><title>{}&#10;{}&#10;{}{}</title><rect x="{x:.1}" y="{y:.1}" width="{NODE_W}" height="{NODE_H}" rx="5" fill="{}" stroke="rgb(59,63,70)"/>"#,
            escape(&node.name),
            escape(node.op.onnx_name()),
            escape(&out_ty),
            if s.note.is_empty() { String::new() } else { format!("&#10;{}", escape(&s.note)) },
            escape(&s.fill),
        );
        if let Some(band) = &s.band {
            let _ = write!(
                svg,
                r#"<rect x="{x:.1}" y="{y:.1}" width="7" height="{NODE_H}" rx="2" fill="{}"/>"#,
                escape(band)
            );
        }
        let _ = write!(
            svg,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="12">{}</text></g>"#,
            x + NODE_W / 2.0 + 3.0,
            y + NODE_H / 2.0 + 4.0,
            escape(&shown)
        );
    }
    svg.push_str("</svg>");
    Ok(svg)
}

/// The non-constant nodes whose outputs `id` reads.
fn producers(g: &Graph, id: NodeId) -> impl Iterator<Item = NodeId> + '_ {
    g.node_inputs(id).into_iter().flatten().map(|v| v.node).filter(move |&p| !matches!(g.node(p).op, Op::Constant(_)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use kiln_ir::op::{Binary, Unary};
    use kiln_ir::{DType, Dim, TensorType};

    #[test]
    fn every_drawn_node_is_a_box_below_its_producers_and_constants_are_left_out() {
        let mut g = Graph::new("m");
        let x = g.add_input("x", TensorType::new(DType::F32, [Dim::from(2), Dim::from(3)]));
        let w = g.add_const("w", kiln_ir::Tensor::vector(vec![1.0f32, 2.0, 3.0]));
        let a = g.add("a", Op::Unary(Unary::Relu), &[x]).unwrap();
        let b = g.add("b<&>", Op::Binary(Binary::Add), &[a, w]).unwrap();
        g.set_outputs(vec![b]);
        let svg = draw(&g, &|_| NodeStyle { fill: "#fff".into(), ..Default::default() }).unwrap();
        assert_eq!(svg.matches("<g class=\"node\">").count(), 3, "x, a, b; not the constant w");
        assert_eq!(svg.matches("<path").count(), 2, "x→a and a→b");
        assert!(svg.contains("b&lt;&amp;&gt;"), "names are escaped");
        let ys: Vec<f64> = svg
            .match_indices("<rect x=")
            .map(|(i, _)| {
                let rest = &svg[i..];
                let y = &rest[rest.find("y=\"").unwrap() + 3..];
                y[..y.find('"').unwrap()].parse().unwrap()
            })
            .collect();
        assert!(ys.windows(2).all(|w| w[0] < w[1]), "a chain is drawn top to bottom: {ys:?}");
    }
}
