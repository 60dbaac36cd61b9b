"""Forced-alignment text handling: the units the aligner times, and the repair of its raw times.

Both restate the official ``Qwen3ForceAlignProcessor`` (spec §6.3, §6.4) and are tested against it.
The aligner graph itself arrives with the aligner export; this module needs only numpy.
"""

from __future__ import annotations

import functools
import unicodedata
from importlib import resources

import numpy as np

from .errors import MissingDependencyError

# CJK ideograph blocks that the official splitter makes units of one character each.
_CJK_RANGES = (
    (0x4E00, 0x9FFF),
    (0x3400, 0x4DBF),
    (0x20000, 0x2A6DF),
    (0x2A700, 0x2B73F),
    (0x2B740, 0x2B81F),
    (0x2B820, 0x2CEAF),
    (0xF900, 0xFAFF),
)


def is_cjk(ch: str) -> bool:
    code = ord(ch)
    return any(lo <= code <= hi for lo, hi in _CJK_RANGES)


def _kept(ch: str) -> bool:
    """Letters, numbers and the apostrophe survive; punctuation, symbols and marks do not."""
    return ch == "'" or unicodedata.category(ch)[0] in "LN"


def clean_unit(token: str) -> str:
    return "".join(ch for ch in token if _kept(ch))


def _split_cjk(text: str) -> list[str]:
    units: list[str] = []
    run: list[str] = []
    for ch in text:
        if is_cjk(ch):
            if run:
                units.append("".join(run))
                run = []
            units.append(ch)
        else:
            run.append(ch)
    if run:
        units.append("".join(run))
    return units


@functools.cache
def _korean_tokenizer():
    """soynlp's LTokenizer scored by the official package's Korean word list (every word 1.0)."""
    try:
        from soynlp.tokenizer import LTokenizer
    except ImportError:
        raise MissingDependencyError("aligning Korean (word segmentation with soynlp)", "ko") from None
    words = resources.files(__package__).joinpath("assets/korean_words.txt").read_text(encoding="utf-8")
    return LTokenizer(scores={w: 1.0 for w in words.split("\n") if w and not w.startswith("#")})


def split_words(text: str, language: str) -> list[str]:
    """The units the aligner gives times to, as the official package splits ``text``.

    Whitespace-separated words with punctuation removed ("state-of-the-art" -> "stateoftheart"),
    every CJK ideograph its own unit; Japanese and Korean use their word segmenters (optional
    extras). Language names are case-insensitive; unknown ones take the whitespace path, as in
    the official package.
    """
    lang = language.strip().lower()
    if lang == "japanese":
        try:
            import nagisa
        except ImportError:
            raise MissingDependencyError("aligning Japanese (word segmentation with nagisa)", "ja") from None
        return [u for u in (clean_unit(w) for w in nagisa.tagging(text).words) if u]
    if lang == "korean":
        return [u for u in (clean_unit(w) for w in _korean_tokenizer().tokenize(text)) if u]
    units: list[str] = []
    for piece in text.split():
        cleaned = clean_unit(piece)
        if cleaned:
            units.extend(_split_cjk(cleaned))
    return units


def repair_timestamps(raw) -> list[int]:
    """Make the aligner's raw slot times non-decreasing, as the official ``fix_timestamp`` does.

    The longest non-decreasing subsequence (first predecessor on ties, first end of maximal
    length) is kept; each run of other values is replaced: runs of one or two by the nearer kept
    neighbour (the left one on a tie), longer runs by linear interpolation between the kept
    neighbours, or by the one neighbour there is. Results are truncated to int.
    """
    data = np.asarray(raw, dtype=np.float64).ravel()
    n = data.size
    if n == 0:
        return []
    # O(n²) like the official code, but each row vectorised: 1000 slots take milliseconds.
    length = np.ones(n, dtype=np.int64)
    parent = np.full(n, -1, dtype=np.int64)
    for i in range(1, n):
        ok = data[:i] <= data[i]
        if ok.any():
            candidates = np.where(ok, length[:i], 0)
            best = int(candidates.max())
            parent[i] = int(np.argmax(candidates == best))  # the first j reaching it
            length[i] = best + 1
    normal = np.zeros(n, dtype=bool)
    idx = int(np.argmax(length == length.max()))
    while idx != -1:
        normal[idx] = True
        idx = int(parent[idx])

    result = data.tolist()
    i = 0
    while i < n:
        if normal[i]:
            i += 1
            continue
        j = i
        while j < n and not normal[j]:
            j += 1
        left = result[i - 1] if i > 0 else None  # the element before a run is always normal
        right = result[j] if j < n else None
        for k in range(i, j):
            if left is None or right is None:
                result[k] = right if left is None else left
            elif j - i <= 2:
                result[k] = left if k - (i - 1) <= j - k else right
            else:
                result[k] = left + (right - left) / (j - i + 1) * (k - i + 1)
        i = j
    return [int(v) for v in result]
