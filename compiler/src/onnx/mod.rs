//! ONNX interchange: import (`import`) into Kiln's IR and export (`export`) back to ONNX.
