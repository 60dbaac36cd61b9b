"""One spec per graph: input/output names, dtypes and symbolic axes, example inputs, manifest entries.

Everything that names a graph's tensors comes from here, so the exporter, the manifest and the
runtime cannot drift apart (a test checks the manifest against the session's own I/O).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from qwen_asr_edge.runtime.bundle import GraphSpec, KvCacheSpec, TensorSpec

from .checkpoint import CheckpointConfig


@dataclass(frozen=True)
class IOSpec:
    name: str
    dtype: torch.dtype
    shape: tuple[int | str, ...]  # str = symbolic axis

    def manifest(self) -> TensorSpec:
        return TensorSpec(self.name, str(self.dtype).removeprefix("torch."), list(self.shape))


def encoder_io(cfg: CheckpointConfig) -> tuple[list[IOSpec], list[IOSpec]]:
    inputs = [
        IOSpec("input_features", torch.float32, ("batch", cfg.audio.num_mel_bins, "frames")),
        IOSpec("feature_lens", torch.int64, ("batch",)),
    ]
    outputs = [
        IOSpec("audio_embeds", torch.float32, ("batch", "audio_tokens", cfg.audio.output_dim)),
        IOSpec("audio_embed_lens", torch.int64, ("batch",)),
    ]
    return inputs, outputs


def kv_cache_spec(cfg: CheckpointConfig) -> KvCacheSpec:
    t = cfg.text
    return KvCacheSpec(
        num_layers=t.layers,
        num_kv_heads=t.kv_heads,
        head_dim=t.head_dim,
        dtype="float32",
        max_positions=t.max_position_embeddings,
    )


def decoder_io(cfg: CheckpointConfig) -> tuple[list[IOSpec], list[IOSpec]]:
    t, kv = cfg.text, kv_cache_spec(cfg)
    inputs = [
        IOSpec("input_ids", torch.int64, ("batch", "seq")),
        IOSpec("seqlens_k", torch.int32, ("batch",)),
        IOSpec("total_sequence_length", torch.int32, ()),
        IOSpec("audio_embeds", torch.float32, ("batch", "audio_tokens", t.hidden_size)),
        IOSpec("audio_embed_lens", torch.int64, ("batch",)),
    ]
    outputs = [
        IOSpec("logits", torch.float32, ("batch", 1, t.vocab_size)),
        IOSpec("next_token", torch.int64, ("batch", 1)),
    ]
    cache_shape = ("batch", t.kv_heads, "capacity", t.head_dim)
    for i in range(t.layers):
        past_k, past_v, present_k, present_v = kv.names(i)
        inputs += [IOSpec(past_k, torch.float32, cache_shape), IOSpec(past_v, torch.float32, cache_shape)]
        outputs += [
            IOSpec(present_k, torch.float32, cache_shape),
            IOSpec(present_v, torch.float32, cache_shape),
        ]
    return inputs, outputs


def aligner_io(cfg: CheckpointConfig) -> tuple[list[IOSpec], list[IOSpec]]:
    t = cfg.text
    inputs = [
        IOSpec("input_ids", torch.int64, ("batch", "seq")),
        IOSpec("audio_embeds", torch.float32, ("batch", "audio_tokens", t.hidden_size)),
        IOSpec("audio_embed_lens", torch.int64, ("batch",)),
    ]
    outputs = [
        IOSpec("logits", torch.float32, ("batch", "seq", cfg.classify_num)),
        IOSpec("classes", torch.int64, ("batch", "seq")),
    ]
    return inputs, outputs


def aligner_example(cfg: CheckpointConfig) -> tuple:
    b, s, audio = 2, 9, 5
    input_ids = torch.full((b, s), cfg.audio_token_id, dtype=torch.int64)
    return input_ids, torch.randn(b, audio, cfg.text.hidden_size), torch.tensor([audio, 3])


def graph_spec(file: str, io: tuple[list[IOSpec], list[IOSpec]], precision: str = "fp32") -> GraphSpec:
    inputs, outputs = io
    return GraphSpec(
        file=file,
        precision=precision,
        inputs=[i.manifest() for i in inputs],
        outputs=[o.manifest() for o in outputs],
    )


def encoder_example(cfg: CheckpointConfig) -> tuple[torch.Tensor, torch.Tensor]:
    # Batch 2 with different lengths: a batch-1 example would specialise the batch axis.
    frames = 3 * cfg.audio.chunk_frames
    features = torch.randn(2, cfg.audio.num_mel_bins, frames)
    return features, torch.tensor([frames, cfg.audio.chunk_frames // 2])


def decoder_example(cfg: CheckpointConfig) -> tuple:
    t = cfg.text
    b, s, capacity, audio = 2, 5, 16, 7
    input_ids = torch.full((b, s), cfg.audio_token_id, dtype=torch.int64)
    # A continuation chunk of rows 8 and 6 tokens long: nothing about it is first-prompt specific.
    seqlens_k = torch.tensor([7, 5], dtype=torch.int32)
    total = torch.tensor(8, dtype=torch.int32)
    audio_embeds = torch.randn(b, audio, t.hidden_size)
    audio_lens = torch.tensor([audio, 2])
    cache = tuple(torch.zeros(b, t.kv_heads, capacity, t.head_dim) for _ in range(2 * t.layers))
    return input_ids, seqlens_k, total, audio_embeds, audio_lens, cache
