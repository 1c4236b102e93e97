//! [`ExecError`]: why running a graph failed — bad inputs, a failing kernel (naming node and op),
//! a passed resource limit, or a malformed graph.

use kiln_ir::{GraphError, LimitError};

/// Why a graph (or one node) could not be run.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ExecError {
    /// The caller passed the wrong number of inputs.
    #[error("graph '{graph}' takes {expected} inputs but {got} were given")]
    InputCount { graph: String, expected: usize, got: usize },
    /// An input's dtype, rank or a known dim disagrees with the graph's declared input type.
    #[error("input '{input}' expects {expected} but got {got}: {message}")]
    InputMismatch { input: String, expected: String, got: String, message: String },
    /// A kernel failed (shape mismatch at run time, bad index, unsupported attribute, ...).
    #[error("{}: {message}", label(.node, .op))]
    Kernel { node: String, op: String, message: String },
    /// A resource limit ([`kiln_ir::Limits`]) was passed while running this node.
    #[error("{}: {source}", label(.node, .op))]
    Limit { node: String, op: String, source: LimitError },
    /// The graph itself is malformed (e.g. a cycle).
    #[error(transparent)]
    Graph(#[from] GraphError),
}

/// `node 'conv1' (Conv)`, or just `Conv` when the node is unknown (single-op evaluation).
fn label(node: &str, op: &str) -> String {
    if node.is_empty() {
        op.to_string()
    } else {
        format!("node '{node}' ({op})")
    }
}
