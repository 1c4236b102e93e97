//! `kiln report MODEL -o REPORT.html [--input NAME=FILE.npy]... [--dim SYM=N]... [--threads N]
//! [--runs N] [--no-interp] [--json]`: optimizes, compiles, profiles and times a model, and
//! writes what it found as one self-contained HTML page (see [`crate::report`]).

use super::bench::{measure, profile_steps};
use super::limits::{InputArgs, LimitArgs};
use super::{parse_dim, parse_input, print_json};
use crate::driver::{files, Session};
use crate::report::{self, graph_svg, Page, Step};
use crate::stats::ModelStats;
use crate::KilnError;
use kiln_backends::interp::Interpreter;
use kiln_backends::jit::Jit;
use kiln_backends::Backend;
use kiln_ir::op::Unary;
use kiln_ir::{DType, Dim, Graph, NodeId, Op, Tensor, TensorType};
use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The ONNX model file.
    model: PathBuf,
    /// Where to write the HTML report.
    #[arg(short, long, value_name = "REPORT.html")]
    output: PathBuf,
    /// An input tensor from a .npy file; inputs not given get deterministic pseudo-random values.
    #[arg(long = "input", value_name = "NAME=FILE.npy", value_parser = parse_input)]
    inputs: Vec<(String, PathBuf)>,
    /// A value for a symbolic dim of the model's inputs.
    #[arg(long = "dim", value_name = "SYM=N", value_parser = parse_dim)]
    dims: Vec<(String, usize)>,
    /// Worker threads of the JIT (all cores when omitted).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    threads: Option<u32>,
    /// Timed runs of each backend and of the profile.
    #[arg(long, value_name = "N", default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
    runs: u32,
    /// Do not time the interpreter.
    #[arg(long)]
    no_interp: bool,
    /// Print one JSON object (what was written, and the headline figures) instead of text.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    limits: LimitArgs,
    #[command(flatten)]
    generated: InputArgs,
}

#[derive(serde::Serialize)]
struct Written {
    model: PathBuf,
    report: PathBuf,
    bytes: usize,
    jit_median_ms: f64,
    interp_median_ms: Option<f64>,
    steps: usize,
    interpreter_steps: usize,
}

const WARMUP: u32 = 1;

