//! Elementwise ops: unary maps (activations, math), broadcasting binary ops (arithmetic,
//! comparison, logic) and variadic reductions over inputs (Sum/Max/Min/Mean). The scalar
//! semantics defined here are the single source for every backend and for constant folding.

use super::infer::{broadcast_all, InferCtx, InferError};
use crate::{DType, TensorType};

/// A one-input elementwise map. Parameters are the ONNX attributes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Unary {
    Relu,
    Sigmoid,
    Tanh,
    Erf,
    Exp,
    Log,
    Sqrt,
    Neg,
    Abs,
    Reciprocal,
    Floor,
    Ceil,
    /// Round half to even.
    Round,
    Sign,
    Sin,
    Cos,
    Tan,
    Asin,
    Acos,
    Atan,
    Sinh,
    Cosh,
    Asinh,
    Acosh,
    Atanh,
    Softplus,
    Softsign,
    HardSwish,
    Mish,
    /// Logical not; bool only.
    Not,
    /// `x if x >= 0 else alpha * x`
    LeakyRelu {
        alpha: f32,
    },
    /// `max(0, min(1, alpha * x + beta))`
    HardSigmoid {
        alpha: f32,
        beta: f32,
    },
    /// `x if x > 0 else alpha * (exp(x) - 1)`
    Elu {
        alpha: f32,
    },
    /// `gamma * (x if x > 0 else alpha * (exp(x) - 1))`
    Selu {
        alpha: f32,
        gamma: f32,
    },
    /// `max(0, x) + min(0, alpha * (exp(x / alpha) - 1))`
    Celu {
        alpha: f32,
    },
    /// `x if x > alpha else 0`
    ThresholdedRelu {
        alpha: f32,
    },
    /// `0.5 x (1 + erf(x / sqrt 2))`, or the tanh approximation.
    Gelu {
        tanh_approx: bool,
    },
}

impl Unary {
    /// The ONNX op type this map comes from.
    pub fn onnx_name(&self) -> &'static str {
        use Unary::*;
        match self {
            Relu => "Relu",
            Sigmoid => "Sigmoid",
            Tanh => "Tanh",
            Erf => "Erf",
            Exp => "Exp",
            Log => "Log",
            Sqrt => "Sqrt",
            Neg => "Neg",
            Abs => "Abs",
            Reciprocal => "Reciprocal",
            Floor => "Floor",
            Ceil => "Ceil",
            Round => "Round",
            Sign => "Sign",
            Sin => "Sin",
            Cos => "Cos",
            Tan => "Tan",
            Asin => "Asin",
            Acos => "Acos",
            Atan => "Atan",
            Sinh => "Sinh",
            Cosh => "Cosh",
            Asinh => "Asinh",
            Acosh => "Acosh",
            Atanh => "Atanh",
            Softplus => "Softplus",
            Softsign => "Softsign",
            HardSwish => "HardSwish",
            Mish => "Mish",
            Not => "Not",
            LeakyRelu { .. } => "LeakyRelu",
            HardSigmoid { .. } => "HardSigmoid",
            Elu { .. } => "Elu",
            Selu { .. } => "Selu",
            Celu { .. } => "Celu",
            ThresholdedRelu { .. } => "ThresholdedRelu",
            Gelu { .. } => "Gelu",
        }
    }

    /// Whether the op accepts this input dtype.
    pub fn accepts(&self, d: DType) -> bool {
        use Unary::*;
        match self {
            Not => d == DType::Bool,
            Neg | Abs | Sign => d != DType::Bool,
            Relu => d.is_float() || d.is_signed_int(),
            _ => d.is_float(),
        }
    }

    /// The map on one float value.
    pub fn eval_f64(&self, x: f64) -> f64 {
        use Unary::*;
        match *self {
            Relu => x.max(0.0),
            Sigmoid => 1.0 / (1.0 + (-x).exp()),
            Tanh => x.tanh(),
            Erf => erf(x),
            Exp => x.exp(),
            Log => x.ln(),
            Sqrt => x.sqrt(),
            Neg => -x,
            Abs => x.abs(),
            Reciprocal => 1.0 / x,
            Floor => x.floor(),
            Ceil => x.ceil(),
            Round => x.round_ties_even(),
            Sign => {
                if x > 0.0 {
                    1.0
                } else if x < 0.0 {
                    -1.0
                } else {
                    x
                }
            }
            Sin => x.sin(),
            Cos => x.cos(),
            Tan => x.tan(),
            Asin => x.asin(),
            Acos => x.acos(),
            Atan => x.atan(),
            Sinh => x.sinh(),
            Cosh => x.cosh(),
            Asinh => x.asinh(),
            Acosh => x.acosh(),
            Atanh => x.atanh(),
            Softplus => {
                if x > 30.0 {
                    x
                } else {
                    x.exp().ln_1p()
                }
            }
            Softsign => x / (1.0 + x.abs()),
            HardSwish => x * (x / 6.0 + 0.5).clamp(0.0, 1.0),
            Mish => x * Softplus.eval_f64(x).tanh(),
            Not => (x == 0.0) as u8 as f64,
            LeakyRelu { alpha } => {
                if x >= 0.0 {
                    x
                } else {
                    alpha as f64 * x
                }
            }
            HardSigmoid { alpha, beta } => (alpha as f64 * x + beta as f64).clamp(0.0, 1.0),
            Elu { alpha } => {
                if x > 0.0 {
                    x
                } else {
                    alpha as f64 * (x.exp() - 1.0)
                }
            }
            Selu { alpha, gamma } => gamma as f64 * if x > 0.0 { x } else { alpha as f64 * (x.exp() - 1.0) },
            Celu { alpha } => {
                let a = alpha as f64;
                x.max(0.0) + (a * ((x / a).exp() - 1.0)).min(0.0)
            }
            ThresholdedRelu { alpha } => {
                if x > alpha as f64 {
                    x
                } else {
                    0.0
                }
            }
            Gelu { tanh_approx: false } => 0.5 * x * (1.0 + erf(x / std::f64::consts::SQRT_2)),
            Gelu { tanh_approx: true } => {
                let c = (2.0 / std::f64::consts::PI).sqrt();
                0.5 * x * (1.0 + (c * (x + 0.044715 * x * x * x)).tanh())
            }
        }
    }

    /// The map on one integer value, for the ops defined on integers.
    pub fn eval_i64(&self, x: i64) -> i64 {
        match self {
            Unary::Neg => x.wrapping_neg(),
            Unary::Abs => x.wrapping_abs(),
            Unary::Sign => x.signum(),
            Unary::Relu => x.max(0),
            Unary::Not => (x == 0) as i64,
            other => other.eval_f64(x as f64) as i64,
        }
    }

    pub(crate) fn infer(&self, cx: &InferCtx) -> Result<Vec<TensorType>, InferError> {
        let x = cx.input(0)?;
        if !self.accepts(x.dtype) {
            return Err(cx.bad_dtype(0, x.dtype));
        }
        Ok(vec![x.clone()])
    }
}

