"""Random-weight checkpoints in the official Qwen3-ASR layout, of any size.

Tests use tiny ones (nothing can be downloaded here); benchmarks use full-size ones, which cost
the same to run as the real weights. The files are those of a released repository: config.json
with the release's key layout, tokenizer files with the added tokens at their real ids, the chat
template, preprocessor and generation configs, and bf16 safetensors (optionally sharded).

With ``peaky=True`` the weights are drawn with unit gain (std 1/sqrt(fan_in)) instead of the
usual 0.02, so that attention is sharp and logits have clear margins: with flat random weights
argmax ties hide real differences between two implementations.

With ``realistic=True`` the unit-gain weights get the statistics of trained Qwen-family models
planted on top (``plant_realistic_statistics``), because fp16 overflow, INT8 activation ranges
and INT4 block errors depend on them and unit-gain weights have none. What they aim at, and where
the numbers come from:

* Massive activations (Sun, Chen, Kolter, Liu 2024, "Massive Activations in Large Language
  Models", COLM): a handful of activations up to ~1e4-1e5 times the median, on two or so *fixed*
  feature dimensions (LLaMA2-7B: dims 1415 and 2533, top values ~2.6e3 against a median well
  under 1), on the starting token and on the first delimiter tokens, appearing abruptly in an early
  layer's MLP and then nearly constant through the residual stream. Chen et al. 2026 ("Measuring
  Maximum Activations in Open Large Language Models") put Qwen3.5 checkpoints' global maxima in
  the 1e2-1e3 range, and find the residual stream carries the maximum in 22 of 24 checkpoints.
  Here: ``MASSIVE`` = (2400, -1500) on two fixed channels of the chat delimiter
  ``<|im_start|>`` (position 0 and each later turn), written by one unit of the first layer's MLP
  behind an outlier RMSNorm weight (the "massive emergence layer" mechanism), so max|h| / median
  |h| is in the thousands from the first layer on.
* Attention sinks (Xiao et al. 2023, "Efficient Streaming Language Models with Attention Sinks";
  Sun et al. §4): past the first layer or two, most heads put most of their probability (often
  over half) on the first token(s), whose value vectors are small, so attention to them is a
  no-op. Here: from the second layer on the sink tokens take ~0.7-1.0 of the attention mass
  (position 0 alone ~0.35-0.55), through the slowest rotary dims, with values that ignore the
  massive channels.
* Outlier features (Dettmers et al. 2022, "LLM.int8()"): a few hidden dimensions with magnitude
  >= 6 (up to ~20) on most tokens, systematic across layers; they are what breaks per-tensor INT8
  activation scales. Here: two channels at ``FEATURE`` times the mean |embedding| on every token,
  text and audio, with x4 RMSNorm weights on them.
* Logits: trained heads give top logits of about 20-35 over a 152k vocabulary with a spread of
  a few units; here the final norm's gain, set from the head's rows (``LOGIT_STD``), puts the
  top near 25-30 at every width (random heads at unit gain give ~3).
* The audio encoder gets one outlier residual channel (``ENCODER_OUTLIER`` per layer's fc2 bias),
  down-weighted by its layer norms.

``activation_statistics`` measures these on any checkpoint (tests/export/test_synthetic.py checks
realistic ones have them and the default ones do not). Measured on tiny checkpoints (seeds 5
and 11, tied and untied): realistic max|h|/median 3.1e3-6.9e3 from layer 0 (max 2.4e3-2.6e3),
0.69-0.99 of layer 1's attention on the sink tokens (0.36-0.53 on position 0), top logit 23-29;
default 7-9, no sink (0.07-0.08 on position 0, i.e. uniform), top logit 0.7; peaky 5-8, 0.07-0.08,
3.4-4.4.
"""

from __future__ import annotations

import argparse
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from safetensors.torch import save_file

from qwen_asr_edge.runtime.console import path_argument

from .checkpoint import OFFICIAL_LANGUAGES, AudioConfig, CheckpointConfig, TextConfig, expected_shapes
from .tokenizer import train_bpe

