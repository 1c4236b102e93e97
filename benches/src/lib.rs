//! Inputs for Kiln's criterion benchmarks (`cargo bench -p kiln-benches`):
//!
//! - `benches/models.rs`: the JIT against the interpreter on the nine light models, with JIT
//!   code generation timed apart from running;
//! - `benches/gemm.rs`: f32 GEMM throughput of the Kiln JIT (a one-node MatMul graph), the
//!   interpreter, the `gemm` crate Kiln's GEMM core is built on, and `matrixmultiply` — the
//!   benchmark behind the choice of `gemm`.
//!
//! ```no_run
//! use kiln_backends::{jit::Jit, Backend};
//! let model = kiln_benches::light_model("squeezenet").unwrap();
//! let exe = Jit::with_threads(1).prepare(&model.graph).unwrap();
//! exe.run(&model.inputs).unwrap();
//! ```

use kiln::driver::memory::Limit;
use kiln::{KilnError, Session};
use kiln_ir::{DType, Graph, Op, Tensor, TensorType};

pub use kiln_tests::LIGHT_MODELS;

/// A graph ready for a backend, with inputs for it.
pub struct Prepared {
    pub graph: Graph,
    pub inputs: Vec<Tensor>,
}

/// Loads `models/light/<name>.onnx`, generates its (seeded) inputs and runs the passes, as
/// `kiln bench` does: the light models' weights are folded into constants here.
pub fn light_model(name: &str) -> Result<Prepared, KilnError> {
    let path = kiln_tests::workspace_root().join(format!("models/light/{name}.onnx"));
    let mut session = Session::load(&path)?;
    let inputs = session.prepare(&[], vec![], Limit::from_system())?;
    session.optimize()?;
    Ok(Prepared { graph: session.into_model().graph, inputs })
}

/// GEMM problem sizes `(m, k, n)`: square ones, then the im2col shapes of typical convolutions
/// (output channels × input channels·kernel area × output pixels).
pub const GEMM_SHAPES: [(usize, usize, usize); 8] = [
    (64, 64, 64),
    (128, 128, 128),
    (256, 256, 256),
    (512, 512, 512),
    (1024, 1024, 1024),
    (64, 576, 3136), // ResNet-50 conv2_x 3x3, 56x56
    (256, 64, 3136), // ResNet-50 conv2_x 1x1 expansion, 56x56
    (512, 4608, 49), // ResNet-50 conv5_x 3x3, 7x7
];

/// Floating-point operations of an `m×k · k×n` product (a multiply and an add per term).
pub fn gemm_flops(m: usize, k: usize, n: usize) -> u64 {
    2 * (m * k * n) as u64
}

/// `y = MatMul(a, b)` with `a: f32[m,k]` and `b: f32[k,n]` both graph inputs (no operand is a
/// constant the JIT could pack ahead of time, as none is for the GEMM crates it is compared to),
/// with seeded values in [-1, 1).
pub fn matmul(m: usize, k: usize, n: usize) -> Prepared {
    let mut graph = Graph::new("matmul");
    let a = graph.add_input("a", TensorType::known(DType::F32, &[m, k]));
    let b = graph.add_input("b", TensorType::known(DType::F32, &[k, n]));
    let y = graph.add("y", Op::MatMul, &[a, b]).expect("MatMul of f32[m,k] and f32[k,n] is valid");
    graph.set_outputs(vec![y]);
    let seeded = |name, shape: &[usize]| Tensor::seeded(DType::F32, shape, name, 0.0, 1.0).expect("small f32 tensor");
    Prepared { graph, inputs: vec![seeded("a", &[m, k]), seeded("b", &[k, n])] }
}
