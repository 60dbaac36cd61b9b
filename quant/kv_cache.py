"""An int8 KV cache for the GroupQueryAttention decoder: per-channel scales calibrated on the fp32
bundle's own cache, and the decoder graph told to keep its cache in int8.

A decode step reads the whole cache. For the 0.6B model at context 500 that is 115 MB of fp32
reads, half of what the int4 weights weigh, which is why its decode step grows with context;
int8 reads a quarter of it. onnxruntime's GroupQueryAttention (1.32, CPU and CUDA kernels;
contrib-op attributes ``k_quant_type``/``v_quant_type``/``kv_cache_bit_width``, inputs 12 and 13
``k_scale``/``v_scale``) quantizes each new row as it writes it and dequantizes inside its QK and
SV products, so nothing else in the graph or the runtime changes but the cache's element type.
An fp16 cache would halve the reads too, but on x86 the CPU kernel converts the fp16 history back
to fp32 for every query head on every step.

The scales are static: ``max |x|`` per channel (kv_heads x head_dim, keys after the rotary
embedding, as the cache holds them) over the prefill caches of the calibration audio, / 127.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from qwen_asr_edge.runtime.bundle import Manifest

# Scales' input slots of com.microsoft.GroupQueryAttention (after cos/sin_cache, position_ids,
# attention_bias, head_sink).
K_SCALE_INPUT, V_SCALE_INPUT = 12, 13


def calibrate(bundle_path: Path, manifest: Manifest, feeds: list[dict[str, np.ndarray]]) -> list[np.ndarray]:
    """Per layer, a (2, kv_heads * head_dim) float32 array of key and value scales.

    Args:
        bundle_path: the fp32 bundle.
        manifest: its manifest.
        feeds: prefill inputs (``runtime.decoding.prefill_feeds``, caches exactly as long as each
            prompt, so every cached row is a real one).
    """
    import onnxruntime as ort

    kv = manifest.kv_cache
    session = ort.InferenceSession(
        str(bundle_path / manifest.graphs["decoder"].file), providers=["CPUExecutionProvider"]
    )
    names = [name for layer in range(kv.num_layers) for name in kv.names(layer)[2:]]
    peak = np.zeros((kv.num_layers, 2, kv.num_kv_heads * kv.head_dim), np.float32)
    for feed in feeds:
        for i, present in enumerate(session.run(names, feed)):  # (1, kv_heads, rows, head_dim)
            channel_max = np.abs(present[0]).max(axis=1).reshape(-1)
            peak[i // 2, i % 2] = np.maximum(peak[i // 2, i % 2], channel_max)
    # A channel that was 0 throughout gets the smallest positive scale rather than 0 (a division).
    return [np.maximum(layer / 127.0, np.finfo(np.float32).tiny) for layer in peak]


def quantize_kv_cache(model: onnx.ModelProto, manifest: Manifest, scales: list[np.ndarray]) -> None:
    """Rewrite ``model`` (the decoder) in place: each GroupQueryAttention node keeps an int8 cache
    with ``scales``, and the cache's graph inputs and outputs become int8.

    Raises:
        ValueError: a decoder without one GroupQueryAttention per layer (the portable graph).
    """
    kv = manifest.kv_cache
    nodes = [n for n in model.graph.node if n.op_type == "GroupQueryAttention"]
    if len(nodes) != kv.num_layers:
        raise ValueError(
            f"an int8 KV cache needs the GroupQueryAttention decoder: {len(nodes)} such nodes for "
            f"{kv.num_layers} layers"
        )
    past_key = {kv.names(layer)[0]: layer for layer in range(kv.num_layers)}
    for node in nodes:
        layer = past_key[node.input[3]]
        k_name, v_name = f"kv_cache.{layer}.k_scale", f"kv_cache.{layer}.v_scale"
        model.graph.initializer.extend(
            [
                numpy_helper.from_array(scales[layer][0], k_name),
                numpy_helper.from_array(scales[layer][1], v_name),
            ]
        )
        inputs = [*node.input, *[""] * (K_SCALE_INPUT - len(node.input))]
        inputs[K_SCALE_INPUT : V_SCALE_INPUT + 1] = [k_name, v_name]
        del node.input[:]
        node.input.extend(inputs)
        node.attribute.extend(
            [
                helper.make_attribute("k_quant_type", "PER_CHANNEL"),
                helper.make_attribute("v_quant_type", "PER_CHANNEL"),
                helper.make_attribute("kv_cache_bit_width", 8),
            ]
        )
    cache = {name for layer in range(kv.num_layers) for name in kv.names(layer)}
    for value in [*model.graph.input, *model.graph.output]:
        if value.name in cache:
            value.type.tensor_type.elem_type = TensorProto.INT8
