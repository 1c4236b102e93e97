//! The project's one list of unsupported types (`conformance/skip.txt`, compiled in) and the check
//! that decides whether a conformance case uses any of them.

use onnx_protobuf::{type_proto, GraphProto, ModelProto, TypeProto};

const SKIP_LIST: &str = include_str!("../../../conformance/skip.txt");

/// `(type name, reason)` pairs from the skip list.
pub fn skipped_types() -> Vec<(&'static str, &'static str)> {
    SKIP_LIST
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once(char::is_whitespace).map(|(t, r)| (t, r.trim())))
        .collect()
}

/// The skip-list name of an ONNX `TensorProto.DataType` code Kiln does not compute with.
fn elem_type_name(code: i32) -> Option<&'static str> {
    Some(match code {
        8 => "string",
        14 => "complex64",
        15 => "complex128",
        16 => "bfloat16",
        17 => "float8e4m3fn",
        18 => "float8e4m3fnuz",
        19 => "float8e5m2",
        20 => "float8e5m2fnuz",
        21 => "uint4",
        22 => "int4",
        23 => "float4e2m1",
        24 => "float8e8m0",
        25 => "uint2",
        26 => "int2",
        _ => return None,
    })
}

fn type_name(t: &TypeProto) -> Option<&'static str> {
    match &t.value {
        Some(type_proto::Value::TensorType(tt)) => elem_type_name(tt.elem_type),
        Some(type_proto::Value::SequenceType(_)) => Some("sequence"),
        Some(type_proto::Value::MapType(_)) => Some("map"),
        Some(type_proto::Value::OptionalType(_)) => Some("optional"),
        Some(type_proto::Value::SparseTensorType(_)) => Some("sparse_tensor"),
        _ => None,
    }
}

fn graph_types(g: &GraphProto, found: &mut Vec<&'static str>) {
    let values = g.input.iter().chain(&g.output).chain(&g.value_info);
    found.extend(values.filter_map(|v| v.type_.as_ref().and_then(type_name)));
    found.extend(g.initializer.iter().filter_map(|t| elem_type_name(t.data_type)));
    for node in &g.node {
        for a in &node.attribute {
            if a.name == "to" && matches!(node.op_type.as_str(), "Cast" | "CastLike") {
                found.extend(elem_type_name(a.i as i32));
            }
            if let Some(t) = a.t.as_ref() {
                found.extend(elem_type_name(t.data_type));
            }
            a.g.as_ref().into_iter().chain(&a.graphs).for_each(|sub| graph_types(sub, found));
        }
    }
}

/// The first skip-listed type the model uses, with the list's reason.
pub fn skip_reason(model: &ModelProto) -> Option<String> {
    let mut found = Vec::new();
    if let Some(g) = model.graph.as_ref() {
        graph_types(g, &mut found);
    }
    let list = skipped_types();
    found.iter().find_map(|t| list.iter().find(|(name, _)| name == t).map(|(name, why)| format!("{name}: {why}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_parses_and_every_mapped_type_is_listed() {
        let list = skipped_types();
        assert!(list.len() >= 10);
        for code in 0..40 {
            if let Some(name) = elem_type_name(code) {
                assert!(list.iter().any(|(n, _)| *n == name), "{name} missing from skip.txt");
            }
        }
    }
}
