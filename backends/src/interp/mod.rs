//! The reference interpreter: [`Interpreter`] (a [`Backend`]), [`eval_node`] for one op (used by
//! constant folding) and [`run_graph`] (outputs plus any internal values). Kernels are
//! straightforward and obviously correct — this is the oracle later backends are checked against.
//!
//! - `exec`: input checks, topological execution, freeing values after their last use;
//! - `kernel`: what kernels share (errors, input access, allocation limits, float dispatch);
//! - kernel families, one per file: `elementwise`, `conv`, `linalg`, `pool`, `norm`, `reduce`,
//!   `movement`, `gather`, `indexing`, `shape`, `resize`, `control`, `recurrent` — dispatched from the one table in
//!   `dispatch`.

mod control;
mod conv;
mod elementwise;
mod exec;
mod gather;
mod indexing;
pub(crate) mod kernel;
mod linalg;
mod movement;
mod norm;
mod pool;
mod recurrent;
mod reduce;
mod resize;
mod shape;

use crate::{Backend, ExecError, Executable};
pub(crate) use exec::{check_inputs, Check};
use exec::{execute, Plan};
use kernel::{input, KResult};
use kiln_ir::{Graph, Op, Tensor, ValueRef};
pub(crate) use movement::pad_source;
use norm::SoftmaxKind;
pub(crate) use resize::{roi_per_axis, source_coord, taps, Taps};

/// The reference interpreter backend.
#[derive(Clone, Copy, Debug, Default)]
pub struct Interpreter;

impl Backend for Interpreter {
    fn name(&self) -> &'static str {
        "interp"
    }

    fn prepare(&self, graph: &Graph) -> Result<Box<dyn Executable>, ExecError> {
        let plan = Plan::new(graph)?;
        Ok(Box::new(Prepared { graph: graph.clone(), plan }))
    }
}

/// A graph with its execution order computed once.
struct Prepared {
    graph: Graph,
    plan: Plan,
}

impl Executable for Prepared {
    fn run(&self, inputs: &[Tensor]) -> Result<Vec<Tensor>, ExecError> {
        check_inputs(&self.graph, inputs, Check::Full)?;
        Ok(execute(&self.graph, &self.plan, inputs, &[])?.0)
    }
}

/// Runs a graph on inputs (in graph-input order). Returns the graph outputs and, in order, the
/// values named in `extra` (logits taps, debugging).
pub fn run_graph(g: &Graph, inputs: &[Tensor], extra: &[ValueRef]) -> Result<(Vec<Tensor>, Vec<Tensor>), ExecError> {
    let plan = Plan::new(g)?;
    check_inputs(g, inputs, Check::Full)?;
    execute(g, &plan, inputs, extra)
}

/// Runs a nested graph (If branch, Loop/Scan body), checking inputs by count and dtype only.
pub(crate) fn run_body(g: &Graph, inputs: &[Tensor]) -> Result<Vec<Tensor>, ExecError> {
    let plan = Plan::new(g)?;
    check_inputs(g, inputs, Check::CountAndDtype)?;
    Ok(execute(g, &plan, inputs, &[])?.0)
}

/// Evaluates one op on input values (`None` for absent optional inputs), producing
/// `num_outputs` outputs (at least one). Errors name the op; the node is unknown here.
pub fn eval_node(op: &Op, inputs: &[Option<Tensor>], num_outputs: usize) -> Result<Vec<Tensor>, ExecError> {
    dispatch(op, inputs, num_outputs).map_err(|f| f.at("", op.onnx_name()))
}

fn one(t: Tensor) -> KResult<Vec<Tensor>> {
    Ok(vec![t])
}

