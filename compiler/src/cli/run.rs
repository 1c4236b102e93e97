//! `kiln run MODEL [--input NAME=FILE.npy]... [--dim SYM=N]... [--out DIR] [--backend B]
//! [--compare] [--labels FILE.npy] [--json] [limit flags]`: runs a model and reports (and optionally writes)
//! each output, with the time it took. A `[N, C]` float output is read as class scores: its
//! predicted classes are listed, and scored against `--labels`. `--compare` runs the other
//! backend too and reports its time and the largest difference. Every output is computed and
//! encoded before the first file is written.

use super::classes::{self, Accuracy};
use super::limits::{InputArgs, LimitArgs};
use super::{parse_dim, parse_input, print_json};
use crate::driver::{files, BackendKind, Session};
use crate::stats::{self, TensorSummary};
use crate::{npy, KilnError};
use kiln_ir::Tensor;
use std::collections::HashSet;
use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

/// How many predicted classes the text report lists.
const CLASSES_SHOWN: usize = 20;

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
    /// Also run the other backend, and report its time and the largest output difference.
    #[arg(long)]
    compare: bool,
    /// Integer labels (.npy, one per row) to score the first [N, C] output's predicted classes against.
    #[arg(long, value_name = "FILE.npy")]
    labels: Option<PathBuf>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    limits: LimitArgs,
    #[command(flatten)]
    generated: InputArgs,
}

#[derive(serde::Serialize)]
struct Report {
    model: PathBuf,
    backend: BackendKind,
    timing: Timing,
    #[serde(skip_serializing_if = "Option::is_none")]
    compared: Option<Compared>,
    outputs: Vec<Output>,
}

/// Wall-clock milliseconds of one backend: preparing the model (for the JIT: optimizing and
/// compiling it) and one run.
#[derive(serde::Serialize)]
struct Timing {
    compile_ms: f64,
    run_ms: f64,
}

#[derive(serde::Serialize)]
struct Compared {
    backend: BackendKind,
    timing: Timing,
    /// The largest absolute difference over every output element (NaN where the outputs do not
    /// correspond, or a value is NaN in one of them only).
    max_abs_diff: f64,
}

#[derive(serde::Serialize)]
struct Output {
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    file: Option<PathBuf>,
    #[serde(flatten)]
    summary: TensorSummary,
    /// Each row's argmax, for a `[N, C]` float output (`null` for a row holding NaN).
    #[serde(skip_serializing_if = "Option::is_none")]
    classes: Option<Vec<Option<usize>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    accuracy: Option<Accuracy>,
}

/// Compiles and runs the model once on `backend`, timing both.
fn timed_run(session: &Session, backend: BackendKind, inputs: &[Tensor]) -> Result<(Vec<Tensor>, Timing), KilnError> {
    let start = Instant::now();
    let exe = session.compile(backend)?;
    let compiled = Instant::now();
    // The run, not the compilation, is held to the session's limits (its deadline included).
    let outputs =
        kiln_ir::limits::scoped(session.limits(), || exe.run(inputs)).map_err(KilnError::exec(backend.name()))?;
    let ms = |from: Instant, to: Instant| (to - from).as_secs_f64() * 1e3;
    Ok((outputs, Timing { compile_ms: ms(start, compiled), run_ms: ms(compiled, Instant::now()) }))
}

fn other(backend: BackendKind) -> BackendKind {
    match backend {
        BackendKind::Jit => BackendKind::Interp,
        BackendKind::Interp => BackendKind::Jit,
    }
}

pub fn execute(args: Args, out: &mut dyn Write) -> Result<(), KilnError> {
    let limits = args.limits.limits();
    let mut session = Session::load_with(&args.model, limits)?;
    let labels = args.labels.as_deref().map(classes::read_labels).transpose()?;
    let given = session.read_inputs(&args.inputs)?;
    let inputs = session.prepare(&args.dims, given, args.generated.memory(&limits))?;
    let (results, timing) = timed_run(&session, args.backend, &inputs)?;
    let compared = if args.compare {
        let backend = other(args.backend);
        let (theirs, timing) = timed_run(&session, backend, &inputs)?;
        Some(Compared { backend, timing, max_abs_diff: stats::max_abs_diff(&results, &theirs) })
    } else {
        None
    };
    let g = &session.model().graph;
    let names: Vec<String> = g.outputs().iter().map(|&v| g.value_name(v).to_string()).collect();
    let mut outputs = Vec::with_capacity(results.len());
    let mut writes = Vec::new();
    let mut used = HashSet::new();
    let mut labels_used = false;
    for (name, tensor) in names.into_iter().zip(&results) {
        let file = match &args.out {
            Some(dir) => {
                let path = dir.join(files::file_name(&name, "npy", &mut used));
                let bytes =
                    npy::to_bytes(tensor).map_err(|source| KilnError::NpyEncode { output: name.clone(), source })?;
                writes.push((path.clone(), bytes));
                Some(path)
            }
            None => None,
        };
        let classes = classes::predicted(tensor);
        let accuracy = match (&classes, &labels, &args.labels) {
            (Some(predicted), Some(labels), Some(path)) if !labels_used => {
                labels_used = true;
                Some(classes::score(predicted, labels, path)?)
            }
            _ => None,
        };
        outputs.push(Output { name, file, summary: TensorSummary::of(tensor), classes, accuracy });
    }
    if let (Some(path), false) = (&args.labels, labels_used) {
        return Err(KilnError::Labels {
            path: path.clone(),
            reason: "the model has no [N, C] float output to score".into(),
        });
    }
    if let Some(dir) = &args.out {
        std::fs::create_dir_all(dir).map_err(|source| KilnError::Io { action: "create", path: dir.clone(), source })?;
        files::write_all_atomic(&writes)?;
    }
    let report = Report { model: args.model, backend: args.backend, timing, compared, outputs };
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
        match &o.classes {
            Some(classes) => {
                let shown: Vec<String> = classes
                    .iter()
                    .take(CLASSES_SHOWN)
                    .map(|c| c.map_or_else(|| "?".to_string(), |c| c.to_string()))
                    .collect();
                let more = if classes.len() > CLASSES_SHOWN { " …" } else { "" };
                writeln!(out, "  classes {}{more}", shown.join(" "))?;
            }
            None => writeln!(out, "  first [{}{more}]", first.join(", "))?,
        }
        if let Some(a) = o.accuracy {
            writeln!(out, "  accuracy {:.1}% ({} of {} labels)", 100.0 * a.share(), a.correct, a.total)?;
        }
        if let Some(file) = &o.file {
            writeln!(out, "  written to {}", file.display())?;
        }
    }
    let line = |b: BackendKind, t: &Timing| {
        format!("{:<6} compile {:>8.1} ms   run {:>8.2} ms", b.name(), t.compile_ms, t.run_ms)
    };
    writeln!(out, "time {}", line(r.backend, &r.timing))?;
    if let Some(c) = &r.compared {
        writeln!(out, "     {}", line(c.backend, &c.timing))?;
        let (jit, interp) = match r.backend {
            BackendKind::Jit => (&r.timing, &c.timing),
            BackendKind::Interp => (&c.timing, &r.timing),
        };
        writeln!(
            out,
            "  compiled ran {:.1}x faster than interpreted; largest difference {:.2e}",
            interp.run_ms / jit.run_ms.max(1e-9),
            c.max_abs_diff
        )?;
    }
    Ok(())
}
