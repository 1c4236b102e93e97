//! Tensors: n-dimensional arrays of one [`DType`], cheaply shared (constants are never copied), plus
//! the deterministic pseudo-random generator that CLI inputs and test fixtures agree on.

use crate::DType;
use half::f16;
use ndarray::{ArcArray, ArrayD, IxDyn};
use std::fmt;

/// A shared, copy-on-write n-dimensional array.
pub type ArcArrayD<T> = ArcArray<T, IxDyn>;

/// A tensor value. Cloning shares the buffer.
#[derive(Clone, PartialEq)]
pub enum Tensor {
    F32(ArcArrayD<f32>),
    F16(ArcArrayD<f16>),
    F64(ArcArrayD<f64>),
    I8(ArcArrayD<i8>),
    I16(ArcArrayD<i16>),
    I32(ArcArrayD<i32>),
    I64(ArcArrayD<i64>),
    U8(ArcArrayD<u8>),
    U16(ArcArrayD<u16>),
    U32(ArcArrayD<u32>),
    U64(ArcArrayD<u64>),
    Bool(ArcArrayD<bool>),
}

/// Runs `$body` with `$a` bound to the typed array inside `$t`, whatever its dtype.
#[macro_export]
macro_rules! with_array {
    ($t:expr, $a:ident => $body:expr) => {
        match $t {
            $crate::Tensor::F32($a) => $body,
            $crate::Tensor::F16($a) => $body,
            $crate::Tensor::F64($a) => $body,
            $crate::Tensor::I8($a) => $body,
            $crate::Tensor::I16($a) => $body,
            $crate::Tensor::I32($a) => $body,
            $crate::Tensor::I64($a) => $body,
            $crate::Tensor::U8($a) => $body,
            $crate::Tensor::U16($a) => $body,
            $crate::Tensor::U32($a) => $body,
            $crate::Tensor::U64($a) => $body,
            $crate::Tensor::Bool($a) => $body,
        }
    };
}

/// Like [`with_array!`], but rewraps the array `$body` returns in the same dtype variant.
#[macro_export]
macro_rules! map_array {
    ($t:expr, $a:ident => $body:expr) => {
        match $t {
            $crate::Tensor::F32($a) => $crate::Tensor::F32($body),
            $crate::Tensor::F16($a) => $crate::Tensor::F16($body),
            $crate::Tensor::F64($a) => $crate::Tensor::F64($body),
            $crate::Tensor::I8($a) => $crate::Tensor::I8($body),
            $crate::Tensor::I16($a) => $crate::Tensor::I16($body),
            $crate::Tensor::I32($a) => $crate::Tensor::I32($body),
            $crate::Tensor::I64($a) => $crate::Tensor::I64($body),
            $crate::Tensor::U8($a) => $crate::Tensor::U8($body),
            $crate::Tensor::U16($a) => $crate::Tensor::U16($body),
            $crate::Tensor::U32($a) => $crate::Tensor::U32($body),
            $crate::Tensor::U64($a) => $crate::Tensor::U64($body),
            $crate::Tensor::Bool($a) => $crate::Tensor::Bool($body),
        }
    };
}

/// A Rust scalar type that is the element of one [`DType`].
pub trait Element: Copy + Default + PartialEq + fmt::Debug + Send + Sync + 'static {
    const DTYPE: DType;
    fn wrap(a: ArcArrayD<Self>) -> Tensor;
    fn array(t: &Tensor) -> Option<&ArcArrayD<Self>>;
    /// Lossy conversion used by `Cast` and by generic kernels (ONNX cast semantics: truncation
    /// toward zero for float→int, saturation is not promised).
    fn to_f64(self) -> f64;
    fn from_f64(v: f64) -> Self;
    fn to_i64(self) -> i64;
    fn from_i64(v: i64) -> Self;
}

macro_rules! element {
    ($t:ty, $variant:ident, $to_f64:expr, $from_f64:expr, $to_i64:expr, $from_i64:expr) => {
        impl Element for $t {
            const DTYPE: DType = DType::$variant;
            fn wrap(a: ArcArrayD<Self>) -> Tensor {
                Tensor::$variant(a)
            }
            fn array(t: &Tensor) -> Option<&ArcArrayD<Self>> {
                match t {
                    Tensor::$variant(a) => Some(a),
                    _ => None,
                }
            }
            fn to_f64(self) -> f64 {
                ($to_f64)(self)
            }
            fn from_f64(v: f64) -> Self {
                ($from_f64)(v)
            }
            fn to_i64(self) -> i64 {
                ($to_i64)(self)
            }
            fn from_i64(v: i64) -> Self {
                ($from_i64)(v)
            }
        }
    };
}

