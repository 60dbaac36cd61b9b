"""ONNX graph -> quantized ONNX graph, with onnxruntime's own quantizers (and, for per-token INT8,
which they do not offer, a rewrite of our own onto onnxruntime's ops).

Parts of a graph are found by name and structure: the decoder's token table is the Gather on
``model.embed_tokens.weight``, the head is the MatMul that produces ``logits``, every other
MatMul with a constant weight is a linear layer. Attention's own MatMuls have no constant weight
and stay float.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import re
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

from .front_end import scan_front_end
from .recipes import Recipe

log = logging.getLogger("qwen_asr_edge.quant")

ORT_QUANTIZATION = "onnxruntime.quantization"


class QuantizerChatter(logging.Filter):
    """Passes every record except onnxruntime's quantizer's own below ERROR: its INFO line per
    node, and a WARNING that asks for a pre-processing step our graphs do not need."""

    def __init__(self, folder: str):
        super().__init__()
        self.folder = folder  # onnxruntime/quantization/, to recognise records logged via the root

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.ERROR:
            return True
        return not (record.name.startswith(ORT_QUANTIZATION) or record.pathname.startswith(self.folder))


@contextlib.contextmanager
def quiet_quantizer() -> Iterator[None]:
    """Keep onnxruntime's quantizer chatter off the user's terminal while the block runs, without
    changing any logger's level or handlers.

    Measured (onnxruntime 1.2x): MatMulNBitsQuantizer logs an INFO per node through its module
    logger ``onnxruntime.quantization.matmul_nbits_quantizer``; quantize_dynamic logs INFO and a
    WARNING through the *root* logger (module-level ``logging.info``/``logging.warning``), and
    matmul_nbits_quantizer calls ``logging.basicConfig(level=INFO)`` on import, so without a
    filter all of it reaches stderr. A logger's filters see only the records logged through that
    logger, so one filter goes on each of those loggers, for the duration only; it drops nothing
    but records from onnxruntime's quantization code.
    """
    import onnxruntime.quantization as ortq
    import onnxruntime.quantization.matmul_nbits_quantizer  # noqa: F401  (its logger must exist now)

    quiet = QuantizerChatter(os.path.dirname(ortq.__file__) + os.sep)
    names = [n for n in list(logging.Logger.manager.loggerDict) if n.startswith(ORT_QUANTIZATION)]
    loggers = [logging.getLogger(), *(logging.getLogger(n) for n in names)]
    for logger in loggers:
        logger.addFilter(quiet)
    try:
        yield
    finally:
        for logger in loggers:
            logger.removeFilter(quiet)


EMBEDDING = "model.embed_tokens.weight"
HEAD_WEIGHT = "lm_head.weight_t"


def load(path: Path) -> onnx.ModelProto:
    return onnx.load(str(path))


def save(model: onnx.ModelProto, path: Path) -> None:
    data = path.with_name(path.name + ".data")
    data.unlink(missing_ok=True)  # onnx appends to an existing data file
    onnx.save(
        model,
        str(path),
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location=data.name,
        size_threshold=1024,
    )


def _producers(model: onnx.ModelProto) -> dict[str, onnx.NodeProto]:
    return {o: n for n in model.graph.node for o in n.output}


def head_node(model: onnx.ModelProto) -> onnx.NodeProto | None:
    """The output projection: the node that computes ``logits`` (behind any Reshape)."""
    producers = _producers(model)
    node = producers.get("logits")
    while node is not None and node.op_type == "Reshape":
        node = producers.get(node.input[0])
    return node


def untie_head(model: onnx.ModelProto) -> bool:
    """A tied head reads the embedding table through a Transpose (or, as Gemm with transB=1, the
    table itself). Give it a transposed copy of its own as a MatMul, so that table and head can
    each be quantized with the op they need. Returns whether the graph was tied."""
    head = head_node(model)
    inits = {i.name: i for i in model.graph.initializer}
    if head is None:
        return False
    if head.op_type == "Gemm" and head.input[1] in inits:
        attrs = {a.name: a for a in head.attribute}
        if "transB" not in attrs or attrs["transB"].i != 1 or ("transA" in attrs and attrs["transA"].i):
            return False
        table, source = inits[head.input[1]], None
    elif head.op_type == "MatMul":
        source = _producers(model).get(head.input[1])
        if source is None or source.op_type != "Transpose" or source.input[0] not in inits:
            return False
        table = inits[source.input[0]]
    else:
        return False
    transposed = numpy_helper.from_array(np.ascontiguousarray(numpy_helper.to_array(table).T), HEAD_WEIGHT)
    model.graph.initializer.append(transposed)
    matmul = onnx.helper.make_node(
        "MatMul", [head.input[0], HEAD_WEIGHT], list(head.output), name="/lm_head/MatMul"
    )
    index = list(model.graph.node).index(head)
    model.graph.node.remove(head)
    model.graph.node.insert(index, matmul)
    if source is not None and not any(source.output[0] in n.input for n in model.graph.node):
        model.graph.node.remove(source)
    return True


def parts(model: onnx.ModelProto) -> dict[str, list[str]]:
    """Node names of the quantizable parts: linear layers, the head, the token table."""
    inits = {i.name for i in model.graph.initializer}
    head = head_node(model)
    out: dict[str, list[str]] = {"linear": [], "head": [], "embedding": []}
    for node in model.graph.node:
        if node.op_type == "MatMul" and node.input[1] in inits:
            out["head" if node is head else "linear"].append(node.name)
        elif node.op_type == "Gather" and node.input[0] == EMBEDDING:
            out["embedding"].append(node.name)
    return out


def _excluded(names: list[str], recipe: Recipe) -> list[str]:
    return [n for n in names if n.startswith(recipe.keep_fp32)] if recipe.keep_fp32 else []


def quantize_int4(
    model: onnx.ModelProto, nodes: list[str], recipe: Recipe, calibration=None
) -> onnx.ModelProto:
    """Weight-only block-wise INT4 (MatMulNBits for MatMuls, GatherBlockQuantized for the table)."""
    if not nodes:
        return model
    model = quantize_nbits(model, nodes, 4, recipe.block_size, recipe.algorithm, calibration)
    pack_gather_tables_as_uint8(model)
    if share_tied_int4_table(model):
        log.info("decoder: the tied head shares the token table's INT4 blocks")
    return model


def quantize_nbits(
    model: onnx.ModelProto,
    nodes: list[str],
    bits: int,
    block_size: int,
    algorithm: str = "rtn",
    calibration=None,
) -> onnx.ModelProto:
    """Block-wise symmetric weights of ``bits`` bits: MatMulNBits for MatMuls (accuracy_level 4:
    each row of activations quantized to INT8 on its own, block by block), GatherBlockQuantized
    for tables."""
    from onnxruntime.quantization.matmul_nbits_quantizer import (
        DefaultWeightOnlyQuantConfig,
        GPTQWeightOnlyQuantConfig,
        MatMulNBitsQuantizer,
    )

    if not nodes:
        return model
    gathers = [n.name for n in model.graph.node if n.name in nodes and n.op_type == "Gather"]
    matmuls = [n for n in nodes if n not in gathers]
    # onnxruntime's quantizer takes every node of op_types_to_quantize whatever nodes_to_include
    # says (include *or* op type), so what is not ours must be excluded by name (keep_fp32, the head
    # of a recipe that keeps it fp32, int8 layers beside int4 ones).
    others = [n.name for n in model.graph.node if n.op_type in ("MatMul", "Gather") and n.name not in nodes]
    common = dict(block_size=block_size, is_symmetric=True, accuracy_level=4)
    if algorithm == "gptq" and matmuls:
        config = GPTQWeightOnlyQuantConfig(
            calibration_data_reader=calibration,
            percdamp=0.01,
            block_size=block_size,
            actorder=False,
            mse=False,
            perchannel=True,
        )
        quantizer = MatMulNBitsQuantizer(
            model, nodes_to_include=matmuls, nodes_to_exclude=others, algo_config=config, **common
        )
        # Its GPTQ prints a "\rProgress: [###  ]" bar on stdout (where the bundle's path goes):
        # on a terminal it goes to stderr, ended with a newline; in a log, nowhere.
        terminal = sys.stderr.isatty()
        with contextlib.redirect_stdout(sys.stderr if terminal else io.StringIO()):
            quantizer.process()
        if terminal:
            print(file=sys.stderr)
        model = quantizer.model.model
        matmuls = []
    todo = matmuls + gathers
    if todo:
        types = tuple(t for t, group in (("MatMul", matmuls), ("Gather", gathers)) if group)
        config = DefaultWeightOnlyQuantConfig(
            op_types_to_quantize=types, quant_axes=(("MatMul", 0), ("Gather", 1)), bits=bits, **common
        )
        quantizer = MatMulNBitsQuantizer(
            model,
            nodes_to_include=todo,
            nodes_to_exclude=others,
            op_types_to_quantize=types,
            quant_axes=(("MatMul", 0), ("Gather", 1)),
            algo_config=config,
            **common,
        )
        quantizer.process()
        model = quantizer.model.model
    return model


def pack_gather_tables_as_uint8(model: onnx.ModelProto) -> None:
    """Store int4 GatherBlockQuantized tables as uint8 pairs (low nibble first, zero point 8).

    The quantizer writes an int4-typed initializer, which ORT-format conversion accepts but
    cannot load, and which the CUDA kernel does not take; uint8 with ``bits=4`` works for both.
    """
    inits = {i.name: i for i in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type != "GatherBlockQuantized" or len(node.input) > 3:
            continue  # zero points present: asymmetric tables are left as they are
        table = inits[node.input[0]]
        if table.data_type != onnx.TensorProto.INT4:
            continue
        values = numpy_helper.to_array(table).astype(np.int16) + 8  # signed -8..7 -> 0..15
        if values.shape[-1] % 2:
            continue
        packed = (values[..., 0::2] | (values[..., 1::2] << 4)).astype(np.uint8)
        table.CopyFrom(numpy_helper.from_array(packed, table.name))
        node.attribute.append(onnx.helper.make_attribute("bits", 4))


def share_tied_int4_table(model: onnx.ModelProto) -> bool:
    """Let a tied head read the token table's INT4 blocks instead of a copy of its own.

    The table quantized along its hidden axis (GatherBlockQuantized, uint8 pairs, symmetric) and
    the head's weight quantized along K (MatMulNBits B is (N=vocab, K/block, block/2), scales
    (N, K/block)) hold the same blocks in the same byte order. The head then takes the table
    through a Reshape, which onnxruntime folds when it loads the graph: one copy on disk.
    """
    head = head_node(model)
    gather = next((n for n in model.graph.node if n.op_type == "GatherBlockQuantized"), None)
    if (
        head is None
        or gather is None
        or head.op_type != "MatMulNBits"
        or len(head.input) > 3
        or len(gather.input) > 3
    ):
        return False
    inits = {i.name: i for i in model.graph.initializer}
    table, table_scales = inits.get(gather.input[0]), inits.get(gather.input[2])
    weight, scales = inits.get(head.input[1]), inits.get(head.input[2])
    if None in (table, table_scales, weight, scales) or table.data_type != onnx.TensorProto.UINT8:
        return False
    if (
        list(table.dims) != [weight.dims[0], weight.dims[1] * weight.dims[2]]
        or table_scales.dims != scales.dims
    ):
        return False
    # Same scales and (up to rounding ties, which the two quantizer paths break differently) the
    # same 4-bit values; otherwise, e.g. for a GPTQ-calibrated head, keep both.
    same_bytes = np.mean(numpy_helper.to_array(table).reshape(weight.dims) == numpy_helper.to_array(weight))
    if not (
        np.array_equal(numpy_helper.to_array(table_scales), numpy_helper.to_array(scales))
        and same_bytes > 0.99
    ):
        return False
    shape = numpy_helper.from_array(np.array(list(weight.dims), dtype=np.int64), f"{weight.name}_shape")
    reshaped = f"{table.name}_as_head"
    model.graph.initializer.append(shape)
    index = list(model.graph.node).index(head)
    model.graph.node.insert(
        index, onnx.helper.make_node("Reshape", [table.name, shape.name], [reshaped], name="/lm_head/Reshape")
    )
    head.input[1], head.input[2] = reshaped, table_scales.name
    model.graph.initializer.remove(weight)
    model.graph.initializer.remove(scales)
    return True


def quantize_int8(
    src: Path, dst: Path, nodes: list[str], types: list[str], reduce_range: bool = True
) -> None:
    """Dynamic INT8 (MatMulInteger with per-channel weights; int8 Gather for the table), file to
    file: the quantizer loads the model itself, so the caller should not hold it meanwhile.
    ``reduce_range``: 7-bit weights, exact on CPUs without VNNI (see Recipe.reduce_range)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(
        src,
        dst,
        op_types_to_quantize=types,
        nodes_to_quantize=nodes,
        per_channel=True,
        reduce_range=reduce_range,
        weight_type=QuantType.QInt8,
        use_external_data_format=True,
        extra_options={"MatMulConstBOnly": True},
    )


