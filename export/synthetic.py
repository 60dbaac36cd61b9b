"""Random-weight checkpoints in the official Qwen3-ASR layout, of any size.

Tests use tiny ones (nothing can be downloaded here); benchmarks use full-size ones, which cost
the same to run as the real weights. The files are those of a released repository: config.json
with the release's key layout, tokenizer files with the added tokens at their real ids, the chat
template, preprocessor and generation configs, and bf16 safetensors (optionally sharded).

With ``peaky=True`` the weights are drawn with unit gain (std 1/sqrt(fan_in)) instead of the
usual 0.02, so that attention is sharp and logits have clear margins: with flat random weights
argmax ties hide real differences between two implementations.
"""

from __future__ import annotations

import argparse
import json
import shutil
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from safetensors.torch import save_file

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
) -> Path:
    """Write a random checkpoint folder; ``heads`` overrides (query heads, kv heads) of the text
    model; ``aligner`` writes a Qwen3-ForcedAligner checkpoint of that shape instead."""
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
    weights = random_weights(cfg, seed=seed, peaky=peaky, store_tied_head=store_tied_head)
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
    p.add_argument("out", type=Path)
    p.add_argument("--shape", choices=sorted(SHAPES), default="tiny")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--peaky", action="store_true", help="unit-gain weights: sharp attention, clear argmax")
    p.add_argument("--vocab-dir", type=Path, help="folder with the real Qwen3 vocab.json and merges.txt")
    p.add_argument("--shards", type=int, default=1)
    p.add_argument("--aligner", action="store_true", help="a Qwen3-ForcedAligner checkpoint of that shape")
    args = p.parse_args(argv)
    if args.out.exists():
        shutil.rmtree(args.out)
    write_checkpoint(
        args.out,
        args.shape,
        seed=args.seed,
        peaky=args.peaky,
        vocab_dir=args.vocab_dir,
        shards=args.shards,
        aligner=args.aligner,
    )
    print(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
