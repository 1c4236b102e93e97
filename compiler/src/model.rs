//! A loaded model: the IR graph plus the ONNX metadata needed to report on it and export it again.

use kiln_ir::Graph;

/// A model as Kiln holds it after import.
#[derive(Clone, Debug)]
pub struct Model {
    pub graph: Graph,
    /// The default-domain opset the model was written for.
    pub opset: i64,
    pub ir_version: i64,
    pub producer: String,
}
