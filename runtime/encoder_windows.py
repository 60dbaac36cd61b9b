"""The windowed encoder on a growing clip, encoding only the windows whose features changed.

With windowed attention (the default bundles: 8 s windows, ``n_window_infer`` 800 frames) the
encoder's output for one window depends on that window's log-mel frames alone: the convolutions
run per 1 s chunk and attention stays inside the window. So when a clip grows (a live stream),
the embeddings of a window whose frames are unchanged are the ones computed before, and only the
open window, and any window whose frames did change, need the encoder again.

Frames do change after the fact, and this class compares them rather than assuming otherwise:
the last frame before the end of the audio is computed on reflect padding until the next samples
arrive, and every frame depends on the clip's loudest frame through the log-mel floor (clip max
- 8), so a louder sound later can lift the floor of earlier quiet frames. Reuse is therefore
exact: the result equals encoding the whole clip, up to the round-off of a shorter encoder call.
"""

from __future__ import annotations

import numpy as np


class EncoderWindows:
    """Audio embeddings of one growing clip (``encode``), windows kept between calls.

    Args:
        transcriber: Its encoder graph must have windowed attention.

    Raises:
        ValueError: the bundle's encoder attends over the whole clip (no window is ever final).
    """

    def __init__(self, transcriber):
        spec = transcriber.bundle.manifest.encoder
        if spec.attention != "windowed":
            raise ValueError(f"the encoder attends over the {spec.attention} clip, not in windows")
        self._transcriber = transcriber
        self.chunk_frames = spec.chunk_frames
        self.window_tokens = spec.window_tokens
        self.window_frames = spec.window_tokens // spec.tokens_per_chunk * spec.chunk_frames
        self._frames: list[np.ndarray] = []  # per window: the (n_mels, <= window_frames) it was encoded from
        self._embeds: list[np.ndarray] = []  # per window: its (rows, H) embeddings
        self.encoded_frames = 0  # frames the last call encoded (what reuse saved shows against T)

    def reset(self) -> None:
        self._frames, self._embeds = [], []

    def encode(self, features: np.ndarray) -> np.ndarray:
        """(n_mels, T) float32 log-mel of the whole clip -> (A, H) float32 embeddings, A = the
        encoder's length for T frames, equal to encoding the clip in one call."""
        total = features.shape[1]
        width = self.window_frames
        n_windows = -(-total // width)
        first = 0
        while (
            first < min(n_windows, len(self._frames))
            and self._frames[first].shape[1] == min(width, total - first * width)
            and np.array_equal(self._frames[first], features[:, first * width : (first + 1) * width])
        ):
            first += 1
        first = min(first, n_windows - 1)  # the open window is encoded at every call with new frames
        if first < n_windows and total > self.chunk_frames and total - first * width <= self.chunk_frames:
            # A tail of one chunk alone would be encoded as a one-chunk clip (unpadded
            # convolutions); inside the whole clip it is a zero-padded tail chunk. Take the window
            # before it along, so the call has several chunks as the whole clip does.
            first -= 1
        tail = features[:, first * width :]
        frames = -(-tail.shape[1] // self.chunk_frames) * self.chunk_frames  # whole chunks, zero-padded
        padded = np.zeros((1, tail.shape[0], frames), np.float32)
        padded[0, :, : tail.shape[1]] = tail
        encoding = self._transcriber.encode_features(padded, np.array([tail.shape[1]], dtype=np.int64))
        rows = encoding.numpy()[0, : int(encoding.lengths[0])]
        self.encoded_frames = tail.shape[1]
        del self._frames[first:], self._embeds[first:]
        for k in range(first, n_windows):
            start = (k - first) * self.window_tokens
            self._frames.append(features[:, k * width : (k + 1) * width].copy())
            self._embeds.append(rows[start : start + self.window_tokens])
        return np.concatenate(self._embeds, axis=0)
