#!/usr/bin/env bash
# Set up (idempotent) and run the linter and every test: android_bridge's C and Kotlin tests
# (scripts/test-kotlin.sh), then the pytest suite. Extra arguments go to pytest. Both suites run
# even when the first fails; the exit status is non-zero when either did.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
.venv/bin/ruff check .
status=0
scripts/test-kotlin.sh || status=$?
.venv/bin/python -m pytest -q "$@" || status=$?
exit $status
