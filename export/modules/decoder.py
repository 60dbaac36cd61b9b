"""The Qwen3 text decoder of Qwen3-ASR, one graph for prefill and decode.

KV cache: every layer's keys and values live in a fixed-capacity buffer (B, kv_heads, capacity,
head_dim) that the runtime allocates once per batch and binds as both ``past`` input and
``present`` output. The graph writes the new rows with ScatterElements (whose kernels skip the
copy when input and output share memory, so the update is in place) and attends over the first
``total`` rows, where ``total`` is the width of ``attention_mask``:

    input_ids (B,S) ──Gather──► embeds ──Where(audio slot)──► x ◄── audio_embeds (B,A,H)[cumsum]
    per layer:  RMSNorm → q,k,v → q_norm,k_norm → RoPE(position_ids)
                k,v ──ScatterElements rows [total-S, total)──► past buffer  ═► present (same memory)
                present[:, :, :total] ─► grouped attention, mask = causal ∧ attention_mask
    last position only ─► norm ─► lm_head ─► logits (B,1,V), ArgMax ─► next_token (B,1)

Batches are left-padded (as the official package does): all rows write the same rows of the
buffer, pads are masked as keys, and ``position_ids`` carries each row's own positions.
M-RoPE with identical t/h/w positions is plain rotate-half RoPE, which is what this computes.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..checkpoint import TextConfig
from .encoder import MASK_VALUE


class RMSNorm(nn.Module):
    def __init__(self, size: int, eps: float):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(size))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        variance = x.pow(2).mean(-1, keepdim=True)
        return self.weight * (x * torch.rsqrt(variance + self.eps))


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


class DecoderAttention(nn.Module):
    def __init__(self, cfg: TextConfig):
        super().__init__()
        self.heads, self.kv_heads, self.head_dim = cfg.heads, cfg.kv_heads, cfg.head_dim
        self.q_proj = nn.Linear(cfg.hidden_size, cfg.heads * cfg.head_dim, bias=False)
        self.k_proj = nn.Linear(cfg.hidden_size, cfg.kv_heads * cfg.head_dim, bias=False)
        self.v_proj = nn.Linear(cfg.hidden_size, cfg.kv_heads * cfg.head_dim, bias=False)
        self.o_proj = nn.Linear(cfg.heads * cfg.head_dim, cfg.hidden_size, bias=False)
        self.q_norm = RMSNorm(cfg.head_dim, cfg.rms_norm_eps)
        self.k_norm = RMSNorm(cfg.head_dim, cfg.rms_norm_eps)

    def forward(
        self,
        x: torch.Tensor,
        cos: torch.Tensor,
        sin: torch.Tensor,
        allowed: torch.Tensor,
        past_key: torch.Tensor,
        past_value: torch.Tensor,
        write_index: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        b, s, _ = x.shape
        d, kvh = self.head_dim, self.kv_heads
        group = self.heads // kvh
        q = self.q_norm(self.q_proj(x).view(b, s, self.heads, d)).transpose(1, 2)
        k = self.k_norm(self.k_proj(x).view(b, s, kvh, d)).transpose(1, 2)
        v = self.v_proj(x).view(b, s, kvh, d).transpose(1, 2)
        cos, sin = cos[:, None], sin[:, None]
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin

        present_key = past_key.scatter(2, write_index, k)
        present_value = past_value.scatter(2, write_index, v)
        total = allowed.shape[-1]
        keys = present_key[:, :, :total]
        values = present_value[:, :, :total]

        # Grouped-query attention without repeating the cache: query heads h = g·kvh... are laid
        # out as (kv_head, group) like the official repeat_interleave.
        qg = q.reshape(b, kvh, group, s, d)
        scores = torch.matmul(qg, keys[:, :, None].transpose(3, 4)) * (d**-0.5)
        scores = torch.where(allowed[:, None, None], scores, MASK_VALUE)
        probs = torch.softmax(scores, dim=-1)
        out = torch.matmul(probs, values[:, :, None]).reshape(b, self.heads, s, d)
        out = self.o_proj(out.transpose(1, 2).reshape(b, s, self.heads * d))
        return out, present_key, present_value


class DecoderLayer(nn.Module):
    def __init__(self, cfg: TextConfig):
        super().__init__()
        self.self_attn = DecoderAttention(cfg)
        self.mlp = nn.Module()
        self.mlp.gate_proj = nn.Linear(cfg.hidden_size, cfg.intermediate_size, bias=False)
        self.mlp.up_proj = nn.Linear(cfg.hidden_size, cfg.intermediate_size, bias=False)
        self.mlp.down_proj = nn.Linear(cfg.intermediate_size, cfg.hidden_size, bias=False)
        self.input_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.post_attention_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)

    def forward(self, x, cos, sin, allowed, past_key, past_value, write_index):
        attn, present_key, present_value = self.self_attn(
            self.input_layernorm(x), cos, sin, allowed, past_key, past_value, write_index
        )
        x = x + attn
        y = self.post_attention_layernorm(x)
        x = x + self.mlp.down_proj(F.silu(self.mlp.gate_proj(y)) * self.mlp.up_proj(y))
        return x, present_key, present_value


class TextDecoder(nn.Module):
    """Parameter names match ``thinker.model.*`` (and ``thinker.lm_head``) minus ``thinker.``."""

    def __init__(self, cfg: TextConfig, audio_token_id: int):
        super().__init__()
        self.cfg = cfg
        self.audio_token_id = audio_token_id
        self.model = nn.Module()
        self.model.embed_tokens = nn.Embedding(cfg.vocab_size, cfg.hidden_size)
        self.model.layers = nn.ModuleList(DecoderLayer(cfg) for _ in range(cfg.layers))
        self.model.norm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        # A tied checkpoint uses the embedding as the head: one copy of the table in the graph.
        self.lm_head = None
        if not cfg.tie_word_embeddings:
            self.lm_head = nn.Linear(cfg.hidden_size, cfg.vocab_size, bias=False)
        self.reset_buffers()

    def reset_buffers(self) -> None:
        """(Re)compute the non-persistent tables: needed after building the module on "meta"."""
        d = self.cfg.head_dim
        inv_freq = 1.0 / (self.cfg.rope_theta ** (torch.arange(0, d, 2, dtype=torch.int64).float() / d))
        self.register_buffer("inv_freq", inv_freq, persistent=False)

    def forward(
        self,
        input_ids: torch.Tensor,  # (B, S) int64
        position_ids: torch.Tensor,  # (B, S) int64
        attention_mask: torch.Tensor,  # (B, total) int64: 1 real token, 0 padding
        audio_embeds: torch.Tensor,  # (B, A, H) from the encoder
        audio_embed_lens: torch.Tensor,  # (B,) int64, 0 in decode steps
        past: tuple[torch.Tensor, ...],  # per layer key, value: (B, kv_heads, capacity, head_dim)
    ) -> tuple[torch.Tensor, ...]:
        b, s = input_ids.shape
        total = attention_mask.shape[1]
        x = self.model.embed_tokens(input_ids)

        # Audio injection: the k-th audio placeholder of a row takes that row's k-th audio embedding.
        is_audio = input_ids == self.audio_token_id
        slot = torch.cumsum(is_audio.to(torch.int64), dim=1) - 1
        inject = is_audio & (slot < audio_embed_lens[:, None])
        slot = slot.clamp(0, audio_embeds.shape[1] - 1)
        audio = torch.gather(audio_embeds, 1, slot[:, :, None].expand(b, s, audio_embeds.shape[2]))
        x = torch.where(inject[:, :, None], audio, x)

        freqs = position_ids[:, :, None].float() * self.inv_freq[None, None, :]
        emb = torch.cat((freqs, freqs), dim=-1)
        cos, sin = emb.cos(), emb.sin()

        past_len = total - s
        query_pos = past_len + torch.arange(s, device=input_ids.device)
        key_pos = torch.arange(total, device=input_ids.device)
        allowed = (key_pos[None, :] <= query_pos[:, None])[None] & (attention_mask[:, None, :] > 0)
        cfg = self.cfg
        write_index = query_pos[None, None, :, None].expand(b, cfg.kv_heads, s, cfg.head_dim)

        presents: list[torch.Tensor] = []
        for i, layer in enumerate(self.model.layers):
            x, pk, pv = layer(x, cos, sin, allowed, past[2 * i], past[2 * i + 1], write_index)
            presents += [pk, pv]

        h = self.model.norm(x[:, -1:, :])
        if self.lm_head is None:
            logits = torch.matmul(h, self.model.embed_tokens.weight.t())
        else:
            logits = self.lm_head(h)
        next_token = torch.argmax(logits, dim=-1)
        return (logits, next_token, *presents)
