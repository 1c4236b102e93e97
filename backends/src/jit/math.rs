//! Vectorized transcendentals — exp, expm1, log, tanh, sigmoid, erf, the normal CDF Φ and
//! softplus — written once, over the [`Lanes`] trait, as range reductions and polynomials in f32,
//! so generated kernels get them inline as Cranelift IR (`codegen`, f32x4, no calls) and tests run
//! the very same arithmetic on scalars ([`Scalar`]) against an f64 reference.
//!
//! Error bounds, relative to the exact (f64) value, checked over dense sweeps by the tests
//! (measured maxima in brackets); where a result is denormal (below 2⁻¹²⁶, so it has fewer bits)
//! the bound is the relative one plus one denormal step, 1.4e-45:
//! - `exp`: ≤ 2e-7 (Cody–Waite reduction by ln 2, degree-6 polynomial, Cephes `expf`).
//! - `log`: ≤ 2e-7 (Cephes `logf`: mantissa in [√½, √2), degree-8 polynomial); denormal
//!   inputs are scaled first; log(0) = −∞, log(x<0) = NaN.
//! - `expm1`: ≤ 2.5e-7 (Taylor polynomial for |x| < ½, `exp(x) − 1` outside).
//! - `tanh`: ≤ 2.5e-7 (odd polynomial below 0.625, `1 − 2/(e^{2|x|}+1)` above).
//! - `sigmoid`: ≤ 2.5e-7 for normal results (`q/(1+e^{−|x|})`, q = 1 or e^{−|x|}).
//! - `erf`: ≤ 2.5e-7 (odd polynomial of degree 13 below 0.921875, fitted by weighted least
//!   squares; above, `1 − erfc` with Numerical Recipes' `erfcc` (fractional error 1.2e-7), its
//!   `−z²` carried as an exact hi/lo pair into the exponential).
//! - `ncdf` (Φ, for the erf form of GELU): ≤ 6e-7 [5.5e-7, at x ≈ −1.3 just past the split,
//!   where `erfcc`'s polynomial, rounded in f32, dominates]. The negative
//!   tail is computed from erfc directly, with x²/2 exact, so `x·Φ(x)` keeps its relative
//!   accuracy down to denormals (1 + erf would cancel: at x = −7.5 the interpreter's f64
//!   formula is off by 3e-4).
//! - `softplus`: ≤ 2.5e-7 (`max(x,0) + log1p(e^{−|x|})`, log1p with its rounding corrected).
//!
//! NaN propagates through every function; ±∞ and ±0 give the limits the IR's definitions give.

/// Lane-wise f32 operations the approximations are written in. `F` holds f32 lanes, `I` i32
/// lanes (bit patterns, exponents), `M` a lane mask. `min`/`max` propagate NaN.
pub(crate) trait Lanes {
    type F: Copy;
    type I: Copy;
    type M: Copy;
    fn splat(&mut self, c: f32) -> Self::F;
    fn add(&mut self, a: Self::F, b: Self::F) -> Self::F;
    fn sub(&mut self, a: Self::F, b: Self::F) -> Self::F;
    fn mul(&mut self, a: Self::F, b: Self::F) -> Self::F;
    fn div(&mut self, a: Self::F, b: Self::F) -> Self::F;
    /// `a·b + c`, fused where the CPU can.
    fn fma(&mut self, a: Self::F, b: Self::F, c: Self::F) -> Self::F;
    fn min(&mut self, a: Self::F, b: Self::F) -> Self::F;
    fn max(&mut self, a: Self::F, b: Self::F) -> Self::F;
    fn abs(&mut self, a: Self::F) -> Self::F;
    /// Round half to even.
    fn round(&mut self, a: Self::F) -> Self::F;
    /// `a < b` (false when either is NaN).
    fn lt(&mut self, a: Self::F, b: Self::F) -> Self::M;
    fn eq(&mut self, a: Self::F, b: Self::F) -> Self::M;
    fn is_nan(&mut self, a: Self::F) -> Self::M;
    fn select(&mut self, m: Self::M, t: Self::F, e: Self::F) -> Self::F;
    /// Toward zero, saturating (NaN → 0).
    fn to_int(&mut self, a: Self::F) -> Self::I;
    fn to_float(&mut self, a: Self::I) -> Self::F;
    fn bits(&mut self, a: Self::F) -> Self::I;
    fn bitcast_float(&mut self, a: Self::I) -> Self::F;
    fn iconst(&mut self, c: i32) -> Self::I;
    fn iadd(&mut self, a: Self::I, b: Self::I) -> Self::I;
    fn isub(&mut self, a: Self::I, b: Self::I) -> Self::I;
    fn and(&mut self, a: Self::I, b: Self::I) -> Self::I;
    fn or(&mut self, a: Self::I, b: Self::I) -> Self::I;
    fn shl(&mut self, a: Self::I, n: u8) -> Self::I;
    /// Logical shift right.
    fn ushr(&mut self, a: Self::I, n: u8) -> Self::I;
}

