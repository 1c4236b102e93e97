//! `kiln inspect MODEL [--dim SYM=N]... [--json] [--text] [--dot FILE] [--passes]`: what a model
//! takes, gives and costs; with `--passes`, what each optimization pass did to it.

use super::limits::LimitArgs;
use super::{parse_dim, print_json};
use crate::driver::{files, Session};
use crate::stats::{ModelStats, Port};
use crate::KilnError;
use kiln_backends::jit::{Engine, PlanReport};
use kiln_passes::PassStats;
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
    /// Run the optimizer and show, per pass, op counts before/after, e-graph size, iterations,
    /// time and the rules that fired.
    #[arg(long)]
    passes: bool,
    /// Compile with the JIT and show its plan: each step's engine (generated kernel, GEMM core,
    /// native kernel, or an interpreter fallback), fused groups, ops that fell back, arena size.
    #[arg(long)]
    plan: bool,
    #[command(flatten)]
    limits: LimitArgs,
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
    #[serde(skip_serializing_if = "Option::is_none")]
    passes: Option<Vec<PassStats>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    plan: Option<PlanReport>,
}

pub fn execute(args: Args, out: &mut dyn Write) -> Result<(), KilnError> {
    let limits = args.limits.limits();
    let mut session = Session::load_with(&args.model, limits)?;
    session.bind_dims(&args.dims)?;
    let stats = ModelStats::of(session.model());
    let plan = match args.plan {
        true => crate::Compiler::new().limits(limits).compile_model(session.model().clone())?.plan().cloned(),
        false => None,
    };
    let passes = if args.passes { Some(session.optimize()?) } else { None };
    let graph = &session.model().graph;
    if let Some(path) = &args.dot {
        files::write_atomic(path, kiln_ir::text::to_dot(graph).into_bytes())?;
    }
    let report = Report {
        model: args.model,
        stats,
        text: args.text.then(|| kiln_ir::text::to_text(graph)),
        dot: args.dot,
        passes,
        plan,
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
    if let Some(passes) = &r.passes {
        print_passes(out, passes)?;
    }
    if let Some(plan) = &r.plan {
        print_plan(out, plan)?;
    }
    if let Some(text) = &r.text {
        write!(out, "\n{text}")?;
    }
    Ok(())
}

/// Per pass: nodes and time, the op counts that changed, and for e-graph passes the e-graph's
/// size, iterations, stop reason, cost and rules fired.
fn print_passes(out: &mut dyn Write, passes: &[PassStats]) -> std::io::Result<()> {
    let total: f64 = passes.iter().map(|p| p.millis).sum();
    writeln!(out, "passes      {} in {total:.1} ms", passes.len())?;
    for p in passes {
        writeln!(out, "  {:<14} {:>6} -> {:<6} nodes  {:>8.1} ms", p.pass, p.nodes_before, p.nodes_after, p.millis)?;
        let changed = crate::report::op_changes(&p.ops_before, &p.ops_after);
        if !changed.is_empty() {
            writeln!(out, "    ops      {}", changed.join(", "))?;
        }
        if let Some(e) = &p.egraph {
            writeln!(
                out,
                "    e-graph  {} nodes, {} classes (limit {} nodes), {} iterations, {}",
                grouped(e.nodes as u64),
                grouped(e.classes as u64),
                grouped(e.node_limit as u64),
                e.iterations,
                if e.stop_reason.is_empty() { "not run" } else { e.stop_reason.as_str() }
            )?;
            writeln!(out, "    cost     {:.4e} -> {:.4e}", e.cost_before, e.cost_after)?;
            let rules: Vec<String> = e.rules.iter().map(|(r, n)| format!("{r} {n}")).collect();
            writeln!(
                out,
                "    rules    {}",
                if rules.is_empty() { "none fired".to_string() } else { rules.join(", ") }
            )?;
            if let Some(why) = &e.kept_original {
                writeln!(out, "    kept the original: {why}")?;
            }
        } else if !p.changes.is_empty() {
            let changes: Vec<String> = p.changes.iter().map(|(k, n)| format!("{k} {n}")).collect();
            writeln!(out, "    changes  {}", changes.join(", "))?;
        }
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

/// The JIT plan: steps per engine, fused groups, interpreter fallbacks, arena and code size.
fn print_plan(out: &mut dyn Write, plan: &PlanReport) -> std::io::Result<()> {
    let count = |e: Engine| plan.steps.iter().filter(|s| s.engine == e).count();
    writeln!(
        out,
        "plan        {} steps: {} generated, {} GEMM core, {} native, {} interpreter fallback ({} threads, compiled in {:.1} ms)",
        plan.steps.len(),
        count(Engine::Cranelift),
        count(Engine::Gemm),
        count(Engine::Host),
        count(Engine::Interpreter),
        plan.threads,
        plan.compile_ms
    )?;
    writeln!(
        out,
        "  arena    {} bytes for all intermediates; {} distinct kernels",
        grouped(plan.arena_bytes as u64),
        plan.kernels
    )?;
    let fused = plan.steps.iter().filter(|s| s.ops.len() > 1).count();
    writeln!(out, "  fused    {fused} steps compute more than one node")?;
    let fallbacks: Vec<String> = plan.fallback_ops.iter().map(|(op, n)| format!("{op} {n}")).collect();
    writeln!(out, "  fallback {}", if fallbacks.is_empty() { "none".to_string() } else { fallbacks.join(", ") })?;
    for s in &plan.steps {
        writeln!(out, "    {:<16} {:<40} {}", s.engine_label(), s.ops.join("+"), s.nodes.join(", "))?;
    }
    Ok(())
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
