//! Shape, movement and constant ops: reductions, concat/split/slice/gather, the reshape family,
//! transpose, (un)squeeze, expand/tile, shape queries, Constant and ConstantOfShape, range, pad,
//! Resize (and Upsample, which maps to it), Dropout and Identity; CumSum, CumProd, Compress, TopK,
//! the scatter family and NonZero. Attributes that later opsets turned into inputs become constant
//! inputs named `<node>__<attribute>`.

use super::Registry;
use crate::onnx::import::node::{Lowered, OpCx};
use crate::onnx::import::{tensor, ImportError};
use kiln_ir::op::{PadMode, ReduceOp, Resize, ResizeCoord, ResizeMode, ResizeNearest, ScatterReduction};
use kiln_ir::{Op, Tensor};

pub(super) fn register(r: &mut Registry) {
    for op in ReduceOp::ALL {
        r.insert(op.onnx_name(), reduce);
    }
    r.insert("ArgMax", arg_max);
    r.insert("ArgMin", arg_min);
    r.insert("Concat", concat);
    r.insert("Split", split);
    r.insert("Slice", slice);
    r.insert("Gather", gather);
    r.insert("GatherElements", gather_elements);
    r.insert("GatherND", gather_nd);
    r.insert("Reshape", reshape);
    r.insert("Flatten", flatten);
    r.insert("Transpose", transpose);
    r.insert("Squeeze", squeeze);
    r.insert("Unsqueeze", unsqueeze);
    r.insert("Expand", expand);
    r.insert("Tile", tile);
    r.insert("Shape", shape);
    r.insert("Size", size);
    r.insert("Constant", constant);
    r.insert("ConstantOfShape", constant_of_shape);
    r.insert("Range", range);
    r.insert("Pad", pad);
    r.insert("Resize", resize);
    r.insert("Upsample", upsample);
    r.insert("Dropout", dropout);
    r.insert("Identity", identity);
    r.insert("CumSum", cum_sum);
    r.insert("CumProd", cum_prod);
    r.insert("Compress", compress);
    r.insert("TopK", top_k);
    r.insert("ScatterElements", scatter_elements);
    r.insert("Scatter", scatter_elements);
    r.insert("ScatterND", scatter_nd);
    r.insert("NonZero", non_zero);
}

/// Before opset `since`, attribute `attr` held what is now input `slot`: moves it there as a
/// constant i64 input. Returns whether the input is now present.
fn ints_to_input(cx: &mut OpCx, since: i64, attr: &str, slot: usize) -> Result<bool, ImportError> {
    if cx.opset < since {
        if let Some(v) = cx.attrs.ints(attr)? {
            let c = cx.konst(attr, Tensor::vector(v));
            cx.set_input(slot, c);
        }
    }
    Ok(cx.opt(slot).is_some())
}

/// `axes` became an input in opset 13 for ReduceSum, in 18 for the others.
fn reduce(cx: &mut OpCx) -> Result<Lowered, ImportError> {
    let op = ReduceOp::from_onnx(&cx.node.op_type).expect("registered from ReduceOp::ALL");
    ints_to_input(cx, if op == ReduceOp::Sum { 13 } else { 18 }, "axes", 1)?;
    let keepdims = cx.attrs.bool_or("keepdims", true)?;
    let noop_with_empty_axes = cx.attrs.bool_or("noop_with_empty_axes", false)?;
    Ok(cx.same(Op::Reduce { op, keepdims, noop_with_empty_axes }))
}

fn arg_attrs(cx: &OpCx) -> Result<(i64, bool, bool), ImportError> {
    let a = &cx.attrs;
    Ok((a.int_or("axis", 0)?, a.bool_or("keepdims", true)?, a.bool_or("select_last_index", false)?))
}

fn arg_max(cx: &mut OpCx) -> Result<Lowered, ImportError> {
    let (axis, keepdims, select_last_index) = arg_attrs(cx)?;
    Ok(cx.same(Op::ArgMax { axis, keepdims, select_last_index }))
}

fn arg_min(cx: &mut OpCx) -> Result<Lowered, ImportError> {
    let (axis, keepdims, select_last_index) = arg_attrs(cx)?;
    Ok(cx.same(Op::ArgMin { axis, keepdims, select_last_index }))
}

