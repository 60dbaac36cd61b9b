"""Read a released Qwen3-ASR checkpoint: config values from its JSON, weights through safetensors.

The class defaults of the official config differ from the released values (n_window, token ids,
rope_theta, ...), so every value here comes from the checkpoint's own config.json.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open

from qwen_asr_edge.runtime.errors import CheckpointError
from qwen_asr_edge.runtime.utf8_paths import utf8_alias

log = logging.getLogger("qwen_asr_edge.export")

ASR_FILES = (
    "config.json",
    "vocab.json",
    "merges.txt",
    "tokenizer_config.json",
    "preprocessor_config.json",
    "chat_template.json",
)
# Languages that can be forced (the official SUPPORTED_LANGUAGES, equal to the ASR configs' list).
OFFICIAL_LANGUAGES = [
    "Chinese",
    "English",
    "Cantonese",
    "Arabic",
    "German",
    "French",
    "Spanish",
    "Portuguese",
    "Indonesian",
    "Italian",
    "Korean",
    "Russian",
    "Thai",
    "Vietnamese",
    "Japanese",
    "Turkish",
    "Hindi",
    "Malay",
    "Dutch",
    "Swedish",
    "Danish",
    "Finnish",
    "Polish",
    "Czech",
    "Filipino",
    "Persian",
    "Greek",
    "Romanian",
    "Hungarian",
    "Macedonian",
]
HUB_PATTERNS = [*ASR_FILES, "generation_config.json", "*.safetensors", "model.safetensors.index.json"]


def conv_out_len(n: int) -> int:
    """Output length of one of the encoder's kernel-3, stride-2, padding-1 convolutions."""
    return (n - 1) // 2 + 1


