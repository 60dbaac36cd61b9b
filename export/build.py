"""One home for "make a bundle from a checkpoint, optionally quantized": export, then quantize.

The CLI (``qwen-asr-edge export --recipe``), the ``--model`` cache (qwen_asr_edge.models), the
benchmarks and the demo training all call :func:`build_bundle`, so the order of the steps, where
the fp32 intermediate lives and how it is cleaned up are decided once, here.
"""

from __future__ import annotations

import logging
from pathlib import Path

from qwen_asr_edge.runtime.bundle import MANIFEST_NAME, check_bundle_output
from qwen_asr_edge.runtime.errors import InputError, MissingDependencyError
from qwen_asr_edge.runtime.locked_folders import locked_temp_folder

log = logging.getLogger("qwen_asr_edge.export")


def is_bundle(source: str | Path) -> bool:
    """True when ``source`` is a bundle folder (it has a manifest), not a checkpoint or hub id."""
    return (Path(source).expanduser() / MANIFEST_NAME).is_file()


def build_bundle(
    source: str | Path,
    out: str | Path,
    *,
    recipe: str | None = None,
    block_size: int | None = None,
    kv_cache: str | None = None,
    int8_op: str | None = None,
    calibration: Path | None = None,
    aligner: str | None = None,
    encoder_attention: str = "windowed",
    decoder_attention: str = "gqa",
    validate: bool = True,
    overwrite: bool = False,
) -> tuple[Path, dict | None]:
    """Export ``source`` to the bundle ``out``, quantized with ``recipe`` when one is named.

    Without a recipe the fp32 export goes straight to ``out``. With one, the fp32 bundle is
    exported to a temp folder beside ``out``, quantized into ``out``, and the temp folder removed
    whether that succeeds or fails. ``out`` is written atomically either way: it appears whole or
    not at all. ``source`` may also be an fp32 bundle folder, which is then only quantized (how the
    benchmarks derive several recipes from one export).

    Args:
        source: a checkpoint folder in the official layout, a hub id (``Qwen/Qwen3-ASR-0.6B``),
            or, with ``recipe``, an fp32 bundle folder.
        out: the bundle folder to write.
        recipe: a quantization recipe name (``runtime.bundle.RECIPE_NAMES``); None for fp32.
        block_size: INT4 block size for the recipe (default: the recipe's); unused without one.
        kv_cache: the decoder's KV cache for the recipe, "fp32" (default) or "int8".
        int8_op: how the recipe's int8 layers run, "MatMulNBits" or "per-token" (None: the
            recipe's; ``quant.recipes.get_recipe``).
        calibration: a folder of audio for GPTQ and the quality report (default: generated
            audio); unused without a recipe.
        aligner: a Qwen3-ForcedAligner checkpoint (folder or hub id) whose graphs join the bundle.
        encoder_attention: "windowed" (8 s windows, as trained) or "full" (whole-clip attention).
        decoder_attention: "gqa" (onnxruntime's fused attention) or "portable" (standard ops only).
        validate: check the exported graphs against torch (fp32 exports only).
        overwrite: replace ``out`` if it exists.

    Returns:
        The bundle's path and the quantization quality report (per graph error against fp32),
        or None for an fp32 export.

    Raises:
        OutputExistsError: ``out`` exists and ``overwrite`` is False (checked before any work).
        OutputError: ``out`` is empty, is or holds the source, or is not a bundle (see
            ``runtime.bundle.check_bundle_output``).
        InputError: an unknown recipe, block size or KV cache, or a bundle source without a recipe.
        MissingDependencyError: the ``[export]`` extra (torch, onnx) is not installed.
        CheckpointError: the checkpoint is missing, incomplete or cannot be fetched.
        BundleError: a bundle source that is not an fp32 bundle.
        ExportValidationError: an exported graph disagrees with torch beyond the tolerance.
    """
    out = check_bundle_output(out, [source, *([aligner] if aligner else [])], overwrite)
    from_bundle = is_bundle(source)
    if from_bundle and recipe is None:
        raise InputError(f"{source} is already a bundle: name a recipe to quantize it")
    if recipe is None and any(o is not None for o in (block_size, kv_cache, int8_op, calibration)):
        raise InputError(
            "--block-size, --kv-cache, --int8-op and --calibration apply to a quantization: name a --recipe"
        )
    if calibration is not None and not Path(calibration).expanduser().is_dir():
        raise InputError(f"{calibration}: no such calibration folder")  # before minutes of export
    try:  # torch and onnx only now, so this module imports without the [export] extra
        from qwen_asr_edge.quant.recipes import get_recipe

        from .write import export_bundle

        if recipe is not None:
            from qwen_asr_edge.quant.quantize import quantize_bundle
    except ImportError as e:
        raise MissingDependencyError(f"exporting {source} ({e.name} is missing)", "export") from None
    chosen = (
        get_recipe(recipe, block_size, kv_cache, int8_op) if recipe is not None else None
    )  # bad names fail before work
    export_options = dict(
        encoder_attention=encoder_attention,
        decoder_attention=decoder_attention,
        aligner=aligner,
        run_validation=validate,
    )
    if chosen is None:
        return export_bundle(str(source), out, overwrite=overwrite, **export_options), None
    if from_bundle:
        return quantize_bundle(source, out, chosen, calibration=calibration, overwrite=overwrite)
    out.parent.mkdir(parents=True, exist_ok=True)
    # Beside OUT, so the fp32 copy is on the same disk, and a run killed outright leaves it where
    # the next run for OUT deletes it.
    with locked_temp_folder(f".{out.name}.fp32-", out.parent) as tmp:
        fp32 = export_bundle(str(source), tmp / "fp32", **export_options)
        log.info("quantizing with the %s recipe", chosen.name)
        return quantize_bundle(fp32, out, chosen, calibration=calibration, overwrite=overwrite)
