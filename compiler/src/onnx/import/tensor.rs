//! `TensorProto` → [`Tensor`]: typed data fields (`float_data`, `int32_data` with its packing of
//! small types, `int64_data`, `double_data`, `uint64_data`), little-endian `raw_data`, and external
//! data files next to the model. Sizes are checked against the dims before anything is allocated.

use super::ImportError;
use half::f16;
use kiln_ir::tensor::check_alloc;
use kiln_ir::{DType, Element, Tensor};
use onnx_protobuf::tensor_proto::DataLocation;
use onnx_protobuf::TensorProto;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Component, Path};

/// Converts an ONNX tensor. `base_dir` is the model's directory, needed for external data.
pub(crate) fn to_tensor(t: &TensorProto, base_dir: Option<&Path>) -> Result<Tensor, ImportError> {
    let err = |message: String| ImportError::Tensor { name: t.name.clone(), message };
    let dtype = DType::from_onnx_code(t.data_type)
        .ok_or_else(|| err(format!("element type {} is not supported", dtype_name(t.data_type))))?;
    let shape = dims(&t.dims).map_err(err)?;
    check_alloc(dtype, &shape).map_err(|e| err(e.to_string()))?;
    let numel: usize = shape.iter().product();
    let external = t.data_location.enum_value() == Ok(DataLocation::EXTERNAL);
    let tensor = if external {
        let bytes = read_external(t, base_dir, numel * dtype.size_of()).map_err(err)?;
        from_le_bytes(dtype, &shape, &bytes)
    } else if !t.raw_data.is_empty() || (numel == 0 && typed_len(t, dtype) == 0) {
        if t.raw_data.len() != numel * dtype.size_of() {
            return Err(err(format!(
                "raw_data holds {} bytes but dims {shape:?} of {dtype} need {}",
                t.raw_data.len(),
                numel * dtype.size_of()
            )));
        }
        from_le_bytes(dtype, &shape, &t.raw_data)
    } else {
        let got = typed_len(t, dtype);
        if got != numel {
            return Err(err(format!("holds {got} {dtype} elements but dims {shape:?} need {numel}")));
        }
        from_typed(t, dtype, &shape)
    };
    tensor.map_err(|e| err(e.to_string()))
}

/// Validated extents from ONNX dims.
pub(crate) fn dims(dims: &[i64]) -> Result<Vec<usize>, String> {
    dims.iter().map(|&d| usize::try_from(d).map_err(|_| format!("dims {dims:?} contain a negative extent"))).collect()
}

/// ONNX's name for an element type code, for messages about unsupported types.
pub(crate) fn dtype_name(code: i32) -> String {
    use onnx_protobuf::tensor_proto::DataType;
    use protobuf::Enum;
    DataType::from_i32(code).map_or_else(|| format!("#{code}"), |d| format!("{d:?}"))
}

/// How many elements the typed field for `dtype` holds.
fn typed_len(t: &TensorProto, dtype: DType) -> usize {
    match dtype {
        DType::F32 => t.float_data.len(),
        DType::F64 => t.double_data.len(),
        DType::I64 => t.int64_data.len(),
        DType::U32 | DType::U64 => t.uint64_data.len(),
        DType::F16 | DType::I8 | DType::I16 | DType::I32 | DType::U8 | DType::U16 | DType::Bool => t.int32_data.len(),
    }
}

/// Reads the typed field (the caller has checked its length).
fn from_typed(t: &TensorProto, dtype: DType, shape: &[usize]) -> Result<Tensor, kiln_ir::TensorError> {
    fn narrow<T: Element>(shape: &[usize], v: &[i32], f: impl Fn(i32) -> T) -> Result<Tensor, kiln_ir::TensorError> {
        Tensor::from_vec(shape, v.iter().map(|&x| f(x)).collect())
    }
    let i32s = &t.int32_data;
    match dtype {
        DType::F32 => Tensor::from_vec(shape, t.float_data.clone()),
        DType::F64 => Tensor::from_vec(shape, t.double_data.clone()),
        DType::I64 => Tensor::from_vec(shape, t.int64_data.clone()),
        DType::I32 => Tensor::from_vec(shape, i32s.clone()),
        // int32_data packs the small types one per entry; f16 as its bit pattern.
        DType::F16 => narrow(shape, i32s, |x| f16::from_bits(x as u16)),
        DType::I16 => narrow(shape, i32s, |x| x as i16),
        DType::U16 => narrow(shape, i32s, |x| x as u16),
        DType::I8 => narrow(shape, i32s, |x| x as i8),
        DType::U8 => narrow(shape, i32s, |x| x as u8),
        DType::Bool => narrow(shape, i32s, |x| x != 0),
        DType::U32 => Tensor::from_vec(shape, t.uint64_data.iter().map(|&x| x as u32).collect()),
        DType::U64 => Tensor::from_vec(shape, t.uint64_data.clone()),
    }
}

