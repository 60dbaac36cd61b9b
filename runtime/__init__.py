"""numpy + onnxruntime only: everything that runs on a device."""
