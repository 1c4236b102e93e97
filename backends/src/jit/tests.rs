//! The JIT against the interpreter on small graphs covering every lowering path: fused anchors
//! and epilogues, each convolution algorithm, products with transposes and batching, host
//! kernels, aliases, interpreter fallbacks, symbolic dims, caller-owned outputs and concurrent
//! runs. Inputs and weights are seeded random values.

use super::{Engine, Jit};
use crate::{interp::Interpreter, Backend};
use kiln_ir::op::{Binary, Conv, Gemm, Lrn, Pool, PoolKind, Unary, Variadic, Window};
use kiln_ir::{DType, Dim, Graph, Op, Tensor, TensorType, ValueRef};

pub(super) fn rand(shape: &[usize], name: &str) -> Tensor {
    Tensor::seeded(DType::F32, shape, name, 0.0, 1.0).unwrap()
}

pub(super) fn konst(g: &mut Graph, name: &str, shape: &[usize]) -> ValueRef {
    g.add_const(name, rand(shape, name))
}

/// Runs `g` on seeded inputs with the interpreter and with the JIT at 1 and 2 threads, and
/// asserts every output agrees within `tol` (max abs difference relative to max |ref|).
pub(super) fn check(g: &Graph, tol: f32) {
    let inputs: Vec<Tensor> = g
        .input_values()
        .iter()
        .map(|&v| rand(&g.value_type(v).concrete_shape().expect("test inputs are static"), g.value_name(v)))
        .collect();
    check_with(g, &inputs, tol);
}

pub(super) fn check_with(g: &Graph, inputs: &[Tensor], tol: f32) {
    let want = Interpreter.prepare(g).unwrap().run(inputs).unwrap();
    for threads in [1, 2] {
        let got = Jit::with_threads(threads).prepare(g).unwrap().run(inputs).unwrap();
        assert_eq!(got.len(), want.len());
        for (i, (a, b)) in got.iter().zip(&want).enumerate() {
            assert_eq!(a.shape(), b.shape(), "output {i} shape");
            assert_eq!(a.dtype(), b.dtype(), "output {i} dtype");
            let (a, b) = (a.to_f64_vec(), b.to_f64_vec());
            let scale = b.iter().fold(1e-6f64, |m, v| m.max(v.abs()));
            let err = a.iter().zip(&b).fold(0f64, |m, (x, y)| m.max((x - y).abs())) / scale;
            assert!(err <= tol as f64, "output {i}, {threads} threads: relative error {err:e} > {tol:e}");
        }
    }
}

fn conv(stride: usize, pad: usize, group: usize) -> Op {
    Op::Conv(Conv {
        window: Window { kernel_shape: None, strides: vec![stride; 2], pads: vec![pad; 4], ..Default::default() },
        group,
    })
}

/// Number of steps of each engine in the compiled plan.
pub(super) fn engines(g: &Graph) -> Vec<Engine> {
    Jit::with_threads(1).compile(g).unwrap().report().steps.iter().map(|s| s.engine).collect()
}

#[test]
fn conv_bias_relu_residual_fuse_into_one_step() {
    let mut g = Graph::new("block");
    let x = g.add_input("x", TensorType::known(DType::F32, &[1, 8, 9, 9]));
    let w = konst(&mut g, "w", &[8, 8, 3, 3]);
    let b = konst(&mut g, "b", &[8]);
    let c = g.add("c", conv(1, 1, 1), &[x, w, b]).unwrap();
    let s = g.add("s", Op::Binary(Binary::Add), &[c, x]).unwrap();
    let y = g.add("y", Op::Unary(Unary::Relu), &[s]).unwrap();
    g.set_outputs(vec![y]);
    check(&g, 1e-5);
    assert_eq!(engines(&g), vec![Engine::Gemm], "conv + add + relu is one step");
    let compiled = Jit::with_threads(1).compile(&g).unwrap();
    assert_eq!(compiled.report().kernels, 0, "the GEMM applies bias, residual and ReLU to its tiles");

    // An epilogue the GEMM does not apply itself stays a generated kernel in the same step.
    let mut g = Graph::new("sigmoid");
    let x = g.add_input("x", TensorType::known(DType::F32, &[1, 8, 9, 9]));
    let w = konst(&mut g, "w", &[8, 8, 3, 3]);
    let b = konst(&mut g, "b", &[8]);
    let c = g.add("c", conv(1, 1, 1), &[x, w, b]).unwrap();
    let y = g.add("y", Op::Unary(Unary::Sigmoid), &[c]).unwrap();
    g.set_outputs(vec![y]);
    check(&g, 1e-5);
    assert_eq!(engines(&g), vec![Engine::Gemm]);
    assert_eq!(Jit::with_threads(1).compile(&g).unwrap().report().kernels, 1);
}

