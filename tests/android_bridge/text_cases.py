"""Golden cases for the Kotlin text code (android_bridge/kotlin, package io.github.qwenasredge.text):
the tokenizer as ``tokenizers`` runs it, the transcript parser, join_texts and the repetition
guard as the Python runtime runs them.

``write_text_cases(out_dir)`` writes ``out_dir/text/``:

- ``tokenizer/vocab.txt``, ``tokenizer/merges.txt`` and ``manifest_tokenizer.json`` (the manifest's
  ``tokenizer`` section, its paths relative to ``text/``): the real Qwen3 vocabulary with the
  Qwen3-ASR added tokens, written by android_bridge.tokenizer_data;
- ``demo/tokenizer/...`` and ``demo/manifest_tokenizer.json``: the same for the demo bundle's small
  tokenizer, and ``variant/...`` for it with more added tokens (overlapping, non-ASCII);
- ``cases.json``: encode, decode, parse, join, repetition-guard and JSON cases with the Python
  results.

Deterministic (fixed seeds, no dict or set order that varies between runs).
"""

from __future__ import annotations

import json
import random
import tempfile
from pathlib import Path

from tokenizers import Tokenizer

from qwen_asr_edge.android_bridge.tokenizer_data import write_tokenizer_data
from qwen_asr_edge.runtime import parsing
from qwen_asr_edge.runtime.repetition import RepetitionGuard
from qwen_asr_edge.runtime.text import join_texts
from tests.support import ROOT, VOCAB_DIR

DEMO_TOKENIZER = ROOT / "runtime" / "assets" / "demo" / "bundle" / "tokenizer.json"

ENCODE_TEXTS = [
    "",
    "Hello, world!",
    "The quick brown fox jumps over the lazy dog.",
    "  leading and trailing spaces  ",
    "I'LL be there, we'RE here, it'S, they'VE, I'M, he'D, don't, DON'T, 's 'S 'ſ 'ſt",
    "rock 'n' roll's ''s '",
    "Größenwahn über Straßenbahnhaltestellen, Äpfel und Öl.",
    "Ça va très bien, merci ! « guillemets » l'été, aujourd'hui.",
    "我们今天去北京天安门广场。你好，世界！",
    "日本語のテキスト、カタカナとひらがな。ｶﾀｶﾅ",
    "한국어 텍스트입니다. 안녕하세요!",
    "Привет, мир! Съешь же ещё этих мягких французских булок.",
    "مرحبا بالعالم، هذا نص عربي.",
    "नमस्ते दुनिया, यह हिंदी पाठ है। क्षत्रिय",
    "emoji 😀👍🏽 👨‍👩‍👧‍👦 🏳️‍🌈 ❤️ 🇩🇪 family",
    "numbers 1234567890 3.14159 1,000,000 ١٢٣ ४५६ ²³ ½ Ⅻ",
    "whitespace   runs\t\ttabs\n\nnewlines\r\nCRLF \r\n \n  \n",
    "line\u2028separator\u2029para\u3000ideographic\u00a0nbsp\u202fnarrow\u2009thin \u0085nel",
    "trailing spaces   ",
    "   ",
    "\n",
    "\t \t",
    " \n\n ",
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n"
    "<|audio_start|><|audio_pad|><|audio_end|><|im_end|>\n<|im_start|>assistant\n",
    "language English<asr_text>Hello there.<|im_end|>",
    "<|im_start|><|im_start|>x<|im_end|>",
    "<|im_start",
    "a<think></think>b<tool_call>c</tool_call><non_speech><timestamp><blank1><blank12>",
    "<|endoftext|>text after end",
    "<<|im_end|>>",
    "Cafe\u0301 vs Café: NFD vs NFC, A\u030a Å \u212b",
    "ﬁ ligature, ｆｕｌｌ width, ① circled",
    "mixed English和中文混合text 123abc",
    "URL https://example.com/path?q=1&r=2#frag and e-mail a.b@c.de",
    "code: def f(x): return x**2  # comment\n\tif x != 0: pass",
    "!!!??? ... --- *** ### $$$ %%%",
    "\x00\x01\x1b control \x7f chars",
    "Ελληνικά κείμενα ΟΔΟΣ",
    "עברית טקסט",
    "ไทย ภาษาไทย",
    "Tiếng Việt có dấu: Nguyễn",
    "a" * 200,
    "ab" * 150,
    "🙂" * 30,
    " " * 40 + "x",
    # Python's whitespace is not Unicode White_Space (U+001C..1F); neither are U+180E, U+200B, U+FEFF.
    "a\x1cb \x1c c\x1d\x1e\x1f d \x1c\n e",
    "x\u180e y\u200bz\ufeff w\u0085\u0085a \u00a0\n b\u3000\u3000c \u2028\n",
    "\u0301abc \u0301\u0302 'll 'LL 'Ll \u2019s",
    "𝟘𝟙 𐒠 𠀀𠀁 𝐀𝐁 x𝐀 1𝐀 !𝐀",
    "\r\r\n\n\r x \r\n\r\n  \n\t\n",
    "!!\n\n?? \r\n",
    " ?!\r\n",
    "a  \n",
    "a \t\n",
    "'s's'S",
    "'\u017fs",
    "'ſT",
    "'K",
]

