//! ONNX `Attention` (opsets 23+) and `RotaryEmbedding` as a few IR nodes. Attention: per-head
//! reshapes of 3-D inputs, the key/value cache, grouped-query head repetition, scaled `Q Kᵀ`,
//! softcap, an additive bias built from the mask, causal and sliding-window limits and
//! `nonpad_kv_seqlen`, softmax (rows masked everywhere give 0, as ONNX's reference does) and
//! `P V`. Helper nodes are named `<node>__<step>`; the last node keeps the node's name.

use super::composite::reduce;
use super::Registry;
use crate::onnx::import::node::{Lowered, OpCx};
use crate::onnx::import::ImportError;
use kiln_ir::op::{Binary, PadMode, ReduceOp, Unary};
use kiln_ir::{DType, Op, Tensor, ValueRef};

pub(super) fn register(r: &mut Registry) {
    r.insert("Attention", attention);
    r.insert("RotaryEmbedding", rotary_embedding);
}

const RESHAPE: Op = Op::Reshape { allowzero: false };
const HEADS_FIRST: [usize; 4] = [0, 2, 1, 3];

/// The known extent of axis `axis` of `v`.
fn known_dim(cx: &OpCx, v: ValueRef, axis: usize, what: &str) -> Result<usize, ImportError> {
    let t = cx.b.graph.value_type(v);
    t.shape.get(axis).and_then(|d| d.known()).ok_or_else(|| cx.error(format!("needs a known {what}, got {t}")))
}

/// `[batch, seq, heads * size]` → `[batch, heads, seq, size]`.
fn split_heads(cx: &mut OpCx, what: &str, x: ValueRef, heads: i64) -> Result<ValueRef, ImportError> {
    let shape = cx.konst(&format!("{what}_split_shape"), Tensor::vector(vec![0, 0, heads, -1]));
    let split = cx.helper(&format!("{what}_split"), RESHAPE, &[x, shape])?;
    cx.helper(&format!("{what}_heads"), Op::Transpose { perm: Some(HEADS_FIRST.to_vec()) }, &[split])
}

/// Extent `axis` of `v` as an i64 scalar (folded to a constant when known).
fn extent(cx: &mut OpCx, what: &str, v: ValueRef, axis: i64) -> Result<ValueRef, ImportError> {
    let dim = cx.helper(&format!("{what}_dim"), Op::Shape { start: axis, end: Some(axis + 1) }, &[v])?;
    let scalar = cx.konst(&format!("{what}_scalar_shape"), Tensor::vector(Vec::<i64>::new()));
    cx.helper(what, RESHAPE, &[dim, scalar])
}

/// Repeats each of the `kv` heads of `[batch, kv, seq, size]` `reps` times: `h0 h0 h1 h1 ...`.
fn repeat_heads(cx: &mut OpCx, what: &str, x: ValueRef, reps: i64, heads: i64) -> Result<ValueRef, ImportError> {
    let axes = cx.konst(&format!("{what}_rep_axes"), Tensor::vector(vec![2i64]));
    let wide = cx.helper(&format!("{what}_rep_axis"), Op::Unsqueeze, &[x, axes])?;
    let reps = cx.konst(&format!("{what}_reps"), Tensor::vector(vec![1, 1, reps, 1, 1]));
    let repeated = cx.helper(&format!("{what}_repeated"), Op::Expand, &[wide, reps])?;
    let head = cx.konst(&format!("{what}_rep_head"), Tensor::vector(vec![0, heads]));
    let tail = cx.helper(&format!("{what}_rep_tail"), Op::Shape { start: 3, end: None }, &[repeated])?;
    let shape = cx.helper(&format!("{what}_rep_shape"), Op::Concat { axis: 0 }, &[head, tail])?;
    cx.helper(&format!("{what}_rep"), RESHAPE, &[repeated, shape])
}

