"""Greedy decoding of a right-padded batch with an IO-bound, pre-allocated KV cache.

Per batch: one prefill call over the right-padded prompts (the audio embeddings are bound
straight from the encoder's device output), then one call per token in which only the new token
ids and two small int32 vectors go in and only the argmax token ids come back to the host;
logits and the cache stay where the session runs. Each row keeps its own length
(``seqlens_k``, the GroupQueryAttention convention that both decoder graphs follow, see
export/modules/decoder.py) and stops on its own (stop id or token cap); finished rows keep
feeding a stop id until every row is done.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from .bundle import Manifest
from .kv_cache import KvCache
from .providers import Device, import_onnxruntime


@dataclass(frozen=True)
class Generation:
    tokens: list[list[int]]  # per row, generated ids up to and including the stop id
    prompt_len: int  # the longest prompt
    prefill_seconds: float = 0.0
    step_seconds: list[float] = field(default_factory=list)  # one per decode call


def right_pad(prompts: list[np.ndarray], pad_id: int) -> tuple[np.ndarray, np.ndarray]:
    """(B, longest) ids with pads after each prompt, and each prompt's length."""
    lens = np.array([len(p) for p in prompts], dtype=np.int64)
    ids = np.full((len(prompts), int(lens.max())), pad_id, dtype=np.int64)
    for i, p in enumerate(prompts):
        ids[i, : len(p)] = p
    return ids, lens


def length_feeds(lens: np.ndarray) -> dict[str, np.ndarray]:
    """``seqlens_k`` and ``total_sequence_length`` for rows whose lengths so far are ``lens``."""
    return {
        "seqlens_k": (lens - 1).astype(np.int32),
        "total_sequence_length": np.array(lens.max(), dtype=np.int32),
    }


def prefill_feeds(
    manifest: Manifest, ids: np.ndarray, audio_embeds: np.ndarray, audio_lens: np.ndarray, capacity: int
) -> dict[str, np.ndarray]:
    """Inputs for a plain ``session.run`` prefill of one unpadded prompt with empty caches of
    ``capacity`` rows. For tests, calibration and quality reports; decoding binds instead."""
    kv = manifest.kv_cache
    feeds = {
        "input_ids": ids[None],
        **length_feeds(np.array([len(ids)])),
        "audio_embeds": audio_embeds,
        "audio_embed_lens": np.asarray(audio_lens, dtype=np.int64).reshape(1),
    }
    for layer in range(kv.num_layers):
        for name in kv.names(layer)[:2]:
            feeds[name] = np.zeros((1, kv.num_kv_heads, capacity, kv.head_dim), dtype=np.dtype(kv.dtype))
    return feeds


class GreedyDecoder:
    def __init__(self, session, device: Device, manifest: Manifest):
        self.session, self.device, self.manifest = session, device, manifest
        self.ort = import_onnxruntime()
        self.stop_ids = np.array(manifest.tokens.eos, dtype=np.int64)
        self.pad_id = manifest.tokens.endoftext

    def generate(
        self,
        prompts: list[np.ndarray],
        audio_embeds,  # OrtValue (B, A, H) on the session's device, from the encoder
        audio_lens: np.ndarray,  # (B,) int64
        max_new_tokens: list[int],
        stop: bool = True,
    ) -> Generation:
        """``stop=False`` decodes every row to its cap (benchmarks)."""
        batch = len(prompts)
        ids, lens = right_pad(prompts, self.pad_id)
        prompt_len = ids.shape[1]
        capacity = prompt_len + max(max_new_tokens)
        zeroed = self.manifest.decoder.attention != "gqa"
        cache = KvCache(self.manifest.kv_cache, batch, capacity, self.device, zeroed)

        io = self.session.io_binding()
        cache.bind(io)
        vocab = self.manifest.model.vocab_size
        logits = self.ort.OrtValue.ortvalue_from_shape_and_type(
            (batch, 1, vocab), np.float32, self.device.ort_device, self.device.device_id
        )
        next_token = self.ort.OrtValue.ortvalue_from_shape_and_type((batch, 1), np.int64)  # on the host
        io.bind_ortvalue_output("logits", logits)
        io.bind_ortvalue_output("next_token", next_token)

        io.bind_cpu_input("input_ids", ids)
        for name, value in length_feeds(lens).items():
            io.bind_cpu_input(name, value)
        io.bind_ortvalue_input("audio_embeds", audio_embeds)
        io.bind_cpu_input("audio_embed_lens", np.ascontiguousarray(audio_lens, dtype=np.int64))
        start = time.perf_counter()
        self.session.run_with_iobinding(io)
        prefill_seconds = time.perf_counter() - start
        steps: list[float] = []

        # Decode steps read no audio: a (B, 1, H) zero tensor with length 0 satisfies the graph.
        no_audio = np.zeros((batch, 1, self.manifest.model.hidden_size), dtype=np.float32)
        io.bind_ortvalue_input(
            "audio_embeds",
            self.ort.OrtValue.ortvalue_from_numpy(no_audio, self.device.ort_device, self.device.device_id),
        )
        io.bind_cpu_input("audio_embed_lens", np.zeros(batch, dtype=np.int64))

        caps = np.asarray(max_new_tokens, dtype=np.int64)
        out: list[list[int]] = [[] for _ in range(batch)]
        counts = np.zeros(batch, dtype=np.int64)
        done = caps <= 0
        while True:
            token = next_token.numpy()[:, 0].copy()
            for row in np.flatnonzero(~done):
                out[row].append(int(token[row]))
            counts += ~done
            done |= (counts >= caps) | (stop & np.isin(token, self.stop_ids))
            if done.all():
                break
            token[done] = self.stop_ids[0]
            lens += 1
            io.bind_cpu_input("input_ids", token[:, None])
            for name, value in length_feeds(lens).items():
                io.bind_cpu_input(name, value)
            start = time.perf_counter()
            self.session.run_with_iobinding(io)
            steps.append(time.perf_counter() - start)
        return Generation(out, prompt_len, prefill_seconds, steps)
