//! [`Limits`]: the resource bounds no model may make Kiln pass — bytes per tensor and in total,
//! nodes, subgraph nesting, `Loop` iterations and a wall-clock deadline per run — and the scope
//! that makes one set of limits the current one on a thread.
//!
//! Every layer asks [`current`] instead of taking limits as a parameter: tensor allocation
//! ([`crate::tensor::check_alloc`]) and shape inference in `ir`, import in the compiler, the
//! interpreter's runner and its `Loop`/`Scan`. The embedding API and the CLI enter a scope with the
//! user's limits around import, compilation and each run ([`scoped`]); outside any scope the
//! defaults apply ([`Limits::from_system`]), so a library caller that never heard of limits is
//! still protected.
//!
//! ```
//! use kiln_ir::limits::{self, Limits};
//! let tight = Limits { max_tensor_bytes: 1 << 20, ..Limits::default() };
//! let err = limits::scoped(&tight, || kiln_ir::Tensor::zeros(kiln_ir::DType::F32, &[1 << 20]));
//! assert!(err.unwrap_err().to_string().contains("max_tensor_bytes"));
//! assert!(kiln_ir::Tensor::zeros(kiln_ir::DType::F32, &[1 << 20]).is_ok(), "outside: the defaults");
//! ```

use std::cell::Cell;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The most dims a tensor may have. Shape inputs, `axes` lists and declared shapes longer than
/// this are corrupt; without the check a shape input declared with 2^31 entries becomes 2^31
/// symbolic dims in memory.
pub const MAX_RANK: usize = 64;

/// Resource bounds for importing, compiling and running one model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest single tensor (bytes): initializers, folded constants, kernel outputs, inputs.
    pub max_tensor_bytes: u64,
    /// Most bytes of values alive at once in a run (the estimate before it, the live values
    /// during it, a `Loop`'s accumulated scan outputs).
    pub max_total_bytes: u64,
    /// Most nodes in a model, nested graphs included.
    pub max_nodes: usize,
    /// Deepest nesting of subgraphs (an If inside a Loop body is depth 2).
    pub max_nesting: usize,
    /// Most iterations of one `Loop` or `Scan`.
    pub max_loop_iterations: u64,
    /// Wall-clock time one run may take (`None`: no deadline).
    pub deadline: Option<Duration>,
}

/// Default share of the memory budget one run may hold: three quarters.
const TOTAL_SHARE: (u64, u64) = (3, 4);
/// Default share of the memory budget one tensor may take: half.
const TENSOR_SHARE: (u64, u64) = (1, 2);
/// The memory budget when the system cannot be asked: 8 GiB.
const FALLBACK_BUDGET: u64 = 8 << 30;

impl Limits {
    /// The defaults: shares of this machine's memory — physical memory, or less where the
    /// process's address space (`ulimit -v`) or cgroup is capped — 4 million nodes, nesting 32,
    /// 2^24 loop iterations, no deadline. Read once per process.
    pub fn from_system() -> Limits {
        static SYSTEM: OnceLock<Limits> = OnceLock::new();
        *SYSTEM.get_or_init(|| Limits::for_budget(memory_budget()))
    }

    /// The default limits for a machine with `budget` bytes of memory.
    pub fn for_budget(budget: u64) -> Limits {
        let share = |(num, den): (u64, u64)| budget / den * num;
        Limits {
            max_tensor_bytes: share(TENSOR_SHARE),
            max_total_bytes: share(TOTAL_SHARE),
            max_nodes: 4 << 20,
            max_nesting: 32,
            max_loop_iterations: 1 << 24,
            deadline: None,
        }
    }
}

impl Default for Limits {
    fn default() -> Limits {
        Limits::from_system()
    }
}

/// Which limit was passed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Limit {
    TensorBytes,
    TotalBytes,
    Nodes,
    Nesting,
    LoopIterations,
    Deadline,
}

impl Limit {
    /// The field of [`Limits`] that sets it.
    pub fn name(self) -> &'static str {
        match self {
            Limit::TensorBytes => "max_tensor_bytes",
            Limit::TotalBytes => "max_total_bytes",
            Limit::Nodes => "max_nodes",
            Limit::Nesting => "max_nesting",
            Limit::LoopIterations => "max_loop_iterations",
            Limit::Deadline => "deadline",
        }
    }

    /// The `kiln` flag that sets it.
    pub fn flag(self) -> &'static str {
        match self {
            Limit::TensorBytes => "--max-tensor-bytes",
            Limit::TotalBytes => "--max-total-bytes",
            Limit::Nodes => "--max-nodes",
            Limit::Nesting => "--max-nesting",
            Limit::LoopIterations => "--max-loop-iterations",
            Limit::Deadline => "--timeout",
        }
    }

    fn show(self, value: u64) -> String {
        match self {
            Limit::TensorBytes | Limit::TotalBytes => show_bytes(Some(value)),
            Limit::Deadline => format!("{:.3} s", value as f64 / 1e3),
            Limit::Nodes | Limit::Nesting | Limit::LoopIterations => value.to_string(),
        }
    }
}

/// A limit was passed. The caller that knows the node wraps it with the node's name.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{what}, over the {} limit of {} (set with {})", limit.name(), limit.show(*value), limit.flag())]
pub struct LimitError {
    pub limit: Limit,
    /// The limit's value (bytes, count, or milliseconds for the deadline).
    pub value: u64,
    /// What went over it.
    pub what: String,
}

