//! The Cranelift JIT backend. [`Jit::compile`] lowers a graph with concrete shapes into a plan
//! of steps — fused elementwise groups compiled by Cranelift into f32x4 kernels, the GEMM core
//! for Conv/MatMul/Gemm with their epilogue (bias, activation, residual) generated and applied
//! in place, native kernels for pooling, LRN, Concat, Softmax, norms, reductions, data movement,
//! Resize and ConvTranspose, and calls into the interpreter's
//! kernels for everything else — with every intermediate in one arena sized by a liveness plan.
//! Graphs with symbolic dims are compiled on first use for each distinct set of input shapes.
//! [`Jit::compile_object`] writes the kernels as an object file instead, and [`Jit::link`]
//! builds the same plan around them in another program, with no code generation at start-up.
//!
//! - `program`: what an elementwise kernel computes (a small f32 program) over which loop nest;
//! - `math`: vectorized exp, log, tanh, sigmoid, erf, … written once for generated code and tests;
//! - `codegen`: Cranelift module, host ISA detection, kernel emission;
//! - `lower`: graph → steps (roles, fusion groups, storage of each value);
//! - `memory`: arena offsets from buffer lifetimes;
//! - `gemm`: the packed GEMM core (blocking, packing — im2col included — threads, matrix–vector);
//! - `microkernel`: the GEMM's register-tiled inner kernels, one per instruction set;
//! - `linalg`: MatMul/Gemm and convolution steps on the GEMM core, depthwise convolution;
//! - `host`: native pooling, LRN, Concat;
//! - `native`: which other ops get a native kernel, and its geometry from shapes and constants;
//! - `norm`: Softmax/LogSoftmax over any axis, LayerNormalization, InstanceNormalization;
//! - `reduce`: Reduce* over any constant axes;
//! - `copy`: Slice, Split, Pad, Tile, Gather as per-axis offset tables;
//! - `resize`: Resize over the last two axes from precomputed taps;
//! - `deconv`: ConvTranspose as GEMM + col2im;
//! - `typed`: elementwise ops on bool/i32/i64 values (comparisons, Where, Cast, logic);
//! - `window`: sliding windows over a plane (depthwise convolution, pooling), eight outputs at a time;
//! - `pool`: the fork-join worker pool for intra-op parallelism;
//! - `exec`: running a plan (pointers, arena pool) — all calls into generated code.
//!
//! ```
//! use kiln_backends::{jit::Jit, Backend};
//! use kiln_ir::{op::Unary, DType, Graph, Op, Tensor, TensorType};
//! let mut g = Graph::new("main");
//! let x = g.add_input("x", TensorType::known(DType::F32, &[5]));
//! let y = g.add("y", Op::Unary(Unary::Relu), &[x]).unwrap();
//! g.set_outputs(vec![y]);
//! let exe = Jit::with_threads(1).prepare(&g).unwrap();
//! let out = exe.run(&[Tensor::vector(vec![-1.0f32, 0.5, 2.0, -3.0, 4.0])]).unwrap();
//! assert_eq!(out[0].to_vec::<f32>(), vec![0.0, 0.5, 2.0, 0.0, 4.0]);
//! ```

#[cfg(test)]
mod activation_tests;
mod codegen;
mod copy;
mod deconv;
mod exec;
mod gemm;
mod host;
mod linalg;
mod lower;
mod math;
mod memory;
mod microkernel;
mod native;
#[cfg(test)]
mod native_tests;
mod norm;
mod pool;
mod program;
mod reduce;
mod resize;
#[cfg(test)]
mod tests;
mod typed;
mod window;

pub use codegen::ElementwiseFn;
pub use lower::Engine;

use crate::{Backend, ExecError, Executable};
use codegen::Codegen;
use exec::Compiled;
use kiln_ir::{Graph, Tensor};
use pool::Workers;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// The JIT backend and its options.
#[derive(Clone, Copy, Debug, Default)]
pub struct Jit {
    /// Worker threads for intra-op parallelism; 0 means all cores.
    pub threads: usize,
}

impl Jit {
    pub fn with_threads(threads: usize) -> Jit {
        Jit { threads }
    }

    /// Compiles `graph`. Every value's shape must be known from the graph inputs (bind symbolic
    /// dims first, or use [`Backend::prepare`], which compiles per input shape on first run).
    pub fn compile(&self, graph: &Graph) -> Result<CompiledGraph, ExecError> {
        let start = Instant::now();
        let mut codegen = Codegen::jit().map_err(|m| kernel_error(&graph.name, m))?;
        let lowered = lower::lower(graph, &mut codegen)?;
        let (code, kernels) = codegen.finish().map_err(|m| kernel_error(&graph.name, m))?;
        self.assemble(graph, lowered, kernels, Some(code), start)
    }