# Added tokens of the released tokenizer_config.json, in id order from 151643: (content, special).
FIRST_ADDED_ID = 151643
ADDED_TOKENS: list[tuple[str, bool]] = [
    ("<|endoftext|>", True),
    ("<|im_start|>", True),
    ("<|im_end|>", True),
    ("<|object_ref_start|>", True),
    ("<|object_ref_end|>", True),
    ("<|box_start|>", True),
    ("<|box_end|>", True),
    ("<|quad_start|>", True),
    ("<|quad_end|>", True),
    ("<|vision_start|>", True),
    ("<|vision_end|>", True),
    ("<|vision_pad|>", True),
    ("<|image_pad|>", True),
    ("<|video_pad|>", True),
    ("<tool_call>", False),
    ("</tool_call>", False),
    ("<|fim_prefix|>", False),
    ("<|fim_middle|>", False),
    ("<|fim_suffix|>", False),
    ("<|fim_pad|>", False),
    ("<|repo_name|>", False),
    ("<|file_sep|>", False),
    ("<tool_response>", False),
    ("</tool_response>", False),
    ("<think>", False),
    ("</think>", False),
    ("<|audio_start|>", True),
    ("<|audio_end|>", True),
    ("<tts_pad>", True),
    ("<tts_text_bos>", True),
    ("<tts_text_eod>", True),
    ("<tts_text_bos_single>", True),
    ("<non_speech>", False),
    ("<|audio_pad|>", True),
    *[(f"<blank{i}>", True) for i in range(1, 28)],
    ("<asr_text>", False),
    ("<timestamp>", False),
]


def token_ids(first_added_id: int = FIRST_ADDED_ID) -> dict[str, int]:
    """The added tokens' ids when the base vocabulary has ``first_added_id`` entries."""
    return {tok: first_added_id + i for i, (tok, _) in enumerate(ADDED_TOKENS)}


TOKEN_IDS = token_ids()

# The released template puts all system text into one system turn and one audio block per audio
# item into a single user turn; this one renders the same string.
CHAT_TEMPLATE = (
    "{%- set sys = namespace(text='') -%}"
    "{%- for m in messages if m.role == 'system' -%}"
    "{%- if m.content is string -%}{%- set sys.text = sys.text + m.content -%}"
    "{%- else -%}{%- for c in m.content if c.type == 'text' -%}{%- set sys.text = sys.text + c.text -%}"
    "{%- endfor -%}{%- endif -%}{%- endfor -%}"
    "{{- '<|im_start|>system\\n' + sys.text + '<|im_end|>\\n<|im_start|>user\\n' -}}"
    "{%- for m in messages if m.content is not string -%}{%- for c in m.content if c.type == 'audio' -%}"
    "{{- '<|audio_start|><|audio_pad|><|audio_end|>' -}}{%- endfor -%}{%- endfor -%}"
    "{{- '<|im_end|>\\n' -}}"
    "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}"
)

# A few sentences in several scripts to train the small fallback BPE on.
BPE_CORPUS = [
    "language English<asr_text>hello world this is a test of the speech recognizer.",
    "language Chinese<asr_text>甚至出现交易几乎停滞的情况。你好世界",
    "language None language Japanese Korean German French Spanish Italian Russian",
    "system user assistant The quick brown fox jumps over the lazy dog 0123456789",
    "こんにちは 世界 안녕하세요 Привет мир Bonjour le monde ¿Qué tal? Grüß Gott",
]


@dataclass(frozen=True)
class Shape:
    audio: AudioConfig
    text: TextConfig


def audio_config(**kw) -> AudioConfig:
    """The released audio encoder's settings, with the sizes given."""
    base = dict(num_mel_bins=128, n_window=50, n_window_infer=800, max_source_positions=1500)
    return AudioConfig(**{**base, **kw})


def text_config(**kw) -> TextConfig:
    """The released Qwen3 text model's settings, with the sizes given."""
    base = dict(
        layers=28,
        heads=16,
        kv_heads=8,
        head_dim=128,
        rms_norm_eps=1e-6,
        rope_theta=1e6,
        max_position_embeddings=65536,
        vocab_size=151936,
        tie_word_embeddings=True,
    )
    return TextConfig(**{**base, **kw})


SHAPES: dict[str, Shape] = {
    "0.6B": Shape(
        audio_config(layers=18, heads=14, ffn_dim=3584, d_model=896, conv_channels=480, output_dim=1024),
        text_config(hidden_size=1024, intermediate_size=3072),
    ),
    "1.7B": Shape(
        audio_config(layers=24, heads=16, ffn_dim=4096, d_model=1024, conv_channels=480, output_dim=2048),
        text_config(hidden_size=2048, intermediate_size=6144),
    ),
    "tiny": Shape(
        audio_config(layers=2, heads=4, ffn_dim=64, d_model=32, conv_channels=8, output_dim=64),
        text_config(hidden_size=64, intermediate_size=128, layers=2, heads=4, kv_heads=2),
    ),
}


# The released Qwen3-ForcedAligner-0.6B: a 1.7B-size audio encoder with a 1024-wide output in
# front of a Qwen3-0.6B text model with a 5000-class timestamp head (spec §1.2, §6).
ALIGNER_LANGUAGES = ["Chinese", "Cantonese", "English", "German", "Spanish", "French", "Italian",
                     "Portuguese", "Russian", "Korean", "Japanese"]  # fmt: skip
