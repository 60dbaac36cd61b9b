#!/usr/bin/env bash
# Parity and recipe checks on ARM64 (embedded boards, phones), from an x86 machine, under qemu-user:
# the same tiny bundles (bench/cpu_bundles.py: fp32, int8, int4 of a unit-gain and a realistic
# checkpoint) and clip on both, and the demo model, their tokens and teacher-forced decisions
# compared. Run by hand (as root, after scripts/setup.sh), not in CI; results go in the README.
#
#   bench/arm64.sh            # work files in .cache/arm64 (ARM64_WORK moves them)
#
# What it builds, all from package archives:
# - qemu-user 10 from Debian 13 (a static build, unpacked, nothing installed): Debian 12's qemu 7.2
#   crashes importing onnxruntime 1.28 and newer;
# - an arm64 Debian 12 root with python3 (debootstrap --foreign, the included packages unpacked with
#   dpkg-deb: running python needs no second stage);
# - the runtime's dependencies as aarch64 wheels (pip --target --platform), onnxruntime pinned to the
#   host's version, and this package itself (pure Python).
# Emulation is slow: the times it prints are not speed figures.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT_DIR=$PWD
WORK=${ARM64_WORK:-$ROOT_DIR/.cache/arm64}
PY=$ROOT_DIR/.venv/bin/python
mkdir -p "$WORK"
cd "$WORK"

source "$ROOT_DIR/bench/qemu.sh"
fetch_qemu "$WORK"
QEMU=$QEMU_BIN/qemu-aarch64

if [ ! -x root/usr/bin/python3.11 ]; then
    echo "== arm64 Debian 12 root with python3"
    command -v debootstrap > /dev/null || apt-get install -y -q debootstrap > /dev/null
    rm -rf root
    debootstrap --foreign --arch=arm64 --variant=minbase --include=python3,libpython3.11,libgomp1 \
        bookworm root http://deb.debian.org/debian > debootstrap.log
    for deb in root/var/cache/apt/archives/*.deb; do dpkg-deb -x "$deb" root; done
fi

ORT=$("$PY" -c "import onnxruntime; print(onnxruntime.__version__)")
if [ ! -f "site/.onnxruntime-$ORT" ]; then
    echo "== aarch64 wheels (onnxruntime $ORT)"
    rm -rf site
    "$PY" -m pip install -q --target site --only-binary=:all: --python-version 3.11 --implementation cp \
        --platform manylinux_2_28_aarch64 --platform manylinux_2_27_aarch64 \
        --platform manylinux_2_17_aarch64 --platform manylinux2014_aarch64 \
        "onnxruntime==$ORT" "numpy>=1.24" "tokenizers>=0.19" "soundfile>=0.12" "soxr>=0.3" tqdm \
        "huggingface_hub>=0.23" 2>&1 | grep -v "^WARNING\|incompatible\|dependency conflicts" || true
    touch "site/.onnxruntime-$ORT"
fi
echo "== this package (aarch64 site)"
rm -rf site/qwen_asr_edge site/qwen_asr_edge-*
"$PY" -m pip install -q --no-deps --target site "$ROOT_DIR" > /dev/null 2>&1

echo "== tiny bundles and a clip (x86, needs [export])"
tiny_bundles "$WORK"
DEMO=$ROOT_DIR/runtime/assets/demo/bundle
EXAMPLE=$ROOT_DIR/runtime/assets/demo/examples/english.wav
PROBE=$ROOT_DIR/bench/cpu_probe.py
ARM=("$QEMU" -L "$WORK/root" -E PYTHONPATH="$WORK/site" "$WORK/root/usr/bin/python3.11")

echo "== x86"
start=$(date +%s)
"$PY" "$PROBE" x86 clip.wav "${BUNDLES[@]}" > x86.jsonl
"$PY" "$PROBE" x86 "$EXAMPLE" "$DEMO" >> x86.jsonl
echo "   $(( $(date +%s) - start )) s"
echo "== aarch64 under qemu"
start=$(date +%s)
"${ARM[@]}" "$PROBE" aarch64 clip.wav "${BUNDLES[@]}" 2> >(grep -v "Unknown CPU vendor" >&2) > arm64.jsonl
"${ARM[@]}" "$PROBE" aarch64 "$EXAMPLE" "$DEMO" 2> >(grep -v "Unknown CPU vendor" >&2) >> arm64.jsonl
echo "   $(( $(date +%s) - start )) s (emulated)"

cd "$ROOT_DIR" && "$PY" -m bench.cpu_compare "$WORK/x86.jsonl" "$WORK/arm64.jsonl" --out "$WORK/arm64-compare.json"
