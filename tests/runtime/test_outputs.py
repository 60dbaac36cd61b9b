"""Where transcripts go: names that never collide, destinations checked before work, atomic writes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from qwen_asr_edge.runtime.errors import OutputError, OutputExistsError
from qwen_asr_edge.runtime.outputs import output_names, plan_outputs, write_text


def test_names_are_stems_unless_they_clash(tmp_path):
    sources = [tmp_path / "talk.wav", tmp_path / "clip.wav", tmp_path / "clip.flac", tmp_path / "x" / "y.mp3"]
    assert output_names(sources, "txt") == [
        Path("talk.txt"),
        Path("clip.wav.txt"),
        Path("clip.flac.txt"),
        Path("y.txt"),
    ]


def test_same_file_names_in_different_folders_keep_their_folders(tmp_path):
    sources = [tmp_path / "a" / "take.wav", tmp_path / "b" / "take.wav", tmp_path / "c.wav"]
    assert output_names(sources, "json") == [Path("a/take.json"), Path("b/take.json"), Path("c.json")]
    deeper = [tmp_path / "x" / "a" / "take.wav", tmp_path / "y" / "a" / "take.wav"]
    assert output_names(deeper, "srt") == [Path("x/a/take.srt"), Path("y/a/take.srt")]
    both = [Path("/d/take"), Path("/d/take.wav"), Path("/d/a/take"), Path("/d/a/take.wav")]
    assert output_names(both, "txt") == [
        Path("d/take.txt"),
        Path("d/take.wav.txt"),
        Path("a/take.txt"),
        Path("a/take.wav.txt"),
    ]


segment = st.sampled_from(["a", "b", "take", "take.wav", "take.flac", "Take.wav", "x.y"])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(segment, min_size=1, max_size=4), min_size=1, max_size=8))
@example([["take"], ["take.wav"], ["a", "take"], ["a", "take.wav"]])  # found by this test: the
# folder levels kept only stems, so a/take and a/take.wav never came apart
def test_distinct_inputs_always_get_distinct_outputs(parts):
    # distinct inputs, as the CLI gives them; some at the file system's root
    sources = list(dict.fromkeys(Path("/", *p) if len(p) % 2 else Path("/data", *p) for p in parts))
    names = output_names(sources, "txt")
    assert len(set(names)) == len(names)
    assert all(n.suffix == ".txt" and not n.is_absolute() and ".." not in n.parts for n in names)


def test_plan_refuses_existing_outputs_unless_forced(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.txt").write_text("earlier work")
    sources = [tmp_path / "a.wav", tmp_path / "b.wav"]
    with pytest.raises(OutputExistsError, match=r"a\.txt exists; pass --force to replace it"):
        plan_outputs(sources, out, "txt")
    assert (out / "a.txt").read_text() == "earlier work"
    assert plan_outputs(sources, out, "txt", force=True) == [out / "a.txt", out / "b.txt"]


@pytest.mark.parametrize(
    "make, problem",
    [
        (lambda d: (d / "file").write_text("x") and d / "file", "is a file, not a folder"),
        (lambda d: (d / "file").write_text("x") and d / "file" / "sub", "cannot write there"),
        (lambda d: Path("/proc/qwen-asr-edge-test"), "cannot write there"),
    ],
)
def test_plan_refuses_unusable_output_dirs(tmp_path, make, problem):
    out = make(tmp_path)
    with pytest.raises(OutputError, match=problem) as caught:
        plan_outputs([tmp_path / "a.wav"], out, "txt")
    assert str(caught.value).startswith(str(out))


def test_plan_refuses_a_folder_where_an_output_goes_even_with_force(tmp_path):
    (tmp_path / "out" / "a.txt").mkdir(parents=True)
    with pytest.raises(OutputError, match=r"a\.txt: is a folder"):
        plan_outputs([tmp_path / "a.wav"], tmp_path / "out", "txt", force=True)


def test_write_text_gives_usual_permissions_and_leaves_no_temp_files(tmp_path):
    umask = os.umask(0)
    os.umask(umask)
    target = write_text(tmp_path / "sub" / "a.txt", "hallo\n")
    assert target.read_text(encoding="utf-8") == "hallo\n"
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask  # not mkstemp's 0600
    (tmp_path / "dir.txt").mkdir()
    with pytest.raises(OutputError, match="is a folder"):
        write_text(tmp_path / "dir.txt", "x")
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["a.txt", "dir.txt", "sub"]


@pytest.mark.parametrize("name", ["L" * 250 + ".json", "日本語" * 27 + ".json", "caf\udce9" * 60 + ".txt"])
def test_write_text_takes_names_up_to_the_file_system_s_limit(tmp_path, name):
    """A name of 242-255 bytes (an 80-character Japanese title) fits, but its temp name did not:
    "File name too long" (found by a new user)."""
    assert len(os.fsencode(name)) > 241
    target = write_text(tmp_path / name, "hallo\n", replace=True)
    assert target.read_text(encoding="utf-8") == "hallo\n"
    assert [p.name for p in tmp_path.iterdir()] == [name]


def test_write_text_never_replaces_a_file_that_appeared_unless_asked(tmp_path):
    """Another run, or the user, wrote the output after this run planned it: it is kept."""
    target = tmp_path / "a.txt"
    target.write_text("theirs\n")
    with pytest.raises(OutputExistsError, match="appeared during this run"):
        write_text(target, "ours\n")
    assert target.read_text() == "theirs\n"
    (tmp_path / "gone.txt").symlink_to(tmp_path / "nowhere")  # a dangling link is something too
    with pytest.raises(OutputExistsError):
        write_text(tmp_path / "gone.txt", "ours\n")
    assert write_text(target, "ours\n", replace=True).read_text() == "ours\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "gone.txt"]  # no temp files


def test_plan_counts_a_dangling_link_as_an_existing_output(tmp_path):
    (tmp_path / "a.txt").symlink_to(tmp_path / "nowhere")
    with pytest.raises(OutputExistsError, match=r"a\.txt exists"):
        plan_outputs([tmp_path / "a.wav"], tmp_path, "txt")