fn concat(cx: &mut OpCx) -> Result<Lowered, ImportError> {
    let axis = cx.attrs.int("axis")?.ok_or_else(|| cx.attrs.missing("axis"))?;
    Ok(cx.same(Op::Concat { axis }))
}

/// `split` sizes became an input in opset 13; opset 18's `num_outputs` is the output count.
fn split(cx: &mut OpCx) -> Result<Lowered, ImportError> {
    ints_to_input(cx, 13, "split", 1)?;
    Ok(cx.same(Op::Split { axis: cx.attrs.int_or("axis", 0)? }))
}

/// Before opset 10 starts/ends/axes were attributes.
fn slice(cx: &mut OpCx) -> Result<Lowered, ImportError> {
    for (slot, attr) in [(1, "starts"), (2, "ends"), (3, "axes")] {
        ints_to_input(cx, 10, attr, slot)?;
    }
    Ok(cx.same(Op::Slice))
}

fn gather(cx: &mut OpCx) -> Result<Lowered, ImportError> {
    Ok(cx.same(Op::Gather { axis: cx.attrs.int_or("axis", 0)? }))
}

fn gather_elements(cx: &mut OpCx) -> Result<Lowered, ImportError> {
    Ok(cx.same(Op::GatherElements { axis: cx.attrs.int_or("axis", 0)? }))
}

fn gather_nd(cx: &mut OpCx) -> Result<Lowered, ImportError> {
    Ok(cx.same(Op::GatherNd { batch_dims: cx.attrs.int_or("batch_dims", 0)? }))
}

fn reshape(cx: &mut OpCx) -> Result<Lowered, ImportError> {
    Ok(cx.same(Op::Reshape { allowzero: cx.attrs.bool_or("allowzero", false)? }))
}

fn flatten(cx: &mut OpCx) -> Result<Lowered, ImportError> {
    Ok(cx.same(Op::Flatten { axis: cx.attrs.int_or("axis", 1)? }))
}

fn transpose(cx: &mut OpCx) -> Result<Lowered, ImportError> {
    Ok(cx.same(Op::Transpose { perm: cx.attrs.usizes("perm")? }))
}

fn squeeze(cx: &mut OpCx) -> Result<Lowered, ImportError> {
    ints_to_input(cx, 13, "axes", 1)?;
    Ok(cx.same(Op::Squeeze))
}

fn unsqueeze(cx: &mut OpCx) -> Result<Lowered, ImportError> {
    if !ints_to_input(cx, 13, "axes", 1)? {
        return Err(cx.error("needs axes (an attribute before opset 13, an input since)"));
    }
    Ok(cx.same(Op::Unsqueeze))
}

fn expand(cx: &mut OpCx) -> Result<Lowered, ImportError> {
    Ok(cx.same(Op::Expand))
}

fn tile(cx: &mut OpCx) -> Result<Lowered, ImportError> {
    Ok(cx.same(Op::Tile))
}

fn shape(cx: &mut OpCx) -> Result<Lowered, ImportError> {
    Ok(cx.same(Op::Shape { start: cx.attrs.int_or("start", 0)?, end: cx.attrs.int("end")? }))
}

fn size(cx: &mut OpCx) -> Result<Lowered, ImportError> {
    Ok(cx.same(Op::Size))
}

/// `value` (a tensor) or one of `value_float(s)` / `value_int(s)`.
fn constant(cx: &mut OpCx) -> Result<Lowered, ImportError> {
    let a = &cx.attrs;
    let t = if let Some(t) = a.tensor("value")? {
        tensor::to_tensor(t, cx.b.ctx.base_dir)?
    } else if let Some(v) = a.float("value_float")? {
        Tensor::scalar(v)
    } else if let Some(v) = a.floats("value_floats")? {
        Tensor::vector(v)
    } else if let Some(v) = a.int("value_int")? {
        Tensor::scalar(v)
    } else if let Some(v) = a.ints("value_ints")? {
        Tensor::vector(v)
    } else if a.has("sparse_value") || a.has("value_string") || a.has("value_strings") {
        return Err(cx.error("sparse and string constants are not supported"));
    } else {
        return Err(cx.error("has no value attribute"));
    };
    Ok(Lowered::new(Op::Constant(t), vec![]))
}

