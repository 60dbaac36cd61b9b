"""The bundle: a self-describing folder that the exporter writes and the runtime reads.

This module is the single source of truth for ``manifest.json``. The exporter builds a
:class:`Manifest` and writes it through :func:`write_manifest`; the runtime loads it with
:func:`load_bundle`, which refuses unknown format versions and files that fail their hash.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .errors import BundleError, OutputError, OutputExistsError
from .locked_folders import locked_temp_folder
from .signals import deferred_signals
from .utf8_paths import utf8_alias

FORMAT_VERSION = 2  # 2: right-padded decoder interface (seqlens_k), decoder attention kind
MANIFEST_NAME = "manifest.json"


@dataclass(frozen=True)
class TensorSpec:
    name: str
    dtype: str  # numpy dtype name: "float32", "int64", ...
    shape: list[int | str]  # ints are fixed, strings are symbolic


@dataclass(frozen=True)
class GraphSpec:
    file: str
    precision: str  # "fp32", later "int8", "int4", "fp16"
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]


@dataclass(frozen=True)
class KvCacheSpec:
    """How the decoder's key/value cache is laid out and named."""

    num_layers: int
    num_kv_heads: int
    head_dim: int
    dtype: str
    max_positions: int  # the model's max_position_embeddings: no buffer may be longer
    past_key: str = "past_key_values.{layer}.key"
    past_value: str = "past_key_values.{layer}.value"
    present_key: str = "present.{layer}.key"
    present_value: str = "present.{layer}.value"
    # "buffer": past inputs are fixed-capacity buffers (batch, kv_heads, capacity, head_dim) that
    # the graph updates in place; the runtime binds one buffer as both past and present.
    layout: str = "buffer"

    def names(self, layer: int) -> tuple[str, str, str, str]:
        return (
            self.past_key.format(layer=layer),
            self.past_value.format(layer=layer),
            self.present_key.format(layer=layer),
            self.present_value.format(layer=layer),
        )


@dataclass(frozen=True)
class DecoderSpec:
    # "gqa": com.microsoft.GroupQueryAttention (onnxruntime CPU, CUDA, DirectML; the default);
    # "portable": standard ONNX ops only, for runtimes without onnxruntime's contrib ops.
    # Both take the same inputs (see export/modules/decoder.py), so the runtime treats them alike.
    attention: str = "gqa"


@dataclass(frozen=True)
class AlignerSpec:
    """Qwen3-ForcedAligner graphs in the bundle ("aligner_encoder", "aligner"), from its checkpoint."""

    timestamp_token_id: int  # the <timestamp> slot: two after every word, start then end
    segment_ms: int  # class k means k * segment_ms
    classes: int
    languages: list[str]
    max_seconds: float  # the official package cuts longer audio before aligning (180 s)
    encoder_attention: str  # "windowed" or "full", as for the ASR encoder
    source: str = ""


@dataclass(frozen=True)
class MelSpec:
    sample_rate: int = 16000
    n_fft: int = 400
    hop_length: int = 160
    n_mels: int = 128
    f_min: float = 0.0
    f_max: float = 8000.0
    log_floor_db: float = 8.0  # log10 values are clamped at (max - 8) per clip


@dataclass(frozen=True)
class EncoderSpec:
    attention: str  # "windowed" or "full"
    chunk_frames: int  # mel frames per conv chunk (2 * n_window)
    tokens_per_chunk: int  # encoder outputs per full chunk
    window_tokens: int  # attention window of the windowed scope
    output_dim: int


@dataclass(frozen=True)
class TokenSpec:
    """Ids of the tokens the runtime needs by role, read from the checkpoint, never assumed."""

    im_start: int
    im_end: int
    endoftext: int
    audio_start: int
    audio_end: int
    audio_pad: int
    asr_text: int
    eos: list[int]
    timestamp: int | None = None


@dataclass(frozen=True)
class PromptSpec:
    """The rendered chat template around the context, and the forced-language suffix."""

    before_context: str
    after_context: str
    language_suffix: str = "language {language}<asr_text>"
    audio_placeholder: str = "<|audio_pad|>"


@dataclass(frozen=True)
class ModelSpec:
    family: str  # "qwen3-asr"
    kind: str  # "asr", or "aligner" for a bundle of the forced aligner alone
    size: str  # "0.6B", "1.7B" or "custom"
    source: str  # where the checkpoint came from
    hidden_size: int
    vocab_size: int
    tied_embeddings: bool


@dataclass(frozen=True)
class FileEntry:
    sha256: str
    bytes: int


# The quantization recipes a manifest's ``recipe`` may name besides "fp32" (an export). Manifest
# vocabulary, so it lives here: quant/recipes.py defines one Recipe per name (a test keeps the two
# equal) and the runtime's CLI offers them without importing the quantizer.
RECIPE_NAMES = ("int8", "int4", "int4-gptq", "fp16")