macro_rules! numeric_element {
    ($t:ty, $variant:ident) => {
        element!($t, $variant, |x: $t| x as f64, |v: f64| v as $t, |x: $t| x as i64, |v: i64| v as $t);
    };
}

numeric_element!(f32, F32);
numeric_element!(f64, F64);
numeric_element!(i8, I8);
numeric_element!(i16, I16);
numeric_element!(i32, I32);
numeric_element!(i64, I64);
numeric_element!(u8, U8);
numeric_element!(u16, U16);
numeric_element!(u32, U32);
numeric_element!(u64, U64);
element!(f16, F16, |x: f16| x.to_f64(), f16::from_f64, |x: f16| x.to_f64() as i64, |v: i64| f16::from_f64(v as f64));
element!(bool, Bool, |x: bool| x as u8 as f64, |v: f64| v != 0.0, |x: bool| x as i64, |v: i64| v != 0);

/// Why a tensor could not be built.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TensorError {
    #[error("shape {shape:?} holds {expected} elements but {got} were given")]
    ElementCount { shape: Vec<usize>, expected: usize, got: usize },
    #[error(
        "a {dtype} tensor of shape {} needs more than the max_tensor_bytes limit of {} (set with --max-tensor-bytes); refusing to allocate it",
        show_shape(shape), crate::limits::show_bytes(Some(*limit))
    )]
    TooLarge { dtype: DType, shape: Vec<usize>, limit: u64 },
}

/// `[2,3]`, eliding the middle of absurdly long shapes.
fn show_shape(shape: &[usize]) -> String {
    let dims: Vec<String> = shape.iter().map(usize::to_string).collect();
    if dims.len() <= 2 * crate::limits::MAX_RANK {
        return format!("[{}]", dims.join(","));
    }
    format!("[{},…({} dims)…,{}]", dims[..8].join(","), dims.len(), dims[dims.len() - 8..].join(","))
}

/// Checks that a tensor of this shape and dtype fits the current
/// [`Limits::max_tensor_bytes`](crate::limits::Limits), with checked arithmetic, before
/// anything is allocated.
pub fn check_alloc(dtype: DType, shape: &[usize]) -> Result<(), TensorError> {
    let limit = crate::limits::current().max_tensor_bytes;
    let bytes =
        shape.iter().try_fold(dtype.size_of() as u64, |acc, &d| acc.checked_mul(d as u64)).filter(|&b| b <= limit);
    match bytes {
        Some(_) => Ok(()),
        None => Err(TensorError::TooLarge { dtype, shape: shape.to_vec(), limit }),
    }
}

impl Tensor {
    /// Builds a tensor from row-major data.
    pub fn from_vec<T: Element>(shape: &[usize], data: Vec<T>) -> Result<Tensor, TensorError> {
        let expected: usize = shape.iter().product();
        if expected != data.len() {
            return Err(TensorError::ElementCount { shape: shape.to_vec(), expected, got: data.len() });
        }
        let a = ArrayD::from_shape_vec(IxDyn(shape), data).expect("element count checked above");
        Ok(T::wrap(a.into_shared()))
    }

    /// Wraps an owned ndarray.
    pub fn from_array<T: Element>(a: ArrayD<T>) -> Tensor {
        T::wrap(a.into_shared())
    }

    /// A rank-0 tensor.
    pub fn scalar<T: Element>(v: T) -> Tensor {
        T::wrap(ArrayD::from_elem(IxDyn(&[]), v).into_shared())
    }

    /// A 1-D tensor.
    pub fn vector<T: Element>(v: Vec<T>) -> Tensor {
        let n = v.len();
        Tensor::from_vec(&[n], v).expect("length matches")
    }

    /// A zero-filled tensor, refusing absurd sizes.
    pub fn zeros(dtype: DType, shape: &[usize]) -> Result<Tensor, TensorError> {
        check_alloc(dtype, shape)?;
        Ok(Tensor::from_elem_unchecked(dtype, shape, 0.0))
    }

    /// A tensor filled with `value` converted to `dtype`.
    pub fn full(dtype: DType, shape: &[usize], value: f64) -> Result<Tensor, TensorError> {
        check_alloc(dtype, shape)?;
        Ok(Tensor::from_elem_unchecked(dtype, shape, value))
    }