def quantize_per_token(model: onnx.ModelProto, nodes: list[str], reduce_range: bool = True) -> None:
    """Rewrite ``nodes`` (MatMuls with a constant (K, N) weight) of ``model`` in place as INT8 with
    per-token activation scales and per-channel weight scales (SmoothQuant's "per-token /
    per-channel" W8A8 scheme):

        s = max(|x|, over K) / 127                   one scale per row of x: (..., 1) float32
        q = QuantizeLinear(x / s, 1, 128)            uint8, symmetric around 128
        y = MatMulIntegerToFloat(q, Wq, 1, w_scale, 128) * s

    ``Wq`` is int8 (N scales, ``max |W[:, n]|`` / 63, 7-bit with ``reduce_range`` as
    onnxruntime's quantizer does: CPUs without VNNI sum u8 x s8 pairs in saturating int16).
    Each row is quantized on its own, so a token's output does not depend on the rows batched
    with it (unlike DynamicQuantizeLinear's one scale per tensor), and onnxruntime runs the product
    with its u8 x s8 GEMM, which on AVX2 without VNNI is 2.6x faster than 8-bit MatMulNBits at
    accuracy_level 4 (a 143 x 896 x 3584 encoder matrix: 2.9 ms against 7.5, 2 threads). MatMuls
    that share an input share its quantization."""
    from onnx import helper

    if not nodes:
        return
    qmax = 63 if reduce_range else 127
    inits = {i.name: i for i in model.graph.initializer}
    consts = {
        "per_token/one": np.array(1.0, np.float32),
        "per_token/zero_point": np.array(128, np.uint8),
        "per_token/inv127": np.array(1 / 127, np.float32),
        "per_token/tiny": np.array(np.finfo(np.float32).tiny, np.float32),  # an all-zero row divides by it
        "per_token/last_axis": np.array([-1], np.int64),
    }
    model.graph.initializer.extend(numpy_helper.from_array(v, k) for k, v in consts.items())
    opset = next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))

    def reduce_max(x: str, y: str, name: str) -> onnx.NodeProto:  # axes became an input in opset 18
        if opset >= 18:
            return helper.make_node("ReduceMax", [x, "per_token/last_axis"], [y], name=name, keepdims=1)
        return helper.make_node("ReduceMax", [x], [y], name=name, axes=[-1], keepdims=1)

    quantized: dict[str, tuple[str, str]] = {}  # activation -> (codes, row scales)
    out: list[onnx.NodeProto] = []
    chosen = set(nodes)
    for node in model.graph.node:
        if node.name not in chosen:
            out.append(node)
            continue
        if node.op_type != "MatMul" or node.input[1] not in inits:
            raise ValueError(f"{node.name}: per-token INT8 needs a MatMul with a constant weight")
        x, w_name = node.input
        if x not in quantized:
            p = f"{node.name}/per_token"
            out += [
                helper.make_node("Abs", [x], [f"{p}/abs"], name=f"{p}/Abs"),
                reduce_max(f"{p}/abs", f"{p}/max", f"{p}/ReduceMax"),
                helper.make_node("Max", [f"{p}/max", "per_token/tiny"], [f"{p}/max_pos"], name=f"{p}/Max"),
                helper.make_node(
                    "Mul", [f"{p}/max_pos", "per_token/inv127"], [f"{p}/scale"], name=f"{p}/Scale"
                ),
                helper.make_node("Div", [x, f"{p}/scale"], [f"{p}/scaled"], name=f"{p}/Div"),
                # scale 1: rounds half to even and saturates to uint8, as onnxruntime's own quantizers
                helper.make_node(
                    "QuantizeLinear",
                    [f"{p}/scaled", "per_token/one", "per_token/zero_point"],
                    [f"{p}/codes"],
                    name=f"{p}/QuantizeLinear",
                ),
            ]
            quantized[x] = (f"{p}/codes", f"{p}/scale")
        codes, row_scale = quantized[x]
        q_name, s_name = f"{w_name}_per_token_int8", f"{w_name}_per_token_scale"
        if q_name not in inits:  # a weight that two MatMuls read is quantized once
            weight = numpy_helper.to_array(inits[w_name]).astype(np.float32)
            scale = np.maximum(np.abs(weight).max(axis=0) / qmax, np.finfo(np.float32).tiny).astype(
                np.float32
            )
            codes_w = numpy_helper.from_array(np.round(weight / scale).astype(np.int8), q_name)
            model.graph.initializer.extend([codes_w, numpy_helper.from_array(scale, s_name)])
            inits[q_name] = codes_w
        y0 = f"{node.name}/per_token/unscaled"
        out += [
            helper.make_node(
                "MatMulIntegerToFloat",
                [codes, q_name, "per_token/one", s_name, "per_token/zero_point"],
                [y0],
                name=f"{node.name}/MatMulIntegerToFloat",
                domain="com.microsoft",
            ),
            helper.make_node("Mul", [y0, row_scale], list(node.output), name=f"{node.name}/RowScale"),
        ]
    del model.graph.node[:]
    model.graph.node.extend(out)
    used = {i for n in model.graph.node for i in n.input}
    for init in [i for i in model.graph.initializer if i.name not in used]:
        model.graph.initializer.remove(init)
    if not any(o.domain == "com.microsoft" for o in model.opset_import):
        model.opset_import.append(helper.make_opsetid("com.microsoft", 1))


