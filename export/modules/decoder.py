"""The Qwen3 text decoder of Qwen3-ASR, one graph for prefill and decode.

Interface (both attention kinds, so the runtime has one decoding loop): batches are
**right-padded**; ``seqlens_k[b]`` is the index of row b's last real token counted over the whole
sequence so far, and ``total_sequence_length`` the longest row's length. A call with
``S == total_sequence_length`` is a first prompt (every row starts at position 0); any other call
continues each row at ``seqlens_k[b] + 1 - S``. These are the semantics of onnxruntime's
``com.microsoft.GroupQueryAttention`` (toolchain notes §8), restated in plain ops for the
portable graph.

KV cache: every layer's keys and values live in a fixed-capacity buffer (B, kv_heads, capacity,
head_dim) that the runtime allocates once per batch and binds as both ``past`` input and
``present`` output; the graph writes only the new rows, in place:

    input_ids (B,S) ──Gather──► embeds ──Where(audio slot)──► x ◄── audio_embeds (B,A,H)[cumsum]
    per layer:  RMSNorm → q,k,v → q_norm,k_norm ─► attention ─► o_proj, SwiGLU MLP
                (exported: q,k,v one MatMul, gate,up one MatMul; fused.py)
      "gqa":      GroupQueryAttention(do_rotary, cos/sin for positions < total): appends in place
      "portable": RoPE → ScatterElements rows ─► buffer (in place when shared) → masked attention
                  over rows [0, total)
    row b's last real position only ─► norm ─► lm_head ─► logits (B,1,V), ArgMax ─► next_token

M-RoPE with identical t/h/w positions is plain rotate-half RoPE, which both kinds compute.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..checkpoint import TextConfig
from .encoder import MASK_VALUE
from .fused import FusedLinear, fuse

ATTENTION_KINDS = ("gqa", "portable")


class RMSNorm(nn.Module):
    """``fused``: export as onnxruntime's SimplifiedLayerNormalization, one node instead of seven
    (its session optimizer does not fuse the exporter's Pow/ReduceMean/Sqrt/Reciprocal pattern,
    and the 113 norms of a 0.6B decode step cost 2 of its 17.7 ms in int4)."""

    def __init__(self, size: int, eps: float, fused: bool = False):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(size))
        self.eps = eps
        self.fused = fused

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.fused and torch.onnx.is_in_onnx_export():
            return torch.onnx.ops.symbolic(
                "::SimplifiedLayerNormalization",
                [x, self.weight],
                {"axis": -1, "epsilon": self.eps, "stash_type": 1},
                dtype=x.dtype,
                shape=x.shape,
                version=1,
            )
        variance = x.pow(2).mean(-1, keepdim=True)
        return self.weight * (x * torch.rsqrt(variance + self.eps))


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


class Rows:
    """Where this call's tokens sit in each row's sequence, shared by all layers."""

    def __init__(self, positions: torch.Tensor, length, inv_freq: torch.Tensor, seqlens_k=None, total=None):
        self.positions, self.length = positions, length  # (B, S); keys [0, length) are attended
        self.seqlens_k, self.total = seqlens_k, total
        freqs = positions[:, :, None].float() * inv_freq
        emb = torch.cat((freqs, freqs), dim=-1)
        self.cos, self.sin = emb.cos()[:, None], emb.sin()[:, None]  # (B, 1, S, D)

    @classmethod
    def cached(cls, seqlens_k: torch.Tensor, total: torch.Tensor, s: int, capacity: int, inv_freq) -> Rows:
        """A call against the KV cache, in GroupQueryAttention's conventions."""
        # One data-dependent size for all layers: an .item() per layer makes the exporter's
        # symbolic-shape solver recurse through 28 unbacked sizes (RecursionError at full depth).
        length = total.item()
        torch._check(length >= s)
        torch._check(length <= capacity)
        first = total.to(torch.int64) == s
        start = torch.where(first, 0, seqlens_k.to(torch.int64) + 1 - s)  # (B,)
        positions = start[:, None] + torch.arange(s, device=seqlens_k.device)
        return cls(positions, length, inv_freq, seqlens_k, total)

    @classmethod
    def whole(cls, b: int, s: int, inv_freq: torch.Tensor) -> Rows:
        """One causal pass over whole right-padded sequences, no cache (the aligner)."""
        positions = torch.arange(s, device=inv_freq.device)[None].expand(b, s)
        return cls(positions, s, inv_freq)


