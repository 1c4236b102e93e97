//! `kiln bench MODEL [--input NAME=FILE.npy]... [--dim SYM=N]... [--threads N] [--runs N]
//! [--warmup N] [--json] [--no-interp] [--profile [N]] [--trace FILE.json]
//! [limit flags]`: times a model on the JIT and on the
//! interpreter (median and minimum latency, and their ratio), and its compilation split into
//! import, passes and code generation; with `--profile`, also each step of the JIT's plan, and
//! with `--trace`, those step times as a Chrome trace (see [`super::trace`]).
//! Compile time and run time are kept apart: every timed run reuses one prepared executable,
//! after warm-up runs that are not counted.

use super::limits::{InputArgs, LimitArgs};
use super::{parse_dim, parse_input, print_json, trace};
use crate::driver::{building, files, Session};
use crate::stats;
use crate::KilnError;
use indicatif::ProgressBar;
use kiln_backends::interp::Interpreter;
use kiln_backends::jit::{Engine, Jit, PlanStep, StepTimes};
use kiln_backends::{Backend, Executable};
use kiln_ir::{NodeId, Tensor};
use serde::Serialize;
use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

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
    /// Worker threads of the JIT (at least 1; all cores when omitted). The interpreter is
    /// single-threaded.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    threads: Option<u32>,
    /// Timed runs of each backend; the median and minimum are reported.
    #[arg(long, value_name = "N", default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
    runs: u32,
    /// Untimed runs of each backend before the timed ones.
    #[arg(long, value_name = "N", default_value_t = 2)]
    warmup: u32,
    /// Skip the interpreter (it takes seconds per run on the larger models).
    #[arg(long)]
    no_interp: bool,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
    /// Also time every step of the JIT's plan, in separate runs (as many as `--runs`, after the
    /// warm-up), and list the N slowest (15 when N is omitted; JSON lists every step).
    #[arg(long, value_name = "N", num_args = 0..=1, default_missing_value = "15")]
    profile: Option<usize>,
    /// Also profile the plan's steps (as `--profile` does) and write every step of every profiled
    /// run as Chrome trace-event JSON, which Perfetto and chrome://tracing open.
    #[arg(long, value_name = "FILE.json")]
    trace: Option<PathBuf>,
    #[command(flatten)]
    limits: LimitArgs,
    #[command(flatten)]
    generated: InputArgs,
}

#[derive(Serialize)]
struct Report {
    model: PathBuf,
    threads: usize,
    runs: u32,
    warmup: u32,
    jit: Latency,
    /// `None` with `--no-interp`.
    interp: Option<Latency>,
    /// Interpreter median over JIT median: how many times faster the JIT is.
    ratio: Option<f64>,
    /// The largest absolute difference between any JIT and interpreter output element.
    max_abs_diff: Option<f64>,
    compile_ms: CompileMs,
    /// The process's peak resident memory after the JIT runs (before the interpreter runs);
    /// `None` where the system does not report it.
    peak_rss_bytes: Option<u64>,
    /// With `--profile`: every step of the JIT's plan, in plan order.
    #[serde(skip_serializing_if = "Option::is_none")]
    profile: Option<Vec<StepReport>>,
}

/// One step of the plan under `--profile`.
#[derive(Serialize)]
pub(super) struct StepReport {
    #[serde(flatten)]
    pub step: PlanStep,
    #[serde(flatten)]
    pub latency: Latency,
    /// This step's median over the sum of all steps' medians.
    pub share: f64,
    /// The step's estimated FLOPs (as `kiln inspect` counts them) over its median time; `None`
    /// for steps that only move data.
    pub gflop_per_s: Option<f64>,
}

#[derive(Serialize)]
pub(super) struct Latency {
    pub median_ms: f64,
    pub min_ms: f64,
}

#[derive(Serialize)]
struct CompileMs {
    /// ONNX file to IR.
    import: f64,
    /// Constant folding and dead-code removal (the light models' weights are folded here).
    passes: f64,
    /// The JIT's `prepare`: lowering, Cranelift code generation, memory planning.
    codegen: f64,
}