fn attention(cx: &mut OpCx) -> Result<Lowered, ImportError> {
    let (q, k, v) = (cx.input(0)?, cx.input(1)?, cx.input(2)?);
    let dtype = cx.input_type(0)?.dtype;
    let rank = cx.input_type(0)?.rank();
    if cx.input_type(1)?.rank() != rank || cx.input_type(2)?.rank() != rank || !(rank == 3 || rank == 4) {
        return Err(cx.error("Q, K and V must all be 3-D or all 4-D"));
    }
    if cx.opt(4).is_some() != cx.opt(5).is_some() {
        return Err(cx.error("past_key and past_value must be given together"));
    }
    let nonpad = cx.opt(6);
    if nonpad.is_some() && cx.opt(4).is_some() {
        return Err(cx.error("nonpad_kv_seqlen cannot be combined with past_key/past_value"));
    }
    let (q, k, v) = if rank == 3 {
        let heads = |cx: &OpCx, a: &str| -> Result<i64, ImportError> {
            let n = cx.attrs.int(a)?.ok_or_else(|| cx.attrs.missing(a))?;
            if n <= 0 {
                return Err(cx.error(format!("{a} = {n} must be positive")));
            }
            Ok(n)
        };
        let (qh, kvh) = (heads(cx, "q_num_heads")?, heads(cx, "kv_num_heads")?);
        (split_heads(cx, "q", q, qh)?, split_heads(cx, "k", k, kvh)?, split_heads(cx, "v", v, kvh)?)
    } else {
        (q, k, v)
    };
    let head_size = known_dim(cx, q, 3, "query head size")?;
    let (q_heads, kv_heads) = (known_dim(cx, q, 1, "query head count")?, known_dim(cx, k, 1, "key head count")?);

    // The cache: present = past ++ new along the sequence axis.
    let (k, v) = match (cx.opt(4), cx.opt(5)) {
        (Some(pk), Some(pv)) => (
            cx.helper("present_key", Op::Concat { axis: 2 }, &[pk, k])?,
            cx.helper("present_value", Op::Concat { axis: 2 }, &[pv, v])?,
        ),
        _ => (k, v),
    };
    for (i, x) in [(1, k), (2, v)] {
        if cx.output_used(i) {
            cx.output_node(i, Op::Identity, &[x])?;
        }
    }

    let bias = attention_bias(cx, q, k, nonpad)?;

    let (k, v) = if q_heads != kv_heads && kv_heads > 0 && q_heads % kv_heads == 0 {
        let reps = (q_heads / kv_heads) as i64;
        (repeat_heads(cx, "k", k, reps, q_heads as i64)?, repeat_heads(cx, "v", v, reps, q_heads as i64)?)
    } else {
        (k, v)
    };

    // Q and K are each scaled by sqrt(scale), as ONNX's function body does.
    let scale = match cx.attrs.float("scale")? {
        Some(s) => s as f64,
        None => 1.0 / (head_size as f64).sqrt(),
    };
    let root = cx.konst("scale_sqrt", Tensor::scalar(scale.sqrt()).cast(dtype));
    let qs = cx.helper("q_scaled", Op::Binary(Binary::Mul), &[q, root])?;
    let ks = cx.helper("k_scaled", Op::Binary(Binary::Mul), &[k, root])?;
    let kt = cx.helper("k_transposed", Op::Transpose { perm: Some(vec![0, 1, 3, 2]) }, &[ks])?;
    let mut scores = cx.helper("scores", Op::MatMul, &[qs, kt])?;
    let softcap = cx.attrs.float_or("softcap", 0.0)? as f64;
    if softcap > 0.0 {
        let cap = cx.scalar_like("softcap", 0, softcap)?;
        let ratio = cx.helper("softcap_ratio", Op::Binary(Binary::Div), &[scores, cap])?;
        let tanh = cx.helper("softcap_tanh", Op::Unary(Unary::Tanh), &[ratio])?;
        scores = cx.helper("softcapped", Op::Binary(Binary::Mul), &[tanh, cap])?;
    }
    let logits = match bias {
        Some(b) => cx.helper("logits", Op::Binary(Binary::Add), &[scores, b])?,
        None => scores,
    };
    let precision = match cx.attrs.int("softmax_precision")? {
        None => dtype,
        Some(code) => i32::try_from(code)
            .ok()
            .and_then(DType::from_onnx_code)
            .ok_or_else(|| cx.error(format!("softmax_precision {code} is not supported")))?,
    };
    let wide =
        if precision == dtype { logits } else { cx.helper("logits_cast", Op::Cast { to: precision }, &[logits])? };
    let mut probs = cx.helper("probs", Op::Softmax { axis: -1, legacy: false }, &[wide])?;
    if let Some(b) = bias {
        // A row whose bias is -inf everywhere attends to nothing: its probabilities are 0.
        let axes = cx.konst("row_axes", Tensor::vector(vec![-1i64]));
        let row_max = cx.helper("row_max", reduce(ReduceOp::Max), &[b, axes])?;
        let neg_inf = cx.scalar_like("neg_inf_row", 0, f64::NEG_INFINITY)?;
        let masked = cx.helper("row_masked", Op::Binary(Binary::Equal), &[row_max, neg_inf])?;
        let zero = cx.konst("zero_probs", Tensor::scalar(0.0).cast(precision));
        probs = cx.helper("probs_guarded", Op::Where, &[masked, zero, probs])?;
    }
    if precision != dtype {
        probs = cx.helper("probs_cast", Op::Cast { to: dtype }, &[probs])?;
    }
    if cx.output_used(3) {
        let tapped = match cx.attrs.int_or("qk_matmul_output_mode", 0)? {
            0 | 1 => scores,
            2 => logits,
            3 => probs,
            m => return Err(cx.error(format!("qk_matmul_output_mode {m} is not supported"))),
        };
        cx.output_node(3, Op::Identity, &[tapped])?;
    }
    if rank == 4 {
        return Ok(Lowered::new(Op::MatMul, vec![Some(probs), Some(v)]).outputs(1));
    }
    let y = cx.helper("y_heads", Op::MatMul, &[probs, v])?;
    let y = cx.helper("y_seq_first", Op::Transpose { perm: Some(HEADS_FIRST.to_vec()) }, &[y])?;
    let shape = cx.konst("y_shape", Tensor::vector(vec![0i64, 0, -1]));
    Ok(Lowered::new(RESHAPE, vec![Some(y), Some(shape)]).outputs(1))
}

