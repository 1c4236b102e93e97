//! `kiln conformance [DIR] [--filter S] [--roundtrip] [--floor FILE] [--failures] [--json]`: runs the
//! ONNX node test suite (written by `scripts/gen_conformance.py`) and prints a per-op table ending in
//! `N passed, N failed, N skipped`; with `--floor`, fails when fewer cases pass than the file says.

use super::print_json;
use crate::conformance::{self, CaseResult, Totals};
use crate::BackendKind;
use crate::KilnError;
use kiln_backends::{interp::Interpreter, jit::Jit};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Folder of conformance cases (one sub-folder with model.onnx and test_data_set_N each).
    #[arg(default_value = ".cache/conformance/node")]
    dir: PathBuf,
    /// Only cases whose name contains this.
    #[arg(long)]
    filter: Option<String>,
    /// Export each imported model to ONNX and import it again before running it.
    #[arg(long)]
    roundtrip: bool,
    /// A file holding the minimum pass count; fewer passes is an error.
    #[arg(long, value_name = "FILE")]
    floor: Option<PathBuf>,
    /// List every failing case with its reason.
    #[arg(long)]
    failures: bool,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
    /// The backend that runs every case (the JIT compiles each case's graph with one thread).
    #[arg(long, value_enum, default_value_t = BackendKind::Interp)]
    backend: BackendKind,
}

#[derive(serde::Serialize)]
struct Report<'a> {
    totals: Totals,
    per_op: BTreeMap<String, Totals>,
    cases: &'a [CaseResult],
}

pub fn execute(args: Args, out: &mut dyn Write, progress: bool) -> Result<(), KilnError> {
    let io = |source| KilnError::Io { action: "read the conformance folder", path: args.dir.clone(), source };
    let cases = conformance::discover(&args.dir, args.filter.as_deref()).map_err(io)?;
    if cases.is_empty() {
        return Err(KilnError::Conformance(format!(
            "no conformance cases in {}; generate them with `python3 scripts/gen_conformance.py`",
            args.dir.display()
        )));
    }
    let floor = match &args.floor {
        Some(path) => Some(read_floor(path)?),
        None => None,
    };
    let bar = super::progress::bar(cases.len() as u64, "cases", progress && !args.json);
    let tick = |_: &conformance::CaseResult| bar.inc(1);
    let results = match args.backend {
        BackendKind::Interp => conformance::run_suite(&cases, &Interpreter, args.roundtrip, tick),
        BackendKind::Jit => conformance::run_suite(&cases, &Jit::with_threads(1), args.roundtrip, tick),
    };
    bar.finish_and_clear();
    let (per_op, totals) = conformance::tabulate(&results);
    if args.json {
        print_json(out, &Report { totals, per_op, cases: &results })?;
    } else {
        write!(out, "{}", conformance::report(&results, args.failures)).map_err(KilnError::Report)?;
    }
    match floor {
        Some(f) if totals.passed < f => Err(KilnError::Conformance(format!(
            "{} cases passed, below the floor of {f}: a change broke cases that used to pass (run with --failures)",
            totals.passed
        ))),
        _ => Ok(()),
    }
}

fn read_floor(path: &PathBuf) -> Result<usize, KilnError> {
    let text = std::fs::read_to_string(path).map_err(|source| KilnError::Io {
        action: "read the floor file",
        path: path.clone(),
        source,
    })?;
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))
        .and_then(|l| l.parse().ok())
        .ok_or_else(|| KilnError::Conformance(format!("{} holds no pass count", path.display())))
}
