//! The embedding API: [`Compiler`] turns an ONNX model into a [`CompiledModel`] once (import,
//! optimization passes, JIT code generation, each timed), which then runs any number of times,
//! from any number of threads at once, allocating nothing per run when outputs are written into
//! caller-owned tensors with [`CompiledModel::run_into`].
//!
//! ```no_run
//! let model = kiln::Compiler::new().threads(2).compile_file("models/light/squeezenet.onnx")?;
//! let input = kiln_ir::Tensor::zeros(kiln_ir::DType::F32, &[1, 3, 224, 224])?;
//! let outputs = model.run(&[input])?;
//! println!("{}: {:?}", model.output_names()[0], outputs[0].shape());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use crate::driver::{building, Session};
use crate::{KilnError, Model};
use kiln_backends::jit::{CompiledGraph, Jit, PlanReport};
use kiln_backends::{Backend, ExecError, Executable};
use kiln_ir::limits::{self, Limits};
use kiln_ir::Tensor;
use std::path::Path;
use std::time::Instant;

/// Compilation options.
#[derive(Clone, Debug, Default)]
pub struct Compiler {
    threads: usize,
    dims: Vec<(String, usize)>,
    limits: Limits,
}

/// Where compile time went, in milliseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize)]
pub struct CompileTimes {
    pub import: f64,
    pub passes: f64,
    pub codegen: f64,
}

/// A model ready to run.
pub struct CompiledModel {
    exe: Compiled,
    limits: Limits,
    input_names: Vec<String>,
    output_names: Vec<String>,
    times: CompileTimes,
}

enum Compiled {
    /// Every shape known: one plan.
    Static(Box<CompiledGraph>),
    /// Symbolic input dims left unbound: compiled per input shapes on first use.
    PerShape(Box<dyn Executable>),
}

impl Compiler {
    /// Defaults: all cores, no dims bound, the default [`Limits`].
    pub fn new() -> Compiler {
        Compiler::default()
    }

    /// Worker threads for intra-op parallelism (0 = all cores).
    pub fn threads(mut self, n: usize) -> Compiler {
        self.threads = n;
        self
    }

    /// Binds a symbolic input dim, so the model compiles once, ahead of the first run.
    pub fn dim(mut self, symbol: impl Into<String>, value: usize) -> Compiler {
        self.dims.push((symbol.into(), value));
        self
    }

    /// Resource limits for importing, compiling and every run of the compiled model: a model
    /// or a run that passes one fails with an error naming the node and the limit, and the
    /// compiled model stays usable.
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// let limits = kiln::Limits { deadline: Some(Duration::from_millis(200)), ..kiln::Limits::default() };
    /// let model = kiln::Compiler::new().limits(limits).compile_file("models/light/squeezenet.onnx")?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn limits(mut self, limits: Limits) -> Compiler {
        self.limits = limits;
        self
    }

    /// Imports, optimizes and compiles an ONNX file.
    pub fn compile_file(&self, path: impl AsRef<Path>) -> Result<CompiledModel, KilnError> {
        let start = Instant::now();
        let session = Session::load_with(path.as_ref(), self.limits)?;
        let import = ms(start);
        let mut compiled = self.compile_session(session)?;
        compiled.times.import = import;
        Ok(compiled)
    }

    /// Optimizes and compiles an imported model.
    pub fn compile_model(&self, model: Model) -> Result<CompiledModel, KilnError> {
        self.compile_session(Session::from_model(model).with_limits(self.limits))
    }

    fn compile_session(&self, mut session: Session) -> Result<CompiledModel, KilnError> {
        if !self.dims.is_empty() {
            session.bind_dims(&self.dims)?;
        }
        let start = Instant::now();
        session.optimize()?;
        let passes = ms(start);
        let start = Instant::now();
        let jit = Jit::with_threads(self.threads);
        let graph = &session.model().graph;
        let exe = limits::scoped(&building(&self.limits), || {
            Ok::<_, KilnError>(if graph.input_symbols().is_empty() {
                Compiled::Static(Box::new(jit.compile(graph).map_err(exec_error)?))
            } else {
                Compiled::PerShape(jit.prepare(graph).map_err(exec_error)?)
            })
        })?;
        let times = CompileTimes { import: 0.0, passes, codegen: ms(start) };
        Ok(CompiledModel::new(graph, exe, times, self.limits))
    }
}

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1e3
}

fn exec_error(e: ExecError) -> KilnError {
    KilnError::exec("jit")(e)
}

impl CompiledModel {
    fn new(graph: &kiln_ir::Graph, exe: Compiled, times: CompileTimes, limits: Limits) -> CompiledModel {
        let names = |vs: Vec<kiln_ir::ValueRef>| vs.iter().map(|&v| graph.value_name(v).to_string()).collect();
        CompiledModel {
            exe,
            limits,
            input_names: names(graph.input_values()),
            output_names: names(graph.outputs().to_vec()),
            times,
        }
    }

