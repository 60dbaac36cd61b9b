#!/usr/bin/env bash
# Set up (idempotent), then the main job: transcribe the bundled example recordings (held-out
# synthetic English and German speech) with the built-in demo model, offline, as text and as
# JSON, next to what they say. A real model works the same way with `--model Qwen/Qwen3-ASR-0.6B`
# (exported on first use and cached; the network is needed once) or `--bundle DIR`.
# It needs only the runtime and onnxruntime, in their own small .venv-demo (no torch, no test tools).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --runtime
examples=runtime/assets/demo/examples
.venv-demo/bin/qwen-asr-edge transcribe "$examples/english.wav" "$examples/german.wav"
.venv-demo/bin/qwen-asr-edge transcribe "$examples/german.wav" --format json
echo "--- what the examples say (examples.json):"
.venv-demo/bin/python -c "import json; [print(e['audio'] + ': ' + e['text']) for e in json.load(open('$examples/examples.json'))]"