class DecoderAttention(nn.Module):
    def __init__(self, cfg: TextConfig, kind: str):
        super().__init__()
        self.kind = kind
        self.heads, self.kv_heads, self.head_dim = cfg.heads, cfg.kv_heads, cfg.head_dim
        self.q_proj = nn.Linear(cfg.hidden_size, cfg.heads * cfg.head_dim, bias=False)
        self.k_proj = nn.Linear(cfg.hidden_size, cfg.kv_heads * cfg.head_dim, bias=False)
        self.v_proj = nn.Linear(cfg.hidden_size, cfg.kv_heads * cfg.head_dim, bias=False)
        self.o_proj = nn.Linear(cfg.heads * cfg.head_dim, cfg.hidden_size, bias=False)
        fused = kind == "gqa"
        self.q_norm = RMSNorm(cfg.head_dim, cfg.rms_norm_eps, fused)
        self.k_norm = RMSNorm(cfg.head_dim, cfg.rms_norm_eps, fused)
        self.qkv_proj: FusedLinear | None = None  # set by TextDecoder.fuse_projections

    def fuse_projections(self) -> None:
        fuse(self, ("q_proj", "k_proj", "v_proj"), "qkv_proj")

    def forward(
        self, x: torch.Tensor, rows: Rows, past_key: torch.Tensor, past_value: torch.Tensor, rope
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        b, s, _ = x.shape
        d, kvh = self.head_dim, self.kv_heads
        if self.qkv_proj is not None:
            q, k, v = self.qkv_proj(x)
        else:
            q, k, v = self.q_proj(x), self.k_proj(x), self.v_proj(x)
        q = self.q_norm(q.view(b, s, self.heads, d))
        k = self.k_norm(k.view(b, s, kvh, d))
        if self.kind == "gqa" and torch.onnx.is_in_onnx_export():
            out, present_key, present_value = torch.onnx.ops.symbolic_multi_out(
                "com.microsoft::GroupQueryAttention",
                [
                    q.reshape(b, s, -1),
                    k.reshape(b, s, -1),
                    v,
                    past_key,
                    past_value,
                    rows.seqlens_k,
                    rows.total,
                    rope[0],
                    rope[1],
                ],
                {"num_heads": self.heads, "kv_num_heads": kvh, "do_rotary": 1},
                dtypes=[x.dtype, past_key.dtype, past_value.dtype],
                shapes=[(b, s, self.heads * d), past_key.shape, past_value.shape],
                version=1,
            )
        else:
            out, present_key, present_value = self._attend(
                q, k, v.view(b, s, kvh, d), rows, past_key, past_value
            )
        return self.o_proj(out), present_key, present_value

    def _attend(self, q, k, v, rows: Rows, past_key, past_value):
        """GroupQueryAttention's semantics in plain ops: the portable graph, and the torch
        reference for the gqa graph (its contrib op has no torch kernel)."""
        b, s, _, d = q.shape
        kvh, group = self.kv_heads, self.heads // self.kv_heads
        q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
        q = q * rows.cos + rotate_half(q) * rows.sin
        k = k * rows.cos + rotate_half(k) * rows.sin
        if past_key is None:  # no cache: attend to this call's keys
            present_key, present_value = k, v
        else:
            write_index = rows.positions[:, None, :, None].expand(b, kvh, s, d)
            present_key = past_key.scatter(2, write_index, k)
            present_value = past_value.scatter(2, write_index, v)
        total = rows.length
        keys, values = present_key[:, :, :total], present_value[:, :, :total]
        allowed = torch.arange(total, device=q.device)[None, None, :] <= rows.positions[:, :, None]

        # Query heads h = g·kvh... are laid out as (kv_head, group), like the official
        # repeat_interleave; the cache is never repeated.
        qg = q.reshape(b, kvh, group, s, d)
        scores = torch.matmul(qg, keys[:, :, None].transpose(3, 4)) * (d**-0.5)
        scores = torch.where(allowed[:, None, None], scores, MASK_VALUE)
        probs = torch.softmax(scores, dim=-1)
        out = torch.matmul(probs, values[:, :, None]).reshape(b, self.heads, s, d)
        return out.transpose(1, 2).reshape(b, s, self.heads * d), present_key, present_value


class DecoderLayer(nn.Module):
    def __init__(self, cfg: TextConfig, kind: str):
        super().__init__()
        self.self_attn = DecoderAttention(cfg, kind)
        self.mlp = nn.Module()
        self.mlp.gate_proj = nn.Linear(cfg.hidden_size, cfg.intermediate_size, bias=False)
        self.mlp.up_proj = nn.Linear(cfg.hidden_size, cfg.intermediate_size, bias=False)
        self.mlp.down_proj = nn.Linear(cfg.intermediate_size, cfg.hidden_size, bias=False)
        fused = kind == "gqa"
        self.input_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps, fused)
        self.post_attention_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps, fused)
        self.mlp.gate_up_proj = None  # set by TextDecoder.fuse_projections

    def forward(self, x, rows, past_key, past_value, rope):
        attn, present_key, present_value = self.self_attn(
            self.input_layernorm(x), rows, past_key, past_value, rope
        )
        x = x + attn
        y = self.post_attention_layernorm(x)
        if self.mlp.gate_up_proj is not None:
            gate, up = self.mlp.gate_up_proj(y)
        else:
            gate, up = self.mlp.gate_proj(y), self.mlp.up_proj(y)
        x = x + self.mlp.down_proj(F.silu(gate) * up)
        return x, present_key, present_value