ALIGNER_CLASSES = 5000
TIMESTAMP_SEGMENT_MS = 80


def aligner_shape(shape: Shape) -> Shape:
    """The aligner variant of a shape: untied, vocab 152064, 8192 positions."""
    text = replace(shape.text, vocab_size=152064, max_position_embeddings=8192, tie_word_embeddings=False)
    if shape is SHAPES["0.6B"]:
        audio = replace(SHAPES["1.7B"].audio, output_dim=shape.text.hidden_size)
        return Shape(audio, text)
    return Shape(shape.audio, text)


def config_json(
    shape: Shape, source_dtype: str = "bfloat16", aligner: bool = False, first_added_id: int = FIRST_ADDED_ID
) -> dict:
    a, t = shape.audio, shape.text
    ids = token_ids(first_added_id)
    audio = {
        "model_type": "qwen3_asr_audio_encoder",
        "num_mel_bins": a.num_mel_bins,
        "encoder_layers": a.layers,
        "num_hidden_layers": a.layers,
        "encoder_attention_heads": a.heads,
        "encoder_ffn_dim": a.ffn_dim,
        "d_model": a.d_model,
        "downsample_hidden_size": a.conv_channels,
        "output_dim": a.output_dim,
        "n_window": a.n_window,
        "n_window_infer": a.n_window_infer,
        "conv_chunksize": 500,
        "max_source_positions": a.max_source_positions,
        "activation_function": "gelu",
        "scale_embedding": False,
        "dropout": 0,
        "attention_dropout": 0,
        "activation_dropout": 0,
    }
    text = {
        "model_type": "qwen3",
        "hidden_size": t.hidden_size,
        "intermediate_size": t.intermediate_size,
        "num_hidden_layers": t.layers,
        "num_attention_heads": t.heads,
        "num_key_value_heads": t.kv_heads,
        "head_dim": t.head_dim,
        "hidden_act": "silu",
        "rms_norm_eps": t.rms_norm_eps,
        "rope_theta": t.rope_theta,
        "attention_bias": False,
        "attention_dropout": 0.0,
        "rope_scaling": {
            "interleaved": True,
            "mrope_interleaved": True,
            "mrope_section": [24, 20, 20],
            "rope_type": "default",
            "type": "default",
        },
        "vocab_size": t.vocab_size,
        "max_position_embeddings": t.max_position_embeddings,
        "tie_word_embeddings": t.tie_word_embeddings,
        "use_cache": True,
    }
    thinker = {
        "model_type": "qwen3_asr",
        "architectures": ["Qwen3ASRForConditionalGeneration"],
        "audio_config": audio,
        "text_config": text,
        "audio_start_token_id": ids["<|audio_start|>"],
        "audio_end_token_id": ids["<|audio_end|>"],
        "audio_token_id": ids["<|audio_pad|>"],
        "initializer_range": 0.02,
        "dtype": source_dtype,
    }
    config = {
        "architectures": ["Qwen3ASRForConditionalGeneration"],
        "model_type": "qwen3_asr",
        "support_languages": OFFICIAL_LANGUAGES,
        "thinker_config": thinker,
        "transformers_version": "4.57.6",
    }
    if aligner:  # written by hand in the release too: save_pretrained would rename the thinker type
        thinker["model_type"] = "qwen3_forced_aligner"
        thinker["classify_num"] = ALIGNER_CLASSES
        config["support_languages"] = ALIGNER_LANGUAGES
        config["timestamp_token_id"] = ids["<timestamp>"]
        config["timestamp_segment_time"] = TIMESTAMP_SEGMENT_MS
    return config


def _train_small_bpe() -> tuple[dict[str, int], str]:
    vocab, merges = train_bpe(BPE_CORPUS * 50, 1200)
    # Unreachable fillers put the added tokens at their real ids (the real base vocab has 151643).
    for i in range(len(vocab), FIRST_ADDED_ID):
        vocab[f"zzfiller{i}"] = i
    return vocab, merges


def write_tokenizer_files(folder: Path, vocab_dir: Path | None = None) -> None:
    """vocab.json + merges.txt (the real Qwen3 ones from ``vocab_dir``, or a small BPE) + config."""
    if vocab_dir is not None:
        vocab = json.loads((vocab_dir / "vocab.json").read_text(encoding="utf-8"))
        merges = (vocab_dir / "merges.txt").read_text(encoding="utf-8")
    else:
        vocab, merges = _train_small_bpe()
    if len(vocab) != FIRST_ADDED_ID:
        raise ValueError(f"base vocabulary has {len(vocab)} entries, expected {FIRST_ADDED_ID}")
    write_vocab(folder, vocab, merges)


