#!/usr/bin/env bash
# android_bridge's native and Kotlin tests on Linux, with the .venv's onnxruntime:
#   1. the toolchain (scripts/android-toolchain.sh)
#   2. libqwen_asr_ort_jni.so with gcc -Werror into build/android_bridge/
#   3. the test models (tests/android_bridge/fixtures.py if present, else native_models.py alone)
#   4. test_ort_bridge (the C layer without a JVM) under AddressSanitizer + UBSan, leaks checked
#   5. every Kotlin source of android_bridge/kotlin/src/{main,test} in one kotlinc call, then
#      TestMain (JUnit 4), which prints "kotlin: N passed, N failed"
#   6. TestMain again, quietly, with the JNI library built with ASan + UBSan
#      (ANDROID_BRIDGE_JVM_ASAN=0 skips it)
# Quiet unless something fails; exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
out=$root/build/android_bridge
native=$root/android_bridge/native
mkdir -p "$out"
if [ ! -x .venv/bin/python ] || [ ! -f "${QWEN3_VOCAB_DIR:-.cache/qwen3-vocab}/vocab.json" ]; then
  echo "test-kotlin: no .venv or test data here; run scripts/setup.sh first (scripts/test.sh does)" >&2
  exit 1
fi
# onnxruntime logs only fatal errors: the tests' expected failures reach them as exceptions.
export QWENASR_ORT_LOG_LEVEL=${QWENASR_ORT_LOG_LEVEL:-4}

toolchain_log=$out/toolchain.log
if ! scripts/android-toolchain.sh >"$toolchain_log" 2>&1; then
  cat "$toolchain_log" >&2
  exit 1
fi
# shellcheck disable=SC1091
. "$root/.cache/android/toolchain.env"

# 2. The JNI library.
cflags=(-std=c11 -Wall -Wextra -Werror -I"$ORT_INCLUDE")
ort_link=(-L"$ORT_LIB" -l:libonnxruntime.so.1 -Wl,-rpath,"$ORT_LIB")
gcc "${cflags[@]}" -O2 -fPIC -shared -fvisibility=hidden -I"$JAVA_HOME/include" -I"$JAVA_HOME/include/linux" \
  "$native/ort_bridge.c" "$native/ort_jni.c" "${ort_link[@]}" -o "$out/libqwen_asr_ort_jni.so"

# 3. The fixtures.
fixtures=$out/fixtures
if [ -f tests/android_bridge/fixtures.py ]; then
  if ! .venv/bin/python -m tests.android_bridge.fixtures "$fixtures" >"$out/fixtures.log" 2>&1; then
    cat "$out/fixtures.log" >&2
    echo "kotlin: 0 passed, 1 failed (fixtures)"
    exit 1
  fi
else
  .venv/bin/python -c "import sys; from tests.android_bridge.native_models import write_native_models; \
write_native_models(sys.argv[1])" "$fixtures/native"
fi

# 4. The C layer under ASan + UBSan.
gcc "${cflags[@]}" -g -O1 -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined \
  "$native/test_ort_bridge.c" "$native/ort_bridge.c" "${ort_link[@]}" -lm -o "$out/test_ort_bridge"
c_status=0
ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1 \
  "$out/test_ort_bridge" "$fixtures/native" || c_status=$?

# 5. Kotlin: one compiler call for main and test sources.
classpath=$JUNIT_JAR:$HAMCREST_JAR
jar=$out/kotlin-tests.jar
sources=$(find android_bridge/kotlin/src/main android_bridge/kotlin/src/test -name '*.kt' | sort)
stamp=$out/kotlin-tests.sources
# Recompile only when a source changed (kotlinc takes ~20 s to start).
# shellcheck disable=SC2086
fingerprint=$( (echo "$KOTLINC" $sources; cat $sources) | sha256sum | cut -d' ' -f1)
if [ ! -f "$jar" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$fingerprint" ]; then
  rm -f "$jar" "$stamp"
  kotlinc_log=$out/kotlinc.log
  # shellcheck disable=SC2086
  if ! JAVA_HOME=$JAVA_HOME "$KOTLINC" -nowarn -jvm-target 17 -cp "$classpath" -d "$jar" $sources >"$kotlinc_log" 2>&1; then
    cat "$kotlinc_log" >&2
    echo "kotlin: 0 passed, 1 failed (compilation)"
    exit 1
  fi
  echo "$fingerprint" >"$stamp"
fi
run_tests() { # JNI library, then java options
  local library=$1
  shift
  "$JAVA_HOME/bin/java" "$@" -Dqwenasr.fixtures="$fixtures" -Dqwenasr.jni.library="$library" \
    -cp "$jar:$KOTLIN_HOME/lib/kotlin-stdlib.jar:$classpath" io.github.qwenasredge.TestMain
}

# 6. The same tests with the JNI library under ASan + UBSan (the JVM itself is not instrumented:
# the ASan runtime is preloaded and leaves the JVM's SEGV handling alone); quiet unless it fails.
asan_status=0
if [ "${ANDROID_BRIDGE_JVM_ASAN:-1}" = 1 ]; then
  gcc "${cflags[@]}" -g -O1 -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined \
    -fPIC -shared -I"$JAVA_HOME/include" -I"$JAVA_HOME/include/linux" \
    "$native/ort_bridge.c" "$native/ort_jni.c" "${ort_link[@]}" -o "$out/libqwen_asr_ort_jni_asan.so"
  asan_log=$out/kotlin-asan.log
  if ! LD_PRELOAD="$(gcc -print-file-name=libasan.so):$(gcc -print-file-name=libubsan.so)" \
    ASAN_OPTIONS=detect_leaks=0:handle_segv=0:allow_user_segv_handler=1:use_sigaltstack=0 \
    UBSAN_OPTIONS=print_stacktrace=1 run_tests "$out/libqwen_asr_ort_jni_asan.so" >"$asan_log" 2>&1; then
    tail -n 60 "$asan_log" >&2
    echo "test-kotlin: the Kotlin tests failed with the JNI library under AddressSanitizer (log: $asan_log)" >&2
    asan_status=1
  fi
fi

kotlin_status=0
run_tests "$out/libqwen_asr_ort_jni.so" || kotlin_status=$?

[ $c_status = 0 ] && [ $asan_status = 0 ] && [ $kotlin_status = 0 ]
