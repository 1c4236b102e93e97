//! Writing results without ever leaving a partial file: everything is computed first, each file
//! goes to a temporary name in its target directory, and only when all are written are they
//! renamed into place.

use crate::KilnError;
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// A file name for a value: characters outside `[A-Za-z0-9._-]` become `_`; a name already
/// taken in `used` gets a `_2`, `_3`, ... suffix. `ext` is appended (`"npy"`).
pub fn file_name(value: &str, ext: &str, used: &mut HashSet<String>) -> String {
    let stem: String = value
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') { c } else { '_' })
        .collect();
    let stem = if stem.is_empty() { "_".to_string() } else { stem };
    let mut name = format!("{stem}.{ext}");
    let mut n = 2;
    while !used.insert(name.clone()) {
        name = format!("{stem}_{n}.{ext}");
        n += 1;
    }
    name
}

/// Writes every `(path, bytes)` pair, all or nothing: temporaries first, then renames. On any
/// failure the temporaries are removed and no target file has been touched.
pub fn write_all_atomic(files: &[(PathBuf, Vec<u8>)]) -> Result<(), KilnError> {
    let mut temps: Vec<PathBuf> = Vec::with_capacity(files.len());
    let result = files.iter().try_for_each(|(path, bytes)| {
        let temp = temp_path(path);
        temps.push(temp.clone());
        std::fs::write(&temp, bytes).map_err(|source| KilnError::Io { action: "write", path: path.clone(), source })
    });
    let result = result.and_then(|()| {
        files.iter().zip(&temps).try_for_each(|((path, _), temp)| {
            std::fs::rename(temp, path).map_err(|source| KilnError::Io { action: "write", path: path.clone(), source })
        })
    });
    if result.is_err() {
        for temp in &temps {
            // Best effort: a temporary that was never created or already renamed is fine.
            let _ = std::fs::remove_file(temp);
        }
    }
    result
}

/// Writes one file atomically.
pub fn write_atomic(path: &Path, bytes: Vec<u8>) -> Result<(), KilnError> {
    write_all_atomic(&[(path.to_path_buf(), bytes)])
}

/// `dir/.name.kiln-tmp-PID`: hidden, in the target's directory (so the rename is atomic).
fn temp_path(path: &Path) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    path.with_file_name(format!(".{name}.kiln-tmp-{}", std::process::id()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_sanitized_and_unique() {
        let mut used = HashSet::new();
        assert_eq!(file_name("prob_1", "npy", &mut used), "prob_1.npy");
        assert_eq!(file_name("a/b:c", "npy", &mut used), "a_b_c.npy");
        assert_eq!(file_name("a?b c", "npy", &mut used), "a_b_c_2.npy");
        assert_eq!(file_name("", "npy", &mut used), "_.npy");
        assert_eq!(file_name("ü", "npy", &mut used), "__2.npy");
    }

    #[test]
    fn a_failed_batch_leaves_nothing() {
        let dir = std::env::temp_dir().join(format!("kiln-files-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let good = dir.join("good.npy");
        let bad = dir.join("missing-dir").join("bad.npy");
        assert!(write_all_atomic(&[(good.clone(), vec![1]), (bad, vec![2])]).is_err());
        assert!(!good.exists());
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0, "no temporaries are left behind");
        write_atomic(&good, vec![7]).unwrap();
        assert_eq!(std::fs::read(&good).unwrap(), vec![7]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
