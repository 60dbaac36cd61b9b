"""Open-vocabulary sentences for the demo model: common English and German words in random order.

The templates of text.py teach numbers, times and dates, but a model trained only on them recalls
a template instead of spelling what it hears. These sentences are drawn from the few thousand
most frequent words of each language (``wordfreq``'s frequency lists), written in their dictionary
case (Debian's ``wamerican`` and ``wngerman`` spell-checker lists, which also drop fragments such
as "t" or "ve"), in shapes people say to a speech tool: statements, questions, short commands,
with numbers and times mixed in. Word order is random, so the only way to the transcript is
through the sound.

    open_sentences("English", 3, seed=0)
    -> [("Please find the question.", "Please find the question."), ("Is 42 better people?", ...)]
"""

from __future__ import annotations

import bisect
import functools
import itertools
import random
from pathlib import Path

from .text import Sentence, _number, _time

COMMON_WORDS = 3000  # per language
DICTIONARIES = {
    "English": Path("/usr/share/dict/american-english"),
    "German": Path("/usr/share/dict/ngerman"),
}
_WORDFREQ_CODE = {"English": "en", "German": "de"}

# Openings that make a random word sequence a command or a question, as people talk to a device.
# (words of the opening, final punctuation)
_FRAMES: dict[str, list[tuple[str, str]]] = {
    "English": [
        ("", "."),
        ("", "."),
        ("", "."),
        ("", "?"),
        ("Please", "."),
        ("Can you", "?"),
        ("Do you", "?"),
        ("What is", "?"),
        ("Where is", "?"),
        ("How do I", "?"),
        ("I want to", "."),
        ("Let's", "."),
        ("Tell me", "."),
        ("Show me", "."),
        ("Is there", "?"),
        ("I think", "."),
    ],
    "German": [
        ("", "."),
        ("", "."),
        ("", "."),
        ("", "?"),
        ("Bitte", "."),
        ("Kannst du", "?"),
        ("Hast du", "?"),
        ("Was ist", "?"),
        ("Wo ist", "?"),
        ("Wie kann ich", "?"),
        ("Ich möchte", "."),
        ("Zeig mir", "."),
        ("Sag mir", "."),
        ("Gibt es", "?"),
        ("Ich glaube", "."),
    ],
}


def missing_word_lists() -> list[str]:
    """What the sentences need and this machine lacks (package names)."""
    missing = [f"apt:{'wamerican' if lang == 'English' else 'wngerman'}"
               for lang, path in DICTIONARIES.items() if not path.is_file()]  # fmt: skip
    try:
        import wordfreq  # noqa: F401
    except ImportError:
        missing.append("pip:wordfreq")
    return missing


@functools.cache
def common_words(language: str, count: int = COMMON_WORDS) -> tuple[str, ...]:
    """The ``count`` most frequent words of ``language`` that its spell-checker list knows, in the
    list's case ("I", "Monday", German nouns capitalised), most frequent first. Where the list
    has the word in lower case too, lower case wins: wordfreq folds case, and "sein", "gut" or
    "morgen" are far more common than "Sein", "Gut" or "Morgen" (the price: "zeit", "leben")."""
    import wordfreq

    known = set(DICTIONARIES[language].read_text(encoding="utf-8").split())
    words: list[str] = []
    for word in wordfreq.iter_wordlist(_WORDFREQ_CODE[language]):
        if len(words) == count:
            break
        if not word.replace("'", "").isalpha():
            continue
        cased = word if word in known else word.capitalize() if word.capitalize() in known else None
        if language == "English" and word == "i":
            cased = "I"
        if cased is None or (len(cased) == 1 and cased not in ("a", "I")):
            continue
        words.append(cased)
    return tuple(words)


@functools.cache
def _rank_weights(language: str) -> tuple[float, ...]:
    """Cumulative weights 1 / (rank + 20): Zipf's slope, flattened at the top so that "the the"
    stays rare."""
    return tuple(itertools.accumulate(1.0 / (rank + 20) for rank in range(len(common_words(language)))))


def _word(language: str, rng: random.Random) -> str:
    """Half by frequency (as speech has it), half uniform: every one of the common words is
    heard often enough to be learnt."""
    words = common_words(language)
    if rng.random() < 0.5:
        cumulative = _rank_weights(language)
        return words[bisect.bisect(cumulative, rng.random() * cumulative[-1])]
    return rng.choice(words)


def open_sentence(language: str, rng: random.Random) -> Sentence:
    """One sentence of 1 to 12 common words as (written, spoken); numbers and times are digits
    in the written form and words in the spoken one, as in text.py."""
    opening, end = rng.choice(_FRAMES[language])
    written = opening.split()
    spoken = list(written)
    for _ in range(rng.choice([1, 2, 2, 3, 3, 4, 4, 5, 6, 7, 8, 10, 12])):
        roll = rng.random()
        if roll < 0.04:
            w, s = _number(language, rng.randint(0, 99) if rng.random() < 0.8 else rng.randint(100, 999))
        elif roll < 0.06:
            w, s = _time(language, rng)
        else:
            w = s = _word(language, rng)
        written.append(w)
        spoken.append(s)
    written[0], spoken[0] = (w[0].upper() + w[1:] for w in (written[0], spoken[0]))
    return " ".join(written) + end, " ".join(spoken) + end


def open_sentences(language: str, count: int, seed: int | str) -> list[Sentence]:
    """``count`` distinct sentences, reproducible from ``seed``."""
    rng = random.Random(f"{seed}-{language}-open")
    seen: dict[str, Sentence] = {}
    while len(seen) < count:
        pair = open_sentence(language, rng)
        seen.setdefault(pair[0], pair)
    return list(seen.values())