/// The functions this module approximates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum MathFn {
    Exp,
    Expm1,
    Log,
    Tanh,
    Sigmoid,
    Erf,
    /// The standard normal CDF Φ(x) = ½(1 + erf(x/√2)).
    NormCdf,
    /// `ln(1 + eˣ)`
    Softplus,
}

impl MathFn {
    /// The function on lanes `x`.
    pub(crate) fn eval<L: Lanes>(self, l: &mut L, x: L::F) -> L::F {
        match self {
            MathFn::Exp => exp(l, x, None),
            MathFn::Expm1 => expm1(l, x),
            MathFn::Log => log(l, x),
            MathFn::Tanh => tanh(l, x),
            MathFn::Sigmoid => sigmoid(l, x),
            MathFn::Erf => erf(l, x),
            MathFn::NormCdf => norm_cdf(l, x),
            MathFn::Softplus => softplus(l, x),
        }
    }
}

/// `c[0]·xⁿ + c[1]·xⁿ⁻¹ + … + c[n]`
fn horner<L: Lanes>(l: &mut L, x: L::F, c: &[f32]) -> L::F {
    let mut p = l.splat(c[0]);
    for &k in &c[1..] {
        let k = l.splat(k);
        p = l.fma(p, x, k);
    }
    p
}

fn add_c<L: Lanes>(l: &mut L, a: L::F, c: f32) -> L::F {
    let c = l.splat(c);
    l.add(a, c)
}

fn mul_c<L: Lanes>(l: &mut L, a: L::F, c: f32) -> L::F {
    let c = l.splat(c);
    l.mul(a, c)
}

/// `|mag|` with the sign of `sign`.
fn copysign<L: Lanes>(l: &mut L, mag: L::F, sign: L::F) -> L::F {
    let (m, s) = (l.bits(mag), l.bits(sign));
    let (abs_mask, sign_mask) = (l.iconst(i32::MAX), l.iconst(i32::MIN));
    let (m, s) = (l.and(m, abs_mask), l.and(s, sign_mask));
    let r = l.or(m, s);
    l.bitcast_float(r)
}

/// 2ᵏ for integer lanes `k` in [−126, 127].
fn pow2<L: Lanes>(l: &mut L, k: L::I) -> L::F {
    let bias = l.iconst(127);
    let e = l.iadd(k, bias);
    let e = l.shl(e, 23);
    l.bitcast_float(e)
}

const LOG2E: f32 = std::f32::consts::LOG2_E;
/// ln 2 = LN2_HI + LN2_LO, LN2_HI with few mantissa bits so `n·LN2_HI` is exact.
const LN2_HI: f32 = 0.693_359_4;
const LN2_LO: f32 = -2.121_944_4e-4;
/// Cephes `expf`: eʳ ≈ 1 + r + r²·P(r) on |r| ≤ ½ln 2.
const EXP_P: [f32; 6] = [1.987_569_1e-4, 1.398_199_9e-3, 8.333_452e-3, 4.166_579_6e-2, 1.666_666_5e-1, 5e-1];

