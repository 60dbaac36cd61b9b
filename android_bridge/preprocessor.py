"""The log-mel front end as an ONNX graph (``preprocessor.onnx``), so an app feeds PCM, not features.

The graph computes what runtime.mel.LogMel computes, with standard ONNX ops only (opset 17):

    pcm [1, S] --Pad(reflect, n_fft//2)--> [1, S + n_fft] --Unsqueeze--> [1, 1, S + n_fft]
        --Conv(windowed DFT basis [2 * bins, 1, n_fft], stride hop)--> [1, 2 * bins, S // hop + 1]
        --square, real + imaginary--> power [1, bins, F + 1] --drop the last frame--> [1, bins, F]
        --MatMul(Slaney filters^T [n_mels, bins])--> [1, n_mels, F]
        --log10(max(x, 1e-10)), max(x, max - log_floor_db), (x + 4) / 4--> log_mel [1, n_mels, F]

with ``bins = n_fft // 2 + 1`` and ``F = S // hop``. The DFT is a Conv with the periodic Hann
window folded into a cos/sin basis rather than ONNX's STFT op: onnxruntime's STFT at n_fft 400 (not
a power of two) is off by up to 5e-3 on log-mel values, the Conv by about 3e-5 (toolchain §6).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from qwen_asr_edge.runtime.bundle import MelSpec, TensorSpec
from qwen_asr_edge.runtime.mel import mel_filterbank

OPSET = 17
INPUT = "pcm"
OUTPUT = "log_mel"


def io_specs(spec: MelSpec) -> tuple[list[TensorSpec], list[TensorSpec]]:
    """The graph's inputs and outputs as the manifest names them.

    Returns:
        ([pcm float32 [1, "samples"]], [log_mel float32 [1, n_mels, "frames"]]); frames =
        samples // hop_length.
    """
    return (
        [TensorSpec(INPUT, "float32", [1, "samples"])],
        [TensorSpec(OUTPUT, "float32", [1, spec.n_mels, "frames"])],
    )


def dft_basis(spec: MelSpec) -> np.ndarray:
    """The windowed real DFT as Conv weights.

    Returns:
        (2 * (n_fft // 2 + 1), 1, n_fft) float32: rows 0..bins-1 are ``w[n] cos(2 pi k n / n_fft)``,
        rows bins.. are ``-w[n] sin(2 pi k n / n_fft)``, ``w`` the periodic Hann window (as LogMel's).
    """
    n_fft = spec.n_fft
    n = np.arange(n_fft)
    k = np.arange(n_fft // 2 + 1)[:, None]
    window = (0.5 - 0.5 * np.cos(2.0 * np.pi * n / n_fft)).astype(np.float32).astype(np.float64)
    angle = 2.0 * np.pi * ((k * n) % n_fft) / n_fft  # reduced first: exact phases for large k * n
    basis = np.concatenate([np.cos(angle) * window, -np.sin(angle) * window])
    return basis[:, None, :].astype(np.float32)


def build_preprocessor(spec: MelSpec):
    """The log-mel graph for ``spec`` (see the module docstring).

    Args:
        spec: The bundle's mel parameters (sample_rate only documents the input's rate).

    Returns:
        An onnx.ModelProto, checked: input ``pcm`` float32 [1, samples] (16 kHz, peak-normalised as
        runtime.audio does), output ``log_mel`` float32 [1, n_mels, samples // hop_length]. The
        input must hold more than n_fft // 2 samples (reflect padding; LogMel.min_samples) or
        onnxruntime's Pad fails.

    Raises:
        ImportError: the onnx package is missing.
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    half = spec.n_fft // 2
    bins = spec.n_fft // 2 + 1
    filters = mel_filterbank(spec).astype(np.float32).T  # (n_mels, bins), as LogMel's float32 copy

    def const(name: str, value) -> onnx.TensorProto:
        return numpy_helper.from_array(np.asarray(value), name)

    initializers = [
        const("pads", np.array([0, half, 0, half], np.int64)),
        const("axis1", np.array([1], np.int64)),
        const("basis", dft_basis(spec)),
        const("split_shape", np.array([0, 2, bins, -1], np.int64)),
        const("samples_axis", np.array([1], np.int64)),
        const("hop", np.array([spec.hop_length], np.int64)),
        const("zero", np.array([0], np.int64)),
        const("axis2", np.array([2], np.int64)),
        const("filters", filters),
        const("floor", np.array(1e-10, np.float32)),
        const("inv_ln10", np.array(1.0 / np.log(10.0), np.float32)),
        const("log_floor", np.array(spec.log_floor_db, np.float32)),
        const("four", np.array(4.0, np.float32)),
    ]
    node = helper.make_node
    nodes = [
        node("Pad", [INPUT, "pads"], ["padded"], mode="reflect"),
        node("Unsqueeze", ["padded", "axis1"], ["signal"]),  # [1, 1, S + 2 * half]
        node("Conv", ["signal", "basis"], ["spectrum"], strides=[spec.hop_length]),  # [1, 2 * bins, F + 1]
        node("Mul", ["spectrum", "spectrum"], ["squares"]),
        node("Reshape", ["squares", "split_shape"], ["parts"]),  # [1, 2, bins, F + 1]
        node("ReduceSum", ["parts", "axis1"], ["power_all"], keepdims=0),  # [1, bins, F + 1]
        # F = samples // hop: the STFT's last frame is dropped, as LogMel does.
        node("Shape", [INPUT], ["pcm_shape"]),
        node("Gather", ["pcm_shape", "samples_axis"], ["samples"], axis=0),
        node("Div", ["samples", "hop"], ["frames"]),
        node("Slice", ["power_all", "zero", "frames", "axis2"], ["power"]),  # [1, bins, F]
        node("MatMul", ["filters", "power"], ["mel"]),  # [1, n_mels, F]
        node("Max", ["mel", "floor"], ["clamped"]),
        node("Log", ["clamped"], ["ln"]),
        node("Mul", ["ln", "inv_ln10"], ["log10"]),
        node("ReduceMax", ["log10"], ["peak"], axes=[1, 2], keepdims=1),  # per clip
        node("Sub", ["peak", "log_floor"], ["lowest"]),
        node("Max", ["log10", "lowest"], ["floored"]),
        node("Add", ["floored", "four"], ["shifted"]),
        node("Div", ["shifted", "four"], [OUTPUT]),
    ]
    graph = helper.make_graph(
        nodes,
        "log_mel",
        [helper.make_tensor_value_info(INPUT, TensorProto.FLOAT, [1, "samples"])],
        [helper.make_tensor_value_info(OUTPUT, TensorProto.FLOAT, [1, spec.n_mels, "frames"])],
        initializers,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="qwen-asr-edge android-pack",
        doc_string=(
            f"PCM float32 [1, samples] at {spec.sample_rate} Hz -> Whisper-style log-mel float32 "
            f"[1, {spec.n_mels}, samples // {spec.hop_length}] (n_fft {spec.n_fft}, Slaney mel "
            f"{spec.f_min:g}-{spec.f_max:g} Hz, floor max - {spec.log_floor_db:g}, (x + 4) / 4)"
        ),
    )
    model.ir_version = 8  # opset 17's IR: readable by onnxruntime 1.13 and later
    onnx.checker.check_model(model, full_check=True)
    return model


def write_preprocessor(spec: MelSpec, path: Path) -> Path:
    """Build the graph (``build_preprocessor``) and save it to ``path`` (one file, ~0.9 MB at
    n_fft 400 and 128 mels).

    Returns:
        ``path``.
    """
    import onnx

    onnx.save(build_preprocessor(spec), str(path))
    return path
