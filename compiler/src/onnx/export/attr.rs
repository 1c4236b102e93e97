//! Attribute writers: one small constructor per ONNX attribute type.

use onnx_protobuf::attribute_proto::AttributeType;
use onnx_protobuf::{AttributeProto, GraphProto, TensorProto};

fn attr(name: &str, ty: AttributeType) -> AttributeProto {
    AttributeProto { name: name.to_string(), type_: ty.into(), ..Default::default() }
}

pub(super) fn int(name: &str, i: i64) -> AttributeProto {
    AttributeProto { i, ..attr(name, AttributeType::INT) }
}

pub(super) fn flag(name: &str, on: bool) -> AttributeProto {
    int(name, on as i64)
}

pub(super) fn ints(name: &str, v: impl IntoIterator<Item = i64>) -> AttributeProto {
    AttributeProto { ints: v.into_iter().collect(), ..attr(name, AttributeType::INTS) }
}

/// `usize` lists (window geometry, permutations).
pub(super) fn dims(name: &str, v: &[usize]) -> AttributeProto {
    ints(name, v.iter().map(|&d| d as i64))
}

pub(super) fn float(name: &str, f: f32) -> AttributeProto {
    AttributeProto { f, ..attr(name, AttributeType::FLOAT) }
}

pub(super) fn string(name: &str, s: &str) -> AttributeProto {
    AttributeProto { s: s.as_bytes().to_vec(), ..attr(name, AttributeType::STRING) }
}

pub(super) fn floats(name: &str, v: impl IntoIterator<Item = f32>) -> AttributeProto {
    AttributeProto { floats: v.into_iter().collect(), ..attr(name, AttributeType::FLOATS) }
}

pub(super) fn strings<'a>(name: &str, v: impl IntoIterator<Item = &'a str>) -> AttributeProto {
    AttributeProto {
        strings: v.into_iter().map(|s| s.as_bytes().to_vec()).collect(),
        ..attr(name, AttributeType::STRINGS)
    }
}

pub(super) fn tensor(name: &str, t: TensorProto) -> AttributeProto {
    AttributeProto { t: Some(t).into(), ..attr(name, AttributeType::TENSOR) }
}

pub(super) fn graph(name: &str, g: GraphProto) -> AttributeProto {
    AttributeProto { g: Some(g).into(), ..attr(name, AttributeType::GRAPH) }
}
