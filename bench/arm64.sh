#!/usr/bin/env bash
# Parity and recipe checks on ARM64 (embedded boards, phones), from an x86 machine, under qemu-user:
# the same tiny bundles (fp32, int8, int4) and clip on both, their tokens and teacher-forced decisions
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

if [ ! -x qemu/usr/bin/qemu-aarch64 ]; then
    echo "== qemu-user 10 (Debian 13, static)"
    mkdir -p apt/lists/partial apt/cache/archives/partial qemu
    echo "deb [trusted=yes] http://deb.debian.org/debian trixie main" > apt/sources.list
    APT=(-q -o Dir::Etc::sourcelist="$WORK/apt/sources.list" -o Dir::Etc::sourceparts=/nonexistent
         -o Dir::State::Lists="$WORK/apt/lists" -o Dir::Cache="$WORK/apt/cache")
    apt-get "${APT[@]}" update > /dev/null
    (cd apt && apt-get "${APT[@]}" download qemu-user 2> /dev/null)
    dpkg-deb -x apt/qemu-user_*.deb qemu
fi
QEMU=$WORK/qemu/usr/bin/qemu-aarch64

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
"$PY" - <<'EOF'
import logging
from pathlib import Path

import numpy as np
import soundfile as sf

from qwen_asr_edge.export.build import build_bundle
from qwen_asr_edge.export.synthetic import write_checkpoint

logging.getLogger("qwen_asr_edge").setLevel(logging.ERROR)
work = Path(".")
if not (work / "bundles" / "int4").exists():
    checkpoint = write_checkpoint(work / "checkpoint", "tiny", seed=3, peaky=True, tie=False)
    fp32, _ = build_bundle(checkpoint, work / "bundles" / "fp32", overwrite=True)
    for recipe in ("int8", "int4"):
        build_bundle(fp32, work / "bundles" / recipe, recipe=recipe, overwrite=True)
rng = np.random.default_rng(50)
t = np.arange(4 * 16000) / 16000
wav = 0.1 * rng.standard_normal(t.size) + 0.2 * np.sin(2 * np.pi * 350 * t)
sf.write(work / "clip.wav", wav.astype(np.float32), 16000)
EOF

PROBE=$ROOT_DIR/bench/arm64_tokens.py
BUNDLES=(bundles/fp32 bundles/int8 bundles/int4)
echo "== x86"
start=$(date +%s)
"$PY" "$PROBE" clip.wav "${BUNDLES[@]}" > x86.json
echo "   $(( $(date +%s) - start )) s"
echo "== aarch64 under qemu"
start=$(date +%s)
"$QEMU" -L "$WORK/root" -E PYTHONPATH="$WORK/site" "$WORK/root/usr/bin/python3.11" \
    "$PROBE" clip.wav "${BUNDLES[@]}" 2> >(grep -v "Unknown CPU vendor" >&2) > arm64.json
echo "   $(( $(date +%s) - start )) s (emulated)"

echo "== the demo model on its English example, both machines"
DEMO=$ROOT_DIR/runtime/assets/demo/bundle
EXAMPLE=$ROOT_DIR/runtime/assets/demo/examples/english.wav
"$PY" "$PROBE" "$EXAMPLE" "$DEMO" > x86-demo.json
"$QEMU" -L "$WORK/root" -E PYTHONPATH="$WORK/site" "$WORK/root/usr/bin/python3.11" \
    "$PROBE" "$EXAMPLE" "$DEMO" 2> >(grep -v "Unknown CPU vendor" >&2) > arm64-demo.json

"$PY" - <<'EOF'
import json



def load(machine: str) -> dict:
    run = json.load(open(f"{machine}.json"))
    demo = json.load(open(f"{machine}-demo.json"))["results"][0]
    run["results"].append(dict(demo, precision="demo"))
    return run


x86, arm = load("x86"), load("arm64")
print(f"x86: {x86['machine']}\narm64: {arm['machine']}")
CLEAR = 0.3  # as tests/quant: int8 errs by ~0.1 on these weights
print(f"{'bundle':8} {'greedy tokens':>14} {'top-1, all steps':>17} {'clear steps':>12} {'agree':>6}")
for a, b in zip(x86["results"], arm["results"], strict=True):
    same_tokens = a["tokens"] == b["tokens"]
    steps = len(a["top"])
    top_same = sum(x == y for x, y in zip(a["top"], b["top"], strict=True))
    clear = [i for i, m in enumerate(a["margin"]) if m > CLEAR]
    agree = sum(a["top"][i] == b["top"][i] for i in clear)
    print(f"{a['precision']:8} {'equal' if same_tokens else 'DIFFER':>14} {f'{top_same}/{steps}':>17} "
          f"{len(clear):>12} {agree:>6}")
EOF