@dataclass(frozen=True)
class AudioConfig:
    num_mel_bins: int
    layers: int
    heads: int
    ffn_dim: int
    d_model: int
    conv_channels: int
    output_dim: int
    n_window: int
    n_window_infer: int
    max_source_positions: int

    @property
    def chunk_frames(self) -> int:
        return 2 * self.n_window

    @property
    def tokens_per_chunk(self) -> int:
        return conv_out_len(conv_out_len(conv_out_len(self.chunk_frames)))

    @property
    def window_tokens(self) -> int:
        return self.tokens_per_chunk * (self.n_window_infer // self.chunk_frames)

    @property
    def conv_freq_bins(self) -> int:
        return conv_out_len(conv_out_len(conv_out_len(self.num_mel_bins)))


@dataclass(frozen=True)
class TextConfig:
    hidden_size: int
    intermediate_size: int
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    rms_norm_eps: float
    rope_theta: float
    max_position_embeddings: int
    vocab_size: int
    tie_word_embeddings: bool


@dataclass(frozen=True)
class CheckpointConfig:
    kind: str  # "asr" or "aligner"
    audio: AudioConfig
    text: TextConfig
    audio_token_id: int
    audio_start_token_id: int
    audio_end_token_id: int
    support_languages: list[str]
    timestamp_token_id: int | None = None
    timestamp_segment_time: int | None = None
    classify_num: int | None = None

    @property
    def size_label(self) -> str:
        known = {(896, 1024): "0.6B", (1024, 2048): "1.7B"}
        return known.get((self.audio.d_model, self.text.hidden_size), "custom")


def _get(d: dict[str, Any], key: str, where: str, path: Path) -> Any:
    if key not in d:
        raise CheckpointError(path / "config.json", f"{where}.{key} is missing")
    return d[key]


def read_config(cfg_file: Path) -> dict:
    """A checkpoint's config.json as a dict.

    Raises:
        CheckpointError: unreadable, not UTF-8 JSON, or not a JSON object.
    """
    try:
        raw = json.loads(cfg_file.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(cfg_file, f"not valid JSON ({e})") from None
    except OSError as e:
        raise CheckpointError(cfg_file, f"cannot be read ({e.strerror or e})") from None
    if not isinstance(raw, dict):
        raise CheckpointError(cfg_file, f"not a JSON object (a {type(raw).__name__})")
    return raw


def parse_config(path: Path) -> CheckpointConfig:
    cfg_file = path / "config.json"
    raw = read_config(cfg_file)
    if raw.get("model_type") != "qwen3_asr":
        raise CheckpointError(
            cfg_file, f"model_type {raw.get('model_type')!r} is not a Qwen3-ASR model (expected 'qwen3_asr')"
        )
    thinker = _get(raw, "thinker_config", "config", path)
    thinker_type = thinker.get("model_type")
    if thinker_type not in ("qwen3_asr", "qwen3_forced_aligner"):
        raise CheckpointError(
            cfg_file,
            f"thinker_config.model_type {thinker_type!r} is unknown (expected 'qwen3_asr' or "
            "'qwen3_forced_aligner'; a config re-saved with save_pretrained says 'qwen3_asr_thinker')",
        )
    a = _get(thinker, "audio_config", "thinker_config", path)
    t = _get(thinker, "text_config", "thinker_config", path)
    ga = lambda k: _get(a, k, "thinker_config.audio_config", path)  # noqa: E731
    gt = lambda k: _get(t, k, "thinker_config.text_config", path)  # noqa: E731
    audio = AudioConfig(
        num_mel_bins=ga("num_mel_bins"),
        layers=ga("encoder_layers"),
        heads=ga("encoder_attention_heads"),
        ffn_dim=ga("encoder_ffn_dim"),
        d_model=ga("d_model"),
        conv_channels=ga("downsample_hidden_size"),
        output_dim=ga("output_dim"),
        n_window=ga("n_window"),
        n_window_infer=ga("n_window_infer"),
        max_source_positions=ga("max_source_positions"),
    )
    hidden = gt("hidden_size")
    text = TextConfig(
        hidden_size=hidden,
        intermediate_size=gt("intermediate_size"),
        layers=gt("num_hidden_layers"),
        heads=gt("num_attention_heads"),
        kv_heads=gt("num_key_value_heads"),
        head_dim=t.get("head_dim") or hidden // gt("num_attention_heads"),
        rms_norm_eps=gt("rms_norm_eps"),
        rope_theta=float(gt("rope_theta")),
        max_position_embeddings=gt("max_position_embeddings"),
        vocab_size=gt("vocab_size"),
        tie_word_embeddings=bool(t.get("tie_word_embeddings", False)),
    )
    if audio.d_model % audio.heads or text.heads % text.kv_heads:
        raise CheckpointError(cfg_file, "head counts do not divide the model widths")
    if audio.output_dim != text.hidden_size:
        raise CheckpointError(
            cfg_file, f"audio output_dim {audio.output_dim} != text hidden_size {text.hidden_size}"
        )
    aligner = thinker_type == "qwen3_forced_aligner"
    return CheckpointConfig(
        kind="aligner" if aligner else "asr",
        audio=audio,
        text=text,
        audio_token_id=_get(thinker, "audio_token_id", "thinker_config", path),
        audio_start_token_id=_get(thinker, "audio_start_token_id", "thinker_config", path),
        audio_end_token_id=_get(thinker, "audio_end_token_id", "thinker_config", path),
        support_languages=list(raw.get("support_languages") or OFFICIAL_LANGUAGES),
        timestamp_token_id=raw.get("timestamp_token_id"),
        timestamp_segment_time=raw.get("timestamp_segment_time"),
        classify_num=thinker.get("classify_num"),
    )


def expected_shapes(cfg: CheckpointConfig) -> dict[str, tuple[int, ...]]:
    """Every tensor the exporter reads, with its shape (the head is optional when tied)."""
    a, t = cfg.audio, cfg.text
    ch, d = a.conv_channels, a.d_model
    shapes: dict[str, tuple[int, ...]] = {
        "thinker.audio_tower.conv2d1.weight": (ch, 1, 3, 3),
        "thinker.audio_tower.conv2d1.bias": (ch,),
        "thinker.audio_tower.conv2d2.weight": (ch, ch, 3, 3),
        "thinker.audio_tower.conv2d2.bias": (ch,),
        "thinker.audio_tower.conv2d3.weight": (ch, ch, 3, 3),
        "thinker.audio_tower.conv2d3.bias": (ch,),
        "thinker.audio_tower.conv_out.weight": (d, ch * a.conv_freq_bins),
        "thinker.audio_tower.ln_post.weight": (d,),
        "thinker.audio_tower.ln_post.bias": (d,),
        "thinker.audio_tower.proj1.weight": (d, d),
        "thinker.audio_tower.proj1.bias": (d,),
        "thinker.audio_tower.proj2.weight": (a.output_dim, d),
        "thinker.audio_tower.proj2.bias": (a.output_dim,),
    }
    for i in range(a.layers):
        p = f"thinker.audio_tower.layers.{i}."
        for proj in ("q_proj", "k_proj", "v_proj", "out_proj"):
            shapes[f"{p}self_attn.{proj}.weight"] = (d, d)
            shapes[f"{p}self_attn.{proj}.bias"] = (d,)
        for norm in ("self_attn_layer_norm", "final_layer_norm"):
            shapes[f"{p}{norm}.weight"] = (d,)
            shapes[f"{p}{norm}.bias"] = (d,)
        shapes[f"{p}fc1.weight"] = (a.ffn_dim, d)
        shapes[f"{p}fc1.bias"] = (a.ffn_dim,)
        shapes[f"{p}fc2.weight"] = (d, a.ffn_dim)
        shapes[f"{p}fc2.bias"] = (d,)
    h, q, kv = t.hidden_size, t.heads * t.head_dim, t.kv_heads * t.head_dim
    shapes["thinker.model.embed_tokens.weight"] = (t.vocab_size, h)
    shapes["thinker.model.norm.weight"] = (h,)
    for i in range(t.layers):
        p = f"thinker.model.layers.{i}."
        shapes[f"{p}self_attn.q_proj.weight"] = (q, h)
        shapes[f"{p}self_attn.k_proj.weight"] = (kv, h)
        shapes[f"{p}self_attn.v_proj.weight"] = (kv, h)
        shapes[f"{p}self_attn.o_proj.weight"] = (h, q)
        shapes[f"{p}self_attn.q_norm.weight"] = (t.head_dim,)
        shapes[f"{p}self_attn.k_norm.weight"] = (t.head_dim,)
        shapes[f"{p}mlp.gate_proj.weight"] = (t.intermediate_size, h)
        shapes[f"{p}mlp.up_proj.weight"] = (t.intermediate_size, h)
        shapes[f"{p}mlp.down_proj.weight"] = (h, t.intermediate_size)
        shapes[f"{p}input_layernorm.weight"] = (h,)
        shapes[f"{p}post_attention_layernorm.weight"] = (h,)
    head_rows = cfg.classify_num if cfg.kind == "aligner" else t.vocab_size
    shapes["thinker.lm_head.weight"] = (head_rows, h)
    return shapes


@contextmanager
def _safe_open(file: Path) -> Iterator[Any]:
    """safetensors' ``safe_open`` on ``file``, through a UTF-8 link to its folder where the
    folder's name is not UTF-8 (safetensors takes paths as UTF-8 text only)."""
    with utf8_alias(file.parent) as folder, safe_open(folder / file.name, "pt") as f:
        yield f


def _weight_files(path: Path) -> dict[str, Path]:
    """Map each tensor name to the safetensors file that holds it."""
    index = path / "model.safetensors.index.json"
    if index.is_file():
        try:
            weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
        except (json.JSONDecodeError, KeyError) as e:
            raise CheckpointError(index, f"not a safetensors index ({e!r})") from None
        return {name: path / file for name, file in weight_map.items()}
    single = path / "model.safetensors"
    if not single.is_file():
        raise CheckpointError(path, "no model.safetensors and no model.safetensors.index.json")
    try:
        with _safe_open(single) as f:
            return dict.fromkeys(f.keys(), single)
    except Exception as e:  # safetensors raises its own SafetensorError and OSError
        raise CheckpointError(single, f"not a readable safetensors file ({e})") from None


def load_weights(path: Path, cfg: CheckpointConfig) -> dict[str, torch.Tensor]:
    """All tensors the model needs, as float32, checked against the config's shapes."""
    shapes = expected_shapes(cfg)
    located = _weight_files(path)
    unused = sorted(set(located) - set(shapes))
    if unused:  # the released checkpoints hold exactly the model's tensors: these are another model's
        shown = ", ".join(unused[:3]) + (f" and {len(unused) - 3} more" if len(unused) > 3 else "")
        log.warning(
            "%s: %d tensor(s) that this model does not have are left out: %s", path, len(unused), shown
        )
    tied = cfg.kind == "asr" and cfg.text.tie_word_embeddings
    weights: dict[str, torch.Tensor] = {}
    by_file: dict[Path, list[str]] = {}
    for name in shapes:
        if name not in located:
            if name == "thinker.lm_head.weight" and tied:
                continue  # save_pretrained drops the tied copy; the embedding serves as the head
            raise CheckpointError(path, f"tensor {name} is missing from the weights")
        by_file.setdefault(located[name], []).append(name)
    for file, names in by_file.items():
        if not file.is_file():
            raise CheckpointError(file, "listed in model.safetensors.index.json but missing")
        try:
            with _safe_open(file) as f:
                for name in names:
                    tensor = f.get_tensor(name)
                    if tuple(tensor.shape) != shapes[name]:
                        raise CheckpointError(
                            file, f"tensor {name} has shape {tuple(tensor.shape)}, expected {shapes[name]}"
                        )
                    weights[name] = tensor.to(torch.float32)
        except CheckpointError:
            raise
        except Exception as e:
            raise CheckpointError(file, f"cannot read tensors ({e})") from None
    return weights


def resolve_source(source: str) -> Path:
    """A local folder as it is, or a hub id fetched into the huggingface_hub cache."""
    path = Path(source).expanduser()
    if path.is_dir():
        missing = [f for f in ASR_FILES if not (path / f).is_file()]
        if "config.json" in missing:
            raise CheckpointError(path, "config.json is missing: not a checkpoint folder")
        thinker = read_config(path / "config.json").get("thinker_config")
        if isinstance(thinker, dict) and thinker.get("model_type") == "qwen3_forced_aligner":
            missing = [f for f in missing if f != "chat_template.json"]  # the aligner has none
        if missing:
            raise CheckpointError(path, f"missing file(s): {', '.join(missing)}")
        return path
    if path.exists() or source.count("/") != 1 or source.startswith((".", "/", "~")):
        raise CheckpointError(path, "no such folder (and not a hub id of the form owner/name)")
    try:
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError
    except ImportError:  # pragma: no cover - huggingface_hub is a base dependency
        raise CheckpointError(source, "huggingface_hub is not installed") from None
    try:
        local = snapshot_download(source, allow_patterns=HUB_PATTERNS)
    except (LocalEntryNotFoundError, HfHubHTTPError, OSError) as e:
        offline = os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0")
        hint = " (HF_HUB_OFFLINE is set)" if offline else ""
        raise CheckpointError(source, f"cannot fetch from the hub{hint}: {e}") from None
    return resolve_source(local)
