"""fp32 bundles against the official qwen-asr package on the same tiny random checkpoints.

Stages: mel, encoder (both attention scopes), prefill logits, greedy token ids and the parsed
(language, text), alone and batched, through the Python API and the CLI. The full-attention
encoder, prefill logits and greedy tokens run on realistic weights too (massive activations,
attention sinks, logits near 30: export/synthetic.py).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from qwen_asr_edge.runtime.transcriber import Transcriber
from tests.support import (
    PARITY_TOKENS,
    SR,
    Lazy,
    noise_clip,
    official_where_well_formed,
    parity_options,
    record_error,
)

torch = pytest.importorskip("torch")
pytest.importorskip("qwen_asr")

CLIP_SECONDS = [0.3, 0.99, 2.0, 5.5, 8.0, 12.0, 30.0]
CONTEXT = "Qwen speech recognition glossary: alpha, beta, gamma."
PROMPTS = [("", None), (CONTEXT, None), ("", "English"), (CONTEXT, "German")]


@pytest.fixture(scope="module")
def transcribers(bundles):
    return Lazy({name: lambda name=name: Transcriber(bundles[name]) for name in bundles})


def official_mel(asr, wav: np.ndarray) -> np.ndarray:
    fe = asr.processor.feature_extractor
    out = fe(
        wav, sampling_rate=SR, padding=True, truncation=False, return_attention_mask=True, return_tensors="pt"
    )
    return out["input_features"][0].numpy()


def official_tower(asr, mel: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        tower = asr.model.thinker.audio_tower
        t = torch.from_numpy(mel)
        return tower(t, feature_lens=torch.tensor([mel.shape[1]])).last_hidden_state.numpy()


def run_encoder(tr: Transcriber, feats: np.ndarray, lens: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    encoding = tr.encode_features(feats, lens)
    return encoding.numpy(), encoding.lengths


_OFFICIAL_TOKENS: dict[tuple, list[int]] = {}


def official_tokens(asr, wav: np.ndarray, context: str, language: str | None) -> list[int]:
    """The official greedy ids; memoised, since every bundle kind is compared with the same run."""
    key = (id(asr), wav.tobytes(), context, language)
    if key not in _OFFICIAL_TOKENS:
        _OFFICIAL_TOKENS[key] = _official_tokens(asr, wav, context, language)
    return _OFFICIAL_TOKENS[key]


def _official_tokens(asr, wav: np.ndarray, context: str, language: str | None) -> list[int]:
    inputs = asr.processor(
        text=[asr._build_text_prompt(context, language)], audio=[wav], return_tensors="pt", padding=True
    )
    with torch.no_grad():
        seq = asr.model.generate(**inputs, max_new_tokens=PARITY_TOKENS).sequences[
            0, inputs["input_ids"].shape[1] :
        ]
    return until_stop(seq.tolist())


def until_stop(tokens: list[int], stop=(151645, 151643)) -> list[int]:
    for i, t in enumerate(tokens):
        if t in stop:
            return tokens[: i + 1]
    return tokens


@pytest.mark.parametrize("seconds", [*CLIP_SECONDS, 1.0, 16001 / SR])
def test_mel_matches_official_extractor(official, checkpoints, transcribers, seconds):
    asr = official(checkpoints["untied"])
    wav = noise_clip(seconds, seed=1)
    feats, lens = transcribers["untied-full"].features([wav])
    ours = feats[0, :, : lens[0]]
    ref = official_mel(asr, wav)
    assert ours.shape == ref.shape
    err = np.abs(ours - ref).max()
    record_error("mel max abs", err)
    assert err <= 1e-4


@pytest.mark.parametrize("bundle,checkpoint", [("untied-full", "untied"), ("realistic-full", "realistic")])
@pytest.mark.parametrize("seconds", CLIP_SECONDS)
def test_full_attention_encoder_matches_official_tower(
    official, checkpoints, transcribers, bundle, checkpoint, seconds
):
    asr = official(checkpoints[checkpoint])
    mel = official_mel(asr, noise_clip(seconds, seed=2))
    ref = official_tower(asr, mel)
    got, lens = run_encoder(transcribers[bundle], mel[None], np.array([mel.shape[1]]))
    assert lens.tolist() == [ref.shape[0]]
    err = np.abs(got[0, : ref.shape[0]] - ref).max()
    record_error("encoder (full) max abs / max |ref|", err / np.abs(ref).max())
    assert err <= 1e-4 * max(1.0, np.abs(ref).max())


@pytest.mark.parametrize("seconds", CLIP_SECONDS)
def test_windowed_encoder_matches_official_tower_per_8s_slice(official, checkpoints, transcribers, seconds):
    asr = official(checkpoints["untied"])
    mel = official_mel(asr, noise_clip(seconds, seed=3))
    window = 800  # 8 s of frames: the windowed scope's blocks are whole 8 s slices
    ref = np.concatenate(
        [official_tower(asr, mel[:, i : i + window]) for i in range(0, mel.shape[1], window)]
    )
    got, lens = run_encoder(transcribers["untied-windowed"], mel[None], np.array([mel.shape[1]]))
    assert lens.tolist() == [ref.shape[0]]
    err = np.abs(got[0, : ref.shape[0]] - ref).max()
    record_error("encoder (windowed) max abs / max |ref|", err / np.abs(ref).max())
    assert err <= 1e-4 * max(1.0, np.abs(ref).max())


def test_scopes_differ_beyond_one_window(official, checkpoints, transcribers):
    """Guards the two tests above: past 8 s the scopes must really compute different things."""
    asr = official(checkpoints["untied"])
    mel = official_mel(asr, noise_clip(12.0, seed=3))
    full, _ = run_encoder(transcribers["untied-full"], mel[None], np.array([mel.shape[1]]))
    windowed, _ = run_encoder(transcribers["untied-windowed"], mel[None], np.array([mel.shape[1]]))
    assert np.abs(full - windowed).max() > 1e-2


@pytest.mark.parametrize("bundle", ["untied-full", "untied-windowed"])
def test_batched_encoder_equals_single_clips(transcribers, bundle):
    tr = transcribers[bundle]
    wavs = [noise_clip(s, seed=i) for i, s in enumerate([0.3, 12.0, 5.5, 0.99])]
    batch, lens = tr.features(wavs)
    got, got_lens = run_encoder(tr, batch, lens)
    for i, wav in enumerate(wavs):
        alone, n = run_encoder(tr, *tr.features([wav]))
        assert got_lens[i] == n[0]
        np.testing.assert_allclose(got[i, : n[0]], alone[0, : n[0]], atol=1e-5, rtol=0)


@pytest.mark.parametrize(
    "bundle,checkpoint",
    [
        ("untied-full", "untied"),
        ("tied-full", "tied"),
        ("untied-full-portable", "untied"),
        ("realistic-full", "realistic"),
    ],
)
@pytest.mark.parametrize("seconds", [0.3, 5.5, 12.0])
@pytest.mark.parametrize("context,language", PROMPTS)
def test_prefill_logits_match_official(
    official, checkpoints, transcribers, bundle, checkpoint, seconds, context, language
):
    asr = official(checkpoints[checkpoint])
    tr = transcribers[bundle]
    wav = noise_clip(seconds, seed=4)
    inputs = asr.processor(
        text=[asr._build_text_prompt(context, language)], audio=[wav], return_tensors="pt", padding=True
    )
    with torch.no_grad():
        ref = asr.model.thinker(**inputs).logits[0, -1].numpy()

    audio = tr.encode([wav])
    ids = tr.prompt_ids(int(audio.lengths[0]), context, language)
    np.testing.assert_array_equal(ids, inputs["input_ids"][0].numpy())
    generation = tr.decode([ids], audio, [1])
    (logits,) = tr.forced_logits(ids, audio.row(0), [])
    err = np.abs(logits - ref).max()
    record_error("prefill logits max abs / max |ref|", err / np.abs(ref).max())
    assert err <= 1e-4 * np.abs(ref).max()
    assert generation.tokens[0] == [int(ref.argmax())]


@pytest.mark.parametrize(
    "bundle,checkpoint",
    [
        ("untied-full", "untied"),
        ("tied-full", "tied"),
        ("tied-full-portable", "tied"),
        ("realistic-full", "realistic"),
    ],
)
@pytest.mark.parametrize("seconds", CLIP_SECONDS)
@pytest.mark.parametrize("context,language", PROMPTS)
def test_greedy_tokens_and_text_match_official(
    official, checkpoints, transcribers, bundle, checkpoint, seconds, context, language
):
    asr = official(checkpoints[checkpoint])
    wav = noise_clip(seconds, seed=5)
    want_tokens = official_tokens(asr, wav, context, language)
    want = asr.transcribe((wav, SR), context=context, language=language)[0]

    got = transcribers[bundle].transcribe(wav, context=context, language=language, options=parity_options())
    assert got.segments[0].tokens == want_tokens
    tokenizer = transcribers[bundle].tokenizer
    assert (got.language, got.text) == official_where_well_formed(want, got.segments[0], tokenizer, language)


@pytest.mark.parametrize("seconds", [0.3, 2.0, 5.5, 8.0])
def test_windowed_bundle_equals_official_up_to_8s(official, checkpoints, transcribers, seconds):
    """Within one 8 s window both scopes are the same computation, so the default bundle is exact."""
    asr = official(checkpoints["untied"])
    wav = noise_clip(seconds, seed=6)
    options = parity_options()
    got = transcribers["untied-windowed"].transcribe(wav, options=options)
    assert got.segments[0].tokens == official_tokens(asr, wav, "", None)


@pytest.mark.parametrize("bundle", ["untied-full", "untied-full-portable"])
@pytest.mark.parametrize("context,language", PROMPTS)
def test_batched_decoding_equals_official_single_clips(
    official, checkpoints, transcribers, bundle, context, language
):
    """Right-padded batch of different lengths: each row gives the official single-clip result.

    (The official *batched* path differs from its own single-clip path for the shorter clips,
    because it extracts mel from a zero-padded batch; we always extract per clip.)"""
    asr = official(checkpoints["untied"])
    wavs = [noise_clip(s, seed=10 + i) for i, s in enumerate([2.0, 0.3, 12.0, 5.5, 30.0])]
    got = transcribers[bundle].transcribe_batch(
        wavs, context=context, language=language, options=parity_options()
    )
    for wav, g in zip(wavs, got, strict=True):
        assert g.segments[0].tokens == official_tokens(asr, wav, context, language)
        want = asr.transcribe((wav, SR), context=context, language=language)[0]
        tokenizer = transcribers[bundle].tokenizer
        assert (g.language, g.text) == official_where_well_formed(want, g.segments[0], tokenizer, language)


def test_equal_length_batch_equals_official_batch(official, checkpoints, transcribers):
    asr = official(checkpoints["untied"])
    wavs = [noise_clip(3.0, seed=20 + i) for i in range(3)]
    want = asr.transcribe(
        [(w, SR) for w in wavs], context=["", CONTEXT, ""], language=[None, None, "English"]
    )
    got = transcribers["untied-full"].transcribe_batch(
        wavs,
        context=["", CONTEXT, ""],
        language=[None, None, "English"],
        options=parity_options(),
    )
    tokenizer = transcribers["untied-full"].tokenizer
    assert [(g.language, g.text) for g in got] == [
        official_where_well_formed(w, g.segments[0], tokenizer, lang)
        for g, w, lang in zip(got, want, [None, None, "English"], strict=True)
    ]


def test_cli_transcribe_matches_official(official, checkpoints, bundles, transcribers, tmp_path, capsys):
    from qwen_asr_edge.cli import main

    asr = official(checkpoints["untied"])
    files = []
    for i, seconds in enumerate([1.5, 7.0, 11.0]):
        path = tmp_path / f"clip{i}.wav"
        sf.write(path, noise_clip(seconds, seed=30 + i), SR, subtype="FLOAT")
        files.append(path)
    for language in (None, "english"):
        args = [
            "transcribe",
            *map(str, files),
            "--bundle",
            str(bundles["untied-full"]),
            "--format",
            "json",
            "--max-new-tokens",
            str(PARITY_TOKENS),
            "--no-repetition-guard",
            "--context",
            CONTEXT,
        ]
        if language:
            args += ["--language", language]
        assert main(args) == 0
        got = json.loads(capsys.readouterr().out)
        want = asr.transcribe([str(f) for f in files], context=CONTEXT, language=language)
        options = parity_options()
        tr = transcribers["untied-full"]
        ours = tr.transcribe_batch(
            [str(f) for f in files], context=CONTEXT, language=language, options=options
        )
        forced = "English" if language else None
        assert [(g["language"], g["text"]) for g in got] == [
            official_where_well_formed(w, o.segments[0], tr.tokenizer, forced)
            for w, o in zip(want, ours, strict=True)
        ]
        assert [g["source"] for g in got] == [str(f) for f in files]