MARKUP_FRAGMENTS = [
    "language ", "language", "English", "Chinese", "German", "None", "none", "<asr_text>", "<asr_",
    "<asr", "<", "langu", "lang", "l", "la", "LANGUAGE ", "<|im_end|>", "<|endoftext|>", "<non_speech>",
    "hello", "Hello world.", "你好", "世界。", " ", "\n", "\t", "  ", "ok", "the language of", "Ich", "über",
    "नमस्ते", "क्षत्रिय", "😀", "123", "٣", "_", "x_", "ſ", "K", "İ", "ı", "<|", "|>", "<|x|>", "<timestamp>",
    "𠀀", "𝟘", "language 𠀀", "Language ENGLISH", "ΟΔΟΣ", "!", "?", ",", ".", "'", "<asr_text",
    "<|im_start|>",
]  # fmt: skip

PARSE_RAWS = [
    "",
    "   ",
    "language English<asr_text>Hello world.",
    "language Chinese<asr_text>你好世界。",
    "language None<asr_text>",
    "language none<asr_text>text after none",
    "LANGUAGE GERMAN<asr_text>Guten Tag.",
    "language English\n<asr_text> spaced ",
    "\nfirst line\nlanguage french\n<asr_text>Bonjour.",
    "language English<asr_text>Hello. language English<asr_text>Again.",
    "language English<asr_text>你好language Chinese<asr_text>世界",
    "language English<asr_text>Hello language English<",
    "language English<asr_text>Hello language English<asr_",
    "language English<asr_text>Hello language English<asr_tex",
    "language English<asr_text>Hello.language Ger",
    "language English<asr_text>Hello.langu",
    "language English<asr_text>Hello.l",
    "language English<asr_text>this language",
    "language English<asr_text>Hello, language",
    "language English<asr_text>Hello,language German",
    "language English<asr_text>Hello,language   German  ",
    "language English<asr_text>Hello,language 123",
    "language English<asr_text>Hello,language ²",
    "language English<asr_text>Hello,language 𠀀",
    "language English<asr_text>𠀀language",
    "language English<asr_text>😀language",
    "language English<asr_text>😀l",
    "language English<asr_text>ſlanguage",
    "l.",
    "langu",
    "language English",
    "language English<",
    "<asr_text>bare tag",
    "English<asr_text>bare name",
    "language English<asr_text>x<|im_end|>",
    "language English<asr_text>x<|endoftext|><non_speech>y",
    "language English<asr_text><|some_thing|>z<| bad |>",
    "language English<asr_text>" + "ha" * 30,
    "language English<asr_text>" + "a" * 25 + "b" * 19,
    "language English<asr_text>" + "😀" * 25,
    "language English<asr_text>" + "的" * 21 + "x",
    "language English<asr_text>" + "abc " * 22 + "end",
    "language English<asr_text>" + "x" * 20 + "y" * 21,
    "language Hindi<asr_text>नमस्ते दुनिया। क्षत्रिय language Hindi<asr_text>फिर से",
    "language Japanese<asr_text>こんにちは。language Japanese<asr_text>さようなら",
    "language İndonesian<asr_text>Halo",
    "language ındonesian<asr_text>Halo",
    "language english<asr_text>Kelvin \u212a test, language \u212aorean<asr_text>x",
    "language ΟΔΟΣ<asr_text>Greek name",
    "language ßtraße<asr_text>upper ß",
    "language ǆemal<asr_text>titlecase",
    "language \u00a0English\u00a0<asr_text>\u00a0nbsp\u00a0",
    "language English\x1c<asr_text>\x1ftext\x1e",
    "language English<asr_text>a\u2028language English<asr_text>b",
    "language English<asr_text>trailing newline l\n",
    "language English<asr_text>x,la\n",
    "language English<asr_text>x_language",
    "language English<asr_text>x1language",
    "language English<asr_text>x language",
    "language Chinese<asr_text>中文language",
    "language Chinese<asr_text>中文。language Chi",
    "language Hindi<asr_text>नमस्तेHindi<asr_text>फिर",
    "language Hindi<asr_text>नमस्ते Hindi<asr_text>फिर",
    "language Hindi<asr_text>क्षत्रियlanguage",
    "language Hindi<asr_text>नमस्ते।language Hin",
    "language Hindi<asr_text>नमस्तेl",
    "language English<asr_text>x𝐀English<asr_text>y",
    "language English<asr_text>x𝟘English<asr_text>y",
    "language English<asr_text>x😀English<asr_text>y",
    "language English<asr_text>𝟘language",
    "language English<asr_text>𐒠la",
    "language English<asr_text>a_English<asr_text>b",
    "language English<asr_text>a1English<asr_text>b",
    "language English<asr_text>aEnglish<asr_text>b",
    "language English<asr_text>language Englishman<asr_text>b",
    "language English<asr_text>language EnglishChinese<asr_text>b",
]


