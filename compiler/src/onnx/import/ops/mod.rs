//! The op registry: ONNX op type → one small function that maps the node to an IR [`Op`] and its
//! inputs, resolving that op's opset differences in one place. Families share a function that
//! reads the variant from a table (`elementwise`), everything else has its own; ops without an IR
//! op of their own are expanded into several IR nodes (`composite`).

mod attention;
mod composite;
mod control;
mod elementwise;
mod nn;
mod recurrent;
mod shape;

use super::node::{Lowered, OpCx};
use super::ImportError;
use std::collections::HashMap;
use std::sync::OnceLock;

/// Maps one node.
pub(crate) type OpFn = fn(&mut OpCx) -> Result<Lowered, ImportError>;

/// The table every family module registers into.
pub(crate) type Registry = HashMap<&'static str, OpFn>;

/// The function for an ONNX op type (default domain), if Kiln supports it.
pub(crate) fn lookup(op_type: &str) -> Option<OpFn> {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY
        .get_or_init(|| {
            let mut r = Registry::new();
            elementwise::register(&mut r);
            nn::register(&mut r);
            shape::register(&mut r);
            control::register(&mut r);
            composite::register(&mut r);
            attention::register(&mut r);
            recurrent::register(&mut r);
            r
        })
        .get(op_type)
        .copied()
}