/// The additive bias (0 where a query may attend a key, -inf elsewhere, plus a float mask), or
/// `None` when nothing limits attention. `k` is the key with its cache.
fn attention_bias(
    cx: &mut OpCx,
    q: ValueRef,
    k: ValueRef,
    nonpad: Option<ValueRef>,
) -> Result<Option<ValueRef>, ImportError> {
    let causal = cx.attrs.bool_or("is_causal", false)?;
    let left = cx.attrs.int_or("left_window_size", -1)?;
    let right = cx.attrs.int_or("right_window_size", -1)?;
    let windowed = left >= 0 || right >= 0;
    let mut terms: Vec<ValueRef> = Vec::new();
    let zero = cx.scalar_like("zero", 0, 0.0)?;
    let neg_inf = cx.scalar_like("neg_inf", 0, f64::NEG_INFINITY)?;
    let kv_len = extent(cx, "kv_len", k, 2)?;
    if let Some(mask) = cx.opt(3) {
        let mt = cx.input_type(3)?;
        let mut bias =
            if mt.dtype == DType::Bool { cx.helper("mask_bias", Op::Where, &[mask, zero, neg_inf])? } else { mask };
        // A mask shorter than the keys (with the cache) is padded with -inf.
        let mask_len = mt.shape.last().and_then(|d| d.known());
        let keys = cx.b.graph.value_type(k).shape.get(2).and_then(|d| d.known());
        if mt.rank() == 0 {
            return Err(cx.error("attn_mask must have a rank of 1 or more"));
        }
        if mask_len.is_none() || keys.is_none() || mask_len < keys {
            let len = extent(cx, "mask_len", bias, mt.rank() as i64 - 1)?;
            let width = cx.helper("mask_pad_width", Op::Binary(Binary::Sub), &[kv_len, len])?;
            let one = cx.konst("one_shape", Tensor::vector(vec![1i64]));
            let width = cx.helper("mask_pad_width_vec", RESHAPE, &[width, one])?;
            let zeros = cx.konst("mask_pad_zeros", Tensor::vector(vec![0i64; 2 * mt.rank() - 1]));
            let pads = cx.helper("mask_pads", Op::Concat { axis: 0 }, &[zeros, width])?;
            bias = cx.helper("mask_padded", Op::Pad { mode: PadMode::Constant }, &[bias, pads, neg_inf])?;
        }
        terms.push(bias);
    }
    if causal || windowed || nonpad.is_some() {
        let (zero_i, one_i) = (cx.konst("zero_i", Tensor::scalar(0i64)), cx.konst("one_i", Tensor::scalar(1i64)));
        let q_len = extent(cx, "q_len", q, 2)?;
        let cols = cx.helper("key_positions", Op::Range, &[zero_i, kv_len, one_i])?;
        if causal || windowed {
            // Query i sits at absolute position i + offset: after the cache, or (with
            // nonpad_kv_seqlen) q_len before each batch's end.
            let rows = cx.helper("query_positions", Op::Range, &[zero_i, q_len, one_i])?;
            let column = cx.konst("column_shape", Tensor::vector(vec![-1i64, 1]));
            let mut rows = cx.helper("query_column", RESHAPE, &[rows, column])?;
            if let Some(pk) = cx.opt(4) {
                let past = extent(cx, "past_len", pk, 2)?;
                rows = cx.helper("query_absolute", Op::Binary(Binary::Add), &[rows, past])?;
            } else if let Some(n) = nonpad {
                let n = cx.helper("nonpad_i64", Op::Cast { to: DType::I64 }, &[n])?;
                let shape = cx.konst("batch_shape", Tensor::vector(vec![-1i64, 1, 1, 1]));
                let n = cx.helper("nonpad_batch", RESHAPE, &[n, shape])?;
                let offset = cx.helper("nonpad_offset", Op::Binary(Binary::Sub), &[n, q_len])?;
                rows = cx.helper("query_absolute", Op::Binary(Binary::Add), &[rows, offset])?;
            }
            let diff = cx.helper("query_key_distance", Op::Binary(Binary::Sub), &[rows, cols])?;
            let mut limits = Vec::new();
            if causal {
                limits.push((0, "causal", Binary::LessOrEqual));
            }
            if left >= 0 {
                limits.push((left, "left_window", Binary::LessOrEqual));
            }
            if right >= 0 {
                limits.push((-right, "right_window", Binary::GreaterOrEqual));
            }
            for (bound, what, cmp) in limits {
                // causal: key <= query; left: query - key <= left; right: key - query <= right.
                let b = cx.konst(&format!("{what}_bound"), Tensor::scalar(bound));
                let (lhs, rhs) = if what == "causal" { (cols, rows) } else { (diff, b) };
                let allowed = cx.helper(&format!("{what}_allowed"), Op::Binary(cmp), &[lhs, rhs])?;
                terms.push(cx.helper(&format!("{what}_bias"), Op::Where, &[allowed, zero, neg_inf])?);
            }
        }
        if let Some(n) = nonpad {
            let n = cx.helper("nonpad_len", Op::Cast { to: DType::I64 }, &[n])?;
            let shape = cx.konst("nonpad_shape", Tensor::vector(vec![-1i64, 1, 1, 1]));
            let n = cx.helper("nonpad_len_batch", RESHAPE, &[n, shape])?;
            let allowed = cx.helper("nonpad_allowed", Op::Binary(Binary::Less), &[cols, n])?;
            terms.push(cx.helper("nonpad_bias", Op::Where, &[allowed, zero, neg_inf])?);
        }
    }
    let mut terms = terms.into_iter();
    let Some(mut bias) = terms.next() else { return Ok(None) };
    for t in terms {
        bias = cx.helper("bias", Op::Binary(Binary::Add), &[bias, t])?;
    }
    Ok(Some(bias))
}