/// The error function (Abramowitz–Stegun 7.1.26 is too coarse; this is W. J. Cody's rational
/// approximation via `erfc`, accurate to ~1e-15).
pub fn erf(x: f64) -> f64 {
    libm_erf(x)
}

fn libm_erf(x: f64) -> f64 {
    // Series for small |x|, continued fraction (Lentz) for large |x|; both to double precision.
    let ax = x.abs();
    let r = if ax < 2.5 {
        let mut sum = ax;
        let mut term = ax;
        let x2 = ax * ax;
        let mut n = 0.0;
        loop {
            n += 1.0;
            term *= -x2 / n;
            let add = term / (2.0 * n + 1.0);
            sum += add;
            if add.abs() <= 1e-17 * sum.abs() || n > 200.0 {
                break;
            }
        }
        sum * 2.0 / std::f64::consts::PI.sqrt()
    } else if ax > 6.0 {
        1.0
    } else {
        // erfc(x) = exp(-x^2)/sqrt(pi) * 1/(x + 1/2/(x + 1/(x + 3/2/(x + ...))))
        let mut f = ax;
        let tiny = 1e-300;
        let mut c = f;
        let mut d = 0.0;
        for k in 1..200 {
            let a = k as f64 / 2.0;
            d = ax + a * d;
            d = if d.abs() < tiny { tiny } else { d };
            c = ax + a / c;
            c = if c.abs() < tiny { tiny } else { c };
            d = 1.0 / d;
            let delta = c * d;
            f *= delta;
            if (delta - 1.0).abs() < 1e-16 {
                break;
            }
        }
        1.0 - (-ax * ax).exp() / std::f64::consts::PI.sqrt() / f
    };
    if x < 0.0 {
        -r
    } else {
        r
    }
}

