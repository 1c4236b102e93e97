//! ONNX ops Kiln expresses as a few IR nodes instead of an op of its own: PRelu, DepthToSpace and
//! SpaceToDepth. Helper nodes are named `<node>__<step>`; the last node keeps the node's name.

use super::Registry;
use crate::onnx::import::node::{Lowered, OpCx};
use crate::onnx::import::ImportError;
use kiln_ir::op::Binary;
use kiln_ir::{Op, Tensor, ValueRef};

pub(super) fn register(r: &mut Registry) {
    r.insert("PRelu", prelu);
    r.insert("DepthToSpace", depth_to_space);
    r.insert("SpaceToDepth", space_to_depth);
}

/// `x < 0 ? x * slope : x`
fn prelu(cx: &mut OpCx) -> Result<Lowered, ImportError> {
    let (x, slope) = (cx.input(0)?, cx.input(1)?);
    let zero = cx.scalar_like("zero", 0, 0.0)?;
    let negative = cx.helper("negative", Op::Binary(Binary::Less), &[x, zero])?;
    let scaled = cx.helper("scaled", Op::Binary(Binary::Mul), &[x, slope])?;
    Ok(Lowered::new(Op::Where, vec![Some(negative), Some(scaled), Some(x)]))
}

/// The known `[C, H, W]` of a rank-4 input and the positive `blocksize`.
fn block_geometry(cx: &OpCx) -> Result<([i64; 3], i64), ImportError> {
    let t = cx.input_type(0)?;
    let dims: Option<Vec<i64>> = t.shape.iter().skip(1).map(|d| d.known().map(|v| v as i64)).collect();
    let chw = dims
        .filter(|_| t.rank() == 4)
        .and_then(|d| <[i64; 3]>::try_from(d).ok())
        .ok_or_else(|| cx.error(format!("needs a rank-4 input with known C, H and W, got {t}")))?;
    let b = cx.attrs.int("blocksize")?.ok_or_else(|| cx.attrs.missing("blocksize"))?;
    if b <= 0 {
        return Err(cx.error(format!("blocksize {b} must be positive")));
    }
    Ok((chw, b))
}

/// Reshape to `inner`, transpose by `perm`, reshape to `outer` (0 keeps the batch dim).
fn shuffle(cx: &mut OpCx, inner: Vec<i64>, perm: Vec<usize>, outer: Vec<i64>) -> Result<Lowered, ImportError> {
    let x = cx.input(0)?;
    let inner = cx.konst("inner_shape", Tensor::vector(inner));
    let split = cx.helper("split", Op::Reshape { allowzero: false }, &[x, inner])?;
    let moved = cx.helper("moved", Op::Transpose { perm: Some(perm) }, &[split])?;
    let outer: ValueRef = cx.konst("shape", Tensor::vector(outer));
    Ok(Lowered::new(Op::Reshape { allowzero: false }, vec![Some(moved), Some(outer)]))
}

/// `a * b`, refusing overflow (dims and blocksize come from the file).
fn mul(cx: &OpCx, a: i64, b: i64) -> Result<i64, ImportError> {
    a.checked_mul(b).ok_or_else(|| cx.error(format!("{a} x {b} overflows")))
}

/// DCR (default) or CRD ordering of the moved channels.
fn depth_to_space(cx: &mut OpCx) -> Result<Lowered, ImportError> {
    let ([c, h, w], b) = block_geometry(cx)?;
    let bb = mul(cx, b, b)?;
    if c == 0 || c % bb != 0 {
        return Err(cx.error(format!("{c} channels do not divide into blocks of {b}x{b}")));
    }
    let c2 = c / bb;
    let (inner, perm) = match cx.attrs.string_or("mode", "DCR")?.as_str() {
        "DCR" => (vec![0, b, b, c2, h, w], vec![0, 3, 4, 1, 5, 2]),
        "CRD" => (vec![0, c2, b, b, h, w], vec![0, 1, 4, 2, 5, 3]),
        other => return Err(cx.error(format!("unknown mode '{other}'"))),
    };
    let outer = vec![0, c2, mul(cx, h, b)?, mul(cx, w, b)?];
    shuffle(cx, inner, perm, outer)
}

/// DCR (default) or, from opset 28, CRD ordering of the gathered channels.
fn space_to_depth(cx: &mut OpCx) -> Result<Lowered, ImportError> {
    let ([c, h, w], b) = block_geometry(cx)?;
    if c == 0 || h == 0 || w == 0 || h % b != 0 || w % b != 0 {
        return Err(cx.error(format!("input {c}x{h}x{w} does not divide into blocks of {b}")));
    }
    let perm = match cx.attrs.string_or("mode", "DCR")?.as_str() {
        "DCR" => vec![0, 3, 5, 1, 2, 4],
        "CRD" => vec![0, 1, 3, 5, 2, 4],
        other => return Err(cx.error(format!("unknown mode '{other}'"))),
    };
    let outer = vec![0, mul(cx, c, mul(cx, b, b)?)?, h / b, w / b];
    shuffle(cx, vec![0, c, h / b, b, w / b, b], perm, outer)
}
