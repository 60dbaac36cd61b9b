#!/usr/bin/env bash
# Set up (idempotent), then the main job: transcribe the bundled example recordings (held-out
# synthetic English and German speech) with the built-in demo model, offline, as text and as
# JSON, next to what they say; then a sentence you type is spoken by espeak-ng, in a voice the
# model never heard in training, and transcribed, so you hear it take in new speech.
#   scripts/demo.sh ["your sentence" [English|German]]   (no sentence: asked for, or an example
#   when stdin is not a terminal)
# A real model works the same way with `--model Qwen/Qwen3-ASR-0.6B` (exported on first use and
# cached; the network is needed once) or `--bundle DIR`. It needs only the runtime and onnxruntime,
# in their own small .venv-demo (no torch, no test tools), and espeak-ng for the typed sentence.
# (Tests run it with DEMO_VENV=.venv DEMO_SETUP=0: the tests' environment, set up already.)
set -euo pipefail
case "${1:-}" in
  -h | --help) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
esac
sentence=${1:-}
case "${2:-English}" in
  English | english | en) voice=en-gb-scotland+f3 ;;  # held-out variants (demo/speech.py): never heard in training
  German | german | Deutsch | deutsch | de) voice=de+f3 ;;
  *) echo "demo.sh: the language is English or German, not '$2' (the demo model knows those two)" >&2; exit 2 ;;
esac
cd "$(dirname "$0")/.."
venv=${DEMO_VENV:-.venv-demo}
[ "${DEMO_SETUP:-1}" = 0 ] || scripts/setup.sh --runtime
examples=runtime/assets/demo/examples
"$venv/bin/qwen-asr-edge" transcribe "$examples/english.wav" "$examples/german.wav"
"$venv/bin/qwen-asr-edge" transcribe "$examples/german.wav" --format json
echo "--- what the examples say (examples.json):"
"$venv/bin/python" -c "import json; [print(e['audio'] + ': ' + e['text']) for e in json.load(open('$examples/examples.json'))]"

if [ -z "$sentence" ] && [ -t 0 ]; then
  read -r -p "--- type a sentence for the demo model to hear (Enter for an example): " sentence
fi
if [ -z "$sentence" ]; then
  [ "$voice" = de+f3 ] && sentence="Kannst du mir bitte morgen früh das Buch bringen?" \
    || sentence="Could you please send me the photos from our holiday?"
  echo "--- no sentence given, so an example"
fi
if ! command -v espeak-ng >/dev/null; then
  echo "--- espeak-ng is not installed (apt-get install espeak-ng), so no typed sentence to hear" >&2
  exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# On stdin, so that a sentence starting with "-" is not read as an option.
printf '%s\n' "$sentence" | espeak-ng -v "$voice" -w "$tmp/typed.wav" --stdin
echo "--- espeak-ng ($voice) says: $sentence"
echo "--- the demo model hears:"
heard=$("$venv/bin/qwen-asr-edge" transcribe "$tmp/typed.wav" --format txt)
echo "${heard:-(nothing: no text came out)}"