pub fn execute(args: Args, out: &mut dyn Write, progress: bool) -> Result<(), KilnError> {
    let threads = match args.threads {
        Some(n) => n as usize,
        None => std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    let limits = args.limits.limits();
    let (session, import) = timed(|| Session::load_with(&args.model, limits));
    let mut session = session?;
    let given = session.read_inputs(&args.inputs)?;
    let inputs = session.prepare(&args.dims, given, args.generated.memory(&limits))?;
    let (stats, passes) = timed(|| session.optimize());
    stats?;
    let graph = &session.model().graph;

    let jit = Jit::with_threads(threads);
    let (exe, codegen) = timed(|| kiln_ir::limits::scoped(&building(&limits), || jit.prepare(graph)));
    let exe = exe.map_err(KilnError::exec("jit"))?;
    let backends = if args.no_interp { 1 } else { 2 };
    let bar = super::progress::bar(u64::from(args.warmup + args.runs) * backends, "runs", progress && !args.json);
    // The limits' deadline holds for all runs of one backend together.
    let measure = |exe: &dyn Executable, backend| {
        kiln_ir::limits::scoped(&limits, || measure(exe, &inputs, args.warmup, args.runs, backend, &bar))
    };
    let (jit_outputs, jit_latency) = measure(exe.as_ref(), "jit")?;
    drop(exe);
    let peak_rss_bytes = peak_rss_bytes();
    let profile = match (args.profile, &args.trace) {
        (None, None) => None,
        _ => {
            let profile = || profile_steps(&jit, graph, &inputs, args.warmup, args.runs);
            let (steps, times) = kiln_ir::limits::scoped(&building(&limits), profile)?;
            if let Some(path) = &args.trace {
                let name = args.model.file_name().map_or_else(String::new, |n| n.to_string_lossy().into_owned());
                files::write_all_atomic(&[(path.clone(), trace::to_json(&name, threads, &times))])?;
            }
            args.profile.map(|_| steps)
        }
    };

    let mut report = Report {
        model: args.model,
        threads,
        runs: args.runs,
        warmup: args.warmup,
        jit: jit_latency,
        interp: None,
        ratio: None,
        max_abs_diff: None,
        compile_ms: CompileMs { import, passes, codegen },
        peak_rss_bytes,
        profile,
    };
    if !args.no_interp {
        let exe = Interpreter.prepare(graph).map_err(KilnError::exec("interp"))?;
        let (interp_outputs, latency) = measure(exe.as_ref(), "interp")?;
        report.ratio = Some(latency.median_ms / report.jit.median_ms);
        report.max_abs_diff = Some(stats::max_abs_diff(&jit_outputs, &interp_outputs));
        report.interp = Some(latency);
    }
    bar.finish_and_clear();
    if args.json {
        print_json(out, &report)
    } else {
        print_text(out, &report, args.profile.unwrap_or(0)).map_err(KilnError::Report)
    }
}

/// Compiles `graph` again (the plan `measure` timed is behind the `Executable` trait) and times
/// each of its steps over `runs` runs after `warmup` untimed ones: each step's summary, and
/// every step's time in every run.
pub(super) fn profile_steps(
    jit: &Jit,
    graph: &kiln_ir::Graph,
    inputs: &[Tensor],
    warmup: u32,
    runs: u32,
) -> Result<(Vec<StepReport>, Vec<StepTimes>), KilnError> {
    let compiled = jit.compile(graph).map_err(KilnError::exec("jit"))?;
    for _ in 0..warmup {
        compiled.run(inputs).map_err(KilnError::exec("jit"))?;
    }
    let steps = compiled.profile(inputs, runs as usize).map_err(KilnError::exec("jit"))?;
    let timed: Vec<(PlanStep, Latency)> = steps.iter().map(|s| (s.step.clone(), Latency::of(s.ms.clone()))).collect();
    let total: f64 = timed.iter().map(|(_, l)| l.median_ms).sum();
    let ids: HashMap<&str, NodeId> =
        graph.node_ids().into_iter().map(|id| (graph.node(id).name.as_str(), id)).collect();
    let flops = |nodes: &[String]| -> Option<u64> {
        nodes.iter().map(|n| ids.get(n.as_str()).and_then(|&id| stats::node_flops(graph, id))).sum()
    };
    let reports = timed
        .into_iter()
        .map(|(step, latency)| StepReport {
            share: if total > 0.0 { latency.median_ms / total } else { 0.0 },
            gflop_per_s: flops(&step.nodes)
                .filter(|&f| f > 0 && latency.median_ms > 0.0)
                .map(|f| f as f64 / (latency.median_ms * 1e6)),
            step,
            latency,
        })
        .collect();
    Ok((reports, steps))
}

/// Runs `f` and returns its result with the wall time it took, in milliseconds.
fn timed<T>(f: impl FnOnce() -> T) -> (T, f64) {
    let start = Instant::now();
    let result = f();
    (result, start.elapsed().as_secs_f64() * 1e3)
}

/// `warmup` untimed runs then `runs` timed ones, each a step of `bar`; returns the last run's
/// outputs and the latency.
pub(super) fn measure(
    exe: &dyn Executable,
    inputs: &[Tensor],
    warmup: u32,
    runs: u32,
    backend: &'static str,
    bar: &ProgressBar,
) -> Result<(Vec<Tensor>, Latency), KilnError> {
    let mut outputs = Vec::new();
    for _ in 0..warmup {
        outputs = exe.run(inputs).map_err(KilnError::exec(backend))?;
        bar.inc(1);
    }
    let mut times = Vec::with_capacity(runs as usize);
    for _ in 0..runs {
        let (result, ms) = timed(|| exe.run(inputs));
        outputs = result.map_err(KilnError::exec(backend))?;
        times.push(ms);
        bar.inc(1);
    }
    Ok((outputs, Latency::of(times)))
}

impl Latency {
    /// The median (the mean of the middle two for an even count) and minimum of `times`, which
    /// is not empty.
    fn of(mut times: Vec<f64>) -> Latency {
        times.sort_by(f64::total_cmp);
        let n = times.len();
        let median_ms = if n % 2 == 1 { times[n / 2] } else { (times[n / 2 - 1] + times[n / 2]) / 2.0 };
        Latency { median_ms, min_ms: times[0] }
    }
}

/// The peak resident set size of this process (`VmHWM` in `/proc/self/status`, Linux only).
fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find_map(|l| l.strip_prefix("VmHWM:"))?;
    let kib: u64 = line.trim().strip_suffix("kB")?.trim().parse().ok()?;
    Some(kib * 1024)
}

