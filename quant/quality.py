"""How far a quantized bundle is from its fp32 bundle, measured on the same audio.

Per graph: cosine similarity and max abs error of the outputs (encoder: audio embeddings;
decoder: logits under teacher forcing on the fp32 model's own greedy tokens), top-1 agreement
of those logits, and whether whole greedy transcripts come out token for token the same.
"""

from __future__ import annotations

import logging
import platform
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from qwen_asr_edge.runtime.bundle import Bundle
from qwen_asr_edge.runtime.options import TranscriptionOptions
from qwen_asr_edge.runtime.transcriber import Transcriber

CAVEAT = (
    "Measured on this bundle's own weights. Random-weight checkpoints (tests, benchmarks) amplify "
    "quantization error, INT4 most: these figures overstate what real Qwen3-ASR weights lose; judge "
    "real checkpoints by word error rate."
)


def generated_audio(seconds=(2.0, 5.0, 9.0), sample_rate: int = 16000) -> list[np.ndarray]:
    """Deterministic stand-ins for speech when no calibration audio is given: chirps, noise, pauses."""
    clips = []
    for i, s in enumerate(seconds):
        t = np.arange(int(s * sample_rate)) / sample_rate
        rng = np.random.default_rng(i)
        chirp = np.sin(2 * np.pi * (150 + 40 * i + 300 * t / s) * t) * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t))
        wav = 0.3 * chirp + 0.05 * rng.standard_normal(t.size)
        wav[int(0.4 * t.size) : int(0.5 * t.size)] *= 0.02
        clips.append(wav.astype(np.float32))
    return clips


def instruction_set(cpuinfo: Path = Path("/proc/cpuinfo")) -> dict:
    """The CPU's SIMD level, which decides onnxruntime's integer kernels (and, for dynamic INT8
    without reduce_range, its results: AVX2 without VNNI sums u8 x s8 pairs in saturating 16 bits)."""
    try:
        line = next(x for x in cpuinfo.read_text().splitlines() if x.startswith(("flags", "Features")))
        flags = set(line.split(":", 1)[1].split())
    except (OSError, StopIteration):
        flags = set()
    has = {
        f: f in flags for f in ("avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni", "amx_int8")
    }
    if has["avx512_vnni"]:
        level = "AVX-512 VNNI"
    elif has["avx_vnni"]:
        level = "AVX-VNNI"
    elif has["avx512f"]:
        level = "AVX-512"
    elif has["avx2"]:
        level = "AVX2"
    else:
        level = (
            "unknown"
            if not flags
            else f"{platform.machine()} ({'dotprod' if 'asimddp' in flags else 'no dotprod'})"
            if platform.machine() in ("aarch64", "arm64")
            else "pre-AVX2"
        )
    return {"machine": platform.machine(), "level": level, **has}


def _cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = a.astype(np.float64), b.astype(np.float64)
    return (a * b).sum(-1) / np.maximum(np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1), 1e-30)


ALIGN_TEXT = "the quick brown fox jumps over the lazy dog"


def compare_aligners(reference: Bundle, candidate: Bundle, audios: list[np.ndarray]) -> dict:
    """Word times of a fixed English text on each clip: how far the candidate's move."""
    from qwen_asr_edge.runtime.aligner import Aligner

    ref, cand = Aligner(reference, providers="cpu"), Aligner(candidate, providers="cpu")
    diffs, same = [], []
    for wav in audios:
        a, b = ref.align(wav, ALIGN_TEXT, "English"), cand.align(wav, ALIGN_TEXT, "English")
        for x, y in zip(a, b, strict=True):
            diffs += [abs(x.start - y.start), abs(x.end - y.end)]
            same.append((x.start, x.end) == (y.start, y.end))
    return {
        "text": ALIGN_TEXT,
        "word_time_abs_diff_mean_s": float(np.mean(diffs)),
        "word_time_abs_diff_max_s": float(np.max(diffs)),
        "identical_words": float(np.mean(same)),
    }


def compare_bundles(reference: Bundle, candidate: Bundle, audios: list[np.ndarray]) -> dict:
    """The quality report: the ASR graphs when the bundle has them, the aligner when it has one."""
    if reference.manifest.model.kind == "aligner":
        report = {
            "reference": reference.manifest.recipe,
            "candidate": candidate.manifest.recipe,
            "clips": len(audios),
            "seconds": round(sum(len(w) for w in audios) / reference.manifest.mel.sample_rate, 2),
            "note": CAVEAT,
        }
    else:
        report = compare(reference, candidate, audios)
    if reference.manifest.aligner is not None:
        report["aligner"] = compare_aligners(reference, candidate, audios)
    report["cpu"] = instruction_set()  # where it was measured: int8 kernels differ by SIMD level
    return report


@contextmanager
def runtime_notes_dropped():
    """Drop the runtime's per-clip notes below ERROR ("reached its cap of 32 tokens", "wrote no transcript")
    while the report transcribes its generated audio: they name no file of the user's and would
    tell a user quantizing a model to raise a cap they never set. A filter on the runtime's logger
    only: records of child loggers (qwen_asr_edge.quant's progress) still flow."""
    runtime = logging.getLogger("qwen_asr_edge")

    def drop(record: logging.LogRecord) -> bool:
        return record.levelno >= logging.ERROR  # errors (a provider that failed) still show

    runtime.addFilter(drop)
    try:
        yield
    finally:
        runtime.removeFilter(drop)