def build_qwen3_tokenizer(tmp: Path, vocab_dir: Path = VOCAB_DIR) -> Path:
    """``tmp/tokenizer.json``: the real Qwen3 vocabulary with the Qwen3-ASR added tokens."""
    from qwen_asr_edge.export.synthetic import write_tokenizer_files
    from qwen_asr_edge.export.tokenizer import build_tokenizer

    if not (vocab_dir / "vocab.json").is_file():
        raise FileNotFoundError(f"the real Qwen3 vocabulary is missing: {vocab_dir}/vocab.json")
    write_tokenizer_files(tmp, vocab_dir)
    path = tmp / "tokenizer.json"
    build_tokenizer(tmp).save(str(path))
    return path


# Added tokens beyond Qwen's for a variant of the demo tokenizer: overlapping ones (leftmost, then
# longest wins), one of chars of the byte alphabet (decoded as bytes: "éé" gives two U+FFFD), one not.
VARIANT_ADDED = [("<|im_start|>sys", False), ("|>", False), ("éé", False), ("日本", True), ("ab", False)]
VARIANT_TEXTS = [
    "<|im_start|>system<|im_start|>sy<|im_end|>|>", "abab cab éé ééé 日本語 日本", "<|im_start|>sys|>ab",
    "x<|im_end|>>|>|", "aab", "é é", "<|audio_pad|><|audio_pad|>ab",
]  # fmt: skip


def _variant_tokenizer(tmp: Path) -> Path:
    """The demo tokenizer with VARIANT_ADDED appended."""
    from tokenizers import AddedToken

    tok = Tokenizer.from_file(str(DEMO_TOKENIZER))
    for content, special in VARIANT_ADDED:
        tok.add_tokens([AddedToken(content, special=special, normalized=False)])
    path = tmp / "variant.json"
    tok.save(str(path))
    return path


def _random_texts(rng: random.Random, count: int) -> list[str]:
    """Random strings from a pool of scripts, marks, digits, spaces, emoji and markup pieces."""
    ranges = [
        (0x20, 0x7E), (0xA0, 0x17F), (0x300, 0x36F), (0x370, 0x3FF), (0x400, 0x4FF), (0x590, 0x5FF),
        (0x600, 0x6FF), (0x900, 0x97F), (0xE00, 0xE7F), (0x1100, 0x11FF), (0x2000, 0x206F),
        (0x2190, 0x21FF), (0x3000, 0x30FF), (0x4E00, 0x9FFF), (0xAC00, 0xD7A3), (0xFF00, 0xFFEF),
        (0x1F300, 0x1F64F), (0x20000, 0x2A6DF), (0x1D400, 0x1D7FF),
    ]  # fmt: skip
    pieces = [" ", "  ", "\t", "\n", "\r\n", "'s", "'LL", "'", "\u200d", "\ufe0f", "<|im_end|>", "<asr_text>"]
    out = []
    for _ in range(count):
        parts = []
        for _ in range(rng.randint(1, 12)):
            if rng.random() < 0.25:
                parts.append(rng.choice(pieces))
            else:
                lo, hi = rng.choice(ranges)
                parts.append("".join(chr(rng.randint(lo, hi)) for _ in range(rng.randint(1, 6))))
        out.append("".join(parts))
    return out


