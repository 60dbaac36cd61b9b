"""The streaming reference mode against the official streaming code, step by step.

The official ``streaming_transcribe`` / ``finish_streaming_transcribe`` run only on vLLM; here
they run as written, on a stand-in for vLLM's ``LLM.generate`` that does what vLLM does with the
request (the processor on the prompt text and the audio, greedy generation, the new tokens
decoded without special tokens) with the official transformers model. So the official code
chooses every step's audio and prefix itself, and each step's prompt ids and generated tokens
are compared with ours.
"""

from __future__ import annotations

import copy
from types import SimpleNamespace

import numpy as np
import pytest
import soundfile as sf

from qwen_asr_edge.runtime import StreamingOptions, Transcriber
from tests.support import PARITY_TOKENS, SR, Lazy

torch = pytest.importorskip("torch")
pytest.importorskip("qwen_asr")

CONTEXT = "Qwen speech recognition glossary: alpha, beta, gamma."


class OfficialStreaming:
    """The official streaming methods on a stand-in vLLM engine that records each request."""

    def __init__(self, asr, path):
        from transformers import AutoProcessor

        self.steps: list[tuple[list[int], list[int]]] = []
        self.engine = copy.copy(asr)
        self.engine.backend = "vllm"
        self.engine.model = SimpleNamespace(generate=self._generate)
        # The prefix is model output re-tokenized, which random weights fill with mixed-script
        # words that the official loader's Mistral-regex swap (README, "Where we differ") splits
        # otherwise than the Qwen2 regex ("...salproductosmailto": 2 tokens vs 1). Given the
        # Qwen2 regex, ours (as the official package loaded by hub id is), they must be equal.
        self.engine.processor = AutoProcessor.from_pretrained(str(path), fix_mistral_regex=False)
        self._asr = asr

    def _generate(self, requests, sampling_params=None, use_tqdm=False):
        (request,) = requests
        processor = self.engine.processor
        inputs = processor(
            text=[request["prompt"]],
            audio=request["multi_modal_data"]["audio"],
            return_tensors="pt",
            padding=True,
        )
        with torch.no_grad():
            out = self._asr.model.generate(**inputs, max_new_tokens=PARITY_TOKENS).sequences[0]
        new = out[inputs["input_ids"].shape[1] :].tolist()
        stop = processor.tokenizer.convert_tokens_to_ids(["<|im_end|>", "<|endoftext|>"])
        for i, t in enumerate(new):
            if t in stop:
                new = new[: i + 1]
                break
        self.steps.append((inputs["input_ids"][0].tolist(), new))
        text = processor.tokenizer.decode(new, skip_special_tokens=True)
        return [SimpleNamespace(outputs=[SimpleNamespace(text=text)])]

    def run(self, blocks: list[np.ndarray], context: str, language: str | None):
        state = self.engine.init_streaming_state(context=context, language=language)
        for block in blocks:
            self.engine.streaming_transcribe(block, state)
        self.engine.finish_streaming_transcribe(state)
        return state


@pytest.fixture(scope="module")
def transcribers(bundles):
    return Lazy({name: lambda name=name: Transcriber(bundles[name]) for name in bundles})


@pytest.mark.parametrize("context,language", [("", None), (CONTEXT, "English")])
def test_reference_mode_steps_are_the_official_streaming_steps(
    official, checkpoints, transcribers, speech_files, monkeypatch, context, language
):
    wav = np.concatenate([sf.read(f, dtype="float32")[0] for f in speech_files[:3]])  # 15.4 s
    blocks = np.array_split(wav, 11)
    reference = OfficialStreaming(official(checkpoints["untied"]), checkpoints["untied"])
    state = reference.run(blocks, context, language)

    tr = transcribers["untied-windowed"]
    ours: list[tuple[list[int], list[int]]] = []
    generate = tr._greedy.generate

    def recording(prompts, *args, **kwargs):
        out = generate(prompts, *args, **kwargs)
        ours.append((prompts[0].tolist(), out.tokens[0]))
        return out

    monkeypatch.setattr(tr._greedy, "generate", recording)
    # The official algorithm exactly: no commits before the end, one utterance, no guard.
    options = StreamingOptions(
        mode="reference",
        stable_steps=None,
        max_utterance_seconds=None,
        max_new_tokens=PARITY_TOKENS,
        repetition_guard=None,
    )
    session = tr.stream(language=language, context=context, options=options)
    final = list(session.updates(blocks, SR))[-1]

    assert len(ours) == len(reference.steps) == 8  # 7 steps of 2 s and the 1.4 s tail
    for step, (want, got) in enumerate(zip(reference.steps, ours, strict=True)):
        assert got[0] == want[0], f"step {step}: prompt ids"
        assert got[1] == want[1], f"step {step}: tokens"
    # The same answer; its text is then what our parser makes of it (which, unlike the official
    # parse_asr_output, gives no text for output that never reached <asr_text>: README).
    assert session._raw == state._raw_decoded
    assert final.committed == session._parsed(state._raw_decoded)
