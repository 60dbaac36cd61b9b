"""numpy + onnxruntime only: everything that runs on a device.

from qwen_asr_edge.runtime import Transcriber, demo_bundle
print(Transcriber("bundle-dir").transcribe("talk.wav").text)
print(Transcriber(demo_bundle()).transcribe("set-a-timer.wav").text)  # the built-in demo model
"""

from .aligner import Aligner
from .bundle import Bundle, Manifest, load_bundle
from .demo import demo_bundle, demo_examples
from .errors import (
    AudioError,
    AudioFileNotFoundError,
    BundleError,
    CheckpointError,
    InputError,
    MissingDependencyError,
    ProviderError,
    QwenAsrEdgeError,
)
from .providers import SessionSettings
from .results import DecodeOptions, Segment, Transcript, Word
from .transcriber import Transcriber

__all__ = [
    "Aligner",
    "AudioError",
    "AudioFileNotFoundError",
    "Bundle",
    "BundleError",
    "CheckpointError",
    "DecodeOptions",
    "InputError",
    "Manifest",
    "MissingDependencyError",
    "ProviderError",
    "QwenAsrEdgeError",
    "Segment",
    "SessionSettings",
    "Transcriber",
    "Transcript",
    "Word",
    "demo_bundle",
    "demo_examples",
    "load_bundle",
]
