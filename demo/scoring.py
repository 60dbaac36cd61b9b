"""The demo model's score card: a bundle transcribes the held-out clips through the runtime, from
their WAV files, as a user would, and is scored per kind of clip, language and unseen voice.

WER and CER are jiwer's over lower-cased words without punctuation, on the clips with speech
(``template``, ``open``, ``multi``; see data.py); a non-speech clip scores whether the transcript
is empty (the official no-speech answer, ``language None<asr_text>``, gives empty text).
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np

SPEECH_KINDS = ("template", "open", "multi")


def _normalizer():
    import jiwer

    return jiwer.Compose(
        [jiwer.ToLowerCase(), jiwer.RemovePunctuation(), jiwer.RemoveMultipleSpaces(), jiwer.Strip()]
    )


def _rates(refs: list[str], hyps: list[str]) -> dict:
    import jiwer

    wer, cer = jiwer.wer(refs, hyps), jiwer.cer(refs, hyps)
    return {"clips": len(refs), "wer": round(wer, 4), "cer": round(cer, 4)}


def voice_group(voice: str) -> str:
    """ "espeak:en-gb-scotland+f3" -> "espeak:en-gb-scotland"; other voices stay as they are."""
    return voice.partition("+")[0]


def score(bundle: Path, records: list[dict]) -> tuple[dict, list]:
    """Score ``bundle`` on held-out ``records`` (data.read_test_set); also returns the results.

    Returns ``{"clips", "wer", "cer", "language_accuracy", "exact", "wer_English", "wer_German",
    "kinds": {kind: {"clips", "wer", "cer", "wer_English", "wer_German"}, "non-speech":
    {"clips", "empty_rate"}}, "voices": {voice: {"clips", "wer", "cer"}}, "voice_groups": ...,
    "samples": [...]}``: the top-level rates are over all clips with speech.

    One clip per call, so that bundles quantized with the legacy dynamic ``MatMulInteger`` op
    (one activation scale over the whole padded batch: a clip's transcript depends on its
    neighbours) score as today's batch-invariant ones do."""
    from qwen_asr_edge.runtime import Transcriber

    transcriber = Transcriber(bundle)
    results = [transcriber.transcribe(r["audio"]) for r in records]
    normalize = _normalizer()
    speech = [i for i, r in enumerate(records) if r["kind"] in SPEECH_KINDS]
    refs = {i: normalize(records[i]["text"]) for i in speech}
    outs = {i: normalize(results[i].text) or "<empty>" for i in speech}

    def rates(pick: list[int]) -> dict:
        return _rates([refs[i] for i in pick], [outs[i] for i in pick]) if pick else {"clips": 0}

    def by_language(pick: list[int]) -> dict:
        out = rates(pick)
        for lang in ("English", "German"):
            mine = [i for i in pick if records[i]["language"] == lang]
            if mine:
                out[f"wer_{lang}"] = rates(mine)["wer"]
        return out

    report = by_language(speech)
    report["clips"] = len(records)

    def share(hits: list[bool]) -> float:
        return round(float(np.mean(hits)), 4)

    report["language_accuracy"] = share([results[i].language == records[i]["language"] for i in speech])
    report["exact"] = share([results[i].text == records[i]["text"] for i in speech])
    report["kinds"] = {k: by_language([i for i in speech if records[i]["kind"] == k]) for k in SPEECH_KINDS}
    silent = [i for i, r in enumerate(records) if r["kind"] == "non-speech"]
    report["kinds"]["non-speech"] = {
        "clips": len(silent),
        "empty_rate": share([results[i].text == "" for i in silent]) if silent else None,
        "said": sorted({results[i].text for i in silent if results[i].text})[:5],
    }
    voices: dict[str, list[int]] = defaultdict(list)
    groups: dict[str, list[int]] = defaultdict(list)
    for i in speech:
        voices[records[i]["voice"]].append(i)
        groups[voice_group(records[i]["voice"])].append(i)
    report["voice_groups"] = {v: rates(pick) for v, pick in sorted(groups.items())}
    report["voices"] = {v: rates(pick) for v, pick in sorted(voices.items())}
    report["samples"] = [
        {"kind": records[i]["kind"], "ref": records[i]["text"], "hyp": results[i].text,
         "language": results[i].language, "voice": records[i]["voice"]}
        for kind in (*SPEECH_KINDS, "non-speech")
        for i in [j for j, r in enumerate(records) if r["kind"] == kind][:3]
    ]  # fmt: skip
    return report, results
