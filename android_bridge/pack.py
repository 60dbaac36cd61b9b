"""An ASR bundle -> a mobile bundle (format 1, README.md here): ORT-format graphs (or .onnx), the
log-mel front end as a graph, the tokenizer as plain text, one manifest that says everything, and
golden vectors from the Python runtime. Written into a temp folder beside OUT and renamed at the end,
so OUT is whole or absent, also after an error or Ctrl-C."""

from __future__ import annotations

import contextlib
import json
import logging
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path

import numpy as np

from qwen_asr_edge import __version__
from qwen_asr_edge.runtime.bundle import (
    MANIFEST_NAME,
    Bundle,
    GraphSpec,
    TensorSpec,
    check_bundle_output,
    file_entries,
    load_bundle,
    staged,
)
from qwen_asr_edge.runtime.errors import (
    AudioError,
    BundleError,
    MissingDependencyError,
    QwenAsrEdgeError,
    display_name,
)
from qwen_asr_edge.runtime.mel import LogMel
from qwen_asr_edge.runtime.options import DEFAULTS
from qwen_asr_edge.runtime.prompt import ISO_CODES
from qwen_asr_edge.runtime.utf8_paths import is_utf8

from . import preprocessor
from .tokenizer_data import write_tokenizer_data

log = logging.getLogger("qwen_asr_edge.android_bridge")

FORMAT = "qwen-asr-edge-mobile"
FORMAT_VERSION = 1
GRAPH_FORMATS = ("ort", "onnx")
GRAPHS = ("preprocessor", "encoder", "decoder")
CONFIG_NAME = "required_operators.config"
GOLDEN_CONTEXT = "Tomorrow shopping Lautstärke"
_ORT_DTYPES = {
    "tensor(float)": "float32",
    "tensor(float16)": "float16",
    "tensor(double)": "float64",
    "tensor(int64)": "int64",
    "tensor(int32)": "int32",
    "tensor(int8)": "int8",
    "tensor(uint8)": "uint8",
    "tensor(bool)": "bool",
}