def conv_nodes(model: onnx.ModelProto) -> list[str]:
    """The encoder's convolutions worth quantizing: those with constant weights of more than one
    input channel (conv2d2 and conv2d3; conv2d1 reads the one-channel log-mel and costs ~1 %)."""
    weights = {i.name: i for i in model.graph.initializer}
    return [
        n.name
        for n in model.graph.node
        if n.op_type == "Conv" and n.input[1] in weights and weights[n.input[1]].dims[1] > 1
    ]


def quantize_conv_static(src: Path, dst: Path, nodes: list[str], feeds: list[dict[str, np.ndarray]]) -> None:
    """Static INT8 convolutions (QLinearConv), file to file: per-channel weights, 7-bit
    (``reduce_range``: exact on AVX2 without VNNI, see Recipe.reduce_range), uint8 activations
    whose ranges are the min and max seen on ``feeds`` (the encoder's inputs for the calibration
    audio)."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    class Reader(CalibrationDataReader):
        def __init__(self):
            self._it = iter(feeds)

        def get_next(self):
            return next(self._it, None)

    quantize_static(
        src,
        dst,
        Reader(),
        quant_format=QuantFormat.QOperator,
        op_types_to_quantize=["Conv"],
        nodes_to_quantize=nodes,
        per_channel=True,
        reduce_range=True,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        calibrate_method=CalibrationMethod.MinMax,
        use_external_data_format=True,
    )


# Ops whose fp16 versions overflow or lose too much: norms (x² of activations past 256 is inf),
# softmax, rotary angles, and integer bookkeeping that has no fp16 meaning anyway.
FP16_BLOCKED = [
    "Pow",
    "ReduceMean",
    "Sqrt",
    "Reciprocal",
    "Div",
    "Softmax",
    "Cos",
    "Sin",
    "LayerNormalization",
    "CumSum",
    "Range",
    "Erf",
]


def rotary_angle_nodes(model: onnx.ModelProto) -> list[str]:
    """Every node upstream of a Cos or Sin: rotary angles are position × frequency, and fp16
    holds positions past 2048 only to ±1 (and angles past 512 to ±0.25 rad)."""
    producer = {out: n for n in model.graph.node for out in n.output}
    pending = [i for n in model.graph.node if n.op_type in ("Cos", "Sin") for i in n.input]
    names: set[str] = set()
    while pending:
        node = producer.get(pending.pop())
        if node is not None and node.name not in names:
            names.add(node.name)
            pending.extend(node.input)
    return sorted(names)


def convert_fp16(model: onnx.ModelProto, keep_io: list[str]) -> onnx.ModelProto:
    """fp16 weights and activations; ``keep_io`` inputs/outputs stay fp32 for the runtime."""
    from onnxruntime.transformers.float16 import DEFAULT_OP_BLOCK_LIST, convert_float_to_float16

    fp32_nodes = rotary_angle_nodes(model)
    # Constants read only by kept-fp32 nodes (the inverse frequencies) keep their fp32 values.
    users: dict[str, set[str]] = {}
    for node in model.graph.node:
        for name in node.input:
            users.setdefault(name, set()).add(node.name)
    kept = {
        init.name: onnx.TensorProto.FromString(init.SerializeToString())
        for init in model.graph.initializer
        if init.data_type == onnx.TensorProto.FLOAT and users.get(init.name, {""}) <= set(fp32_nodes)
    }
    model = convert_float_to_float16(
        model,
        keep_io_types=keep_io,
        op_block_list=DEFAULT_OP_BLOCK_LIST + FP16_BLOCKED,
        node_block_list=fp32_nodes,
        disable_shape_infer=True,
    )
    for init in model.graph.initializer:
        if init.name in kept:
            init.CopyFrom(kept[init.name])  # its consumers' Cast to fp32 is now a no-op
    _skip_round_trips(model, set(fp32_nodes))
    # Some onnxruntime versions' converter names two inserted Casts alike; onnxruntime refuses that.
    seen: set[str] = set()
    for i, node in enumerate(model.graph.node):
        if node.name in seen:
            node.name = f"{node.name}_{i}"
        seen.add(node.name)
    return model


def _skip_round_trips(model: onnx.ModelProto, fp32_nodes: set[str]) -> None:
    """The converter casts every output of a kept-fp32 node to fp16 and back before the next
    kept-fp32 node: read the fp32 value directly, so the pair's rounding is gone."""
    producer = {out: n for n in model.graph.node for out in n.output}
    fp16, fp32 = onnx.TensorProto.FLOAT16, onnx.TensorProto.FLOAT

    def cast_to(node) -> int | None:
        if node is None or node.op_type != "Cast":
            return None
        return next(a.i for a in node.attribute if a.name == "to")

    for node in model.graph.node:
        if cast_to(node) != fp32:
            continue
        down = producer.get(node.input[0])
        if cast_to(down) == fp16:
            source = producer.get(down.input[0])
            if source is not None and source.name in fp32_nodes:
                node.input[0] = down.input[0]  # now a Cast fp32 -> fp32, which ORT removes


