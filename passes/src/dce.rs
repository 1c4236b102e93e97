//! Dead-code elimination: removes every node no graph output needs, in nested graphs too.

use crate::pass::{Pass, PassError, PassStats};
use kiln_ir::Graph;

/// Removes nodes whose values no graph output depends on. Graph inputs are kept (they are the
/// graph's interface), as are the inputs of nested graphs.
#[derive(Clone, Copy, Debug, Default)]
pub struct DeadCode;

impl Pass for DeadCode {
    fn name(&self) -> &'static str {
        "dead-code"
    }

    fn run(&self, g: &mut Graph) -> Result<PassStats, PassError> {
        let mut stats = PassStats::start(self.name(), g);
        stats.record("removed", remove_dead_recursive(g));
        Ok(stats.finish(g))
    }
}

/// Removes dead nodes from `g`, then from the nested graphs of the nodes that survive.
fn remove_dead_recursive(g: &mut Graph) -> usize {
    let mut removed = g.remove_dead();
    for id in g.node_ids() {
        for sub in g.node_mut(id).op.subgraphs_mut() {
            removed += remove_dead_recursive(sub);
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;
    use kiln_ir::op::{Binary, Loop, Unary};
    use kiln_ir::{DType, Op, Tensor, TensorType};

    #[test]
    fn removes_unneeded_nodes_at_every_level() {
        let mut body = Graph::new("body");
        let _iter = body.add_input("i", TensorType::scalar(DType::I64));
        let cond = body.add_input("c", TensorType::scalar(DType::Bool));
        let v = body.add_input("v", TensorType::known(DType::F32, &[2]));
        let w = body.add("w", Op::Unary(Unary::Neg), &[v]).unwrap();
        body.add("w_dead", Op::Unary(Unary::Exp), &[v]).unwrap();
        body.set_outputs(vec![cond, w]);

        let mut g = Graph::new("t");
        let x = g.add_input("x", TensorType::known(DType::F32, &[2]));
        let unused = g.add_input("unused", TensorType::known(DType::F32, &[2]));
        let m = g.add_const("m", Tensor::scalar(3i64));
        let c = g.add_const("cond", Tensor::scalar(true));
        let lp = Op::Loop(Loop { body, num_captures: 0 });
        let id = g.add_node("loop", lp, &[Some(m), Some(c), Some(x)], &["out".to_string()]).unwrap();
        let dead = g.add("dead", Op::Binary(Binary::Add), &[x, unused]).unwrap();
        g.add("dead2", Op::Unary(Unary::Relu), &[dead]).unwrap();
        g.set_outputs(vec![kiln_ir::ValueRef::first(id)]);

        let stats = DeadCode.run(&mut g).unwrap();
        g.verify().unwrap();
        assert_eq!(stats.changes.get("removed"), Some(&3));
        assert_eq!(stats.nodes_before - stats.nodes_after, 3);
        assert!(g.find_value("dead").is_none() && g.find_value("dead2").is_none());
        assert!(g.find_value("unused").is_some(), "graph inputs are the interface and stay");
        let Op::Loop(l) = &g.node(id).op else { panic!("the loop stays") };
        assert!(l.body.find_value("w_dead").is_none() && l.body.find_value("w").is_some());
    }
}
