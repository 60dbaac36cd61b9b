#!/usr/bin/env bash
# Build the packaged app: the qwen-asr-edge CLI with the built-in demo model as a PyInstaller
# one-folder app that runs on a machine without Python (transcribe, align, and serve once the
# [server] extra exists; export and quantize need torch, which the app leaves out).
#
#   scripts/build-app.sh                then: dist/qwen-asr-edge/qwen-asr-edge transcribe talk.wav
#
# It works from a fresh clone: its own .venv-app holds a non-editable install of the package with
# the runtime extras only ([cpu], [server]) and PyInstaller ([app]), so nothing of the exporter's
# stack (torch) can be picked up. What is collected is in scripts/qwen-asr-edge.spec. Work files go
# to build/app/, the app to dist/qwen-asr-edge/ (replaced); the last lines say its size.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
# The build venv is the whole world of the build: a PYTHONPATH with the checkout on it (a worktree
# shim, a test runner's) would have PyInstaller freeze the source folder qwen_asr_edge/ instead.
unset PYTHONPATH PYTHONHOME
venv=$root/.venv-app

pip_install() { "$venv/bin/python" -m pip install -q --disable-pip-version-check "$@"; }

[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
extras=cpu,app
grep -q '^server = ' pyproject.toml && extras+=,server
pip_install ".[$extras]"  # a local folder is always reinstalled: the app freezes this checkout's code

# From inside build/app: with the checkout's root as the working directory, Python would import
# the source folder qwen_asr_edge/ (which lacks runtime/) instead of the installed package.
mkdir -p build/app
(cd build/app && "$venv/bin/pyinstaller" --noconfirm --log-level WARN \
  --distpath "$root/dist" --workpath "$root/build/app" "$root/scripts/qwen-asr-edge.spec")

app=dist/qwen-asr-edge
# Python's own shared libraries keep their symbols in a pyenv build (libpython: 22 MB, 5.5 MB
# stripped): strip those. Not the wheels' libraries: auditwheel rewrote them with patchelf, and
# stripping numpy's OpenBLAS so left it unloadable ("ELF load command address/offset not page-aligned").
strip --strip-unneeded "$app"/_internal/libpython3*.so* "$app"/_internal/python3*/lib-dynload/*.so
echo "built $app/qwen-asr-edge: $(du -sh "$app" | cut -f1) in $(find "$app" -type f | wc -l) files"
