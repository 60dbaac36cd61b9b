"""numpy + onnxruntime only: everything that runs on a device (never torch, export or quant).

    from qwen_asr_edge.runtime import Transcriber, TranscriptionOptions, demo_bundle

    asr = Transcriber(demo_bundle())                        # the built-in demo model
    result = asr.transcribe("english.wav", language="en")   # a path, a 16 kHz array, or (array, rate)
    print(result.language, result.language_probability, result.text)
    for segment in asr.iter_segments("long.flac", options=TranscriptionOptions(log_probs=True)):
        print(segment.start, segment.end, segment.avg_logprob, segment.text)
    session = asr.stream()                                  # live: blocks in, committed text out
    for update in session.feed(block, 48000):               # any block size and rate
        print(update.committed, "|", update.tentative)
    print(session.finish().committed)

Modules, each with one job: audio (files and arrays -> 16 kHz mono), chunking (quiet-point
cuts), vad (the voice-activity filter), mel, prompt, decoding (greedy loop, KV cache), repetition
(the loop guard), parsing (model output -> language, text), transcriber (the pipeline),
streaming and encoder_windows (live sessions, Transcriber.stream), aligner
and alignment (word times), options and results (the data types), writers and subtitles (output
formats), bundle (the export contract), providers (onnxruntime sessions), errors, sources (live
audio as blocks: stdin, FIFOs, devices, paced files, microphones), live (showing a stream's text),
server, openai_api, realtime and scheduler (``serve``: OpenAI's API and realtime socket, the [server]
extra), batch (``transcribe-many`` on Ray Data, the [ray] extra), and the CLI modules.
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
from .options import TranscriptionOptions
from .providers import SessionSettings
from .repetition import RepetitionGuard
from .results import Segment, Timings, Transcript, Word
from .streaming import StreamingOptions, StreamingSession, StreamUpdate
from .transcriber import AudioEncoding, Transcriber
from .vad import VadOptions

__all__ = [
    "Aligner",
    "AudioEncoding",
    "AudioError",
    "AudioFileNotFoundError",
    "Bundle",
    "BundleError",
    "CheckpointError",
    "InputError",
    "Manifest",
    "MissingDependencyError",
    "ProviderError",
    "QwenAsrEdgeError",
    "RepetitionGuard",
    "Segment",
    "SessionSettings",
    "StreamUpdate",
    "StreamingOptions",
    "StreamingSession",
    "Timings",
    "Transcriber",
    "Transcript",
    "TranscriptionOptions",
    "VadOptions",
    "Word",
    "demo_bundle",
    "demo_examples",
    "load_bundle",
]
