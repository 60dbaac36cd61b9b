"""Execution providers: "auto" -> the best one installed, session options, and the binding device."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass

from .errors import MissingDependencyError, ProviderError

log = logging.getLogger("qwen_asr_edge")

SHORT_NAMES = {
    "cuda": "CUDAExecutionProvider",
    "dml": "DmlExecutionProvider",
    "directml": "DmlExecutionProvider",
    "cpu": "CPUExecutionProvider",
}
AUTO_ORDER = ("CUDAExecutionProvider", "DmlExecutionProvider", "CPUExecutionProvider")
EXTRA_FOR = {
    "CUDAExecutionProvider": "gpu",
    "DmlExecutionProvider": "directml",
    "CPUExecutionProvider": "cpu",
}
DEVICE_FOR = {"CUDAExecutionProvider": "cuda", "DmlExecutionProvider": "dml", "CPUExecutionProvider": "cpu"}


def import_onnxruntime():
    try:
        import onnxruntime
    except ImportError:
        raise MissingDependencyError("running a bundle", "cpu") from None
    if not hasattr(onnxruntime, "InferenceSession"):  # two onnxruntime wheels overwrote each other
        raise MissingDependencyError("a working onnxruntime (reinstall exactly one of them)", "cpu")
    return onnxruntime


@dataclass(frozen=True)
class Device:
    provider: str  # the first execution provider of the session
    ort_device: str  # "cuda", "dml" or "cpu", for OrtValue and IOBinding
    device_id: int = 0


def resolve_providers(providers: str | Sequence[str] = "auto") -> list[str]:
    """ "auto", a short name ("cuda", "cpu", "dml"), or full provider names -> a provider list."""
    ort = import_onnxruntime()
    available = ort.get_available_providers()
    if isinstance(providers, str):
        if providers == "auto":
            chosen = [p for p in AUTO_ORDER if p in available]
            return chosen if "CPUExecutionProvider" in chosen else [*chosen, "CPUExecutionProvider"]
        providers = [p.strip() for p in providers.split(",")]
    names = [SHORT_NAMES.get(p.lower(), p) for p in providers]
    for name in names:
        if name not in available:
            extra = EXTRA_FOR.get(name)
            hint = f"; install qwen-asr-edge[{extra}]" if extra else ""
            raise ProviderError(
                f"execution provider {name} is not available (have {', '.join(available)}){hint}"
            )
    return names


def session_options(threads: int | None = None):
    ort = import_onnxruntime()
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.intra_op_num_threads = threads or int(os.environ.get("QWEN_ASR_EDGE_THREADS", "0")) or 0
    opts.log_severity_level = 3  # keep ORT's warnings about unused initializers off the user's terminal
    return opts


def create_session(path: str, providers: list[str], threads: int | None = None):
    ort = import_onnxruntime()
    session = ort.InferenceSession(path, sess_options=session_options(threads), providers=providers)
    return session


def session_device(session) -> Device:
    """The device that the session's first provider runs on: where bound buffers must live."""
    first = session.get_providers()[0]
    device_id = 0
    if first == "CUDAExecutionProvider":
        device_id = int(session.get_provider_options().get(first, {}).get("device_id", 0))
    return Device(first, DEVICE_FOR.get(first, "cpu"), device_id)