pub fn execute(args: Args, out: &mut dyn Write, progress: bool) -> Result<(), KilnError> {
    let threads = match args.threads {
        Some(n) => n as usize,
        None => std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    let limits = args.limits.limits();
    let mut session = Session::load_with(&args.model, limits)?;
    let given = session.read_inputs(&args.inputs)?;
    let inputs = session.prepare(&args.dims, given, args.generated.memory(&limits))?;
    let before = ModelStats::of(session.model());
    let neutral = |_| graph_svg::NodeStyle { fill: report::engine_colour("").into(), ..Default::default() };
    let graph_before = graph_svg::draw(&session.model().graph, &neutral)?;
    let passes = session.optimize()?;
    let after = ModelStats::of(session.model());
    let graph = &session.model().graph;

    let jit = Jit::with_threads(threads);
    let compiled = jit.compile(graph).map_err(KilnError::exec("jit"))?;
    let plan = compiled.report().clone();
    let interp_runs = if args.no_interp { 0 } else { args.runs.min(3) };
    let bar = super::progress::bar(u64::from(WARMUP + args.runs + interp_runs), "runs", progress && !args.json);
    let (_, jit_latency) = measure(&compiled, &inputs, WARMUP, args.runs, "jit", &bar)?;
    let (profiled, _) = profile_steps(&jit, graph, &inputs, WARMUP, args.runs)?;
    let interp_median_ms = match args.no_interp {
        true => None,
        false => {
            let exe = Interpreter.prepare(graph).map_err(KilnError::exec("interp"))?;
            Some(measure(exe.as_ref(), &inputs, 0, interp_runs, "interp", &bar)?.1.median_ms)
        }
    };

    // Each node's step: its engine colours it, and a step of several nodes bands them alike.
    let ids: HashMap<&str, NodeId> =
        graph.node_ids().into_iter().map(|id| (graph.node(id).name.as_str(), id)).collect();
    let mut step_of: HashMap<NodeId, (usize, String, usize)> = HashMap::new();
    for (i, s) in plan.steps.iter().enumerate() {
        for n in &s.nodes {
            if let Some(&id) = ids.get(n.as_str()) {
                step_of.insert(id, (i, s.engine_label(), s.nodes.len()));
            }
        }
    }
    let styled = |id: NodeId| match step_of.get(&id) {
        Some((i, engine, members)) => graph_svg::NodeStyle {
            fill: report::engine_colour(engine).into(),
            band: (*members > 1).then(|| format!("hsl({}, 65%, 40%)", (i * 137) % 360)),
            note: format!("step {i} ({engine})"),
        },
        None => graph_svg::NodeStyle {
            fill: "#ffffff".into(),
            note: "no step: an input, or a view of another value's bytes".into(),
            ..Default::default()
        },
    };
    let graph_after = graph_svg::draw(graph, &styled)?;
    let (live_bytes, intermediates_bytes) = report::schedule_memory(graph)?;
    let steps: Vec<Step> = profiled
        .iter()
        .map(|s| Step {
            ops: s.step.ops.join("+"),
            engine: s.step.engine_label(),
            nodes: s.step.nodes.join(", "),
            median_ms: s.latency.median_ms,
            share: s.share,
            gflop_per_s: s.gflop_per_s,
        })
        .collect();
    let interpreter_steps = steps.iter().filter(|s| s.engine == "interpreter").count();
    let page = Page {
        model: args.model.display().to_string(),
        dims: args.dims.iter().map(|(s, n)| format!("{s}={n}")).collect(),
        before,
        after,
        passes,
        graph_before,
        graph_after,
        steps,
        threads,
        jit_median_ms: jit_latency.median_ms,
        interp_median_ms,
        gemm_gflop_per_s: gemm_gflop_per_s(&jit),
        live_bytes,
        intermediates_bytes,
        arena_bytes: plan.arena_bytes as u64,
    };
    bar.finish_and_clear();
    let html = page.render();
    files::write_atomic(&args.output, html.clone().into_bytes())?;
    let written = Written {
        model: args.model,
        report: args.output,
        bytes: html.len(),
        jit_median_ms: jit_latency.median_ms,
        interp_median_ms,
        steps: page.steps.len(),
        interpreter_steps,
    };
    if args.json {
        print_json(out, &written)
    } else {
        writeln!(
            out,
            "report    {} ({} KiB): {} steps ({} on the interpreter), JIT median {:.3} ms",
            written.report.display(),
            written.bytes / 1024,
            written.steps,
            written.interpreter_steps,
            written.jit_median_ms
        )
        .map_err(KilnError::Report)
    }
}

/// What a 512³ product through this JIT reaches here (median of a few runs): the practical
/// peak the page sets each step's rate against. `None` if it cannot be measured.
fn gemm_gflop_per_s(jit: &Jit) -> Option<f64> {
    const N: usize = 512;
    let mut g = Graph::new("gemm-peak");
    let a = g.add_input("a", TensorType::new(DType::F32, [Dim::from(N), Dim::from(N)]));
    let b = g.add_const("b", Tensor::full(DType::F32, &[N, N], 0.5).ok()?);
    let c = g.add("c", Op::MatMul, &[a, b]).ok()?;
    let y = g.add("y", Op::Unary(Unary::Relu), &[c]).ok()?;
    g.set_outputs(vec![y]);
    let exe = jit.compile(&g).ok()?;
    let input = Tensor::full(DType::F32, &[N, N], 0.25).ok()?;
    let (_, latency) = measure(&exe, &[input], 1, 5, "jit", &indicatif::ProgressBar::hidden()).ok()?;
    Some(2.0 * (N * N * N) as f64 / (latency.median_ms * 1e6))
}
