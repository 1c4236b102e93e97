//! What `kiln run` says about a classifier's output: the predicted class of each row of a
//! `[N, C]` float output (its argmax), and, given a `.npy` of integer labels, the accuracy.

use crate::{npy, KilnError};
use kiln_ir::Tensor;
use std::path::Path;

/// The rows' predicted classes, if `t` looks like a batch of class scores (`[N, C]`, float,
/// `C >= 2`). A row with a NaN predicts nothing.
pub fn predicted(t: &Tensor) -> Option<Vec<Option<usize>>> {
    let &[rows, classes] = t.shape() else { return None };
    if !t.dtype().is_float() || classes < 2 {
        return None;
    }
    let values = t.to_f64_vec();
    Some(
        (0..rows)
            .map(|r| {
                let row = &values[r * classes..(r + 1) * classes];
                if row.iter().any(|v| v.is_nan()) {
                    return None;
                }
                row.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).map(|(i, _)| i)
            })
            .collect(),
    )
}

/// How many predictions match their label.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Accuracy {
    pub correct: usize,
    pub total: usize,
}

impl Accuracy {
    pub fn share(self) -> f64 {
        if self.total == 0 {
            0.0
        } else {
            self.correct as f64 / self.total as f64
        }
    }
}

/// Reads integer labels (any integer dtype, one per row) from a `.npy` file.
pub fn read_labels(path: &Path) -> Result<Vec<i64>, KilnError> {
    let bad = |reason: String| KilnError::Labels { path: path.to_path_buf(), reason };
    let bytes =
        std::fs::read(path).map_err(|source| KilnError::Io { action: "read", path: path.to_path_buf(), source })?;
    let t = npy::from_bytes(&bytes).map_err(|e| bad(e.to_string()))?;
    if !t.dtype().is_int() || t.shape().len() != 1 {
        return Err(bad(format!("labels must be a 1-D integer array, found {}", t.tensor_type())));
    }
    Ok(t.to_i64_vec())
}

/// Scores `predicted` against `labels` (one per row).
pub fn score(predicted: &[Option<usize>], labels: &[i64], path: &Path) -> Result<Accuracy, KilnError> {
    if predicted.len() != labels.len() {
        return Err(KilnError::Labels {
            path: path.to_path_buf(),
            reason: format!("{} labels for an output of {} rows", labels.len(), predicted.len()),
        });
    }
    let correct = predicted.iter().zip(labels).filter(|(p, &l)| p.is_some_and(|p| p as i64 == l)).count();
    Ok(Accuracy { correct, total: labels.len() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argmax_per_row_and_nan_rows_predict_nothing() {
        let t = Tensor::from_vec::<f32>(&[3, 3], vec![0.1, 0.7, 0.2, 5.0, -1.0, 4.0, f32::NAN, 1.0, 0.0]).unwrap();
        assert_eq!(predicted(&t), Some(vec![Some(1), Some(0), None]));
        assert_eq!(predicted(&Tensor::from_vec::<f32>(&[4], vec![0.0; 4]).unwrap()), None, "not [N, C]");
        assert_eq!(predicted(&Tensor::from_vec::<f32>(&[4, 1], vec![0.0; 4]).unwrap()), None, "one class");
    }

    #[test]
    fn accuracy_counts_matches_and_checks_lengths() {
        let p = [Some(1), Some(0), None, Some(2)];
        let a = score(&p, &[1, 1, 0, 2], Path::new("l.npy")).unwrap();
        assert_eq!(a, Accuracy { correct: 2, total: 4 });
        assert_eq!(a.share(), 0.5);
        let err = score(&p, &[1, 2], Path::new("l.npy")).unwrap_err().to_string();
        assert!(err.contains("l.npy"), "{err}");
    }
}
