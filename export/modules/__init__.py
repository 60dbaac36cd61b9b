"""Export-friendly torch restatements of the Qwen3-ASR graphs, loaded from checkpoint weights."""

from __future__ import annotations

import torch

from ..checkpoint import CheckpointConfig
from .aligner import AlignerText
from .decoder import TextDecoder
from .encoder import AudioEncoder

__all__ = [
    "AlignerText",
    "AudioEncoder",
    "TextDecoder",
    "build_aligner_text",
    "build_decoder",
    "build_encoder",
]


def _load(module: torch.nn.Module, weights: dict[str, torch.Tensor], prefix: str) -> None:
    """Hand the checkpoint's tensors to a module built on "meta": no second copy of the weights."""
    state = {k[len(prefix) :]: v for k, v in weights.items() if k.startswith(prefix)}
    missing, unexpected = module.load_state_dict(state, strict=False, assign=True)
    if missing or unexpected:  # checkpoint.load_weights checked names already: this is a bug
        raise RuntimeError(f"weights do not fit {type(module).__name__}: {missing=} {unexpected=}")
    module.reset_buffers()


# The build_* modules are for export: their sibling projections are fused (modules/fused.py).
def build_encoder(cfg: CheckpointConfig, weights: dict[str, torch.Tensor], attention: str) -> AudioEncoder:
    with torch.device("meta"):
        encoder = AudioEncoder(cfg.audio, attention)
    _load(encoder, weights, "thinker.audio_tower.")
    encoder.fuse_projections()
    return encoder.eval()


def build_decoder(
    cfg: CheckpointConfig, weights: dict[str, torch.Tensor], attention: str = "gqa"
) -> TextDecoder:
    with torch.device("meta"):
        decoder = TextDecoder(cfg.text, cfg.audio_token_id, attention)
    state = {k: v for k, v in weights.items() if k.startswith("thinker.model.")}
    if decoder.lm_head is not None:
        state["thinker.lm_head.weight"] = weights["thinker.lm_head.weight"]
    _load(decoder, state, "thinker.")
    decoder.fuse_projections()
    return decoder.eval()


def build_aligner_text(cfg: CheckpointConfig, weights: dict[str, torch.Tensor]) -> AlignerText:
    with torch.device("meta"):
        aligner = AlignerText(cfg.text, cfg.audio_token_id, cfg.classify_num)
    state = {k: v for k, v in weights.items() if k.startswith("thinker.model.")}
    state["thinker.lm_head.weight"] = weights["thinker.lm_head.weight"]
    _load(aligner, state, "thinker.")
    aligner.fuse_projections()
    return aligner.eval()
