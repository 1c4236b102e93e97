//! `kiln inspect MODEL [--dim SYM=N]... [--json] [--text] [--dot FILE]`: what a model takes,
//! gives and costs.

use super::{parse_dim, print_json};
use crate::driver::{files, Session};
use crate::stats::{ModelStats, Port};
use crate::KilnError;
use std::io::Write;
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The ONNX model file.
    model: PathBuf,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
    /// Also print the graph in Kiln's text IR.
    #[arg(long)]
    text: bool,
    /// Bind a symbolic dim (FLOPs are unknown while a dim is symbolic).
    #[arg(long = "dim", value_name = "SYM=N", value_parser = parse_dim)]
    dims: Vec<(String, usize)>,
    /// Write the graph as Graphviz DOT to FILE.
    #[arg(long, value_name = "FILE")]
    dot: Option<PathBuf>,
}

#[derive(serde::Serialize)]
struct Report {
    model: PathBuf,
    #[serde(flatten)]
    stats: ModelStats,
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dot: Option<PathBuf>,
}

pub fn execute(args: Args, out: &mut dyn Write) -> Result<(), KilnError> {
    let mut session = Session::load(&args.model)?;
    session.bind_dims(&args.dims)?;
    let graph = &session.model().graph;
    if let Some(path) = &args.dot {
        files::write_atomic(path, kiln_ir::text::to_dot(graph).into_bytes())?;
    }
    let report = Report {
        model: args.model,
        stats: ModelStats::of(session.model()),
        text: args.text.then(|| kiln_ir::text::to_text(graph)),
        dot: args.dot,
    };
    if args.json {
        print_json(out, &report)
    } else {
        print_text(out, &report).map_err(KilnError::Report)
    }
}

fn print_text(out: &mut dyn Write, r: &Report) -> std::io::Result<()> {
    let s = &r.stats;
    let ports = |ps: &[Port]| ps.iter().map(|p| format!("{}: {}", p.name, p.ty)).collect::<Vec<_>>().join(", ");
    let producer = if s.producer.is_empty() { "unknown producer" } else { s.producer.as_str() };
    writeln!(out, "model       {}", r.model.display())?;
    writeln!(out, "producer    {producer} (opset {}, IR version {})", s.opset, s.ir_version)?;
    writeln!(out, "inputs      {}", ports(&s.inputs))?;
    writeln!(out, "outputs     {}", ports(&s.outputs))?;
    writeln!(out, "nodes       {}", s.nodes)?;
    let ops: Vec<String> = s.ops.iter().map(|(op, n)| format!("{op} {n}")).collect();
    writeln!(out, "ops         {}", ops.join(", "))?;
    let unknown = || "unknown (symbolic dims)".to_string();
    writeln!(out, "parameters  {}", s.parameters.map_or_else(unknown, grouped))?;
    writeln!(out, "FLOPs       {}", s.flops.map_or_else(unknown, |f| format!("{} ({})", grouped(f), giga(f))))?;
    if let Some(dot) = &r.dot {
        writeln!(out, "dot         written to {}", dot.display())?;
    }
    if let Some(text) = &r.text {
        write!(out, "\n{text}")?;
    }
    Ok(())
}

/// `1234567` → `1,234,567`.
fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn giga(flops: u64) -> String {
    format!("{:.2} GFLOP", flops as f64 / 1e9)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_grouped() {
        assert_eq!(grouped(0), "0");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(1_235_496), "1,235,496");
        assert_eq!(giga(1_700_000_000), "1.70 GFLOP");
    }
}
