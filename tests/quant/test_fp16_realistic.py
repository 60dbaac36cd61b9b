"""fp16 on realistic weights (massive activations in the thousands, attention sinks, logits near
30: export/synthetic.py): nothing overflows, and the tokens are fp32's where fp32 decides clearly.
The encoder's official fp16 clamp is what keeps a residual channel past 65504 finite."""

from __future__ import annotations

import numpy as np
import pytest

from qwen_asr_edge.quant import graphs
from qwen_asr_edge.quant.quantize import quantize_bundle
from qwen_asr_edge.quant.recipes import get_recipe
from qwen_asr_edge.runtime import Transcriber, TranscriptionOptions
from tests.support import noise_clip, record_error

pytest.importorskip("torch")


@pytest.mark.slow  # exports and converts a bundle
def test_fp16_on_realistic_weights_is_finite_and_keeps_fp32_top1(bundles, tmp_path):
    """Teacher-forced on fp32's greedy tokens: every fp16 encoder output and logit is finite, and
    fp16's top-1 is fp32's at every step whose top-two margin exceeds fp16's largest logit error
    twice over (a nearer tie may break either way); the overall agreement is reported."""
    fp16_path, _ = quantize_bundle(bundles["realistic-full"], tmp_path / "fp16", get_recipe("fp16"))
    fp32, fp16 = Transcriber(bundles["realistic-full"]), Transcriber(fp16_path)
    options = TranscriptionOptions(max_new_tokens=24)
    steps, agreed, clear, clear_agreed, worst = 0, 0, 0, 0, 0.0
    for seconds in (1.0, 4.0, 12.0, 30.0):
        wav = noise_clip(seconds, seed=60)
        tokens = fp32.transcribe(wav, options=options).segments[0].tokens
        want_audio, got_audio = fp32.encode([wav]), fp16.encode([wav])
        got_embeds = got_audio.numpy()
        assert np.isfinite(got_embeds).all(), seconds
        scale = np.abs(want_audio.numpy()).max()
        record_error(
            "fp16 realistic encoder max abs / max |ref|",
            np.abs(got_embeds - want_audio.numpy()).max() / scale,
        )
        prompt = fp32.prompt_ids(int(want_audio.lengths[0]))
        want = fp32.forced_logits(prompt, want_audio.row(0), tokens[:-1])
        got = fp16.forced_logits(prompt, got_audio.row(0), tokens[:-1])
        assert np.isfinite(got).all(), seconds
        error = float(np.abs(got - want).max())
        worst = max(worst, error)
        top2 = np.sort(want, axis=-1)[:, -2:]
        margin_clear = (top2[:, 1] - top2[:, 0]) > 2 * error
        same = got.argmax(-1) == want.argmax(-1)
        steps, agreed = steps + len(same), agreed + int(same.sum())
        clear, clear_agreed = clear + int(margin_clear.sum()), clear_agreed + int(same[margin_clear].sum())
        assert np.isfinite(fp16.transcribe(wav, options=options).segments[0].tokens).all()
    print(f"fp16 on realistic weights: top-1 {agreed}/{steps}, clear steps {clear_agreed}/{clear}, "
          f"max logit error {worst:.3g} (top logits ~{want.max():.0f})")  # fmt: skip
    record_error("fp16 realistic logits max abs", worst)
    record_error("fp16 realistic top-1 disagreement", 1 - agreed / steps)
    assert clear >= steps // 2 and clear_agreed == clear
    assert agreed / steps >= 0.9


@pytest.mark.slow  # exports a bundle
def test_fp16_encoder_stays_finite_past_the_fp16_range(vocab_dir, tmp_path, monkeypatch):
    """An encoder whose residual outlier channel passes fp16's 65504 (70000 per layer): the fp16
    encoder, clamped per layer as the official one is, stays finite and close to fp32.
    Measured, not yet explained: the same graph without the clamp also gives finite outputs on
    onnxruntime's CPU provider, although its last residual Add is inf on that channel (exposed as
    an output); so this guards the result, not the clamp alone."""
    import onnxruntime as ort

    from qwen_asr_edge.export import synthetic
    from qwen_asr_edge.export.write import export_bundle

    monkeypatch.setattr(synthetic, "ENCODER_OUTLIER", 70000.0)
    checkpoint = synthetic.write_checkpoint(tmp_path / "ck", seed=11, realistic=True, vocab_dir=vocab_dir)
    bundle = export_bundle(str(checkpoint), tmp_path / "fp32", encoder_attention="full")
    graphs.quantize_graph(bundle / "encoder.onnx", tmp_path / "fp16.onnx", "encoder", get_recipe("fp16"))
    feats, lens = Transcriber(bundle).features([noise_clip(3.0, seed=61)])
    feeds = {"input_features": feats.astype(np.float32), "feature_lens": lens.astype(np.int64)}

    def run(path):
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return session.run(None, feeds)[0]

    want, got = run(bundle / "encoder.onnx"), run(tmp_path / "fp16.onnx")
    assert np.isfinite(want).all() and np.isfinite(got).all()
    error = np.abs(got - want).max() / np.abs(want).max()
    print(f"fp16 encoder, outlier channel past 65504: max error / max |fp32| {error:.3g}")
    assert error < 1e-2
