"""android_bridge.tokenizer_data: vocab.txt + merges.txt reproduce tokenizer.json's vocabulary and
merges (the same tokenizer, rebuilt from them, encodes as the original), and what the Kotlin
tokenizer cannot follow is refused."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from tokenizers import AddedToken, Tokenizer, decoders, models, normalizers

from qwen_asr_edge.android_bridge.tokenizer_data import QWEN_PATTERN, write_tokenizer_data
from qwen_asr_edge.export.tokenizer import qwen2_pre_tokenizer
from tests.support import ROOT

DEMO_TOKENIZER = ROOT / "runtime" / "assets" / "demo" / "bundle" / "tokenizer.json"
TEXTS = ["Hello, world! I'LL", "你好，世界。", "<|im_start|>system\nhi<|im_end|>", "  a\t\tb\r\n", "😀 ﬁ Å"]


def _rebuilt(out: Path, section: dict) -> Tokenizer:
    """A tokenizers Tokenizer from the written files and section, as the Kotlin one loads them."""
    lines = (out.parent / section["vocab"]).read_text(encoding="utf-8").split("\n")[:-1]
    vocab = {t: i for i, t in enumerate(lines) if t}
    merges_text = (out.parent / section["merges"]).read_text(encoding="utf-8")
    merges = [tuple(m.split(" ")) for m in merges_text.split("\n")[:-1]]
    tok = Tokenizer(models.BPE(vocab, merges))
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = qwen2_pre_tokenizer()
    tok.decoder = decoders.ByteLevel()
    for t in section["added_tokens"]:
        tok.add_tokens([AddedToken(t["content"], special=t["special"], normalized=False)])
        assert tok.token_to_id(t["content"]) == t["id"]
    return tok


def _check_reproduced(tokenizer_json: Path, tmp_path: Path) -> None:
    spec = json.loads(tokenizer_json.read_text(encoding="utf-8"))
    section = write_tokenizer_data(tokenizer_json, tmp_path / "tokenizer")
    assert section["vocab"] == "tokenizer/vocab.txt" and section["merges"] == "tokenizer/merges.txt"
    assert section["normalizer"] == "NFC" and section["pre_tokenizer_pattern"] == QWEN_PATTERN
    lines = (tmp_path / "tokenizer" / "vocab.txt").read_text(encoding="utf-8").split("\n")
    assert lines[-1] == ""
    assert {t: i for i, t in enumerate(lines[:-1]) if t} == spec["model"]["vocab"]
    merges = (tmp_path / "tokenizer" / "merges.txt").read_text(encoding="utf-8").split("\n")[:-1]
    assert merges == [m if isinstance(m, str) else " ".join(m) for m in spec["model"]["merges"]]
    assert section["added_tokens"] == [
        {"id": t["id"], "content": t["content"], "special": t["special"]} for t in spec["added_tokens"]
    ]
    original, rebuilt = Tokenizer.from_file(str(tokenizer_json)), _rebuilt(tmp_path / "tokenizer", section)
    for text in TEXTS:
        ids = original.encode(text, add_special_tokens=False).ids
        assert rebuilt.encode(text, add_special_tokens=False).ids == ids
        for skip in (True, False):
            want = original.decode(ids, skip_special_tokens=skip)
            assert rebuilt.decode(ids, skip_special_tokens=skip) == want


def test_files_reproduce_the_demo_tokenizer(tmp_path):
    _check_reproduced(DEMO_TOKENIZER, tmp_path)


@pytest.mark.slow
def test_files_reproduce_the_qwen3_tokenizer(tmp_path, vocab_dir):
    from tests.android_bridge.text_cases import build_qwen3_tokenizer

    (tmp_path / "src").mkdir()
    _check_reproduced(build_qwen3_tokenizer(tmp_path / "src", vocab_dir), tmp_path)


def _set(path: str, value):
    def change(spec: dict) -> None:
        *keys, last = path.split(".")
        node = spec
        for k in keys:
            node = node[int(k)] if isinstance(node, list) else node[k]
        node[last] = value

    return change


@pytest.mark.parametrize(
    "change",
    [
        _set("model.type", "WordPiece"),
        _set("normalizer", {"type": "NFKC"}),
        _set("normalizer", None),
        _set("decoder", {"type": "Metaspace"}),
        _set("pre_tokenizer", {"type": "ByteLevel", "add_prefix_space": False, "use_regex": True}),
        _set("pre_tokenizer.pretokenizers.0.pattern", {"Regex": r"\s+|\S+"}),
        _set("pre_tokenizer.pretokenizers.0.behavior", "Removed"),
        _set("pre_tokenizer.pretokenizers.0.invert", True),
        _set("pre_tokenizer.pretokenizers.1.use_regex", True),
        _set("model.dropout", 0.1),
        _set("model.byte_fallback", True),
        _set("model.ignore_merges", True),
        _set("model.continuing_subword_prefix", "##"),
        _set("added_tokens.0.lstrip", True),
        _set("added_tokens.0.normalized", True),
        _set("model.merges", [["Ġ", "t"], ["a b", "c"]]),
        _set("model.vocab", {"a\nb": 0, "c": 1}),
    ],
)
def test_unsupported_tokenizers_are_refused(tmp_path, change):
    spec = copy.deepcopy(json.loads(DEMO_TOKENIZER.read_text(encoding="utf-8")))
    change(spec)
    path = tmp_path / "tokenizer.json"
    path.write_text(json.dumps(spec), encoding="utf-8")
    with pytest.raises(ValueError, match="unsupported|cannot be one line|holds a space"):
        write_tokenizer_data(path, tmp_path / "out")
    assert not (tmp_path / "out").exists()
