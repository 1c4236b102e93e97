//! The traits every backend implements, so tests and benches can swap the interpreter and the JIT.

use crate::ExecError;
use kiln_ir::{Graph, Tensor};

/// Something that can turn a graph into a runnable [`Executable`].
pub trait Backend {
    fn name(&self) -> &'static str;
    fn prepare(&self, graph: &Graph) -> Result<Box<dyn Executable>, ExecError>;
}

/// A prepared graph, runnable many times (and from several threads).
pub trait Executable: Send + Sync {
    /// Inputs in graph-input order; returns graph outputs in order.
    fn run(&self, inputs: &[Tensor]) -> Result<Vec<Tensor>, ExecError>;
}
