//! ONNX interchange: import (`import`) into Kiln's IR and export (`export`) back to ONNX.

pub mod import;

pub use import::{load_bytes, load_file, ImportError};
