#!/usr/bin/env bash
# The CPU-sensitive recipe checks on an x86 CPU without AVX-512 or VNNI (AVX2 only, as many laptops
# have), from any x86 machine: the runtime under `qemu-x86_64 -cpu Haswell`, whose CPUID hides
# AVX-512 and VNNI, so onnxruntime picks its AVX2 kernels. The same tiny bundles and clip
# (bench/cpu_bundles.py) and the demo model run natively and emulated; their tokens and
# teacher-forced decisions are compared (bench/cpu_compare.py). Run by hand after scripts/setup.sh,
# not in CI; results go in the README. Exits 1 if a clear decision differs.
#
#   bench/avx2.sh            # work files in .cache/avx2 (AVX2_WORK moves them)
#   bench/avx2.sh --tests    # then also the CPU-sensitive tests themselves under Haswell (~11 min)
#
# qemu-user 10 from Debian 13 (bench/qemu.sh; shared with bench/arm64.sh in .cache/arm64).
# Emulation is slow: its times are not speed figures.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT_DIR=$PWD
WORK=${AVX2_WORK:-$ROOT_DIR/.cache/avx2}
PY=$ROOT_DIR/.venv/bin/python
mkdir -p "$WORK"
source "$ROOT_DIR/bench/qemu.sh"
fetch_qemu "${ARM64_WORK:-$ROOT_DIR/.cache/arm64}"  # shared with bench/arm64.sh
QEMU=$QEMU_BIN/qemu-x86_64

echo "== tiny bundles and a clip (needs [export])"
tiny_bundles "$WORK"
DEMO=$ROOT_DIR/runtime/assets/demo/bundle
EXAMPLE=$ROOT_DIR/runtime/assets/demo/examples/english.wav
PROBE=$ROOT_DIR/bench/cpu_probe.py
LEVEL=$("$PY" -c "from qwen_asr_edge.quant.quality import instruction_set; print(instruction_set()['level'])")

echo "== this CPU ($LEVEL)"
start=$(date +%s)
"$PY" "$PROBE" "native ($LEVEL)" "$WORK/clip.wav" "${BUNDLES[@]}" > "$WORK/native.jsonl"
"$PY" "$PROBE" "native ($LEVEL)" "$EXAMPLE" "$DEMO" >> "$WORK/native.jsonl"
echo "   $(( $(date +%s) - start )) s"
echo "== Haswell (AVX2, FMA; no AVX-512, no VNNI) under qemu"
start=$(date +%s)
HASWELL=("$QEMU" -cpu Haswell "$PY")
"${HASWELL[@]}" "$PROBE" "Haswell (AVX2)" "$WORK/clip.wav" "${BUNDLES[@]}" 2> >(grep -v "TCG doesn't support" >&2) \
    > "$WORK/haswell.jsonl"
"${HASWELL[@]}" "$PROBE" "Haswell (AVX2)" "$EXAMPLE" "$DEMO" 2> >(grep -v "TCG doesn't support" >&2) \
    >> "$WORK/haswell.jsonl"
echo "   $(( $(date +%s) - start )) s (emulated)"

"$PY" -m bench.cpu_compare "$WORK/native.jsonl" "$WORK/haswell.jsonl" --out "$WORK/avx2-compare.json"

if [ "${1:-}" = "--tests" ]; then
    echo "== the CPU-sensitive tests under Haswell (int8 clear-margin decisions, batch invariance)"
    "${HASWELL[@]}" -m pytest -q -p no:cacheprovider tests/quant/test_quantize.py \
        -k "keeps_fp32_decisions or (batch_neighbours and (int8 or int4))" 2> >(grep -v "TCG doesn't support" >&2)
fi
