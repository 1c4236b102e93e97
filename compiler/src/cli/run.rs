//! `kiln run MODEL [--input NAME=FILE.npy]... [--dim SYM=N]... [--out DIR] [--backend B] [--json]`:
//! runs a model and reports (and optionally writes) each output. Every output is computed and
//! encoded before the first file is written.

use super::{parse_dim, parse_input, print_json};
use crate::driver::{files, memory, BackendKind, Session};
use crate::stats::TensorSummary;
use crate::{npy, KilnError};
use std::collections::HashSet;
use std::io::Write;
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The ONNX model file.
    model: PathBuf,
    /// An input tensor from a .npy file; inputs not given get deterministic pseudo-random values.
    #[arg(long = "input", value_name = "NAME=FILE.npy", value_parser = parse_input)]
    inputs: Vec<(String, PathBuf)>,
    /// A value for a symbolic dim of the model's inputs.
    #[arg(long = "dim", value_name = "SYM=N", value_parser = parse_dim)]
    dims: Vec<(String, usize)>,
    /// Write each output to DIR/<name>.npy.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Which backend runs the model.
    #[arg(long, value_enum, default_value_t = BackendKind::Jit)]
    backend: BackendKind,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(serde::Serialize)]
struct Report {
    model: PathBuf,
    backend: BackendKind,
    outputs: Vec<Output>,
}

#[derive(serde::Serialize)]
struct Output {
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    file: Option<PathBuf>,
    #[serde(flatten)]
    summary: TensorSummary,
}

pub fn execute(args: Args, out: &mut dyn Write) -> Result<(), KilnError> {
    let mut session = Session::load(&args.model)?;
    let given = session.read_inputs(&args.inputs)?;
    let inputs = session.prepare(&args.dims, given, memory::Limit::from_system())?;
    let results = session.run(args.backend, &inputs)?;
    let mut outputs = Vec::with_capacity(results.len());
    let mut writes = Vec::new();
    let mut used = HashSet::new();
    for (name, tensor) in &results {
        let file = match &args.out {
            Some(dir) => {
                let path = dir.join(files::file_name(name, "npy", &mut used));
                let bytes =
                    npy::to_bytes(tensor).map_err(|source| KilnError::NpyEncode { output: name.clone(), source })?;
                writes.push((path.clone(), bytes));
                Some(path)
            }
            None => None,
        };
        outputs.push(Output { name: name.clone(), file, summary: TensorSummary::of(tensor) });
    }
    if let Some(dir) = &args.out {
        std::fs::create_dir_all(dir).map_err(|source| KilnError::Io { action: "create", path: dir.clone(), source })?;
        files::write_all_atomic(&writes)?;
    }
    let report = Report { model: args.model, backend: args.backend, outputs };
    if args.json {
        print_json(out, &report)
    } else {
        print_text(out, &report).map_err(KilnError::Report)
    }
}

fn print_text(out: &mut dyn Write, r: &Report) -> std::io::Result<()> {
    for o in &r.outputs {
        let s = &o.summary;
        let num = |v: Option<f64>| v.map_or_else(|| "-".to_string(), |v| format!("{v:.6}"));
        let first: Vec<String> = s.first.iter().map(|v| format!("{v:.6}")).collect();
        let more = if s.shape.iter().product::<usize>() > s.first.len() { ", …" } else { "" };
        writeln!(out, "{}: {}", o.name, s.ty)?;
        writeln!(out, "  min {}  max {}  mean {}", num(s.min), num(s.max), num(s.mean))?;
        if s.nan > 0 {
            writeln!(out, "  NaN {}", s.nan)?;
        }
        writeln!(out, "  first [{}{more}]", first.join(", "))?;
        if let Some(file) = &o.file {
            writeln!(out, "  written to {}", file.display())?;
        }
    }
    Ok(())
}