/// e^(x + lo), `lo` a small correction to `x` (an exact product's low part).
fn exp<L: Lanes>(l: &mut L, x: L::F, lo: Option<L::F>) -> L::F {
    // Below −104 the result is 0 even as a denormal; above 88.8 it is ∞ (2⁶⁴·2⁶⁴·y).
    let (lo_x, hi_x) = (l.splat(-104.0), l.splat(88.8));
    let x = l.max(x, lo_x);
    let x = l.min(x, hi_x);
    let n = mul_c(l, x, LOG2E);
    let n = l.round(n);
    let (c_hi, c_lo) = (l.splat(-LN2_HI), l.splat(-LN2_LO));
    let r = l.fma(n, c_hi, x);
    let mut r = l.fma(n, c_lo, r);
    if let Some(lo) = lo {
        r = l.add(r, lo);
    }
    let z = l.mul(r, r);
    let p = horner(l, r, &EXP_P);
    let y = l.fma(p, z, r);
    let y = add_c(l, y, 1.0);
    // y·2ⁿ as y·2^h·2^(n−h), h = trunc(n/2), so denormal results round once and ∞ comes out.
    let n_half = mul_c(l, n, 0.5);
    let h = l.to_int(n_half);
    let ni = l.to_int(n);
    let rest = l.isub(ni, h);
    let (s1, s2) = (pow2(l, h), pow2(l, rest));
    let y = l.mul(y, s1);
    l.mul(y, s2)
}

/// 1/k! for k = 9 down to 2 (the Taylor series of (eˣ − 1 − x)/x²).
const EXPM1_TAYLOR: [f32; 8] =
    [1.0 / 362_880.0, 1.0 / 40_320.0, 1.0 / 5_040.0, 1.0 / 720.0, 1.0 / 120.0, 1.0 / 24.0, 1.0 / 6.0, 0.5];

/// eˣ − 1 without cancellation near 0.
fn expm1<L: Lanes>(l: &mut L, x: L::F) -> L::F {
    // x·(1 + x·P(x)) keeps the sign of a zero.
    let p = horner(l, x, &EXPM1_TAYLOR);
    let one = l.splat(1.0);
    let q = l.fma(p, x, one);
    let small = l.mul(x, q);
    let e = exp(l, x, None);
    let big = add_c(l, e, -1.0);
    let a = l.abs(x);
    let half = l.splat(0.5);
    let near = l.lt(a, half);
    l.select(near, small, big)
}

const SQRT_HALF: f32 = std::f32::consts::FRAC_1_SQRT_2;
/// Cephes `logf`: ln(1+m) ≈ m − m²/2 + m³·P(m) on m ∈ [√½ − 1, √2 − 1].
const LOG_P: [f32; 9] = [
    7.037_683_6e-2,
    -1.151_461e-1,
    1.167_699_9e-1,
    -1.242_014_1e-1,
    1.424_932_3e-1,
    -1.666_805_8e-1,
    2.000_071_4e-1,
    -2.499_999_4e-1,
    3.333_333e-1,
];