/// `x[..., start:end:step]` along the last axis of a rank-4 value.
fn last_axis_slice(
    cx: &mut OpCx,
    what: &str,
    x: ValueRef,
    start: i64,
    end: i64,
    step: i64,
) -> Result<ValueRef, ImportError> {
    let starts = cx.konst(&format!("{what}_start"), Tensor::vector(vec![start]));
    let ends = cx.konst(&format!("{what}_end"), Tensor::vector(vec![end]));
    let axes = cx.konst(&format!("{what}_axis"), Tensor::vector(vec![3i64]));
    let steps = cx.konst(&format!("{what}_step"), Tensor::vector(vec![step]));
    cx.helper(what, Op::Slice, &[x, starts, ends, axes, steps])
}

/// RotaryEmbedding (opset 23): rotates the first `rotary_embedding_dim` features of each head
/// (in halves, or interleaved pairs) by the cached cos/sin at each position. The head size
/// must be known.
fn rotary_embedding(cx: &mut OpCx) -> Result<Lowered, ImportError> {
    let (x, cos, sin) = (cx.input(0)?, cx.input(1)?, cx.input(2)?);
    let rank = cx.input_type(0)?.rank();
    // To [batch, seq, heads, head_size].
    let x4 = match rank {
        4 => cx.helper("seq_first", Op::Transpose { perm: Some(HEADS_FIRST.to_vec()) }, &[x])?,
        3 => {
            let heads = cx.attrs.int_or("num_heads", 0)?;
            if heads <= 0 {
                return Err(cx.error("a 3-D input needs a positive num_heads"));
            }
            let shape = cx.konst("split_shape", Tensor::vector(vec![0, 0, heads, -1]));
            cx.helper("split", RESHAPE, &[x, shape])?
        }
        r => return Err(cx.error(format!("input must be 3-D or 4-D, got rank {r}"))),
    };
    let head = known_dim(cx, x4, 3, "head size")? as i64;
    let rd = match cx.attrs.int_or("rotary_embedding_dim", 0)? {
        0 => head,
        d if d > 0 && d <= head && d % 2 == 0 => d,
        d => return Err(cx.error(format!("rotary_embedding_dim {d} does not fit head size {head}"))),
    };
    let (cos, sin) = match cx.opt(3) {
        Some(p) => (
            cx.helper("cos_at", Op::Gather { axis: 0 }, &[cos, p])?,
            cx.helper("sin_at", Op::Gather { axis: 0 }, &[sin, p])?,
        ),
        None => (cos, sin),
    };
    let axes = cx.konst("head_axis", Tensor::vector(vec![2i64]));
    let cos = cx.helper("cos_heads", Op::Unsqueeze, &[cos, axes])?;
    let sin = cx.helper("sin_heads", Op::Unsqueeze, &[sin, axes])?;
    let interleaved = cx.attrs.bool_or("interleaved", false)?;
    let (x1, x2) = if interleaved {
        (last_axis_slice(cx, "x1", x4, 0, rd, 2)?, last_axis_slice(cx, "x2", x4, 1, rd, 2)?)
    } else {
        (last_axis_slice(cx, "x1", x4, 0, rd / 2, 1)?, last_axis_slice(cx, "x2", x4, rd / 2, rd, 1)?)
    };
    let mul = |cx: &mut OpCx, what: &str, a, b| cx.helper(what, Op::Binary(Binary::Mul), &[a, b]);
    let (c1, s2) = (mul(cx, "cos_x1", cos, x1)?, mul(cx, "sin_x2", sin, x2)?);
    let (s1, c2) = (mul(cx, "sin_x1", sin, x1)?, mul(cx, "cos_x2", cos, x2)?);
    let real = cx.helper("real", Op::Binary(Binary::Sub), &[c1, s2])?;
    let imag = cx.helper("imag", Op::Binary(Binary::Add), &[s1, c2])?;
    let mut rotated = if interleaved {
        let pair = cx.konst("pair_axis", Tensor::vector(vec![4i64]));
        let real = cx.helper("real_pair", Op::Unsqueeze, &[real, pair])?;
        let imag = cx.helper("imag_pair", Op::Unsqueeze, &[imag, pair])?;
        let pairs = cx.helper("pairs", Op::Concat { axis: 4 }, &[real, imag])?;
        let shape = cx.konst("rotated_shape", Tensor::vector(vec![0, 0, 0, rd]));
        cx.helper("rotated", RESHAPE, &[pairs, shape])?
    } else {
        cx.helper("rotated", Op::Concat { axis: 3 }, &[real, imag])?
    };
    if rd < head {
        let rest = last_axis_slice(cx, "kept", x4, rd, head, 1)?;
        rotated = cx.helper("joined", Op::Concat { axis: 3 }, &[rotated, rest])?;
    }
    if rank == 4 {
        return Ok(Lowered::new(Op::Transpose { perm: Some(HEADS_FIRST.to_vec()) }, vec![Some(rotated)]));
    }
    let shape = cx.konst("shape", Tensor::vector(vec![0i64, 0, -1]));
    Ok(Lowered::new(RESHAPE, vec![Some(rotated), Some(shape)]))
}

