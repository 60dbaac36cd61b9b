"""Checkpoint folder -> bundle folder, written atomically (temp folder beside OUT, then rename)."""

from __future__ import annotations

import json
import logging
import platform
from pathlib import Path

import numpy as np
import torch

from qwen_asr_edge import __version__
from qwen_asr_edge.runtime.bundle import (
    FORMAT_VERSION,
    AlignerSpec,
    DecoderSpec,
    EncoderSpec,
    GraphSpec,
    Manifest,
    MelSpec,
    ModelSpec,
    PromptSpec,
    TokenSpec,
    check_bundle_output,
    file_entries,
    staged,
    write_manifest,
)
from qwen_asr_edge.runtime.decoding import length_feeds
from qwen_asr_edge.runtime.errors import CheckpointError, ExportValidationError, display_name

from . import specs
from .checkpoint import CheckpointConfig, load_weights, parse_config, resolve_source
from .modules import build_aligner_text, build_decoder, build_encoder
from .onnx_export import export_graph
from .tokenizer import added_tokens, build_tokenizer

log = logging.getLogger("qwen_asr_edge.export")

# The largest error allowed between onnxruntime and torch in fp32, relative to the output's scale
# (its largest |value|): round-off is ~1e-6 of the scale on these graphs, and real checkpoints'
# outputs are large (hidden channels in the hundreds, logits of +-30), so an absolute bound would
# fail them for round-off alone.
TOLERANCE = 1e-3


def compare(graph: str, got: np.ndarray, want: np.ndarray, *, argmax: bool = False) -> float:
    """The relative error of an exported graph's output against torch's, checked.

    Args:
        graph: The output's name, for the error.
        got: onnxruntime's output.
        want: torch's output, same shape.
        argmax: Logits: also the top class at every position must be torch's, unless torch
            itself ranks the two within the tolerance (a tie that round-off may break).

    Returns:
        max |got - want| / max |want|.

    Raises:
        ExportValidationError: beyond ``TOLERANCE``, or a different top class.
    """
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    scale = max(float(np.abs(want).max()), 1e-12)
    error = float(np.abs(got - want).max()) / scale
    if not error <= TOLERANCE:  # NaN fails too
        raise ExportValidationError(graph, "max error relative to the output's scale", error, TOLERANCE)
    if argmax:
        picked = np.take_along_axis(want, got.argmax(-1)[..., None], -1)[..., 0]
        margin = want.max(-1) - picked  # how much worse, by torch, ORT's pick is than torch's
        if (margin > TOLERANCE * scale).any():
            at = np.unravel_index(int(margin.argmax()), margin.shape)
            raise ExportValidationError(
                graph,
                "top class",
                f"{int(got[at].argmax())} at {tuple(map(int, at))}",
                f"torch's {int(want[at].argmax())}",
            )
    return error


CONTEXT_MARK = "\u0000CONTEXT\u0000"


def render_prompt(checkpoint: Path) -> PromptSpec:
    """Render the checkpoint's chat template around a marker, the way transformers renders it."""
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    path = checkpoint / "chat_template.json"
    try:
        template = json.loads(path.read_text(encoding="utf-8"))["chat_template"]
    except (OSError, json.JSONDecodeError, KeyError) as e:
        raise CheckpointError(path, f"has no chat_template ({e!r})") from None
    env = ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols"]
    )
    messages = [
        {"role": "system", "content": CONTEXT_MARK},
        {"role": "user", "content": [{"type": "audio", "audio": ""}]},
    ]
    text = env.from_string(template).render(messages=messages, add_generation_prompt=True)
    if text.count(CONTEXT_MARK) != 1 or text.count("<|audio_pad|>") != 1:
        raise CheckpointError(path, "the chat template does not render one system text and one audio block")
    before, after = text.split(CONTEXT_MARK)
    return PromptSpec(before_context=before, after_context=after)