impl LimitError {
    pub fn new(limit: Limit, value: u64, what: impl Into<String>) -> LimitError {
        LimitError { limit, value, what: what.into() }
    }
}

/// The limits in force on this thread, with the current run's deadline as an instant.
#[derive(Clone, Copy)]
struct Active {
    limits: Limits,
    deadline: Option<Instant>,
}

thread_local! {
    static ACTIVE: Cell<Option<Active>> = const { Cell::new(None) };
}

/// Restores the enclosing scope's limits when a scope ends (also when it unwinds).
struct Restore(Option<Active>);

impl Drop for Restore {
    fn drop(&mut self) {
        ACTIVE.with(|a| a.set(self.0));
    }
}

/// Runs `f` with `limits` current on this thread; its deadline, if any, starts now. A scope
/// inside another keeps the earlier of the two deadlines.
pub fn scoped<R>(limits: &Limits, f: impl FnOnce() -> R) -> R {
    let outer = ACTIVE.with(Cell::get);
    let mine = limits.deadline.map(|d| Instant::now() + d);
    let deadline = match (outer.and_then(|o| o.deadline), mine) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    ACTIVE.with(|a| a.set(Some(Active { limits: *limits, deadline })));
    let _restore = Restore(outer);
    f()
}

/// The limits in force on this thread: the innermost [`scoped`] call's, else the defaults.
pub fn current() -> Limits {
    ACTIVE.with(Cell::get).map_or_else(Limits::from_system, |a| a.limits)
}

/// An error once the current run's deadline has passed. Cheap (no allocation until it fails), so
/// runners call it between nodes and iterations.
pub fn check_deadline() -> Result<(), LimitError> {
    let Some(Active { limits, deadline: Some(at) }) = ACTIVE.with(Cell::get) else { return Ok(()) };
    if Instant::now() < at {
        return Ok(());
    }
    let ms = limits.deadline.map_or(0, |d| d.as_millis().min(u64::MAX as u128) as u64);
    Err(LimitError::new(Limit::Deadline, ms, "the run did not finish in time"))
}

/// `1.5 GiB`; `more than 16 EiB` for a size that overflows.
pub fn show_bytes(bytes: Option<u64>) -> String {
    const UNITS: [&str; 7] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    let Some(bytes) = bytes else { return "more than 16 EiB".into() };
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// The memory this process may use: the least of physical memory, the address-space limit and
/// the cgroup's memory limit.
fn memory_budget() -> u64 {
    let read = |path: &str| std::fs::read_to_string(path).ok();
    let physical = read("/proc/meminfo").and_then(|t| meminfo_total(&t));
    let address_space = read("/proc/self/limits").and_then(|t| address_space_limit(&t));
    let cgroup = read("/sys/fs/cgroup/memory.max").and_then(|t| t.trim().parse::<u64>().ok());
    [physical, address_space, cgroup].into_iter().flatten().min().unwrap_or(FALLBACK_BUDGET)
}

fn meminfo_total(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    line.split_whitespace().nth(1)?.parse::<u64>().ok()?.checked_mul(1024)
}

/// The soft `Max address space` of `/proc/self/limits` (bytes), if it is not unlimited.
fn address_space_limit(limits: &str) -> Option<u64> {
    let line = limits.lines().find(|l| l.starts_with("Max address space"))?;
    line["Max address space".len()..].split_whitespace().next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_files_are_parsed() {
        assert_eq!(meminfo_total("MemTotal:       2000 kB\nMemFree: 1 kB\n"), Some(2_048_000));
        let limits = "Limit                     Soft Limit           Hard Limit           Units\n\
                      Max address space         2147483648           unlimited            bytes\n";
        assert_eq!(address_space_limit(limits), Some(2 << 30));
        assert_eq!(address_space_limit("Max address space         unlimited            unlimited   bytes"), None);
        let l = Limits::for_budget(2 << 30);
        assert_eq!((l.max_tensor_bytes, l.max_total_bytes), (1 << 30, 3 << 29));
        assert!(Limits::from_system().max_tensor_bytes > 0);
    }

    #[test]
    fn scopes_nest_and_restore() {
        let outer = Limits { max_nodes: 7, deadline: Some(Duration::from_secs(3600)), ..Limits::default() };
        let inner = Limits { max_nodes: 9, deadline: None, ..Limits::default() };
        scoped(&outer, || {
            assert_eq!(current().max_nodes, 7);
            scoped(&inner, || {
                assert_eq!(current().max_nodes, 9);
                assert!(check_deadline().is_ok(), "the outer deadline is an hour away");
            });
            assert_eq!(current().max_nodes, 7);
        });
        assert_eq!(current(), Limits::from_system());
    }

    #[test]
    fn a_passed_deadline_is_an_error_naming_the_limit() {
        let now = Limits { deadline: Some(Duration::ZERO), ..Limits::default() };
        let err = scoped(&now, check_deadline).unwrap_err();
        assert_eq!(err.limit, Limit::Deadline);
        assert!(err.to_string().contains("deadline limit of 0.000 s (set with --timeout)"), "{err}");
        assert!(check_deadline().is_ok(), "no deadline outside the scope");
    }

    #[test]
    fn sizes_read_naturally() {
        assert_eq!(show_bytes(Some(312)), "312 B");
        assert_eq!(show_bytes(Some(3 << 29)), "1.5 GiB");
        assert_eq!(show_bytes(None), "more than 16 EiB");
    }
}
