//! Every activation and math map the JIT computes inline, against the interpreter (the IR's f64
//! definitions) element by element: odd lengths (size 1, vector tails), arguments across the
//! whole interesting range with ±0, ±∞ and NaN, alone and fused after a convolution; and
//! each runs natively (no interpreter step in the plan).

use super::{Engine, Jit};
use crate::{interp::Interpreter, Backend};
use kiln_ir::op::{Binary, Conv, Unary, Window};
use kiln_ir::{DType, Graph, Op, Tensor, TensorType};

/// The maps under test; every one must lower to a generated kernel.
fn activations() -> Vec<Unary> {
    use Unary::*;
    vec![
        Exp,
        Log,
        Tanh,
        Sigmoid,
        Erf,
        Softplus,
        Mish,
        Gelu { tanh_approx: false },
        Gelu { tanh_approx: true },
        Elu { alpha: 0.7 },
        Selu { alpha: 1.673_263_2, gamma: 1.050_701 },
        Celu { alpha: 1.3 },
        HardSigmoid { alpha: 0.2, beta: 0.5 },
        HardSwish,
        LeakyRelu { alpha: 0.01 },
        Relu,
        Softsign,
    ]
}

/// `n` arguments spread over [−30, 30] (and into (0, 60] for Log), the first few special.
fn arguments(n: usize, positive: bool) -> Vec<f32> {
    let special = [0.0, -0.0, f32::INFINITY, f32::NEG_INFINITY, f32::NAN, 1e-40, -1e-40];
    (0..n)
        .map(|i| match special.get(i) {
            Some(&s) if n > special.len() => s,
            _ => {
                let t = (i as f32 + 0.5) / n as f32;
                if positive {
                    60.0 * t
                } else {
                    60.0 * t - 30.0
                }
            }
        })
        .collect()
}

/// Per element: both NaN, or equal, or within `rel` relative to the reference (plus the
/// reference's own error floor, see below).
fn assert_close(what: &str, got: &[f32], want: &[f32], xs: &[f32], rel: f64) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for ((&g, &w), &x) in got.iter().zip(want).zip(xs) {
        if w.is_nan() || g.is_nan() {
            assert!(w.is_nan() && g.is_nan(), "{what}({x:e}) = {g:e}, want {w:e}");
            continue;
        }
        if g == w {
            continue;
        }
        let err = (g as f64 - w as f64).abs();
        // The interpreter's erf-GELU is ½x(1 + erf(x/√2)) in f64: in the negative tail it is
        // itself only accurate to about 1e-16·|x| (the JIT computes Φ from erfc there).
        let floor = 2e-16 * (x.abs() as f64).max(1.0);
        let ok = err <= rel * (w as f64).abs() + floor;
        assert!(ok, "{what}({x:e}) = {g:e}, want {w:e}");
    }
}

fn run(g: &Graph, x: &Tensor) -> (Vec<f32>, Vec<f32>) {
    let want = Interpreter.prepare(g).unwrap().run(std::slice::from_ref(x)).unwrap();
    let got = Jit::with_threads(1).prepare(g).unwrap().run(std::slice::from_ref(x)).unwrap();
    (got[0].to_vec::<f32>(), want[0].to_vec::<f32>())
}

fn engines(g: &Graph) -> Vec<Engine> {
    Jit::with_threads(1).compile(g).unwrap().report().steps.iter().map(|s| s.engine).collect()
}

#[test]
fn every_activation_matches_the_interpreter_on_odd_lengths() {
    for op in activations() {
        for n in [1, 3, 4, 5, 17, 1003] {
            let mut g = Graph::new("act");
            let mut xs = arguments(n, op == Unary::Log);
            if matches!(op, Unary::Relu | Unary::Celu { .. }) {
                // The interpreter's `f64::max(NaN, 0)` is 0; generated code propagates NaN.
                xs.retain(|x| !x.is_nan());
            }
            let x = g.add_input("x", TensorType::known(DType::F32, &[xs.len()]));
            let y = g.add("y", Op::Unary(op), &[x]).unwrap();
            g.set_outputs(vec![y]);
            let (got, want) = run(&g, &Tensor::vector(xs.clone()));
            // tanh-GELU's argument u = √(2/π)(x + 0.044715x³) is rounded in f32 (the interpreter
            // forms it in f64), and its negative tail multiplies that error by |2u| (≈ 8 at −5).
            let rel = if op == (Unary::Gelu { tanh_approx: true }) { 4e-6 } else { 1e-6 };
            assert_close(&format!("{op:?} (n = {n})"), &got, &want, &xs, rel);
            assert_eq!(engines(&g), vec![Engine::Cranelift], "{op:?} runs natively");
        }
    }
}