    /// Compiles `graph`'s kernels into a relocatable object file for this machine's target
    /// (kernel `i` is exported as `{prefix}_kernel_{i}`), for [`Jit::link`] in another program.
    pub fn compile_object(&self, graph: &Graph, prefix: &str) -> Result<ObjectCode, ExecError> {
        let mut codegen = Codegen::object(prefix).map_err(|m| kernel_error(&graph.name, m))?;
        let lowered = lower::lower(graph, &mut codegen)?;
        let object = codegen.finish_object().map_err(|m| kernel_error(&graph.name, m))?;
        let symbols =
            (0..lowered.kernels).map(|i| Codegen::<cranelift_object::ObjectModule>::symbol(prefix, i)).collect();
        Ok(ObjectCode { object, symbols, fingerprint: lowered.fingerprint })
    }

    /// Builds the plan for `graph` around kernels compiled ahead of time by
    /// [`Jit::compile_object`] on the same graph (no code generation). `fingerprint` is the
    /// one `compile_object` reported; a different graph or Kiln version is refused.
    pub fn link(&self, graph: &Graph, kernels: &[ElementwiseFn], fingerprint: u64) -> Result<CompiledGraph, ExecError> {
        let start = Instant::now();
        let lowered = lower::lower(graph, &mut Prelinked)?;
        if lowered.kernels != kernels.len() || lowered.fingerprint != fingerprint {
            return Err(kernel_error(
                &graph.name,
                format!(
                    "the linked object has {} kernels (fingerprint {fingerprint:016x}) but this graph needs {} \
                     (fingerprint {:016x}); recompile it with `kiln compile` for this model and Kiln version",
                    kernels.len(),
                    lowered.kernels,
                    lowered.fingerprint
                ),
            ));
        }
        self.assemble(graph, lowered, kernels.to_vec(), None, start)
    }

    fn assemble(
        &self,
        graph: &Graph,
        lowered: lower::Lowered,
        kernels: Vec<ElementwiseFn>,
        code: Option<codegen::Code>,
        start: Instant,
    ) -> Result<CompiledGraph, ExecError> {
        let workers = Workers::new(self.threads).map_err(|m| kernel_error(&graph.name, m))?;
        let report = PlanReport::of(&lowered, workers.threads(), start.elapsed().as_secs_f64() * 1e3);
        Ok(CompiledGraph { inner: Compiled::new(graph.clone(), lowered, kernels, code, workers), report })
    }
}

/// Kernels that already exist (linked into the program): lowering only counts them.
struct Prelinked;

impl lower::KernelSink for Prelinked {
    fn kernel(&mut self, _: &program::LoopNest, _: &program::Program) -> Result<(), String> {
        Ok(())
    }
}

/// An object file of kernels and what linking it needs.
pub struct ObjectCode {
    /// The relocatable object (ELF on Linux) for this machine's target.
    pub object: Vec<u8>,
    /// Exported kernel symbols, in index order.
    pub symbols: Vec<String>,
    /// Identifies the plan these kernels belong to (see [`Jit::link`]).
    pub fingerprint: u64,
}

fn kernel_error(what: &str, message: String) -> ExecError {
    ExecError::Kernel { node: String::new(), op: format!("jit ({what})"), message }
}

impl Backend for Jit {
    fn name(&self) -> &'static str {
        "jit"
    }

    fn prepare(&self, graph: &Graph) -> Result<Box<dyn Executable>, ExecError> {
        if graph.input_symbols().is_empty() {
            Ok(Box::new(self.compile(graph)?))
        } else {
            Ok(Box::new(PerShape { jit: *self, graph: graph.clone(), compiled: Mutex::new(HashMap::new()) }))
        }
    }
}

/// A compiled graph: run it (from any number of threads at once), or read its plan.
pub struct CompiledGraph {
    inner: Compiled,
    report: PlanReport,
}

impl CompiledGraph {
    /// What was compiled: each step with its engine, the arena size, kernel counts, time.
    pub fn report(&self) -> &PlanReport {
        &self.report
    }

    /// Runs and writes the outputs into `outputs` (one tensor per graph output, of the output's
    /// dtype and shape); f32 outputs are written in place without allocating.
    pub fn run_into(&self, inputs: &[Tensor], outputs: &mut [Tensor]) -> Result<(), ExecError> {
        self.inner.run_into(inputs, outputs)
    }

    /// Runs `runs` times, timing every step; returns the steps in plan order, each with its
    /// wall time in every run.
    pub fn profile(&self, inputs: &[Tensor], runs: usize) -> Result<Vec<StepTimes>, ExecError> {
        let times = self.inner.profile(inputs, runs)?;
        Ok(self.report.steps.iter().zip(times).map(|(step, ms)| StepTimes { step: step.clone(), ms }).collect())
    }
}

