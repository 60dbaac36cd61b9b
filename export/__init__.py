"""Checkpoint -> ONNX bundle (needs the [export] extra: torch, safetensors, onnx, onnxscript).

checkpoint.py reads a release in the official layout (a folder or a hub id); modules/ restates
the encoder, decoder and aligner as export-friendly torch modules; onnx_export.py traces them;
write.py validates the graphs against torch and writes the bundle through the runtime's manifest
code; build.py (``build_bundle``) is the one home of "checkpoint -> bundle, optionally quantized";
synthetic.py writes random-weight checkpoints of the real shapes; cli.py is
``qwen-asr-edge export``.
"""
