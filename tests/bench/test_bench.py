"""The benchmarks run end to end (tiny shape, one repeat), so the README's commands keep working."""

from __future__ import annotations

import json
import sys


def test_speed_benchmark_prints_its_tables(tmp_path):
    import subprocess

    from bench.utils import ROOT

    result = subprocess.run(
        [sys.executable, "-m", "bench.speed", "--shape", "tiny", "--recipes", "fp32,int4",
         "--repeats", "1", "--tokens", "3", "--no-official", "--work", str(tmp_path)],
        capture_output=True, text=True, timeout=900, cwd=ROOT,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    assert "decode ms/token, context 50 / 500" in out and "| int4 " in out
    assert "## batching, int4" in out
    saved = json.loads((tmp_path / "speed-tiny.json").read_text())
    assert saved["ours"]["int4"]["step_ms_500"] > 0 and saved["bandwidth_gbs"] > 0
