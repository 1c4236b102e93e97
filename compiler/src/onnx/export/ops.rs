//! The export registry: each [`Op`] → ONNX op type, attributes and inputs at the target opset.
//! Most ops map one-to-one ([`plain`]); an IR form with no opset-21 spelling is lowered here to
//! an equivalent sequence (the legacy softmax family); control flow writes its bodies as graph
//! attributes, its captures becoming outer-scope references again.

use super::attr::{dims, flag, float, floats, graph, int, ints, string, strings, tensor};
use super::graph::NodeCx;
use super::tensor::tensor_proto;
use super::ExportError;
use kiln_ir::op::{
    normalize_axis, AutoPad, Binary, Cell, Pool, PoolKind, Recurrent, Resize, ResizeCoord, ResizeMode, ResizeNearest,
    Unary, Window,
};
use kiln_ir::{Graph, Op};
use onnx_protobuf::AttributeProto;

/// Writes the ONNX node(s) for one IR node.
pub(super) fn export<'g>(cx: &mut NodeCx<'_, 'g>) -> Result<(), ExportError> {
    let op = cx.op;
    match op {
        Op::Input | Op::Constant(_) => Err(cx.error("inputs and constants are written by the graph walk")),
        Op::Unary(u) => plain(cx, unary_attrs(u)),
        Op::Binary(b) => plain(cx, binary_attrs(b)),
        Op::Variadic(_)
        | Op::Clip
        | Op::CastLike
        | Op::Where
        | Op::MatMul
        | Op::Slice
        | Op::Squeeze
        | Op::Unsqueeze
        | Op::Expand
        | Op::Tile
        | Op::Size
        | Op::Range
        | Op::Dropout
        | Op::Identity
        | Op::NonZero => plain(cx, vec![]),
        Op::CumSum { exclusive, reverse } | Op::CumProd { exclusive, reverse } => {
            plain(cx, vec![flag("exclusive", *exclusive), flag("reverse", *reverse)])
        }
        Op::TopK { axis, largest, sorted } => {
            plain(cx, vec![int("axis", *axis), flag("largest", *largest), flag("sorted", *sorted)])
        }
        Op::ScatterElements { axis, reduction } => {
            plain(cx, vec![int("axis", *axis), string("reduction", reduction.onnx_name())])
        }
        Op::Compress { axis } => plain(cx, axis.iter().map(|&a| int("axis", a)).collect()),
        Op::ScatterNd { reduction } => plain(cx, vec![string("reduction", reduction.onnx_name())]),
        Op::Cast { to } => plain(cx, vec![int("to", to.onnx_code() as i64)]),
        Op::Conv(c) => plain(cx, conv_attrs(&c.window, c.group)),
        Op::ConvTranspose(c) => {
            let mut a = conv_attrs(&c.window, c.group);
            if !c.output_padding.is_empty() {
                a.push(dims("output_padding", &c.output_padding));
            }
            a.extend(c.output_shape.as_deref().map(|s| dims("output_shape", s)));
            plain(cx, a)
        }
        Op::Gemm(g) => plain(
            cx,
            vec![float("alpha", g.alpha), float("beta", g.beta), flag("transA", g.trans_a), flag("transB", g.trans_b)],
        ),
        Op::BatchNorm { epsilon } | Op::InstanceNorm { epsilon } => plain(cx, vec![float("epsilon", *epsilon)]),
        Op::LayerNorm { axis, epsilon } => plain(cx, vec![int("axis", *axis), float("epsilon", *epsilon)]),
        Op::Lrn(l) => plain(
            cx,
            vec![int("size", l.size as i64), float("alpha", l.alpha), float("beta", l.beta), float("bias", l.bias)],
        ),
        Op::Pool(p) => {
            let a = pool_attrs(p).map_err(|m| cx.error(m))?;
            plain(cx, a)
        }
        Op::GlobalPool(kind) => {
            let a = global_pool_attrs(kind).map_err(|m| cx.error(m))?;
            plain(cx, a)
        }
        Op::Softmax { axis, legacy } | Op::LogSoftmax { axis, legacy } | Op::Hardmax { axis, legacy } => {
            normalize(cx, *axis, *legacy)
        }
        Op::Reduce { keepdims, noop_with_empty_axes, .. } => {
            plain(cx, vec![flag("keepdims", *keepdims), flag("noop_with_empty_axes", *noop_with_empty_axes)])
        }
        Op::ArgMax { axis, keepdims, select_last_index } | Op::ArgMin { axis, keepdims, select_last_index } => plain(
            cx,
            vec![int("axis", *axis), flag("keepdims", *keepdims), flag("select_last_index", *select_last_index)],
        ),
        Op::Concat { axis } | Op::Gather { axis } | Op::GatherElements { axis } | Op::Flatten { axis } => {
            plain(cx, vec![int("axis", *axis)])
        }
        Op::Split { axis } => {
            let mut a = vec![int("axis", *axis)];
            if cx.inputs.get(1).is_none_or(String::is_empty) {
                // Opset 18+: without sizes, the output count is an attribute.
                a.push(int("num_outputs", cx.outputs.len() as i64));
            }
            plain(cx, a)
        }
        Op::GatherNd { batch_dims } => plain(cx, vec![int("batch_dims", *batch_dims)]),
        Op::Reshape { allowzero } => plain(cx, vec![flag("allowzero", *allowzero)]),
        Op::Transpose { perm } => plain(cx, perm.iter().map(|p| dims("perm", p)).collect()),
        Op::Shape { start, end } => {
            let mut a = vec![int("start", *start)];
            a.extend(end.map(|e| int("end", e)));
            plain(cx, a)
        }
        Op::ConstantOfShape { value } => {
            let one = value.reshape(&[1]).map_err(|_| cx.error(format!("value {value:?} is not one element")))?;
            plain(cx, vec![tensor("value", tensor_proto("", &one))])
        }
        Op::Pad { mode } => plain(cx, vec![string("mode", mode.onnx_name())]),
        Op::Resize(r) => plain(cx, resize_attrs(r)),
        Op::If { then_branch, else_branch } => if_node(cx, then_branch, else_branch),
        Op::Loop(l) => {
            let body = cx.subgraph(&l.body, l.num_captures)?;
            let inputs = cx.inputs_without_captures(l.num_captures);
            cx.emit_main("Loop", inputs, vec![graph("body", body)]);
            Ok(())
        }
        Op::Scan(s) => {
            let body = cx.subgraph(&s.body, s.num_captures)?;
            let mut a = vec![graph("body", body), int("num_scan_inputs", s.num_scan_inputs as i64)];
            let lists = [
                ("scan_input_axes", &s.scan_input_axes),
                ("scan_input_directions", &s.scan_input_directions),
                ("scan_output_axes", &s.scan_output_axes),
                ("scan_output_directions", &s.scan_output_directions),
            ];
            a.extend(lists.into_iter().filter(|(_, v)| !v.is_empty()).map(|(name, v)| ints(name, v.iter().copied())));
            let inputs = cx.inputs_without_captures(s.num_captures);
            cx.emit_main("Scan", inputs, a);
            Ok(())
        }
        Op::Recurrent(r) => plain(cx, recurrent_attrs(r)),
    }
}

