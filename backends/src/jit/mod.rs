//! The Cranelift JIT backend: lowers a graph with concrete shapes into a plan of native steps
//! (Cranelift-generated kernels, the GEMM/convolution core, and calls into interpreter kernels
//! for ops without a native kernel yet), with every intermediate placed in one arena.

use crate::{interp::Interpreter, Backend, ExecError, Executable};
use kiln_ir::Graph;

/// The JIT backend and its options.
#[derive(Clone, Copy, Debug)]
pub struct Jit {
    /// Worker threads for intra-op parallelism; 0 means all cores.
    pub threads: usize,
}

impl Default for Jit {
    fn default() -> Self {
        Jit { threads: 0 }
    }
}

impl Jit {
    pub fn with_threads(threads: usize) -> Jit {
        Jit { threads }
    }
}

impl Backend for Jit {
    fn name(&self) -> &'static str {
        "jit"
    }

    fn prepare(&self, graph: &Graph) -> Result<Box<dyn Executable>, ExecError> {
        // Placeholder until code generation lands: behaves exactly like the interpreter.
        Interpreter.prepare(graph)
    }
}
