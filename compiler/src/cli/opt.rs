//! `kiln opt MODEL -o OUT.onnx [--json]`: constant folding, dead-code removal and the e-graph
//! optimizer (simplification, reparameterization, fusion), written back as ONNX, with what each
//! pass did.

use super::limits::LimitArgs;
use super::print_json;
use crate::driver::Session;
use crate::KilnError;
use kiln_passes::PassStats;
use std::io::Write;
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The ONNX model file.
    model: PathBuf,
    /// Where to write the optimized model.
    #[arg(short = 'o', long = "output", value_name = "OUT.onnx")]
    output: PathBuf,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    limits: LimitArgs,
}

#[derive(serde::Serialize)]
struct Report {
    model: PathBuf,
    output: PathBuf,
    passes: Vec<PassStats>,
}

pub fn execute(args: Args, out: &mut dyn Write) -> Result<(), KilnError> {
    let mut session = Session::load_with(&args.model, args.limits.limits())?;
    let passes = session.optimize()?;
    session.save(&args.output)?;
    let report = Report { model: args.model, output: args.output, passes };
    if args.json {
        print_json(out, &report)
    } else {
        print_text(out, &report).map_err(KilnError::Report)
    }
}

fn print_text(out: &mut dyn Write, r: &Report) -> std::io::Result<()> {
    for p in &r.passes {
        let changes: Vec<String> = p.changes.iter().map(|(kind, n)| format!("{kind} {n}")).collect();
        let changes = if changes.is_empty() { "no changes".to_string() } else { changes.join(", ") };
        writeln!(
            out,
            "{:<14} {:>5} -> {:<5} nodes  {:>7.1} ms  ({changes})",
            p.pass, p.nodes_before, p.nodes_after, p.millis
        )?;
    }
    writeln!(out, "written to {}", r.output.display())
}