class PackError(QwenAsrEdgeError, RuntimeError):
    """A mobile bundle could not be made: a graph that does not convert, load or match its
    manifest, or a prompt the manifest cannot express."""

    def __init__(self, path: str | Path, problem: str):
        self.path = display_name(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


def pack_bundle(
    bundle: Path,
    out: Path,
    *,
    graph_format: str = "ort",
    golden: list[Path] | None = None,
    force: bool = False,
) -> Path:
    """Write the mobile bundle of ``bundle`` to ``out`` (``qwen-asr-edge android-pack``).

    Args:
        bundle: An ASR bundle folder (export or quantize wrote it); checked against its hashes.
        out: The folder to write (its parent is created).
        graph_format: "ort": graphs converted with onnxruntime's converter (Fixed optimizations,
            ``--target_platform arm``) plus ``required_operators.config``; "onnx": the .onnx
            graphs (external data files beside them), for a parity check of .ort against .onnx.
        golden: Clips (any format the runtime reads, each at most ``max_chunk_seconds``, 30 s) to
            run the Python runtime on for golden vectors; None: the demo's english.wav and german.wav.
        force: Replace ``out`` if it is a bundle already.

    Returns:
        ``out``, resolved.

    Raises:
        BundleError: ``bundle`` is missing, altered, a mobile bundle already, holds a forced
            aligner only, or keeps a KV cache other than float32.
        OutputExistsError: ``out`` exists and ``force`` is False.
        OutputError: ``out`` is, or is inside, ``bundle``, or exists and is not a bundle.
        AudioError: a golden clip that cannot be read, is too short for one frame, or is longer
            than one chunk.
        PackError: a graph that fails to convert, to load in onnxruntime, or whose inputs and
            outputs differ from the manifest; prompt ids that do not split as the manifest says.
        MissingDependencyError: the onnx package (the [android] extra) is missing.
        ValueError: an unknown ``graph_format``.
    """
    if graph_format not in GRAPH_FORMATS:
        raise ValueError(f"graph_format must be one of {GRAPH_FORMATS}, not {graph_format!r}")
    try:
        import onnx  # noqa: F401 - the converter and the preprocessor's builder need it
        import onnxruntime as ort
    except ImportError as e:
        raise MissingDependencyError(f"android-pack ({e.name} is missing)", "android") from None
    _refuse_mobile_bundle(Path(bundle))
    source = load_bundle(bundle)
    manifest = source.manifest
    if manifest.model.kind != "asr":
        raise BundleError(bundle, "holds a forced aligner only", "android-pack packs ASR bundles")
    if manifest.kv_cache.dtype != "float32":  # as MobileBundle.kt reads it
        raise BundleError(
            bundle,
            f"keeps its KV cache in {manifest.kv_cache.dtype}; the Android runtime's is float32",
            "pack a bundle quantized without --kv-cache int8 (and not fp16)",
        )
    target = check_bundle_output(out, sources=[bundle], overwrite=force)
    if source.manifest.aligner is not None:
        log.warning("%s: its forced aligner is left out (the Android runtime has no word times)", bundle)

    from qwen_asr_edge.runtime import Transcriber

    asr = Transcriber(source, providers="cpu", verify=False)
    clips = _golden_clips(asr, golden)  # read and checked before any long work
    with staged(target) as tmp:
        graphs = _write_graphs(source, tmp, graph_format)
        _check_graphs(tmp, graphs)
        tokenizer = write_tokenizer_data(source.file(manifest.tokenizer), tmp / "tokenizer")
        log.info("golden vectors for %s", ", ".join(name for name, _, _ in clips))
        with _golden_warnings_dropped():
            _write_golden(asr, clips, tmp / "golden")
        data = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "min_onnxruntime": ort.__version__,
            "graph_format": graph_format,
            "source": {
                "model": asdict(manifest.model),
                "recipe": manifest.recipe,
                "quantization": manifest.quantization,
            },
            "graphs": {name: _graph_json(spec) for name, spec in graphs.items()},
            "mel": asdict(manifest.mel),
            "encoder": asdict(manifest.encoder),
            "decoder": asdict(manifest.decoder),
            "kv_cache": asdict(manifest.kv_cache),
            "tokens": asdict(manifest.tokens),
            "languages": list(manifest.languages),
            "iso_codes": {code: name for code, name in ISO_CODES.items() if name in manifest.languages},
            "prompt": _prompt_section(asr, source),
            "decoding": _decoding_section(asr),
            "tokenizer": tokenizer,
            "markup": sorted(asr._markup),
            "files": {},
            "producer": {"qwen-asr-edge": __version__, "onnxruntime": ort.__version__},
        }
        names = sorted(p.relative_to(tmp).as_posix() for p in tmp.rglob("*") if p.is_file())
        data["files"] = {n: asdict(e) for n, e in file_entries(tmp, names).items() if n != MANIFEST_NAME}
        (tmp / MANIFEST_NAME).write_text(
            json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
        )
    log.info("wrote %s", target)
    return target