#[test]
fn silu_as_sigmoid_times_x_is_one_kernel() {
    let mut g = Graph::new("silu");
    let x = g.add_input("x", TensorType::known(DType::F32, &[2, 3, 7]));
    let s = g.add("s", Op::Unary(Unary::Sigmoid), &[x]).unwrap();
    let y = g.add("y", Op::Binary(Binary::Mul), &[x, s]).unwrap();
    g.set_outputs(vec![y]);
    let xs = arguments(42, false);
    let (got, want) = run(&g, &Tensor::from_vec(&[2, 3, 7], xs.clone()).unwrap());
    assert_close("silu", &got, &want, &xs, 1e-6);
    assert_eq!(engines(&g), vec![Engine::Cranelift]);
}

#[test]
fn pow_by_a_constant_is_multiplies_and_square_roots() {
    for (e, positive) in [
        (2.0f32, false),
        (3.0, false),
        (4.0, false),
        (1.0, false),
        (0.5, true),
        (-1.0, false),
        (-0.5, true),
        (-2.0, false),
        (1.7, true),
    ] {
        let mut g = Graph::new("pow");
        let x = g.add_input("x", TensorType::known(DType::F32, &[13]));
        let k = g.add_const("e", Tensor::scalar(e));
        let y = g.add("y", Op::Binary(Binary::Pow), &[x, k]).unwrap();
        g.set_outputs(vec![y]);
        // At −∞ these give NaN where pow gives +∞ or +0 (see `Program::pow_const`).
        let xs: Vec<f32> =
            arguments(13, positive).into_iter().map(|x| if x == f32::NEG_INFINITY { -3.0 } else { x }).collect();
        let (got, want) = run(&g, &Tensor::vector(xs.clone()));
        assert_close(&format!("x^{e}"), &got, &want, &xs, 1e-6);
        assert_eq!(engines(&g), vec![Engine::Cranelift], "x^{e}");
    }
}

#[test]
fn activations_fuse_after_a_convolution() {
    for op in activations().into_iter().filter(|&op| op != Unary::Log) {
        let mut g = Graph::new("conv-act");
        let x = g.add_input("x", TensorType::known(DType::F32, &[1, 3, 5, 7]));
        let w = g.add_const("w", Tensor::seeded(DType::F32, &[4, 3, 3, 3], "w", 0.0, 1.0).unwrap());
        let b = g.add_const("b", Tensor::seeded(DType::F32, &[4], "b", 0.0, 1.0).unwrap());
        let conv = Op::Conv(Conv {
            window: Window { kernel_shape: None, strides: vec![1; 2], pads: vec![1; 4], ..Default::default() },
            group: 1,
        });
        let c = g.add("c", conv, &[x, w, b]).unwrap();
        let y = g.add("y", Op::Unary(op), &[c]).unwrap();
        g.set_outputs(vec![y]);
        let input = Tensor::seeded(DType::F32, &[1, 3, 5, 7], "x", 0.0, 2.0).unwrap();
        let (got, want) = run(&g, &input);
        // The convolution sums in another order than the interpreter: compare to the largest.
        let scale = want.iter().fold(1e-6f32, |m, v| m.max(v.abs()));
        let err = got.iter().zip(&want).fold(0f32, |m, (a, b)| m.max((a - b).abs())) / scale;
        assert!(err <= 1e-5, "conv + {op:?}: relative error {err:e}");
        assert_eq!(engines(&g), vec![Engine::Gemm], "conv + {op:?} is one step");
    }
}
