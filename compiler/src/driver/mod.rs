//! The session API the CLI and tests use: load a model, bind dims and inputs, check memory, run on
//! a backend, optimize and save — each step under the session's [`Limits`] (the deadline applies
//! to runs only). Each step adds the context (file, input, backend) that turns a
//! lower layer's error into a [`KilnError`] a user can act on.
//!
//! - [`inputs`]: matching given tensors to graph inputs, binding dims, generating the rest;
//! - [`memory`]: the peak-memory estimate and the check against the machine;
//! - [`files`]: all-or-nothing file writing and output file names.

pub mod files;
pub mod inputs;
pub mod memory;

pub use inputs::GivenInput;

use crate::{npy, KilnError, Model};
use kiln_backends::{interp, jit, Backend, Executable};
use kiln_ir::limits::{self, Limits};
use kiln_ir::{Op, Tensor};
use kiln_passes::fold::DEFAULT_MAX_FOLD_BYTES;
use kiln_passes::{ConstantFold, DeadCode, EGraphPass, Evaluator, PassManager, PassStats};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Which backend runs the model.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    /// The reference interpreter.
    Interp,
    /// The Cranelift JIT.
    #[default]
    Jit,
}

impl BackendKind {
    pub fn name(self) -> &'static str {
        match self {
            BackendKind::Interp => "interp",
            BackendKind::Jit => "jit",
        }
    }

    fn backend(self) -> Result<Box<dyn Backend>, KilnError> {
        match self {
            BackendKind::Interp => Ok(Box::new(interp::Interpreter)),
            BackendKind::Jit => Ok(Box::new(jit::Jit::default())),
        }
    }
}

/// The limits for importing, binding, optimizing and compiling: all but the deadline, which
/// holds for runs only.
pub fn building(limits: &Limits) -> Limits {
    Limits { deadline: None, ..*limits }
}

/// The time one optimization may spend evaluating constants, all nodes together: a constant
/// `Loop` of 2^63 trips must not make compilation hang. Past it, nothing more is folded.
const FOLD_BUDGET: Duration = Duration::from_secs(5);

/// Constant folding evaluates through the reference interpreter's kernels, under the current
/// limits and with what is left of a [`FOLD_BUDGET`] shared by every evaluation as deadline.
struct InterpEvaluator {
    until: Instant,
}

impl Evaluator for InterpEvaluator {
    fn eval(&self, op: &Op, inputs: &[Option<Tensor>], num_outputs: usize) -> Result<Vec<Tensor>, String> {
        let left = self.until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(format!("constant folding has spent its budget of {FOLD_BUDGET:?}"));
        }
        let limits = Limits { deadline: Some(left), ..limits::current() };
        limits::scoped(&limits, || interp::eval_node(op, inputs, num_outputs)).map_err(|e| e.to_string())
    }
}

/// One model being worked on, with the resource limits every step runs under.
#[derive(Clone, Debug)]
pub struct Session {
    model: Model,
    limits: Limits,
}

impl Session {
    /// Imports an ONNX file under the default limits.
    pub fn load(path: &Path) -> Result<Session, KilnError> {
        Session::load_with(path, Limits::default())
    }

    /// Imports an ONNX file under `limits` (which the session keeps for its later steps).
    pub fn load_with(path: &Path, limits: Limits) -> Result<Session, KilnError> {
        let model = limits::scoped(&building(&limits), || crate::onnx::import::load_file(path))?;
        Ok(Session { model, limits })
    }

    pub fn from_model(model: Model) -> Session {
        Session { model, limits: Limits::default() }
    }