/// The kernel table: one arm per op.
pub(crate) fn dispatch(op: &Op, ins: &[Option<Tensor>], num_outputs: usize) -> KResult<Vec<Tensor>> {
    let x = || input(ins, 0);
    match op {
        Op::Input => kernel::bail!("graph inputs are bound by the runner, not evaluated"),
        Op::Constant(t) => one(t.clone()),
        Op::Unary(u) => one(elementwise::unary(*u, x()?)),
        Op::Binary(b) => one(elementwise::binary(*b, x()?, input(ins, 1)?)?),
        Op::Variadic(v) => one(elementwise::variadic(*v, ins)?),
        Op::Clip => one(elementwise::clip(ins)?),
        Op::Cast { to } => one(x()?.cast(*to)),
        Op::CastLike => one(x()?.cast(input(ins, 1)?.dtype())),
        Op::Where => one(elementwise::select(x()?, input(ins, 1)?, input(ins, 2)?)?),
        Op::Dropout => elementwise::dropout(x()?, num_outputs),
        Op::Identity => one(x()?.clone()),
        Op::Conv(c) => one(conv::conv(c, ins)?),
        Op::ConvTranspose(c) => one(conv::conv_transpose(c, ins)?),
        Op::Gemm(g) => one(linalg::gemm(g, ins)?),
        Op::MatMul => one(linalg::matmul(x()?, input(ins, 1)?)?),
        Op::BatchNorm { epsilon } => one(norm::batch_norm(*epsilon, ins)?),
        Op::InstanceNorm { epsilon } => one(norm::instance_norm(*epsilon, ins)?),
        Op::LayerNorm { axis, epsilon } => norm::layer_norm(*axis, *epsilon, ins, num_outputs),
        Op::Lrn(l) => one(norm::lrn(l, x()?)?),
        Op::Pool(p) => pool::pool(p, x()?, num_outputs),
        Op::GlobalPool(kind) => one(pool::global_pool(*kind, x()?)?),
        Op::Softmax { axis, legacy } => one(norm::softmax(SoftmaxKind::Softmax, *axis, *legacy, x()?)?),
        Op::LogSoftmax { axis, legacy } => one(norm::softmax(SoftmaxKind::LogSoftmax, *axis, *legacy, x()?)?),
        Op::Hardmax { axis, legacy } => one(norm::softmax(SoftmaxKind::Hardmax, *axis, *legacy, x()?)?),
        Op::Reduce { op, keepdims, noop_with_empty_axes } => {
            one(reduce::reduce(*op, *keepdims, *noop_with_empty_axes, ins)?)
        }
        Op::ArgMax { axis, keepdims, select_last_index } => {
            one(reduce::arg(true, *axis, *keepdims, *select_last_index, x()?)?)
        }
        Op::ArgMin { axis, keepdims, select_last_index } => {
            one(reduce::arg(false, *axis, *keepdims, *select_last_index, x()?)?)
        }
        Op::Concat { axis } => one(movement::concat(*axis, ins)?),
        Op::Split { axis } => movement::split(*axis, ins, num_outputs),
        Op::Slice => one(movement::slice(ins)?),
        Op::Gather { axis } => one(gather::gather(*axis, ins)?),
        Op::GatherElements { axis } => one(gather::gather_elements(*axis, ins)?),
        Op::GatherNd { batch_dims } => one(gather::gather_nd(*batch_dims, ins)?),
        Op::Reshape { allowzero } => one(movement::reshape(*allowzero, ins)?),
        Op::Flatten { axis } => one(movement::flatten(*axis, x()?)?),
        Op::Transpose { perm } => one(movement::transpose(perm.as_deref(), x()?)?),
        Op::Squeeze => one(movement::squeeze(ins)?),
        Op::Unsqueeze => one(movement::unsqueeze(ins)?),
        Op::Expand => one(movement::expand(ins)?),
        Op::Tile => one(movement::tile(ins)?),
        Op::Shape { start, end } => one(shape::shape_of(*start, *end, x()?)),
        Op::Size => one(Tensor::scalar(x()?.len() as i64)),
        Op::ConstantOfShape { value } => one(shape::constant_of_shape(value, ins)?),
        Op::Range => one(shape::range(ins)?),
        Op::Pad { mode } => one(movement::pad(*mode, ins)?),
        Op::Resize(r) => one(resize::resize(r, ins)?),
        Op::If { then_branch, else_branch } => control::if_op(then_branch, else_branch, ins),
        Op::Loop(l) => control::loop_op(l, ins),
        Op::Scan(s) => control::scan_op(s, ins),
        Op::CumSum { exclusive, reverse } => one(indexing::cumulative(false, *exclusive, *reverse, ins)?),
        Op::CumProd { exclusive, reverse } => one(indexing::cumulative(true, *exclusive, *reverse, ins)?),
        Op::Compress { axis } => one(indexing::compress(*axis, ins)?),
        Op::TopK { axis, largest, .. } => indexing::top_k(*axis, *largest, ins),
        Op::ScatterElements { axis, reduction } => one(indexing::scatter_elements(*axis, *reduction, ins)?),
        Op::ScatterNd { reduction } => one(indexing::scatter_nd(*reduction, ins)?),
        Op::NonZero => one(indexing::non_zero(x()?)?),
        Op::Recurrent(r) => recurrent::recurrent(r, ins, num_outputs),
        // An op added to the IR before its kernel lands fails here instead of breaking the build.
        #[allow(unreachable_patterns)]
        other => kernel::bail!("the interpreter has no kernel for {}", other.onnx_name()),
    }
}
