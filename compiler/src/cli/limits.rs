//! The resource-limit flags every command that loads a model shares (`--max-tensor-bytes`,
//! `--max-total-bytes`, `--max-nodes`, `--max-nesting`, `--max-loop-iterations`, `--timeout`),
//! and `--max-input-bytes` for the commands that generate inputs. Flags not given keep the
//! defaults of [`Limits::from_system`].

use crate::driver::memory::{self, DEFAULT_GENERATED_INPUT_BYTES};
use crate::Limits;
use std::time::Duration;

/// Flags for [`Limits`].
#[derive(Clone, Debug, Default, clap::Args)]
pub struct LimitArgs {
    /// Largest tensor Kiln allocates (initializers, constants, kernel outputs), in bytes; K, M, G
    /// and T suffixes are powers of 1024 [default: half of the machine's memory]
    #[arg(long, value_name = "BYTES", value_parser = parse_bytes)]
    max_tensor_bytes: Option<u64>,
    /// Most bytes of values alive at once in a run [default: three quarters of the memory]
    #[arg(long, value_name = "BYTES", value_parser = parse_bytes)]
    max_total_bytes: Option<u64>,
    /// Most nodes in the model, nested graphs included [default: 4194304]
    #[arg(long, value_name = "N")]
    max_nodes: Option<usize>,
    /// Deepest nesting of subgraphs (If/Loop/Scan bodies) [default: 32]
    #[arg(long, value_name = "N")]
    max_nesting: Option<usize>,
    /// Most iterations of one Loop or Scan [default: 16777216]
    #[arg(long, value_name = "N")]
    max_loop_iterations: Option<u64>,
    /// Wall-clock limit for each run of the model, in seconds [default: none]
    #[arg(long, value_name = "SECS", value_parser = parse_secs)]
    timeout: Option<Duration>,
}

impl LimitArgs {
    /// The defaults with the flags given applied.
    pub fn limits(&self) -> Limits {
        let d = Limits::default();
        Limits {
            max_tensor_bytes: self.max_tensor_bytes.unwrap_or(d.max_tensor_bytes),
            max_total_bytes: self.max_total_bytes.unwrap_or(d.max_total_bytes),
            max_nodes: self.max_nodes.unwrap_or(d.max_nodes),
            max_nesting: self.max_nesting.unwrap_or(d.max_nesting),
            max_loop_iterations: self.max_loop_iterations.unwrap_or(d.max_loop_iterations),
            deadline: self.timeout.or(d.deadline),
        }
    }
}

/// `--max-input-bytes`, for the commands that make up inputs not given.
#[derive(Clone, Debug, clap::Args)]
pub struct InputArgs {
    /// Largest input Kiln generates for an input not given with --input (bytes; K, M, G, T
    /// suffixes) [default: 256M]
    #[arg(long, value_name = "BYTES", value_parser = parse_bytes, default_value_t = DEFAULT_GENERATED_INPUT_BYTES, hide_default_value = true)]
    max_input_bytes: u64,
}

impl InputArgs {
    /// The memory check for a run under `limits`, generating inputs up to the flag's size.
    pub fn memory(&self, limits: &Limits) -> memory::Limit {
        memory::Limit::from_limits(limits).generating_up_to(self.max_input_bytes)
    }
}

/// `1048576`, `512K`, `256M`, `1.5G`, `2GiB`, `1T`: binary multiples.
fn parse_bytes(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let lower = t.to_ascii_lowercase();
    let digits = lower.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let unit = &lower[digits.len()..];
    let shift = match unit {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        _ => return Err(format!("'{s}' is not a size (use bytes or a K, M, G or T suffix)")),
    };
    let value: f64 = digits.trim().parse().map_err(|_| format!("'{s}' is not a size"))?;
    let bytes = value * (1u64 << shift) as f64;
    if !(0.0..=u64::MAX as f64).contains(&bytes) {
        return Err(format!("'{s}' is not a size Kiln can use"));
    }
    Ok(bytes as u64)
}

/// `2`, `0.5`: seconds.
fn parse_secs(s: &str) -> Result<Duration, String> {
    let secs: f64 = s.parse().map_err(|_| format!("'{s}' is not a number of seconds"))?;
    Duration::try_from_secs_f64(secs).map_err(|_| format!("'{s}' is not a usable number of seconds"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_times_parse() {
        assert_eq!(parse_bytes("1048576"), Ok(1 << 20));
        assert_eq!(parse_bytes("256M"), Ok(256 << 20));
        assert_eq!(parse_bytes("1.5GiB"), Ok(3 << 29));
        assert_eq!(parse_bytes("2g"), Ok(2 << 30));
        assert!(parse_bytes("12 parsecs").is_err());
        assert!(parse_bytes("-1G").is_err());
        assert_eq!(parse_secs("0.25"), Ok(Duration::from_millis(250)));
        assert!(parse_secs("-1").is_err() && parse_secs("soon").is_err());
    }

    #[test]
    fn flags_not_given_keep_the_defaults() {
        let args = LimitArgs { max_nodes: Some(10), ..LimitArgs::default() };
        assert_eq!(args.limits(), Limits { max_nodes: 10, ..Limits::default() });
    }
}
