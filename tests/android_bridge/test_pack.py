"""android-pack: the log-mel graph equals LogMel; mobile bundles of the demo model and of a tiny
model (fp32 and int4) hold what the README's manifest says, every graph loads with the I/O the
manifest names, the .ort graphs run through the runtime's own code give the golden tokens, and bad
inputs are refused with one line and nothing left behind."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import soundfile as sf

from qwen_asr_edge.android_bridge import cli, pack
from qwen_asr_edge.android_bridge.preprocessor import build_preprocessor
from qwen_asr_edge.runtime import Transcriber, demo_bundle, demo_examples, load_bundle
from qwen_asr_edge.runtime.audio import load_audio
from qwen_asr_edge.runtime.bundle import Bundle, MelSpec, sha256_of
from qwen_asr_edge.runtime.mel import LogMel
from qwen_asr_edge.runtime.options import DEFAULTS
from tests.support import SR, noise_clip, run_cli

README_KEYS = {
    "format", "format_version", "min_onnxruntime", "graph_format", "source", "graphs", "mel", "encoder",
    "kv_cache", "tokens", "languages", "iso_codes", "prompt", "decoding", "tokenizer", "markup", "files",
    "producer",
}  # fmt: skip
CPU = ["CPUExecutionProvider"]


def _clips() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(1)
    speech = load_audio(demo_examples()[0]["audio"])
    tone = 0.5 * np.sin(2 * np.pi * 440 * np.arange(SR) / SR)
    return {
        "speech": speech,
        "noise": noise_clip(3.0, seed=2),
        "silence+tone": np.concatenate([np.zeros(SR), tone]).astype(np.float32),
        "shortest": (0.1 * rng.standard_normal(201)).astype(np.float32),  # LogMel.min_samples()
        "30 s": np.resize(load_audio(demo_examples()[1]["audio"]), 30 * SR),
    }


def _pack(bundle: Path, out: Path, *args: str) -> Path:
    """android-pack through its CLI entry point (in-process: one import of onnxruntime)."""
    assert cli.main([str(bundle), str(out), *args]) == 0
    return out


class _Packed:
    """name -> (source bundle, its mobile bundle), each packed the first time a test asks (the
    tiny ones need the session's exported bundles, so demo-only runs never export)."""

    def __init__(self, request, root: Path):
        self.request, self.root, self.made = request, root, {}

    def _source(self, name: str) -> Path:
        if name.startswith("demo"):
            return demo_bundle()
        bundles = self.request.getfixturevalue("bundles")
        if name == "tiny":
            return bundles["tied-full"]
        from qwen_asr_edge.quant.quantize import quantize_bundle
        from qwen_asr_edge.quant.recipes import get_recipe

        return quantize_bundle(bundles["tied-full"], self.root / "src-int4", get_recipe("int4"))[0]

    def __getitem__(self, name: str) -> tuple[Path, Path]:
        if name not in self.made:
            src = self._source(name)
            extra = ["--format", "onnx"] if name.endswith("-onnx") else []
            self.made[name] = (src, _pack(src, self.root / name, *extra))
        return self.made[name]


@pytest.fixture(scope="module")
def mobile(request, tmp_path_factory) -> _Packed:
    return _Packed(request, tmp_path_factory.mktemp("mobile"))


def _manifest(folder: Path) -> dict:
    return json.loads((folder / "manifest.json").read_text(encoding="utf-8"))


def _golden(folder: Path) -> dict:
    return json.loads((folder / "golden" / "golden.json").read_text(encoding="utf-8"))


def _pcm(folder: Path, rel: str) -> np.ndarray:
    return np.fromfile(folder / rel, dtype="<f4")


# -- the log-mel graph --------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(_clips()))
def test_preprocessor_equals_logmel(mobile, name):
    wav = _clips()[name]
    want = LogMel(MelSpec())(wav)
    graphs = {
        "onnx": build_preprocessor(MelSpec()).SerializeToString(),
        "ort": str(mobile["demo"][1] / "preprocessor.ort"),
    }
    for kind, graph in graphs.items():
        got = ort.InferenceSession(graph, providers=CPU).run(["log_mel"], {"pcm": wav[None]})[0]
        assert got.shape == (1, 128, wav.shape[0] // 160), kind
        assert np.abs(got[0] - want).max() <= 1e-4, kind


def test_preprocessor_follows_the_mel_spec():
    spec = MelSpec(n_fft=512, hop_length=128, n_mels=80, f_max=7600.0, log_floor_db=6.0)
    wav = noise_clip(1.3, seed=3)
    got = ort.InferenceSession(build_preprocessor(spec).SerializeToString(), providers=CPU).run(
        None, {"pcm": wav[None]}
    )[0]
    assert got.shape == (1, 80, wav.shape[0] // 128)
    assert np.abs(got[0] - LogMel(spec)(wav)).max() <= 1e-4


# -- what a mobile bundle holds -------------------------------------------------------------------


@pytest.mark.parametrize("name", ["demo", "tiny", "tiny-int4", "demo-onnx"])
def test_files_manifest_and_hashes(mobile, name):
    src, out = mobile[name]
    m, source = _manifest(out), load_bundle(src).manifest
    assert set(m) >= README_KEYS
    assert (m["format"], m["format_version"], m["min_onnxruntime"]) == (
        "qwen-asr-edge-mobile",
        1,
        ort.__version__,
    )
    suffix = "onnx" if name.endswith("onnx") else "ort"
    assert m["graph_format"] == suffix
    assert {g: spec["file"] for g, spec in m["graphs"].items()} == {
        g: f"{g}.{suffix}" for g in ("preprocessor", "encoder", "decoder")
    }
    assert m["source"]["recipe"] == source.recipe and m["source"]["model"]["kind"] == "asr"
    assert m["tokens"]["eos"] == source.tokens.eos and m["languages"] == source.languages
    assert all(m["iso_codes"][c] in source.languages for c in m["iso_codes"])
    assert m["decoding"] == {
        "tokens_per_second": DEFAULTS.tokens_per_second,
        "prefix_tokens": Transcriber(src)._prefix_tokens,
        "max_chunk_seconds": DEFAULTS.max_chunk_seconds,
        "repetition_guard": dataclasses.asdict(DEFAULTS.repetition_guard),
    }
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert sorted(m["files"]) == [f for f in files if f != "manifest.json"]
    for rel, entry in m["files"].items():
        assert entry == {"sha256": sha256_of(out / rel), "bytes": (out / rel).stat().st_size}
    wanted = {"tokenizer/vocab.txt", "tokenizer/merges.txt", "golden/golden.json"}
    if suffix == "ort":
        wanted.add("required_operators.config")
        config = (out / "required_operators.config").read_text().splitlines()
        listed = [x for x in config if x.startswith("# - ")]
        assert listed == ["# - decoder.ort", "# - encoder.ort", "# - preprocessor.ort"]  # no temp paths
        assert not list(out.glob("*.onnx*"))
    assert wanted <= set(files)
    assert not list(out.parent.glob(f".{out.name}.*"))  # no temp folder left


@pytest.mark.parametrize("name", ["demo", "tiny", "tiny-int4", "demo-onnx"])
def test_every_graph_loads_with_the_manifests_io(mobile, name):
    out = mobile[name][1]
    for spec in _manifest(out)["graphs"].values():
        session = ort.InferenceSession(str(out / spec["file"]), providers=CPU)
        for want, got in ((spec["inputs"], session.get_inputs()), (spec["outputs"], session.get_outputs())):
            assert [t["name"] for t in want] == [g.name for g in got]
            for t, g in zip(want, got, strict=True):
                assert pack._ORT_DTYPES[g.type] == t["dtype"]
                assert [d if isinstance(d, int) else "sym" for d in g.shape] == [
                    d if isinstance(d, int) else "sym" for d in t["shape"]
                ]


@pytest.mark.parametrize("name", ["demo", "tiny"])
def test_prompt_ids_compose(mobile, name):
    src, out = mobile[name]
    m, asr = _manifest(out), Transcriber(src)
    prompt = m["prompt"]
    assert prompt["ids"] == asr.prompt_ids(1).tolist()
    assert set(prompt["language_ids"]) == set(m["languages"])
    for language, tail in prompt["language_ids"].items():
        assert prompt["ids"] + tail == asr.prompt_ids(1, "", language).tolist()
    assert "<asr_text>" not in m["markup"] and "<|im_end|>" in m["markup"]
    assert m["tokenizer"]["vocab"] == "tokenizer/vocab.txt"


# -- golden vectors and .ort parity -------------------------------------------------------------


def _ort_transcriber(src: Path, out: Path, tmp: Path) -> Transcriber:
    """The runtime on the mobile bundle's .ort encoder and decoder (its tokenizer.json from the
    source bundle): the runtime's own code path, other graph files."""
    source = load_bundle(src)
    tmp.mkdir()
    (tmp / "tokenizer.json").symlink_to(source.file(source.manifest.tokenizer))
    graphs = {}
    for name in ("encoder", "decoder"):
        (tmp / f"{name}.ort").symlink_to(out / f"{name}.ort")
        graphs[name] = dataclasses.replace(source.manifest.graphs[name], file=f"{name}.ort")
    manifest = dataclasses.replace(source.manifest, graphs=graphs, tokenizer="tokenizer.json")
    return Transcriber(Bundle(tmp, manifest), providers="cpu")


@pytest.mark.parametrize("name", ["demo", "tiny", "tiny-int4"])
def test_ort_graphs_give_the_golden_tokens(mobile, name, tmp_path):
    src, out = mobile[name]
    golden = _golden(out)
    assert len(golden["cases"]) == 6  # two demo clips x (detect, forced, context)
    asr = _ort_transcriber(src, out, tmp_path / "ort")
    mismatched = []
    for case in golden["cases"]:
        wav = _pcm(out, case["pcm"])
        assert wav.shape == (case["samples"],) and case["sample_rate"] == SR
        encoding = asr.encode([wav])
        assert int(encoding.lengths[0]) == case["audio_tokens"]
        prompt = asr.prompt_ids(case["audio_tokens"], case["context"], case["language"])
        assert prompt.tolist() == case["prompt_ids"]
        segment = asr.transcribe(wav, language=case["language"], context=case["context"]).segments[0]
        got = (segment.tokens, segment.text, segment.language, segment.finish_reason)
        want = (case["tokens"], case["text"], case["detected_language"], case["finish_reason"])
        if got != want:
            mismatched.append((case["name"], got, want))
        assert case["tokens"][-1] in asr.bundle.manifest.tokens.eos or case["finish_reason"] != "stop"
    assert not mismatched


def test_golden_pcm_and_mel_are_the_runtimes(mobile):
    out = mobile["demo"][1]
    golden = _golden(out)
    by_file = {Path(e["audio"]).stem: e for e in demo_examples()}
    for case in golden["cases"]:
        stem = Path(case["pcm"]).stem
        assert np.array_equal(_pcm(out, case["pcm"]), load_audio(by_file[stem]["audio"]))
        if case["name"].endswith("-forced"):
            assert case["language"] == by_file[stem]["language"]
    mel = golden["mel"]
    values = _pcm(out, mel["file"]).reshape(mel["n_mels"], mel["frames"])
    wav = _pcm(out, mel["pcm"])
    assert np.array_equal(values, LogMel(MelSpec())(wav))
    session = ort.InferenceSession(str(out / "preprocessor.ort"), providers=CPU)
    assert np.abs(session.run(None, {"pcm": wav[None]})[0][0] - values).max() <= 1e-4


def test_golden_clips_from_files(tmp_path):
    clip = tmp_path / "my clip.flac"
    sf.write(clip, noise_clip(2.0, seed=4), 8000)  # another rate: resampled as the runtime does
    out = pack.pack_bundle(demo_bundle(), tmp_path / "out", golden=[clip])
    golden = _golden(out)
    assert [c["name"] for c in golden["cases"]] == ["my_clip-detect", "my_clip-forced", "my_clip-context"]
    assert golden["cases"][1]["language"] == "English"  # unknown: the bundle's first language
    assert np.array_equal(_pcm(out, golden["cases"][0]["pcm"]), load_audio(clip))


def test_an_aligner_is_said_to_be_left_out_and_golden_clips_warn_nothing(bundles, tmp_path, capsys):
    """Found by a new user: the aligner was dropped without a word, and the golden step's "golden
    clip ...: reached its cap" warnings (random weights loop) looked like failures."""
    capsys.readouterr()
    out = _pack(bundles["untied-full-aligner"], tmp_path / "out", "--format", "onnx")  # no ORT conversion
    said = capsys.readouterr().err
    assert "its forced aligner is left out (the Android runtime has no word times)" in said, said
    assert "golden vectors for" in said and "golden clip" not in said, said
    assert _golden(out)["cases"]


# -- refusals -----------------------------------------------------------------------------------


def _one_line_error(capsys, code: int) -> str:
    """The error line: the last on stderr, the only one that says error (progress lines may precede it)."""
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and lines and lines[-1].startswith("error: "), lines
    assert sum("error" in line for line in lines) == 1, lines
    return lines[-1]


def test_refuses_an_existing_out_unless_forced(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "manifest.json").write_text("{}")
    err = _one_line_error(capsys, cli.main([str(demo_bundle()), str(out)]))
    assert str(out) in err and "--force" in err
    assert (out / "manifest.json").read_text() == "{}"
    assert cli.main([str(demo_bundle()), str(out), "--force", "--format", "onnx"]) == 0
    assert _manifest(out)["graph_format"] == "onnx"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_refuses_an_aligner_only_bundle(tmp_path, capsys):
    fake = tmp_path / "aligner"
    shutil.copytree(demo_bundle(), fake)
    m = _manifest(fake)
    m["model"]["kind"] = "aligner"
    m["aligner"] = {
        "timestamp_token_id": 830, "segment_ms": 80, "classes": 10, "languages": ["English"],
        "max_seconds": 180.0, "encoder_attention": "full",
    }  # fmt: skip
    (fake / "manifest.json").write_text(json.dumps(m))
    err = _one_line_error(capsys, cli.main([str(fake), str(tmp_path / "out")]))
    assert "aligner" in err and str(fake) in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["aligner"]


def test_refuses_a_missing_bundle(tmp_path):
    result = run_cli("android-pack", tmp_path / "nope", tmp_path / "out", timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip().startswith("error: bundle") and "no such folder" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


def test_refuses_a_mobile_bundle_as_its_source(mobile, tmp_path, capsys):
    _, packed = mobile["demo-ort"]
    err = _one_line_error(capsys, cli.main([str(packed), str(tmp_path / "out")]))
    assert "is a mobile bundle already" in err and "packed from" in err
    assert list(tmp_path.iterdir()) == []


def test_an_out_that_cannot_be_created_is_one_line(tmp_path, capsys):
    # /proc takes no new folders, even for root (a read-only mount or /sys do the same).
    err = _one_line_error(capsys, cli.main([str(demo_bundle()), "/proc/qwen-asr-edge-test/out"]))
    assert "/proc/qwen-asr-edge-test/out: cannot be written" in err


@pytest.mark.parametrize("kind", ["long", "unreadable", "missing"])
def test_refuses_bad_golden_clips(tmp_path, capsys, kind):
    clip = tmp_path / "clips" / "clip.wav"
    clip.parent.mkdir()
    if kind == "long":
        sf.write(clip, noise_clip(DEFAULTS.max_chunk_seconds + 1, seed=5), SR)
    elif kind == "unreadable":
        clip.write_text("not audio")
    code = cli.main([str(demo_bundle()), str(tmp_path / "out"), "--golden", str(clip)])
    err = _one_line_error(capsys, code)
    assert str(clip) in err
    if kind == "long":
        assert "longer than one chunk" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clips"]


def test_nothing_is_left_after_an_interrupt(tmp_path, monkeypatch):
    def interrupted(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(pack, "_write_golden", interrupted)
    with pytest.raises(KeyboardInterrupt):
        pack.pack_bundle(demo_bundle(), tmp_path / "out")
    assert list(tmp_path.iterdir()) == []


def test_refuses_a_graph_whose_io_differs(tmp_path, monkeypatch, capsys):
    real = pack.preprocessor.io_specs

    def renamed(spec):
        inputs, outputs = real(spec)
        return [dataclasses.replace(inputs[0], name="audio")], outputs

    monkeypatch.setattr(pack.preprocessor, "io_specs", renamed)
    err = _one_line_error(capsys, cli.main([str(demo_bundle()), str(tmp_path / "out")]))
    assert "preprocessor.ort" in err and "inputs differ from the manifest" in err
    assert list(tmp_path.iterdir()) == []


def test_help_names_the_command():
    result = run_cli("--help", timeout=60)
    assert "android-pack" in result.stdout
    help_text = run_cli("android-pack", "--help", timeout=60).stdout
    assert "--golden" in help_text and "--format" in help_text