def compare(reference: Bundle, candidate: Bundle, audios: list[np.ndarray], max_tokens: int = 32) -> dict:
    with runtime_notes_dropped():
        return _compare(reference, candidate, audios, max_tokens)


def _compare(reference: Bundle, candidate: Bundle, audios: list[np.ndarray], max_tokens: int) -> dict:
    ref, cand = Transcriber(reference, providers="cpu"), Transcriber(candidate, providers="cpu")
    enc_cos, enc_abs, dec_cos, dec_abs, top1, same, agree = [], [], [], [], [], [], []
    # The decoders' own tokens: no repetition guard cuts one of them short where the other goes on.
    options = TranscriptionOptions(max_new_tokens=max_tokens, repetition_guard=None)
    for wav in audios:
        ref_audio, cand_audio = ref.encode([wav]).row(0), cand.encode([wav]).row(0)
        ref_emb, cand_emb = ref_audio.numpy()[0], cand_audio.numpy()[0]
        enc_cos += list(_cosine(ref_emb, cand_emb))
        enc_abs.append(float(np.abs(ref_emb - cand_emb).max()))

        ref_out = ref.transcribe(wav, options=options).segments[0].tokens
        cand_out = cand.transcribe(wav, options=options).segments[0].tokens
        same.append(ref_out == cand_out)
        pairs = zip(ref_out, cand_out, strict=False)
        prefix = next((i for i, (a, b) in enumerate(pairs) if a != b), min(len(ref_out), len(cand_out)))
        agree.append(prefix / max(len(ref_out), 1))

        # Both decoders on fp32's embeddings and fp32's own greedy tokens: the decoder's error alone.
        prompt = ref.prompt_ids(int(ref_audio.lengths[0]))
        forced = ref_out[:-1] if ref_out and ref_out[-1] in reference.manifest.tokens.eos else ref_out
        ref_logits = ref.forced_logits(prompt, ref_audio, forced)
        cand_logits = cand.forced_logits(prompt, ref_audio, forced)
        dec_cos += list(_cosine(ref_logits, cand_logits))
        dec_abs.append(float(np.abs(ref_logits - cand_logits).max()))
        top1 += list(ref_logits.argmax(-1) == cand_logits.argmax(-1))

    return {
        "reference": reference.manifest.recipe,
        "candidate": candidate.manifest.recipe,
        "clips": len(audios),
        "seconds": round(sum(len(w) for w in audios) / reference.manifest.mel.sample_rate, 2),
        "encoder": {
            "cosine_mean": float(np.mean(enc_cos)),
            "cosine_min": float(np.min(enc_cos)),
            "max_abs": float(np.max(enc_abs)),
        },
        "decoder": {
            "logits_cosine_mean": float(np.mean(dec_cos)),
            "logits_cosine_min": float(np.min(dec_cos)),
            "logits_max_abs": float(np.max(dec_abs)),
            "top1_agreement": float(np.mean(top1)),
            "steps": len(top1),
        },
        "transcripts": {
            "identical": float(np.mean(same)),
            "greedy_prefix_agreement": float(np.mean(agree)),
            "max_new_tokens": max_tokens,
        },
        "note": CAVEAT,
    }


def table(report: dict) -> str:
    rows = []
    if "encoder" in report:
        e, d, t = report["encoder"], report["decoder"], report["transcripts"]
        rows += [
            (
                "encoder",
                "audio embeddings cosine mean / min",
                f"{e['cosine_mean']:.5f} / {e['cosine_min']:.5f}",
            ),
            ("encoder", "max abs error", f"{e['max_abs']:.3g}"),
            (
                "decoder",
                "logits cosine mean / min (teacher forced)",
                f"{d['logits_cosine_mean']:.5f} / {d['logits_cosine_min']:.5f}",
            ),
            ("decoder", "logits max abs error", f"{d['logits_max_abs']:.3g}"),
            ("decoder", f"top-1 agreement over {d['steps']} steps", f"{d['top1_agreement']:.1%}"),
            ("transcripts", "identical greedy transcripts", f"{t['identical']:.0%}"),
            ("transcripts", "greedy prefix agreement", f"{t['greedy_prefix_agreement']:.1%}"),
        ]
    if "aligner" in report:
        a = report["aligner"]
        rows += [
            (
                "aligner",
                "word time abs diff mean / max (s)",
                f"{a['word_time_abs_diff_mean_s']:.3f} / {a['word_time_abs_diff_max_s']:.3f}",
            ),
            ("aligner", "identical word times", f"{a['identical_words']:.0%}"),
        ]
    width = max(len(r[1]) for r in rows)
    lines = [
        f"{report['candidate']} vs {report['reference']} on {report['clips']} clips ({report['seconds']} s)"
    ]
    lines += [f"  {g:<12}{m:<{width}}  {v}" for g, m, v in rows]
    lines.append(f"  note: {report['note']}")
    return "\n".join(lines)
