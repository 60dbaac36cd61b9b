"""The audio encoder's convolutional front end run one chunk at a time, inside an ONNX ``Scan``.

The encoder convolves every 100-frame chunk of a clip on its own (``conv2d1..3``, each followed by
GELU and a 0/1 column mask; spec §3), batched as (B·C, 1, 128, 100). Batched, each step of that
chain writes a whole fp32 tensor for all chunks: after ``conv2d1`` it is 6.1 MB per second of
audio (480 channels x 64 x 50 per chunk, 0.6B and 1.7B shapes), 68 MB for an 11 s clip and 185 MB
for a 30 s one, and the GELU, the mask and the quantization each write another. Those buffers are
larger than the allocator keeps, so every call maps fresh pages for them and faults them in, and
none fits in a cache. As a ``Scan`` over the chunk axis the same nodes run on one chunk's 6 MB at
a time. Measured on the 0.6B int8 front end alone (its subgraph), 2 threads, AVX2 EPYC,
interleaved runs: 11 s clip 317 -> 245 ms, 33 s clip 824 -> 649 ms, and 397 -> 34 MB of peak
memory for the 33 s clip; the whole encoder and end-to-end figures are in the README. The
arithmetic per chunk is the same, so the output is the same (bit-equal in those measurements).
The body's tensors are typed float32: the front end of an fp16 graph is refused by the recipe.

A CPU layout: on a GPU the batched chain is one kernel launch per node, not one per node and
chunk, so the recipes for GPUs (fp16) keep it (``Recipe.encoder_front_end``).
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper

# The ops of the per-chunk chain, in fp32 and as the static INT8 quantizer leaves it.
PER_CHUNK_OPS = ("Conv", "Gelu", "Mul", "QuantizeLinear", "QLinearConv", "DequantizeLinear")
SCAN_NAME = "front_end/Scan"
_AXIS = "front_end/axis0"


def scan_front_end(model: onnx.ModelProto) -> None:
    """Rewrite ``model`` (an encoder graph) in place: the chain of per-chunk nodes that starts at
    the first Conv becomes the body of one ``Scan`` over the chunk axis.

    The body is every node reachable from the first Conv's data input through ``PER_CHUNK_OPS``.
    Its other non-constant inputs (the column masks, (B·C, 1, 1, T) float32) are scanned along
    with the chunks; constants (weights, quantization scales) are read from the outer graph.

    Raises:
        ValueError: no Conv; the chain has other than one output; a scanned input that is not a
            ``Mul``'s mask; or the graph already has the Scan.
    """
    graph = model.graph
    if any(n.name == SCAN_NAME for n in graph.node):
        raise ValueError("the encoder's front end is already a Scan")
    first = next((n for n in graph.node if n.op_type == "Conv"), None)
    if first is None:
        raise ValueError("no convolutional front end: the graph has no Conv")
    constants = {i.name for i in graph.initializer}
    constants |= {o for n in graph.node if n.op_type == "Constant" for o in n.output}

    chunks = first.input[0]
    inside: set[str] = {chunks}  # tensors the body computes (and its chunk input)
    all_nodes = list(graph.node)
    order: list[int] = []  # the chain's indices into all_nodes
    for i, node in enumerate(all_nodes):  # topologically sorted, so one pass finds the whole chain
        if node.op_type in PER_CHUNK_OPS and any(x in inside for x in node.input):
            order.append(i)
            inside.update(node.output)
    in_body = set(order)
    body = [all_nodes[i] for i in order]
    read_outside = {x for i, n in enumerate(all_nodes) if i not in in_body for x in n.input}
    read_outside |= {o.name for o in graph.output}
    leaving = [o for n in body for o in n.output if o in read_outside]
    if len(leaving) != 1:
        raise ValueError(f"the front end's chain must have one output, not {leaving}")
    (result,) = leaving
    if any(result in n.input for i, n in enumerate(all_nodes[: order[-1]]) if i not in in_body):
        raise ValueError(f"{result!r} is read before the front end's last node")

    extra = [i for n in body for i in n.input if i and i not in inside and i not in constants]
    extra = list(dict.fromkeys(extra))
    for name in extra:
        readers = [n for n in body if name in n.input]
        if any(n.op_type != "Mul" for n in readers):
            raise ValueError(f"the front end reads {name!r} per chunk, but not as a Mul's mask")
    scanned = [chunks, *extra]

    # Inside the body each scanned tensor is one chunk without its leading axis: give it back,
    # under a new name (a subgraph may not redefine an outer name), and drop it from the result.
    rename = {name: f"{name}/chunk" for name in [*scanned, result]}
    nodes = [
        helper.make_node("Unsqueeze", [f"{name}/slice", _AXIS], [rename[name]], name=f"{name}/Unsqueeze")
        for name in scanned
    ]
    for node in body:
        node.input[:] = [rename.get(i, i) for i in node.input]
        node.output[:] = [rename.get(o, o) for o in node.output]
        nodes.append(node)
    nodes.append(
        helper.make_node("Squeeze", [rename[result], _AXIS], [f"{result}/slice"], name="front_end/Squeeze")
    )
    float32 = onnx.TensorProto.FLOAT
    subgraph = helper.make_graph(
        nodes,
        "front_end",
        [helper.make_tensor_value_info(f"{name}/slice", float32, None) for name in scanned],
        [helper.make_tensor_value_info(f"{result}/slice", float32, None)],
    )
    scan = helper.make_node(
        "Scan", scanned, [result], name=SCAN_NAME, body=subgraph, num_scan_inputs=len(scanned)
    )

    # The Scan goes where the chain's last node was: after everything the chain read.
    rewritten = [n for i, n in enumerate(all_nodes) if i not in in_body]
    rewritten.insert(order[-1] - (len(order) - 1), scan)
    graph.initializer.append(numpy_helper.from_array(np.array([0], np.int64), _AXIS))
    del graph.node[:]
    graph.node.extend(rewritten)
