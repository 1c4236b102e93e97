//! `kiln report`'s page: one self-contained HTML file (inline SVG and CSS, no script, nothing
//! fetched) showing what Kiln did to a model and where the time goes — the graph before and
//! after optimization (nodes coloured by backend, fused groups banded), the pass log with op
//! histograms, FLOPs and parameters before and after, the JIT's profile as bars and a timeline
//! with GFLOP/s against a GEMM measured on this machine, compiled against interpreted time,
//! and live intermediates over the schedule against the JIT's arena.
//!
//! - [`graph_svg`]: the layered graph drawing;
//! - [`charts`]: bars, timeline and memory curve.

pub mod charts;
pub mod graph_svg;

use crate::error::human_bytes;
use crate::stats::ModelStats;
use kiln_ir::{Graph, NodeId, Op, ValueRef};
use kiln_passes::PassStats;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write;

/// One profiled step of the JIT's plan, as the page shows it.
#[derive(Clone, Debug)]
pub struct Step {
    /// Its ops, joined by `+` (a fused group's anchor first).
    pub ops: String,
    /// Its engine label (`gemm/shifted`, `cranelift`, `host`, `interpreter`).
    pub engine: String,
    /// The nodes it computes, comma-separated.
    pub nodes: String,
    pub median_ms: f64,
    /// Its median over the sum of all steps' medians.
    pub share: f64,
    pub gflop_per_s: Option<f64>,
}

/// Everything the page shows.
pub struct Page {
    pub model: String,
    /// Bound dims, as `SYM=N`.
    pub dims: Vec<String>,
    pub before: ModelStats,
    pub after: ModelStats,
    pub passes: Vec<PassStats>,
    /// SVG of the graph as imported and as optimized.
    pub graph_before: String,
    pub graph_after: String,
    pub steps: Vec<Step>,
    pub threads: usize,
    pub jit_median_ms: f64,
    pub interp_median_ms: Option<f64>,
    /// GFLOP/s of a 512³ MatMul through the JIT on this machine, measured with the report.
    pub gemm_gflop_per_s: Option<f64>,
    /// Live intermediate bytes after each node of the optimized graph's schedule.
    pub live_bytes: Vec<u64>,
    /// The bytes of every intermediate added up.
    pub intermediates_bytes: u64,
    pub arena_bytes: u64,
}

/// The colour of an engine's steps and nodes.
pub fn engine_colour(engine: &str) -> &'static str {
    match engine.split('/').next().unwrap_or("") {
        "gemm" => "#7fb3e6",
        "cranelift" => "#8fd19e",
        "host" => "#f5c77e",
        "interpreter" => "#ef8a80",
        _ => "#d9dce1",
    }
}

