//! `kiln bench --trace FILE.json`: the profiled runs of a JIT plan as Chrome trace-event JSON —
//! the format ONNX Runtime's profiler writes, which Perfetto (ui.perfetto.dev) and
//! chrome://tracing open. Each step of each run is one complete event (`"ph": "X"`) on the
//! plan's track, laid end to end in plan order (the profile times steps one at a time, so the
//! steps of a run follow each other with no gaps); every run is a parent event spanning its
//! steps. Each step's arguments say its engine, method and nodes.

use kiln_backends::jit::StepTimes;
use serde::Serialize;
use serde_json::{json, Value};

/// The whole file: `{"traceEvents": [...], "displayTimeUnit": "ms"}`.
#[derive(Serialize)]
struct Trace {
    #[serde(rename = "traceEvents")]
    events: Vec<Value>,
    #[serde(rename = "displayTimeUnit")]
    unit: &'static str,
}

const PID: u32 = 1;
const TID: u32 = 1;

/// The trace of `steps` (each with one time per run), for a model of that name run on `threads`.
pub fn to_json(model: &str, threads: usize, steps: &[StepTimes]) -> Vec<u8> {
    let runs = steps.iter().map(|s| s.ms.len()).max().unwrap_or(0);
    let mut events = vec![
        json!({"name": "process_name", "ph": "M", "pid": PID, "tid": TID, "args": {"name": format!("kiln {model}")}}),
        json!({"name": "thread_name", "ph": "M", "pid": PID, "tid": TID,
               "args": {"name": format!("JIT plan ({threads} thread{})", if threads == 1 { "" } else { "s" })}}),
    ];
    let mut clock_us = 0.0f64;
    for run in 0..runs {
        let start = clock_us;
        for s in steps {
            let Some(&ms) = s.ms.get(run) else { continue };
            let dur = ms * 1e3;
            events.push(json!({
                "name": s.step.ops.join("+"),
                "cat": s.step.engine_label(),
                "ph": "X",
                "ts": clock_us,
                "dur": dur,
                "pid": PID,
                "tid": TID,
                "args": {"engine": s.step.engine_label(), "nodes": s.step.nodes, "run": run},
            }));
            clock_us += dur;
        }
        events.push(json!({
            "name": format!("run {run}"), "cat": "run", "ph": "X", "ts": start, "dur": clock_us - start,
            "pid": PID, "tid": TID, "args": {"run": run},
        }));
    }
    let mut bytes = serde_json::to_vec_pretty(&Trace { events, unit: "ms" }).unwrap_or_default();
    bytes.push(b'\n');
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;
    use kiln_backends::jit::{Engine, PlanStep};

    fn step(op: &str, ms: Vec<f64>) -> StepTimes {
        let step = PlanStep {
            nodes: vec![format!("{op}_0")],
            ops: vec![op.into()],
            engine: Engine::Gemm,
            native: true,
            method: None,
        };
        StepTimes { step, ms }
    }

    #[test]
    fn steps_follow_each_other_within_and_across_runs() {
        let bytes = to_json("m.onnx", 2, &[step("Conv", vec![1.0, 2.0]), step("Relu", vec![0.5, 0.25])]);
        let v: Value = serde_json::from_slice(&bytes).unwrap();
        let events = v["traceEvents"].as_array().unwrap();
        let complete: Vec<(&str, f64, f64)> = events
            .iter()
            .filter(|e| e["ph"] == "X")
            .map(|e| (e["name"].as_str().unwrap(), e["ts"].as_f64().unwrap(), e["dur"].as_f64().unwrap()))
            .collect();
        assert_eq!(
            complete,
            [
                ("Conv", 0.0, 1000.0),
                ("Relu", 1000.0, 500.0),
                ("run 0", 0.0, 1500.0),
                ("Conv", 1500.0, 2000.0),
                ("Relu", 3500.0, 250.0),
                ("run 1", 1500.0, 2250.0),
            ]
        );
        assert!(events.iter().any(|e| e["ph"] == "M" && e["args"]["name"] == "JIT plan (2 threads)"));
    }
}
