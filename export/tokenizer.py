"""Build the bundle's tokenizer.json from a checkpoint's vocab.json, merges.txt and added tokens.

The released checkpoints ship no tokenizer.json; transformers converts the slow Qwen2 tokenizer
at load time. This builds the same fast tokenizer directly (NFC, the Qwen2 pre-tokenizer regex,
byte-level BPE, the added tokens with their special flags), so the runtime needs only
``tokenizers``.

The regex is the Qwen2 one the model was trained with. The official package, loading a local
folder whose config says transformers 4.57.6, swaps in a Mistral regex (``fix_mistral_regex``);
that only changes how some context text splits, and we do not copy it (see the README).
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers

from qwen_asr_edge.runtime.errors import CheckpointError
from qwen_asr_edge.runtime.utf8_paths import utf8_alias

QWEN2_PRETOKENIZE_REGEX = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)


def qwen2_pre_tokenizer() -> pre_tokenizers.PreTokenizer:
    """The Qwen2 split regex, then bytes to the byte-level alphabet."""
    return pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(QWEN2_PRETOKENIZE_REGEX), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )


def added_tokens(checkpoint: Path) -> dict[int, dict]:
    """id -> added-token record from tokenizer_config.json, special flags resolved as transformers does."""
    path = checkpoint / "tokenizer_config.json"
    cfg = json.loads(path.read_text(encoding="utf-8"))
    records = cfg.get("added_tokens_decoder")
    if not records:
        raise CheckpointError(path, "has no added_tokens_decoder")
    named = set(cfg.get("additional_special_tokens") or [])
    named |= {cfg.get(k) for k in ("eos_token", "pad_token", "bos_token", "unk_token") if cfg.get(k)}
    out = {}
    for key, rec in records.items():
        rec = dict(rec)
        rec["special"] = bool(rec.get("special")) or rec["content"] in named
        out[int(key)] = rec
    return out


def build_tokenizer(checkpoint: Path) -> Tokenizer:
    try:
        with utf8_alias(checkpoint) as folder:  # tokenizers takes paths as UTF-8 text only
            bpe = models.BPE.from_file(
                str(folder / "vocab.json"),
                str(folder / "merges.txt"),
                dropout=None,
                unk_token=None,
                continuing_subword_prefix="",
                end_of_word_suffix="",
                fuse_unk=False,
                byte_fallback=False,
            )
    except Exception as e:  # tokenizers raises a plain Exception for malformed files
        raise CheckpointError(checkpoint, f"vocab.json / merges.txt are not a BPE vocabulary ({e})") from None
    tok = Tokenizer(bpe)
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = qwen2_pre_tokenizer()
    tok.decoder = decoders.ByteLevel()
    base = tok.get_vocab_size()
    for token_id, rec in sorted(added_tokens(checkpoint).items()):
        token = AddedToken(
            rec["content"],
            single_word=rec.get("single_word", False),
            lstrip=rec.get("lstrip", False),
            rstrip=rec.get("rstrip", False),
            normalized=rec.get("normalized", False),
            special=rec["special"],
        )
        if token_id < base:
            raise CheckpointError(
                checkpoint, f"added token {rec['content']!r} has id {token_id} inside the base vocab"
            )
        tok.add_tokens([token])
        got = tok.token_to_id(rec["content"])
        if got != token_id:
            raise CheckpointError(
                checkpoint / "tokenizer_config.json",
                f"added token {rec['content']!r} would get id {got}, not {token_id} (ids must be contiguous)",
            )
    return tok


def train_bpe(texts: list[str], size: int) -> tuple[dict[str, int], str]:
    """A small byte-level BPE trained on ``texts``, split as the Qwen2 tokenizer splits, as
    vocab.json and merges.txt contents (the demo model's own; the fallback of random checkpoints)."""
    from tokenizers import trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = qwen2_pre_tokenizer()
    trainer = trainers.BpeTrainer(
        vocab_size=size, show_progress=False, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator(texts, trainer)
    with tempfile.TemporaryDirectory() as tmp:
        tok.model.save(tmp)
        vocab = json.loads((Path(tmp) / "vocab.json").read_text(encoding="utf-8"))
        merges = (Path(tmp) / "merges.txt").read_text(encoding="utf-8")
    return vocab, merges
