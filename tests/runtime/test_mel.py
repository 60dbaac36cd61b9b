"""The log-mel of a growing clip: earlier frames come out bit for bit the same."""

from __future__ import annotations

import numpy as np

from qwen_asr_edge.runtime.bundle import MelSpec
from qwen_asr_edge.runtime.mel import LogMel


def test_a_frame_does_not_change_as_the_clip_grows():
    """Live streaming re-computes the whole clip's log-mel and reuses the encoding of windows
    whose frames are equal (runtime/encoder_windows.py). OpenBLAS on AVX2 rounded a frame's
    filterbank product by where it fell in the matrix's row tiling, so frames moved by 1 ulp as
    the clip grew and nothing was reused. A loud tone first fixes the log-mel floor; the last
    two frames of a prefix see its end (reflect padding) and may differ."""
    extract = LogMel(MelSpec())
    rng = np.random.default_rng(0)
    wav = (rng.standard_normal(16000 * 30) * 0.1).astype(np.float32)
    wav[:800] = np.sin(np.arange(800) * 0.3)
    whole = extract(wav)
    for k, seconds in enumerate((1, 3, 4, 6, 9, 14, 26)):
        prefix = extract(wav[: 16000 * seconds + 37 * k])
        n = prefix.shape[1] - 2
        assert np.array_equal(prefix[:, :n], whole[:, :n]), seconds
