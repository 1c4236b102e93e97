//! NumPy `.npy` files to and from [`Tensor`]s, for every IR dtype (via `npyz`).
//!
//! Reading is strict: a file whose header is malformed, whose dtype Kiln has no counterpart for,
//! or whose data is shorter or longer than its header promises is an error, never a panic.
//!
//! ```
//! use kiln_ir::Tensor;
//! let t = Tensor::from_vec(&[2, 2], vec![1i32, 2, 3, 4]).unwrap();
//! let bytes = kiln::npy::to_bytes(&t).unwrap();
//! assert_eq!(kiln::npy::from_bytes(&bytes).unwrap(), t);
//! assert!(kiln::npy::from_bytes(&bytes[..bytes.len() - 1]).is_err());
//! ```

use half::f16;
use kiln_ir::tensor::check_alloc;
use kiln_ir::{with_array, DType, Element, Tensor, TensorError};
use ndarray::{ArrayD, IxDyn, ShapeBuilder};
use npyz::{TypeChar, WriterBuilder};
use std::io;

/// Why bytes are not a tensor Kiln can use (or a tensor could not be encoded).
#[derive(Debug, thiserror::Error)]
pub enum NpyError {
    #[error("not a valid .npy file: {0}")]
    Malformed(String),
    #[error("unsupported .npy dtype '{0}' (Kiln reads bool, f16/f32/f64, i8..i64 and u8..u64)")]
    UnsupportedDType(String),
    #[error("the .npy data is truncated: the header promises {expected} bytes but {got} follow it")]
    Truncated { expected: u64, got: u64 },
    #[error("the .npy file has {0} unexpected bytes after its data")]
    TrailingBytes(u64),
    #[error(transparent)]
    TooLarge(#[from] TensorError),
    #[error("cannot encode .npy data: {0}")]
    Encode(#[source] io::Error),
}

/// Decodes a whole `.npy` file held in memory.
pub fn from_bytes(bytes: &[u8]) -> Result<Tensor, NpyError> {
    let shape = precheck_header(bytes)?;
    let mut rest = bytes;
    let header = npyz::NpyHeader::from_reader(&mut rest).map_err(|e| NpyError::Malformed(e.to_string()))?;
    let dtype = ir_dtype(&header.dtype()).ok_or_else(|| NpyError::UnsupportedDType(header_descr(&header)))?;
    check_alloc(dtype, &shape)?;
    let expected = header.len() * dtype.size_of() as u64;
    let got = rest.len() as u64;
    if got < expected {
        return Err(NpyError::Truncated { expected, got });
    }
    if got > expected {
        return Err(NpyError::TrailingBytes(got - expected));
    }
    let npy = npyz::NpyFile::with_header(header, rest);
    match dtype {
        DType::F32 => decode::<f32>(npy, &shape),
        DType::F16 => decode::<f16>(npy, &shape),
        DType::F64 => decode::<f64>(npy, &shape),
        DType::I8 => decode::<i8>(npy, &shape),
        DType::I16 => decode::<i16>(npy, &shape),
        DType::I32 => decode::<i32>(npy, &shape),
        DType::I64 => decode::<i64>(npy, &shape),
        DType::U8 => decode::<u8>(npy, &shape),
        DType::U16 => decode::<u16>(npy, &shape),
        DType::U32 => decode::<u32>(npy, &shape),
        DType::U64 => decode::<u64>(npy, &shape),
        DType::Bool => decode::<bool>(npy, &shape),
    }
}

/// Encodes a tensor as a C-order, little-endian `.npy` file.
pub fn to_bytes(t: &Tensor) -> Result<Vec<u8>, NpyError> {
    let shape: Vec<u64> = t.shape().iter().map(|&d| d as u64).collect();
    let mut out = Vec::new();
    with_array!(t, a => {
        let mut w = npyz::WriteOptions::new().default_dtype().shape(&shape).writer(&mut out).begin_nd().map_err(NpyError::Encode)?;
        w.extend(a.iter().copied()).map_err(NpyError::Encode)?;
        w.finish().map_err(NpyError::Encode)?;
    });
    Ok(out)
}

fn decode<T: Element + npyz::Deserialize>(npy: npyz::NpyFile<&[u8]>, shape: &[usize]) -> Result<Tensor, NpyError> {
    let fortran = npy.order() == npyz::Order::Fortran;
    let data: Vec<T> = npy.into_vec().map_err(|e| NpyError::Malformed(e.to_string()))?;
    let array = ArrayD::from_shape_vec(IxDyn(shape).set_f(fortran), data)
        .map_err(|e| NpyError::Malformed(format!("data does not fit shape {shape:?}: {e}")))?;
    Ok(Tensor::from_array(array.as_standard_layout().into_owned()))
}

/// The IR dtype a plain `.npy` dtype decodes to (npyz handles the byte order).
fn ir_dtype(dtype: &npyz::DType) -> Option<DType> {
    let npyz::DType::Plain(ty) = dtype else { return None };
    let d = match (ty.type_char(), ty.size_field()) {
        (TypeChar::Bool, 1) => DType::Bool,
        (TypeChar::Float, 2) => DType::F16,
        (TypeChar::Float, 4) => DType::F32,
        (TypeChar::Float, 8) => DType::F64,
        (TypeChar::Int, 1) => DType::I8,
        (TypeChar::Int, 2) => DType::I16,
        (TypeChar::Int, 4) => DType::I32,
        (TypeChar::Int, 8) => DType::I64,
        (TypeChar::Uint, 1) => DType::U8,
        (TypeChar::Uint, 2) => DType::U16,
        (TypeChar::Uint, 4) => DType::U32,
        (TypeChar::Uint, 8) => DType::U64,
        _ => return None,
    };
    Some(d)
}

fn header_descr(header: &npyz::NpyHeader) -> String {
    match header.dtype() {
        npyz::DType::Plain(ty) => ty.to_string(),
        other => format!("{other:?}"),
    }
}

/// Validates the framing (magic, version, header length) and the shape tuple before npyz sees
/// the file, so that absurd shapes or header lengths become errors instead of overflows or huge
/// allocations. Returns the shape.
fn precheck_header(bytes: &[u8]) -> Result<Vec<usize>, NpyError> {
    let bad = |m: &str| NpyError::Malformed(m.to_string());
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return Err(bad("missing the \\x93NUMPY magic (is this a .npy file?)"));
    }
    let (len, start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10usize),
        2 | 3 if bytes.len() >= 12 => (u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize, 12),
        v => return Err(NpyError::Malformed(format!("unsupported format version {v}"))),
    };
    let text = bytes.get(start..start.saturating_add(len)).ok_or_else(|| bad("the header is truncated"))?;
    let text = String::from_utf8_lossy(text);
    let after = text.split_once("'shape'").map(|(_, rest)| rest).ok_or_else(|| bad("the header has no 'shape'"))?;
    let tuple = after
        .split_once('(')
        .and_then(|(_, rest)| rest.split_once(')'))
        .map(|(inner, _)| inner)
        .ok_or_else(|| bad("the header's 'shape' is not a tuple"))?;
    let shape = tuple
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.trim_end_matches('L').parse::<usize>())
        .collect::<Result<Vec<usize>, _>>()
        .map_err(|_| NpyError::Malformed(format!("the header's shape ({tuple}) is not a tuple of sizes")))?;
    if shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d)).is_none() {
        return Err(NpyError::Malformed(format!("the header's shape {shape:?} overflows")));
    }
    Ok(shape)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A hand-written .npy v1 file, as numpy writes `np.array([[1, 2, 3]], dtype='<i2')`.
    fn numpy_i16() -> Vec<u8> {
        let dict = "{'descr': '<i2', 'fortran_order': False, 'shape': (1, 3), }";
        let mut header = dict.to_string();
        while !(10 + header.len() + 1).is_multiple_of(64) {
            header.push(' ');
        }
        header.push('\n');
        let mut out = b"\x93NUMPY\x01\x00".to_vec();
        out.extend((header.len() as u16).to_le_bytes());
        out.extend(header.bytes());
        for v in [1i16, 2, 3] {
            out.extend(v.to_le_bytes());
        }
        out
    }

    /// Replaces text inside the (ASCII) header of a .npy file.
    fn replace(bytes: &[u8], from: &str, to: &str) -> Vec<u8> {
        let at = bytes.windows(from.len()).position(|w| w == from.as_bytes()).unwrap();
        [&bytes[..at], to.as_bytes(), &bytes[at + from.len()..]].concat()
    }

    #[test]
    fn reads_what_numpy_writes() {
        let t = from_bytes(&numpy_i16()).unwrap();
        assert_eq!(t.dtype(), DType::I16);
        assert_eq!(t.shape(), &[1, 3]);
        assert_eq!(t.to_i64_vec(), vec![1, 2, 3]);
    }

    #[test]
    fn fortran_order_is_transposed_into_row_major() {
        let t = from_bytes(&replace(&numpy_i16(), "False", "True ")).unwrap();
        assert_eq!(t.to_i64_vec(), vec![1, 2, 3], "a 1×3 array reads the same in either order");
    }

    #[test]
    fn every_dtype_round_trips() {
        for dtype in DType::ALL {
            let t = Tensor::seeded(dtype, &[2, 3], "npy", 0.0, 4.0).unwrap();
            let back = from_bytes(&to_bytes(&t).unwrap()).unwrap();
            assert_eq!(back, t, "{dtype}");
        }
        let scalar = Tensor::scalar(2.5f64);
        assert_eq!(from_bytes(&to_bytes(&scalar).unwrap()).unwrap(), scalar);
    }

    #[test]
    fn corrupt_files_are_errors() {
        let good = numpy_i16();
        let short = &good[..good.len() - 1];
        assert!(matches!(from_bytes(short), Err(NpyError::Truncated { expected: 6, got: 5 })));
        let mut long = good.clone();
        long.push(0);
        assert!(matches!(from_bytes(&long), Err(NpyError::TrailingBytes(1))));
        assert!(matches!(from_bytes(b"hello world"), Err(NpyError::Malformed(_))));
        assert!(matches!(from_bytes(&good[..20]), Err(NpyError::Malformed(_))));
        let complex = replace(&good, "<i2", "<c8");
        let e = from_bytes(&complex);
        assert!(matches!(&e, Err(NpyError::UnsupportedDType(d)) if d == "<c8"), "{e:?}");
        let huge = replace(&good, "(1, 3), ", "(99999999999, 99999999999)");
        assert!(from_bytes(&huge).is_err());
    }
}
