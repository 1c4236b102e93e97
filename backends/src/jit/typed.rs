//! Elementwise ops on values that are not all f32 — the attention-mask path of transformers:
//! comparisons (f32/i64 → bool), Not/And/Or/Xor, integer arithmetic, Where(bool, x, y), Cast
//! between f32, i32, i64 and bool, and broadcasting copies (Expand) of any of them. Each element
//! is computed with the IR's scalar semantics (`eval_f64` for floats, `eval_i64` otherwise,
//! [`kiln_ir::convert`] for Cast), exactly as the interpreter does, over numpy-broadcast
//! operands; the dtype dispatch happens once per step. Parallel over output rows.

use super::exec::Ptr;
use super::pool::Workers;
use kiln_ir::op::{Binary, Unary};
use kiln_ir::tensor::convert;
use kiln_ir::{DType, Element};

/// Most operands a typed op reads (Where's three).
const MAX_OPERANDS: usize = 3;

/// What a typed step computes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum TypedOp {
    Unary(Unary),
    Binary(Binary),
    /// Inputs: cond (bool), x, y.
    Where,
    Cast,
    /// The input broadcast to the output (Expand).
    Copy,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct TypedStep {
    pub op: TypedOp,
    /// Each operand's dtype, then the output's.
    pub dtypes: Vec<DType>,
    /// The output's shape.
    pub dims: Vec<usize>,
    /// Each operand's element strides over the output's dims (0 where broadcast).
    pub strides: Vec<Vec<isize>>,
}

/// Whether typed kernels compute this dtype.
pub(crate) fn supported(d: DType) -> bool {
    matches!(d, DType::F32 | DType::I32 | DType::I64 | DType::Bool)
}

/// Runs `$body` with `$t` bound to the Rust type of a supported dtype.
macro_rules! with_type {
    ($d:expr, $t:ident => $body:expr) => {
        match $d {
            DType::F32 => {
                type $t = f32;
                $body
            }
            DType::I32 => {
                type $t = i32;
                $body
            }
            DType::I64 => {
                type $t = i64;
                $body
            }
            DType::Bool => {
                type $t = bool;
                $body
            }
            other => unreachable!("typed kernels are planned only for supported dtypes, not {other}"),
        }
    };
}

impl TypedStep {
    /// `op` over operands of `shapes` and `dtypes` (then the output's dtype) into `out`; `None`
    /// for dtypes or ops it does not cover, or shapes that do not broadcast to `out`.
    pub(crate) fn new(op: TypedOp, shapes: &[Vec<usize>], dtypes: Vec<DType>, out: &[usize]) -> Option<TypedStep> {
        let arity = match op {
            TypedOp::Unary(_) | TypedOp::Cast | TypedOp::Copy => 1,
            TypedOp::Binary(_) => 2,
            TypedOp::Where => 3,
        };
        let ok = match op {
            TypedOp::Binary(b) => !matches!(b, Binary::BitShiftLeft | Binary::BitShiftRight) && dtypes[0] == dtypes[1],
            TypedOp::Where => dtypes[0] == DType::Bool && dtypes[1] == dtypes[2],
            TypedOp::Unary(_) | TypedOp::Cast | TypedOp::Copy => true,
        };
        if shapes.len() != arity || dtypes.len() != arity + 1 || !ok || !dtypes.iter().all(|&d| supported(d)) {
            return None;
        }
        let strides = shapes.iter().map(|s| broadcast_strides(s, out)).collect::<Option<Vec<_>>>()?;
        let dims = if out.is_empty() { vec![1] } else { out.to_vec() };
        let strides = strides.into_iter().map(|s| if s.is_empty() { vec![0] } else { s }).collect();
        Some(TypedStep { op, dtypes, dims, strides })
    }

    /// # Safety
    /// `xs` point at the operands (of the planned dtypes and shapes), `y` at the output, which
    /// overlaps none of them.
    pub(crate) unsafe fn run(&self, workers: &Workers, xs: &[Ptr], y: Ptr) {
        let out = self.dtypes[self.dtypes.len() - 1];
        let d0 = self.dtypes[0];
        // SAFETY (every arm): forwarded to `map`, whose element types are the planned dtypes.
        unsafe {
            match self.op {
                TypedOp::Unary(u) => with_type!(d0, T => self.map(workers, xs, y, move |v: [T; 1]| {
                    if T::DTYPE.is_float() { T::from_f64(u.eval_f64(v[0].to_f64())) } else { T::from_i64(u.eval_i64(v[0].to_i64())) }
                })),
                TypedOp::Binary(b) if b.is_comparison() => {
                    with_type!(d0, T => self.map(workers, xs, y, move |v: [T; 2]| {
                        scalar(b, v[0], v[1]) != 0.0
                    }))
                }
                TypedOp::Binary(b) => with_type!(d0, T => self.map(workers, xs, y, move |v: [T; 2]| {
                    if T::DTYPE.is_float() {
                        T::from_f64(b.eval_f64(v[0].to_f64(), v[1].to_f64()))
                    } else {
                        T::from_i64(b.eval_i64(v[0].to_i64(), v[1].to_i64()))
                    }
                })),
                TypedOp::Where => with_type!(out, T => self.where_::<T>(workers, xs, y)),
                TypedOp::Cast => {
                    with_type!(d0, S => with_type!(out, D => self.map(workers, xs, y, |v: [S; 1]| convert::<S, D>(v[0]))))
                }
                TypedOp::Copy => with_type!(d0, T => self.map(workers, xs, y, |v: [T; 1]| v[0])),
            }
        }
    }

