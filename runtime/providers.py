"""Execution providers: "auto" -> the best one installed, session options, and the binding device."""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from .errors import BundleError, InputError, MissingDependencyError, ProviderError
from .options import require_type
from .utf8_paths import is_utf8, utf8_alias

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


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity mask), else all of them."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


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
            hint = f"; install the [{extra}] extra" if extra else ""
            raise ProviderError(
                f"execution provider {name} is not available (have {', '.join(available)}){hint}"
            )
    return names


OPTIMIZATION_LEVELS = ("disabled", "basic", "extended", "all")


@dataclass(frozen=True)
class SessionSettings:
    """onnxruntime session settings, chosen from the machine unless given.

    ``threads``: intra-op threads; None = the CPUs this process may run on (its affinity mask,
    which containers and ``taskset`` narrow), or $QWEN_ASR_EDGE_THREADS.
    ``optimization``: graph optimization level. ``prepacking``: let onnxruntime re-layout constant
    weights once at load (much faster int4 matmuls: off, a 0.6B int4 transcription took 50 s
    instead of 1.8 s). ``arena``: onnxruntime's CPU memory arena, off by default: measured on the
    0.6B int4 bundle it holds about 100 MB more at peak (1.09 vs 0.99 GB) for 3% less time.
    ``config``: raw session config entries (``session.*`` keys) for anything else.
    ``profile``: a path prefix; each session then records onnxruntime's profiler trace (one JSON
    file per session, Chrome trace format: every kernel's time and operator type), which
    ``Transcriber.end_profiling()`` writes and names. Profiling slows every run a little.

    Raises:
        ValueError: an unknown optimization level, fewer than 1 thread, or a ``config`` key that
            cannot be one (empty, spaces around it, too long).
        TypeError: ``threads`` not a whole number (a string, a float) nor None; a ``config`` key
            or value not a str.
    """

    threads: int | None = None
    optimization: str = "all"
    prepacking: bool = True
    arena: bool = False
    config: dict[str, str] = field(default_factory=dict)
    profile: str | None = None

    def __post_init__(self):
        if self.optimization not in OPTIMIZATION_LEVELS:
            raise ValueError(f"optimization must be one of {OPTIMIZATION_LEVELS}, not {self.optimization!r}")
        if self.threads is not None:
            object.__setattr__(self, "threads", require_type("threads", self.threads, "int"))
        if self.threads is not None and self.threads < 1:
            raise ValueError("threads must be at least 1")
        for key, value in self.config.items():
            if not isinstance(key, str) or not isinstance(value, str):
                raise TypeError(f"session config entries are text: got {key!r}: {value!r}")
            if not key or key != key.strip() or len(key) > MAX_CONFIG_KEY:
                raise ValueError(
                    f"{key!r} is not a session config key (onnxruntime's look like "
                    "session.intra_op.allow_spinning)"
                )

    def resolved_threads(self) -> int:
        if self.threads:
            return self.threads
        env = os.environ.get("QWEN_ASR_EDGE_THREADS")
        if env:
            return int(env)
        return usable_cpus()

    def options(self):
        ort = import_onnxruntime()
        opts = ort.SessionOptions()
        opts.graph_optimization_level = {
            "disabled": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
            "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
            "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
            "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
        }[self.optimization]
        opts.intra_op_num_threads = self.resolved_threads()
        opts.enable_cpu_mem_arena = self.arena
        config = {"session.disable_prepacking": "0" if self.prepacking else "1", **self.config}
        for key, value in config.items():  # one entry a key: onnxruntime warns when one is set twice
            opts.add_session_config_entry(key, value)
        if self.profile:
            opts.enable_profiling = True
            opts.profile_file_prefix = self.profile
        opts.log_severity_level = 3  # keep ORT's warnings about unused initializers off the user's terminal
        return opts


# onnxruntime 1.32 refuses longer ones (config_options.cc).
MAX_CONFIG_KEY = 1024

# onnxruntime before 1.22 runs MatMulNBits with 4-bit weights only; int8 bundles (and int4's INT8
# encoder) use 8-bit ones. Its message, measured on 1.20.1 and 1.21.1:
OLD_MATMULNBITS = "Only 4b quantization is supported for MatMulNBits"


def create_session(path: str, providers: list[str], settings: SessionSettings | None = None):
    settings = settings or SessionSettings()
    if is_utf8(path):
        return _session(path, path, providers, settings)
    # onnxruntime takes a path as UTF-8 text: the graph is opened through a link to its folder (its
    # external weights beside it stay resolvable). The session has read every file once created
    # (checked with its .onnx.data), so the link can go; a session that re-creates itself from its
    # path (the Python API does after some failed runs) would not find it.
    with utf8_alias(os.path.dirname(os.path.abspath(path))) as folder:
        return _session(
            str(folder / os.path.basename(path)), path, providers, settings
        )  # our names are ASCII


def _session(path: str, shown: str, providers: list[str], settings: SessionSettings):
    ort = import_onnxruntime()
    try:
        return ort.InferenceSession(path, **_session_args(settings, providers))
    except Exception as e:
        if OLD_MATMULNBITS in str(e):
            raise BundleError(
                os.path.dirname(shown) or shown,
                f"its 8-bit MatMulNBits layers need onnxruntime 1.22 or later (this is {ort.__version__})",
                "pip install -U onnxruntime",
            ) from None
        if settings.config and _loads(path, providers, replace(settings, config={})):
            entries = ", ".join(f"{k}={v}" for k, v in settings.config.items())
            raise InputError(f"onnxruntime refused the session config {entries}: {_ort_reason(e)}") from None
        raise


def _session_args(settings: SessionSettings, providers: list[str]) -> dict:
    # On the CPU alone, no fallback: onnxruntime would retry on the CPU, printing an "EP Error"
    # banner on stdout (where transcripts go) first. A GPU provider that fails keeps its fallback.
    fallback = int(providers != ["CPUExecutionProvider"])
    return {"sess_options": settings.options(), "providers": providers, "enable_fallback": fallback}


def _loads(path: str, providers: list[str], settings: SessionSettings) -> bool:
    """Whether a session of the graph can be made with these settings (to tell which was to blame)."""
    try:
        import_onnxruntime().InferenceSession(path, **_session_args(settings, providers))
    except Exception:
        return False
    return True


def _ort_reason(e: Exception) -> str:
    """onnxruntime's message without its source location and failed condition:
    ".../thread_utils.cc:71 std::vector<...> ...(...) <condition> was false. Processor id must ..."."""
    message = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return re.sub(r"^.*? was false\. ", "", re.sub(r"^\S+\.cc:\d+ ", "", message))


def session_device(session) -> Device:
    """The device that the session's first provider runs on: where bound buffers must live."""
    first = session.get_providers()[0]
    device_id = 0
    if first == "CUDAExecutionProvider":
        device_id = int(session.get_provider_options().get(first, {}).get("device_id", 0))
    return Device(first, DEVICE_FOR.get(first, "cpu"), device_id)