/// A 1-D convolution (Conv1d: keyword spotting, Whisper's stem) runs on the GEMM core as a 2-D one
/// over planes of height 1, with its bias and activation fused, whatever the stride, padding,
/// dilation or groups.
#[test]
fn one_dimensional_convolutions_run_on_the_gemm_core() {
    for (name, cin, cout, k, stride, pad, dilation, group) in [
        ("k3-same", 8, 6, 3, 1, 1, 1, 1),
        ("k5-s2", 4, 8, 5, 2, 2, 1, 1),
        ("k1-pointwise", 6, 10, 1, 1, 0, 1, 1),
        ("k3-dilated", 4, 4, 3, 1, 2, 2, 1),
        ("depthwise", 6, 6, 3, 1, 1, 1, 6),
        ("grouped", 8, 4, 3, 1, 0, 1, 2),
    ] {
        let mut g = Graph::new(name);
        let x = g.add_input("x", TensorType::known(DType::F32, &[2, cin, 37]));
        let w = konst(&mut g, "w", &[cout, cin / group, k]);
        let b = konst(&mut g, "b", &[cout]);
        let window = Window {
            kernel_shape: None,
            strides: vec![stride],
            pads: vec![pad; 2],
            dilations: vec![dilation],
            ..Default::default()
        };
        let c = g.add("c", Op::Conv(Conv { window, group }), &[x, w, b]).unwrap();
        let y = g.add("y", Op::Unary(Unary::Relu), &[c]).unwrap();
        g.set_outputs(vec![y]);
        check(&g, 1e-5);
        assert_eq!(engines(&g), vec![Engine::Gemm], "{name}: one fused GEMM step");
    }
}

/// Each case is named after the algorithm the plan must choose for it.
#[test]
fn every_convolution_algorithm_matches() {
    for (name, cin, cout, k, stride, pad, group, bias) in [
        ("im2col-7x7-s2-narrow-image", 3, 8, 7, 2, 3, 1, true),
        ("shifted-3x3-s1-same", 8, 6, 3, 1, 1, 1, true),
        ("shifted-3x3-s1-valid", 8, 6, 3, 1, 0, 1, false),
        ("shifted-5x5-s1-wide-pad", 3, 3, 5, 1, 4, 1, true),
        ("im2col-1x1-s2", 6, 4, 1, 2, 0, 1, false),
        ("shifted-grouped", 16, 6, 3, 1, 1, 2, true),
        ("shifted-no-output-channels", 8, 0, 3, 1, 1, 1, false),
        ("im2col-3x3-shallow", 4, 6, 3, 1, 1, 1, true),
        ("im2col-7x7-s1-narrow-image", 3, 4, 7, 1, 3, 1, true),
        ("pointwise", 6, 4, 1, 1, 0, 1, true),
        ("pointwise-packed", 6, 72, 1, 1, 0, 1, true),
        ("depthwise-s2", 5, 5, 3, 2, 1, 5, true),
        ("depthwise-s1", 4, 4, 3, 1, 1, 4, false),
        ("depthwise-5x5-s1", 3, 3, 5, 1, 2, 3, true),
    ] {
        let mut g = Graph::new(name);
        let x = g.add_input("x", TensorType::known(DType::F32, &[2, cin, 11, 10]));
        let mut ins = vec![x, konst(&mut g, "w", &[cout, cin / group, k, k])];
        if bias {
            ins.push(konst(&mut g, "b", &[cout]));
        }
        let y = g.add("y", conv(stride, pad, group), &ins).unwrap();
        g.set_outputs(vec![y]);
        check(&g, 1e-5);
        let want = match name.split('-').next() {
            // Only kernels with a shifted variant read the input in place.
            Some("shifted") if super::microkernel::best().shifted.is_none() => Some("im2col"),
            other => other,
        };
        let compiled = Jit::with_threads(1).compile(&g).unwrap();
        assert_eq!(compiled.report().steps[0].method, want, "{name}");
    }
}