class TextDecoder(nn.Module):
    """Parameter names match ``thinker.model.*`` (and ``thinker.lm_head``) minus ``thinker.``."""

    def __init__(self, cfg: TextConfig, audio_token_id: int, attention: str = "gqa"):
        super().__init__()
        if attention not in ATTENTION_KINDS:
            raise ValueError(f"decoder attention {attention!r} is not one of {ATTENTION_KINDS}")
        self.cfg = cfg
        self.attention = attention
        self.audio_token_id = audio_token_id
        self.model = nn.Module()
        self.model.embed_tokens = nn.Embedding(cfg.vocab_size, cfg.hidden_size)
        self.model.layers = nn.ModuleList(DecoderLayer(cfg, attention) for _ in range(cfg.layers))
        self.model.norm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps, fused=attention == "gqa")
        # A tied checkpoint uses the embedding as the head: one copy of the table in the graph.
        self.lm_head = None
        if not cfg.tie_word_embeddings:
            self.lm_head = nn.Linear(cfg.hidden_size, cfg.vocab_size, bias=False)
        self.reset_buffers()

    def fuse_projections(self) -> None:
        """Export q/k/v and gate/up as one matrix product each (``fused.FusedLinear``): 4 products
        per layer instead of 7. Call after the weights are loaded; the state dict's names change."""
        for layer in self.model.layers:
            layer.self_attn.fuse_projections()
            fuse(layer.mlp, ("gate_proj", "up_proj"), "gate_up_proj")

    def reset_buffers(self) -> None:
        """(Re)compute the non-persistent tables: needed after building the module on "meta"."""
        d = self.cfg.head_dim
        inv_freq = 1.0 / (self.cfg.rope_theta ** (torch.arange(0, d, 2, dtype=torch.int64).float() / d))
        self.register_buffer("inv_freq", inv_freq, persistent=False)

    def embed(self, input_ids: torch.Tensor, audio_embeds: torch.Tensor, audio_embed_lens: torch.Tensor):
        """Token embeddings, where the k-th audio placeholder of a row takes that row's k-th
        audio embedding."""
        b, s = input_ids.shape
        x = self.model.embed_tokens(input_ids)
        is_audio = input_ids == self.audio_token_id
        slot = torch.cumsum(is_audio.to(torch.int64), dim=1) - 1
        inject = is_audio & (slot < audio_embed_lens[:, None])
        slot = slot.clamp(0, audio_embeds.shape[1] - 1)
        audio = torch.gather(audio_embeds, 1, slot[:, :, None].expand(b, s, audio_embeds.shape[2]))
        return torch.where(inject[:, :, None], audio, x)

    def whole(
        self, input_ids: torch.Tensor, audio_embeds: torch.Tensor, audio_embed_lens: torch.Tensor
    ) -> torch.Tensor:
        """Final-norm hidden states (B, S, H) of whole right-padded sequences in one causal pass,
        no cache: the aligner's text pass, and teacher-forced training."""
        b, s = input_ids.shape
        x = self.embed(input_ids, audio_embeds, audio_embed_lens)
        rows = Rows.whole(b, s, self.inv_freq)
        for layer in self.model.layers:
            x, _, _ = layer(x, rows, None, None, None)
        return self.model.norm(x)

    def head(self, h: torch.Tensor) -> torch.Tensor:
        if self.lm_head is None:
            return torch.matmul(h, self.model.embed_tokens.weight.t())
        return self.lm_head(h)

    def forward(
        self,
        input_ids: torch.Tensor,  # (B, S) int64, right-padded
        seqlens_k: torch.Tensor,  # (B,) int32: index of each row's last real token so far
        total_sequence_length: torch.Tensor,  # () int32: the longest row's length so far
        audio_embeds: torch.Tensor,  # (B, A, H) from the encoder
        audio_embed_lens: torch.Tensor,  # (B,) int64, 0 in decode steps
        past: tuple[torch.Tensor, ...],  # per layer key, value: (B, kv_heads, capacity, head_dim)
    ) -> tuple[torch.Tensor, ...]:
        b, s = input_ids.shape
        x = self.embed(input_ids, audio_embeds, audio_embed_lens)
        rows = Rows.cached(seqlens_k, total_sequence_length, s, past[0].shape[2], self.inv_freq)
        rope = None
        if self.attention == "gqa" and torch.onnx.is_in_onnx_export():
            # GroupQueryAttention rotates q and k itself from half-width tables covering every
            # position below total_sequence_length; computed per call, so no 65536-row constant.
            freqs = torch.arange(rows.length, device=x.device).float()[:, None] * self.inv_freq[None, :]
            rope = (freqs.cos(), freqs.sin())

        presents: list[torch.Tensor] = []
        for i, layer in enumerate(self.model.layers):
            x, pk, pv = layer(x, rows, past[2 * i], past[2 * i + 1], rope)
            presents += [pk, pv]

        # Each row's last real token in this call: len-1 in a right-padded first prompt, else S-1.
        last = torch.clamp(seqlens_k.to(torch.int64), max=s - 1)
        h = torch.gather(x, 1, last[:, None, None].expand(b, 1, x.shape[2]))
        logits = self.head(self.model.norm(h))
        next_token = torch.argmax(logits, dim=-1)
        return (logits, next_token, *presents)