def _encode_cases(tok: Tokenizer, rng: random.Random, count: int = 300) -> list[dict]:
    texts = [*ENCODE_TEXTS, *VARIANT_TEXTS, *_random_texts(rng, count)]
    return [{"text": t, "ids": tok.encode(t, add_special_tokens=False).ids} for t in texts]


def _decode_cases(tok: Tokenizer, rng: random.Random, count: int = 150) -> list[dict]:
    size = tok.get_vocab_size(with_added_tokens=True)
    vocab = tok.get_vocab(with_added_tokens=False)
    # Tokens of single bytes >= 0x80 (one char of the byte alphabet): pieces of multi-byte characters.
    byte_tokens = sorted(i for t, i in vocab.items() if len(t) == 1 and ord(t) >= 0xA1)
    id_lists = [tok.encode(t, add_special_tokens=False).ids for t in ENCODE_TEXTS]
    for _ in range(count):
        n = rng.randint(1, 30)
        ids = []
        for _ in range(n):
            r = rng.random()
            if r < 0.5:
                ids.append(rng.randrange(size))
            elif r < 0.85:
                ids.append(rng.choice(byte_tokens))
            elif r < 0.95:
                ids.append(rng.randrange(size - 100, size))  # the added tokens are at the end
            else:
                ids.append(rng.choice([size, size + 7, 10**6, 2**31 - 1]))  # out of range
        id_lists.append(ids)
    return [
        {"ids": ids, "skip": skip, "text": tok.decode(ids, skip_special_tokens=skip)}
        for ids in id_lists
        for skip in (True, False)
    ]


def _parse_raws(tok: Tokenizer, rng: random.Random) -> list[str]:
    raws = list(PARSE_RAWS)
    size = tok.get_vocab_size(with_added_tokens=True)
    for _ in range(60):  # decodings of random ids
        ids = [rng.randrange(size) for _ in range(rng.randint(1, 40))]
        raws.append(tok.decode(ids, skip_special_tokens=rng.random() < 0.7))
    for _ in range(300):  # markup pieces glued at random
        raws.append("".join(rng.choice(MARKUP_FRAGMENTS) for _ in range(rng.randint(1, 10))))
    return raws


def _parse_cases(raws: list[str], markups: list[list[str]]) -> list[dict]:
    cases = []
    for k, raw in enumerate(raws):
        for forced in (None, "English", "Chinese") if k % 3 == 0 else (None,):
            for truncated in (False, True):
                m = k % len(markups)
                parsed = parsing.parse_transcript(raw, forced, truncated=truncated, markup=markups[m])
                cases.append(
                    {
                        "raw": raw,
                        "forced": forced,
                        "truncated": truncated,
                        "markup": m,
                        "stripped": parsing.strip_control_tokens(raw, markups[m]),
                        "output": list(parsing.parse_output(raw, forced)),
                        "fixed": parsing.fix_repetitions(raw),
                        "language": parsed.language,
                        "text": parsed.text,
                        "reached_text": parsed.reached_text,
                    }
                )
    return cases


def _join_cases(rng: random.Random) -> list[dict]:
    pool = ["Hello", "world.", " 你好 ", "世界。", "", "  ", "\u3000x\u3000", "Ende.", "「引用」", "ｘ", "𠀀",
            "a\n", "\u00a0b", "\x1cc\x1f", "カタカナ", "한국어", "١٢٣", "😀", "end\u2028"]  # fmt: skip
    cases = [[], [""], ["a", "b"], ["a", "中"], ["中", "a"], ["中", "文"], ["  a  ", "  b  "]]
    cases += [[rng.choice(pool) for _ in range(rng.randint(1, 6))] for _ in range(120)]
    return [{"texts": c, "joined": join_texts(c)} for c in cases]


