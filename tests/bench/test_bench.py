"""The benchmarks run end to end (tiny shape, one repeat), so the README's commands keep working."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest


@pytest.mark.slow
def test_speed_benchmark_prints_its_tables(tmp_path):
    import subprocess

    from bench.utils import ROOT

    result = subprocess.run(
        [sys.executable, "-m", "bench.speed", "--shape", "tiny", "--recipes", "fp32,int4",
         "--repeats", "1", "--tokens", "3", "--no-official", "--work", str(tmp_path), "--threads", "1,2"],
        capture_output=True, text=True, timeout=900, cwd=ROOT,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    assert "decode ms/token, context 50 / 500" in out and "| int4 " in out
    for threads in (1, 2):  # every table at each thread count
        assert f"## qwen-asr-edge, tiny, random weights, CPU, {threads} threads" in out
        assert f"## batching, int4, {threads} threads" in out
    saved = json.loads((tmp_path / "speed-tiny.json").read_text())
    assert set(saved["threads"]) == {"1", "2"}
    for measured in saved["threads"].values():
        assert measured["ours"]["int4"]["step_ms_500"] > 0 and measured["bandwidth_gbs"] > 0
    assert saved["cpu"]["level"] and f"({saved['cpu']['level']})" in out  # int8 kernels differ by SIMD level


@pytest.mark.slow
def test_memory_benchmark_prints_its_table(tmp_path):
    """bench.memory end to end at its smallest: two short files, one fresh process each."""
    import subprocess

    from bench.utils import ROOT

    result = subprocess.run(
        [sys.executable, "-m", "bench.memory", "--minutes", "0.5,1", "--repeats", "1",
         "--work", str(tmp_path)],
        capture_output=True, text=True, timeout=900, cwd=ROOT,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.strip().splitlines()
    assert lines[0].startswith("## peak RSS transcribing from a file, fp32, medians of 1")
    assert lines[2].split("|")[1:-1] == [" minutes ", " peak RSS MB ", " range MB ", " / 0.5 min "]
    rows = [[c.strip() for c in line.split("|")[1:-1]] for line in lines[4:]]
    assert [r[0] for r in rows] == ["0.5", "1"] and rows[0][3] == "1.00"
    saved = json.loads((tmp_path / "memory" / "memory.json").read_text())
    # A real transcription ran (the runtime and the bundle weigh tens of MB) on audio of the asked length.
    assert [r["seconds"] for r in saved["rows"]] == [pytest.approx(30.0), pytest.approx(60.0)]
    assert all(100 < r["median_mb"] < 4000 for r in saved["rows"])
    assert float(rows[1][3]) == pytest.approx(
        saved["rows"][1]["median_mb"] / saved["rows"][0]["median_mb"], abs=0.01
    )


def test_attention_benchmark_prints_its_table():
    """bench.attention at the tiny shape: a row per thread count and cache type, the growth the
    difference of its own columns."""
    import contextlib
    import io

    from bench.attention import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["--shape", "tiny", "--threads", "1", "--contexts", "5,50", "--repeats", "3"]) == 0
    lines = out.getvalue().strip().splitlines()
    assert "2 layers of GroupQueryAttention (4 query heads, 2 KV heads of" in lines[1]
    rows = [[c.strip() for c in line.split("|")[1:-1]] for line in lines[4:]]
    assert [r[:2] for r in rows] == [["1", "fp32"], ["1", "int8"], ["1", "int8, MatMulInteger"]]
    for row in rows:
        assert float(row[4]) == pytest.approx(float(row[3]) - float(row[2]), abs=0.011)


def test_matmul_integer_attention_is_attention():
    """The standard-operator int8 attention that bench.attention times computes attention: against
    float softmax attention over the dequantized cache, with the masked positions left out."""
    import onnxruntime as ort
    from onnx import load_from_string, numpy_helper

    from bench.attention import matmul_integer_layers

    kv_heads, group, head_dim, capacity, context = 2, 2, 32, 64, 40
    model = matmul_integer_layers(1, kv_heads * group, kv_heads, head_dim)
    scales = {t.name: numpy_helper.to_array(t) for t in load_from_string(model).graph.initializer}
    rng = np.random.default_rng(3)
    # Scores of a few units, as a trained model's: softmax neither one-hot nor flat.
    q = 0.03 * rng.standard_normal((1, kv_heads, group, head_dim)).astype(np.float32)
    # 7-bit, as the graph's cache must be: full int8 overflows MLAS's pair sums without VNNI.
    key = rng.integers(-64, 64, (1, kv_heads, head_dim, capacity), np.int8)
    value = rng.integers(-64, 64, (1, kv_heads, capacity, head_dim), np.int8)
    mask = np.where(np.arange(capacity) < context, 0, -np.inf).astype(np.float32)
    session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {"q": q, "mask": mask, "key.0": key, "value.0": value})

    k = (key * scales["k_scale.0"].transpose(0, 1, 3, 2))[..., :context]  # (1, kv, dim, context)
    v = (value * scales["v_scale.0"])[:, :, :context]  # (1, kv, context, dim)
    scores = q @ k
    weights = np.exp(scores - scores.max(-1, keepdims=True))
    expected = (weights / weights.sum(-1, keepdims=True)) @ v
    error = np.abs(got - expected).max() / np.abs(expected).max()
    assert error < 0.02, error  # u8 query and weights: 0.7 % here
    if_unmasked = session.run(None, {"q": q, "mask": np.zeros_like(mask), "key.0": key, "value.0": value})[0]
    assert np.abs(if_unmasked - expected).max() / np.abs(expected).max() > 0.05  # the mask matters


def test_attention_benchmark_compares_kv_head_counts():
    """--kv-heads: one more table, a row per KV head count, with the cache bytes the growth reads
    (tiny shape: 2 layers x 2 (K, V) x heads x 32 dims x 4 bytes x 45 tokens)."""
    import contextlib
    import io

    from bench.attention import main

    out = io.StringIO()
    argv = ["--shape", "tiny", "--threads", "1", "--contexts", "5,50", "--repeats", "3", "--kv-heads", "1,4"]
    with contextlib.redirect_stdout(out):
        assert main(argv) == 0
    text = out.getvalue()
    assert "fp32 cache, 4 query heads, 1 threads" in text
    lines = text.strip().splitlines()
    rows = [[c.strip() for c in line.split("|")[1:-1]] for line in lines[-2:]]
    assert [r[0] for r in rows] == ["1", "4"]
    head_dim = int(lines[1].split("KV heads of ")[1].split(")")[0])
    for row in rows:
        assert float(row[4]) == pytest.approx(2 * 2 * int(row[0]) * head_dim * 4 * 45 / 1e6, rel=0.01)


@pytest.mark.parametrize("value", ["3", "0", "two", "2,"])
def test_attention_benchmark_refuses_kv_head_counts_that_do_not_divide_the_query_heads(value, capsys):
    from bench.attention import main

    with pytest.raises(SystemExit) as exit_:
        main(["--shape", "tiny", "--threads", "1", "--kv-heads", value])
    assert exit_.value.code == 2
    assert "--kv-heads takes KV head counts that divide the 4 query heads" in capsys.readouterr().err


def test_ab_benchmark_compares_two_bundles(bundles, capsys):
    """bench.ab on one bundle against itself: a row per clip and measurement and per decode
    context, B / A from its own columns, and the same encoder output called bit-equal."""
    from bench.ab import main

    bundle = str(bundles["untied-full"])
    argv = [bundle, bundle, "--seconds", "1.5", "--rounds", "3", "--tokens", "2", "--threads", "1"]
    assert main([*argv, "--contexts", "4,9"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    rows = [[c.strip() for c in line.split("|")[1:-1]] for line in lines[-4:]]
    assert [r[:2] for r in rows] == [
        ["1.5 s", "encoder (bit-equal)"],
        ["1.5 s", "2 tokens"],
        ["context 4", "decode step"],
        ["context 9", "decode step"],
    ]
    for row in rows:
        # B / A of the medians, which the columns show rounded to 0.05 ms either way: on this tiny
        # bundle a column can be 1 ms, so the ratio of the rounded columns alone may be off by 5 %
        a, b, ratio = (float(x) for x in row[2:5])
        assert (b - 0.05) / (a + 0.05) - 0.005 <= ratio <= (b + 0.05) / max(a - 0.05, 1e-9) + 0.005


def test_profile_benchmark_prints_a_table_per_phase(bundles, capsys):
    """bench.profile_ops: encoder, prefill and one table per decode context, each with the time
    outside kernels, and the decoder's attention among the rows."""
    from bench.profile_ops import main

    bundle = str(bundles["untied-windowed"])
    assert main([bundle, "--threads", "1", "--context", "5,20", "--steps", "3", "--repeats", "2"]) == 0
    out = capsys.readouterr().out
    titles = [line.split(":")[0] for line in out.splitlines() if " ms per run " in line]
    phases = ["encoder, 11 s clip", "prefill, 11 s clip", "decode step, context 5", "decode step, context 20"]
    assert titles == phases
    assert out.count("| outside kernels |") == 4
    assert "| GroupQueryAttention |" in out
