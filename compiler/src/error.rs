//! [`KilnError`]: the crate's top-level error. It wraps every lower layer's error (import, export,
//! execution, passes, graph, `.npy`, I/O) with the context the driver knows — which file, which
//! input, which backend — and adds the driver's own checks (input matching, dims, memory).

use crate::npy::NpyError;
use crate::onnx::export::ExportError;
use crate::onnx::import::ImportError;
use kiln_backends::ExecError;
use kiln_ir::{GraphError, TensorType};
use kiln_passes::prune::PruneError;
use kiln_passes::PassError;
use std::path::PathBuf;

/// Everything a Kiln session can fail with.
#[derive(Debug, thiserror::Error)]
pub enum KilnError {
    /// The import error already names the file.
    #[error(transparent)]
    Import(Box<ImportError>),
    #[error("cannot save the model as '{}'", path.display())]
    Export { path: PathBuf, source: ExportError },
    #[error("running the model on the '{backend}' backend failed")]
    Exec { backend: &'static str, source: Box<ExecError> },
    #[error("optimizing the model failed")]
    Pass(#[source] Box<PassError>),
    #[error("pruning the model failed")]
    Prune(#[source] Box<PruneError>),
    #[error("the model is not valid for the given dims")]
    Graph(#[source] Box<GraphError>),
    #[error("cannot use '{}' for input '{input}'", path.display())]
    Npy { input: String, path: PathBuf, source: NpyError },
    #[error("cannot encode output '{output}' as .npy")]
    NpyEncode { output: String, source: NpyError },
    #[error("cannot {action} '{}'", path.display())]
    Io { action: &'static str, path: PathBuf, source: std::io::Error },
    #[error("cannot write the report")]
    Report(#[source] std::io::Error),
    #[error("input '{name}' ({expected}) was not given and cannot be generated: its dim(s) {} are unknown; pass --input {name}=FILE.npy or --dim {}=N", unbound.join(", "), unbound.join("=N --dim "))]
    MissingInput { name: String, expected: TensorType, unbound: Vec<String> },
    #[error("the model has no input named '{name}'; its inputs are: {}", valid.join(", "))]
    UnknownInput { name: String, valid: Vec<String> },
    #[error("input '{name}' expects {expected} but '{}' holds {got}", path.display())]
    InputType { name: String, path: PathBuf, expected: TensorType, got: TensorType },
    #[error("cannot generate a value for input '{name}'")]
    Generate { name: String, source: kiln_ir::TensorError },
    #[error("every input must be given by name; the model's inputs are: {}", expected.join(", "))]
    InputsNotGiven { expected: Vec<String> },
    #[error(
        "input '{name}' ({ty}) would need {} and Kiln generates inputs of at most {}; pass --input {name}=FILE.npy or raise --max-input-bytes",
        human_bytes(*bytes), human_bytes(*limit)
    )]
    GeneratedInputTooLarge { name: String, ty: TensorType, bytes: u64, limit: u64 },
    #[error("input '{name}' is given more than once")]
    DuplicateInput { name: String },
    #[error("--dim {sym}: the model has no symbolic dim named '{sym}'; its symbols are: {}", list_or_none(valid))]
    UnknownDim { sym: String, valid: Vec<String> },
    #[error("dim '{sym}' is {first} from {first_from} but {second} from {second_from}")]
    DimConflict { sym: String, first: usize, first_from: String, second: usize, second_from: String },
    #[error(
        "running this model would need about {} of memory at its peak but only {} is available ({limit_source}); \
         the largest value is '{value}' of type {ty} ({}) — try smaller dims",
        human_bytes(*need), human_bytes(*limit), human_bytes(*value_bytes)
    )]
    TooMuchMemory { need: u64, limit: u64, limit_source: &'static str, value: String, ty: TensorType, value_bytes: u64 },
    #[error("cannot use '{}' as labels: {reason}", path.display())]
    Labels { path: PathBuf, reason: String },
    #[error("conformance: {0}")]
    Conformance(String),
    #[error("--prefix '{prefix}' must be a Rust identifier (letters, digits, '_', not starting with a digit)")]
    AotPrefix { prefix: String },
    #[error(
        "ahead-of-time code needs concrete shapes, but the model's inputs have symbolic dims ({}); bind each with --dim {}=N",
        symbols.join(", "), symbols.join("=N --dim ")
    )]
    AotSymbolicDims { symbols: Vec<String> },
}

impl KilnError {
    /// Wraps an execution error of `backend` (for `map_err`).
    pub fn exec(backend: &'static str) -> impl Fn(ExecError) -> KilnError {
        move |e| KilnError::Exec { backend, source: Box::new(e) }
    }
}

/// The lower layers' errors are boxed to keep `Result<_, KilnError>` small.
macro_rules! boxed_from {
    ($($variant:ident($error:ty)),*) => {$(
        impl From<$error> for KilnError {
            fn from(e: $error) -> KilnError {
                KilnError::$variant(Box::new(e))
            }
        }
    )*};
}

boxed_from!(Import(ImportError), Pass(PassError), Prune(PruneError), Graph(GraphError));

fn list_or_none(names: &[String]) -> String {
    if names.is_empty() {
        "(none)".to_string()
    } else {
        names.join(", ")
    }
}

/// `1.5 GiB`, `312 B`: sizes in messages.
pub fn human_bytes(bytes: u64) -> String {
    kiln_ir::limits::show_bytes(Some(bytes))
}

impl KilnError {
    /// The message followed by each distinct cause, one per line: what the CLI prints.
    pub fn report(&self) -> String {
        let mut out = self.to_string();
        let mut last = out.clone();
        let mut source = std::error::Error::source(self);
        while let Some(cause) = source {
            let text = cause.to_string();
            if !last.contains(&text) {
                out.push_str("\n  caused by: ");
                out.push_str(&text.replace('\n', "\n    "));
            }
            last = text;
            source = cause.source();
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_naturally() {
        assert_eq!(human_bytes(312), "312 B");
        assert_eq!(human_bytes(3 << 29), "1.5 GiB");
        assert_eq!(human_bytes(u64::MAX), "16.0 EiB");
    }

    #[test]
    fn report_lists_causes_once() {
        let e = KilnError::Exec {
            backend: "interp",
            source: Box::new(ExecError::Kernel { node: "n1".into(), op: "Conv".into(), message: "bad pads".into() }),
        };
        assert_eq!(
            e.report(),
            "running the model on the 'interp' backend failed\n  caused by: node 'n1' (Conv): bad pads"
        );
    }
}
