//! Every approximation against an f64 reference over a dense sweep of f32 bit patterns
//! (both signs, denormals to the overflow edge) plus the special values, at the bounds the
//! module doc states.

use super::{MathFn, Scalar};

/// erfc in f64 to ~1e-16 relative: 1 − erf below 2.5 (erfc ≥ 4e-4 there), a continued
/// fraction (modified Lentz) above, so the far tail keeps its relative accuracy.
fn erfc64(z: f64) -> f64 {
    if z < 2.5 {
        return 1.0 - kiln_ir::op::erf(z);
    }
    // erfc z = e^{−z²}/√π · 1/(z + (1/2)/(z + 1/(z + (3/2)/(z + …))))
    let tiny = 1e-300;
    let (mut f, mut c, mut d) = (z, z, 0.0);
    for k in 1..500 {
        let a = k as f64 / 2.0;
        d = z + a * d;
        d = if d.abs() < tiny { tiny } else { d };
        c = z + a / c;
        c = if c.abs() < tiny { tiny } else { c };
        d = 1.0 / d;
        let delta = c * d;
        f *= delta;
        if (delta - 1.0).abs() < 1e-16 {
            break;
        }
    }
    (-z * z).exp() / std::f64::consts::PI.sqrt() / f
}

fn reference(f: MathFn, x: f64) -> f64 {
    match f {
        MathFn::Erf if x.is_infinite() => x.signum(),
        MathFn::NormCdf if x.is_infinite() => (x > 0.0) as u8 as f64,
        MathFn::Exp => x.exp(),
        MathFn::Expm1 => x.exp_m1(),
        MathFn::Log => x.ln(),
        MathFn::Tanh => x.tanh(),
        MathFn::Sigmoid => 1.0 / (1.0 + (-x).exp()),
        MathFn::Erf if x.abs() < 2.5 => kiln_ir::op::erf(x),
        MathFn::Erf => (1.0 - erfc64(x.abs())).copysign(x),
        MathFn::NormCdf if x < 0.0 => 0.5 * erfc64(-x / std::f64::consts::SQRT_2),
        MathFn::NormCdf => 1.0 - 0.5 * erfc64(x / std::f64::consts::SQRT_2),
        MathFn::Softplus => x.max(0.0) + (-x.abs()).exp().ln_1p(),
    }
}

/// Sampled f32 values: every `step`-th bit pattern of each sign, and the special values.
fn sweep(step: u32) -> Vec<f32> {
    let mut xs: Vec<f32> = (0..0x7f80_0000u32).step_by(step as usize).map(f32::from_bits).collect();
    xs.extend([1.0e-45, f32::MIN_POSITIVE, 0.5, 1.0, 2.0, 88.72, 88.73, 89.0, -87.3, -103.9, -104.0, 0.921875]);
    let negatives: Vec<f32> = xs.iter().map(|x| -x).collect();
    xs.extend(negatives);
    xs.extend([f32::INFINITY, f32::NEG_INFINITY, f32::NAN, f32::MAX, f32::MIN]);
    xs
}

/// The largest relative error of `f` against its reference where the reference is a normal
/// f32, after checking NaN/∞ agreement, and where it is denormal the relative `bound` plus one
/// denormal step (1.4e-45).
fn max_relative_error(f: MathFn, xs: &[f32], bound: f64) -> (f64, f32) {
    let mut worst = (0.0f64, 0.0f32);
    for &x in xs {
        let got = f.eval(&mut Scalar, x);
        let want = reference(f, x as f64);
        if want.is_nan() {
            assert!(got.is_nan(), "{f:?}({x:e}) = {got:e}, want NaN");
            continue;
        }
        let rounded = want as f32;
        if rounded.is_infinite() {
            assert_eq!(got, rounded, "{f:?}({x:e}) overflows");
            continue;
        }
        if rounded == 0.0 && want == 0.0 {
            // (The sign of zero is checked by `special_values_give_the_limits`.)
            assert_eq!(got, 0.0, "{f:?}({x:e})");
            continue;
        }
        if want.abs() < f32::MIN_POSITIVE as f64 {
            let err = (got as f64 - want).abs();
            assert!(err <= 1.5e-45 + bound * want.abs(), "{f:?}({x:e}) = {got:e}, want {want:e} (denormal)");
            continue;
        }
        let err = (got as f64 - want).abs() / want.abs();
        if err > worst.0 || err.is_nan() {
            worst = (err, x);
        }
    }
    worst
}