fn print_text(out: &mut dyn Write, r: &Report, slowest: usize) -> std::io::Result<()> {
    let c = &r.compile_ms;
    writeln!(out, "model     {}", r.model.display())?;
    writeln!(out, "runs      {} timed after {} warm-up, JIT on {} thread(s)", r.runs, r.warmup, r.threads)?;
    writeln!(
        out,
        "compile   {:.1} ms: import {:.1}, passes {:.1}, codegen {:.1}",
        c.import + c.passes + c.codegen,
        c.import,
        c.passes,
        c.codegen
    )?;
    writeln!(out, "{:<10}{:>12}{:>12}", "backend", "median ms", "min ms")?;
    let row = |name: &str, l: &Latency| format!("{name:<10}{:>12.3}{:>12.3}", l.median_ms, l.min_ms);
    writeln!(out, "{}", row("jit", &r.jit))?;
    match &r.interp {
        Some(l) => writeln!(out, "{}", row("interp", l))?,
        None => writeln!(out, "{:<10}{:>12}{:>12}", "interp", "skipped", "-")?,
    }
    if let (Some(ratio), Some(diff)) = (r.ratio, r.max_abs_diff) {
        writeln!(out, "ratio     the JIT is {ratio:.2}x the interpreter's speed (max |diff| {diff:.3e})")?;
    }
    if let Some(bytes) = r.peak_rss_bytes {
        writeln!(out, "peak RSS  {:.1} MiB (through the JIT runs)", bytes as f64 / (1024.0 * 1024.0))?;
    }
    if let Some(steps) = &r.profile {
        print_profile(out, steps, slowest)?;
    }
    Ok(())
}

