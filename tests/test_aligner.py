"""The forced aligner in a bundle against the official Qwen3ForcedAligner on the same tiny checkpoint."""

from __future__ import annotations

import numpy as np
import pytest

from qwen_asr_edge.runtime.aligner import Aligner
from qwen_asr_edge.runtime.errors import AudioError, BundleError, InputError

from .conftest import noise_clip, record_error

torch = pytest.importorskip("torch")
pytest.importorskip("qwen_asr")

# Lower-case words and CJK: the official loader's Mistral-regex swap (README, "Where we differ")
# splits some mixed-case words differently, which is not what these tests are about.
CASES = [
    (3.0, "hello world this is a test", "English"),
    (5.5, "我们今天去北京，好吗？", "Chinese"),
    (12.0, "我用 iphone 拍了张照片, very good!", "chinese"),
    (0.5, "yes", "english"),
]


@pytest.fixture(scope="module")
def official(checkpoints):
    from qwen_asr import Qwen3ForcedAligner

    return Qwen3ForcedAligner.from_pretrained(
        str(checkpoints["aligner"]), dtype=torch.float32, device_map="cpu"
    )


@pytest.fixture(scope="module")
def aligner(bundles):
    return Aligner(bundles["untied-full-aligner"], providers="cpu")


@pytest.mark.parametrize("seconds,text,language", CASES)
def test_words_and_times_match_official(official, aligner, seconds, text, language):
    wav = noise_clip(seconds, seed=40)
    want = official.align((wav, 16000), text, language)[0]
    got = aligner.align(wav, text, language)
    assert [(w.text, w.start, w.end) for w in got] == [(w.text, w.start_time, w.end_time) for w in want.items]


@pytest.mark.parametrize("seconds,text,language", CASES[:3])
def test_slot_logits_match_official(official, aligner, seconds, text, language):
    """Classes can tie on random weights; the logits at the timestamp slots cannot hide a difference."""
    wav = noise_clip(seconds, seed=41)
    words, prompt = official.aligner_processor.encode_timestamp(text, language)
    inputs = official.processor(text=[prompt], audio=[wav], return_tensors="pt", padding=True)
    with torch.no_grad():
        ref = official.model.thinker(**inputs).logits[0].numpy()
    ids = inputs["input_ids"][0].numpy()

    feats = aligner.mel(wav)[None]
    embeds, lens = aligner.encoder.run(
        None, {"input_features": feats, "feature_lens": np.array([feats.shape[2]])}
    )
    ours_ids = aligner.prompt(words, int(lens[0]))
    np.testing.assert_array_equal(ours_ids, ids)
    logits, classes = aligner.text.run(
        None, {"input_ids": ids[None], "audio_embeds": embeds, "audio_embed_lens": lens}
    )
    slots = ids == aligner.spec.timestamp_token_id
    err = np.abs(logits[0][slots] - ref[slots]).max() / np.abs(ref[slots]).max()
    record_error("aligner slot logits max abs / max |ref|", err)
    assert err < 1e-4
    np.testing.assert_array_equal(classes[0][slots], ref[slots].argmax(-1))


def test_manifest_records_the_aligner(aligner):
    spec = aligner.spec
    assert (spec.timestamp_token_id, spec.segment_ms, spec.classes) == (151705, 80, 5000)
    assert "Japanese" in spec.languages and spec.max_seconds == 180.0


def test_bad_input(aligner, bundles):
    wav = noise_clip(2.0)
    with pytest.raises(InputError, match="nothing to align"):
        aligner.align(wav, " ,.!? ", "English")
    with pytest.raises(InputError, match="unsupported language 'Klingon'"):
        aligner.align(wav, "hello", "Klingon")
    with pytest.raises(InputError, match="unsupported language"):
        aligner.align(wav, "hallo", "Dutch")  # ASR knows Dutch, the aligner does not
    with pytest.raises(AudioError, match="longer than the aligner's 180 s"):
        aligner.align(np.zeros(181 * 16000, np.float32), "hello", "English")
    with pytest.raises(BundleError, match="holds no aligner"):
        Aligner(bundles["tied-full"], providers="cpu")


def test_cli_align_json_and_tsv(official, bundles, speech_files):
    """Real speech from a file, through the command line, equal to the official aligner."""
    import json

    from .conftest import run_cli

    bundle = str(bundles["untied-full-aligner"])
    clip, text = str(speech_files[0]), "go forward ten meters"
    result = run_cli("align", clip, text, "--language", "english", "--bundle", bundle)
    assert result.returncode == 0, result.stderr
    words = json.loads(result.stdout)
    want = official.align(clip, text, "English")[0]
    assert [(w["text"], w["start"], w["end"]) for w in words] == [
        (w.text, w.start_time, w.end_time) for w in want.items
    ]
    tsv = run_cli("align", clip, text, "--language", "English", "--bundle", bundle, "-f", "tsv")
    assert tsv.returncode == 0
    assert [line.split("\t")[2] for line in tsv.stdout.splitlines()] == ["go", "forward", "ten", "meters"]
    bad = run_cli("align", clip, "...", "--language", "English", "--bundle", bundle)
    assert bad.returncode == 2 and "nothing to align" in bad.stderr and "Traceback" not in bad.stderr