FP16_CLAMP = 65504.0 - 1000.0  # what the official fp16 encoder clamps each layer's output to


def clamp_encoder_layers(model: onnx.ModelProto) -> int:
    """Clip every encoder layer's output (its second residual Add) to ±FP16_CLAMP, as the official
    encoder does in fp16, so that one large activation cannot become inf and then NaN."""
    outputs = {n.output[0]: n for n in model.graph.node if re.fullmatch(r"/layers/\d+/Add_1", n.name)}
    if not outputs:
        return 0
    lo = numpy_helper.from_array(np.array(-FP16_CLAMP, dtype=np.float32), "fp16_clamp_min")
    hi = numpy_helper.from_array(np.array(FP16_CLAMP, dtype=np.float32), "fp16_clamp_max")
    model.graph.initializer.extend([lo, hi])
    nodes = list(model.graph.node)
    for name, add in outputs.items():
        clipped = f"{name}_clipped"
        for node in nodes:
            for i, x in enumerate(node.input):
                if x == name:
                    node.input[i] = clipped
        clip = onnx.helper.make_node("Clip", [name, lo.name, hi.name], [clipped], name=f"{add.name}/Clip")
        info = next((v for v in model.graph.value_info if v.name == name), None)
        if info is not None:  # the fp16 converter types tensors from value_info
            typed = onnx.ValueInfoProto()
            typed.CopyFrom(info)
            typed.name = clipped
            model.graph.value_info.append(typed)
        model.graph.node.insert(list(model.graph.node).index(add) + 1, clip)
    return len(outputs)