#[cfg(test)]
mod tests {
    use crate::onnx::import::load_bytes;
    use kiln_backends::{interp::Interpreter, Backend};
    use kiln_ir::{DType, Tensor};
    use onnx_protobuf::attribute_proto::AttributeType;
    use onnx_protobuf::tensor_shape_proto::{dimension, Dimension};
    use onnx_protobuf::type_proto::{self, Tensor as TensorTypeProto};
    use onnx_protobuf::{
        AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorShapeProto, TypeProto,
        ValueInfoProto,
    };
    use protobuf::Message;

    fn int(name: &str, v: i64) -> AttributeProto {
        AttributeProto { name: name.into(), type_: AttributeType::INT.into(), i: v, ..Default::default() }
    }

    fn float(name: &str, v: f32) -> AttributeProto {
        AttributeProto { name: name.into(), type_: AttributeType::FLOAT.into(), f: v, ..Default::default() }
    }

    fn vi(name: &str, dtype: DType, dims: &[i64]) -> ValueInfoProto {
        let dim = |d: &i64| Dimension { value: Some(dimension::Value::DimValue(*d)), ..Default::default() };
        let shape = TensorShapeProto { dim: dims.iter().map(dim).collect(), ..Default::default() };
        let tt = TensorTypeProto { elem_type: dtype.onnx_code(), shape: Some(shape).into(), ..Default::default() };
        let ty = TypeProto { value: Some(type_proto::Value::TensorType(tt)), ..Default::default() };
        ValueInfoProto { name: name.into(), type_: Some(ty).into(), ..Default::default() }
    }