@dataclass(frozen=True)
class Manifest:
    """An ASR bundle has ``kv_cache``, ``decoder``, ``encoder`` and ``prompt``; an aligner-only
    bundle (``model.kind == "aligner"``) has ``aligner`` instead; an ASR bundle may have both."""

    format_version: int
    model: ModelSpec
    graphs: dict[str, GraphSpec]
    mel: MelSpec
    tokens: TokenSpec
    languages: list[str]
    kv_cache: KvCacheSpec | None = None
    decoder: DecoderSpec | None = None
    encoder: EncoderSpec | None = None
    prompt: PromptSpec | None = None
    recipe: str = "fp32"  # "fp32" for an export; one of RECIPE_NAMES otherwise
    quantization: dict[str, Any] = field(default_factory=dict)  # the recipe's settings
    tokenizer: str = "tokenizer.json"
    aligner: AlignerSpec | None = None
    files: dict[str, FileEntry] = field(default_factory=dict)
    producer: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, ensure_ascii=False) + "\n"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Manifest:
        graphs = {
            name: GraphSpec(
                file=g["file"],
                precision=g["precision"],
                inputs=[TensorSpec(**t) for t in g["inputs"]],
                outputs=[TensorSpec(**t) for t in g["outputs"]],
            )
            for name, g in data["graphs"].items()
        }
        return cls(
            format_version=data["format_version"],
            model=ModelSpec(**data["model"]),
            graphs=graphs,
            kv_cache=KvCacheSpec(**data["kv_cache"]) if data.get("kv_cache") else None,
            decoder=DecoderSpec(**data["decoder"]) if data.get("decoder") else None,
            mel=MelSpec(**data["mel"]),
            encoder=EncoderSpec(**data["encoder"]) if data.get("encoder") else None,
            tokens=TokenSpec(**data["tokens"]),
            prompt=PromptSpec(**data["prompt"]) if data.get("prompt") else None,
            languages=list(data["languages"]),
            recipe=data.get("recipe", "fp32"),
            quantization=dict(data.get("quantization", {})),
            tokenizer=data.get("tokenizer", "tokenizer.json"),
            aligner=AlignerSpec(**data["aligner"]) if data.get("aligner") else None,
            files={k: FileEntry(**v) for k, v in data.get("files", {}).items()},
            producer=dict(data.get("producer", {})),
        )


@dataclass(frozen=True)
class Bundle:
    """A loaded bundle: its folder and its manifest (the contract between export and runtime)."""

    path: Path
    manifest: Manifest

    def file(self, name: str) -> Path:
        return self.path / name

    def graph_path(self, graph: str) -> Path:
        return self.path / self.manifest.graphs[graph].file


def sha256_of(path: Path, block: int = 1 << 22) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(block):
            digest.update(chunk)
    return digest.hexdigest()


def file_entries(folder: Path, names: list[str]) -> dict[str, FileEntry]:
    return {n: FileEntry(sha256=sha256_of(folder / n), bytes=(folder / n).stat().st_size) for n in names}


def check_bundle_output(out: str | os.PathLike[str], sources=(), overwrite: bool = False) -> Path:
    """Where a new bundle may go: ``out`` resolved, after refusing what would lose something.

    Raises:
        OutputError: an empty name (an unset variable would mean the current folder), ``out`` is or
            holds one of ``sources`` (replacing it would delete them), ``out`` exists and is not a
            bundle (``--force`` replaces bundles, never other folders or files), or a file stands
            where a folder above ``out`` must be.
        OutputExistsError: ``out`` is a bundle and ``overwrite`` is False.
    """
    if not str(out).strip():
        raise OutputError(repr(str(out)), "an empty output folder name (an unset variable?)")
    path = Path(out).expanduser().resolve()
    for source in sources:
        src = Path(source).expanduser()
        if not src.exists():
            continue  # a hub id, or a source that the caller reports
        src = src.resolve()
        if path == src or path in src.parents:
            raise OutputError(path, f"would replace its own source {src}; write the bundle elsewhere")
    if path.exists() or path.is_symlink():
        is_bundle = path.is_dir() and (path / MANIFEST_NAME).is_file()
        if not (is_bundle or (path.is_dir() and not any(path.iterdir()))):
            raise OutputError(path, "exists and is not a bundle; --force replaces bundles only")
        if not overwrite:
            raise OutputExistsError(path)
    above = next((p for p in path.parents if p.exists()), None)
    if above is not None and not above.is_dir():
        raise OutputError(path, f"{above} is a file, not a folder")
    return path


@contextmanager
def staged(out: Path) -> Iterator[Path]:
    """A temp folder beside ``out`` to write a bundle into: published as ``out`` when the block
    ends, removed if it raises, so no half-written bundle is ever visible. Where ``out``'s path is
    not UTF-8 text, the block gets a link to it that is (``utf8_alias``: onnx, onnxruntime's
    quantizer and tokenizers write through it).

    The folder (``.NAME.partial-xxxxxxxx``) is locked while in use; those of runs killed outright
    (SIGKILL, the OOM killer) are deleted by the next run for the same ``out``
    (``locked_folders``; POSIX only). Not publish's ``.NAME.old.xxxxxxxx``, which may hold the
    user's previous bundle, nor the ``.NAME.xxxxxxxx`` of versions that took no lock.
    """
    with ExitStack() as held:  # removed unless published, then unlocked, when the block ends
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
            tmp = held.enter_context(locked_temp_folder(f".{out.name}.partial-", out.parent))
        except OSError as e:  # a parent that cannot hold folders (/sys, a read-only mount)
            raise OutputError(out, f"cannot be written ({e.strerror or e})") from None
        with utf8_alias(tmp) as work:
            yield work
        publish(tmp, out)


