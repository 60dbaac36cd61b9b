"""A thin wrapper over a ``tokenizers.Tokenizer`` loaded from the bundle's tokenizer.json."""

from __future__ import annotations

from pathlib import Path

from tokenizers import Tokenizer as _Tokenizer


class Tokenizer:
    def __init__(self, path: str | Path):
        # Read here, not by from_file: tokenizers takes a path as UTF-8 text, and a bundle's folder
        # name may hold other bytes (surrogate-escaped by Python, which reads it fine).
        self._tok = _Tokenizer.from_str(Path(path).read_text(encoding="utf-8"))
        self.added_strings = frozenset(t.content for t in self._tok.get_added_tokens_decoder().values())

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text``; control-token strings inside it become those tokens."""
        return self._tok.encode(text, add_special_tokens=False).ids

    def decode(self, ids: list[int], skip_special_tokens: bool = True) -> str:
        return self._tok.decode(ids, skip_special_tokens=skip_special_tokens)

    def token_to_id(self, token: str) -> int | None:
        return self._tok.token_to_id(token)
