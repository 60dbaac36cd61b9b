"""torch module -> ONNX file, one graph per call, with the spec's names and symbolic axes."""

from __future__ import annotations

import ast
import contextlib
import logging
import warnings
from collections.abc import Iterator
from pathlib import Path

import onnx
import torch

from qwen_asr_edge.runtime.errors import ExportValidationError

from .specs import IOSpec

log = logging.getLogger("qwen_asr_edge.export")

OPSET = 21  # 21+ lets the quantizer store int4 tables without upgrading the opset later


def _dynamic_shapes(inputs: list[IOSpec], nested: list[int] | None) -> tuple:
    """Dims per positional argument; the args whose index is in ``nested`` are tuples of tensors."""
    dims: dict[str, torch.export.Dim] = {}

    def spec(io: IOSpec) -> dict[int, torch.export.Dim]:
        out = {}
        for axis, size in enumerate(io.shape):
            if isinstance(size, str):
                dims.setdefault(size, torch.export.Dim(size))
                out[axis] = dims[size]
        return out

    specs = [spec(io) for io in inputs]
    if not nested:
        return tuple(specs)
    head = specs[: nested[0]]
    return (*head, tuple(specs[nested[0] :]))


# The exporter logs a WARNING per torchvision op it cannot register; we use none of them.
REGISTRATION_LOGGER = "torch.onnx._internal.exporter._registration"


@contextlib.contextmanager
def _without_registration_warnings() -> Iterator[None]:
    """Drop that logger's records below ERROR while we export: a filter on that one logger, for the
    duration only, instead of changing its level for the rest of the process."""
    logger = logging.getLogger(REGISTRATION_LOGGER)

    def errors_only(record: logging.LogRecord) -> bool:
        return record.levelno >= logging.ERROR

    logger.addFilter(errors_only)
    try:
        yield
    finally:
        logger.removeFilter(errors_only)


def _scope(node: onnx.NodeProto) -> list[str]:
    for prop in node.metadata_props:
        if prop.key == "pkg.torch.onnx.name_scopes":
            return [s for s in ast.literal_eval(prop.value) if s][:-1]  # the last entry is the op itself
    return []


def name_by_module_path(model: onnx.ModelProto) -> None:
    """Name nodes by the module they come from (``/model.layers.3/self_attn/q_proj/MatMul``) and the
    weights of linear layers ``<module>.weight_t`` (stored transposed, as MatMul wants them), so
    quantization recipes and profiles can select by name; drop the exporter's per-node metadata
    (stack traces), which is most of a graph file's size."""
    used: dict[str, int] = {}
    renamed: dict[str, str] = {}
    inits = {i.name for i in model.graph.initializer}
    for node in model.graph.node:
        scope = _scope(node)
        module = scope[-1] if scope else ""  # each scope entry is a full dotted module path
        base = "/" + "/".join([*module.split("."), node.op_type]) if module else f"/{node.op_type}"
        used[base] = used.get(base, -1) + 1
        node.name = base if used[base] == 0 else f"{base}_{used[base]}"
        if node.op_type == "MatMul" and module and node.input[1] in inits:
            renamed.setdefault(node.input[1], f"{module}.weight_t")
        del node.metadata_props[:]
    if len(set(renamed.values())) != len(renamed):  # one weight per module: keep generated names otherwise
        log.warning("linear weights not renamed: a module has several")
        renamed = {}
    for init in model.graph.initializer:
        init.name = renamed.get(init.name, init.name)
    for node in model.graph.node:
        for i, name in enumerate(node.input):
            if name in renamed:
                node.input[i] = renamed[name]


def export_graph(
    module: torch.nn.Module,
    example: tuple,
    io: tuple[list[IOSpec], list[IOSpec]],
    path: Path,
    *,
    varargs_from: int | None = None,
) -> None:
    """Export ``module`` to ``path`` (weights always in ``path.data`` beside it).

    ``varargs_from``: index of the input spec where a trailing tuple argument (the KV cache) starts.
    """
    inputs, outputs = io
    dynamic = _dynamic_shapes(inputs, [varargs_from] if varargs_from is not None else None)
    with warnings.catch_warnings(), torch.no_grad(), _without_registration_warnings():
        warnings.simplefilter("ignore")  # the exporter's FutureWarnings are about its own internals
        program = torch.onnx.export(
            module,
            example,
            dynamo=True,
            opset_version=OPSET,
            input_names=[i.name for i in inputs],
            output_names=[o.name for o in outputs],
            dynamic_shapes=dynamic,
            verbose=False,
        )
    # Stale external data would be appended to, not replaced (toolchain notes, trap 11).
    data = path.with_name(path.name + ".data")
    data.unlink(missing_ok=True)
    program.save(str(path), external_data=True)
    model = onnx.load(str(path), load_external_data=False)
    name_by_module_path(model)
    onnx.save(model, str(path))  # the weights stay where they are in path.data
    got_in = [i.name for i in model.graph.input]
    got_out = [o.name for o in model.graph.output]
    if got_in != [i.name for i in inputs] or got_out != [o.name for o in outputs]:
        raise ExportValidationError(
            path.name, "input -> output names", f"{got_in} -> {got_out}", "the spec's names"
        )
    log.info("wrote %s (%d nodes)", path.name, len(model.graph.node))
