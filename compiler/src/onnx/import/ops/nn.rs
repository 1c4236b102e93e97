//! Neural-network ops: convolutions, Gemm/MatMul, normalizations, LRN, pooling and the softmax
//! family. Window attributes (kernel, strides, pads, dilations, auto_pad) are read in one place.

use super::Registry;
use crate::onnx::import::node::{Lowered, OpCx};
use crate::onnx::import::ImportError;
use kiln_ir::op::{AutoPad, Conv, ConvTranspose, Gemm, Lrn, Pool, PoolKind, Window};
use kiln_ir::Op;

pub(super) fn register(r: &mut Registry) {
    r.insert("Conv", conv);
    r.insert("ConvTranspose", conv_transpose);
    r.insert("Gemm", gemm);
    r.insert("MatMul", matmul);
    r.insert("BatchNormalization", batch_norm);
    r.insert("InstanceNormalization", instance_norm);
    r.insert("LayerNormalization", layer_norm);
    r.insert("LRN", lrn);
    r.insert("MaxPool", max_pool);
    r.insert("AveragePool", average_pool);
    r.insert("LpPool", lp_pool);
    r.insert("GlobalAveragePool", global_average_pool);
    r.insert("GlobalMaxPool", global_max_pool);
    r.insert("GlobalLpPool", global_lp_pool);
    r.insert("Softmax", softmax);
    r.insert("LogSoftmax", log_softmax);
    r.insert("Hardmax", hardmax);
}

/// The window attributes shared by convolutions and pools.
fn window(cx: &OpCx) -> Result<Window, ImportError> {
    let a = &cx.attrs;
    let auto_pad = a.string_or("auto_pad", "NOTSET")?;
    let kernel_shape = a.usizes("kernel_shape")?;
    if let Some(k) = kernel_shape.as_ref().filter(|k| k.contains(&0)) {
        return Err(cx.error(format!("kernel_shape {k:?} has an empty extent")));
    }
    Ok(Window {
        kernel_shape,
        strides: a.usizes("strides")?.unwrap_or_default(),
        pads: a.usizes("pads")?.unwrap_or_default(),
        dilations: a.usizes("dilations")?.unwrap_or_default(),
        auto_pad: AutoPad::from_onnx(&auto_pad).ok_or_else(|| cx.error(format!("unknown auto_pad '{auto_pad}'")))?,
    })
}

fn conv(cx: &mut OpCx) -> Result<Lowered, ImportError> {
    let op = Conv { window: window(cx)?, group: cx.attrs.usize_or("group", 1)? };
    Ok(cx.same(Op::Conv(op)))
}

fn conv_transpose(cx: &mut OpCx) -> Result<Lowered, ImportError> {
    let op = ConvTranspose {
        window: window(cx)?,
        group: cx.attrs.usize_or("group", 1)?,
        output_padding: cx.attrs.usizes("output_padding")?.unwrap_or_default(),
        output_shape: cx.attrs.usizes("output_shape")?,
    };
    Ok(cx.same(Op::ConvTranspose(op)))
}

fn gemm(cx: &mut OpCx) -> Result<Lowered, ImportError> {
    let a = &cx.attrs;
    let op = Gemm {
        alpha: a.float_or("alpha", 1.0)?,
        beta: a.float_or("beta", 1.0)?,
        trans_a: a.bool_or("transA", false)?,
        trans_b: a.bool_or("transB", false)?,
    };
    Ok(cx.same(Op::Gemm(op)))
}

fn matmul(cx: &mut OpCx) -> Result<Lowered, ImportError> {
    Ok(cx.same(Op::MatMul))
}

/// Inference form only. Opset 7 has `spatial` (only 1 is supported); opsets 7/9 declare the
/// training statistics as extra outputs and opset 14+ has `training_mode`: using either is refused.
fn batch_norm(cx: &mut OpCx) -> Result<Lowered, ImportError> {
    if cx.opset < 9 && !cx.attrs.bool_or("spatial", true)? {
        return Err(cx.error("spatial=0 (per-element statistics) is not supported"));
    }
    if cx.attrs.bool_or("training_mode", false)? {
        return Err(cx.error("training_mode=1 is not supported; Kiln runs inference only"));
    }
    let keep = cx.only_outputs(1, "Kiln computes batch normalization in inference mode only")?;
    let op = Op::BatchNorm { epsilon: cx.attrs.float_or("epsilon", 1e-5)? };
    Ok(cx.same(op).outputs(keep))
}