/// The `slowest` steps by median with their FLOP rate, then every op's share (a step counts under its first op: the
/// anchor of a fused group).
fn print_profile(out: &mut dyn Write, steps: &[StepReport], slowest: usize) -> std::io::Result<()> {
    let total: f64 = steps.iter().map(|s| s.latency.median_ms).sum();
    writeln!(out, "profile   {} steps, {total:.3} ms in all (sum of step medians); the slowest:", steps.len())?;
    let mut order: Vec<&StepReport> = steps.iter().collect();
    order.sort_by(|a, b| b.latency.median_ms.total_cmp(&a.latency.median_ms));
    for s in order.iter().take(slowest) {
        let rate = s.gflop_per_s.map_or_else(|| "-".to_owned(), |g| format!("{g:.1}"));
        writeln!(
            out,
            "{:>12.3} ms {:>6.1}% {:>8} GFLOP/s  {:<16} {} [{}]",
            s.latency.median_ms,
            100.0 * s.share,
            rate,
            s.step.engine_label(),
            s.step.ops.join("+"),
            s.step.nodes.join(", ")
        )?;
    }
    let mut by_op: Vec<(&str, f64)> = Vec::new();
    for s in steps {
        let op = s.step.ops.first().map_or("", String::as_str);
        match by_op.iter_mut().find(|(o, _)| *o == op) {
            Some((_, share)) => *share += s.share,
            None => by_op.push((op, s.share)),
        }
    }
    by_op.sort_by(|a, b| b.1.total_cmp(&a.1));
    let shares: Vec<String> = by_op.iter().map(|(op, share)| format!("{op} {:.1}%", 100.0 * share)).collect();
    writeln!(out, "by op     {}", shares.join(", "))?;
    writeln!(out, "engines   {}", engine_shares(steps))
}

/// Where the time went by engine: native (and each native engine's part), then the
/// interpreter fallback with the ops that fell back.
fn engine_shares(steps: &[StepReport]) -> String {
    // An empty sum is -0.0; adding 0.0 prints it as 0.0.
    let share = |f: &dyn Fn(Engine) -> bool| -> f64 {
        steps.iter().filter(|s| f(s.step.engine)).map(|s| s.share).sum::<f64>() + 0.0
    };
    let native: Vec<String> = [Engine::Gemm, Engine::Cranelift, Engine::Host]
        .into_iter()
        .map(|e| format!("{} {:.1}%", PlanStep::engine_name(e), 100.0 * share(&|x| x == e)))
        .collect();
    let fallback: Vec<&str> = steps
        .iter()
        .filter(|s| s.step.engine == Engine::Interpreter)
        .filter_map(|s| s.step.ops.first().map(String::as_str))
        .collect();
    let interp = share(&|e| e == Engine::Interpreter);
    let listed = if fallback.is_empty() { String::new() } else { format!(" ({})", fallback.join(", ")) };
    format!(
        "native {:.1}% ({}), interpreter fallback {:.1}% in {} steps{listed}",
        100.0 * (1.0 - interp),
        native.join(", "),
        100.0 * interp,
        fallback.len()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        let l = Latency::of(vec![3.0, 1.0, 2.0]);
        assert_eq!((l.median_ms, l.min_ms), (2.0, 1.0));
        let l = Latency::of(vec![4.0, 1.0, 3.0, 2.0]);
        assert_eq!((l.median_ms, l.min_ms), (2.5, 1.0));
    }
}
