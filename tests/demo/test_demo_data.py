"""The demo model's data: open-vocabulary sentences, non-speech clips, rendering, batching and
scoring (demo/vocabulary.py, non_speech.py, speech.py, train.py, scoring.py)."""

from __future__ import annotations

import random

import numpy as np
import pytest

from demo import vocabulary
from demo.non_speech import KINDS, render_non_speech
from demo.speech import SAMPLE_RATE, missing_tools
from tests.support import require


def _require_word_lists():
    require(not vocabulary.missing_word_lists(), f"word lists ({', '.join(vocabulary.missing_word_lists())})")


def test_common_words_are_dictionary_words_in_dictionary_case():
    _require_word_lists()
    english = vocabulary.common_words("English")
    german = vocabulary.common_words("German")
    assert len(english) == len(german) == vocabulary.COMMON_WORDS
    assert english[:3] == ("the", "to", "and") and "I" in english and "i" not in english
    assert "Monday" in english and "monday" not in english
    # Nouns capitalised, where the list has no lowercase homograph ("zeit" is an adverb there).
    assert {"Haus", "Jahr", "Welt", "ich", "und"} <= set(german) and "haus" not in german
    for words in (english, german):
        assert len(set(words)) == len(words)
        assert all(w.replace("'", "").isalpha() for w in words)
        assert all(len(w) > 1 or w in ("a", "I") for w in words)  # no fragments as "t" or "s"


def test_open_sentences_are_seeded_distinct_and_written_with_digits():
    _require_word_lists()
    for lang in ("English", "German"):
        pairs = vocabulary.open_sentences(lang, 300, seed=1)
        assert pairs == vocabulary.open_sentences(lang, 300, seed=1)
        assert pairs != vocabulary.open_sentences(lang, 300, seed=2)
        assert len({w for w, _ in pairs}) == 300
        for written, spoken in pairs:
            assert written[-1] in ".?" and spoken[-1] == written[-1]
            assert (written[0].isupper() or written[0].isdigit()) and spoken[0].isupper()
            assert not any(ch.isdigit() for ch in spoken)
        assert any(any(ch.isdigit() for ch in w) for w, _ in pairs)  # numbers and times occur
        words = {word for w, _ in pairs for word in w[:-1].split()}
        assert len(words) > 500  # many words, not a handful of templates


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("seconds", [0.53, 2.5, 7.77])  # 0.53 and 7.77: notes of odd sample counts
def test_non_speech_clips(kind, seconds):
    a = render_non_speech(kind, seconds, seed=f"x-{kind}")
    assert a.dtype == np.float32 and a.shape == (int(seconds * SAMPLE_RATE),)
    assert np.array_equal(a, render_non_speech(kind, seconds, seed=f"x-{kind}"))  # seeded
    assert np.isfinite(a).all() and np.abs(a).max() <= 10 ** (-3 / 20) + 1e-6
    if kind == "silence":
        assert np.abs(a).max() <= 10 ** (-45 / 20) + 1e-6
    else:
        assert np.abs(a).max() >= 10 ** (-50 / 20) - 1e-6
    with pytest.raises(ValueError, match="unknown non-speech kind"):
        render_non_speech("speech", 1.0, seed="x")


def test_rendered_clips_keep_their_text_and_fit_a_chunk():
    require(not missing_tools(), f"speech synthesis tools ({', '.join(missing_tools())})")
    from demo.data import MAX_SECONDS, Clip, _audio

    clip = Clip("multi", "English", ("Hello there.", "How are you?"), ("Hello there.", "How are you?"),
                "espeak:en-us+m1", "s-1")  # fmt: skip
    audio, text = _audio(clip)
    assert text == "Hello there. How are you?" and 1.0 < len(audio) / SAMPLE_RATE < 12.0
    assert np.array_equal(audio, _audio(clip)[0])  # seeded
    # Too long for one 30 s chunk: sentences go from the end until it fits.
    many = tuple(f"This is sentence number {n} of a long recording." for n in range(1, 13))
    clip = Clip("multi", "English", many, many, "espeak:en-us+m1", "s-2")
    audio, text = _audio(clip)
    assert len(audio) <= MAX_SECONDS * SAMPLE_RATE and 3 <= len(text.split(". ")) < len(many)
    assert many[0] in text


def test_batches_fill_a_frame_budget_and_keep_every_clip_once():
    from demo.train import _batches

    rng = random.Random(0)
    lengths = [rng.randint(50, 3000) for _ in range(500)]
    batches = _batches(lengths, 9000, random.Random(1))
    assert sorted(i for b in batches for i in b) == list(range(500))
    for b in batches:
        assert len(b) == 1 or len(b) * max(lengths[i] for i in b) <= 9000
    assert max(len(b) for b in batches) > 20  # short clips share a batch with many
    ordered = _batches(lengths, 9000, random.Random(1), shortest_first=True)
    assert sorted(map(sorted, ordered)) == sorted(map(sorted, batches))  # the same batches
    longest = [max(lengths[i] for i in b) for b in reversed(ordered)]  # popped from the end
    assert longest == sorted(longest)


