//! Kiln values → ONNX: tensors as `TensorProto` (data in little-endian `raw_data`) and tensor
//! types as `ValueInfoProto` (symbolic dims as `dim_param`).

use kiln_ir::{ArcArrayD, Dim, Tensor, TensorType};
use onnx_protobuf::tensor_shape_proto::{dimension, Dimension};
use onnx_protobuf::{type_proto, TensorProto, TensorShapeProto, TypeProto, ValueInfoProto};

/// A named `TensorProto` holding `t`.
pub(super) fn tensor_proto(name: &str, t: &Tensor) -> TensorProto {
    TensorProto {
        name: name.to_string(),
        dims: t.shape().iter().map(|&d| d as i64).collect(),
        data_type: t.dtype().onnx_code(),
        raw_data: raw_data(t),
        ..Default::default()
    }
}

/// The elements in row-major order, each little-endian (bools one byte each, as ONNX stores them).
pub(super) fn raw_data(t: &Tensor) -> Vec<u8> {
    fn le<T: Copy, const N: usize>(a: &ArcArrayD<T>, bytes: impl Fn(T) -> [u8; N]) -> Vec<u8> {
        a.iter().flat_map(|&x| bytes(x)).collect()
    }
    match t {
        Tensor::F32(a) => le(a, f32::to_le_bytes),
        Tensor::F16(a) => le(a, |x| x.to_bits().to_le_bytes()),
        Tensor::F64(a) => le(a, f64::to_le_bytes),
        Tensor::I8(a) => le(a, i8::to_le_bytes),
        Tensor::I16(a) => le(a, i16::to_le_bytes),
        Tensor::I32(a) => le(a, i32::to_le_bytes),
        Tensor::I64(a) => le(a, i64::to_le_bytes),
        Tensor::U8(a) => le(a, u8::to_le_bytes),
        Tensor::U16(a) => le(a, u16::to_le_bytes),
        Tensor::U32(a) => le(a, u32::to_le_bytes),
        Tensor::U64(a) => le(a, u64::to_le_bytes),
        Tensor::Bool(a) => le(a, |x| [x as u8]),
    }
}

/// A `ValueInfoProto` declaring `name` with type `ty`.
pub(super) fn value_info(name: &str, ty: &TensorType) -> ValueInfoProto {
    let dim = |d: &Dim| Dimension {
        value: Some(match d {
            Dim::Known(n) => dimension::Value::DimValue(*n as i64),
            Dim::Sym(s) => dimension::Value::DimParam(s.clone()),
        }),
        ..Default::default()
    };
    let shape = TensorShapeProto { dim: ty.shape.iter().map(dim).collect(), ..Default::default() };
    let tensor =
        type_proto::Tensor { elem_type: ty.dtype.onnx_code(), shape: Some(shape).into(), ..Default::default() };
    let type_ = TypeProto { value: Some(type_proto::Value::TensorType(tensor)), ..Default::default() };
    ValueInfoProto { name: name.to_string(), type_: Some(type_).into(), ..Default::default() }
}