def token_spec(checkpoint: Path, cfg: CheckpointConfig) -> TokenSpec:
    ids = {rec["content"]: token_id for token_id, rec in added_tokens(checkpoint).items()}
    need = ["<|im_start|>", "<|im_end|>", "<|endoftext|>", "<asr_text>"]
    missing = [t for t in need if t not in ids]
    if missing:
        raise CheckpointError(checkpoint / "tokenizer_config.json", f"lacks the added token(s) {missing}")
    return TokenSpec(
        im_start=ids["<|im_start|>"],
        im_end=ids["<|im_end|>"],
        endoftext=ids["<|endoftext|>"],
        audio_start=cfg.audio_start_token_id,
        audio_end=cfg.audio_end_token_id,
        audio_pad=cfg.audio_token_id,
        asr_text=ids["<asr_text>"],
        # the official generate() stops on these two, in this order
        eos=[ids["<|im_end|>"], ids["<|endoftext|>"]],
        timestamp=ids.get("<timestamp>"),
    )


def mel_spec(checkpoint: Path, cfg: CheckpointConfig) -> MelSpec:
    path = checkpoint / "preprocessor_config.json"
    pre = json.loads(path.read_text(encoding="utf-8"))
    spec = MelSpec(
        sample_rate=pre.get("sampling_rate", 16000),
        n_fft=pre.get("n_fft", 400),
        hop_length=pre.get("hop_length", 160),
        n_mels=pre.get("feature_size", 80),
    )
    if spec.n_mels != cfg.audio.num_mel_bins:
        raise CheckpointError(
            path, f"feature_size {spec.n_mels} != the encoder's num_mel_bins {cfg.audio.num_mel_bins}"
        )
    return spec


