"""The bundle's tokenizer.json against transformers' Qwen2TokenizerFast built from the same
vocab.json + merges.txt + added tokens (the real Qwen3 vocabulary)."""

from __future__ import annotations

import pytest

from qwen_asr_edge.runtime.tokenizer import Tokenizer

transformers = pytest.importorskip("transformers")

TEXTS = [
    "Hello world, this is a test of the speech recognizer.",
    "HelloWorld iPhone don't/stop it's 1234567 3.14",
    "甚至出现交易几乎停滞的情况。你好世界",
    "こんにちは世界、カタカナとひらがな",
    "안녕하세요 세계",
    "Привет, мир! Grüß Gott, ¿Qué tal? Ça va très bien.",
    "مرحبا بالعالم  नमस्ते दुनिया  สวัสดีชาวโลก",
    "tabs\tand\nnew lines\r\n  and   spaces  ",
    "language English<asr_text>mixed <|im_end|> specials <|audio_pad|><|audio_pad|> inside",
    "emoji 🙂👍 and combining é (e\u0301) forms",
]


@pytest.fixture(scope="module")
def pair(checkpoints, bundles):
    from transformers import Qwen2TokenizerFast

    ck = checkpoints["untied"]
    reference = Qwen2TokenizerFast.from_pretrained(str(ck))
    assert not getattr(reference, "fix_mistral_regex", False)
    return Tokenizer(bundles["untied-full"] / "tokenizer.json"), reference


@pytest.mark.parametrize("text", TEXTS)
def test_encode_and_decode_match_transformers(pair, text):
    ours, reference = pair
    ids = ours.encode(text)
    assert ids == reference.encode(text, add_special_tokens=False)
    for skip in (True, False):
        assert ours.decode(ids, skip_special_tokens=skip) == reference.decode(
            ids, skip_special_tokens=skip, clean_up_tokenization_spaces=False
        )


def test_special_ids_and_flags(pair):
    ours, reference = pair
    for token, token_id in [
        ("<|endoftext|>", 151643),
        ("<|im_end|>", 151645),
        ("<|audio_pad|>", 151676),
        ("<asr_text>", 151704),
        ("<timestamp>", 151705),
    ]:
        assert ours.token_to_id(token) == token_id == reference.convert_tokens_to_ids(token)
    # <asr_text> is not special: it survives skip_special_tokens, as in the official decode
    assert ours.decode([151645, 151704, 151643]) == "<asr_text>"


def test_invalid_utf8_is_replaced_not_raised(pair):
    ours, reference = pair
    ids = ours.encode("𓀀")  # a rare character: several byte-level pieces
    assert len(ids) > 1
    partial = ids[:1]
    assert ours.decode(partial) == reference.decode(partial) and "\ufffd" in ours.decode(partial)
