"""The bundle's tokenizer.json as plain data an app reads without a JSON library of 11 MB:
``vocab.txt`` (line k = the byte-level string of token id k) and ``merges.txt`` (GPT-2's layout,
one ``left right`` merge per line in rank order), plus the manifest section that names them with
the normalizer, the pre-tokenizer's regex and the added tokens."""

from __future__ import annotations

import json
from pathlib import Path

# The only pre-tokenizer regex the Kotlin tokenizer implements (translated for java.util.regex):
# Qwen2/Qwen3's, as the exporter writes it (export.tokenizer imports tokenizers only, not torch).
from qwen_asr_edge.export.tokenizer import QWEN2_PRETOKENIZE_REGEX as QWEN_PATTERN

# The only pipeline the Kotlin tokenizer implements: Qwen2/Qwen3's (tokenizers' JSON names).
SUPPORTED = {"model": "BPE", "normalizer": "NFC", "decoder": "ByteLevel"}
# BPE options the Kotlin tokenizer does not implement, and the value it assumes.
_BPE_DEFAULTS = {"dropout": None, "continuing_subword_prefix": None, "end_of_word_suffix": None,
                 "byte_fallback": False, "ignore_merges": False}  # fmt: skip
# Added-token options it does not implement (it matches each content exactly, before normalizing).
_ADDED_DEFAULTS = {"single_word": False, "lstrip": False, "rstrip": False, "normalized": False}


def _pattern(pre_tokenizer: dict) -> str:
    """The Split regex of Qwen's pre-tokenizer (Split, then ByteLevel without its own regex)."""
    steps = pre_tokenizer.get("pretokenizers", [pre_tokenizer]) if pre_tokenizer else []
    kinds = [s.get("type") for s in steps]
    if kinds != ["Split", "ByteLevel"] or steps[1].get("use_regex") or steps[1].get("add_prefix_space"):
        raise ValueError(f"unsupported pre-tokenizer {kinds}: only Qwen's Split + ByteLevel is")
    split = steps[0]
    if split.get("behavior") != "Isolated" or split.get("invert"):
        behavior = f"{split.get('behavior')}, invert={split.get('invert')}"
        raise ValueError(f"unsupported Split ({behavior}): only Isolated is")
    pattern = split.get("pattern", {}).get("Regex")
    if pattern != QWEN_PATTERN:
        raise ValueError(f"unsupported pre-tokenizer regex {pattern!r}: only Qwen2/Qwen3's is")
    return pattern


def write_tokenizer_data(tokenizer_json: Path, out_dir: Path) -> dict:
    """Write ``out_dir/vocab.txt`` and ``out_dir/merges.txt`` from a tokenizers JSON file.

    Args:
        tokenizer_json: A bundle's tokenizer.json (byte-level BPE, as Qwen3's).
        out_dir: Folder to write into (created).

    Returns:
        The manifest's ``tokenizer`` section, its paths relative to ``out_dir.parent``.

    Raises:
        ValueError: a tokenizer this format cannot express or the Kotlin tokenizer cannot follow
            (not byte-level BPE with NFC and Qwen's pre-tokenizer, BPE dropout or merge options,
            added tokens with strip or word options, or a token string with a line break or a
            merge with a space, which byte-level tokens never have).
    """
    spec = json.loads(Path(tokenizer_json).read_text(encoding="utf-8"))
    model = spec["model"]
    found = {
        "model": model.get("type"),
        "normalizer": (spec.get("normalizer") or {}).get("type"),
        "decoder": (spec.get("decoder") or {}).get("type"),
    }
    if found != SUPPORTED:
        raise ValueError(f"unsupported tokenizer {found}: only byte-level BPE with NFC is")
    options = {k: model.get(k) or v for k, v in _BPE_DEFAULTS.items()}
    if options != _BPE_DEFAULTS:
        raise ValueError(f"unsupported BPE options {options}: only {_BPE_DEFAULTS} are")
    for t in spec.get("added_tokens", []):
        if any(t.get(k, v) != v for k, v in _ADDED_DEFAULTS.items()):
            raise ValueError(f"unsupported added token {t}: only {_ADDED_DEFAULTS} is")
    pattern = _pattern(spec.get("pre_tokenizer"))
    vocab: dict[str, int] = model["vocab"]
    size = max(vocab.values()) + 1
    lines = [""] * size
    for token, i in vocab.items():
        if not token or "\n" in token or "\r" in token:
            raise ValueError(f"token {i} ({token!r}) cannot be one line of vocab.txt")
        lines[i] = token
    merges = [m if isinstance(m, str) else " ".join(m) for m in model["merges"]]
    if any(len(m.split(" ")) != 2 for m in merges):
        raise ValueError("a merge holds a space; byte-level merges never do")
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "vocab.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (out_dir / "merges.txt").write_text("\n".join(merges) + "\n", encoding="utf-8")
    added = [
        {"id": t["id"], "content": t["content"], "special": bool(t["special"])}
        for t in sorted(spec.get("added_tokens", []), key=lambda t: t["id"])
    ]
    return {
        "vocab": f"{out_dir.name}/vocab.txt",
        "merges": f"{out_dir.name}/merges.txt",
        "normalizer": "NFC",
        "pre_tokenizer_pattern": pattern,
        "added_tokens": added,
    }
