//! What every kernel shares: the kernel error type, input accessors, allocation checks, layout and
//! dtype conversion helpers, and the float-kernel dispatch (f32 and f64 natively, f16 via f32).

use kiln_ir::tensor::check_alloc;
use kiln_ir::{ArcArrayD, DType, Element, LimitError, Tensor, TensorError};
use ndarray::{ArrayD, CowArray, IxDyn};

/// A kernel failure; the graph runner adds the node and op.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Fail {
    Message(String),
    /// A resource limit was passed (kept typed so callers can tell it from a bad model).
    Limit(LimitError),
}

pub(crate) type KResult<T> = Result<T, Fail>;

impl Fail {
    /// The error a runner reports for this failure in node `node` of op `op`.
    pub(crate) fn at(self, node: &str, op: &str) -> crate::ExecError {
        let (node, op) = (node.to_string(), op.to_string());
        match self {
            Fail::Message(message) => crate::ExecError::Kernel { node, op, message },
            Fail::Limit(source) => crate::ExecError::Limit { node, op, source },
        }
    }
}

impl std::fmt::Display for Fail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Fail::Message(m) => f.write_str(m),
            Fail::Limit(e) => e.fmt(f),
        }
    }
}

impl From<String> for Fail {
    fn from(s: String) -> Fail {
        Fail::Message(s)
    }
}

impl From<&str> for Fail {
    fn from(s: &str) -> Fail {
        Fail::Message(s.to_string())
    }
}

impl From<TensorError> for Fail {
    fn from(e: TensorError) -> Fail {
        Fail::Message(e.to_string())
    }
}

impl From<LimitError> for Fail {
    fn from(e: LimitError) -> Fail {
        Fail::Limit(e)
    }
}

/// A nested graph's failure, as its If/Loop/Scan node's: a passed limit stays a limit, with the
/// inner node's name kept in its description.
impl From<crate::ExecError> for Fail {
    fn from(e: crate::ExecError) -> Fail {
        match e {
            crate::ExecError::Limit { node, op, source } => {
                Fail::Limit(LimitError { what: format!("in node '{node}' ({op}): {}", source.what), ..source })
            }
            e => Fail::Message(e.to_string()),
        }
    }
}

/// Returns a [`Fail`] built like `format!`.
macro_rules! bail {
    ($($arg:tt)*) => {
        return Err($crate::interp::kernel::Fail::Message(format!($($arg)*)))
    };
}
pub(crate) use bail;

/// Runs `$body` with `$T` bound to the compute type of a float dtype: f32 for f32 and f16 (f16
/// is widened, then narrowed back by the caller's final cast), f64 for f64.
macro_rules! with_float {
    ($dtype:expr, $T:ident => $body:expr) => {
        match $dtype {
            kiln_ir::DType::F32 | kiln_ir::DType::F16 => {
                type $T = f32;
                $body
            }
            kiln_ir::DType::F64 => {
                type $T = f64;
                $body
            }
            d => $crate::interp::kernel::bail!("dtype {d} is not a float type"),
        }
    };
}
pub(crate) use with_float;

/// A float type the GEMM-based kernels compute in (f32 or f64).
pub(crate) trait Real: Element + ndarray::LinalgScalar + std::ops::AddAssign {}
impl Real for f32 {}
impl Real for f64 {}

/// A required input.
pub(crate) fn input(ins: &[Option<Tensor>], i: usize) -> KResult<&Tensor> {
    match ins.get(i) {
        Some(Some(t)) => Ok(t),
        _ => bail!("required input {i} is missing"),
    }
}

/// An optional input (absent slots and slots past the end are `None`).
pub(crate) fn opt_input(ins: &[Option<Tensor>], i: usize) -> Option<&Tensor> {
    ins.get(i).and_then(Option::as_ref)
}

/// An optional input read as i64s (axes, pads, sizes, ...).
pub(crate) fn opt_i64s(ins: &[Option<Tensor>], i: usize) -> Option<Vec<i64>> {
    opt_input(ins, i).map(Tensor::to_i64_vec)
}

/// Refuses outputs larger than the current `max_tensor_bytes` limit.
pub(crate) fn alloc(dtype: DType, shape: &[usize]) -> KResult<()> {
    Ok(check_alloc(dtype, shape)?)
}

/// The tensor's elements as an array of `T`, converting the dtype if needed (shares when equal).
pub(crate) fn cast_to<T: Element>(t: &Tensor) -> ArcArrayD<T> {
    T::array(&t.cast(T::DTYPE)).cloned().expect("cast produces the requested dtype")
}

/// The typed array of a tensor that must already have dtype `T`.
pub(crate) fn typed<'a, T: Element>(t: &'a Tensor, what: &str) -> KResult<&'a ArcArrayD<T>> {
    match T::array(t) {
        Some(a) => Ok(a),
        None => bail!("{what} has dtype {} but {} was expected", t.dtype(), T::DTYPE),
    }
}

/// A row-major view (copies only when the array is not already in standard layout).
pub(crate) fn standard<T: Clone>(a: &ArcArrayD<T>) -> CowArray<'_, T, IxDyn> {
    a.as_standard_layout()
}

/// A row-major slice of a standard-layout array.
pub(crate) fn slice_of<'a, T>(a: &'a CowArray<'_, T, IxDyn>) -> &'a [T] {
    a.as_slice().expect("standard layout is contiguous")
}

/// Wraps an array computed in `T` as a tensor of `dtype` (narrowing f32 back to f16 if needed).
pub(crate) fn finish<T: Element>(a: ArrayD<T>, dtype: DType) -> Tensor {
    Tensor::from_array(a).cast(dtype)
}

/// Builds an array from a shape and row-major data produced by a kernel.
pub(crate) fn array<T>(shape: &[usize], data: Vec<T>) -> ArrayD<T> {
    ArrayD::from_shape_vec(IxDyn(shape), data).expect("kernel produced shape-consistent data")
}

/// Normalizes an axis, with a clear error.
pub(crate) fn axis(axis: i64, rank: usize) -> KResult<usize> {
    kiln_ir::op::normalize_axis(axis, rank)
        .ok_or_else(|| Fail::Message(format!("axis {axis} is out of range for rank {rank}")))
}

/// Renders a shape as `[2,3,4]`.
pub(crate) fn show(shape: &[usize]) -> String {
    let dims: Vec<String> = shape.iter().map(usize::to_string).collect();
    format!("[{}]", dims.join(","))
}

/// Advances a row-major multi-index over `dims`; returns false after the last index.
pub(crate) fn next_index(idx: &mut [usize], dims: &[usize]) -> bool {
    for d in (0..dims.len()).rev() {
        idx[d] += 1;
        if idx[d] < dims[d] {
            return true;
        }
        idx[d] = 0;
    }
    false
}

/// Every multi-index over `dims` in row-major order (one empty index for rank 0, none when a
/// dim is 0).
pub(crate) fn indices(dims: &[usize]) -> impl Iterator<Item = Vec<usize>> + '_ {
    let mut cur = (!dims.contains(&0)).then(|| vec![0; dims.len()]);
    std::iter::from_fn(move || {
        let out = cur.clone()?;
        let c = cur.as_mut().expect("checked above");
        if !next_index(c, dims) {
            cur = None;
        }
        Some(out)
    })
}

/// Row-major strides of `dims`.
pub(crate) fn strides(dims: &[usize]) -> Vec<usize> {
    let mut s = vec![1; dims.len()];
    for d in (0..dims.len().saturating_sub(1)).rev() {
        s[d] = s[d + 1] * dims[d + 1];
    }
    s
}
