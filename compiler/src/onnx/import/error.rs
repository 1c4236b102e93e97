//! [`ImportError`]: everything that can go wrong turning ONNX bytes into a Kiln graph, each variant
//! naming the file, node, value or tensor it concerns.

use kiln_ir::{GraphError, LimitError};
use std::fmt;
use std::path::PathBuf;

/// One operator the importer does not support, as listed in [`ImportError::Unsupported`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsupportedOp {
    pub node: String,
    /// `op_type`, prefixed by `domain::` for non-default domains.
    pub op: String,
    /// The opset the model imports the op's domain at (0: the domain is not imported).
    pub opset: i64,
}

impl fmt::Display for UnsupportedOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "node '{}': {} (opset {})", self.node, self.op, self.opset)
    }
}

/// Why a model could not be imported.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("cannot read '{}': {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("'{origin}' is not a valid ONNX model (truncated or corrupt file?): {message}")]
    Corrupt { origin: String, message: String },
    #[error("'{origin}' is an ONNX model without a graph")]
    NoGraph { origin: String },
    #[error("the model imports no default-domain (ai.onnx) opset")]
    NoOpset,
    #[error("default-domain opset {0} is too old; Kiln supports opset 7 and newer")]
    OldOpset(i64),
    #[error("{} unsupported operator(s):\n{}", .0.len(), list(.0))]
    Unsupported(Vec<UnsupportedOp>),
    #[error("node '{node}' reads value '{value}', which no node, graph input or initializer produces")]
    Dangling { node: String, value: String },
    #[error("the graph has a cycle through node '{node}'")]
    Cycle { node: String },
    #[error("value '{value}' is produced by both node '{first}' and node '{second}'")]
    Redefined { value: String, first: String, second: String },
    #[error("node '{node}' ({op}): {message}")]
    Node { node: String, op: String, message: String },
    #[error("tensor '{name}': {message}")]
    Tensor { name: String, message: String },
    #[error("graph input '{name}': {message}")]
    Input { name: String, message: String },
    /// The model passes a resource limit ([`kiln_ir::Limits`]).
    #[error("node '{node}': {source}")]
    Limit { node: String, source: LimitError },
    #[error("in subgraph '{attr}' of node '{node}': {source}")]
    Subgraph { node: String, attr: String, source: Box<ImportError> },
    /// Invalid attributes, input types or shapes, as the IR's shape rules report them.
    #[error(transparent)]
    Graph(#[from] GraphError),
}

fn list(ops: &[UnsupportedOp]) -> String {
    ops.iter().map(|o| format!("  {o}")).collect::<Vec<_>>().join("\n")
}
