//! ONNX export: a [`Model`] → an ONNX `ModelProto` at one target opset ([`TARGET_OPSET`] of the
//! default domain, `ir_version` [`IR_VERSION`]), since the IR's semantics are the newest opset's.
//!
//! - `graph`: the graph walk (names, initializers, inputs/outputs, nested graphs and captures);
//! - `ops`: the registry mapping each op to op type + attributes + inputs, and lowerings;
//! - `tensor`: tensors → `TensorProto` (little-endian `raw_data`), types → `ValueInfoProto`;
//! - `attr`: attribute writers.
//!
//! Constants become initializers; graph inputs keep symbolic dims as `dim_param`; value names are
//! kept. The model's recorded opset and ir_version describe its source file and are not reused;
//! the producer is Kiln.

mod attr;
mod graph;
mod ops;
mod tensor;
#[cfg(test)]
mod tests;

use crate::Model;
use onnx_protobuf::{Message, ModelProto, OperatorSetIdProto};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The oldest default-domain opset an export targets. A model written for a newer opset is
/// exported at its own opset, since the IR's semantics are the newest opset's and some of them
/// (e.g. f16 Celu, signed BitShift) have no spelling at 21.
pub const TARGET_OPSET: i64 = 21;
/// The ONNX IR version that pairs with opset 21.
pub const IR_VERSION: i64 = 10;

/// The opset an export of `model` declares.
pub fn export_opset(model: &Model) -> i64 {
    model.opset.max(TARGET_OPSET)
}

/// The IR version ONNX pairs with a default-domain opset (onnx.helper.VERSION_TABLE).
fn ir_version_for(opset: i64) -> i64 {
    match opset {
        ..=22 => IR_VERSION,
        23 => 11,
        24 => 12,
        25..=27 => 13,
        _ => 14,
    }
}
/// Protobuf messages (and so ONNX files without external data) must stay below 2 GiB.
const MAX_PROTO_BYTES: u64 = i32::MAX as u64;

/// Why a model could not be exported.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("node '{node}' ({op}) cannot be exported: {message}")]
    Node { node: String, op: String, message: String },
    #[error("graph '{graph}' cannot be exported: {message}")]
    Graph { graph: String, message: String },
    #[error("the model needs {0} bytes, over the 2 GiB limit of an ONNX file without external data")]
    TooLarge(u64),
    #[error("protobuf encoding failed: {0}")]
    Encode(#[from] protobuf::Error),
    #[error("cannot write '{}': {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
}

/// One tensor as an ONNX `TensorProto` (raw little-endian data), e.g. for test data sets.
pub fn tensor_to_proto(name: &str, t: &kiln_ir::Tensor) -> onnx_protobuf::TensorProto {
    tensor::tensor_proto(name, t)
}

/// The model as an ONNX `ModelProto`.
pub fn to_proto(model: &Model) -> Result<ModelProto, ExportError> {
    let mut writer = graph::Writer::new(&model.graph);
    let graph = writer.graph(&model.graph, &graph::Scope::new(), &[])?;
    let opset = export_opset(model);
    Ok(ModelProto {
        ir_version: ir_version_for(opset),
        opset_import: vec![OperatorSetIdProto { domain: String::new(), version: opset, ..Default::default() }],
        producer_name: "kiln".to_string(),
        producer_version: env!("CARGO_PKG_VERSION").to_string(),
        graph: Some(graph).into(),
        ..Default::default()
    })
}

/// The model as ONNX file bytes.
pub fn to_bytes(model: &Model) -> Result<Vec<u8>, ExportError> {
    let proto = to_proto(model)?;
    let size = proto.compute_size();
    if size > MAX_PROTO_BYTES {
        return Err(ExportError::TooLarge(size));
    }
    Ok(proto.write_to_bytes()?)
}

/// Writes the model to `path` atomically: the bytes go to a temporary file in the same directory
/// which is then renamed over `path`, so an error never leaves a partial output file.
pub fn save_file(model: &Model, path: &Path) -> Result<(), ExportError> {
    let bytes = to_bytes(model)?;
    let io = |source| ExportError::Io { path: path.to_path_buf(), source };
    let file_name =
        path.file_name().ok_or_else(|| io(std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a file path")))?;
    let tmp = path.with_file_name(format!(".{}.{}.tmp", file_name.to_string_lossy(), std::process::id()));
    let written = std::fs::File::create(&tmp)
        .and_then(|mut f| f.write_all(&bytes).and_then(|()| f.sync_all()))
        .and_then(|()| std::fs::rename(&tmp, path));
    if written.is_err() {
        // Best effort: the temporary file may not exist if creating it failed.
        let _ = std::fs::remove_file(&tmp);
    }
    written.map_err(io)
}
