"""The text side of Qwen3-ForcedAligner: one causal pass, a timestamp class for every position.

The same Qwen3 decoder as the ASR model (export/modules/decoder.py) in its portable form, with
no KV cache (the aligner never generates) and the 5000-class timestamp head in place of the LM
head. Class k means k × 80 ms; the runtime reads the classes at the ``<timestamp>`` slots.

    input_ids (B,S) right-padded ─► embeds + audio ─► 28 causal layers ─► norm ─► head
        ─► logits (B,S,classes), ArgMax ─► classes (B,S)
"""

from __future__ import annotations

import torch
from torch import nn

from ..checkpoint import TextConfig
from .decoder import TextDecoder


class AlignerText(TextDecoder):
    """Parameter names match ``thinker.model.*`` and ``thinker.lm_head`` (classes × hidden)."""

    def __init__(self, cfg: TextConfig, audio_token_id: int, classes: int):
        super().__init__(cfg, audio_token_id, attention="portable")
        self.lm_head = nn.Linear(cfg.hidden_size, classes, bias=False)

    def forward(
        self,
        input_ids: torch.Tensor,  # (B, S) int64, right-padded
        audio_embeds: torch.Tensor,  # (B, A, H)
        audio_embed_lens: torch.Tensor,  # (B,) int64
    ) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self.lm_head(self.whole(input_ids, audio_embeds, audio_embed_lens))
        return logits, torch.argmax(logits, dim=-1)