    /// Where(cond, x, y), whose operands have different element types.
    unsafe fn where_<T: Element>(&self, workers: &Workers, xs: &[Ptr], y: Ptr) {
        // SAFETY: forwarded; operand 0 is bool, 1 and 2 are `T`.
        unsafe {
            self.rows(workers, |base, len, out_at| {
                let (c, a, b) = (xs[0].raw() as *const bool, xs[1].raw() as *const T, xs[2].raw() as *const T);
                let s = |k: usize| self.strides[k][self.dims.len() - 1];
                let dst = y.raw() as *mut T;
                for j in 0..len as isize {
                    let pick = *c.offset(base[0] + j * s(0));
                    *dst.add(out_at + j as usize) =
                        if pick { *a.offset(base[1] + j * s(1)) } else { *b.offset(base[2] + j * s(2)) };
                }
            })
        }
    }

    /// `y = f([x_0, …])` elementwise, where every operand has type `T`.
    unsafe fn map<T: Element, U: Element, const N: usize>(
        &self,
        workers: &Workers,
        xs: &[Ptr],
        y: Ptr,
        f: impl Fn([T; N]) -> U + Sync,
    ) {
        let last = self.dims.len() - 1;
        // SAFETY: forwarded; every offset `rows` hands out is inside its operand.
        unsafe {
            self.rows(workers, |base, len, out_at| {
                let dst = y.raw() as *mut U;
                for j in 0..len as isize {
                    let v: [T; N] =
                        std::array::from_fn(|k| *(xs[k].raw() as *const T).offset(base[k] + j * self.strides[k][last]));
                    *dst.add(out_at + j as usize) = f(v);
                }
            })
        }
    }

    /// Calls `row(operand bases, row length, output offset)` for every row of the output.
    unsafe fn rows(&self, workers: &Workers, row: impl Fn([isize; MAX_OPERANDS], usize, usize) + Sync) {
        let (outer, inner) = self.dims.split_at(self.dims.len() - 1);
        let inner = inner[0];
        let rows: usize = outer.iter().product();
        workers.for_each(rows, inner, |r| {
            let mut base = [0isize; MAX_OPERANDS];
            let mut rest = r;
            for d in (0..outer.len()).rev() {
                let i = (rest % outer[d]) as isize;
                rest /= outer[d];
                for (b, s) in base.iter_mut().zip(&self.strides) {
                    *b += i * s[d];
                }
            }
            row(base, inner, r * inner);
        });
    }
}

/// A binary op on `T` with the IR's semantics, as f64 (comparisons give 0 or 1).
fn scalar<T: Element>(b: Binary, p: T, q: T) -> f64 {
    if T::DTYPE.is_float() {
        b.eval_f64(p.to_f64(), q.to_f64())
    } else {
        b.eval_i64(p.to_i64(), q.to_i64()) as f64
    }
}

/// Element strides of a contiguous `shape` broadcast (numpy rules) to `out`.
pub(crate) fn broadcast_strides(shape: &[usize], out: &[usize]) -> Option<Vec<isize>> {
    if shape.len() > out.len() {
        return None;
    }
    let lead = out.len() - shape.len();
    let mut strides = vec![0isize; out.len()];
    let mut stride = 1isize;
    for d in (0..shape.len()).rev() {
        match (shape[d], out[lead + d]) {
            (s, n) if s == n && s != 1 => strides[lead + d] = stride,
            (1, _) => {}
            _ => return None,
        }
        stride *= shape[d] as isize;
    }
    Some(strides)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strides_follow_broadcasting() {
        assert_eq!(broadcast_strides(&[3, 1], &[2, 3, 4]), Some(vec![0, 1, 0]));
        assert_eq!(broadcast_strides(&[], &[2]), Some(vec![0]));
        assert_eq!(broadcast_strides(&[2], &[3]), None);
    }
}