/// A two-input elementwise op with numpy broadcasting.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Binary {
    Add,
    Sub,
    Mul,
    Div,
    Pow,
    Max,
    Min,
    /// `fmod == false`: sign of the divisor (Python); `true`: sign of the dividend (C).
    Mod {
        fmod: bool,
    },
    And,
    Or,
    Xor,
    Equal,
    Less,
    LessOrEqual,
    Greater,
    GreaterOrEqual,
    BitShiftLeft,
    BitShiftRight,
    BitwiseAnd,
    BitwiseOr,
    BitwiseXor,
}

impl Binary {
    pub fn onnx_name(&self) -> &'static str {
        use Binary::*;
        match self {
            Add => "Add",
            Sub => "Sub",
            Mul => "Mul",
            Div => "Div",
            Pow => "Pow",
            Max => "Max",
            Min => "Min",
            Mod { .. } => "Mod",
            And => "And",
            Or => "Or",
            Xor => "Xor",
            Equal => "Equal",
            Less => "Less",
            LessOrEqual => "LessOrEqual",
            Greater => "Greater",
            GreaterOrEqual => "GreaterOrEqual",
            BitShiftLeft | BitShiftRight => "BitShift",
            BitwiseAnd => "BitwiseAnd",
            BitwiseOr => "BitwiseOr",
            BitwiseXor => "BitwiseXor",
        }
    }

    /// Comparisons produce bool whatever their inputs.
    pub fn is_comparison(&self) -> bool {
        use Binary::*;
        matches!(self, Equal | Less | LessOrEqual | Greater | GreaterOrEqual)
    }

    pub fn is_logical(&self) -> bool {
        matches!(self, Binary::And | Binary::Or | Binary::Xor)
    }

    pub fn is_bitwise(&self) -> bool {
        use Binary::*;
        matches!(self, BitShiftLeft | BitShiftRight | BitwiseAnd | BitwiseOr | BitwiseXor)
    }

    /// `a op b` is `b op a`.
    pub fn is_commutative(&self) -> bool {
        use Binary::*;
        matches!(self, Add | Mul | Max | Min | And | Or | Xor | Equal | BitwiseAnd | BitwiseOr | BitwiseXor)
    }

    pub fn output_dtype(&self, input: DType) -> DType {
        if self.is_comparison() {
            DType::Bool
        } else {
            input
        }
    }

    /// The op on floats; comparisons and logic return 0.0 or 1.0.
    pub fn eval_f64(&self, a: f64, b: f64) -> f64 {
        use Binary::*;
        let bool_f = |v: bool| v as u8 as f64;
        match *self {
            Add => a + b,
            Sub => a - b,
            Mul => a * b,
            Div => a / b,
            Pow => a.powf(b),
            Max => {
                if a.is_nan() || b.is_nan() {
                    f64::NAN
                } else {
                    a.max(b)
                }
            }
            Min => {
                if a.is_nan() || b.is_nan() {
                    f64::NAN
                } else {
                    a.min(b)
                }
            }
            Mod { fmod: true } => a % b,
            Mod { fmod: false } => {
                let r = a % b;
                if r != 0.0 && (r < 0.0) != (b < 0.0) {
                    r + b
                } else {
                    r
                }
            }
            And => bool_f(a != 0.0 && b != 0.0),
            Or => bool_f(a != 0.0 || b != 0.0),
            Xor => bool_f((a != 0.0) != (b != 0.0)),
            Equal => bool_f(a == b),
            Less => bool_f(a < b),
            LessOrEqual => bool_f(a <= b),
            Greater => bool_f(a > b),
            GreaterOrEqual => bool_f(a >= b),
            BitShiftLeft | BitShiftRight | BitwiseAnd | BitwiseOr | BitwiseXor => {
                self.eval_i64(a as i64, b as i64) as f64
            }
        }
    }

    /// The op on integers (exact, wrapping; integer division truncates toward zero).
    pub fn eval_i64(&self, a: i64, b: i64) -> i64 {
        use Binary::*;
        match *self {
            Add => a.wrapping_add(b),
            Sub => a.wrapping_sub(b),
            Mul => a.wrapping_mul(b),
            Div => {
                if b == 0 {
                    0
                } else {
                    a.wrapping_div(b)
                }
            }
            Pow => {
                if b < 0 {
                    (a as f64).powf(b as f64) as i64
                } else {
                    a.wrapping_pow(b.min(u32::MAX as i64) as u32)
                }
            }
            Max => a.max(b),
            Min => a.min(b),
            Mod { fmod: true } => {
                if b == 0 {
                    0
                } else {
                    a.wrapping_rem(b)
                }
            }
            Mod { fmod: false } => {
                if b == 0 {
                    0
                } else {
                    let r = a.wrapping_rem(b);
                    if r != 0 && (r < 0) != (b < 0) {
                        r + b
                    } else {
                        r
                    }
                }
            }
            BitShiftLeft => a.wrapping_shl(b as u32),
            BitShiftRight => ((a as u64).wrapping_shr(b as u32)) as i64,
            BitwiseAnd => a & b,
            BitwiseOr => a | b,
            BitwiseXor => a ^ b,
            And | Or | Xor | Equal | Less | LessOrEqual | Greater | GreaterOrEqual => {
                self.eval_f64(a as f64, b as f64) as i64
            }
        }
    }

    pub(crate) fn infer(&self, cx: &InferCtx) -> Result<Vec<TensorType>, InferError> {
        let a = cx.input(0)?;
        let b = cx.input(1)?;
        // Pow alone allows a different exponent dtype.
        if a.dtype != b.dtype && *self != Binary::Pow {
            return Err(cx.mismatch(format!("input dtypes differ: {} vs {}", a.dtype, b.dtype)));
        }
        let ok = if self.is_logical() {
            a.dtype == DType::Bool
        } else if self.is_bitwise() {
            a.dtype.is_int()
        } else {
            a.dtype != DType::Bool || *self == Binary::Equal
        };
        if !ok {
            return Err(cx.bad_dtype(0, a.dtype));
        }
        let shape = broadcast_all(cx, &[&a.shape, &b.shape])?;
        Ok(vec![TensorType { dtype: self.output_dtype(a.dtype), shape }])
    }
}

