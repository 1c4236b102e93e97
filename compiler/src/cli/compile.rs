//! `kiln compile MODEL -o DIR [--dim SYM=N]... [--prefix NAME] [--json]`: ahead-of-time compilation into an
//! object file of kernels, the optimized model and Rust glue (see [`crate::aot`]).

use super::limits::LimitArgs;
use super::{parse_dim, print_json};
use crate::aot::{self, Artifact};
use crate::driver::building;
use crate::KilnError;
use std::io::Write;
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The ONNX model file.
    model: PathBuf,
    /// The folder to write model.onnx, kernels.o and kernels.rs into.
    #[arg(short = 'o', long = "output", value_name = "DIR")]
    output: PathBuf,
    /// Prefix of the kernel symbols (a Rust identifier; distinct per model linked into one program).
    #[arg(long, default_value = "kiln")]
    prefix: String,
    /// A value for a symbolic dim of the model's inputs (ahead-of-time code needs every dim bound).
    #[arg(long = "dim", value_name = "SYM=N", value_parser = parse_dim)]
    dims: Vec<(String, usize)>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    limits: LimitArgs,
}

pub fn execute(args: Args, out: &mut dyn Write) -> Result<(), KilnError> {
    let limits = building(&args.limits.limits());
    let compile = || aot::compile_dir(&args.model, &args.output, &args.prefix, &args.dims);
    let artifact = kiln_ir::limits::scoped(&limits, compile)?;
    if args.json {
        print_json(out, &artifact)
    } else {
        print_text(out, &artifact).map_err(KilnError::Report)
    }
}

fn print_text(out: &mut dyn Write, a: &Artifact) -> std::io::Result<()> {
    writeln!(out, "{} kernels ({} bytes of code), fingerprint {}", a.kernels, a.object_bytes, a.fingerprint)?;
    for f in &a.files {
        writeln!(out, "  wrote {}", f.display())?;
    }
    writeln!(out, "link kernels.o into the host and call kiln::aot::load (see examples/aot-host)")
}
