//! The context shape/dtype inference runs in, its error type, and helpers shared by op families
//! (broadcasting, axis normalization, reading constant inputs, fresh symbols for data-dependent dims).

use crate::limits::MAX_RANK;
use crate::{DType, Dim, Tensor, TensorType};

/// Why an op's output types could not be inferred from its inputs: the op's validation failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("node '{node}' ({op}): {message}")]
pub struct InferError {
    pub node: String,
    pub op: String,
    pub message: String,
}

/// What an op sees of its node when inferring output types.
pub struct InferCtx<'a> {
    /// Node name, for messages and for naming data-dependent dimensions.
    pub node: &'a str,
    pub op: &'a str,
    /// Input types; `None` where an optional input is absent.
    pub inputs: &'a [Option<TensorType>],
    /// Input values, where the input is a constant.
    pub consts: &'a [Option<Tensor>],
    /// How many outputs the node declares.
    pub num_outputs: usize,
}

impl<'a> InferCtx<'a> {
    pub fn error(&self, message: String) -> InferError {
        InferError { node: self.node.to_string(), op: self.op.to_string(), message }
    }

    pub fn mismatch(&self, message: String) -> InferError {
        self.error(message)
    }

    pub fn bad_dtype(&self, input: usize, dtype: DType) -> InferError {
        self.error(format!("input {input} has dtype {dtype}, which this op does not accept"))
    }

    /// A required input's type.
    pub fn input(&self, i: usize) -> Result<&'a TensorType, InferError> {
        self.inputs.get(i).and_then(Option::as_ref).ok_or_else(|| self.error(format!("required input {i} is missing")))
    }

    /// An optional input's type.
    pub fn opt_input(&self, i: usize) -> Option<&'a TensorType> {
        self.inputs.get(i).and_then(Option::as_ref)
    }

    /// All inputs, each required.
    pub fn required_inputs(&self) -> Result<Vec<&'a TensorType>, InferError> {
        (0..self.inputs.len()).map(|i| self.input(i)).collect()
    }

    /// An input's constant value, if it is a constant.
    pub fn const_input(&self, i: usize) -> Option<&'a Tensor> {
        self.consts.get(i).and_then(Option::as_ref)
    }

    /// An input's constant value as i64s.
    pub fn const_i64(&self, i: usize) -> Option<Vec<i64>> {
        self.const_input(i).map(Tensor::to_i64_vec)
    }

    /// The element count of a 1-D input whose values are only known at run time (axes, shapes).
    /// It becomes a rank, so it is checked against [`MAX_RANK`] before anything is sized by it.
    pub fn runtime_len(&self, i: usize, what: &str) -> Result<usize, InferError> {
        let t = self.input(i)?;
        let n = match t.shape.as_slice() {
            [d] => {
                d.known().ok_or_else(|| self.error(format!("{what} must be constant or 1-D of known length, got {t}")))
            }
            _ => Err(self.error(format!("{what} must be 1-D, got {t}"))),
        }?;
        self.check_rank(n, what)?;
        Ok(n)
    }

    /// Refuses a rank above [`MAX_RANK`]; `what` says where it comes from.
    pub fn check_rank(&self, rank: usize, what: &str) -> Result<(), InferError> {
        if rank > MAX_RANK {
            return Err(
                self.error(format!("{what} has {rank} entries, more than the {MAX_RANK} dims a tensor may have"))
            );
        }
        Ok(())
    }

    /// `rank` fresh dims, for outputs whose extents depend on run-time values.
    pub fn fresh_shape(&self, rank: usize, what: &str) -> Vec<Dim> {
        (0..rank).map(|i| self.fresh(format!("{what}{i}"))).collect()
    }

    /// A named, data-dependent dimension: `<node>:<what>`.
    pub fn fresh(&self, what: impl std::fmt::Display) -> Dim {
        Dim::Sym(format!("{}:{}", self.node, what))
    }

    /// Checks an input's dtype against a predicate.
    pub fn expect_dtype(&self, i: usize, ok: impl Fn(DType) -> bool) -> Result<&'a TensorType, InferError> {
        let t = self.input(i)?;
        if ok(t.dtype) {
            Ok(t)
        } else {
            Err(self.bad_dtype(i, t.dtype))
        }
    }

    /// Checks an input's rank.
    pub fn expect_rank(&self, i: usize, rank: usize) -> Result<&'a TensorType, InferError> {
        let t = self.input(i)?;
        if t.rank() == rank {
            Ok(t)
        } else {
            Err(self.error(format!("input {i} must have rank {rank}, got {t}")))
        }
    }

    /// Normalizes a possibly negative axis against `rank`.
    pub fn axis(&self, axis: i64, rank: usize) -> Result<usize, InferError> {
        normalize_axis(axis, rank).ok_or_else(|| self.error(format!("axis {axis} is out of range for rank {rank}")))
    }
}