#[test]
fn batch_norm_chain_is_one_generated_kernel() {
    let mut g = Graph::new("bn");
    let x = g.add_input("x", TensorType::known(DType::F32, &[2, 6, 5, 5]));
    let p: Vec<ValueRef> = ["scale", "bias", "mean"].iter().map(|n| konst(&mut g, n, &[6])).collect();
    let var = g.add_const("var", Tensor::vector(vec![0.5f32, 1.0, 2.0, 0.1, 3.0, 1.5]));
    let bn = g.add("bn", Op::BatchNorm { epsilon: 1e-5 }, &[x, p[0], p[1], p[2], var]).unwrap();
    let r = g.add("r", Op::Unary(Unary::Sigmoid), &[bn]).unwrap();
    let t = g.add("t", Op::Unary(Unary::Tanh), &[r]).unwrap();
    let e = g.add("e", Op::Unary(Unary::Exp), &[t]).unwrap();
    g.set_outputs(vec![e]);
    check(&g, 1e-5);
    assert_eq!(engines(&g), vec![Engine::Cranelift]);
}

#[test]
fn products_with_transposes_bias_and_batches() {
    let mut g = Graph::new("gemm");
    let a = g.add_input("a", TensorType::known(DType::F32, &[7, 5]));
    let b = konst(&mut g, "b", &[9, 5]);
    let c = konst(&mut g, "c", &[9]);
    let gm = Gemm { alpha: 0.5, beta: 2.0, trans_a: false, trans_b: true };
    let y = g.add("y", Op::Gemm(gm), &[a, b, c]).unwrap();
    let y = g.add("relu", Op::Unary(Unary::Relu), &[y]).unwrap();
    let x3 = g.add_input("x3", TensorType::known(DType::F32, &[3, 4, 6]));
    let w = konst(&mut g, "w", &[6, 2]);
    let z = g.add("z", Op::MatMul, &[x3, w]).unwrap();
    let l = g.add_input("l", TensorType::known(DType::F32, &[3, 2, 4]));
    let zz = g.add("zz", Op::MatMul, &[l, z]).unwrap();
    let v = g.add_input("v", TensorType::known(DType::F32, &[6]));
    let vv = g.add("vv", Op::MatMul, &[v, w]).unwrap();
    let ta = g.add_input("ta", TensorType::known(DType::F32, &[5, 7]));
    let gt = g.add("gt", Op::Gemm(Gemm { trans_a: true, ..Default::default() }), &[ta, b]);
    assert!(gt.is_err(), "shape rule rejects [7,5]x[9,5] without transB");
    let b2 = konst(&mut g, "b2", &[5, 9]);
    let gt = g.add("gt", Op::Gemm(Gemm { trans_a: true, ..Default::default() }), &[ta, b2]).unwrap();
    // Vector operands on either side of batched ones, and a partial batch broadcast (which
    // falls back to the interpreter).
    let v3 = g.add_input("v3", TensorType::known(DType::F32, &[4]));
    let b3 = konst(&mut g, "b3", &[3, 4, 2]);
    let p1 = g.add("p1", Op::MatMul, &[v3, b3]).unwrap();
    let a4 = konst(&mut g, "a4", &[2, 3, 5, 4]);
    let p2 = g.add("p2", Op::MatMul, &[a4, v3]).unwrap();
    let pb = konst(&mut g, "pb", &[2, 1, 3, 4]);
    let p3 = g.add("p3", Op::MatMul, &[pb, b3]).unwrap();
    g.set_outputs(vec![y, zz, vv, gt, p1, p2, p3]);
    check(&g, 1e-5);
}