def publish(tmp: Path, out: Path) -> None:
    """Make a finished temp folder the bundle at ``out``: readable by everyone, then renamed
    into place, so no half-written bundle is ever visible. An older bundle there is renamed
    aside first and deleted only once the new one is in place (put back if the swap fails), and
    Ctrl-C or SIGTERM meanwhile takes effect when the swap is done: an interrupted ``--force``
    leaves the old bundle or the new one, never neither."""
    with deferred_signals():
        tmp.chmod(0o755)
        for f in tmp.rglob("*"):
            f.chmod(0o755 if f.is_dir() else 0o644)  # folders must stay traversable
        if not (out.exists() or out.is_symlink()):
            tmp.rename(out)
            return
        aside = Path(tempfile.mkdtemp(prefix=f".{out.name}.old.", dir=out.parent))
        try:
            out.rename(aside / out.name)
        except BaseException:
            aside.rmdir()
            raise
        try:
            tmp.rename(out)
        except BaseException:
            (aside / out.name).rename(out)  # should this fail too, the old bundle stays aside
            aside.rmdir()
            raise
        shutil.rmtree(aside, ignore_errors=True)


def write_manifest(folder: Path, manifest: Manifest) -> None:
    (folder / MANIFEST_NAME).write_text(manifest.to_json(), encoding="utf-8")


def load_bundle(path: str | os.PathLike[str], verify: bool = True) -> Bundle:
    """Open a bundle folder.

    Args:
        path: The folder ``qwen-asr-edge export`` or ``quantize`` wrote.
        verify: Check every file against the sha256 in its manifest (reads every byte once).

    Returns:
        The Bundle: its path and parsed Manifest.

    Raises:
        BundleError: no such folder (or a file, not a folder), a missing or invalid manifest, an
            unknown format version, or a file missing, resized or altered; the message says what to do.
    """
    folder = Path(path)
    if folder.is_file():
        fix = "pass the folder that holds it" if folder.name == MANIFEST_NAME else None
        raise BundleError(
            folder,
            "is a file, not a bundle folder",
            fix or "pass the folder that `qwen-asr-edge export` wrote",
        )
    if folder.exists() and not folder.is_dir():
        raise BundleError(
            folder, "is not a folder (a pipe or device)", "pass the folder that `qwen-asr-edge export` wrote"
        )
    if not folder.is_dir():
        raise BundleError(folder, "no such folder", "pass the folder that `qwen-asr-edge export` wrote")
    manifest_path = folder / MANIFEST_NAME
    if not manifest_path.is_file():
        raise BundleError(folder, f"{MANIFEST_NAME} is missing", "re-run `qwen-asr-edge export`")
    try:
        data = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise BundleError(folder, f"{MANIFEST_NAME} is not valid JSON ({e})") from None
    version = data.get("format_version") if isinstance(data, dict) else None
    if version != FORMAT_VERSION:
        raise BundleError(
            folder,
            f"format version {version!r} is not supported (this runtime reads version {FORMAT_VERSION})",
            "export the checkpoint again with this version of qwen-asr-edge",
        )
    try:
        manifest = Manifest.from_dict(data)
    except (KeyError, TypeError) as e:
        raise BundleError(folder, f"{MANIFEST_NAME} is incomplete ({e!r})") from None

    asr = ("encoder", "decoder")
    if manifest.model.kind == "asr" and (
        manifest.decoder is None or not all(g in manifest.graphs for g in asr)
    ):
        raise BundleError(folder, f"{MANIFEST_NAME} describes an ASR model without its encoder and decoder")
    if manifest.model.kind == "aligner" and manifest.aligner is None:
        raise BundleError(folder, f"{MANIFEST_NAME} describes an aligner without its aligner entry")
    needed = {g.file for g in manifest.graphs.values()} | {manifest.tokenizer}
    for name in sorted(needed - manifest.files.keys()):
        raise BundleError(folder, f"{name} is used but has no hash in {MANIFEST_NAME}")
    for name, entry in manifest.files.items():
        f = folder / name
        if not f.is_file():
            raise BundleError(folder, f"{name} is missing", "copy the whole bundle folder")
        if f.stat().st_size != entry.bytes:
            raise BundleError(folder, f"{name} has {f.stat().st_size} bytes, expected {entry.bytes}")
        if verify and sha256_of(f) != entry.sha256:
            raise BundleError(folder, f"{name} does not match its sha256", "the file was altered or damaged")
    return Bundle(path=folder, manifest=manifest)