/// `axis` in `-rank..rank` mapped to `0..rank`.
pub fn normalize_axis(axis: i64, rank: usize) -> Option<usize> {
    let r = rank as i64;
    let a = if axis < 0 { axis + r } else { axis };
    (0..r).contains(&a).then_some(a as usize)
}

/// Numpy broadcasting of two dims: equal, or one of them is 1. Two different symbols broadcast to
/// the first (they must be equal at run time unless one is 1, which the runtime checks).
pub fn broadcast_dim(a: &Dim, b: &Dim) -> Option<Dim> {
    match (a, b) {
        (Dim::Known(1), d) | (d, Dim::Known(1)) => Some(d.clone()),
        (Dim::Known(x), Dim::Known(y)) => (x == y).then(|| a.clone()),
        (Dim::Sym(_), _) => Some(a.clone()),
        (_, Dim::Sym(_)) => Some(b.clone()),
    }
}

/// The broadcast of several shapes.
pub fn broadcast_all(cx: &InferCtx, shapes: &[&[Dim]]) -> Result<Vec<Dim>, InferError> {
    let rank = shapes.iter().map(|s| s.len()).max().unwrap_or(0);
    let mut out = vec![Dim::Known(1); rank];
    for s in shapes {
        let off = rank - s.len();
        for (i, d) in s.iter().enumerate() {
            out[off + i] = broadcast_dim(&out[off + i], d)
                .ok_or_else(|| cx.error(format!("shapes {} cannot be broadcast together", show_shapes(shapes))))?;
        }
    }
    Ok(out)
}

fn show_shapes(shapes: &[&[Dim]]) -> String {
    let parts: Vec<String> =
        shapes.iter().map(|s| format!("[{}]", s.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(","))).collect();
    parts.join(" and ")
}

/// Broadcast of concrete shapes (used by runtimes).
pub fn broadcast_shapes(shapes: &[&[usize]]) -> Option<Vec<usize>> {
    let rank = shapes.iter().map(|s| s.len()).max().unwrap_or(0);
    let mut out = vec![1usize; rank];
    for s in shapes {
        let off = rank - s.len();
        for (i, &d) in s.iter().enumerate() {
            let o = &mut out[off + i];
            if *o == 1 {
                *o = d;
            } else if d != 1 && d != *o {
                return None;
            }
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broadcasting() {
        assert_eq!(broadcast_shapes(&[&[2, 1, 3], &[4, 1]]), Some(vec![2, 4, 3]));
        assert_eq!(broadcast_shapes(&[&[2, 3], &[4]]), None);
        assert_eq!(broadcast_shapes(&[&[], &[5]]), Some(vec![5]));
        assert_eq!(broadcast_dim(&Dim::from("n"), &Dim::Known(1)), Some(Dim::from("n")));
        assert_eq!(normalize_axis(-1, 4), Some(3));
        assert_eq!(normalize_axis(4, 4), None);
    }
}
