#!/usr/bin/env bash
# The toolchain for android_bridge's JVM side, idempotent; as root on a fresh Debian 12 or 13 it
# installs what is missing:
#   JDK (javac)            the system's, else apt default-jdk-headless
#   gcc                    the system's, else apt gcc
#   JUnit 4                Debian junit4 (/usr/share/java/junit4.jar, hamcrest-core.jar)
#   Kotlin compiler        npm kotlin-compiler@2.4.20 (sha256-checked) -> .cache/android/kotlinc-2.4.20
#   onnxruntime C headers  Debian 13: apt libonnxruntime-dev; Debian 12: trixie's libonnxruntime-dev .deb
#                          fetched with a private apt configuration (the system's apt state is not
#                          touched) and unpacked into .cache/android/ort-headers
#   onnxruntime library    the .venv's onnxruntime wheel (libonnxruntime.so.1.x), linked through a
#                          libonnxruntime.so.1 symlink in .cache/android/ort-lib
# Writes .cache/android/toolchain.env (shell variables for scripts/test-kotlin.sh) and prints where
# each tool is.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
cache=$root/.cache/android
mkdir -p "$cache"

KOTLIN_VERSION=2.4.20
KOTLIN_SHA256=c23dab400d7ce5ea8b6c909947c0ca5454189e4bb1108695b5f464500e5e950f
JUNIT_JAR=/usr/share/java/junit4.jar
HAMCREST_JAR=/usr/share/java/hamcrest-core.jar

# shellcheck source=scripts/apt.sh
. scripts/apt.sh

need=()
command -v javac >/dev/null || need+=(default-jdk-headless)
command -v gcc >/dev/null || need+=(gcc libc6-dev)
[ -f $JUNIT_JAR ] && [ -f $HAMCREST_JAR ] || need+=(junit4)
command -v npm >/dev/null || need+=(npm)
. /etc/os-release
debian_major=${VERSION_ID%%.*}
system_headers=/usr/include/onnxruntime/onnxruntime_c_api.h
if [ "${debian_major:-0}" -ge 13 ] 2>/dev/null && [ ! -f $system_headers ]; then
  need+=(libonnxruntime-dev)
fi
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    echo "android-toolchain: missing ${need[*]}; install them (apt-get, as root)" >&2
    exit 1
  fi
  apt_update
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
    --no-install-recommends "${need[@]}" >/dev/null
fi

# The Kotlin compiler from npm.
kotlinc_dir=$cache/kotlinc-$KOTLIN_VERSION
if [ ! -x "$kotlinc_dir/bin/kotlinc" ]; then
  tgz=$cache/kotlin-compiler-$KOTLIN_VERSION.tgz
  if [ ! -f "$tgz" ] || [ "$(sha256sum "$tgz" | cut -d' ' -f1)" != $KOTLIN_SHA256 ]; then
    rm -f "$tgz"
    (cd "$cache" && npm pack --silent "kotlin-compiler@$KOTLIN_VERSION" >/dev/null)
  fi
  got=$(sha256sum "$tgz" | cut -d' ' -f1)
  if [ "$got" != $KOTLIN_SHA256 ]; then
    echo "android-toolchain: $tgz has sha256 $got, expected $KOTLIN_SHA256" >&2
    exit 1
  fi
  tmp=$(mktemp -d "$cache/kotlinc.XXXXXX")
  tar xzf "$tgz" -C "$tmp"
  chmod +x "$tmp"/package/bin/*
  rm -rf "$kotlinc_dir"
  mv "$tmp/package" "$kotlinc_dir"
  rmdir "$tmp"
fi

# The onnxruntime C headers.
if [ -f $system_headers ]; then
  ort_include=/usr/include/onnxruntime
else
  ort_include=$cache/ort-headers/usr/include/onnxruntime
  if [ ! -f "$ort_include/onnxruntime_c_api.h" ]; then
    # The Debian mirror this system uses (deb822 .sources or one-line sources.list), else the default.
    mirror=$( (cat /etc/apt/sources.list.d/*.sources 2>/dev/null || true) \
      | sed -n 's|^URIs:[[:space:]]*\([^[:space:]]*/debian\)/\?[[:space:]]*$|\1|p' | head -n1)
    [ -n "$mirror" ] || mirror=$( (cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null || true) \
      | sed -n 's|^deb[[:space:]]\+\(\[[^]]*\][[:space:]]\+\)\?\([^[:space:]]*/debian\)/\?[[:space:]].*|\2|p' | head -n1)
    [ -n "$mirror" ] || mirror=http://deb.debian.org/debian
    keyring=/usr/share/keyrings/debian-archive-keyring.gpg
    [ -f $keyring ] || { echo "android-toolchain: no $keyring (Debian's debian-archive-keyring)" >&2; exit 1; }
    apt_dir=$cache/apt-trixie
    rm -rf "$apt_dir"
    mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial" "$apt_dir/deb"
    echo "deb [signed-by=$keyring] $mirror trixie main" >"$apt_dir/sources.list"
    apt_opts=(-o "Dir::Etc::SourceList=$apt_dir/sources.list" -o Dir::Etc::SourceParts=/dev/null
      -o "Dir::State::Lists=$apt_dir/lists" -o "Dir::Cache=$apt_dir/cache"
      -o "Dir::State::status=/dev/null" -o APT::Sandbox::User=root)
    apt_update "${apt_opts[@]}"
    (cd "$apt_dir/deb" && apt-get "${apt_opts[@]}" download -qq libonnxruntime-dev >/dev/null)
    deb=$(ls "$apt_dir"/deb/libonnxruntime-dev_*.deb)
    rm -rf "$cache/ort-headers"
    dpkg -x "$deb" "$cache/ort-headers"
    rm -rf "$apt_dir"
    [ -f "$ort_include/onnxruntime_c_api.h" ] \
      || { echo "android-toolchain: $deb has no onnxruntime_c_api.h" >&2; exit 1; }
  fi
fi

# The onnxruntime library from the .venv's wheel.
ort_so=$(ls .venv/lib/python3*/site-packages/onnxruntime/capi/libonnxruntime.so.1.* 2>/dev/null | head -n1 || true)
if [ -z "$ort_so" ]; then
  echo "android-toolchain: no onnxruntime wheel in .venv (run scripts/setup.sh first)" >&2
  exit 1
fi
ort_lib=$cache/ort-lib
mkdir -p "$ort_lib"
ln -sfn "$(readlink -f "$ort_so")" "$ort_lib/libonnxruntime.so.1"
ln -sfn libonnxruntime.so.1 "$ort_lib/libonnxruntime.so"

java_home=$(dirname "$(dirname "$(readlink -f "$(command -v javac)")")")
cat >"$cache/toolchain.env" <<EOF
JAVA_HOME=$java_home
KOTLINC=$kotlinc_dir/bin/kotlinc
KOTLIN_HOME=$kotlinc_dir
JUNIT_JAR=$JUNIT_JAR
HAMCREST_JAR=$HAMCREST_JAR
ORT_INCLUDE=$ort_include
ORT_LIB=$ort_lib
EOF
echo "android-toolchain: javac $(command -v javac) (JAVA_HOME $java_home)"
echo "android-toolchain: gcc $(command -v gcc)"
echo "android-toolchain: kotlinc $kotlinc_dir/bin/kotlinc"
echo "android-toolchain: junit $JUNIT_JAR, $HAMCREST_JAR"
echo "android-toolchain: onnxruntime headers $ort_include"
echo "android-toolchain: onnxruntime library $ort_lib/libonnxruntime.so.1 -> $(readlink "$ort_lib/libonnxruntime.so.1")"