def write_vocab(folder: Path, vocab: dict[str, int], merges: str) -> None:
    """vocab.json, merges.txt and tokenizer_config.json, the added tokens right after the base
    vocabulary (at their real ids for the real vocabulary, at smaller ones for a small BPE)."""
    ids = token_ids(len(vocab))
    (folder / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    (folder / "merges.txt").write_text(merges, encoding="utf-8")
    audio_attrs = {
        "audio_bos_token": "<|audio_start|>",
        "audio_eos_token": "<|audio_end|>",
        "audio_token": "<|audio_pad|>",
    }
    cfg = {
        "add_bos_token": False,
        "add_prefix_space": False,
        "added_tokens_decoder": {
            str(ids[t]): {
                "content": t,
                "lstrip": False,
                "normalized": False,
                "rstrip": False,
                "single_word": False,
                "special": special,
            }
            for t, special in ADDED_TOKENS
        },
        "additional_special_tokens": [
            "<|im_start|>",
            "<|im_end|>",
            "<|audio_start|>",
            "<|audio_end|>",
            "<|audio_pad|>",
        ],
        "bos_token": None,
        "clean_up_tokenization_spaces": False,
        "eos_token": "<|im_end|>",
        "errors": "replace",
        "extra_special_tokens": audio_attrs,
        "model_max_length": 131072,
        "pad_token": "<|endoftext|>",
        "processor_class": "Qwen3ASRProcessor",
        "split_special_tokens": False,
        "tokenizer_class": "Qwen2Tokenizer",
        "unk_token": None,
        **audio_attrs,
    }
    (folder / "tokenizer_config.json").write_text(
        json.dumps(cfg, indent=2, ensure_ascii=False), encoding="utf-8"
    )


def write_side_files(folder: Path, first_added_id: int = FIRST_ADDED_ID) -> None:
    preprocessor = {
        "chunk_length": 30,
        "dither": 0.0,
        "feature_extractor_type": "WhisperFeatureExtractor",
        "feature_size": 128,
        "hop_length": 160,
        "n_fft": 400,
        "n_samples": 480000,
        "nb_max_frames": 3000,
        "padding_side": "right",
        "padding_value": 0.0,
        "processor_class": "Qwen3ASRProcessor",
        "return_attention_mask": True,
        "sampling_rate": 16000,
    }
    ids = token_ids(first_added_id)
    eos, pad = ids["<|im_end|>"], ids["<|endoftext|>"]
    generation = {"eos_token_id": [pad, eos], "pad_token_id": pad, "do_sample": False}
    (folder / "preprocessor_config.json").write_text(json.dumps(preprocessor, indent=2))
    (folder / "generation_config.json").write_text(json.dumps(generation, indent=2))
    (folder / "chat_template.json").write_text(json.dumps({"chat_template": CHAT_TEMPLATE}))


def random_weights(
    cfg: CheckpointConfig, seed: int = 0, peaky: bool = False, store_tied_head: bool = True
) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    weights: dict[str, torch.Tensor] = {}
    for name, shape in expected_shapes(cfg).items():
        if name.endswith("norm.weight") or "layer_norm.weight" in name or "ln_post.weight" in name:
            w = 1.0 + 0.1 * torch.randn(shape, generator=gen)
        elif name.endswith(".bias"):
            w = 0.02 * torch.randn(shape, generator=gen)
        elif name == "thinker.model.embed_tokens.weight":
            # A tied head scores a token by its similarity to the input embedding: at unit scale
            # the last prompt token wins forever. Smaller rows let the layers decide.
            scale = (0.1 if cfg.text.tie_word_embeddings else 1.0) if peaky else 0.02
            w = torch.randn(shape, generator=gen) * scale
        else:
            fan_in = int(torch.tensor(shape[1:]).prod())
            w = torch.randn(shape, generator=gen) * (fan_in**-0.5 if peaky else 0.02)
        weights[name] = w
    if cfg.text.tie_word_embeddings:
        if store_tied_head:  # the releases store the head although it is tied
            weights["thinker.lm_head.weight"] = weights["thinker.model.embed_tokens.weight"]
        else:
            del weights["thinker.lm_head.weight"]
    return weights


# --- Realistic weights -------------------------------------------------------------------------
# Where the statistics below sit in a real checkpoint; the ``realistic`` weights plant them on
# top of the unit-gain ("peaky") draw. Indices are drawn from the seed, fixed per checkpoint.
MASSIVE = (2400.0, -1500.0)  # the values of the massive channels on sink tokens, from layer 1 on
FEATURE = 6.0  # the systematic outlier channels' value on every token (Dettmers: >= 6, up to ~20)
SINK_NORM_WEIGHT = 4.0  # q_norm/k_norm weight on the sink's rotary dims (the rest stay near 1)
# Logits: their spread over the vocabulary (std); the top of 152k lands near 4.5 spreads, 25-30.
# The final norm's gain is set from the head's rows so that this holds at every width (a fixed
# gain gave a top logit near 100 on the 0.6B shape).
LOGIT_STD = 6.5


ENCODER_OUTLIER = 40.0  # the encoder's outlier channel: fc2 bias added per layer


@dataclass(frozen=True)
class Outliers:
    """The hidden channels that carry the planted statistics (text model)."""

    massive: tuple[int, ...]  # massive activations on sink tokens (Sun et al.)
    feature: tuple[int, ...]  # systematic outlier features on every token (Dettmers et al.)
    trigger: int  # carried only by the sink token's embedding; the first layer's MLP reads it
    encoder: int  # the audio encoder's outlier channel


def outlier_channels(cfg: CheckpointConfig, seed: int = 0) -> Outliers:
    gen = torch.Generator().manual_seed(seed + 1_000_003)
    order = torch.randperm(cfg.text.hidden_size, generator=gen).tolist()
    encoder = int(torch.randint(cfg.audio.d_model, (1,), generator=gen))
    return Outliers(massive=tuple(order[:2]), feature=tuple(order[2:4]), trigger=order[4], encoder=encoder)


def _low_frequency_dims(head_dim: int, pairs: int = 4) -> list[int]:
    """The rotary pairs that turn slowest (rotate_half layout: dims i and i + head_dim/2 share the
    frequency theta^(-2i/head_dim)): a key there scores alike from every query position."""
    half = head_dim // 2
    return [d for i in range(half - pairs, half) for d in (i, i + half)]


def plant_realistic_statistics(
    weights: dict[str, torch.Tensor], cfg: CheckpointConfig, seed: int = 0, sink_token: int | None = None
) -> Outliers:
    """Turn unit-gain weights into ones with real models' statistics, in place.

    * Massive activations: the sink token's embedding alone carries a ``trigger`` channel; the
      first layer's post-attention RMSNorm has an outlier weight there and one MLP unit of that
      layer reads it and writes ``MASSIVE`` into two fixed channels. Nothing else writes much into
      those channels (their rows of o_proj/down_proj are 1/20 of the rest), so every other token
      stays near the median and the sink keeps its values through the later layers.
    * Attention sinks: from the second layer on, the key projection maps the massive channels onto
      the slowest rotary dims of every kv head, and the query projection maps the ``feature``
      channels (present on every token) onto the same dims, which q_norm and k_norm weight by
      ``SINK_NORM_WEIGHT`` (outlier norm weights): every query scores the sink tokens high, at any
      distance. The value projection ignores the massive channels, so attending to the sinks is
      a near no-op, as in real models.
    * Outlier features: every embedding row and every audio embedding carries ``FEATURE`` on two
      fixed channels; the RMSNorm weights have outliers (x4) on them.
    * Logits: the final norm's gain gives a logit spread of ``LOGIT_STD``, except on the outlier
      channels (1/20), which real models' final norms also suppress.
    """
    t, a = cfg.text, cfg.audio
    o = outlier_channels(cfg, seed)
    gen = torch.Generator().manual_seed(seed + 2_000_003)
    d = t.head_dim
    massive, feature = list(o.massive), list(o.feature)
    low = _low_frequency_dims(d)
    sink_token = TOKEN_IDS["<|im_start|>"] if sink_token is None else sink_token
    text = "thinker.model."

    embed = weights[text + "embed_tokens.weight"]
    embed[:, o.trigger] = 0.0
    embed[:, massive] = 0.0
    embed[:, feature] = FEATURE * embed.abs().mean() * torch.tensor([1.0, -1.0])
    if sink_token < embed.shape[0]:
        embed[sink_token, o.trigger] = 40.0 * embed.abs().mean()
    # Audio embeddings (proj2's output) carry the feature channels and no trigger either.
    proj2_w, proj2_b = weights["thinker.audio_tower.proj2.weight"], weights["thinker.audio_tower.proj2.bias"]
    proj2_w[[o.trigger, *massive]] = 0.0
    proj2_b[[o.trigger, *massive]] = 0.0
    proj2_b[feature] = FEATURE * embed.abs().mean() * torch.tensor([1.0, -1.0])

    for i in range(t.layers):
        p = f"{text}layers.{i}."
        for norm in ("input_layernorm", "post_attention_layernorm"):
            weights[p + norm + ".weight"][feature] *= 4.0
        # The features are read as a constant (the sink query below), not as content: read as
        # content, their constant push makes one token win every step.
        for n in ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "mlp.gate_proj", "mlp.up_proj"):
            weights[p + n + ".weight"][:, feature] = 0.0
        o_proj, down = weights[p + "self_attn.o_proj.weight"], weights[p + "mlp.down_proj.weight"]
        o_proj[massive] /= 20.0
        down[massive] /= 20.0
        o_proj[o.trigger] = 0.0
        down[o.trigger] = 0.0
        if i == 0:
            _plant_massive_unit(weights, cfg, o, embed[sink_token] if sink_token < embed.shape[0] else None)
            continue
        q, k, v = (weights[p + f"self_attn.{n}_proj.weight"] for n in "qkv")
        sink = torch.zeros(d)
        sink[low] = torch.randn(len(low), generator=gen).sign()
        sink /= sink.norm()
        for head in range(t.kv_heads):
            rows = slice(head * d, (head + 1) * d)
            k[rows][low] *= 0.2  # ordinary keys hardly use the slow dims
            k[rows, massive[0]] = sink * 3.0
            k[rows, massive[1]] = -sink * 3.0
        v[:, massive] = 0.0
        for head in range(t.heads):
            rows = slice(head * d, (head + 1) * d)
            q[rows, feature[0]] += sink * 3.0
            q[rows, feature[1]] -= sink * 3.0
        for norm in ("q_norm", "k_norm"):
            weights[p + f"self_attn.{norm}.weight"][low] = SINK_NORM_WEIGHT

    final = weights[text + "norm.weight"]
    suppressed = [*massive, *feature, o.trigger]
    head = weights.get("thinker.lm_head.weight", embed).clone()
    head[:, suppressed] = 0.0
    gain = LOGIT_STD / float(head.pow(2).sum(-1).mean().sqrt())  # logit std = gain x |head row|
    final *= gain
    final[suppressed] /= 20.0 * gain

    # The encoder: one outlier channel grown by each layer's fc2 bias (Whisper-like encoders carry
    # a few large residual channels too); its layer norms down-weight it.
    for i in range(a.layers):
        p = f"thinker.audio_tower.layers.{i}."
        weights[p + "fc2.bias"][o.encoder] += ENCODER_OUTLIER
        for norm in ("self_attn_layer_norm", "final_layer_norm"):
            weights[p + norm + ".weight"][o.encoder] *= 0.05
    weights["thinker.audio_tower.ln_post.weight"][o.encoder] *= 0.05
    return o