fn constant_of_shape(cx: &mut OpCx) -> Result<Lowered, ImportError> {
    let value = match cx.attrs.tensor("value")? {
        Some(t) => tensor::to_tensor(t, cx.b.ctx.base_dir)?,
        None => Tensor::vector(vec![0f32]),
    };
    if value.len() != 1 {
        return Err(cx.error(format!("value must hold one element, not {}", value.len())));
    }
    Ok(cx.same(Op::ConstantOfShape { value }))
}

fn range(cx: &mut OpCx) -> Result<Lowered, ImportError> {
    Ok(cx.same(Op::Range))
}

const PAD_MODES: [PadMode; 4] = [PadMode::Constant, PadMode::Reflect, PadMode::Edge, PadMode::Wrap];

/// Before opset 11 `pads` and `value` were attributes.
fn pad(cx: &mut OpCx) -> Result<Lowered, ImportError> {
    let name = cx.attrs.string_or("mode", "constant")?;
    let mode = PAD_MODES
        .into_iter()
        .find(|m| m.onnx_name() == name)
        .ok_or_else(|| cx.error(format!("unknown mode '{name}'")))?;
    if !ints_to_input(cx, 11, "pads", 1)? {
        return Err(cx.attrs.missing("pads"));
    }
    if cx.opset < 11 {
        if let Some(v) = cx.attrs.float("value")? {
            let c = cx.scalar_like("value", 0, v as f64)?;
            cx.set_input(2, c);
        }
    }
    Ok(cx.same(Op::Pad { mode }))
}

/// Finds `value` in a table of ONNX spellings.
fn parse<T: Copy>(cx: &OpCx, attr: &str, value: &str, table: &[(&str, T)]) -> Result<T, ImportError> {
    table
        .iter()
        .find(|(n, _)| *n == value)
        .map(|&(_, v)| v)
        .ok_or_else(|| cx.error(format!("{attr} '{value}' is not supported")))
}

const RESIZE_MODES: [(&str, ResizeMode); 4] = [
    ("nearest", ResizeMode::Nearest),
    ("linear", ResizeMode::Linear),
    ("bilinear", ResizeMode::Linear),
    ("cubic", ResizeMode::Cubic),
];

const RESIZE_COORDS: [(&str, ResizeCoord); 6] = [
    ("half_pixel", ResizeCoord::HalfPixel),
    ("half_pixel_symmetric", ResizeCoord::HalfPixelSymmetric),
    ("pytorch_half_pixel", ResizeCoord::PytorchHalfPixel),
    ("align_corners", ResizeCoord::AlignCorners),
    ("asymmetric", ResizeCoord::Asymmetric),
    ("tf_crop_and_resize", ResizeCoord::TfCropAndResize),
];

const RESIZE_NEAREST: [(&str, ResizeNearest); 4] = [
    ("round_prefer_floor", ResizeNearest::RoundPreferFloor),
    ("round_prefer_ceil", ResizeNearest::RoundPreferCeil),
    ("floor", ResizeNearest::Floor),
    ("ceil", ResizeNearest::Ceil),
];

/// Opset 10 (and Upsample): inputs x, scales; asymmetric coordinates, nearest rounds down.
fn legacy_resize(cx: &OpCx) -> Result<Resize, ImportError> {
    let mode = parse(cx, "mode", &cx.attrs.string_or("mode", "nearest")?, &RESIZE_MODES)?;
    Ok(Resize { mode, coord: ResizeCoord::Asymmetric, nearest: ResizeNearest::Floor, ..Resize::default() })
}

fn resize(cx: &mut OpCx) -> Result<Lowered, ImportError> {
    if cx.opset < 11 {
        let (x, scales) = (cx.input(0)?, cx.input(1)?);
        return Ok(Lowered::new(Op::Resize(legacy_resize(cx)?), vec![Some(x), None, Some(scales)]));
    }
    let a = &cx.attrs;
    let r = Resize {
        mode: parse(cx, "mode", &a.string_or("mode", "nearest")?, &RESIZE_MODES)?,
        coord: parse(
            cx,
            "coordinate_transformation_mode",
            &a.string_or("coordinate_transformation_mode", "half_pixel")?,
            &RESIZE_COORDS,
        )?,
        nearest: parse(cx, "nearest_mode", &a.string_or("nearest_mode", "round_prefer_floor")?, &RESIZE_NEAREST)?,
        cubic_coeff_a: a.float_or("cubic_coeff_a", -0.75)?,
        exclude_outside: a.bool_or("exclude_outside", false)?,
        extrapolation_value: a.float_or("extrapolation_value", 0.0)?,
        axes: a.ints("axes")?,
        keep_aspect_ratio_policy: a.string_or("keep_aspect_ratio_policy", "stretch")?,
        antialias: a.bool_or("antialias", false)?,
    };
    Ok(cx.same(Op::Resize(r)))
}