fn log<L: Lanes>(l: &mut L, x: L::F) -> L::F {
    // Denormals are scaled into the normal range first.
    let min_normal = l.splat(f32::MIN_POSITIVE);
    let tiny = l.lt(x, min_normal);
    let scaled = mul_c(l, x, 8_388_608.0);
    let xs = l.select(tiny, scaled, x);
    let (adj_tiny, adj_normal) = (l.splat(-23.0), l.splat(0.0));
    let adj = l.select(tiny, adj_tiny, adj_normal);
    // x = m·2ᵉ with m ∈ [½, 1).
    let bits = l.bits(xs);
    let exp_bits = l.ushr(bits, 23);
    let bias = l.iconst(126);
    let e = l.isub(exp_bits, bias);
    let e = l.to_float(e);
    let e = l.add(e, adj);
    let mant_mask = l.iconst(0x007f_ffff);
    let half_bits = l.iconst(0x3f00_0000);
    let m = l.and(bits, mant_mask);
    let m = l.or(m, half_bits);
    let m = l.bitcast_float(m);
    // m < √½: use 2m − 1 and e − 1, so the argument of the polynomial is in [√½ − 1, √2 − 1].
    let sqrt_half = l.splat(SQRT_HALF);
    let low = l.lt(m, sqrt_half);
    let one = l.splat(1.0);
    let m2 = l.add(m, m);
    let m_low = l.sub(m2, one);
    let m_high = l.sub(m, one);
    let m = l.select(low, m_low, m_high);
    let e_low = l.sub(e, one);
    let e = l.select(low, e_low, e);
    let z = l.mul(m, m);
    let p = horner(l, m, &LOG_P);
    let p = l.mul(p, m);
    let y = l.mul(p, z);
    let (c_lo, c_half) = (l.splat(LN2_LO), l.splat(-0.5));
    let y = l.fma(e, c_lo, y);
    let y = l.fma(z, c_half, y);
    let r = l.add(m, y);
    let c_hi = l.splat(LN2_HI);
    let r = l.fma(e, c_hi, r);
    // Special values: +∞ → +∞, 0 → −∞, negative → NaN, NaN → NaN.
    let (inf, zero) = (l.splat(f32::INFINITY), l.splat(0.0));
    let is_inf = l.eq(x, inf);
    let r = l.select(is_inf, inf, r);
    let is_zero = l.eq(x, zero);
    let neg_inf = l.splat(f32::NEG_INFINITY);
    let r = l.select(is_zero, neg_inf, r);
    let negative = l.lt(x, zero);
    let nan = l.splat(f32::NAN);
    let r = l.select(negative, nan, r);
    let is_nan = l.is_nan(x);
    l.select(is_nan, x, r)
}

/// Cephes `tanhf`: tanh x ≈ x + x³·P(x²) on |x| < 0.625.
const TANH_P: [f32; 5] = [-5.704_988_7e-3, 2.063_909e-2, -5.373_971_6e-2, 1.333_144_2e-1, -3.333_328e-1];

fn tanh<L: Lanes>(l: &mut L, x: L::F) -> L::F {
    // x·(1 + x²·P(x²)) keeps the sign of a zero.
    let z = l.mul(x, x);
    let p = horner(l, z, &TANH_P);
    let one = l.splat(1.0);
    let q = l.fma(p, z, one);
    let small = l.mul(x, q);
    // 1 − 2/(e^{2|x|} + 1); tanh(10) rounds to 1.
    let a = l.abs(x);
    let a2 = l.add(a, a);
    let cap = l.splat(20.0);
    let a2 = l.min(a2, cap);
    let e = exp(l, a2, None);
    let d = add_c(l, e, 1.0);
    let two = l.splat(2.0);
    let q = l.div(two, d);
    let one = l.splat(1.0);
    let big = l.sub(one, q);
    let big = copysign(l, big, x);
    let bound = l.splat(0.625);
    let near = l.lt(a, bound);
    l.select(near, small, big)
}

fn sigmoid<L: Lanes>(l: &mut L, x: L::F) -> L::F {
    // 1/(1 + e^{−|x|}) for x ≥ 0, e^{−|x|}/(1 + e^{−|x|}) below: no cancellation, one division.
    let a = l.abs(x);
    let zero = l.splat(0.0);
    let neg_a = l.sub(zero, a);
    let e = exp(l, neg_a, None);
    let d = add_c(l, e, 1.0);
    let negative = l.lt(x, zero);
    let one = l.splat(1.0);
    let q = l.select(negative, e, one);
    l.div(q, d)
}