def test_music_notes_of_any_length_fit_their_slot():
    """A note's length in samples came back one short of its slot for some beats (float seconds
    round-tripped through the sample rate), which broke the synthesis of a whole data set."""
    for i in range(300):  # seeds 146, 154, 227, ... of these failed before
        assert render_non_speech("music", 3.0, seed=f"m-{i}").shape == (3 * SAMPLE_RATE,)


def test_ctc_targets_are_tokens_or_characters(tmp_path):
    from demo.train import Batcher, Recipe, write_layout

    texts = ["Set a timer for 15 minutes.", "Öffne das Fenster, bitte!", "It's late."]
    cfg = write_layout(tmp_path, Recipe(), texts)
    chars = Batcher(tmp_path, cfg, "characters", texts)
    spelled = {i: c for c, i in chars.chars.items()}
    assert "".join(spelled[i] for i in chars.ctc_target("Öffne,  it's 15!")) == "öffne it's 15"
    # a hyphen parts words, as the voice does: "twenty-six" was spelled "twentysix"
    assert chars.ctc_decode(chars.ctc_target("Fenster-timer - 15 late.")) == "fenster timer 15 late"
    assert chars.blank == chars.ctc_classes == len(chars.chars) < 40
    tokens = Batcher(tmp_path, cfg)
    assert tokens.ctc_target("Set a timer") == tokens.tok.encode("Set a timer", add_special_tokens=False).ids
    assert tokens.ctc_decode(tokens.ctc_target("Set a timer")) == "Set a timer"
    assert tokens.blank == tokens.ctc_classes == cfg.text.vocab_size
    with pytest.raises(ValueError, match="ctc_units"):
        Batcher(tmp_path, cfg, "phones")


def test_ctc_upsampling_aligns_more_characters_than_encoder_frames(tmp_path):
    """1 s of audio is 13 encoder frames; a 20-character transcript cannot be aligned to them
    (CTC's loss is infinite, zeroed in training, so the clip teaches nothing) but can to 3 x 13."""
    import torch

    from demo.train import SMOKE, Batcher, DemoModel, losses, write_layout

    text = "open the door please"
    cfg = write_layout(tmp_path, SMOKE, [text])
    batcher = Batcher(tmp_path, cfg, "characters", [text])
    feats, lens = torch.randn(1, cfg.audio.num_mel_bins, 100), torch.tensor([100])
    ctc = {}
    for upsample in (1, 3):
        torch.manual_seed(0)
        model = DemoModel(cfg, batcher.ctc_classes, "windowed", upsample)
        log_probs = model.ctc_log_probs(model.encoder(feats, lens)[0])
        assert log_probs.shape == (13 * upsample, 1, batcher.ctc_classes + 1)
        ctc[upsample] = losses(model, batcher, feats, lens, [text], ["English"])[1].item()
    assert ctc[1] == 0.0 and 0.0 < ctc[3] < float("inf")


def test_spoken_transcripts_are_what_the_voice_read_of_the_sentences_a_clip_kept():
    """The CTC head can spell "seven fifty" from the sound, not "7:50"; a clip cut to 30 s keeps
    its first sentences, so its spoken form must keep the same ones."""
    from demo.data import Clip, spoken_transcripts

    spoken, written = ("Wake me at seven fifty.", "Hi there."), ("Wake me at 7:50.", "Hi there.")
    clip = Clip("multi", "English", spoken, written, "espeak:en-us", "s")
    texts = ["Wake me at 7:50. Hi there.", "Wake me at 7:50."]
    assert spoken_transcripts([clip, clip], texts) == [
        "Wake me at seven fifty. Hi there.",
        "Wake me at seven fifty.",
    ]
    silent = Clip("non-speech", "None", (), (), "non-speech:hum", "s", 2.0)
    assert spoken_transcripts([silent], [""]) == [""]
    with pytest.raises(ValueError, match="Hi there"):
        spoken_transcripts([clip], ["Hi there."])


def test_ctc_text_chooses_written_or_spoken_transcripts():
    from dataclasses import replace

    from demo.data import TrainSet
    from demo.train import Recipe, ctc_transcripts

    data = TrainSet([], ["At 7:50."], ["English"], ["At seven fifty."])
    assert ctc_transcripts(data, Recipe()) == ["At seven fifty."]
    assert ctc_transcripts(data, replace(Recipe(), ctc_text="written")) == ["At 7:50."]
    with pytest.raises(ValueError, match="spoken"):
        ctc_transcripts(replace(data, spoken=None), replace(Recipe(), ctc_text="spoken"))
    with pytest.raises(ValueError, match="phones"):
        ctc_transcripts(data, replace(Recipe(), ctc_text="phones"))


def _require_phonemizer():
    try:
        from demo.phonemes import phonemes_of

        phonemes_of(["a"], ["English"])
    except (ImportError, RuntimeError) as e:
        require(False, f"phonemizer with the espeak-ng library ({e})")


