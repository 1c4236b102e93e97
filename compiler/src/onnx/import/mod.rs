//! ONNX import: bytes or a file → [`Model`] (Kiln's IR plus ONNX metadata).
//!
//! - [`load_file`] / [`load_bytes`]: the entry points; [`ImportError`]: what can go wrong;
//! - `graph`: the graph walk (scopes, topological sort, nested graphs and their captures);
//!   `fold`: shape arithmetic evaluated while importing;
//! - `node`: what one op function sees; `ops`: the registry, one small function per ONNX op
//!   type with its opset differences resolved inside it;
//! - `tensor`: `TensorProto` decoding (typed fields, raw data, external data); `attrs`: typed
//!   attribute readers.
//!
//! Only the default domain (`ai.onnx`), opsets 7 and newer, is accepted. Before building
//! anything the importer checks every node (nested graphs included) against the registry, so one
//! error lists every unsupported operator.
//!
//! ```
//! use std::path::Path;
//! let model = kiln::onnx::load_file(Path::new("../models/light/squeezenet.onnx"))?;
//! assert_eq!(model.opset, 9);
//! model.graph.verify()?;
//! // Old models list their weights as graph inputs too; Kiln makes them constants.
//! assert_eq!(model.graph.inputs().len(), 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod attrs;
mod error;
mod fold;
mod graph;
mod node;
mod ops;
mod tensor;

pub use error::{ImportError, UnsupportedOp};

use crate::Model;
use graph::{node_name, Builder, Ctx};
use kiln_ir::limits::{Limit, LimitError, Limits};
use onnx_protobuf::{GraphProto, ModelProto, NodeProto};
use protobuf::Message;
use std::collections::HashMap;
use std::path::Path;

/// The oldest default-domain opset Kiln imports.
pub const MIN_OPSET: i64 = 7;

/// Loads a model file; external data is read relative to the file's directory.
pub fn load_file(path: &Path) -> Result<Model, ImportError> {
    let bytes = std::fs::read(path).map_err(|source| ImportError::Io { path: path.to_path_buf(), source })?;
    let dir = path.parent().map(|p| if p.as_os_str().is_empty() { Path::new(".") } else { p });
    import(&bytes, dir, &path.display().to_string())
}

/// Loads a model from bytes. `base_dir` is where external data files live (none: a model with
/// external data is refused).
pub fn load_bytes(bytes: &[u8], base_dir: Option<&Path>) -> Result<Model, ImportError> {
    import(bytes, base_dir, "<bytes>")
}

/// Decodes one ONNX `TensorProto` (as conformance data sets store inputs and outputs).
pub fn tensor_from_proto(
    t: &onnx_protobuf::TensorProto,
    base_dir: Option<&Path>,
) -> Result<kiln_ir::Tensor, ImportError> {
    tensor::to_tensor(t, base_dir)
}

fn import(bytes: &[u8], base_dir: Option<&Path>, origin: &str) -> Result<Model, ImportError> {
    let proto = ModelProto::parse_from_bytes(bytes)
        .map_err(|e| ImportError::Corrupt { origin: origin.to_string(), message: e.to_string() })?;
    let gp = proto.graph.as_ref().ok_or_else(|| ImportError::NoGraph { origin: origin.to_string() })?;
    let opsets: HashMap<&str, i64> = proto
        .opset_import
        .iter()
        .map(|o| (if is_default_domain(&o.domain) { "" } else { o.domain.as_str() }, o.version))
        .collect();
    check_size(gp, &kiln_ir::limits::current())?;
    let mut unsupported = Vec::new();
    check_ops(gp, &opsets, &mut unsupported);
    if !unsupported.is_empty() {
        return Err(ImportError::Unsupported(unsupported));
    }
    let opset = *opsets.get("").ok_or(ImportError::NoOpset)?;
    if opset < MIN_OPSET {
        return Err(ImportError::OldOpset(opset));
    }
    let graph = Builder::new(Ctx { base_dir, opset }, gp, HashMap::new()).build(gp, &[], &[])?;
    let producer = format!("{} {}", proto.producer_name, proto.producer_version).trim().to_string();
    Ok(Model { graph, opset, ir_version: proto.ir_version, producer })
}

fn is_default_domain(domain: &str) -> bool {
    domain.is_empty() || domain == "ai.onnx"
}

/// Refuses a model with more nodes (nested graphs included) or deeper subgraph nesting than the
/// limits allow, before anything is built from it.
fn check_size(gp: &GraphProto, limits: &Limits) -> Result<(), ImportError> {
    let mut nodes = 0usize;
    // (graph, depth, the node that owns it) — an explicit stack, so nesting cannot overflow ours.
    let mut stack = vec![(gp, 0usize, None::<&NodeProto>)];
    while let Some((g, depth, owner)) = stack.pop() {
        let name = || owner.map_or_else(|| "graph".to_string(), node_name);
        if depth > limits.max_nesting {
            let what = format!("its subgraphs nest {depth} deep");
            return Err(ImportError::Limit {
                node: name(),
                source: LimitError::new(Limit::Nesting, limits.max_nesting as u64, what),
            });
        }
        nodes = nodes.saturating_add(g.node.len());
        if nodes > limits.max_nodes {
            let what = format!("the model has at least {nodes} nodes");
            return Err(ImportError::Limit {
                node: name(),
                source: LimitError::new(Limit::Nodes, limits.max_nodes as u64, what),
            });
        }
        for n in &g.node {
            stack.extend(attrs::Attrs::graphs(n).map(|(_, sub)| (sub, depth + 1, Some(n))));
        }
    }
    Ok(())
}

/// Collects every node (nested graphs included) whose op the registry does not know, with the
/// opset its domain is imported at (0 if the model does not import that domain).
fn check_ops(gp: &GraphProto, opsets: &HashMap<&str, i64>, out: &mut Vec<UnsupportedOp>) {
    for n in &gp.node {
        let default = is_default_domain(&n.domain);
        if !default || ops::lookup(&n.op_type).is_none() {
            let domain = if default { "" } else { n.domain.as_str() };
            let op = if default { n.op_type.clone() } else { format!("{}::{}", n.domain, n.op_type) };
            let opset = opsets.get(domain).copied().unwrap_or(0);
            out.push(UnsupportedOp { node: node_name(n), op, opset });
        }
        for (_, g) in attrs::Attrs::graphs(n) {
            check_ops(g, opsets, out);
        }
    }
}

#[cfg(test)]
mod tests;