/// LSTM/GRU/RNN attributes; activation parameters are written for every function that has them,
/// in activation order, as the importer consumes them.
fn recurrent_attrs(r: &Recurrent) -> Vec<AttributeProto> {
    let mut a = vec![
        int("hidden_size", r.hidden_size as i64),
        string("direction", r.direction.onnx_name()),
        int("layout", r.batch_major as i64),
        strings("activations", r.activations.iter().map(|f| f.onnx_name())),
    ];
    let params: Vec<_> = r.activations.iter().map(|f| f.params()).collect();
    let alphas: Vec<f32> = params.iter().filter_map(|p| p.0).collect();
    let betas: Vec<f32> = params.iter().filter_map(|p| p.1).collect();
    if !alphas.is_empty() {
        a.push(floats("activation_alpha", alphas));
    }
    if !betas.is_empty() {
        a.push(floats("activation_beta", betas));
    }
    a.extend(r.clip.map(|c| float("clip", c)));
    match r.cell {
        Cell::Lstm { input_forget } => a.push(flag("input_forget", input_forget)),
        Cell::Gru { linear_before_reset } => a.push(flag("linear_before_reset", linear_before_reset)),
        Cell::Rnn => {}
    }
    a
}

/// One ONNX node of the op's own type with the node's inputs as they are.
fn plain(cx: &mut NodeCx, attrs: Vec<AttributeProto>) -> Result<(), ExportError> {
    cx.emit_main(cx.op.onnx_name(), cx.inputs.clone(), attrs);
    Ok(())
}

