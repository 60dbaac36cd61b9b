"""Checkpoint -> ONNX bundle (needs the [export] extra: torch, safetensors, onnx, onnxscript)."""