    /// One Attention node (opset 23) over graph inputs `inputs`, returning output `y`.
    fn run(inputs: &[(&str, DType, &[i64])], attrs: Vec<AttributeProto>, feeds: &[Tensor]) -> Vec<f32> {
        run_op("Attention", inputs, attrs, feeds)
    }

    fn run_op(op: &str, inputs: &[(&str, DType, &[i64])], attrs: Vec<AttributeProto>, feeds: &[Tensor]) -> Vec<f32> {
        let node = NodeProto {
            op_type: op.into(),
            name: "attn".into(),
            input: inputs.iter().map(|(n, ..)| n.to_string()).collect(),
            output: vec!["y".into()],
            attribute: attrs,
            ..Default::default()
        };
        let g = GraphProto {
            name: "g".into(),
            node: vec![node],
            input: inputs.iter().map(|(n, t, d)| vi(n, *t, d)).collect(),
            output: vec![ValueInfoProto { name: "y".into(), ..Default::default() }],
            ..Default::default()
        };
        let m = ModelProto {
            ir_version: 9,
            opset_import: vec![OperatorSetIdProto { domain: String::new(), version: 23, ..Default::default() }],
            graph: Some(g).into(),
            ..Default::default()
        };
        let m = load_bytes(&m.write_to_bytes().unwrap(), None).unwrap();
        m.graph.verify().unwrap();
        Interpreter.prepare(&m.graph).unwrap().run(feeds).unwrap()[0].to_vec::<f32>()
    }