    /// Replaces the limits later steps run under.
    pub fn with_limits(self, limits: Limits) -> Session {
        Session { limits, ..self }
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    pub fn model(&self) -> &Model {
        &self.model
    }

    pub fn into_model(self) -> Model {
        self.model
    }

    /// Reads `.npy` files for named inputs; names are checked against the graph first, so a typo
    /// is reported with the valid names rather than as a file error.
    pub fn read_inputs(&self, specs: &[(String, PathBuf)]) -> Result<Vec<GivenInput>, KilnError> {
        inputs::check_names(&self.model.graph, specs.iter().map(|(n, _)| n.as_str()))?;
        specs
            .iter()
            .map(|(name, path)| {
                let bytes = std::fs::read(path).map_err(|source| KilnError::Io {
                    action: "read",
                    path: path.clone(),
                    source,
                })?;
                let tensor = npy::from_bytes(&bytes).map_err(|source| KilnError::Npy {
                    input: name.clone(),
                    path: path.clone(),
                    source,
                })?;
                Ok(GivenInput { name: name.clone(), path: path.clone(), tensor })
            })
            .collect()
    }

    /// Binds symbolic input dims (for `inspect`: concrete FLOPs and value sizes).
    pub fn bind_dims(&mut self, dims: &[(String, usize)]) -> Result<(), KilnError> {
        let graph = &mut self.model.graph;
        limits::scoped(&building(&self.limits), || inputs::bind_dims(graph, dims, &Default::default()))
    }

    /// Binds `dims` (and the dims given tensors fix), checks the peak memory against `limit`,
    /// and returns one tensor per graph input, generating those not given.
    pub fn prepare(
        &mut self,
        dims: &[(String, usize)],
        given: Vec<GivenInput>,
        limit: memory::Limit,
    ) -> Result<Vec<Tensor>, KilnError> {
        let graph = &mut self.model.graph;
        limits::scoped(&building(&self.limits), || {
            inputs::bind_and_fill(graph, dims, given, limit.generated_input_bytes, |g| {
                memory::check(g, limit).map(drop)
            })
        })
    }

    /// Prepares the model on a backend. The JIT compiles an optimized copy (the passes of
    /// [`Session::optimize`]: folded weights and fused patterns are what it specializes on);
    /// the interpreter runs the graph as imported.
    pub fn compile(&self, backend: BackendKind) -> Result<Box<dyn Executable>, KilnError> {
        let exec = KilnError::exec(backend.name());
        match backend {
            BackendKind::Interp => backend.backend()?.prepare(&self.model.graph).map_err(exec),
            BackendKind::Jit => {
                let mut optimized = self.clone();
                optimized.optimize()?;
                limits::scoped(&building(&self.limits), || {
                    backend.backend()?.prepare(&optimized.model.graph).map_err(exec)
                })
            }
        }
    }

    /// Runs the model; returns each graph output with its name. The run (not the compilation
    /// before it) is held to the limits' deadline.
    pub fn run(&self, backend: BackendKind, inputs: &[Tensor]) -> Result<Vec<(String, Tensor)>, KilnError> {
        let exec = KilnError::exec(backend.name());
        let exe = self.compile(backend)?;
        let outputs = limits::scoped(&self.limits, || exe.run(inputs)).map_err(exec)?;
        let g = &self.model.graph;
        Ok(g.outputs().iter().map(|&v| g.value_name(v).to_string()).zip(outputs).collect())
    }

    /// Constant folding and dead-code removal alone: generated weights become constants, as
    /// pruning needs them, and nothing is fused yet.
    pub fn fold(&mut self) -> Result<Vec<PassStats>, KilnError> {
        let (limits, passes) = self.folding(Instant::now() + FOLD_BUDGET);
        let graph = &mut self.model.graph;
        limits::scoped(&limits, || passes.run(graph).map_err(Box::new)).map_err(KilnError::Pass)
    }

    /// The limits passes run under, and constant folding then dead-code removal with folding
    /// evaluations allowed until `until`.
    fn folding(&self, until: Instant) -> (Limits, PassManager) {
        let limits = building(&self.limits);
        let fold_bytes = limits.max_tensor_bytes.min(DEFAULT_MAX_FOLD_BYTES);
        let passes = PassManager::new()
            .with(ConstantFold::new(Box::new(InterpEvaluator { until })).max_bytes(fold_bytes))
            .with(DeadCode);
        (limits, passes)
    }

    /// Constant folding (through the interpreter's kernels) and dead-code removal, then the
    /// e-graph optimizer (simplification, reparameterization, fusion) on what is left.
    pub fn optimize(&mut self) -> Result<Vec<PassStats>, KilnError> {
        let until = Instant::now() + FOLD_BUDGET;
        let (limits, passes) = self.folding(until);
        let passes = passes.with(EGraphPass::all(std::sync::Arc::new(InterpEvaluator { until })));
        let graph = &mut self.model.graph;
        limits::scoped(&limits, || passes.run(graph).map_err(Box::new)).map_err(KilnError::Pass)
    }

    /// Writes the model as ONNX (atomically: a temporary file, then a rename).
    pub fn save(&self, path: &Path) -> Result<(), KilnError> {
        crate::onnx::export::save_file(&self.model, path)
            .map_err(|source| KilnError::Export { path: path.to_path_buf(), source })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::ModelStats;
    use kiln_ir::op::Unary;
    use kiln_ir::{DType, Dim, Graph, TensorType};

    /// y = Relu(x), x: f32[batch,4].
    fn relu() -> Session {
        let mut graph = Graph::new("m");
        let x = graph.add_input("x", TensorType::new(DType::F32, [Dim::from("batch"), Dim::from(4)]));
        let y = graph.add("y", Op::Unary(Unary::Relu), &[x]).unwrap();
        graph.set_outputs(vec![y]);
        Session::from_model(Model { graph, opset: 17, ir_version: 8, producer: String::new() })
    }

    #[test]
    fn binding_dims_makes_flops_known() {
        let mut s = relu();
        assert_eq!(ModelStats::of(s.model()).flops, None);
        s.bind_dims(&[("batch".into(), 3)]).unwrap();
        assert_eq!(ModelStats::of(s.model()).flops, Some(12), "one op per output element of f32[3,4]");
        let mut s = relu();
        let err = s.bind_dims(&[("seq".into(), 3)]).unwrap_err().to_string();
        assert!(err.contains("its symbols are: batch"), "{err}");
    }

    #[test]
    fn optimize_reports_each_pass() {
        let mut s = relu();
        let stats = s.optimize().unwrap();
        let names: Vec<&str> = stats.iter().map(|p| p.pass.as_str()).collect();
        assert_eq!(names, ["constant-fold", "dead-code", "egraph"]);
    }
}