/// Text for HTML and XML: `& < > " '` escaped.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:24px;color:#1d2127;max-width:1200px}\
h1{font-size:22px}h2{font-size:18px;margin-top:28px;border-bottom:1px solid #ddd}\
table{border-collapse:collapse;font-size:13px}td,th{padding:3px 10px;border-bottom:1px solid #eee;text-align:left}\
td.n,th.n{text-align:right}.scroll{overflow:auto;max-height:900px;border:1px solid #ddd}\
.key span{display:inline-block;padding:2px 8px;margin-right:6px;border-radius:4px;font-size:12px}\
summary{cursor:pointer;font-weight:600;margin:8px 0}.muted{color:#666;font-size:13px}";

impl Page {
    /// The whole HTML document.
    pub fn render(&self) -> String {
        let mut h = String::new();
        let title = escape(&self.model);
        let _ = write!(
            h,
            "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Kiln report: {title}</title><style>{STYLE}</style></head><body>"
        );
        let _ = write!(h, "<h1>Kiln report: {title}</h1>");
        if !self.dims.is_empty() {
            let _ = write!(h, "<p class=\"muted\">dims {}</p>", escape(&self.dims.join(", ")));
        }
        self.summary(&mut h);
        self.pass_log(&mut h);
        self.graphs(&mut h);
        self.profile(&mut h);
        self.memory(&mut h);
        h.push_str("</body></html>\n");
        h
    }

    fn summary(&self, h: &mut String) {
        let count = |v: Option<u64>| v.map_or_else(|| "unknown".to_string(), |v| v.to_string());
        let speed = match self.interp_median_ms {
            Some(i) => format!(
                "{:.3} ms compiled, {:.3} ms interpreted: {:.1}× faster",
                self.jit_median_ms,
                i,
                i / self.jit_median_ms.max(1e-9)
            ),
            None => format!("{:.3} ms compiled (interpreter skipped)", self.jit_median_ms),
        };
        let _ = write!(
            h,
            "<h2>Summary</h2><table><tr><th></th><th class=n>before</th><th class=n>after</th></tr>\
             <tr><td>nodes</td><td class=n>{}</td><td class=n>{}</td></tr>\
             <tr><td>parameters</td><td class=n>{}</td><td class=n>{}</td></tr>\
             <tr><td>FLOPs</td><td class=n>{}</td><td class=n>{}</td></tr></table>\
             <p>Median latency on {} thread(s): {}.</p>",
            self.before.nodes,
            self.after.nodes,
            count(self.before.parameters),
            count(self.after.parameters),
            count(self.before.flops),
            count(self.after.flops),
            self.threads,
            speed
        );
    }

    fn pass_log(&self, h: &mut String) {
        h.push_str("<h2>Passes</h2><table><tr><th>pass</th><th class=n>nodes</th><th class=n>ms</th><th>ops changed</th><th>rules fired / changes</th></tr>");
        for p in &self.passes {
            let changed = op_changes(&p.ops_before, &p.ops_after).join(", ");
            let what: Vec<String> = match &p.egraph {
                Some(e) => e.rules.iter().map(|(r, n)| format!("{r} {n}")).collect(),
                None => p.changes.iter().map(|(k, n)| format!("{k} {n}")).collect(),
            };
            let _ = write!(
                h,
                "<tr><td>{}</td><td class=n>{} → {}</td><td class=n>{:.1}</td><td>{}</td><td>{}</td></tr>",
                escape(&p.pass),
                p.nodes_before,
                p.nodes_after,
                p.millis,
                escape(&changed),
                escape(&what.join(", "))
            );
        }
        h.push_str("</table>");
        h.push_str("<h3>Op histogram</h3><table><tr><th>op</th><th class=n>before</th><th class=n>after</th></tr>");
        let mut ops: Vec<&String> = self.before.ops.keys().chain(self.after.ops.keys()).collect();
        ops.sort();
        ops.dedup();
        for op in ops {
            let n = |m: &BTreeMap<String, usize>| m.get(op).copied().unwrap_or(0);
            let _ = write!(
                h,
                "<tr><td>{}</td><td class=n>{}</td><td class=n>{}</td></tr>",
                escape(op),
                n(&self.before.ops),
                n(&self.after.ops)
            );
        }
        h.push_str("</table>");
    }

    fn graphs(&self, h: &mut String) {
        h.push_str("<h2>Graph</h2><p class=\"key\">");
        for (name, engine) in [
            ("GEMM core", "gemm"),
            ("generated kernel", "cranelift"),
            ("native host kernel", "host"),
            ("interpreter", "interpreter"),
        ] {
            let _ = write!(h, "<span style=\"background:{}\">{name}</span>", engine_colour(engine));
        }
        h.push_str(
            "a band on the left: nodes computed by one fused step; hover a node for its name, type and step.</p>",
        );
        let _ = write!(
            h,
            "<details open><summary>After optimization ({} nodes)</summary><div class=\"scroll\">{}</div></details>\
             <details><summary>As imported ({} nodes)</summary><div class=\"scroll\">{}</div></details>",
            self.after.nodes, self.graph_after, self.before.nodes, self.graph_before
        );
    }

    fn profile(&self, h: &mut String) {
        let peak = self
            .gemm_gflop_per_s
            .map_or_else(String::new, |g| format!(" A 512³ MatMul through the same JIT reaches {g:.1} GFLOP/s here."));
        let _ = write!(
            h,
            "<h2>Profile</h2><p class=\"muted\">Each step of the JIT's plan timed on its own (median of the profiled runs).{peak}</p>\
             <h3>Slowest steps</h3>{}<h3>One run</h3>{}",
            charts::slowest_steps(&self.steps, 25),
            charts::timeline(&self.steps)
        );
        h.push_str("<details><summary>Every step</summary><table><tr><th>#</th><th>ops</th><th>engine</th><th class=n>ms</th><th class=n>share</th><th class=n>GFLOP/s</th><th>nodes</th></tr>");
        for (i, s) in self.steps.iter().enumerate() {
            let rate = s.gflop_per_s.map_or_else(|| "-".to_string(), |g| format!("{g:.1}"));
            let _ = write!(
                h,
                "<tr><td>{i}</td><td>{}</td><td>{}</td><td class=n>{:.3}</td><td class=n>{:.1}%</td><td class=n>{rate}</td><td>{}</td></tr>",
                escape(&s.ops),
                escape(&s.engine),
                s.median_ms,
                100.0 * s.share,
                escape(&s.nodes)
            );
        }
        h.push_str("</table></details>");
    }

    fn memory(&self, h: &mut String) {
        let peak = self.live_bytes.iter().copied().max().unwrap_or(0);
        let _ = write!(
            h,
            "<h2>Memory</h2><p>The JIT's arena holds every intermediate in {}; the sum of all intermediates is {}, \
             and at most {} are alive at once in the graph's order.</p>{}",
            human_bytes(self.arena_bytes),
            human_bytes(self.intermediates_bytes),
            human_bytes(peak),
            charts::memory(&self.live_bytes, self.arena_bytes)
        );
    }
}

/// Live intermediate bytes after each node of `g`'s topological order (a value is alive from
/// its producer to its last consumer; graph outputs to the end), and all intermediates' bytes
/// added up. Inputs and constants are not intermediates; values of unknown size count as 0.
pub fn schedule_memory(g: &Graph) -> Result<(Vec<u64>, u64), kiln_ir::GraphError> {
    let order = g.topo_order()?;
    let position: HashMap<NodeId, usize> = order.iter().enumerate().map(|(i, &id)| (id, i)).collect();
    let mut frees: Vec<u64> = vec![0; order.len() + 1];
    let mut allocs: Vec<u64> = vec![0; order.len()];
    for (i, &id) in order.iter().enumerate() {
        let node = g.node(id);
        if matches!(node.op, Op::Input | Op::Constant(_)) {
            continue;
        }
        for o in 0..node.outputs.len() {
            let v = ValueRef { node: id, output: o };
            let ty = g.value_type(v);
            let bytes = ty.numel().map_or(0, |n| (n * ty.dtype.size_of()) as u64);
            allocs[i] += bytes;
            let last = if g.outputs().contains(&v) {
                order.len()
            } else {
                g.consumers(v).iter().filter_map(|(c, _)| position.get(c)).copied().max().unwrap_or(i)
            };
            frees[(last + 1).min(order.len())] += bytes;
        }
    }
    let mut live = 0u64;
    let curve = (0..order.len())
        .map(|i| {
            live = (live + allocs[i]).saturating_sub(frees[i]);
            live
        })
        .collect();
    Ok((curve, allocs.iter().sum()))
}

/// `op before -> after` for each op whose count changed.
pub fn op_changes(before: &BTreeMap<String, usize>, after: &BTreeMap<String, usize>) -> Vec<String> {
    let mut names: Vec<&String> = before.keys().chain(after.keys()).collect();
    names.sort();
    names.dedup();
    names
        .into_iter()
        .filter_map(|op| {
            let (b, a) = (before.get(op).copied().unwrap_or(0), after.get(op).copied().unwrap_or(0));
            (a != b).then(|| format!("{op} {b} -> {a}"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_covers_markup_and_quotes() {
        assert_eq!(escape(r#"<a href="x">&'</a>"#), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;&lt;/a&gt;");
    }

    #[test]
    fn op_changes_lists_only_changed_ops() {
        let before: BTreeMap<String, usize> = [("Conv".into(), 2), ("BatchNormalization".into(), 2)].into();
        let after: BTreeMap<String, usize> = [("Conv".into(), 2), ("Add".into(), 1)].into();
        assert_eq!(op_changes(&before, &after), ["Add 0 -> 1", "BatchNormalization 2 -> 0"]);
    }
}
