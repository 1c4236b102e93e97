//! Elementwise ops: unary maps (plain ones from a table, parameterized ones each with its
//! attributes), broadcasting binary ops, variadic Sum/Max/Min/Mean, Clip, casts and Where.

use super::Registry;
use crate::onnx::import::node::{Lowered, OpCx};
use crate::onnx::import::ImportError;
use kiln_ir::op::{Binary, Unary, Variadic};
use kiln_ir::{DType, Op};

/// Unary maps without attributes, registered under their ONNX names.
const PLAIN_UNARY: [Unary; 30] = {
    use Unary::*;
    [
        Relu, Sigmoid, Tanh, Erf, Exp, Log, Sqrt, Neg, Abs, Reciprocal, Floor, Ceil, Round, Sign, Sin, Cos, Tan, Asin,
        Acos, Atan, Sinh, Cosh, Asinh, Acosh, Atanh, Softplus, Softsign, HardSwish, Mish, Not,
    ]
};

/// Binary ops without attributes.
const PLAIN_BINARY: [Binary; 16] = {
    use Binary::*;
    [
        Add,
        Sub,
        Mul,
        Div,
        Pow,
        And,
        Or,
        Xor,
        Equal,
        Less,
        LessOrEqual,
        Greater,
        GreaterOrEqual,
        BitwiseAnd,
        BitwiseOr,
        BitwiseXor,
    ]
};

const VARIADIC: [Variadic; 4] = [Variadic::Sum, Variadic::Max, Variadic::Min, Variadic::Mean];

pub(super) fn register(r: &mut Registry) {
    for u in PLAIN_UNARY {
        r.insert(u.onnx_name(), plain_unary);
    }
    for b in PLAIN_BINARY {
        r.insert(b.onnx_name(), plain_binary);
    }
    for v in VARIADIC {
        r.insert(v.onnx_name(), variadic);
    }
    r.insert("LeakyRelu", leaky_relu);
    r.insert("HardSigmoid", hard_sigmoid);
    r.insert("Elu", elu);
    r.insert("Selu", selu);
    r.insert("Celu", celu);
    r.insert("ThresholdedRelu", thresholded_relu);
    r.insert("Gelu", gelu);
    r.insert("Mod", modulo);
    r.insert("BitShift", bit_shift);
    r.insert("Clip", clip);
    r.insert("Cast", cast);
    r.insert("CastLike", cast_like);
    r.insert("Where", where_);
}

fn plain_unary(cx: &mut OpCx) -> Result<Lowered, ImportError> {
    let u = PLAIN_UNARY.into_iter().find(|u| u.onnx_name() == cx.node.op_type).expect("registered from the table");
    Ok(cx.same(Op::Unary(u)))
}

fn plain_binary(cx: &mut OpCx) -> Result<Lowered, ImportError> {
    let b = PLAIN_BINARY.into_iter().find(|b| b.onnx_name() == cx.node.op_type).expect("registered from the table");
    Ok(cx.same(Op::Binary(b)))
}

fn variadic(cx: &mut OpCx) -> Result<Lowered, ImportError> {
    let v = VARIADIC.into_iter().find(|v| v.onnx_name() == cx.node.op_type).expect("registered from the table");
    Ok(cx.same(Op::Variadic(v)))
}

fn unary(cx: &OpCx, u: Unary) -> Result<Lowered, ImportError> {
    Ok(cx.same(Op::Unary(u)))
}

fn leaky_relu(cx: &mut OpCx) -> Result<Lowered, ImportError> {
    unary(cx, Unary::LeakyRelu { alpha: cx.attrs.float_or("alpha", 0.01)? })
}

fn hard_sigmoid(cx: &mut OpCx) -> Result<Lowered, ImportError> {
    unary(cx, Unary::HardSigmoid { alpha: cx.attrs.float_or("alpha", 0.2)?, beta: cx.attrs.float_or("beta", 0.5)? })
}

fn elu(cx: &mut OpCx) -> Result<Lowered, ImportError> {
    unary(cx, Unary::Elu { alpha: cx.attrs.float_or("alpha", 1.0)? })
}

fn selu(cx: &mut OpCx) -> Result<Lowered, ImportError> {
    let alpha = cx.attrs.float_or("alpha", 1.673_263_2)?;
    unary(cx, Unary::Selu { alpha, gamma: cx.attrs.float_or("gamma", 1.050_701)? })
}

fn celu(cx: &mut OpCx) -> Result<Lowered, ImportError> {
    unary(cx, Unary::Celu { alpha: cx.attrs.float_or("alpha", 1.0)? })
}

fn thresholded_relu(cx: &mut OpCx) -> Result<Lowered, ImportError> {
    unary(cx, Unary::ThresholdedRelu { alpha: cx.attrs.float_or("alpha", 1.0)? })
}

fn gelu(cx: &mut OpCx) -> Result<Lowered, ImportError> {
    let tanh_approx = match cx.attrs.string_or("approximate", "none")?.as_str() {
        "none" => false,
        "tanh" => true,
        other => return Err(cx.error(format!("unknown approximate '{other}'"))),
    };
    unary(cx, Unary::Gelu { tanh_approx })
}

fn modulo(cx: &mut OpCx) -> Result<Lowered, ImportError> {
    Ok(cx.same(Op::Binary(Binary::Mod { fmod: cx.attrs.bool_or("fmod", false)? })))
}

fn bit_shift(cx: &mut OpCx) -> Result<Lowered, ImportError> {
    let op = match cx.attrs.string("direction")?.as_deref() {
        Some("LEFT") => Binary::BitShiftLeft,
        Some("RIGHT") => Binary::BitShiftRight,
        Some(other) => return Err(cx.error(format!("unknown direction '{other}'"))),
        None => return Err(cx.attrs.missing("direction")),
    };
    Ok(cx.same(Op::Binary(op)))
}

/// Opset < 11: `min`/`max` attributes; later: optional inputs.
fn clip(cx: &mut OpCx) -> Result<Lowered, ImportError> {
    if cx.opset >= 11 {
        return Ok(cx.same(Op::Clip));
    }
    let x = cx.input(0)?;
    let bound = |cx: &mut OpCx, what: &str| -> Result<Option<_>, ImportError> {
        cx.attrs.float(what)?.map(|v| cx.scalar_like(what, 0, v as f64)).transpose()
    };
    let (min, max) = (bound(cx, "min")?, bound(cx, "max")?);
    Ok(Lowered::new(Op::Clip, vec![Some(x), min, max]))
}

fn cast(cx: &mut OpCx) -> Result<Lowered, ImportError> {
    let code = cx.attrs.int("to")?.ok_or_else(|| cx.attrs.missing("to"))?;
    let to = i32::try_from(code)
        .ok()
        .and_then(DType::from_onnx_code)
        .ok_or_else(|| cx.error(format!("cast to element type {code} is not supported")))?;
    Ok(cx.same(Op::Cast { to }))
}

fn cast_like(cx: &mut OpCx) -> Result<Lowered, ImportError> {
    Ok(cx.same(Op::CastLike))
}

fn where_(cx: &mut OpCx) -> Result<Lowered, ImportError> {
    Ok(cx.same(Op::Where))
}
