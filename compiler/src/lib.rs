//! Kiln: an ONNX compiler for neural networks — driver, ONNX import/export, CLI and public API.
//!
//! - [`aot`]: `kiln compile`'s object files and [`aot::load`] for hosts that link them;
//! - [`api`]: [`Compiler`] and [`CompiledModel`], the embedding API (compile once, run from any thread),
//!   under [`Limits`] (bytes per tensor and in total, nodes, nesting, loop iterations, a deadline);
//! - [`model`]: [`Model`], a graph plus the ONNX metadata needed to report on and export it;
//! - [`onnx`]: ONNX import into Kiln's IR and export back;
//! - [`driver`]: [`Session`], the steps a command takes (load, bind, check, run, optimize, save);
//! - [`npy`]: NumPy `.npy` files to and from tensors;
//! - [`prune`]: [`Pruner`], structured pruning of a model under a FLOPs or parameter budget;
//! - [`stats`]: what `kiln inspect` reports and `kiln run`'s output summaries;
//! - [`report`]: `kiln report`'s self-contained HTML page (graph drawings, passes, profile, memory);
//! - [`error`]: [`KilnError`], every failure with the context a user needs;
//! - [`conformance`]: the ONNX node test suite runner and its per-op report;
//! - [`cli`]: the `kiln` command line, runnable in-process.
//!
//! ```
//! use kiln::driver::{memory::Limit, BackendKind, Session};
//! use kiln::Model;
//! use kiln_ir::{op::Unary, DType, Dim, Graph, Op, TensorType};
//!
//! let mut graph = Graph::new("main");
//! let x = graph.add_input("x", TensorType::new(DType::F32, [Dim::from("batch"), Dim::from(4)]));
//! let y = graph.add("y", Op::Unary(Unary::Relu), &[x])?;
//! graph.set_outputs(vec![y]);
//! let model = Model { graph, opset: 17, ir_version: 8, producer: "doc".into() };
//!
//! let mut session = Session::from_model(model);
//! let inputs = session.prepare(&[("batch".into(), 2)], vec![], Limit::from_system())?;
//! let outputs = session.run(BackendKind::Interp, &inputs)?;
//! assert_eq!(outputs[0].0, "y");
//! assert_eq!(outputs[0].1.shape(), &[2, 4]);
//! assert!(outputs[0].1.to_vec::<f32>().iter().all(|&v| v >= 0.0));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod aot;
pub mod api;
pub mod cli;
pub mod conformance;
pub mod driver;
pub mod error;
pub mod model;
pub mod npy;
pub mod onnx;
pub mod prune;
pub mod report;
pub mod stats;

pub use api::{CompileTimes, CompiledModel, Compiler};
pub use driver::{BackendKind, Session};
pub use error::KilnError;
pub use kiln_ir::limits::{LimitError, Limits};
pub use model::Model;
pub use prune::{PruneReport, Pruner};