def _plant_massive_unit(
    weights: dict[str, torch.Tensor], cfg: CheckpointConfig, o: Outliers, sink_row: torch.Tensor | None
) -> None:
    """The first layer's MLP unit 0 reads only the trigger channel (an outlier weight of its RMSNorm)
    and writes ``MASSIVE`` into the massive channels: sized exactly on the sink token at position 0,
    where attention sees only the token itself. Attention ignores the trigger channel."""
    t = cfg.text
    p = "thinker.model.layers.0."
    for n in "qkv":
        weights[p + f"self_attn.{n}_proj.weight"][:, o.trigger] = 0.0
    weights[p + "post_attention_layernorm.weight"][o.trigger] = 20.0
    gate, up, down = (weights[p + f"mlp.{n}_proj.weight"] for n in ("gate", "up", "down"))
    gate[0], up[0], down[:, 0] = 0.0, 0.0, 0.0
    gate[:, o.trigger], up[:, o.trigger] = 0.0, 0.0
    if sink_row is None:
        return

    def norm(v, weight):
        return weight * v * torch.rsqrt(v.pow(2).mean() + t.rms_norm_eps)

    x = sink_row.clone()
    v = weights[p + "self_attn.v_proj.weight"] @ norm(x, weights[p + "input_layernorm.weight"])
    heads = v.view(t.kv_heads, t.head_dim).repeat_interleave(t.heads // t.kv_heads, 0).reshape(-1)
    x = x + weights[p + "self_attn.o_proj.weight"] @ heads
    read = float(norm(x, weights[p + "post_attention_layernorm.weight"])[o.trigger])
    gate[0, o.trigger] = up[0, o.trigger] = 6.0 / read  # the unit's pre-activation: 6 on the sink
    unit = 6.0 * torch.sigmoid(torch.tensor(6.0)) * 6.0
    down[list(o.massive), 0] = torch.tensor(MASSIVE) / unit


def default_prompt() -> list[int]:
    """A chat prompt whose audio span is 40 ordinary tokens (the text model's view of a clip)."""
    middle = torch.randint(1000, 100000, (40,), generator=torch.Generator().manual_seed(0)).tolist()
    im_start, im_end = TOKEN_IDS["<|im_start|>"], TOKEN_IDS["<|im_end|>"]
    return [im_start, 8948, 198, im_end, 198, im_start, 872, 198, *middle, im_end, 198, im_start, 77091, 198]


Linear = Callable[[str, torch.Tensor, torch.Tensor], torch.Tensor]


def text_forward(
    weights: dict[str, torch.Tensor], cfg: CheckpointConfig, ids: list[int], linear: Linear | None = None
):
    """A plain fp32 forward of the Qwen3 text model over ``ids`` (the same maths as the official
    one for text positions, where the three M-RoPE axes coincide). Yields, per layer, the residual
    stream after it (S, H) and the attention probabilities (heads, S, S); then the logits (S, V).
    ``linear(name, x, weight)`` computes every projection (default ``x @ weight.T``): a hook to
    read the layers' inputs, or to put another implementation of one layer in."""
    t = cfg.text
    linear = linear or (lambda name, x, weight: x @ weight.T)
    p = "thinker.model."
    w = weights
    x = w[p + "embed_tokens.weight"][torch.tensor(ids)].float()
    s, d = x.shape[0], t.head_dim
    inv_freq = 1.0 / (t.rope_theta ** (torch.arange(0, d, 2).float() / d))
    angles = torch.arange(s).float()[:, None] * inv_freq
    cos, sin = torch.cat((angles, angles), -1).cos(), torch.cat((angles, angles), -1).sin()

    def norm(v, weight):
        return weight.float() * v * torch.rsqrt(v.pow(2).mean(-1, keepdim=True) + t.rms_norm_eps)

    def rope(v):
        half = v.shape[-1] // 2
        return v * cos + torch.cat((-v[..., half:], v[..., :half]), -1) * sin

    def proj(name, v):
        return linear(name, v, w[name + ".weight"].float())

    causal = torch.ones(s, s).tril().bool()
    for i in range(t.layers):
        lp = f"{p}layers.{i}."
        hn = norm(x, w[lp + "input_layernorm.weight"])
        q = norm(proj(lp + "self_attn.q_proj", hn).view(s, t.heads, d), w[lp + "self_attn.q_norm.weight"])
        k = norm(proj(lp + "self_attn.k_proj", hn).view(s, t.kv_heads, d), w[lp + "self_attn.k_norm.weight"])
        v = proj(lp + "self_attn.v_proj", hn).view(s, t.kv_heads, d)
        group = t.heads // t.kv_heads
        q, k = rope(q.transpose(0, 1)), rope(k.transpose(0, 1)).repeat_interleave(group, 0)
        v = v.transpose(0, 1).repeat_interleave(group, 0)
        scores = (q @ k.transpose(1, 2)) * d**-0.5
        probs = torch.softmax(scores.masked_fill(~causal, float("-inf")), -1)
        attn = (probs @ v).transpose(0, 1).reshape(s, -1)
        x = x + proj(lp + "self_attn.o_proj", attn)
        hn = norm(x, w[lp + "post_attention_layernorm.weight"])
        gate, up = proj(lp + "mlp.gate_proj", hn), proj(lp + "mlp.up_proj", hn)
        x = x + proj(lp + "mlp.down_proj", torch.nn.functional.silu(gate) * up)
        yield x, probs
    head = "thinker.lm_head" if "thinker.lm_head.weight" in w else p + "embed_tokens"
    yield linear(head, norm(x, w[p + "norm.weight"]), w[head + ".weight"].float())


def activation_statistics(folder: str | Path, ids: list[int] | None = None) -> dict:
    """The statistics ``realistic`` weights aim at, measured on a checkpoint's text model.

    ``text_forward`` over ``ids`` (by default ``default_prompt()``). Returns per layer the largest
    |hidden| over the median |hidden| and the channels holding the largest values, the attention
    mass that queries past position 0 put on position 0 (mean over heads and queries), and the
    last position's top logit and logit spread.
    """
    from .checkpoint import load_weights, parse_config

    path = Path(folder)
    cfg = parse_config(path)
    *steps, logits = text_forward(load_weights(path, cfg), cfg, ids or default_prompt())
    layers = []
    for x, probs in steps:
        a = x.abs()
        top = a.max(0).values.topk(2).indices.tolist()
        sinks = a.max(-1).values > 100 * a.median()  # the positions carrying massive activations
        on_sinks = probs[:, 1:][..., sinks].sum(-1).mean() if bool(sinks.any()) else torch.tensor(0.0)
        layers.append(
            {
                "max_over_median": float(a.max() / a.median()),
                "max_abs": float(a.max()),
                "top_channels": top,
                "sink_positions": sinks.nonzero().flatten().tolist(),
                "attention_on_first": float(probs[:, 1:, 0].mean()),
                "attention_on_sinks": float(on_sinks),
            }
        )
    last = logits[-1]
    return {
        "layers": layers,
        "top_logit": float(last.max()),
        "logit_std": float(last.std()),
        "next": int(last.argmax()),
    }


def write_checkpoint(
    folder: str | Path,
    shape: str | Shape = "tiny",
    *,
    seed: int = 0,
    peaky: bool = False,
    tie: bool | None = None,
    heads: tuple[int, int] | None = None,
    vocab_dir: Path | None = None,
    shards: int = 1,
    store_tied_head: bool = True,
    aligner: bool = False,
    realistic: bool = False,
) -> Path:
    """Write a random checkpoint folder; ``heads`` overrides (query heads, kv heads) of the text
    model; ``aligner`` writes a Qwen3-ForcedAligner checkpoint of that shape instead;
    ``realistic`` plants real models' activation statistics (see the module docstring) on
    unit-gain weights (it implies ``peaky``)."""
    s = SHAPES[shape] if isinstance(shape, str) else shape
    if aligner:
        s = aligner_shape(s)
    text = s.text
    if tie is not None:
        text = replace(text, tie_word_embeddings=tie)
    if heads is not None:
        text = replace(text, heads=heads[0], kv_heads=heads[1])
    s = Shape(s.audio, text)
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    cfg_json = config_json(s, aligner=aligner)
    (out / "config.json").write_text(json.dumps(cfg_json, indent=2))
    write_tokenizer_files(out, vocab_dir)
    write_side_files(out)
    if aligner:
        (out / "chat_template.json").unlink()  # the aligner's prompt is no chat

    from .checkpoint import parse_config

    cfg = parse_config(out)
    weights = random_weights(cfg, seed=seed, peaky=peaky or realistic, store_tied_head=True)
    if realistic:
        plant_realistic_statistics(weights, cfg, seed=seed)
    if cfg.text.tie_word_embeddings and not store_tied_head:
        del weights["thinker.lm_head.weight"]
    # bf16 like the releases; safetensors refuses tensors that share memory, so clone the head.
    tensors = {k: v.to(torch.bfloat16).clone() for k, v in weights.items()}
    names = list(tensors)
    if shards <= 1:
        save_file(tensors, str(out / "model.safetensors"), metadata={"format": "pt"})
    else:
        weight_map = {}
        for i in range(shards):
            part = names[i::shards]
            file = f"model-{i + 1:05d}-of-{shards:05d}.safetensors"
            save_file({k: tensors[k] for k in part}, str(out / file), metadata={"format": "pt"})
            weight_map.update(dict.fromkeys(part, file))
        index = {"metadata": {}, "weight_map": weight_map}
        (out / "model.safetensors.index.json").write_text(json.dumps(index, indent=2))
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Write a random-weight Qwen3-ASR checkpoint")
    p.add_argument("out", type=path_argument)
    p.add_argument("--shape", choices=sorted(SHAPES), default="tiny")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--peaky", action="store_true", help="unit-gain weights: sharp attention, clear argmax")
    p.add_argument(
        "--realistic",
        action="store_true",
        help="real models' statistics: massive activations, attention sinks, logits near 30",
    )
    p.add_argument("--vocab-dir", type=Path, help="folder with the real Qwen3 vocab.json and merges.txt")
    p.add_argument("--shards", type=int, default=1)
    p.add_argument("--aligner", action="store_true", help="a Qwen3-ForcedAligner checkpoint of that shape")
    p.add_argument("--force", action="store_true", help="replace OUT if it exists")
    args = p.parse_args(argv)
    out = args.out
    if out.exists() or out.is_symlink():
        checkpoint = out.is_dir() and not out.is_symlink() and (out / "config.json").is_file()
        if not (checkpoint or (out.is_dir() and not any(out.iterdir()))):
            p.error(f"{out} exists and is not a checkpoint; --force replaces checkpoints only")
        if not args.force:
            p.error(f"{out} exists; pass --force to replace it")
        shutil.rmtree(out)
    above = next((d for d in out.absolute().parents if d.exists()), None)
    if above is not None and not above.is_dir():
        p.error(f"{out}: {above} is a file, not a folder")
    write_checkpoint(
        args.out,
        args.shape,
        seed=args.seed,
        peaky=args.peaky,
        vocab_dir=args.vocab_dir,
        shards=args.shards,
        aligner=args.aligner,
        realistic=args.realistic,
    )
    print(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