def test_phonemes_are_espeaks_per_language_and_empty_for_non_speech():
    _require_phonemizer()
    from demo.phonemes import phonemes_of

    got = phonemes_of(
        ["Set a timer.", "", "Ich bin hier.", "Set a timer."], ["English", "None", "German", "English"]
    )
    assert got[0] == got[3] and got[1] == ""
    # words parted by "|", one phone per space-separated item (a diphthong is one), no stress marks
    assert got[0].count("|") == 2 and "aɪ" in got[0].split() and "ˈ" not in got[0]
    assert got[2].count("|") == 2 and "ç" in got[2].split()  # German's "ich": espeak's German voice


def test_phoneme_ctc_targets_round_trip_and_score_per_phoneme(tmp_path):
    _require_phonemizer()
    from dataclasses import replace

    from demo.data import TrainSet
    from demo.train import Batcher, Recipe, ctc_transcripts, write_layout

    recipe = replace(Recipe(), ctc_units="phonemes")
    data = TrainSet([], ["At 7:50.", ""], ["English", "None"], ["At seven fifty.", ""])
    spelled = ctc_transcripts(data, recipe)
    assert spelled[1] == "" and "|" in spelled[0] and "7" not in spelled[0]  # the spoken form's
    cfg = write_layout(tmp_path, recipe, data.texts)
    batcher = Batcher(tmp_path, cfg, "phonemes", spelled)
    assert batcher.ctc_decode(batcher.ctc_target(spelled[0])) == spelled[0]
    assert batcher.blank == batcher.ctc_classes == len(set(spelled[0].split()))
    # one phoneme wrong of n: 1/n, whatever its length in characters
    ref = spelled[0]
    hyp = " ".join(["x", *ref.split()[1:]])
    assert batcher.ctc_error([ref], [hyp]) == pytest.approx(1 / len(ref.split()))
    with pytest.raises(ValueError, match="phonemes"):
        ctc_transcripts(data, replace(recipe, ctc_text="written"))


def test_probe_overrides_take_the_recipe_field_types():
    from demo.probe import parse_overrides

    got = parse_overrides(["lr=1e-3", "batch_frames=3000", "ctc_text=spoken", "spec_augment=false"])
    assert got == {"lr": 0.001, "batch_frames": 3000, "ctc_text": "spoken", "spec_augment": False}
    for bad in ("lr", "learning_rate=1", "train=3", "batch_frames=many", "spec_augment=maybe"):
        with pytest.raises(ValueError):
            parse_overrides([bad])


def test_encoder_pretraining_leaves_the_decoder_untouched_then_trains_both(tmp_path):
    """The recipe's first ``encoder_pretrain_steps`` train the encoder and CTC head alone; the
    steps after them train the decoder as well."""
    from dataclasses import replace

    import torch

    from demo.data import TrainSet
    from demo.train import SMOKE, new_model, train

    rng = np.random.default_rng(0)
    texts = ["Open the door.", "Wie spät ist es?", "Set a timer.", ""]
    data = TrainSet(
        [rng.standard_normal((128, n)).astype(np.float32) for n in (120, 200, 90, 60)],  # 128 mel bins
        texts,
        ["English", "German", "English", "None"],
        texts,
    )
    recipe = replace(SMOKE, steps=3, encoder_pretrain_steps=3, eval_every=100, spec_augment=False)
    torch.manual_seed(0)
    _, batcher, model = new_model(tmp_path, recipe, data)

    def weights(prefix: str) -> list[torch.Tensor]:
        return [p.detach().clone() for n, p in model.named_parameters() if n.startswith(prefix)]

    decoder, encoder = weights("decoder."), weights("encoder.")
    report = train(model, batcher, data, recipe, data, log=lambda m: None)
    assert "ce" not in report["history"][-1]  # encoder-only steps log no decoder loss
    assert report["history"][-1]["train_ctc_cer"] >= 0
    assert all(torch.equal(a, b) for a, b in zip(decoder, weights("decoder."), strict=True))
    assert not all(torch.equal(a, b) for a, b in zip(encoder, weights("encoder."), strict=True))
    report = train(model, batcher, data, replace(recipe, steps=5), data, log=lambda m: None)
    assert "ce" in report["history"][-1]
    assert not all(torch.equal(a, b) for a, b in zip(decoder, weights("decoder."), strict=True))


def test_frequency_warping_moves_a_formant_by_the_clips_factor():
    import torch

    from demo.train import warp_frequencies

    x = torch.zeros(64, 128, 5)
    x[:, 40, :] = 1.0  # one "formant" at bin 40 in every clip and frame
    gen = torch.Generator().manual_seed(0)
    warped = warp_frequencies(x, 0.1, gen)
    peaks = (warped[:, :, 0] * torch.arange(128)).sum(1) / warped[:, :, 0].sum(1)  # centre of mass
    assert 36 <= peaks.min() < 39 and 41 < peaks.max() <= 44  # 40 x [0.9, 1.1], both ways
    assert torch.allclose(warped.sum(1), torch.ones(64, 5), atol=0.25)  # moved, not lost
    assert torch.equal(warp_frequencies(x, 0.0, gen), x)