/// Where erf switches from its odd polynomial to `1 − erfc`.
const ERF_SPLIT: f32 = 0.921_875;
/// erf(x)/x ≈ P(x²) on |x| < [`ERF_SPLIT`] (weighted least squares, error 4e-10).
const ERF_P: [f32; 7] = [
    8.370_092e-5,
    -8.142_702e-4,
    5.201_032e-3,
    -2.685_939_8e-2,
    1.128_369_5e-1,
    -3.761_263_4e-1,
    std::f32::consts::FRAC_2_SQRT_PI,
];
/// Numerical Recipes' `erfcc`: erfc z = t·exp(−z² + P(t)), t = 1/(1 + z/2), z ≥ 0.
const ERFC_P: [f32; 10] = [
    0.170_872_77,
    -0.822_152_23,
    1.488_515_9,
    -1.135_204,
    0.278_868_07,
    -0.186_288_06,
    0.096_784_18,
    0.374_091_96,
    1.000_023_7,
    -1.265_512_2,
];

/// `scale`·erfc z for z ≥ 0, given z² = `w_hi + w_lo` exactly (scaled before the last product,
/// so a denormal result is rounded once).
fn erfc_tail<L: Lanes>(l: &mut L, z: L::F, w_hi: L::F, w_lo: L::F, scale: f32) -> L::F {
    let one = l.splat(1.0);
    let half = l.splat(0.5);
    let d = l.fma(z, half, one);
    let t = l.div(one, d);
    let p = horner(l, t, &ERFC_P);
    // p − w_hi as hi + lo (TwoSum), then − w_lo.
    let s = l.sub(p, w_hi);
    let pp = l.add(s, w_hi);
    let ww = l.sub(s, pp);
    let e1 = l.sub(p, pp);
    let e2 = l.add(w_hi, ww);
    let err = l.add(e1, e2);
    let lo = l.sub(err, w_lo);
    let e = exp(l, s, Some(lo));
    let t = if scale == 1.0 { t } else { mul_c(l, t, scale) };
    l.mul(t, e)
}

/// `x·P(x²)` with [`ERF_P`]: erf on |x| < [`ERF_SPLIT`].
fn erf_small<L: Lanes>(l: &mut L, x: L::F) -> L::F {
    let z = l.mul(x, x);
    let p = horner(l, z, &ERF_P);
    l.mul(x, p)
}

/// `a²` as an exact `(hi, lo)` pair, each scaled by `scale` (a power of two).
fn square_parts<L: Lanes>(l: &mut L, a: L::F, scale: f32) -> (L::F, L::F) {
    let hi = l.mul(a, a);
    let zero = l.splat(0.0);
    let neg_hi = l.sub(zero, hi);
    let lo = l.fma(a, a, neg_hi);
    (mul_c(l, hi, scale), mul_c(l, lo, scale))
}

fn erf<L: Lanes>(l: &mut L, x: L::F) -> L::F {
    let small = erf_small(l, x);
    let a = l.abs(x);
    // erf(10) is 1 in f32; the cap keeps z² finite.
    let cap = l.splat(10.0);
    let z = l.min(a, cap);
    let (w_hi, w_lo) = square_parts(l, z, 1.0);
    let c = erfc_tail(l, z, w_hi, w_lo, 1.0);
    let one = l.splat(1.0);
    let big = l.sub(one, c);
    let big = copysign(l, big, x);
    let split = l.splat(ERF_SPLIT);
    let near = l.lt(a, split);
    l.select(near, small, big)
}

fn norm_cdf<L: Lanes>(l: &mut L, x: L::F) -> L::F {
    let z = mul_c(l, x, SQRT_HALF);
    let e = erf_small(l, z);
    let half = l.splat(0.5);
    let small = l.fma(e, half, half);
    // Tails from erfc(|x|/√2) with x²/2 exact; Φ(−15) is 0 in f32, the cap keeps x² finite.
    let a = l.abs(x);
    let cap = l.splat(15.0);
    let a = l.min(a, cap);
    let za = mul_c(l, a, SQRT_HALF);
    let (w_hi, w_lo) = square_parts(l, a, 0.5);
    let c = erfc_tail(l, za, w_hi, w_lo, 0.5);
    let one = l.splat(1.0);
    let upper = l.sub(one, c);
    let zero = l.splat(0.0);
    let negative = l.lt(x, zero);
    let big = l.select(negative, c, upper);
    let az = l.abs(z);
    let split = l.splat(ERF_SPLIT);
    let near = l.lt(az, split);
    l.select(near, small, big)
}

