"""Raw decoded text -> (language, text), as the official ``parse_asr_output`` does, including its
repetition fix. Re-implemented without recursion so that long outputs cannot hit the stack limit.
"""

from __future__ import annotations

ASR_TEXT_TAG = "<asr_text>"
LANGUAGE_PREFIX = "language "
REPEAT_THRESHOLD = 20
MAX_PATTERN = 20


def _collapse_char_runs(s: str, threshold: int) -> str:
    """A run of one character longer than ``threshold`` becomes that character once."""
    out, i, n = [], 0, len(s)
    while i < n:
        j = i + 1
        while j < n and s[j] == s[i]:
            j += 1
        out.append(s[i] if j - i > threshold else s[i:j])
        i = j
    return "".join(out)


def _find_repeat(s: str, start: int, threshold: int) -> tuple[int, int] | None:
    """First (position, pattern length) at or after ``start`` where a pattern of at most
    MAX_PATTERN characters repeats ``threshold`` times in a row."""
    n = len(s)
    for i in range(start, n - 2 * threshold + 1):
        for k in range(1, MAX_PATTERN + 1):
            if i + k * threshold > n:
                break
            pattern = s[i : i + k]
            if all(s[i + r * k : i + (r + 1) * k] == pattern for r in range(1, threshold)):
                return i, k
    return None


def _collapse_pattern_runs(s: str, threshold: int) -> str:
    """Each run of a short pattern repeated ``threshold``+ times becomes one copy, left to right."""
    out, start = [], 0
    while len(s) - start >= 2 * threshold and (found := _find_repeat(s, start, threshold)):
        i, k = found
        pattern = s[i : i + k]
        end = i + k * threshold
        while s[end : end + k] == pattern:
            end += k
        out += [s[start:i], pattern]
        start = end
    out.append(s[start:])
    return "".join(out)


def fix_repetitions(text: str, threshold: int = REPEAT_THRESHOLD) -> str:
    return _collapse_pattern_runs(_collapse_char_runs(text, threshold), threshold)


def parse_output(raw: str, forced_language: str | None = None) -> tuple[str, str]:
    """(language, text) from ``language X<asr_text>text``; language is "" when unknown or none."""
    s = (raw or "").strip()
    if not s:
        return "", ""
    s = fix_repetitions(s)
    if forced_language:
        return forced_language, s
    if ASR_TEXT_TAG not in s:
        return "", s.strip()
    meta, text = s.split(ASR_TEXT_TAG, 1)
    if "language none" in meta.lower():
        return "", text.strip()
    language = ""
    for line in meta.splitlines():
        line = line.strip()
        if not line:
            continue
        if line.lower().startswith(LANGUAGE_PREFIX):  # the first line that names one
            value = line[len(LANGUAGE_PREFIX) :].strip()
            if value:
                language = value[:1].upper() + value[1:].lower()
            break
    return language, text.strip()
