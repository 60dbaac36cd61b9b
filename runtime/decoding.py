"""Greedy decoding of a right-padded batch with an IO-bound, pre-allocated KV cache.

Per batch: one prefill call over the right-padded prompts (the audio embeddings are bound
straight from the encoder's device output), then one call per token in which only the new token
ids and two small int32 vectors go in and only the argmax token ids come back to the host;
logits and the cache stay where the session runs. Each row keeps its own length
(``seqlens_k``, the GroupQueryAttention convention that both decoder graphs follow, see
export/modules/decoder.py) and stops on its own (stop id, token cap, or a loop that the
repetition guard sees in its tail, history included); finished rows keep feeding a stop id until
every row is done.

The logits are read on the host only when asked for: per step for token log-probabilities, and
once per row at the position where the model names the language.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from .bundle import Manifest
from .kv_cache import KvCache
from .providers import Device, import_onnxruntime
from .repetition import RepetitionGuard


@dataclass(frozen=True)
class LanguageProbe:
    """Where and among what the model names the language: after it has generated ``prefix``
    (the ids of "language"), the next token starts one of the names; ``first_ids[k]`` is the
    first id of ``names[k]`` (" English", ..., " None")."""

    prefix: tuple[int, ...]
    names: tuple[str, ...]
    first_ids: np.ndarray  # (N,) int64

    def probabilities(self, logits: np.ndarray) -> dict[str, float]:
        """(V,) logits -> {name: probability}, a softmax over the distinct first ids (names that
        share a first id share its probability)."""
        ids, where = np.unique(self.first_ids, return_inverse=True)
        x = logits[ids].astype(np.float64)
        p = np.exp(x - x.max())
        p /= p.sum()
        return {name: float(p[k]) for name, k in zip(self.names, where, strict=True)}


@dataclass(frozen=True)
class Generation:
    """What ``GreedyDecoder.generate`` returns.

    Attributes:
        tokens: Per row, the generated ids up to and including the stop id; for a row the
            repetition guard stopped, up to the end of the loop's first unit (no stop id).
        prompt_len: The longest prompt, in tokens.
        log_probs: Per row, each generated token's natural-log probability (when asked for).
        languages: Per row, {name: probability} at the language position, or None where the row
            never reached it (forced language, no probe, or another first token).
        prefill_seconds: The prefill call.
        step_seconds: One entry per decode call.
        finish_reasons: Per row, why it ended (OpenAI's names): "stop" (a stop id), "length"
            (its token cap; always with ``stop=False``) or "repetition" (the guard found a loop).
    """

    tokens: list[list[int]]
    prompt_len: int
    log_probs: list[list[float]] | None = None
    languages: list[dict[str, float] | None] = field(default_factory=list)
    prefill_seconds: float = 0.0
    step_seconds: list[float] = field(default_factory=list)
    finish_reasons: list[str] = field(default_factory=list)


class _Binding(NamedTuple):
    io: object  # onnxruntime IOBinding
    cache: KvCache
    logits: object  # OrtValue (B, 1, V) on the session's device
    next_token: object  # OrtValue (B, 1) int64 on the host


class KeptPrefix:
    """One row's KV cache kept between ``generate`` calls, for prompts that share their start
    (a stream's steps: the system turn and the audio of completed encoder windows stay, the open
    window and the text after it change).

    It remembers the prompt ids whose keys and values it holds and the audio embedding of each
    audio placeholder among them; the next prompt is computed from the first position where its
    ids or audio rows differ (compared exactly, so reuse never changes a result beyond the
    round-off of a shorter prefill), on top of the cache (GroupQueryAttention's continued prompt,
    see export/modules/decoder.py). Not thread-safe: one per stream.
    """

    def __init__(self, audio_pad: int):
        self.audio_pad = audio_pad
        self.ids = np.zeros(0, dtype=np.int64)
        self.audio = np.zeros((0, 0), dtype=np.float32)  # (placeholders among ids, H)
        self.bound: _Binding | None = None
        self.reserve = 0  # positions to allocate at least (what the caller expects to need)
        self.reused = 0  # positions the last call did not compute

    def reset(self) -> None:
        """Forget what the cache holds (its buffers stay allocated)."""
        self.ids = self.ids[:0]
        self.audio = self.audio[:0]

    def continuation(self, decoder: GreedyDecoder, prompt: np.ndarray, audio, capacity: int):
        """(binding, ids (1, S), audio (1, A', H), audio lens (1,)) of the positions to compute."""
        audio = np.zeros((0, 0), np.float32) if audio is None else np.asarray(audio, np.float32)[0]
        is_audio = prompt == self.audio_pad
        n_audio = int(is_audio.sum())
        audio = audio[:n_audio]
        if self.bound is None or self.bound.cache.capacity < capacity:
            # Twice the need, so a growing stream re-allocates (and recomputes from position 0)
            # a few times in its first utterance, not at every step.
            limit = decoder.manifest.kv_cache.max_positions
            self.bound = decoder._bind(1, min(limit, max(2 * capacity, self.reserve)))
            self.reset()
        # The longest start whose ids and audio rows both match; at least the last position is
        # computed, for its logits.
        same = min(len(self.ids), len(prompt) - 1)
        differs = np.flatnonzero(self.ids[:same] != prompt[:same])
        same = int(differs[0]) if differs.size else same
        held = int(is_audio[:same].sum())
        rows = min(held, len(self.audio))
        if rows and audio.shape[1] == self.audio.shape[1]:
            unequal = np.flatnonzero((self.audio[:rows] != audio[:rows]).any(axis=1))
        else:
            unequal = np.arange(rows)
        if unequal.size:  # cut before the first audio row that changed
            same = int(np.flatnonzero(is_audio)[unequal[0]])
        first_audio = int(is_audio[:same].sum())
        self.ids, self.audio, self.reused = prompt.copy(), audio.copy(), same
        new_audio = audio[first_audio:][None]
        if not new_audio.shape[1]:  # text only from here: _prefill binds an empty audio input
            return self.bound, prompt[same:][None], None, None
        return self.bound, prompt[same:][None], new_audio, np.array([new_audio.shape[1]], np.int64)


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
    ``capacity`` rows: what onnxruntime's GPTQ calibration reads. Decoding binds instead."""
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


def _log_softmax_at(logits: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """(R, V) logits, (R,) ids -> (R,) log p(id), in float64."""
    x = logits.astype(np.float64)
    top = x.max(axis=-1, keepdims=True)
    lse = top[:, 0] + np.log(np.exp(x - top).sum(axis=-1))
    return x[np.arange(len(ids)), ids] - lse


def _cut_loop(guard: RepetitionGuard, said: list[int], out: list[int], scores: list[float]) -> bool:
    """Show the guard a row's newest token (``out[-1]``; ``said`` is its history + ``out``). On a
    loop, cut ``out`` and its ``scores`` after the loop's first unit (as the official repair keeps
    one copy) and return True."""
    said.append(out[-1])
    history = len(said) - len(out)
    loop = guard.find(said, history)
    if loop is None:
        return False
    keep = max(loop.keep - history, 0)  # a loop that began in the history keeps no new tokens
    del out[keep:], scores[keep:]
    return True


class GreedyDecoder:
    """Greedy decoding on one decoder session (see the module docstring)."""

    def __init__(self, session, device: Device, manifest: Manifest):
        self.session, self.device, self.manifest = session, device, manifest
        self.ort = import_onnxruntime()
        self.stop_ids = np.array(manifest.tokens.eos, dtype=np.int64)
        self.pad_id = manifest.tokens.endoftext

    def _bind(self, batch: int, capacity: int) -> _Binding:
        """A fresh cache of ``capacity`` rows bound as past and present, with the outputs bound."""
        zeroed = self.manifest.decoder.attention != "gqa"
        cache = KvCache(self.manifest.kv_cache, batch, capacity, self.device, zeroed)
        io = self.session.io_binding()
        cache.bind(io)
        logits = self.ort.OrtValue.ortvalue_from_shape_and_type(
            (batch, 1, self.manifest.model.vocab_size),
            np.float32,
            self.device.ort_device,
            self.device.device_id,
        )
        next_token = self.ort.OrtValue.ortvalue_from_shape_and_type((batch, 1), np.int64)  # on the host
        io.bind_ortvalue_output("logits", logits)
        io.bind_ortvalue_output("next_token", next_token)
        return _Binding(io, cache, logits, next_token)

    def _prefill(
        self,
        prompts: list[np.ndarray],
        audio_embeds,
        audio_lens: np.ndarray,
        capacity: int,
        kept: KeptPrefix | None = None,
    ):
        """Run the prefill on a fresh cache of ``capacity`` rows, or with ``kept`` (one row) on
        its cache from the first position it does not hold; returns (binding, cache, logits,
        next_token, lens, seconds). The cache is returned to keep it alive."""
        batch = len(prompts)
        hidden = self.manifest.model.hidden_size
        if kept is not None:
            bound, ids, audio_embeds, audio_lens = kept.continuation(self, prompts[0], audio_embeds, capacity)
            lens = np.array([len(prompts[0])], dtype=np.int64)
        else:
            bound = self._bind(batch, capacity)
            ids, lens = right_pad(prompts, self.pad_id)
        io, cache, logits, next_token = bound
        io.bind_cpu_input("input_ids", ids)
        for name, value in length_feeds(lens).items():
            io.bind_cpu_input(name, value)
        if audio_embeds is None:  # a text-only prompt: a (B, 1, H) zero tensor of length 0
            audio_embeds = np.zeros((batch, 1, hidden), dtype=np.float32)
            audio_lens = np.zeros(batch, dtype=np.int64)
        if isinstance(audio_embeds, np.ndarray):
            io.bind_cpu_input("audio_embeds", np.ascontiguousarray(audio_embeds, dtype=np.float32))
        else:
            io.bind_ortvalue_input("audio_embeds", audio_embeds)
        io.bind_cpu_input("audio_embed_lens", np.ascontiguousarray(audio_lens, dtype=np.int64))
        start = time.perf_counter()
        self.session.run_with_iobinding(io)
        seconds = time.perf_counter() - start
        # Decode steps read no audio: a (B, 1, H) zero tensor with length 0 satisfies the graph.
        no_audio = np.zeros((batch, 1, hidden), dtype=np.float32)
        io.bind_ortvalue_input(
            "audio_embeds",
            self.ort.OrtValue.ortvalue_from_numpy(no_audio, self.device.ort_device, self.device.device_id),
        )
        io.bind_cpu_input("audio_embed_lens", np.zeros(batch, dtype=np.int64))
        return io, cache, logits, next_token, lens, seconds

    def _step(self, io, token: np.ndarray, lens: np.ndarray) -> float:
        io.bind_cpu_input("input_ids", token[:, None])
        for name, value in length_feeds(lens).items():
            io.bind_cpu_input(name, value)
        start = time.perf_counter()
        self.session.run_with_iobinding(io)
        return time.perf_counter() - start

    def generate(
        self,
        prompts: list[np.ndarray],
        audio_embeds,
        audio_lens: np.ndarray | None,
        max_new_tokens: list[int],
        stop: bool = True,
        log_probs: bool = False,
        language: LanguageProbe | None = None,
        kept: KeptPrefix | None = None,
        repetition_guard: RepetitionGuard | None = None,
        history: list[list[int]] | None = None,
    ) -> Generation:
        """Greedy tokens for a batch of prompts.

        Args:
            prompts: B prompts of int64 ids, each with its audio placeholders expanded.
            audio_embeds: (B, A, H) float32, an OrtValue on the session's device (the encoder's
                output) or a numpy array; ``None`` for text-only prompts.
            audio_lens: (B,) int64 valid audio rows per prompt (``None`` with no audio).
            max_new_tokens: Per row, the cap on generated tokens (stop id included).
            stop: False decodes every row to its cap (benchmarks: equal work), guard or not.
            log_probs: Also return each token's log-probability (one log-softmax per step).
            language: Read the language probabilities where the model names the language.
            kept: One prompt only: decode on this KV cache, computing only the positions after
                the longest start the prompt shares with the one it holds (streaming steps).
            repetition_guard: Stop a row as soon as its tail is a loop (repetition.py) and keep
                its tokens up to the end of the loop's first unit; None decodes loops to the cap.
            history: Per row, ids already said before this generation (a streaming prefix's
                text), looked at with the generated ones: a loop may begin in it, but only new
                tokens continue it. Used by the guard only.

        Returns:
            A Generation.

        Raises:
            ValueError: the prompt plus the cap exceeds the model's maximum positions, or
                ``history`` has not one entry per prompt.
        """
        batch = len(prompts)
        if history is not None and len(history) != batch:
            raise ValueError(f"history has {len(history)} rows for {batch} prompts")
        guard = repetition_guard if stop else None  # ignore_stop is equal work: no row may end early
        said = [list(h) for h in history or [[]] * batch] if guard is not None else []  # history + new
        looped = np.zeros(batch, dtype=bool)
        capacity = max(len(p) for p in prompts) + max(max_new_tokens)
        io, _cache, logits, next_token, lens, prefill_seconds = self._prefill(
            prompts, audio_embeds, audio_lens, capacity, kept
        )
        prompt_len = int(lens.max())
        steps: list[float] = []
        caps = np.asarray(max_new_tokens, dtype=np.int64)
        out: list[list[int]] = [[] for _ in range(batch)]
        scores: list[list[float]] = [[] for _ in range(batch)]
        found: list[dict[str, float] | None] = [None] * batch
        counts = np.zeros(batch, dtype=np.int64)
        done = caps <= 0
        while True:
            token = next_token.numpy()[:, 0].copy()
            active = np.flatnonzero(~done)
            # Every row starts generating at the same step, so the language name starts at the same
            # step in all of them: iteration len(prefix), where the rows that said "language" name it.
            naming = []
            if language is not None and len(steps) == len(language.prefix):
                naming = [r for r in active if tuple(out[r]) == language.prefix]
            if log_probs or naming:
                host_logits = logits.numpy()[:, 0]  # a view on the CPU, a copy from a GPU
                if log_probs:
                    for row, lp in zip(
                        active, _log_softmax_at(host_logits[active], token[active]), strict=True
                    ):
                        scores[row].append(float(lp))
                for row in naming:
                    found[row] = language.probabilities(host_logits[row])
            for row in active:
                out[row].append(int(token[row]))
            counts += ~done
            stopped = stop & np.isin(token, self.stop_ids)
            if guard is not None:
                for row in active:
                    looped[row] = not stopped[row] and _cut_loop(guard, said[row], out[row], scores[row])
            done |= (counts >= caps) | stopped | looped
            if done.all():
                break
            token[done] = self.stop_ids[0]
            lens += 1
            steps.append(self._step(io, token, lens))
        stop_ids = set(self.stop_ids.tolist())
        reasons = [
            "repetition" if looped[r] else "stop" if stop and out[r] and out[r][-1] in stop_ids else "length"
            for r in range(batch)
        ]
        return Generation(
            out, prompt_len, scores if log_probs else None, found, prefill_seconds, steps, reasons
        )

    def forced_logits(
        self, prompt: np.ndarray, audio_embeds, audio_lens: np.ndarray | None, tokens: list[int]
    ) -> np.ndarray:
        """Teacher forcing: (len(tokens) + 1, V) float32 logits after the prompt and after each
        of ``tokens`` fed in turn (one row; the same binding and cache as ``generate``)."""
        io, _cache, logits, _, lens, _ = self._prefill(
            [prompt], audio_embeds, audio_lens, len(prompt) + len(tokens)
        )
        out = [logits.numpy()[0, 0].copy()]
        for token in tokens:
            lens += 1
            self._step(io, np.array([token], dtype=np.int64), lens)
            out.append(logits.numpy()[0, 0].copy())
        return np.stack(out)
