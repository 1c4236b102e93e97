//! The `kiln` command line: argument parsing (clap derive), one module per command, and the
//! error reporting every command shares (`error: <message>` with its causes, non-zero exit).
//! [`run`] takes its arguments and output streams as parameters so tests drive it in-process.

mod bench;
mod classes;
mod compile;
mod conformance;
mod inspect;
mod limits;
mod opt;
mod progress;
mod prune;
mod report;
mod run;
mod trace;

use crate::KilnError;
use clap::{ColorChoice, Parser, Subcommand};
use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;

/// Kiln: an ONNX compiler for neural networks.
#[derive(Debug, Parser)]
#[command(name = "kiln", version, color = ColorChoice::Never)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// No progress bars (they are drawn only on a terminal, and never with --json).
    #[arg(short, long, global = true)]
    quiet: bool,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Show a model's inputs, outputs, op histogram, parameter count, FLOPs and opset.
    Inspect(inspect::Args),
    /// Run a model on given or generated inputs; write each output as .npy.
    Run(run::Args),
    /// Optimize a model (constant folding, dead-code removal) and write it back as ONNX.
    Opt(opt::Args),
    /// Run the ONNX node conformance suite and print a per-op pass/fail table.
    Conformance(conformance::Args),
    /// Compile ahead of time: an object file of kernels, the optimized model and Rust glue.
    Compile(compile::Args),
    /// Time a model on the JIT and the interpreter; report compile time by phase.
    Bench(bench::Args),
    /// Write an HTML report: the graph before and after optimization, the passes, the profile, memory.
    Report(report::Args),
    /// Remove whole channels under a FLOPs or parameter budget and write the model as ONNX.
    Prune(prune::Args),
}

/// Runs the `kiln` command line on `args` (the first is the program name). Results go to `out`,
/// diagnostics to `err`. Returns the process exit code: 0 on success, 1 when the command failed,
/// 2 for bad usage.
pub fn run(args: impl IntoIterator<Item = OsString>, out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let stream: &mut dyn Write = if e.use_stderr() { err } else { out };
            // Nothing sensible remains to be done if the terminal itself cannot be written.
            let _ = write!(stream, "{}", e.render());
            return e.exit_code();
        }
    };
    let result = match cli.command {
        Command::Inspect(args) => inspect::execute(args, out),
        Command::Run(args) => run::execute(args, out),
        Command::Opt(args) => opt::execute(args, out),
        Command::Conformance(args) => conformance::execute(args, out, !cli.quiet),
        Command::Compile(args) => compile::execute(args, out),
        Command::Bench(args) => bench::execute(args, out, !cli.quiet),
        Command::Report(args) => report::execute(args, out, !cli.quiet),
        Command::Prune(args) => prune::execute(args, out),
    };
    match result {
        Ok(()) => 0,
        Err(e) => {
            let _ = writeln!(err, "error: {}", e.report());
            1
        }
    }
}

/// Parses `NAME=VALUE` into its two halves.
fn split_assignment(s: &str, what: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((name, value)) if !name.is_empty() && !value.is_empty() => Ok((name.to_string(), value.to_string())),
        _ => Err(format!("expected {what}, got '{s}'")),
    }
}

/// `--dim SYM=N`.
fn parse_dim(s: &str) -> Result<(String, usize), String> {
    let (sym, n) = split_assignment(s, "SYM=N")?;
    let n = n.parse::<usize>().map_err(|_| format!("'{n}' is not a non-negative integer (in '{s}')"))?;
    Ok((sym, n))
}

/// `--input NAME=FILE.npy`.
fn parse_input(s: &str) -> Result<(String, PathBuf), String> {
    split_assignment(s, "NAME=FILE.npy").map(|(name, path)| (name, PathBuf::from(path)))
}

/// Prints a report as one pretty JSON object.
fn print_json(out: &mut dyn Write, report: &impl serde::Serialize) -> Result<(), KilnError> {
    let text = serde_json::to_string_pretty(report).map_err(|e| KilnError::Report(e.into()))?;
    writeln!(out, "{text}").map_err(KilnError::Report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cli(args: &[&str]) -> (i32, String, String) {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let code = run(args.iter().map(OsString::from), &mut out, &mut err);
        (code, String::from_utf8_lossy(&out).into_owned(), String::from_utf8_lossy(&err).into_owned())
    }

    #[test]
    fn usage_errors_exit_2_and_help_exits_0() {
        let (code, out, _) = cli(&["kiln", "--help"]);
        assert_eq!(code, 0);
        assert!(out.contains("inspect") && out.contains("opt"), "{out}");
        let (code, _, err) = cli(&["kiln", "run", "m.onnx", "--dim", "batch"]);
        assert_eq!(code, 2);
        assert!(err.contains("SYM=N"), "{err}");
        let (code, _, err) = cli(&["kiln", "run", "m.onnx", "--backend", "gpu"]);
        assert_eq!(code, 2);
        assert!(err.contains("interp") && err.contains("jit"), "{err}");
    }

    #[test]
    fn assignments_parse() {
        assert_eq!(parse_dim("batch=8"), Ok(("batch".to_string(), 8)));
        assert!(parse_dim("batch=-1").is_err());
        assert!(parse_dim("=3").is_err());
        assert_eq!(parse_input("x=a=b.npy"), Ok(("x".to_string(), PathBuf::from("a=b.npy"))));
    }
}