/// A broadcasting reduction over any number of inputs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Variadic {
    Sum,
    Max,
    Min,
    Mean,
}

impl Variadic {
    pub fn onnx_name(&self) -> &'static str {
        match self {
            Variadic::Sum => "Sum",
            Variadic::Max => "Max",
            Variadic::Min => "Min",
            Variadic::Mean => "Mean",
        }
    }

    /// The binary op folded over the inputs (Mean folds with Add, then divides).
    pub fn fold_op(&self) -> Binary {
        match self {
            Variadic::Sum | Variadic::Mean => Binary::Add,
            Variadic::Max => Binary::Max,
            Variadic::Min => Binary::Min,
        }
    }

    pub(crate) fn infer(&self, cx: &InferCtx) -> Result<Vec<TensorType>, InferError> {
        let types = cx.required_inputs()?;
        let first = types.first().ok_or_else(|| cx.mismatch("needs at least one input".into()))?;
        if let Some(t) = types.iter().find(|t| t.dtype != first.dtype) {
            return Err(cx.mismatch(format!("input dtypes differ: {} vs {}", first.dtype, t.dtype)));
        }
        if first.dtype == DType::Bool {
            return Err(cx.bad_dtype(0, first.dtype));
        }
        let shapes: Vec<&[crate::Dim]> = types.iter().map(|t| t.shape.as_slice()).collect();
        Ok(vec![TensorType { dtype: first.dtype, shape: broadcast_all(cx, &shapes)? }])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn erf_matches_known_values() {
        for (x, want) in [
            (0.0, 0.0),
            (0.5, 0.520_499_877_813_046_5),
            (1.0, 0.842_700_792_949_714_9),
            (2.0, 0.995_322_265_018_952_7),
            (3.0, 0.999_977_909_503_001_4),
            (-1.0, -0.842_700_792_949_714_9),
        ] {
            assert!((erf(x) - want).abs() < 1e-12, "erf({x}) = {} want {want}", erf(x));
        }
    }

    #[test]
    fn python_style_mod() {
        assert_eq!(Binary::Mod { fmod: false }.eval_i64(-7, 3), 2);
        assert_eq!(Binary::Mod { fmod: true }.eval_i64(-7, 3), -1);
        assert_eq!(Binary::Mod { fmod: false }.eval_f64(7.0, -3.0), -2.0);
    }

    #[test]
    fn activations() {
        assert_eq!(Unary::Relu.eval_f64(-2.0), 0.0);
        assert_eq!(Unary::LeakyRelu { alpha: 0.5 }.eval_f64(-2.0), -1.0);
        assert_eq!(Unary::HardSigmoid { alpha: 0.2, beta: 0.5 }.eval_f64(10.0), 1.0);
        assert_eq!(Unary::HardSwish.eval_f64(-4.0), 0.0);
        assert!((Unary::Gelu { tanh_approx: false }.eval_f64(1.0) - 0.841_344_746).abs() < 1e-8);
    }
}