fn unary_attrs(u: &Unary) -> Vec<AttributeProto> {
    match *u {
        Unary::LeakyRelu { alpha }
        | Unary::Elu { alpha }
        | Unary::Celu { alpha }
        | Unary::ThresholdedRelu { alpha } => {
            vec![float("alpha", alpha)]
        }
        Unary::HardSigmoid { alpha, beta } => vec![float("alpha", alpha), float("beta", beta)],
        Unary::Selu { alpha, gamma } => vec![float("alpha", alpha), float("gamma", gamma)],
        Unary::Gelu { tanh_approx } => vec![string("approximate", if tanh_approx { "tanh" } else { "none" })],
        _ => vec![],
    }
}

fn binary_attrs(b: &Binary) -> Vec<AttributeProto> {
    match *b {
        Binary::Mod { fmod } => vec![flag("fmod", fmod)],
        Binary::BitShiftLeft => vec![string("direction", "LEFT")],
        Binary::BitShiftRight => vec![string("direction", "RIGHT")],
        _ => vec![],
    }
}

/// kernel_shape, strides, dilations, and pads or auto_pad (never both).
fn window_attrs(w: &Window) -> Vec<AttributeProto> {
    let mut a: Vec<AttributeProto> = w.kernel_shape.as_deref().map(|k| dims("kernel_shape", k)).into_iter().collect();
    let lists = [("strides", &w.strides), ("dilations", &w.dilations)];
    a.extend(lists.into_iter().filter(|(_, v)| !v.is_empty()).map(|(name, v)| dims(name, v)));
    match w.auto_pad {
        AutoPad::NotSet if w.pads.is_empty() => {}
        AutoPad::NotSet => a.push(dims("pads", &w.pads)),
        other => a.push(string("auto_pad", other.onnx_name())),
    }
    a
}

fn conv_attrs(w: &Window, group: usize) -> Vec<AttributeProto> {
    let mut a = window_attrs(w);
    a.push(int("group", group.max(1) as i64));
    a
}

fn pool_attrs(p: &Pool) -> Result<Vec<AttributeProto>, String> {
    let mut a = window_attrs(&p.window);
    a.push(flag("ceil_mode", p.ceil_mode));
    match p.kind {
        PoolKind::Max => a.push(int("storage_order", p.storage_order)),
        PoolKind::Average { count_include_pad } => a.push(flag("count_include_pad", count_include_pad)),
        PoolKind::Lp { p } => a.push(lp_exponent(p)?),
    }
    Ok(a)
}

/// Global pools carry an attribute only for Lp (the exponent).
fn global_pool_attrs(kind: &PoolKind) -> Result<Vec<AttributeProto>, String> {
    match *kind {
        PoolKind::Max | PoolKind::Average { .. } => Ok(vec![]),
        PoolKind::Lp { p } => Ok(vec![lp_exponent(p)?]),
    }
}

