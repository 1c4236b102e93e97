//! ONNX interchange: import (`import`) into Kiln's IR and export (`export`) back to ONNX.

pub mod export;
pub mod import;

pub use export::{save_file, to_bytes, ExportError};
pub use import::{load_bytes, load_file, ImportError};
