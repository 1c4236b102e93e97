//! Kiln's intermediate representation: a dataflow graph of typed values.
//!
//! - [`dtype`]: element types; [`shape`]: known or symbolic dims and [`TensorType`];
//! - [`tensor`]: shared n-d tensors and the seeded generator fixtures agree on;
//! - [`op`]: the typed op set, each op's shape/dtype rule (its validation);
//! - [`graph`]: the petgraph-backed graph, editing, inference, the verifier;
//! - [`limits`]: resource bounds (tensor and total bytes, nodes, nesting, loop iterations, deadline);
//! - [`text`]: the readable text form and Graphviz DOT.
//!
//! ```
//! use kiln_ir::{DType, Dim, Graph, Op, Tensor, TensorType, op::Unary};
//! let mut g = Graph::new("main");
//! let x = g.add_input("x", TensorType::new(DType::F32, [Dim::from("batch"), Dim::from(8)]));
//! let y = g.add("y", Op::Unary(Unary::Relu), &[x]).unwrap();
//! g.set_outputs(vec![y]);
//! g.verify().unwrap();
//! assert_eq!(g.value_type(y).to_string(), "f32[batch,8]");
//! ```

pub mod dtype;
pub mod graph;
pub mod limits;
pub mod op;
pub mod shape;
pub mod tensor;
pub mod text;

pub use dtype::DType;
pub use graph::{Graph, GraphError, Node, NodeId, Port, Value, ValueRef};
pub use limits::{LimitError, Limits};
pub use op::Op;
pub use shape::{concrete, known_shape, Dim, Shape, TensorType};
pub use tensor::{ArcArrayD, Element, SeededRng, Tensor, TensorError};
