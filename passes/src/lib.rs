//! Graph-to-graph rewrites over Kiln's IR, sharing one [`Pass`] trait and one [`PassManager`]
//! that re-verifies the graph after every pass.
//!
//! - [`pass`]: the [`Pass`] trait, [`PassStats`] (what a pass changed) and [`PassError`];
//! - [`manager`]: [`PassManager`], which runs passes in order, verifies, and can stop early;
//! - [`fold`]: [`ConstantFold`], evaluating pure nodes with constant inputs through an [`Evaluator`];
//! - [`dce`]: [`DeadCode`], removing nodes no graph output needs;
//! - [`egraph`]: [`EGraphPass`], equality saturation with egg — the tensor language, the e-class
//!   analysis (types, constant folding), the cost model and extraction, IR translation;
//! - [`rules`]: the rewrite tables it runs (`simplify`, `reparam`, `fusion`);
//! - [`prune`]: structured pruning — dependency groups, importance, allocation under a budget,
//!   and [`ZeroGroups`], the lossless removal of all-zero channels.
//!
//! ```
//! use kiln_ir::{DType, Graph, Op, Tensor, TensorType, op::Unary};
//! use kiln_passes::{DeadCode, PassManager};
//! let mut g = Graph::new("main");
//! let x = g.add_input("x", TensorType::known(DType::F32, &[2]));
//! let y = g.add("y", Op::Unary(Unary::Relu), &[x]).unwrap();
//! g.add("unused", Op::Unary(Unary::Exp), &[x]).unwrap();
//! g.set_outputs(vec![y]);
//! let stats = PassManager::new().with(DeadCode).verify(true).run(&mut g).unwrap();
//! assert_eq!((stats[0].nodes_before, stats[0].nodes_after), (3, 2));
//! ```

pub mod dce;
pub mod egraph;
pub mod fold;
pub mod manager;
pub mod pass;
pub mod prune;
pub mod rules;

pub use dce::DeadCode;
pub use egraph::{EGraphPass, EGraphReport, Limits};
pub use fold::{ConstantFold, Evaluator};
pub use manager::PassManager;
pub use pass::{count_nodes, count_ops, Pass, PassError, PassStats};
pub use prune::ZeroGroups;