/// Upsample is Resize with asymmetric coordinates; `scales` was an attribute before opset 9.
fn upsample(cx: &mut OpCx) -> Result<Lowered, ImportError> {
    let x = cx.input(0)?;
    let scales = match cx.opset {
        ..=8 => {
            let s = cx.attrs.floats("scales")?.ok_or_else(|| cx.attrs.missing("scales"))?;
            cx.konst("scales", Tensor::vector(s))
        }
        _ => cx.input(1)?,
    };
    Ok(Lowered::new(Op::Resize(legacy_resize(cx)?), vec![Some(x), None, Some(scales)]))
}

/// `ratio` became an input in opset 12; at inference Dropout is the identity either way.
fn dropout(cx: &mut OpCx) -> Result<Lowered, ImportError> {
    if cx.opset < 12 {
        if let Some(r) = cx.attrs.float("ratio")? {
            let c = cx.konst("ratio", Tensor::scalar(r));
            cx.set_input(1, c);
        }
    }
    Ok(cx.same(Op::Dropout))
}

fn identity(cx: &mut OpCx) -> Result<Lowered, ImportError> {
    Ok(cx.same(Op::Identity))
}

fn cum_sum(cx: &mut OpCx) -> Result<Lowered, ImportError> {
    let (exclusive, reverse) = (cx.attrs.bool_or("exclusive", false)?, cx.attrs.bool_or("reverse", false)?);
    Ok(cx.same(Op::CumSum { exclusive, reverse }))
}

fn cum_prod(cx: &mut OpCx) -> Result<Lowered, ImportError> {
    let (exclusive, reverse) = (cx.attrs.bool_or("exclusive", false)?, cx.attrs.bool_or("reverse", false)?);
    Ok(cx.same(Op::CumProd { exclusive, reverse }))
}

/// Negative axes are accepted from opset 11; the IR normalizes either way.
fn compress(cx: &mut OpCx) -> Result<Lowered, ImportError> {
    Ok(cx.same(Op::Compress { axis: cx.attrs.int("axis")? }))
}

/// `k` became an input in opset 10; `largest` and `sorted` arrived in 11 (before: largest, sorted).
fn top_k(cx: &mut OpCx) -> Result<Lowered, ImportError> {
    if cx.opset < 10 {
        let k = cx.attrs.int("k")?.ok_or_else(|| cx.attrs.missing("k"))?;
        let c = cx.konst("k", Tensor::vector(vec![k]));
        cx.set_input(1, c);
    }
    let a = &cx.attrs;
    let op = Op::TopK {
        axis: a.int_or("axis", -1)?,
        largest: a.bool_or("largest", true)?,
        sorted: a.bool_or("sorted", true)?,
    };
    Ok(cx.same(op))
}

/// `reduction`: add/mul since opset 16, max/min since 18. Legacy Scatter (9-10) never reduces.
fn scatter_reduction(cx: &OpCx) -> Result<ScatterReduction, ImportError> {
    let name = cx.attrs.string_or("reduction", "none")?;
    let since = match name.as_str() {
        "add" | "mul" => 16,
        "max" | "min" => 18,
        _ => 0,
    };
    match ScatterReduction::from_onnx(&name) {
        Some(r) if cx.opset >= since => Ok(r),
        _ => Err(cx.error(format!("reduction '{name}' is not supported at opset {}", cx.opset))),
    }
}

fn scatter_elements(cx: &mut OpCx) -> Result<Lowered, ImportError> {
    let reduction = scatter_reduction(cx)?;
    Ok(cx.same(Op::ScatterElements { axis: cx.attrs.int_or("axis", 0)?, reduction }))
}

fn scatter_nd(cx: &mut OpCx) -> Result<Lowered, ImportError> {
    let reduction = scatter_reduction(cx)?;
    Ok(cx.same(Op::ScatterNd { reduction }))
}

fn non_zero(cx: &mut OpCx) -> Result<Lowered, ImportError> {
    Ok(cx.same(Op::NonZero))
}
