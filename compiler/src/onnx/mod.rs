//! ONNX interchange: import (`import`) into Kiln's IR and export (`export`) back to ONNX.

pub mod export;

pub use export::{save_file, to_bytes, ExportError};