def _refuse_mobile_bundle(bundle: Path) -> None:
    """A mobile bundle given as the source gets its own message, not load_bundle's one about
    format versions."""
    try:
        data = json.loads((bundle / MANIFEST_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return  # load_bundle says what is wrong
    if isinstance(data, dict) and data.get("format") == FORMAT:
        raise BundleError(bundle, "is a mobile bundle already", "give the ASR bundle it was packed from")


def _graph_json(spec: GraphSpec) -> dict:
    return {
        "file": spec.file,
        "precision": spec.precision,
        "inputs": [asdict(t) for t in spec.inputs],
        "outputs": [asdict(t) for t in spec.outputs],
    }


def _write_graphs(source: Bundle, tmp: Path, graph_format: str) -> dict[str, GraphSpec]:
    """The three graphs in ``tmp``; returns their manifest entries (files renamed, I/O as the
    source bundle's, the preprocessor's from preprocessor.io_specs)."""
    manifest = source.manifest
    inputs, outputs = preprocessor.io_specs(manifest.mel)
    specs = {"preprocessor": GraphSpec("preprocessor.onnx", "fp32", inputs, outputs)}
    specs |= {name: manifest.graphs[name] for name in ("encoder", "decoder")}
    if graph_format == "onnx":
        _copy_graphs(source, tmp)
        return {n: GraphSpec(f"{n}.onnx", s.precision, s.inputs, s.outputs) for n, s in specs.items()}
    log.info("converting %s to ORT format (onnxruntime's converter, Fixed, arm)", ", ".join(GRAPHS))
    # The converter resolves links, so where the bundle's real path is not UTF-8 text (which it
    # cannot take) it works in the temp folder, and its files are moved in after.
    elsewhere = not is_utf8(tmp.resolve())
    root = Path(tempfile.mkdtemp(prefix="qwen-asr-edge-")) if elsewhere else tmp
    work = root / ".onnx"
    out = root / "ort" if elsewhere else tmp
    try:
        _copy_graphs(source, work)
        out.mkdir(exist_ok=True)
        _convert(work, out)
        if elsewhere:
            for f in out.iterdir():
                shutil.move(f, tmp / f.name)
    finally:
        shutil.rmtree(root if elsewhere else work, ignore_errors=True)
    return {n: GraphSpec(f"{n}.ort", s.precision, s.inputs, s.outputs) for n, s in specs.items()}


def _copy_graphs(source: Bundle, folder: Path) -> None:
    """The preprocessor written, and the source's encoder and decoder copied (with their external
    data), into ``folder`` as .onnx files."""
    folder.mkdir(exist_ok=True)
    preprocessor.write_preprocessor(source.manifest.mel, folder / "preprocessor.onnx")
    for name in ("encoder", "decoder"):
        src = source.graph_path(name)
        shutil.copyfile(src, folder / f"{name}.onnx")
        for data in _external_files(src):  # referenced by name from the .onnx: kept as named
            shutil.copyfile(src.parent / data, folder / data)


def _external_files(model_path: Path) -> list[str]:
    """The external data files a .onnx names (relative to its folder)."""
    import onnx

    model = onnx.load(str(model_path), load_external_data=False)
    found: set[str] = set()
    tensors = list(model.graph.initializer)
    for node in model.graph.node:  # Constant nodes may hold external data too
        tensors += [a.t for a in node.attribute if a.HasField("t")]
    for t in tensors:
        for entry in t.external_data:
            if entry.key == "location":
                found.add(entry.value)
    return sorted(found)


def _convert(work: Path, tmp: Path) -> None:
    """onnxruntime's converter on every .onnx in ``work``, the .ort files and one
    ``required_operators.config`` into ``tmp``. In a child process: its prints and a crash stay
    out of ours.

    Raises:
        PackError: the converter failed (its last line of output is quoted).
    """
    command = [
        sys.executable,
        "-m",
        "onnxruntime.tools.convert_onnx_models_to_ort",
        str(work),
        "--output_dir",
        str(tmp),
        "--optimization_style",
        "Fixed",
        "--target_platform",
        "arm",
    ]
    # Its output names real paths, which may not be UTF-8 (an alias's target): never a decode error.
    result = subprocess.run(command, capture_output=True, encoding="utf-8", errors="backslashreplace")
    lines = [line for line in (result.stderr + result.stdout).splitlines() if line.strip()]
    if result.returncode != 0:
        last = next((line for line in reversed(lines) if "Error" in line), lines[-1] if lines else "")
        raise PackError(work, f"onnxruntime's ORT-format converter failed: {last.strip()[:400]}")
    configs = sorted(tmp.glob("*.config"))
    if len(configs) != 1:
        raise PackError(tmp, f"the converter wrote {len(configs)} operator configs, expected 1")
    if configs[0].name != CONFIG_NAME:
        configs[0].rename(tmp / CONFIG_NAME)
    text = (tmp / CONFIG_NAME).read_text(encoding="utf-8")
    # Its header names the converter's temp paths: keep the list of models, not where they were.
    (tmp / CONFIG_NAME).write_text(re.sub(r"(?m)^# - .*[/\\]", "# - ", text), encoding="utf-8")


def _check_graphs(tmp: Path, graphs: dict[str, GraphSpec]) -> None:
    """Load every graph with onnxruntime (CPU) and compare its inputs and outputs with the
    manifest's: names and order, dtypes, ranks, fixed dims; a symbolic dim must not be fixed.

    Raises:
        PackError: naming the graph file and the first difference, or onnxruntime's load error.
    """
    import onnxruntime as ort

    for spec in graphs.values():
        path = tmp / spec.file
        try:
            session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        except Exception as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise PackError(spec.file, f"onnxruntime cannot load it: {first[:400]}") from None
        for kind, want, got in (
            ("input", spec.inputs, session.get_inputs()),
            ("output", spec.outputs, session.get_outputs()),
        ):
            problem = _io_difference(want, got)
            if problem:
                raise PackError(spec.file, f"{kind}s differ from the manifest: {problem}")


def _io_difference(want: list[TensorSpec], got) -> str | None:
    if [t.name for t in want] != [g.name for g in got]:
        return f"{[g.name for g in got]} != {[t.name for t in want]}"
    for t, g in zip(want, got, strict=True):
        dtype = _ORT_DTYPES.get(g.type, g.type)
        if dtype != t.dtype:
            return f"{t.name} is {dtype}, not {t.dtype}"
        shape = list(g.shape)
        fits = len(shape) == len(t.shape) and all(
            (isinstance(w, int) and s == w) or (isinstance(w, str) and not isinstance(s, int))
            for w, s in zip(t.shape, shape, strict=True)
        )
        if not fits:
            return f"{t.name} has shape {shape}, not {t.shape}"
    return None


def _prompt_section(asr, source: Bundle) -> dict:
    """The template strings, the prompt ids with one audio placeholder (no context, no forced
    language) and, per language, the ids appended to force it.

    Raises:
        PackError: a language whose forced prompt does not start with the plain prompt's ids.
    """
    spec = source.manifest.prompt
    ids = asr.prompt_ids(1).tolist()
    language_ids = {}
    for name in asr.languages:
        full = asr.prompt_ids(1, "", name).tolist()
        if full[: len(ids)] != ids:
            raise PackError(
                source.path / source.manifest.tokenizer,
                f"the prompt forcing {name} does not start with the plain prompt's ids "
                f"(the tokenizer merges across the language suffix): {full} vs {ids}",
            )
        language_ids[name] = full[len(ids) :]
        assert ids + language_ids[name] == full
    return {**asdict(spec), "ids": ids, "language_ids": language_ids}


def _decoding_section(asr) -> dict:
    guard = DEFAULTS.repetition_guard
    return {
        "tokens_per_second": DEFAULTS.tokens_per_second,
        "prefix_tokens": asr._prefix_tokens,
        "max_chunk_seconds": DEFAULTS.max_chunk_seconds,
        "repetition_guard": asdict(guard) if guard is not None else None,
    }


def _default_golden() -> list[tuple[Path, str | None]]:
    from qwen_asr_edge.runtime.demo import demo_examples

    return [(Path(e["audio"]), e.get("language")) for e in demo_examples()]


def _golden_clips(asr, golden: list[Path] | None) -> list[tuple[str, np.ndarray, str | None]]:
    """(name, samples as the runtime decodes them, language if known) per golden clip.

    Raises:
        AudioError: unreadable, too short, or longer than one chunk (``max_chunk_seconds``).
    """
    clips = _default_golden() if golden is None else [(Path(p), None) for p in golden]
    limit = DEFAULTS.max_chunk_seconds
    out, used = [], set()
    for path, language in clips:
        wav = asr.load(path)
        seconds = wav.shape[0] / asr.sample_rate
        if seconds > limit:
            raise AudioError(
                path,
                f"{seconds:.1f} s is longer than one chunk ({limit:g} s); a golden clip must be one",
            )
        name = re.sub(r"[^A-Za-z0-9_-]+", "_", path.stem) or "clip"
        base, k = name, 2
        while name in used:
            name, k = f"{base}_{k}", k + 1
        used.add(name)
        if language is not None and language not in asr.languages:
            language = None
        out.append((name, wav, language))
    return out


# How the runtime names a golden clip in its messages (``transcribe_batch(sources=...)``).
GOLDEN_SOURCE = "golden clip"


class _GoldenWarnings(logging.Filter):
    """Drops the runtime's warnings about golden clips ("golden clip NAME: ... reached its cap"):
    the vectors record what the runtime does, caps and loops included (a random-weight bundle
    always loops), so they are not the pack's problems, and looked like failures."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(f"{GOLDEN_SOURCE} ")


@contextlib.contextmanager
def _golden_warnings_dropped() -> Iterator[None]:
    package, dropped = logging.getLogger("qwen_asr_edge"), _GoldenWarnings()
    package.addFilter(dropped)
    try:
        yield
    finally:
        package.removeFilter(dropped)


def _write_golden(asr, clips, folder: Path) -> None:
    """``golden.json`` with three cases per clip (language detected, forced, and with a context),
    each clip's PCM as ``NAME.pcm`` and the first clip's log-mel as ``NAME.mel`` (float32
    little-endian; paths in golden.json relative to the bundle folder)."""
    folder.mkdir()
    rel = folder.name
    cases = []
    for name, wav, known in clips:
        wav.astype("<f4").tofile(folder / f"{name}.pcm")
        audio_tokens = int(asr.encode([wav]).lengths[0])
        forced = known or asr.languages[0]
        for case, language, context in (
            ("detect", None, ""),
            ("forced", forced, ""),
            ("context", None, GOLDEN_CONTEXT),
        ):
            transcript = asr.transcribe_batch(
                [wav], language=language, context=context, sources=[f"{GOLDEN_SOURCE} {name}"]
            )[0]
            if len(transcript.segments) != 1:
                raise PackError(name, f"decoded as {len(transcript.segments)} chunks, not 1")
            segment = transcript.segments[0]
            cases.append(
                {
                    "name": f"{name}-{case}",
                    "pcm": f"{rel}/{name}.pcm",
                    "samples": int(wav.shape[0]),
                    "sample_rate": asr.sample_rate,
                    "language": language,
                    "context": context,
                    "audio_tokens": audio_tokens,
                    "token_cap": asr.token_cap(wav.shape[0] / asr.sample_rate, DEFAULTS),
                    "prompt_ids": asr.prompt_ids(audio_tokens, context, language).tolist(),
                    "tokens": [int(t) for t in segment.tokens],
                    "text": segment.text,
                    "detected_language": segment.language,
                    "finish_reason": segment.finish_reason,
                }
            )
    name, wav, _ = clips[0]
    mel = LogMel(asr.bundle.manifest.mel)(wav)
    mel.astype("<f4").tofile(folder / f"{name}.mel")
    golden = {
        "cases": cases,
        "mel": {
            "pcm": f"{rel}/{name}.pcm",
            "file": f"{rel}/{name}.mel",
            "n_mels": int(mel.shape[0]),
            "frames": int(mel.shape[1]),
        },
    }
    (folder / "golden.json").write_text(json.dumps(golden, indent=2, ensure_ascii=False) + "\n", "utf-8")
