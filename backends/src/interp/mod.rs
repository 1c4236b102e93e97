//! The reference interpreter: [`Interpreter`] (a [`Backend`]), [`eval_node`] for one op (used by
//! constant folding) and [`run_graph`] (outputs plus any internal values). Kernels live one
//! family per file and are dispatched from the single table in [`dispatch`].

mod elementwise;
mod exec;
pub(crate) mod kernel;

use crate::{Backend, ExecError, Executable};
use exec::{check_inputs, execute, Check, Plan};
use kernel::{input, KResult};
use kiln_ir::{Graph, Op, Tensor, ValueRef};

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
    dispatch(op, inputs, num_outputs).map_err(|f| ExecError::Kernel {
        node: String::new(),
        op: op.onnx_name().into(),
        message: f.0,
    })
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
        other => kernel::bail!("the interpreter has no kernel for {} yet", other.onnx_name()),
    }
}