    fn from_elem_unchecked(dtype: DType, shape: &[usize], value: f64) -> Tensor {
        fn fill<T: Element>(shape: &[usize], v: f64) -> Tensor {
            T::wrap(ArrayD::from_elem(IxDyn(shape), T::from_f64(v)).into_shared())
        }
        match dtype {
            DType::F32 => fill::<f32>(shape, value),
            DType::F16 => fill::<f16>(shape, value),
            DType::F64 => fill::<f64>(shape, value),
            DType::I8 => fill::<i8>(shape, value),
            DType::I16 => fill::<i16>(shape, value),
            DType::I32 => fill::<i32>(shape, value),
            DType::I64 => fill::<i64>(shape, value),
            DType::U8 => fill::<u8>(shape, value),
            DType::U16 => fill::<u16>(shape, value),
            DType::U32 => fill::<u32>(shape, value),
            DType::U64 => fill::<u64>(shape, value),
            DType::Bool => fill::<bool>(shape, value),
        }
    }

    pub fn dtype(&self) -> DType {
        match self {
            Tensor::F32(_) => DType::F32,
            Tensor::F16(_) => DType::F16,
            Tensor::F64(_) => DType::F64,
            Tensor::I8(_) => DType::I8,
            Tensor::I16(_) => DType::I16,
            Tensor::I32(_) => DType::I32,
            Tensor::I64(_) => DType::I64,
            Tensor::U8(_) => DType::U8,
            Tensor::U16(_) => DType::U16,
            Tensor::U32(_) => DType::U32,
            Tensor::U64(_) => DType::U64,
            Tensor::Bool(_) => DType::Bool,
        }
    }

    pub fn shape(&self) -> &[usize] {
        with_array!(self, a => a.shape())
    }

    pub fn rank(&self) -> usize {
        self.shape().len()
    }

    pub fn len(&self) -> usize {
        with_array!(self, a => a.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Its [`crate::TensorType`] with every dimension known.
    pub fn tensor_type(&self) -> crate::TensorType {
        crate::TensorType::known(self.dtype(), self.shape())
    }

    /// The typed array, if the dtype is `T`.
    pub fn array<T: Element>(&self) -> Option<&ArcArrayD<T>> {
        T::array(self)
    }

    /// Elements in row-major order, converted to `T` (the same conversion as `Cast`).
    pub fn to_vec<T: Element>(&self) -> Vec<T> {
        with_array!(self, a => a.iter().map(|&x| convert(x)).collect())
    }

    /// Elements as i64 (for shape-like inputs: axes, pads, shapes, indices).
    pub fn to_i64_vec(&self) -> Vec<i64> {
        with_array!(self, a => a.iter().map(|x| x.to_i64()).collect())
    }

    /// Elements as f64 (for summaries and comparisons).
    pub fn to_f64_vec(&self) -> Vec<f64> {
        with_array!(self, a => a.iter().map(|x| x.to_f64()).collect())
    }

    /// Converts every element to `to` (ONNX `Cast` semantics).
    pub fn cast(&self, to: DType) -> Tensor {
        fn go<S: Element, D: Element>(a: &ArcArrayD<S>) -> Tensor {
            D::wrap(a.mapv(convert::<S, D>).into_shared())
        }
        if self.dtype() == to {
            return self.clone();
        }
        with_array!(self, a => match to {
            DType::F32 => go::<_, f32>(a),
            DType::F16 => go::<_, f16>(a),
            DType::F64 => go::<_, f64>(a),
            DType::I8 => go::<_, i8>(a),
            DType::I16 => go::<_, i16>(a),
            DType::I32 => go::<_, i32>(a),
            DType::I64 => go::<_, i64>(a),
            DType::U8 => go::<_, u8>(a),
            DType::U16 => go::<_, u16>(a),
            DType::U32 => go::<_, u32>(a),
            DType::U64 => go::<_, u64>(a),
            DType::Bool => go::<_, bool>(a),
        })
    }

    /// The same elements in a new shape (element counts must agree).
    pub fn reshape(&self, shape: &[usize]) -> Result<Tensor, TensorError> {
        let expected: usize = shape.iter().product();
        if expected != self.len() {
            return Err(TensorError::ElementCount { shape: shape.to_vec(), expected, got: self.len() });
        }
        Ok(map_array!(self, a => {
            let std = a.as_standard_layout().into_owned();
            std.into_shape_with_order(IxDyn(shape)).expect("count checked").into_shared()
        }))
    }

    /// A deterministic pseudo-random tensor: element i is `center + half_width * (2u_i - 1)` with
    /// `u_i` the i-th draw of [`SeededRng::for_name`]`(name)`. Integers draw from `0..10`, bools
    /// from the top bit. Python fixture scripts reproduce this exactly (see `scripts/kiln_random.py`).
    pub fn seeded(
        dtype: DType,
        shape: &[usize],
        name: &str,
        center: f32,
        half_width: f32,
    ) -> Result<Tensor, TensorError> {
        check_alloc(dtype, shape)?;
        let n: usize = shape.iter().product();
        let mut rng = SeededRng::for_name(name);
        let t = if dtype.is_float() {
            let v: Vec<f32> = (0..n).map(|_| center + half_width * rng.next_signed_unit()).collect();
            Tensor::from_vec(shape, v)?.cast(dtype)
        } else if dtype == DType::Bool {
            let v: Vec<bool> = (0..n).map(|_| rng.next_u64() >> 63 == 1).collect();
            Tensor::from_vec(shape, v)?
        } else {
            let v: Vec<i64> = (0..n).map(|_| (rng.next_u64() >> 33) as i64 % 10).collect();
            Tensor::from_vec(shape, v)?.cast(dtype)
        };
        Ok(t)
    }
}

/// Element conversion with `Cast` semantics.
pub fn convert<S: Element, D: Element>(x: S) -> D {
    if S::DTYPE.is_float() || D::DTYPE.is_float() {
        D::from_f64(x.to_f64())
    } else {
        D::from_i64(x.to_i64())
    }
}

impl fmt::Debug for Tensor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Tensor<{}>{:?}", self.dtype(), self.shape())?;
        if self.len() <= 16 {
            with_array!(self, a => write!(f, " {:?}", a.iter().collect::<Vec<_>>()))?;
        }
        Ok(())
    }
}

