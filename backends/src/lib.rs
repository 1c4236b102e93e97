//! Kiln's execution backends. A [`Backend`] prepares a [`Graph`](kiln_ir::Graph) into an
//! [`Executable`]; the reference [`interp::Interpreter`] runs every op with straightforward,
//! obviously correct kernels and is the correctness oracle for later backends.
//!
//! - [`backend`]: the `Backend` / `Executable` traits every backend implements;
//! - [`error`]: [`ExecError`], naming the failing node and op;
//! - [`interp`]: the reference interpreter (graph runner plus one kernel file per op family).
//!
//! ```
//! use kiln_backends::{interp::Interpreter, Backend};
//! use kiln_ir::{op::Unary, DType, Graph, Op, Tensor, TensorType};
//! let mut g = Graph::new("main");
//! let x = g.add_input("x", TensorType::known(DType::F32, &[3]));
//! let y = g.add("y", Op::Unary(Unary::Relu), &[x]).unwrap();
//! g.set_outputs(vec![y]);
//! let exe = Interpreter.prepare(&g).unwrap();
//! let out = exe.run(&[Tensor::vector(vec![-1.0f32, 0.5, 2.0])]).unwrap();
//! assert_eq!(out[0].to_vec::<f32>(), vec![0.0, 0.5, 2.0]);
//! ```

pub mod backend;
pub mod error;
pub mod interp;
pub mod jit;

pub use backend::{Backend, Executable};
pub use error::ExecError;
