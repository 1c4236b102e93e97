//! Output comparison as the ONNX backend test runner does it: floats within `atol + rtol·|expected|`
//! with NaN equal to NaN, integers and bools exactly, shapes and dtypes exactly.

use kiln_ir::Tensor;

/// Checks `got` against `expected`; the error says where and by how much they differ.
pub fn compare(expected: &Tensor, got: &Tensor, rtol: f64, atol: f64) -> Result<(), String> {
    if expected.dtype() != got.dtype() {
        return Err(format!("dtype {} expected, got {}", expected.dtype(), got.dtype()));
    }
    if expected.shape() != got.shape() {
        return Err(format!("shape {:?} expected, got {:?}", expected.shape(), got.shape()));
    }
    let exact = !expected.dtype().is_float();
    let (e, g) = (expected.to_f64_vec(), got.to_f64_vec());
    let mut worst: Option<(usize, f64)> = None;
    let mut bad = 0usize;
    for (i, (&x, &y)) in e.iter().zip(&g).enumerate() {
        let ok = if exact {
            x == y
        } else if x.is_nan() || y.is_nan() {
            x.is_nan() && y.is_nan()
        } else if x.is_infinite() || y.is_infinite() {
            x == y
        } else {
            (x - y).abs() <= atol + rtol * x.abs()
        };
        if !ok {
            bad += 1;
            let diff = if x.is_nan() || y.is_nan() { f64::INFINITY } else { (x - y).abs() };
            if worst.is_none_or(|(_, d)| diff > d) {
                worst = Some((i, diff));
            }
        }
    }
    match worst {
        None => Ok(()),
        Some((i, d)) => Err(format!(
            "{bad} of {} elements differ; worst at flat index {i}: expected {}, got {} (|diff| {d:.3e})",
            e.len(),
            e[i],
            g[i]
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tolerances_nan_and_exact_ints() {
        let a = Tensor::vector(vec![1.0f32, f32::NAN, 100.0]);
        assert!(compare(&a, &Tensor::vector(vec![1.0005f32, f32::NAN, 100.05]), 1e-3, 1e-7).is_ok());
        let err = compare(&a, &Tensor::vector(vec![1.01f32, f32::NAN, 100.0]), 1e-3, 1e-7).unwrap_err();
        assert!(err.contains("flat index 0"), "{err}");
        assert!(compare(&a, &Tensor::vector(vec![1.0f32, 0.0, 100.0]), 1e-3, 1e-7).is_err());
        assert!(compare(&Tensor::vector(vec![3i64]), &Tensor::vector(vec![4i64]), 1.0, 1.0).is_err());
        assert!(compare(&Tensor::vector(vec![3i64]), &Tensor::vector(vec![3i32]), 1.0, 1.0).is_err());
    }
}