    /// Wraps a plan compiled elsewhere (ahead-of-time kernels, see [`crate::aot`]).
    pub(crate) fn from_compiled(graph: &kiln_ir::Graph, compiled: CompiledGraph, times: CompileTimes) -> CompiledModel {
        CompiledModel::new(graph, Compiled::Static(Box::new(compiled)), times, Limits::default())
    }

    /// Runs on `inputs` (in [`Self::input_names`] order); returns the outputs in order.
    pub fn run(&self, inputs: &[Tensor]) -> Result<Vec<Tensor>, KilnError> {
        limits::scoped(&self.limits, || match &self.exe {
            Compiled::Static(c) => c.run(inputs),
            Compiled::PerShape(c) => c.run(inputs),
        })
        .map_err(exec_error)
    }

    /// Runs and writes the outputs into `outputs`, which must have each output's dtype and
    /// shape; f32 outputs are written in place.
    pub fn run_into(&self, inputs: &[Tensor], outputs: &mut [Tensor]) -> Result<(), KilnError> {
        limits::scoped(&self.limits, || self.run_into_unlimited(inputs, outputs))
    }

    fn run_into_unlimited(&self, inputs: &[Tensor], outputs: &mut [Tensor]) -> Result<(), KilnError> {
        match &self.exe {
            Compiled::Static(c) => c.run_into(inputs, outputs).map_err(exec_error),
            Compiled::PerShape(c) => {
                let results = c.run(inputs).map_err(exec_error)?;
                if results.len() != outputs.len()
                    || results.iter().zip(outputs.iter()).any(|(r, o)| r.shape() != o.shape())
                {
                    return Err(exec_error(ExecError::InputCount {
                        graph: "outputs (count or shapes differ from the model's)".into(),
                        expected: results.len(),
                        got: outputs.len(),
                    }));
                }
                outputs.clone_from_slice(&results);
                Ok(())
            }
        }
    }

    /// The limits every run is held to.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Runs on inputs given by name, in any order (each graph input exactly once); returns each
    /// output with its name, in output order.
    ///
    /// ```no_run
    /// # let model = kiln::Compiler::new().compile_file("models/demo/digits.onnx")?;
    /// let images = kiln_ir::Tensor::from_vec(&[1, 1, 8, 8], vec![0.0f32; 64])?;
    /// for (name, value) in model.run_named([("images", images)])? {
    ///     println!("{name}: {:?}", value.shape());
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn run_named<'a>(
        &self,
        inputs: impl IntoIterator<Item = (&'a str, Tensor)>,
    ) -> Result<Vec<(String, Tensor)>, KilnError> {
        let mut slots: Vec<Option<Tensor>> = vec![None; self.input_names.len()];
        for (name, tensor) in inputs {
            let Some(i) = self.input_names.iter().position(|n| n == name) else {
                return Err(KilnError::UnknownInput { name: name.to_string(), valid: self.input_names.clone() });
            };
            if slots[i].replace(tensor).is_some() {
                return Err(KilnError::DuplicateInput { name: name.to_string() });
            }
        }
        let given: Option<Vec<Tensor>> = slots.into_iter().collect();
        let Some(given) = given else {
            return Err(KilnError::InputsNotGiven { expected: self.input_names.clone() });
        };
        Ok(self.output_names.iter().cloned().zip(self.run(&given)?).collect())
    }

    /// The graph inputs' names, in the order [`Self::run`] takes them.
    pub fn input_names(&self) -> &[String] {
        &self.input_names
    }

    /// The graph outputs' names, in the order [`Self::run`] returns them.
    pub fn output_names(&self) -> &[String] {
        &self.output_names
    }

    /// Import / passes / codegen times.
    pub fn compile_times(&self) -> CompileTimes {
        self.times
    }

