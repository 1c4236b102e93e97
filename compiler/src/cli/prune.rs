//! `kiln prune MODEL -o OUT.onnx [--ratio R] [--budget flops|params] [--criterion l1|l2|bn|lamp]
//! [--allocation uniform|global|lamp|dp] [--calib NAME=FILE.npy]... [--dim SYM=N]...
//! [--protect NODE]... [--json]`: structured pruning (see [`crate::Pruner`]), written back as
//! ONNX, with each layer's kept channels and the totals before and after.

use super::{parse_dim, parse_input, print_json};
use crate::driver::Session;
use crate::{KilnError, PruneReport, Pruner};
use kiln_passes::prune::{Allocation, Budget, Criterion};
use std::io::Write;
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The ONNX model file.
    model: PathBuf,
    /// Where to write the pruned model.
    #[arg(short = 'o', long = "output", value_name = "OUT.onnx")]
    output: PathBuf,
    /// Share of the FLOPs (or parameters) to remove, in [0, 1); 0 removes only all-zero channels.
    #[arg(long, default_value_t = 0.0)]
    ratio: f64,
    /// What the ratio is a share of.
    #[arg(long, value_parser = ["flops", "params"], default_value = "flops")]
    budget: String,
    /// How channels are ranked.
    #[arg(long, value_parser = ["l1", "l2", "bn", "lamp"], default_value = "l1")]
    criterion: String,
    /// How the budget is shared across layers.
    #[arg(long, value_parser = ["uniform", "global", "lamp", "dp"], default_value = "uniform")]
    allocation: String,
    /// A calibration input (for the distortion measures); others are seeded random tensors.
    #[arg(long = "calib", value_name = "NAME=FILE.npy", value_parser = parse_input)]
    calib: Vec<(String, PathBuf)>,
    /// A value for a symbolic dim of the model's inputs.
    #[arg(long = "dim", value_name = "SYM=N", value_parser = parse_dim)]
    dims: Vec<(String, usize)>,
    /// Leave the groups of this node whole.
    #[arg(long = "protect", value_name = "NODE")]
    protect: Vec<String>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(serde::Serialize)]
struct Report {
    model: PathBuf,
    output: PathBuf,
    #[serde(flatten)]
    prune: PruneReport,
}

/// Reads a clap-validated name back as its enum (serde's lowercase names are the CLI's).
fn named<T: serde::de::DeserializeOwned>(name: &str) -> T {
    serde_json::from_value(serde_json::Value::from(name)).expect("clap checked the name")
}

pub fn execute(args: Args, out: &mut dyn Write) -> Result<(), KilnError> {
    let session = Session::load(&args.model)?;
    let mut pruner = Pruner::new()
        .ratio(args.ratio)
        .budget(named::<Budget>(&args.budget))
        .criterion(named::<Criterion>(&args.criterion))
        .allocation(named::<Allocation>(&args.allocation));
    for (sym, n) in args.dims {
        pruner = pruner.dim(sym, n);
    }
    for (name, path) in args.calib {
        pruner = pruner.calib(name, path);
    }
    for node in args.protect {
        pruner = pruner.protect(node);
    }
    let (model, prune) = pruner.prune(session.into_model())?;
    Session::from_model(model).save(&args.output)?;
    let report = Report { model: args.model, output: args.output, prune };
    if args.json {
        print_json(out, &report)
    } else {
        print_text(out, &report).map_err(KilnError::Report)
    }
}

fn share(before: u64, after: u64) -> f64 {
    100.0 * (1.0 - after as f64 / before.max(1) as f64)
}

fn print_text(out: &mut dyn Write, r: &Report) -> std::io::Result<()> {
    let p = &r.prune;
    writeln!(out, "{:<40} {:>8}  {:>8}", "layer", "channels", "kept")?;
    for l in &p.layers {
        writeln!(out, "{:<40} {:>8}  {:>8}", l.name, l.channels, l.kept)?;
    }
    let units: usize = p.groups.iter().map(|g| g.units).sum();
    let removed: usize = p.groups.iter().map(|g| g.removed).sum();
    let zero: usize = p.groups.iter().map(|g| g.zero_removed).sum();
    let whole = p.groups.iter().filter(|g| g.blocked_units > 0).count();
    writeln!(out, "groups      {} ({units} units, {removed} removed, {zero} of them all-zero)", p.groups.len())?;
    if whole > 0 {
        writeln!(out, "left whole  {whole} groups keep some or all units:")?;
        for g in p.groups.iter().filter(|g| g.blocked_units > 0).take(8) {
            writeln!(out, "  {} ({} units): {}", g.sources.join(", "), g.blocked_units, g.blocked.join("; "))?;
        }
    }
    writeln!(
        out,
        "params      {} -> {} (-{:.1}%)",
        p.params_before,
        p.params_after,
        share(p.params_before, p.params_after)
    )?;
    writeln!(
        out,
        "FLOPs       {} -> {} (-{:.1}%)",
        p.flops_before,
        p.flops_after,
        share(p.flops_before, p.flops_after)
    )?;
    let predicted = p.distortion.predicted.map(|d| format!(", DP predicted {d:.4}")).unwrap_or_default();
    writeln!(
        out,
        "distortion  {:.4} -> {:.6} (relative L2 of the outputs on {} inputs{predicted})",
        p.distortion.before, p.distortion.after, p.distortion.calibration
    )?;
    writeln!(out, "time        {:.0} ms", p.prune_ms)?;
    writeln!(out, "written to {}", r.output.display())
}
