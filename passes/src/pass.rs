//! The interface every pass implements, the statistics it reports and the crate's error type.

use kiln_ir::{Graph, GraphError};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A graph-to-graph rewrite. Passes edit the graph in place and report what they did.
pub trait Pass {
    /// A short kebab-case name (`constant-fold`), used in stats and error messages.
    fn name(&self) -> &'static str;
    fn run(&self, g: &mut Graph) -> Result<PassStats, PassError>;
}

/// What one pass run changed. Node counts include nodes of nested graphs.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PassStats {
    pub pass: String,
    pub nodes_before: usize,
    pub nodes_after: usize,
    /// Counts by kind of change, e.g. `{"folded": 3, "skipped_too_large": 1}`.
    pub changes: BTreeMap<String, usize>,
    /// Nodes per ONNX op type before and after (graph inputs not counted; nested graphs counted).
    #[serde(default)]
    pub ops_before: BTreeMap<String, usize>,
    #[serde(default)]
    pub ops_after: BTreeMap<String, usize>,
    /// Wall-clock time of the pass in milliseconds (set by the [`crate::PassManager`]).
    #[serde(default)]
    pub millis: f64,
    /// E-graph passes: size, iterations, rules fired, costs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub egraph: Option<crate::egraph::EGraphReport>,
}

impl PassStats {
    /// Stats for `pass` about to run on `g` (records the node count before).
    pub fn start(pass: &str, g: &Graph) -> PassStats {
        PassStats {
            pass: pass.to_string(),
            nodes_before: count_nodes(g),
            ops_before: count_ops(g),
            ..Default::default()
        }
    }

    /// Records the node count after the pass.
    pub fn finish(mut self, g: &Graph) -> PassStats {
        self.nodes_after = count_nodes(g);
        self.ops_after = count_ops(g);
        self
    }

    /// Adds `n` to the count of changes of `kind` (zero counts are not recorded).
    pub fn record(&mut self, kind: &str, n: usize) {
        if n > 0 {
            *self.changes.entry(kind.to_string()).or_default() += n;
        }
    }
}

/// Nodes in a graph and, recursively, in every nested graph.
pub fn count_nodes(g: &Graph) -> usize {
    g.node_ids().iter().map(|&id| 1 + g.node(id).op.subgraphs().into_iter().map(count_nodes).sum::<usize>()).sum()
}

/// Nodes per ONNX op type, in a graph and its nested graphs (graph inputs are not ops).
pub fn count_ops(g: &Graph) -> BTreeMap<String, usize> {
    let mut ops = BTreeMap::new();
    fn walk(g: &Graph, ops: &mut BTreeMap<String, usize>) {
        for id in g.node_ids() {
            let op = &g.node(id).op;
            if !matches!(op, kiln_ir::Op::Input) {
                *ops.entry(op.onnx_name().to_string()).or_default() += 1;
            }
            for sub in op.subgraphs() {
                walk(sub, ops);
            }
        }
    }
    walk(g, &mut ops);
    ops
}

/// Why a pass run failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PassError {
    /// The graph given to the manager was already malformed.
    #[error("the input graph does not verify: {0}")]
    InvalidInput(GraphError),
    /// A pass left the graph malformed: a bug in that pass.
    #[error("graph does not verify after pass '{pass}': {source}")]
    Verify { pass: String, source: GraphError },
    /// A pass could not complete an edit.
    #[error("pass '{pass}' failed: {source}")]
    Graph { pass: String, source: GraphError },
}
