"""The Python API's knobs: onnxruntime session settings and decode options reach what they steer."""

from __future__ import annotations

import pytest

from qwen_asr_edge.runtime import SessionSettings, Transcriber, TranscriptionOptions
from tests.support import noise_clip
from tests.support import run_cli as cli


def test_session_settings_reach_onnxruntime(bundles):
    settings = SessionSettings(
        threads=1, optimization="basic", prepacking=False, config={"session.intra_op.allow_spinning": "0"}
    )
    tr = Transcriber(bundles["tied-full"], providers="cpu", settings=settings)
    import onnxruntime as ort

    for opts in tr.session_options().values():
        assert opts.intra_op_num_threads == 1
        assert opts.graph_optimization_level == ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
        assert opts.get_session_config_entry("session.disable_prepacking") == "1"
        assert opts.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    assert tr.transcribe(noise_clip(1.0), options=TranscriptionOptions(max_new_tokens=3)).segments[0].tokens


def test_profiling_writes_each_sessions_kernel_trace(bundles, tmp_path):
    import json
    from pathlib import Path

    settings = SessionSettings(profile=str(tmp_path / "ort"))
    tr = Transcriber(bundles["tied-full"], providers="cpu", settings=settings)
    tr.transcribe(noise_clip(1.0), options=TranscriptionOptions(max_new_tokens=3))
    traces = tr.end_profiling()
    assert set(traces) == {"encoder", "decoder"}
    # word times load the aligner with the same settings: its sessions' traces are named too
    aligned = Transcriber(bundles["untied-full-aligner"], providers="cpu", settings=settings)
    aligned.transcribe(noise_clip(1.0), options=TranscriptionOptions(max_new_tokens=3, word_timestamps=True))
    assert set(aligned.end_profiling()) == {"encoder", "decoder", "aligner_encoder", "aligner"}
    for name, path in traces.items():
        assert path.startswith(str(tmp_path / "ort")), name
        ops = {e["args"].get("op_name") for e in json.loads(Path(path).read_text()) if e.get("cat") == "Node"}
        assert "MatMul" in ops or "FusedMatMul" in ops, (name, ops)
    with pytest.raises(ValueError, match="profiling is off"):
        Transcriber(bundles["tied-full"], providers="cpu").end_profiling()


def test_default_threads_follow_the_cpus_this_process_may_use(monkeypatch):
    monkeypatch.delenv("QWEN_ASR_EDGE_THREADS", raising=False)
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: {0, 3, 5}, raising=False)
    assert SessionSettings().resolved_threads() == 3
    monkeypatch.setenv("QWEN_ASR_EDGE_THREADS", "7")
    assert SessionSettings().resolved_threads() == 7
    assert SessionSettings(threads=2).resolved_threads() == 2
    with pytest.raises(ValueError, match="optimization"):
        SessionSettings(optimization="max")


def test_cli_session_options(bundles, tmp_path):
    import soundfile as sf

    clip = tmp_path / "a.wav"
    sf.write(clip, noise_clip(1.0), 16000)
    args = ["transcribe", str(clip), "--bundle", str(bundles["tied-full"]), "--max-new-tokens", "3"]
    ok = cli(*args, "--threads", "1", "--optimization", "basic",
             "--session-config", "session.intra_op.allow_spinning=0")  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    bad = cli(*args, "--session-config", "allow_spinning")
    assert bad.returncode == 2 and "KEY=VALUE" in bad.stderr


def test_session_config_that_onnxruntime_refuses_is_one_line_and_ours_overrides_without_a_warning(
    bundles, tmp_path
):
    """Found by a new user: `=1` and a bad affinity list were tracebacks (the latter after
    onnxruntime's "EP Error" banner on stdout), and session.disable_prepacking, which we set too,
    drew onnxruntime's "already exists ... will be overwritten" warning."""
    import soundfile as sf

    clip = tmp_path / "a.wav"
    sf.write(clip, noise_clip(1.0), 16000)
    args = ["transcribe", str(clip), "--bundle", str(bundles["tied-full"]), "--max-new-tokens", "3"]
    empty = cli(*args, "--session-config", "=1")
    assert empty.returncode == 2 and "--session-config: '' is not a session config key" in empty.stderr
    refused = cli(*args, "--session-config", "session.intra_op_thread_affinities=garbage")
    assert (refused.returncode, refused.stdout) == (2, "")
    assert refused.stderr.strip().splitlines()[-1] == (
        "error: onnxruntime refused the session config session.intra_op_thread_affinities=garbage: "
        "Processor id must consist of only digits: garbage"
    )
    assert "Traceback" not in refused.stderr
    ours = cli(*args, "--session-config", "session.disable_prepacking=1")
    assert ours.returncode == 0 and "overwritten" not in ours.stderr, ours.stderr
    with pytest.raises(TypeError, match="session config entries are text"):
        SessionSettings(config={"session.intra_op.allow_spinning": 0})


@pytest.mark.parametrize("bundle", ["tied-full", "tied-full-portable"])
def test_ignore_stop_decodes_exactly_the_cap(bundles, bundle):
    """Benchmarks compare equal work: with ignore_stop every row runs to its token cap."""
    tr = Transcriber(bundles[bundle], providers="cpu")
    clips = [noise_clip(s, seed=i) for i, s in enumerate([0.5, 3.0])]
    got = tr.transcribe_batch(clips, options=TranscriptionOptions(max_new_tokens=20, ignore_stop=True))
    assert [len(t.segments[0].tokens) for t in got] == [20, 20]
    stopped = tr.transcribe_batch(clips, options=TranscriptionOptions(max_new_tokens=20))
    for a, b in zip(got, stopped, strict=True):  # the same greedy path up to where it stopped
        assert a.segments[0].tokens[: len(b.segments[0].tokens)] == b.segments[0].tokens


def test_progress_bar_only_on_long_work_at_a_terminal(monkeypatch):
    import sys

    from qwen_asr_edge.runtime.transcriber import progress_bar

    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    assert not progress_bar(600.0, True).disable
    assert progress_bar(30.0, True).disable  # short work: no bar
    assert progress_bar(600.0, False).disable  # not asked for (the Python API's default)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False, raising=False)
    assert progress_bar(600.0, True).disable  # piped or redirected: quiet