/// ONNX's LpPool exponent is an integer attribute.
fn lp_exponent(p: f32) -> Result<AttributeProto, String> {
    if p.fract() == 0.0 && p >= 1.0 {
        Ok(int("p", p as i64))
    } else {
        Err(format!("ONNX LpPool takes an integer exponent, not p = {p}"))
    }
}

fn resize_attrs(r: &Resize) -> Vec<AttributeProto> {
    let mode = match r.mode {
        ResizeMode::Nearest => "nearest",
        ResizeMode::Linear => "linear",
        ResizeMode::Cubic => "cubic",
    };
    let coord = match r.coord {
        ResizeCoord::HalfPixel => "half_pixel",
        ResizeCoord::HalfPixelSymmetric => "half_pixel_symmetric",
        ResizeCoord::PytorchHalfPixel => "pytorch_half_pixel",
        ResizeCoord::AlignCorners => "align_corners",
        ResizeCoord::Asymmetric => "asymmetric",
        ResizeCoord::TfCropAndResize => "tf_crop_and_resize",
    };
    let nearest = match r.nearest {
        ResizeNearest::RoundPreferFloor => "round_prefer_floor",
        ResizeNearest::RoundPreferCeil => "round_prefer_ceil",
        ResizeNearest::Floor => "floor",
        ResizeNearest::Ceil => "ceil",
    };
    let mut a = vec![
        string("mode", mode),
        string("coordinate_transformation_mode", coord),
        string("nearest_mode", nearest),
        float("cubic_coeff_a", r.cubic_coeff_a),
        flag("exclude_outside", r.exclude_outside),
        float("extrapolation_value", r.extrapolation_value),
        string("keep_aspect_ratio_policy", &r.keep_aspect_ratio_policy),
        flag("antialias", r.antialias),
    ];
    a.extend(r.axes.as_deref().map(|axes| ints("axes", axes.iter().copied())));
    a
}

/// Softmax / LogSoftmax / Hardmax. The opset-13+ form exports as is; the legacy form (flatten
/// to 2-D at `axis`, normalize the tail) is the new form on the last axis when `axis` is the
/// last one, and otherwise `Reshape(op(Flatten(x, axis), axis=1), Shape(x))`.
fn normalize(cx: &mut NodeCx, axis: i64, legacy: bool) -> Result<(), ExportError> {
    let op_type = cx.op.onnx_name();
    let rank = cx.input_types.first().and_then(Option::as_ref).map(|t| t.rank()).ok_or_else(|| cx.error("no input"))?;
    let a = normalize_axis(axis, rank).ok_or_else(|| cx.error(format!("axis {axis} out of range for rank {rank}")))?;
    if !legacy {
        return plain(cx, vec![int("axis", axis)]);
    }
    if a + 1 == rank {
        return plain(cx, vec![int("axis", -1)]);
    }
    let x = cx.inputs[0].clone();
    let shape = cx.emit_helper("Shape", "shape", vec![x.clone()], vec![]);
    let flat = cx.emit_helper("Flatten", "flat", vec![x], vec![int("axis", a as i64)]);
    let normalized = cx.emit_helper(op_type, "2d", vec![flat], vec![int("axis", 1)]);
    cx.emit_main("Reshape", vec![normalized, shape], vec![]);
    Ok(())
}

/// If: both branches take every capture (the node's inputs after `cond`).
fn if_node<'g>(cx: &mut NodeCx<'_, 'g>, then_branch: &'g Graph, else_branch: &'g Graph) -> Result<(), ExportError> {
    let captures = cx.inputs.len().checked_sub(1).ok_or_else(|| cx.error("If needs a condition input"))?;
    let then_g = cx.subgraph(then_branch, captures)?;
    let else_g = cx.subgraph(else_branch, captures)?;
    let inputs = cx.inputs_without_captures(captures);
    cx.emit_main("If", inputs, vec![graph("then_branch", then_g), graph("else_branch", else_g)]);
    Ok(())
}
