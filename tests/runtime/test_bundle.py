"""The bundle contract: the manifest describes the graphs exactly, and damaged bundles are refused."""

from __future__ import annotations

import json
import os
import shutil
import signal
from pathlib import Path

import numpy as np
import pytest

from qwen_asr_edge.runtime.bundle import FORMAT_VERSION, load_bundle
from qwen_asr_edge.runtime.errors import BundleError
from qwen_asr_edge.runtime.providers import create_session

ORT_TYPES = {"tensor(float)": "float32", "tensor(int64)": "int64", "tensor(int32)": "int32"}


@pytest.mark.parametrize("name", ["untied-full", "tied-full", "tied-full-portable"])
def test_manifest_matches_the_sessions_io(bundles, name):
    bundle = load_bundle(bundles[name])
    for graph, spec in bundle.manifest.graphs.items():
        session = create_session(str(bundle.path / spec.file), ["CPUExecutionProvider"])
        for declared, actual in [(spec.inputs, session.get_inputs()), (spec.outputs, session.get_outputs())]:
            assert [t.name for t in declared] == [t.name for t in actual], graph
            assert [t.dtype for t in declared] == [ORT_TYPES[t.type] for t in actual], graph
            for d, a in zip(declared, actual, strict=True):
                fixed = [x if isinstance(x, int) else None for x in d.shape]
                assert fixed == [x if isinstance(x, int) else None for x in a.shape], (graph, d.name)


@pytest.mark.slow
def test_manifest_records_what_the_runtime_needs(bundles):
    m = load_bundle(bundles["untied-windowed"]).manifest
    assert m.format_version == FORMAT_VERSION
    assert m.encoder.attention == "windowed" and m.encoder.window_tokens == 104
    assert m.decoder.attention == "gqa"
    assert load_bundle(bundles["tied-full-portable"]).manifest.decoder.attention == "portable"
    assert m.tokens.eos == [151645, 151643] and m.tokens.audio_pad == 151676
    assert m.prompt.before_context == "<|im_start|>system\n"
    assert m.prompt.after_context.endswith("<|im_start|>assistant\n")
    assert "English" in m.languages and len(m.languages) == 30
    assert set(m.files) == {"encoder.onnx", "encoder.onnx.data", "decoder.onnx", "decoder.onnx.data",
                            "tokenizer.json"}  # fmt: skip
    assert m.producer["qwen-asr-edge"]
    assert float(m.producer["validation_relative_error_decoder_logits"]) < 1e-4


@pytest.mark.slow
def test_tied_bundle_keeps_one_copy_of_the_embedding(bundles):
    m = load_bundle(bundles["tied-full"]).manifest
    untied = load_bundle(bundles["untied-full"]).manifest
    table = 151936 * 64 * 4
    assert m.files["decoder.onnx.data"].bytes < 1.5 * table
    assert untied.files["decoder.onnx.data"].bytes > 2 * table


def test_refuses_unknown_format_and_damage(bundles, tmp_path):
    b = tmp_path / "b"
    shutil.copytree(bundles["tied-full"], b)
    manifest = json.loads((b / "manifest.json").read_text())
    manifest["format_version"] = 99
    (b / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="format version 99 is not supported"):
        load_bundle(b)

    shutil.rmtree(b)
    shutil.copytree(bundles["tied-full"], b)
    (b / "encoder.onnx.data").write_bytes((b / "encoder.onnx.data").read_bytes()[:-8])
    with pytest.raises(BundleError, match="encoder.onnx.data has .* bytes, expected"):
        load_bundle(b, verify=False)  # sizes are checked even without hashing


@pytest.mark.parametrize("name,ops", [("untied-full", 2), ("tied-full-portable", 0)])
def test_decoder_attention_kind_is_what_the_graph_holds(bundles, name, ops):
    import onnx

    bundle = load_bundle(bundles[name])
    model = onnx.load(str(bundle.graph_path("decoder")), load_external_data=False)
    gqa = [n for n in model.graph.node if n.op_type == "GroupQueryAttention"]
    assert len(gqa) == ops  # one per layer; the tiny checkpoints have 2
    assert all(n.domain == "com.microsoft" for n in gqa)
    if bundle.manifest.decoder.attention == "portable":
        assert {n.domain for n in model.graph.node} == {""}  # standard ONNX only


