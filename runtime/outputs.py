"""Where transcripts go: one output file per input, names that never collide, destinations checked
before any work, and each file written atomically.

A run's outputs are planned before the first input is decoded (``plan_outputs``), so a bad
``--output-dir`` or an output that would replace an existing file is refused in one line before
minutes of work, and two inputs never share an output (``a/take.wav`` and ``b/take.wav``, or
``clip.wav`` and ``clip.flac``).
"""

from __future__ import annotations

import os
import secrets
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from .errors import OutputError, OutputExistsError


def output_names(sources: Sequence[Path], extension: str) -> list[Path]:
    """Relative output paths, one per source, distinct from each other.

    Each name is the source's stem plus ``extension`` (``talk.wav`` -> ``talk.txt``, as whisper
    names them). Sources whose names would collide keep more of their own name, just as far as
    it takes to tell them apart: first the whole file name (``clip.wav.txt``, ``clip.flac.txt``),
    then their folders as sub-folders (``a/take.txt``, ``b/take.txt``; ``a/take.wav.txt`` where
    ``a/take`` is an input too).

    Args:
        sources: Input files, each given once (distinct resolved paths).
        extension: Without the dot ("txt").

    Returns:
        Paths relative to the output folder, in the order of ``sources``.
    """
    full = [Path(os.path.abspath(s)) for s in sources]
    folders = [p.parent.parts[1:] for p in full]  # without the root: names stay relative
    levels = [0] * len(full)

    def name(i: int) -> Path:
        # Levels alternate stem and whole name, with one more folder every two levels: 0 take.txt,
        # 1 take.wav.txt, 2 a/take.txt, 3 a/take.wav.txt, ... (a/take and a/take.wav need level 3).
        path, level = full[i], levels[i]
        base = path.name if level % 2 else path.stem
        kept = folders[i][len(folders[i]) - level // 2 :] if level >= 2 else ()
        return Path(*kept, f"{base}.{extension}")

    while True:
        names = [name(i) for i in range(len(full))]
        counts = Counter(names)
        clashing = [i for i, n in enumerate(names) if counts[n] > 1]
        if not clashing:
            return names
        deeper = [i for i in clashing if levels[i] < 2 * len(folders[i]) + 1]
        if not deeper:  # only for the same path given twice
            raise ValueError(f"{full[clashing[0]]} is given more than once")
        for i in deeper:
            levels[i] += 1


def check_output_dir(out_dir: Path) -> None:
    """Create ``out_dir`` if needed and prove it writable, before any work.

    Raises:
        OutputError: it is a file, cannot be created, or cannot be written to.
    """
    if out_dir.exists() and not out_dir.is_dir():
        raise OutputError(out_dir, "is a file, not a folder (--output-dir takes a folder)")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        probe = out_dir / f".qwen-asr-edge-probe-{secrets.token_hex(4)}"
        probe.touch(exist_ok=False)
        probe.unlink()
    except OSError as e:
        raise OutputError(out_dir, f"cannot write there ({e.strerror or e})") from None


def plan_outputs(sources: Sequence[Path], out_dir: Path, extension: str, force: bool = False) -> list[Path]:
    """The output file of every source, checked before any work.

    Args:
        sources: Input files, each given once.
        out_dir: The output folder (created if missing).
        extension: The format's file extension, without the dot.
        force: Replace existing output files (never a folder in the way).

    Returns:
        One path under ``out_dir`` per source, in order.

    Raises:
        OutputError: ``out_dir`` unusable, or a folder where an output file should go.
        OutputExistsError: outputs exist and ``force`` is false (all named in the message's count).
    """
    check_output_dir(out_dir)
    targets = [out_dir / n for n in output_names(sources, extension)]
    folders = [t for t in targets if t.is_dir()]
    if folders:
        raise OutputError(folders[0], "is a folder, where an output file would go")
    existing = [t for t in targets if os.path.lexists(t)]  # a dangling link too
    if existing and not force:
        fix = "pass --force to replace it"
        if len(existing) > 1:
            more = len(existing) - 1
            fix = (
                f"{more} more output{'s exist' if more > 1 else ' exists'} too; pass --force to replace them"
            )
        raise OutputExistsError(existing[0], fix)
    return targets


def write_text(target: Path, text: str, replace: bool = False) -> Path:
    """Write ``text`` (UTF-8) to ``target`` atomically: a temporary file beside it, then a rename,
    so a crash leaves either the old file or the new one, never half of one. The file gets the
    usual permissions (0666 less the umask), as ``open`` would give it.

    Args:
        target: The file to write.
        text: Its content.
        replace: Replace ``target`` if it exists. Without it, a file that appeared there since the
            run was planned (a user's, another run's) is kept: the new file is linked in only
            where nothing is, in one step, so no check-then-write race can lose it.

    Raises:
        OutputExistsError: ``target`` exists (a file, or a link even to nothing) and not ``replace``.
        OutputError: it cannot be written (a folder in the way, no space, no permission).
    """
    target = Path(target)
    if target.is_dir():
        raise OutputError(target, "is a folder, where an output file would go")
    tmp = target.with_name(temp_name(target.name))
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        try:
            with os.fdopen(fd, "w", encoding="utf-8", errors="surrogateescape") as f:
                f.write(text)
            if replace:
                os.replace(tmp, target)
            else:
                _link_where_nothing_is(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
    except FileExistsError:
        raise OutputExistsError(target, "it appeared during this run; pass --force to replace it") from None
    except OSError as e:
        raise OutputError(target, f"cannot write ({e.strerror or e})") from None
    return target


# Most file systems allow 255 bytes per name; the temp name must fit where the target's does.
_NAME_BYTES = 255


def temp_name(name: str) -> str:
    """A hidden, unique temp name beside ``name`` (``.NAME.xxxxxxxx.tmp``), shortened where that
    would pass the 255 bytes a name may have (an 80-character Japanese title already is 240)."""
    suffix = f".{secrets.token_hex(4)}.tmp"
    room = _NAME_BYTES - 1 - len(suffix)
    head = os.fsencode(name)
    if len(head) > room:
        name = os.fsdecode(head[:room])  # a character cut in two stays its bytes (surrogate escapes)
    return f".{name}{suffix}"


def _link_where_nothing_is(tmp: Path, target: Path) -> None:
    """Give ``tmp``'s content the name ``target`` unless something has that name.

    Raises:
        FileExistsError: something has.
    """
    try:
        os.link(tmp, target)  # atomic, and fails if target exists
    except FileExistsError:
        raise
    except OSError:  # no hard links here (FAT, exFAT, some network file systems): claim the name
        os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        os.replace(tmp, target)