#[test]
fn pools_softmax_lrn_and_concat() {
    let mut g = Graph::new("host");
    let x = g.add_input("x", TensorType::known(DType::F32, &[2, 6, 9, 8]));
    let pool = |kind, k, s, p, ceil| {
        Op::Pool(Pool {
            kind,
            window: Window {
                kernel_shape: Some(vec![k, k]),
                strides: vec![s, s],
                pads: vec![p; 4],
                ..Default::default()
            },
            ceil_mode: ceil,
            storage_order: 0,
        })
    };
    let mx = g.add("mx", pool(PoolKind::Max, 3, 2, 1, false), &[x]).unwrap();
    let mc = g.add("mc", pool(PoolKind::Max, 3, 2, 0, true), &[x]).unwrap();
    let av = g.add("av", pool(PoolKind::Average { count_include_pad: false }, 3, 1, 1, false), &[x]).unwrap();
    let ai = g.add("ai", pool(PoolKind::Average { count_include_pad: true }, 2, 2, 1, false), &[x]).unwrap();
    let gp = g.add("gp", Op::GlobalPool(PoolKind::Average { count_include_pad: false }), &[x]).unwrap();
    let gm = g.add("gm", Op::GlobalPool(PoolKind::Max), &[x]).unwrap();
    let cat = g.add("cat", Op::Concat { axis: 1 }, &[gp, gm, gp]).unwrap();
    let flat = g.add("flat", Op::Flatten { axis: 1 }, &[cat]).unwrap();
    let sm = g.add("sm", Op::Softmax { axis: 1, legacy: true }, &[flat]).unwrap();
    let lsm = g.add("lsm", Op::LogSoftmax { axis: -1, legacy: false }, &[x]).unwrap();
    let lrn = g.add("lrn", Op::Lrn(Lrn { size: 3, alpha: 1e-2, beta: 0.75, bias: 1.0 }), &[x]).unwrap();
    g.set_outputs(vec![mx, mc, av, ai, sm, lsm, lrn]);
    check(&g, 1e-5);
    assert!(engines(&g).iter().all(|&e| e == Engine::Host), "{:?}", engines(&g));
}

#[test]
fn concat_inputs_are_written_in_place() {
    // A SqueezeNet fire module (two convolutions joined) feeding a DenseNet-style chain, where
    // each Concat's output is also an input of the next Concat; one input is a graph input and
    // one is read twice, so those two are still copied.
    let mut g = Graph::new("cat");
    let x = g.add_input("x", TensorType::known(DType::F32, &[1, 4, 6, 6]));
    let (w1, w3) = (konst(&mut g, "w1", &[3, 4, 1, 1]), konst(&mut g, "w3", &[5, 4, 3, 3]));
    let e1 = g.add("e1", conv(1, 0, 1), &[x, w1]).unwrap();
    let r1 = g.add("r1", Op::Unary(Unary::Relu), &[e1]).unwrap();
    let e3 = g.add("e3", conv(1, 1, 1), &[x, w3]).unwrap();
    let fire = g.add("fire", Op::Concat { axis: 1 }, &[r1, e3]).unwrap();
    let wd = konst(&mut g, "wd", &[2, 8, 3, 3]);
    let d1 = g.add("d1", conv(1, 1, 1), &[fire, wd]).unwrap();
    let dense1 = g.add("dense1", Op::Concat { axis: 1 }, &[fire, d1]).unwrap();
    let p = g.add("p", Op::Unary(Unary::Sigmoid), &[dense1]).unwrap();
    let dense2 = g.add("dense2", Op::Concat { axis: -3 }, &[dense1, p, x, p]).unwrap();
    let out = g.add("out", Op::Unary(Unary::Tanh), &[dense2]).unwrap();
    g.set_outputs(vec![out, fire]);
    check(&g, 1e-5);
    let compiled = Jit::with_threads(1).compile(&g).unwrap();
    let concats: Vec<_> = compiled.report().steps.iter().filter(|s| s.ops.iter().any(|o| o == "Concat")).collect();
    assert_eq!(concats.len(), 1, "only dense2 copies (its input x and the twice-read p): {concats:?}");
}

#[test]
fn transpose_broadcast_and_variadic_chains() {
    let mut g = Graph::new("ew");
    let x = g.add_input("x", TensorType::known(DType::F32, &[3, 4, 5]));
    let t = g.add("t", Op::Transpose { perm: Some(vec![2, 0, 1]) }, &[x]).unwrap();
    let row = konst(&mut g, "row", &[1, 4]);
    let s = g.add("s", Op::Binary(Binary::Mul), &[t, row]).unwrap();
    let k = konst(&mut g, "k", &[5, 3, 4]);
    let m = g.add("m", Op::Variadic(Variadic::Mean), &[s, k, s]).unwrap();
    let lo = g.add_const("lo", Tensor::scalar(-0.25f32));
    let c = g.add("c", Op::Clip, &[m, lo]).unwrap();
    let h = g.add("h", Op::Unary(Unary::HardSwish), &[c]).unwrap();
    let e = g.add("e", Op::Unary(Unary::Erf), &[h]).unwrap();
    let p = g.add("p", Op::Binary(Binary::Pow), &[e, k]).unwrap();
    g.set_outputs(vec![e, p]);
    check(&g, 1e-5);
}