@pytest.mark.parametrize("name", ["untied-full", "tied-full-portable"])
def test_kv_buffers_are_updated_in_place(bundles, name):
    """One buffer bound as past and present: the graph writes into it, ORT allocates no copy."""
    from qwen_asr_edge.runtime.kv_cache import KvCache
    from qwen_asr_edge.runtime.providers import session_device

    bundle = load_bundle(bundles[name])
    decoder = create_session(str(bundle.graph_path("decoder")), ["CPUExecutionProvider"])
    kv_spec, hidden = bundle.manifest.kv_cache, bundle.manifest.model.hidden_size
    cache = KvCache(kv_spec, batch=1, capacity=12, device=session_device(decoder))
    for buf in cache.buffers:
        buf.numpy()[...] = 0.0  # CPU: the numpy view aliases the buffer
    io = decoder.io_binding()
    cache.bind(io)
    feeds = {
        "input_ids": np.array([[11, 22, 33, 44, 55]]),
        "seqlens_k": np.array([4], dtype=np.int32),
        "total_sequence_length": np.array(5, dtype=np.int32),
        "audio_embeds": np.zeros((1, 1, hidden), dtype=np.float32),
        "audio_embed_lens": np.zeros(1, dtype=np.int64),
    }
    for name, value in feeds.items():
        io.bind_cpu_input(name, value)
    io.bind_output("logits")
    io.bind_output("next_token")
    decoder.run_with_iobinding(io)
    key0 = cache.buffers[0].numpy()
    assert np.abs(key0[:, :, :5]).min(axis=-1).max() > 0  # rows 0..4 written
    assert not key0[:, :, 5:].any()  # the rest untouched
    outputs = io.get_outputs()  # in binding order: present.0.key was bound first
    assert [o.data_ptr() for o in outputs[: len(cache.buffers)]] == [b.data_ptr() for b in cache.buffers]


def test_a_file_given_as_the_bundle_is_named_as_a_file(bundles, tmp_path):
    clip = tmp_path / "clip.flac"
    clip.write_bytes(b"fLaC")
    with pytest.raises(BundleError, match=r"clip.flac: is a file, not a bundle folder \(pass the folder"):
        load_bundle(clip)
    with pytest.raises(
        BundleError, match=r"manifest.json: is a file, not a bundle folder \(pass the folder that holds it\)"
    ):
        load_bundle(bundles["tied-full"] / "manifest.json")
    with pytest.raises(BundleError, match=r"missing: no such folder"):
        load_bundle(tmp_path / "missing")


def test_an_onnxruntime_without_8bit_matmulnbits_is_named(monkeypatch, tmp_path):
    """onnxruntime 1.20 and 1.21 refuse 8-bit MatMulNBits (int8 bundles, int4's encoder) with a
    message about 4-bit support; the user is told the version the bundle needs instead."""
    import onnxruntime as ort

    def refuse(*args, **kwargs):
        raise RuntimeError(
            "matmul_nbits.cc:92 nbits_ == 4 was false. Only 4b quantization is supported for "
            "MatMulNBits op, additional bits support is planned."
        )

    monkeypatch.setattr(ort, "InferenceSession", refuse)
    with pytest.raises(BundleError, match="need onnxruntime 1.22 or later"):
        create_session(str(tmp_path / "encoder.onnx"), ["CPUExecutionProvider"])

    def other(*args, **kwargs):
        raise RuntimeError("something else")

    monkeypatch.setattr(ort, "InferenceSession", other)
    with pytest.raises(RuntimeError, match="something else"):
        create_session(str(tmp_path / "encoder.onnx"), ["CPUExecutionProvider"])