fn softplus<L: Lanes>(l: &mut L, x: L::F) -> L::F {
    // max(x, 0) + log1p(u), u = e^{−|x|} ∈ (0, 1]; log1p(u) = log(w) − ((w − 1) − u)/w, w = 1 + u.
    let a = l.abs(x);
    let zero = l.splat(0.0);
    let neg_a = l.sub(zero, a);
    let u = exp(l, neg_a, None);
    let w = add_c(l, u, 1.0);
    let lw = log(l, w);
    let wm1 = add_c(l, w, -1.0);
    let c = l.sub(wm1, u);
    let c = l.div(c, w);
    let lp = l.sub(lw, c);
    let pos = l.max(x, zero);
    l.add(pos, lp)
}

/// The lanes as plain `f32`s: the reference the tests measure (and the arithmetic generated
/// code performs, lane by lane, when the CPU has FMA).
#[cfg(test)]
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Scalar;

#[cfg(test)]
impl Lanes for Scalar {
    type F = f32;
    type I = i32;
    type M = bool;
    fn splat(&mut self, c: f32) -> f32 {
        c
    }
    fn add(&mut self, a: f32, b: f32) -> f32 {
        a + b
    }
    fn sub(&mut self, a: f32, b: f32) -> f32 {
        a - b
    }
    fn mul(&mut self, a: f32, b: f32) -> f32 {
        a * b
    }
    fn div(&mut self, a: f32, b: f32) -> f32 {
        a / b
    }
    fn fma(&mut self, a: f32, b: f32, c: f32) -> f32 {
        a.mul_add(b, c)
    }
    fn min(&mut self, a: f32, b: f32) -> f32 {
        if a.is_nan() || b.is_nan() {
            f32::NAN
        } else {
            a.min(b)
        }
    }
    fn max(&mut self, a: f32, b: f32) -> f32 {
        if a.is_nan() || b.is_nan() {
            f32::NAN
        } else {
            a.max(b)
        }
    }
    fn abs(&mut self, a: f32) -> f32 {
        a.abs()
    }
    fn round(&mut self, a: f32) -> f32 {
        a.round_ties_even()
    }
    fn lt(&mut self, a: f32, b: f32) -> bool {
        a < b
    }
    fn eq(&mut self, a: f32, b: f32) -> bool {
        a == b
    }
    fn is_nan(&mut self, a: f32) -> bool {
        a.is_nan()
    }
    fn select(&mut self, m: bool, t: f32, e: f32) -> f32 {
        if m {
            t
        } else {
            e
        }
    }
    fn to_int(&mut self, a: f32) -> i32 {
        a as i32
    }
    fn to_float(&mut self, a: i32) -> f32 {
        a as f32
    }
    fn bits(&mut self, a: f32) -> i32 {
        a.to_bits() as i32
    }
    fn bitcast_float(&mut self, a: i32) -> f32 {
        f32::from_bits(a as u32)
    }
    fn iconst(&mut self, c: i32) -> i32 {
        c
    }
    fn iadd(&mut self, a: i32, b: i32) -> i32 {
        a.wrapping_add(b)
    }
    fn isub(&mut self, a: i32, b: i32) -> i32 {
        a.wrapping_sub(b)
    }
    fn and(&mut self, a: i32, b: i32) -> i32 {
        a & b
    }
    fn or(&mut self, a: i32, b: i32) -> i32 {
        a | b
    }
    fn shl(&mut self, a: i32, n: u8) -> i32 {
        a << n
    }
    fn ushr(&mut self, a: i32, n: u8) -> i32 {
        ((a as u32) >> n) as i32
    }
}

#[cfg(test)]
#[path = "math_tests.rs"]
mod tests;
