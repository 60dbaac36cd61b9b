"""qwen-asr-edge: Qwen3-ASR exported to ONNX and run with numpy + onnxruntime.

The import package is assembled from the repository's top-level folders (see pyproject.toml):
``qwen_asr_edge.runtime`` (what runs on a device), ``qwen_asr_edge.export`` (checkpoint -> bundle,
needs the ``[export]`` extra) and ``qwen_asr_edge.quant``; ``qwen_asr_edge.models`` (the ``--model``
cache) sits above them because it joins export and the runtime.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("qwen-asr-edge")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+local"

__all__ = ["__version__"]