#[test]
fn unsupported_ops_fall_back_to_the_interpreter() {
    // TopK has no native kernel; its i64 indices then flow through native steps again.
    let mut g = Graph::new("mixed");
    let x = g.add_input("x", TensorType::known(DType::F32, &[4, 6]));
    let k = g.add_const("k", Tensor::vector(vec![2i64]));
    let top = Op::TopK { axis: 1, largest: true, sorted: true };
    let t = g.add_node("top", top, &[Some(x), Some(k)], &["values".into(), "indices".into()]).unwrap();
    let (values, indices) = (ValueRef { node: t, output: 0 }, ValueRef { node: t, output: 1 });
    let f = g.add("f", Op::Cast { to: DType::F32 }, &[indices]).unwrap();
    let y = g.add("y", Op::Binary(Binary::Add), &[values, f]).unwrap();
    let r = g.add("r", Op::Unary(Unary::Relu), &[y]).unwrap();
    g.set_outputs(vec![r, indices]);
    check(&g, 1e-6);
    assert_eq!(engines(&g), vec![Engine::Interpreter, Engine::Host, Engine::Cranelift]);
}

#[test]
fn symbolic_dims_compile_per_shape() {
    let mut g = Graph::new("sym");
    let x = g.add_input("x", TensorType::new(DType::F32, [Dim::from("n"), Dim::from(3)]));
    let y = g.add("y", Op::Unary(Unary::Relu), &[x]).unwrap();
    g.set_outputs(vec![y]);
    let exe = Jit::with_threads(1).prepare(&g).unwrap();
    for n in [1, 5, 2, 5] {
        let t = rand(&[n, 3], "x");
        let out = exe.run(std::slice::from_ref(&t)).unwrap();
        assert_eq!(out[0].to_vec::<f32>(), t.to_vec::<f32>().iter().map(|v| v.max(0.0)).collect::<Vec<_>>());
    }
    let err = exe.run(&[rand(&[2, 4], "x")]).unwrap_err().to_string();
    assert!(err.contains("dim 1 is 4 but must be 3"), "{err}");
}

#[test]
fn run_into_writes_caller_buffers_and_runs_are_concurrent() {
    let mut g = Graph::new("into");
    let x = g.add_input("x", TensorType::known(DType::F32, &[2, 4, 6, 6]));
    let w = konst(&mut g, "w", &[4, 4, 3, 3]);
    let c = g.add("c", conv(1, 1, 1), &[x, w]).unwrap();
    let y = g.add("y", Op::Unary(Unary::Relu), &[c]).unwrap();
    g.set_outputs(vec![y]);
    let exe = std::sync::Arc::new(Jit::with_threads(2).compile(&g).unwrap());
    let want = Interpreter.prepare(&g).unwrap().run(&[rand(&[2, 4, 6, 6], "x")]).unwrap();
    let mut out = vec![Tensor::zeros(DType::F32, &[2, 4, 6, 6]).unwrap()];
    exe.run_into(&[rand(&[2, 4, 6, 6], "x")], &mut out).unwrap();
    let close = |a: &Tensor| a.to_vec::<f32>().iter().zip(want[0].to_vec::<f32>()).all(|(p, q)| (p - q).abs() < 1e-4);
    assert!(close(&out[0]));
    let mut wrong = vec![Tensor::zeros(DType::F32, &[2, 4]).unwrap()];
    assert!(exe.run_into(&[rand(&[2, 4, 6, 6], "x")], &mut wrong).is_err());
    let handles: Vec<_> = (0..4)
        .map(|i| {
            let exe = exe.clone();
            std::thread::spawn(move || {
                let x = rand(&[2, 4, 6, 6], "x");
                (0..5).all(|_| {
                    let _ = i;
                    crate::Executable::run(&*exe, std::slice::from_ref(&x)).is_ok()
                })
            })
        })
        .collect();
    assert!(handles.into_iter().all(|h| h.join().unwrap()));
}

#[test]
fn bad_inputs_are_errors_not_crashes() {
    let mut g = Graph::new("bad");
    let x = g.add_input("x", TensorType::known(DType::F32, &[2, 3]));
    let y = g.add("y", Op::Unary(Unary::Relu), &[x]).unwrap();
    g.set_outputs(vec![y]);
    let exe = Jit::with_threads(1).prepare(&g).unwrap();
    assert!(exe.run(&[]).is_err());
    assert!(exe.run(&[rand(&[3, 2], "x")]).is_err());
    assert!(exe.run(&[Tensor::zeros(DType::I64, &[2, 3]).unwrap()]).is_err());
}
