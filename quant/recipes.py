"""Quantization recipes: data, validated; the graph rewriting in quantize.py only reads them.

Each graph part gets a method: "fp32" (left alone), "int8" (8-bit weights: onnxruntime's
MatMulNBits with bits=8 by default, per-token INT8, or its dynamic MatMulInteger; see INT8_OPS),
"int4" (onnxruntime's
weight-only MatMulNBits, block-wise, symmetric, accuracy_level 4 = INT8 activations on CPU) or
"fp16" (everything but the numerically sensitive ops). The embedding table and the output head
are parts of their own because they are a quarter of a 0.6B model and behave differently under
quantization.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from qwen_asr_edge.runtime.bundle import RECIPE_NAMES
from qwen_asr_edge.runtime.errors import InputError

METHODS = ("fp32", "int8", "int4", "fp16")
# Measured on the full-size 0.6B shape (bench/quantization.py): block 64 keeps the int4 bundle
# under the 600 MB of the GGUF Q4_K_M while erring less than block 128; block 32 does not fit.
DEFAULT_BLOCK_SIZE = 64
# How int8 MatMuls run. "MatMulNBits": 8-bit block-wise weights, accuracy_level 4, so each row of
# activations is quantized on its own, block by block: a clip's result does not depend on what
# it is batched with, nor (beyond rounding order) on the CPU's instruction set. "MatMulInteger":
# onnxruntime's dynamic quantization (DynamicQuantizeLinear), one activation scale over the whole
# padded batch, so a clip's tokens change with its batch neighbours, and 7-bit weights on AVX2.
# Measured per layer on realistic 0.6B-shape activations (bench.layer_errors; README,
# Quantization): MatMulNBits block 128 errs 1.01 % (median) / 2.86 % (worst layer), block 32
# 0.79 / 1.55, MatMulInteger 4.29 / 24.9. Block 128 is the default: on the whole 0.6B shape it
# decodes 20-30 % faster than block 32 (the 152k-row head above all), reaches the first token
# 8-15 % sooner and is 7 % smaller. Prefill costs 37 ms a layer at block 128, 46 at 32, 18 with
# MatMulInteger (fp32: 68).
# "per-token": MatMulIntegerToFloat on uint8 codes with one scale per row of activations and
# per-channel 7-bit weights (quant.graphs.quantize_per_token): per row like MatMulNBits, so batch
# neighbours do not matter, but run by onnxruntime's u8 x s8 GEMM, which on AVX2 without VNNI is
# 2.6x faster than 8-bit MatMulNBits for a prompt's or an encoder window's rows.
INT8_OPS = ("MatMulNBits", "MatMulInteger", "per-token")
USER_INT8_OPS = ("MatMulNBits", "per-token")  # MatMulInteger stays for measurement: batch-dependent
# The decoder's KV cache: "fp32", or "int8" with per-channel scales (quant/kv_cache.py), which a
# GroupQueryAttention decoder with fp32 activations can keep.
KV_CACHE_TYPES = ("fp32", "int8")
# The encoder's convolutional front end (conv2d2 and conv2d3, 480 channels in the real models;
# conv2d1 sees one channel and stays fp32): "fp32", or "int8" as static QLinearConv (per-channel
# 7-bit weights, uint8 activations with ranges calibrated on the calibration audio). In fp32 it was
# 45 % of the int4 bundle's encoder time on an 11 s clip (248 of 553 ms, onnxruntime profiler);
# as QLinearConv the encoder takes 354 ms instead of 552, its output no further from fp32
# (cosine 0.99964 against 0.99963: the INT8 linear layers' error dominates).
CONV_METHODS = ("fp32", "int8")
# How the encoder runs that front end: "batched", every chunk of every clip in one tensor per node
# (what the export writes; one kernel per node on a GPU), or "per-chunk", an ONNX Scan over the
# chunks (quant/front_end.py): the same arithmetic, without the 6 MB per audio second that each
# node writes batched. On two AVX2 cores the 0.6B int8 front end took 245 instead of 317 ms for an
# 11 s clip and 34 instead of 397 MB of peak memory for a 33 s one; the CPU recipes take it.
FRONT_END_LAYOUTS = ("batched", "per-chunk")
BLOCK_SIZES = (16, 32, 64, 128, 256)


@dataclass(frozen=True)
class Recipe:
    name: str
    encoder: str
    decoder: str  # the decoder's linear layers
    embedding: str  # the decoder's token table (a Gather)
    head: str  # the output projection
    block_size: int = DEFAULT_BLOCK_SIZE  # int4 only
    algorithm: str = "rtn"  # int4: "rtn" or "gptq" (needs calibration audio)
    # Node-name prefixes that stay fp32 whatever the method (sensitive layers, by measurement).
    keep_fp32: tuple[str, ...] = ()
    int8_op: str = "MatMulNBits"
    int8_block_size: int = 128  # int8 MatMulNBits only; 32 errs ~22 % less, runs 20-30 % slower
    # int8 MatMulInteger and per-token only: 7-bit weights. onnxruntime's u8 x s8 kernels on CPUs without
    # AVX-512 VNNI (AVX2 only) add pairs of products in saturating 16-bit sums; 7-bit weights
    # cannot overflow them (its documented remedy). On the tiny test checkpoint under qemu -cpu
    # Haswell (AVX2): without it int8 flipped 3 of 24 of fp32's clear greedy decisions, with it none.
    reduce_range: bool = True
    kv_cache: str = "fp32"
    encoder_conv: str = "fp32"
    # The encoders' int8 linear layers (int8_op is the decoder's): an encoder runs only many-row
    # products (8 s windows), where per-token INT8 is fastest (see INT8_OPS).
    encoder_int8_op: str = "MatMulNBits"
    encoder_front_end: str = "batched"

    def __post_init__(self):
        for part in (self.encoder, self.decoder, self.embedding, self.head):
            if part not in METHODS:
                raise ValueError(f"recipe {self.name}: unknown method {part!r} (choose from {METHODS})")
        for field in ("block_size", "int8_block_size"):
            if getattr(self, field) not in BLOCK_SIZES:
                raise ValueError(f"recipe {self.name}: {field} must be a power of two from 16 to 256")
        for op in (self.int8_op, self.encoder_int8_op):
            if op not in INT8_OPS:
                raise ValueError(f"recipe {self.name}: unknown int8 op {op!r} (choose from {INT8_OPS})")
        if self.algorithm not in ("rtn", "gptq"):
            raise ValueError(f"recipe {self.name}: unknown algorithm {self.algorithm!r}")
        if "fp16" in (self.encoder, self.decoder) and {self.encoder, self.decoder} != {"fp16"}:
            raise ValueError(f"recipe {self.name}: fp16 is all or nothing")
        if self.kv_cache not in KV_CACHE_TYPES:
            raise ValueError(
                f"recipe {self.name}: unknown KV cache {self.kv_cache!r} (choose from {KV_CACHE_TYPES})"
            )
        if self.encoder_conv not in CONV_METHODS:
            raise ValueError(f"recipe {self.name}: unknown encoder conv method {self.encoder_conv!r}")
        if self.encoder_front_end not in FRONT_END_LAYOUTS:
            raise ValueError(f"recipe {self.name}: unknown encoder front end {self.encoder_front_end!r}")
        if self.encoder_front_end == "per-chunk" and self.encoder == "fp16":
            raise ValueError(f"recipe {self.name}: an fp16 encoder keeps its front end batched (GPUs)")
        if self.encoder_conv == "int8" and self.encoder != "int8":
            raise ValueError(f"recipe {self.name}: an int8 conv front end goes with an int8 encoder")
        if self.kv_cache != "fp32" and self.decoder == "fp16":
            raise ValueError(f"recipe {self.name}: an fp16 decoder keeps an fp16 KV cache")

    @property
    def methods(self) -> set[str]:
        """The methods of its parts ("int8", "int4", "fp16", "fp32")."""
        return {self.encoder, self.decoder, self.embedding, self.head}

    @property
    def precision(self) -> dict[str, str]:
        """What the manifest records per graph (the decoder's linear layers decide its label)."""
        return {
            "encoder": self.encoder,
            "decoder": self.decoder,
            "aligner_encoder": self.encoder,  # the forced aligner's graphs, when the bundle has them
            "aligner": self.decoder,
        }

    def describe(self) -> dict:
        # The int8 ops in use: the decoder's (its linear layers or head) and the encoder's.
        ops = {self.int8_op} if "int8" in (self.decoder, self.head) else set()
        ops |= {self.encoder_int8_op} if self.encoder == "int8" else set()
        integer = bool(ops & {"MatMulInteger", "per-token"})
        return {
            "name": self.name,
            "encoder": self.encoder,
            "decoder": self.decoder,
            "embedding": self.embedding,
            "head": self.head,
            "block_size": self.block_size if "int4" in self.methods else None,
            "algorithm": self.algorithm,
            "keep_fp32": list(self.keep_fp32),
            "int8_op": self.int8_op if "int8" in (self.decoder, self.head) else None,
            "encoder_int8_op": self.encoder_int8_op,
            "int8_block_size": self.int8_block_size if "MatMulNBits" in ops else None,
            "reduce_range": self.reduce_range if integer else None,
            "kv_cache": self.kv_cache,
            "encoder_conv": self.encoder_conv,
            "encoder_front_end": self.encoder_front_end,
        }


# The CPU recipes share the encoder (INT8 with static INT8 convolutions, run one chunk at a time);
# int4 narrows the text side and runs its encoder's linear layers per-token.
_INT8 = Recipe(
    "int8",
    encoder="int8",
    decoder="int8",
    embedding="int8",
    head="int8",
    encoder_conv="int8",
    encoder_front_end="per-chunk",
)
_INT4 = replace(
    _INT8, name="int4", decoder="int4", embedding="int4", head="int4", encoder_int8_op="per-token"
)
RECIPES: dict[str, Recipe] = {
    "int8": _INT8,
    "int4": _INT4,
    "int4-gptq": replace(_INT4, name="int4-gptq", algorithm="gptq"),
    "fp16": Recipe("fp16", encoder="fp16", decoder="fp16", embedding="fp16", head="fp16"),
}


# The manifest's vocabulary (runtime/bundle.py) and the recipes defined here are one list; not an
# ImportError, which callers would report as a missing extra.
if tuple(RECIPES) != RECIPE_NAMES:  # pragma: no cover - tests/quant/test_quantize.py checks it too
    raise RuntimeError(
        f"quant.recipes.RECIPES {tuple(RECIPES)} != runtime.bundle.RECIPE_NAMES {RECIPE_NAMES}"
    )


def get_recipe(
    name: str, block_size: int | None = None, kv_cache: str | None = None, int8_op: str | None = None
) -> Recipe:
    """The named recipe, with another block size, KV cache or int8 op when given.

    Args:
        name: one of ``RECIPES`` ("int8", "int4", "int4-gptq", "fp16").
        block_size: the block size of the recipe's narrowest weights (16 to 256, a power of two):
            INT4's for int4 recipes, INT8's for int8; None keeps the recipe's.
        kv_cache: "fp32" or "int8" (``KV_CACHE_TYPES``); None keeps the recipe's.
        int8_op: "MatMulNBits" or "per-token" (``USER_INT8_OPS``) for every int8 layer, the
            encoder's and the decoder's; None keeps the recipe's.

    Returns:
        The Recipe.

    Raises:
        InputError: an unknown name, an invalid block size, KV cache or int8 op.
    """
    try:
        recipe = RECIPES[name]
    except KeyError:
        raise InputError(f"unknown recipe {name!r}; choose from {', '.join(RECIPES)}") from None
    if kv_cache is not None:
        try:
            recipe = replace(recipe, kv_cache=kv_cache)
        except ValueError as e:
            raise InputError(str(e)) from None
    if int8_op is not None:
        if int8_op not in USER_INT8_OPS:
            raise InputError(f"unknown int8 op {int8_op!r}; choose from {', '.join(USER_INT8_OPS)}")
        if "int8" not in recipe.methods:
            raise InputError(f"recipe {name} has no int8 layers: --int8-op applies to int8 and int4 recipes")
        recipe = replace(recipe, int8_op=int8_op, encoder_int8_op=int8_op)
    if block_size is None:
        return recipe
    if block_size not in BLOCK_SIZES:
        raise InputError(f"--block-size must be one of {', '.join(map(str, BLOCK_SIZES))}; got {block_size}")
    if "int4" in recipe.methods:
        field = "block_size"
    elif "int8" in recipe.methods:
        field = "int8_block_size"
    else:
        raise InputError(f"recipe {name} has no blocks: --block-size applies to int8 and int4 recipes")
    try:
        return replace(recipe, **{field: block_size})
    except ValueError as e:
        raise InputError(str(e)) from None


# Settings added to the manifest's record later, with the value the bundles written before had: a
# bundle lacking the key is compared as if it recorded that value (so it is stale for kv_cache
# only when int8 is asked for, for encoder_conv whenever today's recipe quantizes the convs, for
# encoder_int8_op whenever today's recipe runs its encoder per-token (int4's), and for
# encoder_front_end whenever it runs the front end per chunk (int8's and int4's); the last two
# since 2026-11-30).
SETTINGS_BEFORE_RECORDED = {
    "kv_cache": "fp32",
    "encoder_conv": "fp32",
    "encoder_int8_op": "MatMulNBits",
    "encoder_front_end": "batched",
}


def recipe_changes(built: dict, recipe: Recipe) -> str:
    """What differs between a bundle's recorded recipe settings (its manifest's ``quantization``)
    and ``recipe``'s today, as "key old -> new, ..."; "" when nothing does."""
    wanted = recipe.describe()
    built = {**SETTINGS_BEFORE_RECORDED, **built}
    changed = sorted(k for k in wanted.keys() | built.keys() if wanted.get(k) != built.get(k))
    return ", ".join(f"{k} {built.get(k)} -> {wanted.get(k)}" for k in changed)