/// One step of a plan and its wall time in each run of [`CompiledGraph::profile`].
#[derive(Clone, Debug)]
pub struct StepTimes {
    pub step: PlanStep,
    /// Milliseconds, one per run.
    pub ms: Vec<f64>,
}

impl Executable for CompiledGraph {
    fn run(&self, inputs: &[Tensor]) -> Result<Vec<Tensor>, ExecError> {
        self.inner.run(inputs)
    }
}

/// A graph with symbolic input dims: compiled once per distinct set of input shapes.
struct PerShape {
    jit: Jit,
    graph: Graph,
    compiled: Mutex<HashMap<Vec<Vec<usize>>, Arc<CompiledGraph>>>,
}

impl Executable for PerShape {
    fn run(&self, inputs: &[Tensor]) -> Result<Vec<Tensor>, ExecError> {
        let key: Vec<Vec<usize>> = inputs.iter().map(|t| t.shape().to_vec()).collect();
        let cached = self.compiled.lock().ok().and_then(|m| m.get(&key).cloned());
        let exe = match cached {
            Some(exe) => exe,
            None => {
                crate::interp::check_inputs(&self.graph, inputs, crate::interp::Check::Full)?;
                let mut g = self.graph.clone();
                let mut bindings = HashMap::new();
                for (v, t) in g.input_values().iter().zip(inputs) {
                    for (d, &n) in g.value_type(*v).shape.iter().zip(t.shape()) {
                        if let kiln_ir::Dim::Sym(s) = d {
                            bindings.insert(s.clone(), n);
                        }
                    }
                }
                g.bind_dims(&bindings)?;
                let exe = Arc::new(self.jit.compile(&g)?);
                if let Ok(mut m) = self.compiled.lock() {
                    m.insert(key, exe.clone());
                }
                exe
            }
        };
        exe.run(inputs)
    }
}

/// One step of a compiled plan, as `kiln inspect --plan` shows it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct PlanStep {
    pub nodes: Vec<String>,
    pub ops: Vec<String>,
    pub engine: Engine,
    /// Whether the step runs compiled or native code (every engine but the interpreter).
    pub native: bool,
    /// How the GEMM core computes a convolution: `im2col`, `shifted`, `pointwise` or `depthwise`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<&'static str>,
}

impl PlanStep {
    /// An engine's name in reports: `cranelift`, `gemm`, `host` (a native Rust kernel) or
    /// `interpreter` (a fallback to the interpreter's kernel).
    pub fn engine_name(engine: Engine) -> &'static str {
        match engine {
            Engine::Cranelift => "cranelift",
            Engine::Gemm => "gemm",
            Engine::Host => "host",
            Engine::Interpreter => "interpreter",
        }
    }

    /// The engine, and the method where there is one (`gemm/shifted`).
    pub fn engine_label(&self) -> String {
        let engine = Self::engine_name(self.engine);
        match self.method {
            Some(m) => format!("{engine}/{m}"),
            None => engine.to_string(),
        }
    }
}

/// What compiling produced.
#[derive(Clone, Debug, serde::Serialize)]
pub struct PlanReport {
    pub steps: Vec<PlanStep>,
    /// Bytes of the intermediate arena (the peak of all intermediates alive at once).
    pub arena_bytes: usize,
    /// Distinct Cranelift kernels.
    pub kernels: usize,
    /// Ops run through the interpreter's kernels, with counts.
    pub fallback_ops: Vec<(String, usize)>,
    pub threads: usize,
    pub compile_ms: f64,
}

impl PlanReport {
    fn of(l: &lower::Lowered, threads: usize, compile_ms: f64) -> PlanReport {
        let steps: Vec<PlanStep> = l
            .steps
            .iter()
            .map(|s| PlanStep {
                nodes: s.nodes.clone(),
                ops: s.ops.clone(),
                engine: s.engine,
                native: s.engine != Engine::Interpreter,
                method: match &s.kind {
                    lower::StepKind::Conv(c, _) => Some(c.algo.name()),
                    _ => None,
                },
            })
            .collect();
        let mut fallback: std::collections::BTreeMap<String, usize> = Default::default();
        for s in steps.iter().filter(|s| s.engine == Engine::Interpreter) {
            *fallback.entry(s.ops[0].clone()).or_default() += 1;
        }
        PlanReport {
            steps,
            arena_bytes: l.arena_bytes,
            kernels: l.kernels,
            fallback_ops: fallback.into_iter().collect(),
            threads,
            compile_ms,
        }
    }
}