    fn close(got: &[f32], want: &[f32]) {
        assert_eq!(got.len(), want.len());
        assert!(got.iter().zip(want).all(|(g, w)| (g - w).abs() < 1e-5), "{got:?} != {want:?}");
    }

    fn t(dims: &[usize], v: &[f32]) -> Tensor {
        Tensor::from_vec(dims, v.to_vec()).unwrap()
    }

    // Expected values from onnx.reference.ops.op_attention._compute_attention.

    #[test]
    fn causal_4d() {
        let qkv: &[i64] = &[1, 2, 2, 2];
        let inputs = [("q", DType::F32, qkv), ("k", DType::F32, qkv), ("v", DType::F32, qkv)];
        let q = t(&[1, 2, 2, 2], &[0.1, 0.2, 0.3, -0.4, 0.5, 0.6, -0.7, 0.8]);
        let k = t(&[1, 2, 2, 2], &[0.2, -0.1, 0.4, 0.3, 0.0, 0.5, -0.6, 0.1]);
        let v = t(&[1, 2, 2, 2], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]);
        let y = run(&inputs, vec![int("is_causal", 1)], &[q, k, v]);
        close(&y, &[1.0, 2.0, 1.9646593, 2.9646592, 5.0, 6.0, 6.0353403, 7.0353403]);
    }

    #[test]
    fn grouped_query_3d_with_bool_mask_and_softcap() {
        let inputs: [(&str, DType, &[i64]); 4] = [
            ("q", DType::F32, &[1, 2, 4]),
            ("k", DType::F32, &[1, 3, 2]),
            ("v", DType::F32, &[1, 3, 2]),
            ("mask", DType::Bool, &[2, 3]),
        ];
        let q = t(&[1, 2, 4], &[0.1, 0.2, 0.3, -0.4, 0.5, 0.6, -0.7, 0.8]);
        let k = t(&[1, 3, 2], &[0.2, -0.1, 0.4, 0.3, 0.0, 0.5]);
        let v = t(&[1, 3, 2], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        let mask = Tensor::from_vec(&[2, 3], vec![true, false, true, false, true, true]).unwrap();
        let attrs = vec![int("q_num_heads", 2), int("kv_num_heads", 1), float("softcap", 0.5)];
        let y = run(&inputs, attrs, &[q, k, v, mask]);
        let want = [3.0702143, 4.0702143, 2.792737, 3.792737, 3.9773786, 4.9773784, 4.141223, 5.141223];
        close(&y, &want);
    }

    #[test]
    fn rotary_interleaved_with_positions() {
        let inputs: [(&str, DType, &[i64]); 4] = [
            ("x", DType::F32, &[1, 1, 2, 4]),
            ("cos", DType::F32, &[3, 2]),
            ("sin", DType::F32, &[3, 2]),
            ("pos", DType::I64, &[1, 2]),
        ];
        let x = t(&[1, 1, 2, 4], &[0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5]);
        let cos = t(&[3, 2], &[1.0, 0.5, 0.8, -0.2, 0.3, 0.9]);
        let sin = t(&[3, 2], &[0.0, 0.7, 0.6, 0.4, -0.5, 0.1]);
        let pos = Tensor::from_vec(&[1, 2], vec![2i64, 0]).unwrap();
        let int_attr = int("interleaved", 1);
        let y = run_op("RotaryEmbedding", &inputs, vec![int_attr], &[x, cos, sin, pos]);
        close(&y, &[0.25, 0.15, 0.75, 1.45, 2.0, 2.5, -0.95, 3.85]);
    }
}
