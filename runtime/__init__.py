"""numpy + onnxruntime only: everything that runs on a device.

from qwen_asr_edge.runtime import Transcriber
print(Transcriber("bundle-dir").transcribe("talk.wav").text)
"""

from .aligner import Aligner
from .bundle import Bundle, Manifest, load_bundle
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
    "load_bundle",
]
