//! Shapes whose dimensions are known numbers or named symbols, and the tensor type (dtype + shape).

use crate::DType;
use std::collections::HashMap;
use std::fmt;

/// One dimension: a known extent, or a named symbol bound at run time (e.g. `batch`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Dim {
    Known(usize),
    Sym(String),
}

impl Dim {
    pub fn known(&self) -> Option<usize> {
        match self {
            Dim::Known(n) => Some(*n),
            Dim::Sym(_) => None,
        }
    }

    /// Replaces a symbol by its binding, if there is one.
    pub fn bind(&self, bindings: &HashMap<String, usize>) -> Dim {
        match self {
            Dim::Sym(s) => bindings.get(s).map_or_else(|| self.clone(), |&n| Dim::Known(n)),
            known => known.clone(),
        }
    }
}

impl From<usize> for Dim {
    fn from(n: usize) -> Dim {
        Dim::Known(n)
    }
}

impl From<&str> for Dim {
    fn from(s: &str) -> Dim {
        Dim::Sym(s.to_string())
    }
}

impl fmt::Display for Dim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Dim::Known(n) => write!(f, "{n}"),
            Dim::Sym(s) => f.write_str(s),
        }
    }
}

/// A list of dimensions; rank is always known.
pub type Shape = Vec<Dim>;

/// Turns concrete extents into a [`Shape`].
pub fn known_shape(dims: &[usize]) -> Shape {
    dims.iter().map(|&d| Dim::Known(d)).collect()
}

/// The concrete extents of a shape, if no dimension is symbolic.
pub fn concrete(shape: &[Dim]) -> Option<Vec<usize>> {
    shape.iter().map(Dim::known).collect()
}

/// The type of a value: element type and shape.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct TensorType {
    pub dtype: DType,
    pub shape: Shape,
}

impl TensorType {
    pub fn new(dtype: DType, shape: impl IntoIterator<Item = Dim>) -> Self {
        TensorType { dtype, shape: shape.into_iter().collect() }
    }

    pub fn known(dtype: DType, dims: &[usize]) -> Self {
        TensorType { dtype, shape: known_shape(dims) }
    }

    pub fn scalar(dtype: DType) -> Self {
        TensorType { dtype, shape: vec![] }
    }

    pub fn rank(&self) -> usize {
        self.shape.len()
    }

    pub fn concrete_shape(&self) -> Option<Vec<usize>> {
        concrete(&self.shape)
    }

    /// Element count, when every dimension is known.
    pub fn numel(&self) -> Option<usize> {
        self.concrete_shape().map(|s| s.iter().product())
    }
}

impl fmt::Display for TensorType {
    /// `f32[1,3,224,224]`, `i64[batch,seq]`, `f32[]` for scalars.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}[", self.dtype)?;
        for (i, d) in self.shape.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{d}")?;
        }
        f.write_str("]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_and_binding() {
        let t = TensorType::new(DType::F32, [Dim::from("batch"), Dim::from(3)]);
        assert_eq!(t.to_string(), "f32[batch,3]");
        let b = HashMap::from([("batch".to_string(), 8)]);
        assert_eq!(t.shape[0].bind(&b), Dim::Known(8));
        assert_eq!(t.numel(), None);
        assert_eq!(TensorType::known(DType::I64, &[2, 5]).numel(), Some(10));
    }
}