def quantize_graph(src: Path, dst: Path, graph: str, recipe: Recipe, calibration=None) -> None:
    """Write the ``graph`` ("encoder", "decoder", "aligner_encoder" or "aligner") of a bundle
    quantized by ``recipe``: encoders as the encoder, the aligner's text side as the decoder.
    ``calibration``: for the decoder with GPTQ a CalibrationDataReader; for an encoder with an int8
    conv front end a list of its feeds (``input_features``, ``feature_lens``)."""
    with quiet_quantizer():
        _quantize_graph(src, dst, graph, recipe, calibration)


def _quantize_graph(src: Path, dst: Path, graph: str, recipe: Recipe, calibration=None) -> None:
    encoder = graph in ("encoder", "aligner_encoder")
    if encoder and recipe.encoder_conv == "int8":
        if calibration is None:
            raise ValueError("an int8 conv front end needs the encoder's calibration feeds")
        with tempfile.TemporaryDirectory(dir=dst.parent) as tmp:
            convs = Path(tmp) / dst.name
            quantize_conv_static(
                src, convs, conv_nodes(onnx.load(str(src), load_external_data=False)), calibration
            )
            model = load(convs)
    else:
        model = load(src)
    if encoder:
        methods = {"linear": recipe.encoder}
    else:
        methods = {"linear": recipe.decoder, "head": recipe.head, "embedding": recipe.embedding}
        if recipe.head != "fp32" and untie_head(model):
            log.info("decoder: the tied head gets its own transposed copy for quantization")
    if "fp16" in methods.values():
        keep = [
            "input_features",
            "feature_lens",
            "audio_embeds",
            "audio_embed_lens",
            "input_ids",
            "seqlens_k",
            "total_sequence_length",
            "logits",
            "next_token",
            "classes",
        ]
        if encoder:
            clamp_encoder_layers(model)
        model = convert_fp16(model, keep_io=keep)
    else:
        found = parts(model)
        chosen = {
            m: [n for part, method in methods.items() if method == m for n in found[part]]
            for m in ("int4", "int8")
        }
        for m in chosen:
            chosen[m] = [n for n in chosen[m] if n not in _excluded(chosen[m], recipe)]
        model = quantize_int4(model, chosen["int4"], recipe, calibration)
        # The table (a Gather) stays with the dynamic quantizer.
        matmuls = [n.name for n in model.graph.node if n.name in chosen["int8"] and n.op_type == "MatMul"]
        int8_op = recipe.encoder_int8_op if encoder else recipe.int8_op
        if int8_op == "MatMulNBits":
            model = quantize_nbits(model, matmuls, 8, recipe.int8_block_size)
        elif int8_op == "per-token":
            quantize_per_token(model, matmuls, recipe.reduce_range)
        if int8_op != "MatMulInteger":
            chosen["int8"] = [n for n in chosen["int8"] if n not in matmuls]
        if chosen["int8"]:
            types = sorted({n.op_type for n in model.graph.node if n.name in chosen["int8"]})
            with tempfile.TemporaryDirectory(dir=dst.parent) as tmp:
                staged = Path(tmp) / dst.name
                save(model, staged)
                del model  # a 1.7B decoder is 6 GB in fp32: do not hold it while the quantizer loads its own
                quantize_int8(staged, dst, chosen["int8"], types, recipe.reduce_range and "MatMul" in types)
            if not (encoder and recipe.encoder_front_end == "per-chunk"):
                return
            model = load(dst)
    if encoder and recipe.encoder_front_end == "per-chunk":
        scan_front_end(model)
    save(model, dst)
