//! The report's charts as inline SVG: a bar chart of the slowest steps, a timeline of one run,
//! and the bytes of live intermediates over the schedule against the JIT's arena.

use super::{escape, Step};
use std::fmt::Write;

const WIDTH: f64 = 900.0;
const LABEL_W: f64 = 330.0;
const BAR_H: f64 = 18.0;

/// The `n` slowest steps as horizontal bars (median ms), each labelled with its ops and rate.
pub fn slowest_steps(steps: &[Step], n: usize) -> String {
    let mut order: Vec<&Step> = steps.iter().collect();
    order.sort_by(|a, b| b.median_ms.total_cmp(&a.median_ms));
    order.truncate(n);
    let max = order.first().map_or(0.0, |s| s.median_ms).max(1e-9);
    let height = order.len() as f64 * (BAR_H + 4.0) + 4.0;
    let mut svg = format!(r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height:.0}">"#);
    for (i, s) in order.iter().enumerate() {
        let y = 2.0 + i as f64 * (BAR_H + 4.0);
        let w = (WIDTH - LABEL_W - 230.0) * s.median_ms / max;
        let rate = s.gflop_per_s.map_or_else(String::new, |g| format!(", {g:.1} GFLOP/s"));
        let _ = write!(
            svg,
            r#"<g><title>{} [{}]&#10;{}</title><text x="{:.0}" y="{:.1}" text-anchor="end" font-size="12">{}</text><rect x="{LABEL_W}" y="{y:.1}" width="{w:.1}" height="{BAR_H}" fill="{}"/><text x="{:.1}" y="{:.1}" font-size="12">{:.3} ms ({:.1}%){}</text></g>"#,
            escape(&s.ops),
            escape(&s.engine),
            escape(&s.nodes),
            LABEL_W - 6.0,
            y + 13.0,
            escape(&truncate(&s.ops, 44)),
            super::engine_colour(&s.engine),
            LABEL_W + w + 6.0,
            y + 13.0,
            s.median_ms,
            100.0 * s.share,
            rate
        );
    }
    svg.push_str("</svg>");
    svg
}

/// One run as a strip: every step in plan order, its width its median time.
pub fn timeline(steps: &[Step]) -> String {
    let total: f64 = steps.iter().map(|s| s.median_ms).sum::<f64>().max(1e-9);
    let mut svg = format!(r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="58">"#);
    let mut x = 0.0;
    for s in steps {
        let w = WIDTH * s.median_ms / total;
        let _ = write!(
            svg,
            r#"<rect x="{x:.2}" y="4" width="{:.2}" height="30" fill="{}" stroke="rgb(255,255,255)" stroke-width="0.5"><title>{} [{}]: {:.3} ms&#10;{}</title></rect>"#,
            w.max(0.5),
            super::engine_colour(&s.engine),
            escape(&s.ops),
            escape(&s.engine),
            s.median_ms,
            escape(&s.nodes)
        );
        x += w;
    }
    let _ = write!(
        svg,
        r#"<text x="0" y="52" font-size="12">0 ms</text><text x="{WIDTH}" y="52" font-size="12" text-anchor="end">{total:.3} ms</text></svg>"#
    );
    svg
}

/// Live intermediate bytes after each node of the schedule, with the arena size as a line.
pub fn memory(live: &[u64], arena_bytes: u64) -> String {
    let height = 180.0;
    let top = live.iter().copied().max().unwrap_or(0).max(arena_bytes).max(1) as f64;
    let n = live.len().max(2) as f64 - 1.0;
    let y = |b: u64| height - 20.0 - (height - 30.0) * b as f64 / top;
    let points: Vec<String> =
        live.iter().enumerate().map(|(i, &b)| format!("{:.1},{:.1}", WIDTH * i as f64 / n, y(b))).collect();
    format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}"><polyline fill="none" stroke="rgb(47,111,191)" stroke-width="1.5" points="{}"/><line x1="0" x2="{WIDTH}" y1="{ay:.1}" y2="{ay:.1}" stroke="rgb(192,57,43)" stroke-dasharray="6 4"/><text x="4" y="{ty:.1}" font-size="12" fill="rgb(192,57,43)">JIT arena {}</text><text x="0" y="{height}" font-size="12">schedule →</text></svg>"##,
        points.join(" "),
        crate::error::human_bytes(arena_bytes),
        ay = y(arena_bytes),
        ty = y(arena_bytes) - 4.0,
    )
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() > n {
        s.chars().take(n - 1).collect::<String>() + "…"
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(ops: &str, ms: f64) -> Step {
        Step { ops: ops.into(), engine: "gemm".into(), nodes: "n".into(), median_ms: ms, share: 0.5, gflop_per_s: None }
    }

    #[test]
    fn bars_are_sorted_and_scaled_to_the_slowest() {
        let svg = slowest_steps(&[step("Relu", 1.0), step("Conv", 2.0)], 10);
        let conv = svg.find(">Conv<").unwrap();
        assert!(conv < svg.find(">Relu<").unwrap(), "slowest first");
        assert!(svg.contains(r#"width="340.0""#) && svg.contains(r#"width="170.0""#), "{svg}");
    }

    #[test]
    fn the_timeline_spans_the_total() {
        let svg = timeline(&[step("A", 1.0), step("B", 3.0)]);
        assert!(svg.contains(r#"x="225.00""#), "B starts a quarter in: {svg}");
        assert!(svg.contains("4.000 ms"));
    }
}