def _guard_cases(rng: random.Random) -> list[dict]:
    guards = [(32, 5, 80), (4, 2, 1), (8, 3, 10), (1, 2, 5)]
    cases = []

    def add(tokens: list[int], new_from: int = 0) -> None:
        for g, (max_unit, min_repeats, min_tokens) in enumerate(guards):
            loop = RepetitionGuard(max_unit, min_repeats, min_tokens).find(tokens, new_from)
            cases.append(
                {"guard": g, "tokens": tokens, "new_from": new_from, "loop": list(loop) if loop else None,
                 "keep": loop.keep if loop else None}
            )  # fmt: skip

    add([])
    add([5] * 79)
    add([5] * 80)
    add([1, 2] * 40)
    add([1, 2] * 40, new_from=80)
    add([1, 2] * 40, new_from=79)
    for _ in range(150):
        prefix = [rng.randrange(50) for _ in range(rng.randint(0, 30))]
        unit = [rng.randrange(6) for _ in range(rng.randint(1, 40))]
        reps = rng.randint(1, 90)
        body = (unit * reps)[: rng.randint(0, len(unit) * reps)]
        tail = [rng.randrange(6) for _ in range(rng.randint(0, 2))] if rng.random() < 0.3 else []
        tokens = prefix + body + tail
        add(tokens, rng.randint(0, len(tokens)) if rng.random() < 0.3 else 0)
    for _ in range(60):  # random lists of few symbols (short accidental periods)
        add([rng.randrange(2) for _ in range(rng.randint(0, 120))])
    return cases


def _json_cases() -> list[dict]:
    values = [
        {"a": 1, "b": [True, False, None], "c": {"d": "e"}, "z": 0, "y": -0, "x": 12345678901234},
        'esc " \\ / \b \f \n \r \t \x00 \x1f é 中 😀 \ud7ff \ue000 \uffff',
        [[], {}, [[]], {"": ""}, "", 9223372036854775807, -9223372036854775808],
        {"dup": 1, "k": "v"},
    ]
    texts = [json.dumps(v, ensure_ascii=a) for v in values for a in (True, False)]
    texts += [
        '{"dup": 1, "dup": 2}',
        " \t\n\r[1 , 2 ]\n",
        '"\\ud83d\\ude00 \\u00e9\\u4E2D"',
        "[1.5, -0.0, 1e3, 1E-3, 2.5e+10, 123456789012345678901234567890]",
    ]
    return [{"text": t, "value": json.loads(t)} for t in texts]


def write_text_cases(out_dir: Path) -> None:
    """Write ``out_dir/text/``: the tokenizers' plain data and ``cases.json`` (see the module docstring)."""
    text_dir = Path(out_dir) / "text"
    (text_dir / "demo").mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        qwen_json = build_qwen3_tokenizer(Path(tmp))
        section = write_tokenizer_data(qwen_json, text_dir / "tokenizer")
        tok = Tokenizer.from_file(str(qwen_json))
        variant_json = _variant_tokenizer(Path(tmp))
        variant_section = write_tokenizer_data(variant_json, text_dir / "variant" / "tokenizer")
        variant = Tokenizer.from_file(str(variant_json))
    demo_section = write_tokenizer_data(DEMO_TOKENIZER, text_dir / "demo" / "tokenizer")
    demo = Tokenizer.from_file(str(DEMO_TOKENIZER))
    sections = {"": section, "demo": demo_section, "variant": variant_section}
    for name, sec in sections.items():
        text = json.dumps(sec, ensure_ascii=False, indent=1)
        (text_dir / name / "manifest_tokenizer.json").write_text(text, encoding="utf-8")

    rng = random.Random(20261130)
    added = [t["content"] for t in section["added_tokens"] if t["content"] != parsing.ASR_TEXT_TAG]
    markups = [[], added, ["<custom>", "<x>y</x>", "😀"]]
    cases = {
        "encode": _encode_cases(tok, rng),
        "decode": _decode_cases(tok, rng),
        "demo_encode": _encode_cases(demo, random.Random(7)),
        "demo_decode": _decode_cases(demo, random.Random(8)),
        "variant_encode": _encode_cases(variant, random.Random(9), 50),
        "variant_decode": _decode_cases(variant, random.Random(10), 100),
        "markups": markups,
        "parse": _parse_cases(_parse_raws(tok, rng), markups),
        "join": _join_cases(rng),
        "guards": [[32, 5, 80], [4, 2, 1], [8, 3, 10], [1, 2, 5]],
        "guard": _guard_cases(rng),
        "json": _json_cases(),
    }
    (text_dir / "cases.json").write_text(json.dumps(cases, ensure_ascii=False), encoding="utf-8")


if __name__ == "__main__":
    import sys

    write_text_cases(Path(sys.argv[1]))