def validate(bundle_dir: Path, encoder, decoder, cfg: CheckpointConfig) -> dict[str, float]:
    """ORT against torch at shapes other than the traced ones; returns relative errors (``compare``).

    Raises:
        ExportValidationError: an output beyond the tolerance or a different top token.
    """
    import onnxruntime as ort

    rng = np.random.default_rng(0)
    chunk = cfg.audio.chunk_frames
    lens = np.array([2 * chunk + 37, chunk // 3], dtype=np.int64)
    feats = rng.standard_normal((2, cfg.audio.num_mel_bins, int(lens.max()))).astype(np.float32)
    sess = ort.InferenceSession(str(bundle_dir / "encoder.onnx"), providers=["CPUExecutionProvider"])
    got, got_lens = sess.run(None, {"input_features": feats, "feature_lens": lens})
    with torch.no_grad():
        want, want_lens = encoder(torch.from_numpy(feats), torch.from_numpy(lens))
    errors = {"encoder": compare("encoder", got, want.numpy())}
    if not np.array_equal(got_lens, want_lens.numpy()):
        raise ExportValidationError(
            "encoder", "output lengths", f"{got_lens.tolist()}", f"torch's {want_lens.numpy().tolist()}"
        )

    # Decoder: a right-padded first prompt of two rows, then two steps, each against torch.
    t, kv = cfg.text, specs.kv_cache_spec(cfg)
    b, s, capacity = 2, 9, 16
    lens = np.array([9, 6])
    ids = rng.integers(0, min(1000, t.vocab_size), (b, s)).astype(np.int64)
    ids[:, 2:5] = cfg.audio_token_id
    embeds = rng.standard_normal((b, 4, t.hidden_size)).astype(np.float32)
    audio_lens = np.array([3, 3], dtype=np.int64)
    cache = [np.zeros((b, t.kv_heads, capacity, t.head_dim), dtype=np.float32)] * (2 * t.layers)
    past_names = [name for i in range(t.layers) for name in kv.names(i)[:2]]
    sess = ort.InferenceSession(str(bundle_dir / "decoder.onnx"), providers=["CPUExecutionProvider"])
    worst = 0.0
    for _ in range(3):
        feeds = {
            "input_ids": ids,
            **length_feeds(lens),
            "audio_embeds": embeds,
            "audio_embed_lens": audio_lens,
        }
        got = sess.run(None, {**feeds, **dict(zip(past_names, cache, strict=True))})
        with torch.no_grad():
            want = decoder(
                *(torch.from_numpy(np.asarray(v)) for v in feeds.values()),
                tuple(map(torch.from_numpy, cache)),
            )
        worst = max(worst, compare("decoder logits", got[0], want[0].numpy(), argmax=True))
        ids, cache, lens = got[1], got[2:], lens + 1
        audio_lens = np.zeros(b, dtype=np.int64)
        embeds = np.zeros((b, 1, t.hidden_size), dtype=np.float32)
    errors["decoder_logits"] = worst
    return errors


ALIGNER_MAX_SECONDS = 180.0  # the official MAX_FORCE_ALIGN_INPUT_SECONDS


def _validate_aligner(path: Path, text, cfg: CheckpointConfig) -> float:
    """ORT against torch on a right-padded batch at shapes other than the traced ones."""
    import onnxruntime as ort

    rng = np.random.default_rng(0)
    ids = rng.integers(0, min(1000, cfg.text.vocab_size), (2, 11)).astype(np.int64)
    ids[:, 1:4] = cfg.audio_token_id
    embeds = rng.standard_normal((2, 3, cfg.text.hidden_size)).astype(np.float32)
    lens = np.array([3, 2], dtype=np.int64)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = sess.run(["logits"], {"input_ids": ids, "audio_embeds": embeds, "audio_embed_lens": lens})[0]
    with torch.no_grad():
        want = text(torch.from_numpy(ids), torch.from_numpy(embeds), torch.from_numpy(lens))[0].numpy()
    return compare("aligner logits", got, want, argmax=True)


def export_aligner(
    source: str, folder: Path, encoder_attention: str, mel: MelSpec
) -> tuple[AlignerSpec, dict[str, GraphSpec]]:
    """Write a Qwen3-ForcedAligner checkpoint's graphs into ``folder`` (a bundle being written)."""
    checkpoint = resolve_source(source)
    cfg = parse_config(checkpoint)
    if cfg.kind != "aligner":
        raise CheckpointError(checkpoint, "is not a Qwen3-ForcedAligner checkpoint (--aligner expects one)")
    if mel_spec(checkpoint, cfg) != mel:
        raise CheckpointError(checkpoint, "its mel parameters differ from the ASR checkpoint's")
    weights = load_weights(checkpoint, cfg)
    encoder = build_encoder(cfg, weights, encoder_attention)
    text = build_aligner_text(cfg, weights)
    del weights
    log.info("exporting the aligner's encoder (%s attention)", encoder_attention)
    export_graph(encoder, specs.encoder_example(cfg), specs.encoder_io(cfg), folder / "aligner_encoder.onnx")
    log.info("exporting the aligner")
    export_graph(text, specs.aligner_example(cfg), specs.aligner_io(cfg), folder / "aligner.onnx")
    err = _validate_aligner(folder / "aligner.onnx", text, cfg)
    log.info("validation aligner_logits: relative error %.2e", err)
    spec = AlignerSpec(
        timestamp_token_id=cfg.timestamp_token_id,
        segment_ms=cfg.timestamp_segment_time,
        classes=cfg.classify_num,
        languages=cfg.support_languages,
        max_seconds=ALIGNER_MAX_SECONDS,
        encoder_attention=encoder_attention,
        source=display_name(source),  # text: a Latin-1 name's bytes as \xNN
    )
    graphs = {
        "aligner_encoder": specs.graph_spec("aligner_encoder.onnx", specs.encoder_io(cfg)),
        "aligner": specs.graph_spec("aligner.onnx", specs.aligner_io(cfg)),
    }
    return spec, graphs


def export_bundle(
    source: str,
    out: str | Path,
    *,
    encoder_attention: str = "windowed",
    decoder_attention: str = "gqa",
    aligner: str | None = None,
    overwrite: bool = False,
    run_validation: bool = True,
) -> Path:
    """``aligner``: a Qwen3-ForcedAligner checkpoint (folder or hub id) whose graphs join the bundle."""
    out = check_bundle_output(out, [source, *([aligner] if aligner else [])], overwrite)
    checkpoint = resolve_source(source)
    cfg = parse_config(checkpoint)
    if cfg.kind == "aligner":
        if aligner:
            raise CheckpointError(
                checkpoint, "is a forced aligner: pass the ASR checkpoint first, then --aligner"
            )
        return _export_aligner_only(source, checkpoint, cfg, out, encoder_attention)
    prompt = render_prompt(checkpoint)
    tokens = token_spec(checkpoint, cfg)
    mel = mel_spec(checkpoint, cfg)
    weights = load_weights(checkpoint, cfg)
    encoder = build_encoder(cfg, weights, encoder_attention)
    decoder = build_decoder(cfg, weights, decoder_attention)
    del weights

    with staged(out) as tmp:
        build_tokenizer(checkpoint).save(str(tmp / "tokenizer.json"))
        log.info("exporting the encoder (%s attention)", encoder_attention)
        export_graph(encoder, specs.encoder_example(cfg), specs.encoder_io(cfg), tmp / "encoder.onnx")
        log.info("exporting the decoder (%s attention)", decoder_attention)
        export_graph(
            decoder, specs.decoder_example(cfg), specs.decoder_io(cfg), tmp / "decoder.onnx", varargs_from=5
        )
        aligner_spec, aligner_graphs = None, {}
        if aligner:
            aligner_spec, aligner_graphs = export_aligner(aligner, tmp, encoder_attention, mel)
        errors = validate(tmp, encoder, decoder, cfg) if run_validation else {}
        for name, err in errors.items():
            log.info("validation %s: relative error %.2e", name, err)

        files = sorted(p.name for p in tmp.iterdir())
        manifest = Manifest(
            format_version=FORMAT_VERSION,
            model=_model_spec(cfg, source),
            graphs={
                "encoder": specs.graph_spec("encoder.onnx", specs.encoder_io(cfg)),
                "decoder": specs.graph_spec("decoder.onnx", specs.decoder_io(cfg)),
                **aligner_graphs,
            },
            kv_cache=specs.kv_cache_spec(cfg),
            decoder=DecoderSpec(attention=decoder_attention),
            mel=mel,
            encoder=EncoderSpec(
                attention=encoder_attention,
                chunk_frames=cfg.audio.chunk_frames,
                tokens_per_chunk=cfg.audio.tokens_per_chunk,
                window_tokens=cfg.audio.window_tokens,
                output_dim=cfg.audio.output_dim,
            ),
            tokens=tokens,
            prompt=prompt,
            languages=cfg.support_languages,
            aligner=aligner_spec,
            files=file_entries(tmp, files),
            producer=_producer(errors),
        )
        write_manifest(tmp, manifest)
    return out


def _export_aligner_only(
    source: str, checkpoint: Path, cfg: CheckpointConfig, out: Path, attention: str
) -> Path:
    """A bundle of the forced aligner alone: its two graphs, the tokenizer and the manifest."""
    tokens = token_spec(checkpoint, cfg)
    mel = mel_spec(checkpoint, cfg)
    with staged(out) as tmp:
        build_tokenizer(checkpoint).save(str(tmp / "tokenizer.json"))
        spec, graphs = export_aligner(source, tmp, attention, mel)
        manifest = Manifest(
            format_version=FORMAT_VERSION,
            model=_model_spec(cfg, source),
            graphs=graphs,
            mel=mel,
            tokens=tokens,
            languages=cfg.support_languages,
            aligner=spec,
            files=file_entries(tmp, sorted(p.name for p in tmp.iterdir())),
            producer=_producer({}),
        )
        write_manifest(tmp, manifest)
    return out


def _model_spec(cfg: CheckpointConfig, source: str) -> ModelSpec:
    return ModelSpec(
        family="qwen3-asr",
        kind=cfg.kind,
        size=cfg.size_label,
        source=display_name(source),  # text: a Latin-1 name's bytes as \xNN
        hidden_size=cfg.text.hidden_size,
        vocab_size=cfg.text.vocab_size,
        tied_embeddings=cfg.text.tie_word_embeddings,
    )


def _producer(errors: dict[str, float]) -> dict[str, str]:
    import onnx
    import onnxruntime

    return {
        "qwen-asr-edge": __version__,
        "torch": torch.__version__,
        "onnx": onnx.__version__,
        "onnxruntime": onnxruntime.__version__,
        "python": platform.python_version(),
        **{f"validation_relative_error_{k}": f"{v:.3e}" for k, v in errors.items()},
    }