def _bundle_folder(path, text):
    path.mkdir()
    (path / "manifest.json").write_text(text)
    return path


def test_a_failed_swap_keeps_the_old_bundle(tmp_path, monkeypatch):
    """publish with an older bundle at OUT: when renaming the new one into place fails (or is
    interrupted), the old one is back at OUT, whole, and nothing hidden is left beside it."""
    from qwen_asr_edge.runtime.bundle import publish

    out = _bundle_folder(tmp_path / "out", "old")
    new = _bundle_folder(tmp_path / ".out.new", "new")
    rename = Path.rename

    def failing(self, target):
        if self == new:
            raise KeyboardInterrupt  # Ctrl-C at the worst moment, or an OSError
        return rename(self, target)

    monkeypatch.setattr(Path, "rename", failing)
    with pytest.raises(KeyboardInterrupt):
        publish(new, out)
    assert (out / "manifest.json").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == [".out.new", "out"]

    monkeypatch.setattr(Path, "rename", rename)
    publish(new, out)
    assert (out / "manifest.json").read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # the old one deleted, not left aside


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_while_publishing_waits_for_the_swap(tmp_path, signum, monkeypatch):
    """Ctrl-C or SIGTERM while the old bundle is being replaced takes effect once the new one is
    in place: `export --force` stopped then leaves a whole bundle, never none."""
    from qwen_asr_edge.runtime.bundle import publish

    out = _bundle_folder(tmp_path / "out", "old")
    new = _bundle_folder(tmp_path / ".out.new", "new")
    rename = Path.rename

    def signalled(self, target):
        if self == out:  # the old bundle going aside: the moment that used to lose both
            signal.raise_signal(signum)
        return rename(self, target)

    monkeypatch.setattr(Path, "rename", signalled)
    caught = []

    def handler(signum, frame):
        caught.append((out / "manifest.json").read_text())  # what OUT holds when it arrives
        raise KeyboardInterrupt

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        with pytest.raises(KeyboardInterrupt):
            publish(new, out)
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
    assert caught == ["new"]
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


@pytest.mark.skipif(not hasattr(os, "O_DIRECTORY"), reason="flock is POSIX")
def test_staging_folders_of_killed_runs_are_removed_not_those_in_use(tmp_path, caplog):
    """A run killed by SIGKILL or the OOM killer cannot delete its hidden staging folder (a whole
    bundle's size): the next run for the same output does, but not a folder another run holds
    locked, nor a previous bundle set aside by publish, nor another output's, nor one named as
    versions that took no lock named theirs (such a run may still be writing it)."""
    import fcntl

    from qwen_asr_edge.runtime.bundle import staged

    out = tmp_path / "out"
    names = [
        ".out.partial-killed_1",
        ".out.partial-in_use_1",
        ".out.old.k3pt_q9z",
        ".out2.partial-abcdefgh",
        ".out.partial-x",
        ".out.abcdefgh",  # an older version's staging folder
    ]
    for name in names:
        (tmp_path / name).mkdir()
        (tmp_path / name / "encoder.onnx").write_bytes(b"\0" * 100)
    held = os.open(tmp_path / ".out.partial-in_use_1", os.O_RDONLY)
    fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)  # as the run writing it holds it
    try:
        with caplog.at_level("WARNING", logger="qwen_asr_edge"), staged(out) as work:
            (work / "manifest.json").write_text("new")
            mine = [p for p in tmp_path.iterdir() if p.name not in {*names, "out"}]
            assert len(mine) == 1 and mine[0].name.startswith(".out.partial-")
            with pytest.raises(BlockingIOError):  # this run's own folder is locked too
                fd = os.open(mine[0], os.O_RDONLY)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                finally:
                    os.close(fd)
    finally:
        os.close(held)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted({*names, "out"} - {".out.partial-killed_1"})
    assert (out / "manifest.json").read_text() == "new"
    assert "removing " + str(tmp_path / ".out.partial-killed_1") in caplog.text
