# Sourced by bench/arm64.sh and bench/avx2.sh: qemu-user 10 from Debian 13 (a static build,
# unpacked into $1/qemu, nothing installed). Debian 12's qemu 7.2 crashes importing onnxruntime
# 1.28 and newer. Sets QEMU_BIN to the folder holding qemu-aarch64, qemu-x86_64, ...
fetch_qemu() {
    local work=$1
    if [ ! -x "$work/qemu/usr/bin/qemu-x86_64" ]; then
        echo "== qemu-user 10 (Debian 13, static)"
        mkdir -p "$work/apt/lists/partial" "$work/apt/cache/archives/partial" "$work/qemu"
        echo "deb [trusted=yes] http://deb.debian.org/debian trixie main" > "$work/apt/sources.list"
        local apt=(-q -o Dir::Etc::sourcelist="$work/apt/sources.list" -o Dir::Etc::sourceparts=/nonexistent
                   -o Dir::State::Lists="$work/apt/lists" -o Dir::Cache="$work/apt/cache")
        apt-get "${apt[@]}" update > /dev/null
        (cd "$work/apt" && apt-get "${apt[@]}" download qemu-user 2> /dev/null)
        dpkg-deb -x "$work"/apt/qemu-user_*.deb "$work/qemu"
    fi
    QEMU_BIN=$work/qemu/usr/bin
}

# The bundle folders bench.cpu_bundles prints, into the array BUNDLES; a failed build stops the
# script (a `read <<< "$(...)"` would hide it and probe nothing).
tiny_bundles() {
    local out
    out=$(cd "$ROOT_DIR" && "$PY" -m bench.cpu_bundles "$1")
    read -r -a BUNDLES <<< "$out"
    [ "${#BUNDLES[@]}" -gt 0 ] || { echo "bench.cpu_bundles printed no bundles" >&2; exit 1; }
}