/// Decodes little-endian bytes (the caller has checked the length).
pub(crate) fn from_le_bytes(dtype: DType, shape: &[usize], b: &[u8]) -> Result<Tensor, kiln_ir::TensorError> {
    fn le<T: Element, const N: usize>(
        shape: &[usize],
        b: &[u8],
        f: fn([u8; N]) -> T,
    ) -> Result<Tensor, kiln_ir::TensorError> {
        let v = b.chunks_exact(N).map(|c| f(c.try_into().expect("chunks_exact yields N bytes"))).collect();
        Tensor::from_vec(shape, v)
    }
    match dtype {
        DType::F32 => le(shape, b, f32::from_le_bytes),
        DType::F16 => le(shape, b, f16::from_le_bytes),
        DType::F64 => le(shape, b, f64::from_le_bytes),
        DType::I8 => le(shape, b, i8::from_le_bytes),
        DType::I16 => le(shape, b, i16::from_le_bytes),
        DType::I32 => le(shape, b, i32::from_le_bytes),
        DType::I64 => le(shape, b, i64::from_le_bytes),
        DType::U8 => le(shape, b, u8::from_le_bytes),
        DType::U16 => le(shape, b, u16::from_le_bytes),
        DType::U32 => le(shape, b, u32::from_le_bytes),
        DType::U64 => le(shape, b, u64::from_le_bytes),
        DType::Bool => le(shape, b, |[x]: [u8; 1]| x != 0),
    }
}

/// Reads `needed` bytes of external data: `location` (relative to the model's directory, never
/// escaping it), `offset` and `length` keys.
fn read_external(t: &TensorProto, base_dir: Option<&Path>, needed: usize) -> Result<Vec<u8>, String> {
    let key = |k: &str| t.external_data.iter().find(|e| e.key == k).map(|e| e.value.as_str());
    let number = |k: &str| -> Result<Option<u64>, String> {
        key(k).map(|v| v.parse::<u64>().map_err(|_| format!("external data {k} '{v}' is not a number"))).transpose()
    };
    let location = key("location").ok_or("external data has no location")?;
    let (offset, length) = (number("offset")?.unwrap_or(0), number("length")?);
    let base = base_dir.ok_or("external data needs the model's directory (load the model from a file)")?;
    let rel = Path::new(location);
    if rel.components().any(|c| !matches!(c, Component::Normal(_) | Component::CurDir)) {
        return Err(format!("external data location '{location}' leaves the model's directory"));
    }
    let path = base.join(rel);
    let (canon_base, canon) = (base.canonicalize(), path.canonicalize());
    let canon = canon.map_err(|e| format!("cannot open external data '{}': {e}", path.display()))?;
    if !canon_base.is_ok_and(|b| canon.starts_with(b)) {
        return Err(format!("external data location '{location}' leaves the model's directory"));
    }
    if let Some(len) = length {
        if len != needed as u64 {
            return Err(format!("external data length {len} differs from the {needed} bytes the dims need"));
        }
    }
    let mut f = std::fs::File::open(&canon).map_err(|e| format!("cannot open '{}': {e}", path.display()))?;
    let size = f.metadata().map_err(|e| format!("cannot stat '{}': {e}", path.display()))?.len();
    if offset.checked_add(needed as u64).is_none_or(|end| end > size) {
        return Err(format!("'{}' holds {size} bytes, too few for {needed} bytes at offset {offset}", path.display()));
    }
    let mut buf = vec![0u8; needed];
    f.seek(SeekFrom::Start(offset))
        .and_then(|_| f.read_exact(&mut buf))
        .map_err(|e| format!("cannot read '{}': {e}", path.display()))?;
    Ok(buf)
}
