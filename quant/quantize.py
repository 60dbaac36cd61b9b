"""fp32 bundle -> quantized bundle (atomically), with a measured quality report inside it."""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
from pathlib import Path

import numpy as np

from qwen_asr_edge.runtime.audio import audio_files, load_audio
from qwen_asr_edge.runtime.bundle import (
    GraphSpec,
    check_bundle_output,
    file_entries,
    load_bundle,
    staged,
    write_manifest,
)
from qwen_asr_edge.runtime.decoding import prefill_feeds
from qwen_asr_edge.runtime.errors import AudioError, BundleError, InputError, MissingDependencyError
from qwen_asr_edge.runtime.mel import LogMel, batch_features
from qwen_asr_edge.runtime.utf8_paths import utf8_alias

from . import graphs as graph_io
from . import kv_cache, quality
from .graphs import quantize_graph
from .recipes import Recipe

log = logging.getLogger("qwen_asr_edge.quant")


def calibration_audio(folder: Path | None, sample_rate: int) -> list[np.ndarray]:
    """The audio files of ``folder`` (generated speech-like audio when None), at ``sample_rate``.
    A file that cannot be read is left out with a warning naming it, as ``transcribe`` goes on
    past one: one empty file among a hundred should not stop a quantization.

    Raises:
        InputError: no readable audio file in the folder.
    """
    if folder is None:
        return quality.generated_audio(sample_rate=sample_rate)
    files, _ = audio_files([Path(folder)])
    audios = []
    for f in files:
        try:
            audios.append(load_audio(f, sample_rate))
        except (AudioError, MissingDependencyError) as e:
            log.warning("%s; left out of the calibration", e)
    if not audios:
        raise InputError(f"no readable audio files in {folder}")
    return audios


class _DecoderCalibration:
    """Prefill feeds (prompt + audio embeddings from the fp32 encoder) for GPTQ."""

    def __init__(self, bundle_path: Path, audios: list[np.ndarray]):
        from qwen_asr_edge.runtime.transcriber import Transcriber

        tr = Transcriber(bundle_path, providers="cpu", verify=False)
        self.feeds = []
        for wav in audios:
            audio = tr.encode([wav]).row(0)
            ids = tr.prompt_ids(int(audio.lengths[0]))
            feed = prefill_feeds(tr.bundle.manifest, ids, audio.numpy(), audio.lengths, capacity=len(ids))
            self.feeds.append(feed)

    def reader(self):
        from onnxruntime.quantization import CalibrationDataReader

        feeds = self.feeds

        class Reader(CalibrationDataReader):  # ORT's GPTQ iterates it, so it must be this class
            def __init__(self):
                self._it = iter(feeds)

            def get_next(self):
                return next(self._it, None)

            def rewind(self):
                self._it = iter(feeds)

        return Reader()


def encoder_feeds(manifest, audios: list[np.ndarray]) -> list[dict[str, np.ndarray]]:
    """The encoder's inputs for each clip, as the runtime computes them (one clip per feed; the
    aligner's encoder, of an aligner-only bundle, takes them unpadded)."""
    mel = LogMel(manifest.mel)
    pad_to = manifest.encoder.chunk_frames if manifest.encoder else 1
    feeds = []
    for wav in audios:
        features, lengths = batch_features(mel, [wav], pad_to=pad_to)
        feeds.append({"input_features": features, "feature_lens": lengths})
    return feeds


def _retype_cache(spec: GraphSpec, dtype: str) -> GraphSpec:
    """The decoder's graph spec with its KV cache inputs and outputs of ``dtype``."""
    retyped = [
        dataclasses.replace(t, dtype=dtype) if t.name.startswith(("past_", "present.")) else t
        for t in spec.inputs + spec.outputs
    ]
    return dataclasses.replace(spec, inputs=retyped[: len(spec.inputs)], outputs=retyped[len(spec.inputs) :])


def quantize_bundle(
    source: str | Path,
    out: str | Path,
    recipe: Recipe,
    calibration: Path | None = None,
    overwrite: bool = False,
) -> tuple[Path, dict]:
    """Write ``out`` from the fp32 bundle ``source``; returns the path and the quality report."""
    bundle = load_bundle(source)
    manifest = bundle.manifest
    if manifest.recipe != "fp32":
        raise BundleError(
            bundle.path,
            f"is already quantized (recipe {manifest.recipe})",
            "quantize the fp32 bundle that `qwen-asr-edge export` wrote",
        )
    int8_kv = recipe.kv_cache == "int8" and "decoder" in manifest.graphs
    if int8_kv and manifest.decoder.attention != "gqa":
        raise InputError(
            f"{bundle.path}: an int8 KV cache needs the GroupQueryAttention decoder, not "
            f"{manifest.decoder.attention!r}"
        )
    out = check_bundle_output(out, [bundle.path], overwrite)
    audios = calibration_audio(calibration, manifest.mel.sample_rate)

    # Graphs are read through a UTF-8 link where the source's path is not UTF-8 text (onnx and
    # the quantizer take paths as such); messages keep naming the user's path.
    with staged(out) as tmp, utf8_alias(bundle.path) as source_folder:
        shutil.copy2(source_folder / manifest.tokenizer, tmp / manifest.tokenizer)
        gptq = recipe.algorithm == "gptq" and "decoder" in manifest.graphs
        prefills = _DecoderCalibration(source_folder, audios) if gptq or int8_kv else None
        graphs = {}
        for name, spec in manifest.graphs.items():
            log.info("quantizing the %s (%s)", name, recipe.precision[name])
            # GPTQ calibrates the ASR decoder only; the aligner's graphs get RTN.
            calibration_for = prefills.reader() if gptq and name == "decoder" else None
            if recipe.encoder_conv == "int8" and name in ("encoder", "aligner_encoder"):
                calibration_for = encoder_feeds(manifest, audios)
            quantize_graph(source_folder / spec.file, tmp / spec.file, name, recipe, calibration_for)
            graphs[name] = dataclasses.replace(spec, precision=recipe.precision[name])
        kv = manifest.kv_cache
        if int8_kv:
            log.info("calibrating the int8 KV cache on %d clips", len(audios))
            scales = kv_cache.calibrate(source_folder, manifest, prefills.feeds)
            model = graph_io.load(tmp / graphs["decoder"].file)
            kv_cache.quantize_kv_cache(model, manifest, scales)
            graph_io.save(model, tmp / graphs["decoder"].file)
            kv = dataclasses.replace(kv, dtype="int8")
            graphs["decoder"] = _retype_cache(graphs["decoder"], "int8")
        if recipe.decoder == "fp16" and "decoder" in graphs:
            kv = dataclasses.replace(kv, dtype="float16")
            graphs["decoder"] = _retype_cache(graphs["decoder"], "float16")
        new = dataclasses.replace(
            manifest, graphs=graphs, kv_cache=kv, recipe=recipe.name, quantization=recipe.describe()
        )

        def finish() -> None:  # hashes of everything written so far
            names = sorted(p.name for p in tmp.iterdir() if p.name != "manifest.json")
            write_manifest(tmp, dataclasses.replace(new, files=file_entries(tmp, names)))

        finish()
        log.info("measuring quality against the fp32 bundle on %d clips", len(audios))
        report = quality.compare_bundles(bundle, load_bundle(tmp), audios)
        (tmp / "quality.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        finish()
    return out, report
