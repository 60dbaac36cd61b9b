#!/usr/bin/env bash
# Set up (idempotent), then the main job end to end: write a small Qwen3-ASR checkpoint and a
# forced aligner in the official layout, export them to one bundle, and transcribe a real speech
# recording with it: text, then subtitles from word times.
# The checkpoint has random weights (no weights can be downloaded here), so the words are noise;
# with a real checkpoint, pass its folder or hub id to `qwen-asr-edge export` instead.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
work=.cache/demo
clip=/usr/share/pocketsphinx/test/data/librivox/sense_and_sensibility_01_austen_64kb-0870.wav
.venv/bin/python -m qwen_asr_edge.export.synthetic "$work/checkpoint" --shape tiny --peaky \
  --vocab-dir .cache/qwen3-vocab >/dev/null
.venv/bin/python -m qwen_asr_edge.export.synthetic "$work/aligner" --shape tiny --peaky --aligner \
  --vocab-dir .cache/qwen3-vocab >/dev/null
# The ASR model and the forced aligner in one bundle, then text with word times as subtitles.
.venv/bin/qwen-asr-edge export "$work/checkpoint" "$work/bundle" --aligner "$work/aligner" --force
.venv/bin/qwen-asr-edge transcribe "$clip" --bundle "$work/bundle" --format json
.venv/bin/qwen-asr-edge transcribe "$clip" --bundle "$work/bundle" --timestamps --format srt
