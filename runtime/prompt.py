"""Prompt ids for one clip: the chat template around the context, N audio placeholders, and an
optional forced language (``language X<asr_text>`` after the assistant turn opens)."""

from __future__ import annotations

import re

import numpy as np

from .bundle import Manifest
from .errors import InputError
from .tokenizer import Tokenizer

# ISO 639-1 codes (639-3 where there is none: Cantonese "yue", Filipino "fil", as Whisper and
# OpenAI's API name them) of the languages Qwen3-ASR can be forced to, by their names in its output.
ISO_CODES = {
    "ar": "Arabic", "cs": "Czech", "da": "Danish", "de": "German", "el": "Greek", "en": "English",
    "es": "Spanish", "fa": "Persian", "fi": "Finnish", "fil": "Filipino", "fr": "French", "hi": "Hindi",
    "hu": "Hungarian", "id": "Indonesian", "it": "Italian", "ja": "Japanese", "ko": "Korean",
    "mk": "Macedonian", "ms": "Malay", "nl": "Dutch", "pl": "Polish", "pt": "Portuguese",
    "ro": "Romanian", "ru": "Russian", "sv": "Swedish", "th": "Thai", "tl": "Filipino", "tr": "Turkish",
    "vi": "Vietnamese", "yue": "Cantonese", "zh": "Chinese",
}  # fmt: skip


def checked_text(text: str, what: str) -> str:
    """``text`` when the tokenizer can take it, else an InputError naming ``what`` ("context").

    Python hands a command-line argument or a file name whose bytes are not UTF-8 over with
    surrogate escapes, which the tokenizer refuses with a TypeError.

    Raises:
        InputError: not a str, or not valid UTF-8 text.
    """
    if not isinstance(text, str):
        raise InputError(f"{what} must be text, not {type(text).__name__}")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise InputError(f"{what} is not valid UTF-8 text") from None
    return text


def normalize_language(language: str, supported: list[str]) -> str:
    """A language name in any case ('cHINese ') or its ISO code ('zh', 'ZH'), also with a region
    or script as a BCP 47 tag names it ('zh-CN', 'pt_BR', 'zh-Hans') -> 'Chinese'.

    Raises:
        InputError: not valid UTF-8 text, or not one of ``supported``, naming them ('auto' is
            told to leave the language out).
    """
    key = checked_text(str(language), "the language").strip()
    code = key.lower()
    base = re.split(r"[-_]", code, maxsplit=1)[0]
    name = ISO_CODES.get(code) or ISO_CODES.get(base) or key[:1].upper() + key[1:].lower()
    if name not in supported:
        codes: dict[str, str] = {}
        for iso, known in ISO_CODES.items():
            codes.setdefault(known, iso)
        listed = ", ".join(f"{n} ({codes[n]})" if n in codes else n for n in supported)
        detect = " (leave the language out to detect it)" if code in ("auto", "detect") else ""
        raise InputError(f"unsupported language {language!r}{detect}; supported: {listed}")
    return name


class PromptBuilder:
    """The official chat template (spec §5) as token ids, from the bundle's prompt pieces."""

    def __init__(self, manifest: Manifest, tokenizer: Tokenizer):
        self.spec = manifest.prompt
        self.audio_pad = manifest.tokens.audio_pad
        self.tokenizer = tokenizer

    def text(self, context: str, language: str | None) -> str:
        text = self.spec.before_context + context + self.spec.after_context
        if language:
            text += self.spec.language_suffix.format(language=language)
        return text

    def ids(
        self, n_audio_tokens: int, context: str = "", language: str | None = None, prefix: str = ""
    ) -> np.ndarray:
        """Token ids with the single audio placeholder expanded to ``n_audio_tokens`` copies.

        ``prefix`` is text the assistant turn already holds (a stream's earlier output), encoded
        together with the template as the official streaming prompt ``prompt_raw + prefix`` is.

        Raises:
            InputError: a context that is not valid UTF-8 text or holds control tokens; a language
                that is not valid UTF-8 text; a broken template.
        """
        checked_text(context, "context")
        if language is not None:
            checked_text(language, "the language")
        bad = [t for t in self.tokenizer.added_strings if t in context]
        if bad:
            raise InputError(f"context must not contain control tokens such as {sorted(bad)[0]!r}")
        ids = np.asarray(self.tokenizer.encode(self.text(context, language) + prefix), dtype=np.int64)
        where = np.flatnonzero(ids == self.audio_pad)
        if where.size != 1:  # the template is broken: the manifest was edited by hand
            raise InputError(f"the bundle's prompt template has {where.size} audio placeholders, not 1")
        i = int(where[0])
        return np.concatenate([ids[:i], np.full(n_audio_tokens, self.audio_pad, np.int64), ids[i + 1 :]])