fn instance_norm(cx: &mut OpCx) -> Result<Lowered, ImportError> {
    Ok(cx.same(Op::InstanceNorm { epsilon: cx.attrs.float_or("epsilon", 1e-5)? }))
}

/// `Y` is the IR's LayerNorm; the optional `Mean` and `InvStdDev` outputs, when read, are
/// computed by nodes of their own.
fn layer_norm(cx: &mut OpCx) -> Result<Lowered, ImportError> {
    let (axis, epsilon) = (cx.attrs.int_or("axis", -1)?, cx.attrs.float_or("epsilon", 1e-5)?);
    super::composite::layer_norm_statistics(cx, axis, epsilon)?;
    Ok(cx.same(Op::LayerNorm { axis, epsilon }).outputs(1))
}

fn lrn(cx: &mut OpCx) -> Result<Lowered, ImportError> {
    let a = &cx.attrs;
    let size = a.int("size")?.ok_or_else(|| a.missing("size"))?;
    let size = usize::try_from(size)
        .ok()
        .filter(|&s| s > 0)
        .ok_or_else(|| cx.error(format!("size {size} must be positive")))?;
    let op = Lrn {
        size,
        alpha: a.float_or("alpha", 1e-4)?,
        beta: a.float_or("beta", 0.75)?,
        bias: a.float_or("bias", 1.0)?,
    };
    Ok(cx.same(Op::Lrn(op)))
}

fn pool(cx: &OpCx, kind: PoolKind) -> Result<Op, ImportError> {
    let window = window(cx)?;
    if window.kernel_shape.is_none() {
        return Err(cx.attrs.missing("kernel_shape"));
    }
    Ok(Op::Pool(Pool {
        kind,
        window,
        ceil_mode: cx.attrs.bool_or("ceil_mode", false)?,
        storage_order: cx.attrs.int_or("storage_order", 0)?,
    }))
}

fn max_pool(cx: &mut OpCx) -> Result<Lowered, ImportError> {
    Ok(cx.same(pool(cx, PoolKind::Max)?))
}

fn average_pool(cx: &mut OpCx) -> Result<Lowered, ImportError> {
    let kind = PoolKind::Average { count_include_pad: cx.attrs.bool_or("count_include_pad", false)? };
    Ok(cx.same(pool(cx, kind)?))
}

fn lp_p(cx: &OpCx) -> Result<PoolKind, ImportError> {
    Ok(PoolKind::Lp { p: cx.attrs.int_or("p", 2)? as f32 })
}

fn lp_pool(cx: &mut OpCx) -> Result<Lowered, ImportError> {
    Ok(cx.same(pool(cx, lp_p(cx)?)?))
}

fn global_average_pool(cx: &mut OpCx) -> Result<Lowered, ImportError> {
    Ok(cx.same(Op::GlobalPool(PoolKind::Average { count_include_pad: false })))
}

fn global_max_pool(cx: &mut OpCx) -> Result<Lowered, ImportError> {
    Ok(cx.same(Op::GlobalPool(PoolKind::Max)))
}

fn global_lp_pool(cx: &mut OpCx) -> Result<Lowered, ImportError> {
    Ok(cx.same(Op::GlobalPool(lp_p(cx)?)))
}

/// Before opset 13 the softmax family flattens at `axis` (default 1); from 13 it works along
/// `axis` (default -1).
fn softmax_axis(cx: &OpCx) -> Result<(i64, bool), ImportError> {
    let legacy = cx.opset < 13;
    Ok((cx.attrs.int_or("axis", if legacy { 1 } else { -1 })?, legacy))
}

fn softmax(cx: &mut OpCx) -> Result<Lowered, ImportError> {
    let (axis, legacy) = softmax_axis(cx)?;
    Ok(cx.same(Op::Softmax { axis, legacy }))
}

fn log_softmax(cx: &mut OpCx) -> Result<Lowered, ImportError> {
    let (axis, legacy) = softmax_axis(cx)?;
    Ok(cx.same(Op::LogSoftmax { axis, legacy }))
}

fn hardmax(cx: &mut OpCx) -> Result<Lowered, ImportError> {
    let (axis, legacy) = softmax_axis(cx)?;
    Ok(cx.same(Op::Hardmax { axis, legacy }))
}