/// SplitMix64 seeded by the FNV-1a hash of a name: the generator shared by `kiln run`'s default
/// inputs and the fixture scripts, so both sides draw identical numbers without shipping data.
#[derive(Clone, Debug)]
pub struct SeededRng {
    state: u64,
}

impl SeededRng {
    /// Mixed into every seed so Kiln's streams differ from other tools' FNV uses.
    pub const GLOBAL_SEED: u64 = 0x4B49_4C4E;

    pub fn for_name(name: &str) -> SeededRng {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in name.bytes() {
            h ^= b as u64;
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        SeededRng { state: h ^ Self::GLOBAL_SEED }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1) with 24 random bits (exact in f32).
    pub fn next_unit(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }

    /// Uniform in [-1, 1), exactly `2u - 1`.
    pub fn next_signed_unit(&mut self) -> f32 {
        2.0 * self.next_unit() - 1.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rng_matches_reference_values() {
        // Values printed by scripts/kiln_random.py; they pin the cross-language contract.
        let mut r = SeededRng::for_name("x");
        let first = r.next_u64();
        let mut again = SeededRng::for_name("x");
        assert_eq!(again.next_u64(), first);
        assert_ne!(SeededRng::for_name("y").next_u64(), first);
        assert_eq!(first, 0x177c_0386_e4e8_8e4c);
        assert_eq!([again.next_u64(), again.next_u64()], [0x9251_5b11_fa07_81a5, 0xc787_96d8_bcbd_e619]);
        let mut d = SeededRng::for_name("data_0");
        assert_eq!(
            [d.next_u64(), d.next_u64(), d.next_u64()],
            [0x24ce_d17b_3ccf_4259, 0xb7dc_3765_80f7_9d4f, 0x6808_e4cc_e806_d5e2]
        );
    }

    #[test]
    fn cast_and_reshape() {
        let t = Tensor::from_vec(&[2, 2], vec![1.5f32, -2.7, 3.0, 0.0]).unwrap();
        assert_eq!(t.cast(DType::I64).to_i64_vec(), vec![1, -2, 3, 0]);
        assert_eq!(t.cast(DType::Bool).to_i64_vec(), vec![1, 1, 1, 0]);
        assert_eq!(t.reshape(&[4]).unwrap().shape(), &[4]);
        assert!(t.reshape(&[3]).is_err());
    }

    #[test]
    fn absurd_sizes_are_refused() {
        assert!(matches!(Tensor::zeros(DType::F32, &[1 << 40, 1 << 40]), Err(TensorError::TooLarge { .. })));
        assert!(matches!(Tensor::zeros(DType::F32, &[usize::MAX, 2]), Err(TensorError::TooLarge { .. })));
    }
}