#[test]
fn every_function_is_within_its_bound_over_the_whole_range() {
    let xs = sweep(2047);
    for (f, bound) in [
        (MathFn::Exp, 2e-7),
        (MathFn::Expm1, 2.5e-7),
        (MathFn::Log, 2e-7),
        (MathFn::Tanh, 2.5e-7),
        (MathFn::Sigmoid, 2.5e-7),
        (MathFn::Erf, 2.5e-7),
        (MathFn::NormCdf, 6e-7),
        (MathFn::Softplus, 2.5e-7),
    ] {
        let (err, at) = max_relative_error(f, &xs, bound);
        eprintln!("{f:?}: max relative error {err:.3e} at {at:e}");
        assert!(err <= bound, "{f:?}: relative error {err:e} at x = {at:e} exceeds {bound:e}");
    }
}

/// Dense in the ranges where the polynomials switch and the functions bend (steps of 2⁻¹⁶).
#[test]
fn the_transition_regions_are_within_bounds_too() {
    let xs: Vec<f32> = (-16 * 65536..=16 * 65536).map(|i| i as f32 / 65536.0).collect();
    for (f, bound) in [
        (MathFn::Exp, 2e-7),
        (MathFn::Expm1, 2.5e-7),
        (MathFn::Tanh, 2.5e-7),
        (MathFn::Sigmoid, 2.5e-7),
        (MathFn::Erf, 2.5e-7),
        (MathFn::NormCdf, 6e-7),
        (MathFn::Softplus, 2.5e-7),
    ] {
        let (err, at) = max_relative_error(f, &xs, bound);
        eprintln!("{f:?} on [-16, 16]: max relative error {err:.3e} at {at:e}");
        assert!(err <= bound, "{f:?}: relative error {err:e} at x = {at:e} exceeds {bound:e}");
    }
    let positive: Vec<f32> = (1..=16 * 65536).map(|i| i as f32 / 65536.0).collect();
    let (err, at) = max_relative_error(MathFn::Log, &positive, 2e-7);
    assert!(err <= 2e-7, "Log: relative error {err:e} at x = {at:e}");
}

#[test]
fn special_values_give_the_limits() {
    let cases: &[(MathFn, f32, f32)] = &[
        (MathFn::Exp, f32::INFINITY, f32::INFINITY),
        (MathFn::Exp, f32::NEG_INFINITY, 0.0),
        (MathFn::Exp, 0.0, 1.0),
        (MathFn::Exp, -0.0, 1.0),
        (MathFn::Log, 0.0, f32::NEG_INFINITY),
        (MathFn::Log, -0.0, f32::NEG_INFINITY),
        (MathFn::Log, 1.0, 0.0),
        (MathFn::Log, f32::INFINITY, f32::INFINITY),
        (MathFn::Tanh, f32::INFINITY, 1.0),
        (MathFn::Tanh, f32::NEG_INFINITY, -1.0),
        (MathFn::Tanh, -0.0, -0.0),
        (MathFn::Sigmoid, f32::INFINITY, 1.0),
        (MathFn::Sigmoid, f32::NEG_INFINITY, 0.0),
        (MathFn::Sigmoid, 0.0, 0.5),
        (MathFn::Erf, f32::INFINITY, 1.0),
        (MathFn::Erf, f32::NEG_INFINITY, -1.0),
        (MathFn::Erf, -0.0, -0.0),
        (MathFn::NormCdf, f32::INFINITY, 1.0),
        (MathFn::NormCdf, f32::NEG_INFINITY, 0.0),
        (MathFn::NormCdf, 0.0, 0.5),
        (MathFn::Softplus, f32::INFINITY, f32::INFINITY),
        (MathFn::Softplus, f32::NEG_INFINITY, 0.0),
        (MathFn::Expm1, f32::NEG_INFINITY, -1.0),
        (MathFn::Expm1, f32::INFINITY, f32::INFINITY),
        (MathFn::Expm1, -0.0, -0.0),
    ];
    for &(f, x, want) in cases {
        let got = f.eval(&mut Scalar, x);
        assert!(
            got == want && got.is_sign_negative() == want.is_sign_negative(),
            "{f:?}({x:e}) = {got:e}, want {want:e}"
        );
    }
    for f in [
        MathFn::Exp,
        MathFn::Expm1,
        MathFn::Log,
        MathFn::Tanh,
        MathFn::Sigmoid,
        MathFn::Erf,
        MathFn::NormCdf,
        MathFn::Softplus,
    ] {
        assert!(f.eval(&mut Scalar, f32::NAN).is_nan(), "{f:?}(NaN)");
    }
    for x in [-1.0f32, -1e-40, f32::NEG_INFINITY] {
        assert!(MathFn::Log.eval(&mut Scalar, x).is_nan(), "log({x:e}) is NaN");
    }
}
