"""The phonemes of the demo data's spoken transcripts, as espeak-ng pronounces them: a target the
CTC head can learn without English spelling (``Recipe.ctc_units = "phonemes"``).

Most of the training audio is espeak-ng's own rendering of exactly these phonemes, and flite's and
festival's voices read the same words, so the mapping from sound to phonemes is close to one to one,
where characters also need the orthography learnt from the data. Phonemizer (the espeak-ng library
through ctypes, one call per list) does the work; training needs it, the runtime never does.
"""

from __future__ import annotations

from functools import lru_cache

# espeak-ng's voice for each data language (demo.data.Clip.language)
ESPEAK_LANGUAGE = {"English": "en-us", "German": "de"}
WORD_BOUNDARY = "|"


@lru_cache(maxsize=8)
def _phonemize(texts: tuple[str, ...], language: str) -> tuple[str, ...]:
    from phonemizer import phonemize
    from phonemizer.separator import Separator

    out = phonemize(
        list(texts),
        language=language,
        backend="espeak",
        separator=Separator(phone=" ", word=f" {WORD_BOUNDARY} ", syllable=""),
        strip=True,
        preserve_punctuation=False,
        njobs=1,
    )
    return tuple(" ".join(p.split()) for p in out)


def phonemes_of(texts: list[str], languages: list[str]) -> list[str]:
    """espeak-ng's phonemes of each text, spaced, words parted by ``|``
    ("set a timer" -> "s ɛ t | ɐ | t aɪ m ɚ"); "" for an empty text (non-speech) or a language
    espeak-ng is not asked for. Without stress marks. Raises ImportError without phonemizer and
    RuntimeError without the espeak-ng library."""
    out = [""] * len(texts)
    for language, voice in ESPEAK_LANGUAGE.items():
        idx = [i for i, (t, lang) in enumerate(zip(texts, languages, strict=True)) if lang == language and t]
        if idx:
            for i, p in zip(idx, _phonemize(tuple(texts[i] for i in idx), voice), strict=True):
                out[i] = p
    return out
