"""Joining transcript pieces as their language writes them: the texts of consecutive chunks, and
subtitle cues cut from a chunk's text.

Chunks are cut at pauses, so a chunk boundary is a word boundary: languages written with spaces
between words take one there, and Chinese, Cantonese and Japanese, written without, take none.
The rule looks at the two characters that meet rather than at the chunks' language names, so
that it also holds for mixed-language recordings (an English chunk then a Chinese one) and for
chunks with no language (silence, or a model that named none): no space when either character
belongs to a script written without spaces (CJK ideographs, kana, CJK and full-width
punctuation), one space otherwise. The official package joins chunk texts with nothing
(``"".join``), which glues English and German sentences together (``...85.Stelle``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

# Blocks of scripts written without spaces between words (Chinese, Japanese), and their punctuation.
_NO_SPACE_RANGES = (
    (0x2E80, 0x2FDF),  # CJK radicals, Kangxi radicals
    (0x3000, 0x303F),  # CJK symbols and punctuation (、。「」)
    (0x3040, 0x30FF),  # hiragana, katakana
    (0x3100, 0x312F),  # bopomofo
    (0x31F0, 0x31FF),  # katakana phonetic extensions
    (0x3400, 0x4DBF),  # CJK extension A
    (0x4E00, 0x9FFF),  # CJK unified ideographs
    (0xF900, 0xFAFF),  # CJK compatibility ideographs
    (0xFE30, 0xFE4F),  # CJK compatibility forms
    (0xFF00, 0xFFEF),  # full-width forms (，！？) and half-width katakana
    (0x20000, 0x323AF),  # CJK extensions B-H
)


def written_without_spaces(ch: str) -> bool:
    """Whether the character ``ch`` belongs to a script written without spaces between words."""
    code = ord(ch)
    return any(lo <= code <= hi for lo, hi in _NO_SPACE_RANGES)


def separator(before: str, after: str) -> str:
    """What goes between the texts ``before`` and ``after`` (both stripped, non-empty): "" when
    either character at the boundary is written without spaces, else " "."""
    return "" if written_without_spaces(before[-1]) or written_without_spaces(after[0]) else " "


def join_texts(texts: Iterable[str]) -> str:
    """Consecutive pieces of one transcript (chunk texts) joined as their language writes them.

    Each piece is stripped and empty ones are dropped, so there are never leading, trailing or
    double spaces at the joins; whitespace inside a piece is kept as the model wrote it.
    """
    out = ""
    for piece in (t.strip() for t in texts):
        if piece:
            out = piece if not out else out + separator(out, piece) + piece
    return out


def word_spans(text: str, words: Sequence[str]) -> list[tuple[int, int]] | None:
    """Where each aligned unit lies in ``text``: [start, end) character offsets, in order.

    A unit is its words' characters with punctuation dropped (alignment.split_words), so it is
    found as a subsequence of ``text`` after the previous one, case-insensitively. None when the
    units are not ``text``'s (an aligner run on other text).
    """
    spans: list[tuple[int, int]] = []
    folded = [c.lower() for c in text]
    at = 0  # where the next unit may start
    for word in words:
        start, end = -1, at
        for ch in word:
            try:
                found = folded.index(ch.lower(), end)
            except ValueError:
                return None
            start, end = (found if start < 0 else start), found + 1
        spans.append((at, at) if start < 0 else (start, end))
        at = end
    return spans
