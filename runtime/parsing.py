"""Raw decoded text -> (language, text), as the official ``parse_asr_output`` does, including its
repetition fix. Re-implemented without recursion so that long outputs cannot hit the stack limit.

``parse_output`` is the official parser; ``parse_transcript`` is what transcription uses: the same
result wherever the model's output is well formed (``language X<asr_text>text``, or plain text
when the language was forced), and never any model control markup in the text otherwise.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from .prompt import ISO_CODES
from .text import join_texts

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


# Qwen's added tokens that decoding with skip_special_tokens keeps (tokenizer.json marks them
# non-special), and any token spelled <|...|>. The Transcriber adds its own tokenizer's list.
CONTROL_TOKENS = (
    "<tool_call>", "</tool_call>", "<tool_response>", "</tool_response>", "<think>", "</think>",
    "<non_speech>", "<timestamp>", "<tts_pad>", "<tts_text_bos>", "<tts_text_eod>", "<tts_text_bos_single>",
)  # fmt: skip
_BAR_TOKEN = r"<\|[^<>|\s]{1,64}\|>"
_NAMES = "|".join(sorted({*ISO_CODES.values(), "None"}, key=len, reverse=True))
# The language prefix wherever it appears in the text: "language X<asr_text>", or what is left of it
# before a tag (a bare name; nothing), as the model writes it when it restarts mid-output.
_PREFIX = re.compile(rf"(?:language[ \t]*)?(?:\b(?:{_NAMES})\b)?\s*{re.escape(ASR_TEXT_TAG)}", re.IGNORECASE)
# A prefix whose tag is begun but not finished ("language English<", "language English<asr_",
# "language English<0"): the model stopped or strayed inside the markup; never text.
_HALF_TAG = re.compile(
    rf"language[ \t]*(?:\b(?:{_NAMES})\b)?\s*<(?:a(?:s(?:r(?:_(?:t(?:e(?:x(?:t>?)?)?)?)?)?)?)?)?",
    re.IGNORECASE,
)
# A prefix the token cap cut short, at the very end: "language Ger", "langu", "l", glued to the text
# before it (the model writes the prefix's first token with no space) or alone; "this language" stays.
_CUT_PREFIX = re.compile(
    r"(?:^|(?<=[^\w\s]))(?:language(?:[ \t]+[^\W\d_]*)?|languag|langua|langu|lang|lan|la|l)\s*$",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class ParsedOutput:
    """One chunk's output, parsed.

    Attributes:
        language: The language the model named (or the forced one); "" for none or "None".
        text: The transcript, with no control markup: no ``language X<asr_text>`` prefix (not
            even repeated mid-text or cut short by the token cap), no ``<asr_text>`` tag, no
            control tokens (``<|im_end|>``, ``<|...|>``, ``<non_speech>``).
        reached_text: False when the language was not forced and the output never reached
            ``<asr_text>``: no transcript was written (silence or noise give "l." or "langu",
            the prefix begun, or an immediate stop), so ``text`` is "". Always True with a
            forced language, whose prompt holds the prefix.
    """

    language: str
    text: str
    reached_text: bool = True


def strip_control_tokens(raw: str, markup: Iterable[str] = ()) -> str:
    """``raw`` without control tokens (``<asr_text>`` stays: parsing needs it)."""
    tokens = {*CONTROL_TOKENS, *markup} - {ASR_TEXT_TAG}
    pattern = "|".join([_BAR_TOKEN, *(re.escape(t) for t in sorted(tokens, key=len, reverse=True))])
    return re.sub(pattern, "", raw)


def well_formed(raw: str, forced_language: str | None = None, *, truncated: bool = False, markup=()) -> bool:
    """Whether ``raw`` is output as the model is meant to write it, where ``parse_transcript``
    gives the official parser's result: ``language X<asr_text>text`` (or, with a forced
    language, plain text), with no control tokens, no prefix, tag or half tag in the text, and, when
    ``truncated``, no prefix cut short at its end."""
    s = raw or ""
    if strip_control_tokens(s, markup) != s or not (forced_language or ASR_TEXT_TAG in s):
        return False
    text = parse_output(s, forced_language)[1]
    return not (_PREFIX.search(text) or _HALF_TAG.search(text) or (truncated and _CUT_PREFIX.search(text)))


def parse_transcript(
    raw: str, forced_language: str | None = None, *, truncated: bool = False, markup: Iterable[str] = ()
) -> ParsedOutput:
    """One chunk's decoded output -> language and text, with no model control markup in the text.

    The official ``parse_asr_output`` (``parse_output`` here) returns the text unchanged when the
    language was forced, and everything after the first ``<asr_text>``: a model that writes the
    prefix anyway, repeats it mid-text or is cut by the token cap leaves ``language
    English<asr_text>`` and broken ``lang...`` prefixes in the text, and an output that never
    reaches ``<asr_text>`` (silence, noise) is taken whole as text. Here, after the same parse:
    control tokens are dropped, every prefix in the text is removed (the pieces around it are
    joined as their language writes), so is a prefix whose tag is begun but unfinished
    ("language English<"), a prefix cut short at the end of a ``truncated`` output is
    dropped, and an output that never reached ``<asr_text>`` gives "" with ``reached_text``
    False. Where the output is ``well_formed``, the result is the official one.

    Args:
        raw: The generated tokens decoded with special tokens skipped.
        forced_language: The language the prompt forced (its name), or None.
        truncated: Whether generation stopped at the token cap rather than at a stop id.
        markup: More control-token strings to drop (the tokenizer's added tokens).

    Returns:
        A ParsedOutput.
    """
    s = strip_control_tokens(raw or "", markup)
    language, text = parse_output(s, forced_language)
    if not forced_language and ASR_TEXT_TAG not in s:
        return ParsedOutput(language, "", reached_text=False)
    text = join_texts(_HALF_TAG.split(join_texts(_PREFIX.split(text))))
    if truncated:
        text = _CUT_PREFIX.sub("", text).strip()
    return ParsedOutput(language, text)