    /// The compiled plan (absent while symbolic dims are unbound).
    pub fn plan(&self) -> Option<&PlanReport> {
        match &self.exe {
            Compiled::Static(c) => Some(c.report()),
            Compiled::PerShape(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kiln_ir::op::Unary;
    use kiln_ir::{DType, Dim, Graph, Op, TensorType};

    fn relu(batch: Dim) -> Model {
        let mut graph = Graph::new("m");
        let x = graph.add_input("x", TensorType::new(DType::F32, [batch, Dim::from(4)]));
        let y = graph.add("y", Op::Unary(Unary::Relu), &[x]).unwrap();
        graph.set_outputs(vec![y]);
        Model { graph, opset: 17, ir_version: 8, producer: String::new() }
    }

    fn is_send_sync<T: Send + Sync>() {}

    #[test]
    fn compiled_models_are_shareable_and_run_into_buffers() {
        is_send_sync::<CompiledModel>();
        let model = Compiler::new().threads(1).dim("n", 2).compile_model(relu(Dim::from("n"))).unwrap();
        assert!(model.plan().is_some(), "bound dims compile ahead of time");
        let x = Tensor::from_vec(&[2, 4], vec![-1.0f32, 2.0, -3.0, 4.0, 5.0, -6.0, 7.0, -8.0]).unwrap();
        let want = vec![0.0f32, 2.0, 0.0, 4.0, 5.0, 0.0, 7.0, 0.0];
        assert_eq!(model.run(std::slice::from_ref(&x)).unwrap()[0].to_vec::<f32>(), want);
        let mut out = vec![Tensor::zeros(DType::F32, &[2, 4]).unwrap()];
        model.run_into(std::slice::from_ref(&x), &mut out).unwrap();
        assert_eq!(out[0].to_vec::<f32>(), want);
        let mut wrong = vec![Tensor::zeros(DType::F32, &[4, 2]).unwrap()];
        assert!(model.run_into(std::slice::from_ref(&x), &mut wrong).is_err());
    }

    #[test]
    fn unbound_dims_compile_on_first_run() {
        let model = Compiler::new().compile_model(relu(Dim::from("n"))).unwrap();
        assert!(model.plan().is_none());
        let out = model.run(&[Tensor::zeros(DType::F32, &[3, 4]).unwrap()]).unwrap();
        assert_eq!(out[0].shape(), &[3, 4]);
    }

    /// `y = acc0 + 1` repeated `m` times by a Loop (trip count `m`, no condition input). The
    /// optimizer names the Loop node after its output, `y`.
    fn counting_loop() -> Model {
        let mut body = Graph::new("body");
        body.add_input("iter", TensorType::scalar(DType::I64));
        let cond = body.add_input("cond", TensorType::scalar(DType::Bool));
        let acc = body.add_input("acc", TensorType::known(DType::F32, &[1]));
        let one = body.add_const("one", Tensor::vector(vec![1.0f32]));
        let cond_out = body.add("cond_out", Op::Identity, &[cond]).unwrap();
        let next = body.add("next", Op::Binary(kiln_ir::op::Binary::Add), &[acc, one]).unwrap();
        body.set_outputs(vec![cond_out, next]);
        let mut graph = Graph::new("m");
        let m = graph.add_input("m", TensorType::scalar(DType::I64));
        let acc0 = graph.add_input("acc0", TensorType::known(DType::F32, &[1]));
        let op = Op::Loop(kiln_ir::op::Loop { body, num_captures: 0 });
        let id = graph.add_node("counter", op, &[Some(m), None, Some(acc0)], &["y".into()]).unwrap();
        graph.set_outputs(vec![kiln_ir::ValueRef::first(id)]);
        Model { graph, opset: 17, ir_version: 8, producer: String::new() }
    }

    fn count_to(model: &CompiledModel, m: i64) -> Result<Vec<f32>, KilnError> {
        Ok(model.run(&[Tensor::scalar(m), Tensor::vector(vec![0.0f32])])?[0].to_vec::<f32>())
    }

    #[test]
    fn a_run_past_a_limit_fails_naming_node_and_limit_and_the_model_stays_usable() {
        let limits = Limits { max_loop_iterations: 100, ..Limits::default() };
        let model = Compiler::new().threads(1).limits(limits).compile_model(counting_loop()).unwrap();
        assert_eq!(count_to(&model, 100).unwrap(), vec![100.0]);
        let err = count_to(&model, 101).unwrap_err().report();
        assert!(err.contains("node 'y' (Loop)") && err.contains("max_loop_iterations limit of 100"), "{err}");
        assert_eq!(count_to(&model, 7).unwrap(), vec![7.0], "the next run works");
    }

    #[test]
    fn a_run_past_its_deadline_stops_promptly_and_the_model_stays_usable() {
        let deadline = std::time::Duration::from_millis(100);
        let limits = Limits { deadline: Some(deadline), ..Limits::default() };
        let model = Compiler::new().threads(1).limits(limits).compile_model(counting_loop()).unwrap();
        let start = Instant::now();
        let err = count_to(&model, i64::MAX).unwrap_err().report();
        let took = start.elapsed();
        assert!(err.contains("node 'y' (Loop)") && err.contains("deadline limit of 0.100 s"), "{err}");
        assert!(took < deadline + std::time::Duration::from_millis(900), "stopped {took:?} after starting");
        assert_eq!(count_to(&model, 3).unwrap(), vec![3.0], "the next run has its own deadline");
    }

    #[test]
    fn inputs_by_name_are_checked() {
        let model = Compiler::new().threads(1).compile_model(relu(Dim::from("n"))).unwrap();
        let x = || Tensor::from_vec(&[1, 4], vec![-1.0f32, 2.0, -3.0, 4.0]).unwrap();
        let out = model.run_named([("x", x())]).unwrap();
        assert_eq!(out[0].0, "y");
        assert_eq!(out[0].1.to_vec::<f32>(), [0.0, 2.0, 0.0, 4.0]);
        let err = |r: Result<Vec<(String, Tensor)>, KilnError>| r.err().unwrap().to_string();
        assert!(err(model.run_named([("z", x())])).contains("its inputs are: x"));
        assert!(err(model.run_named([("x", x()), ("x", x())])).contains("more than once"));
        assert!(err(model.run_named([])).contains("x"));
    }

    #[test]
    fn missing_files_are_errors() {
        let err = Compiler::new().compile_file("/nonexistent/m.onnx").err().unwrap().to_string();
        assert!(err.contains("/nonexistent/m.onnx"), "{err}");
    }
}
