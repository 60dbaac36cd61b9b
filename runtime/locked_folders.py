"""Temporary folders that a killed process cannot leave behind for good.

A run deletes its own temp folder when it ends, even on Ctrl-C or SIGTERM, but SIGKILL (the OOM
killer) and power cuts give it no chance. So each folder is made with ``mkdtemp`` and held under
an exclusive ``flock`` while in use; the kernel drops the lock when its process dies, however it
dies, and the next run of the same kind deletes the folders nobody holds. POSIX only: elsewhere
(Windows), and on file systems without ``flock``, folders are not locked and never swept.

A prefix must be one that no version without the lock ever used: such a version's folder holds
no lock while in use, and a sweep would take it from under it (a server of an older install
running beside a newer one lost its uploads' folder that way while this was written).
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import display_name

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger("qwen_asr_edge")

_SUFFIX = 8  # the random characters mkdtemp adds (letters, digits and "_", never a dot)


@contextmanager
def locked_temp_folder(prefix: str, parent: str | os.PathLike[str] | None = None) -> Iterator[Path]:
    """A new folder ``PREFIX`` + 8 characters in ``parent`` (the temp folder by default), locked
    for the block and removed when it ends, as ``TemporaryDirectory`` (one renamed away, a
    published bundle, is gone already). The folders of this prefix that no process holds, left by
    runs killed outright, are deleted first, each with a warning.

    Raises:
        OSError: the folder cannot be made.
    """
    _remove_abandoned(prefix, parent)
    folder, fd = _make_locked(prefix, parent)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)  # under the lock: no sweep can race it
        if fd is not None:
            os.close(fd)


def _remove_abandoned(prefix: str, parent: str | os.PathLike[str] | None) -> None:
    """Delete the folders ``locked_temp_folder(prefix, parent)`` made that no process holds: those
    of runs killed before they could, each with a warning. Never a folder in use, a link, a name
    with more after the 8 characters, or a folder this user cannot open."""
    if fcntl is None:
        return
    root = Path(parent if parent is not None else tempfile.gettempdir())
    try:
        names = [e.name for e in os.scandir(root) if e.is_dir(follow_symlinks=False)]
    except OSError:
        return
    for name in names:
        rest = name[len(prefix) :]
        if not name.startswith(prefix) or len(rest) != _SUFFIX or "." in rest:
            continue
        folder = root / name
        try:
            fd = _try_lock(folder)
        except OSError:  # gone meanwhile, another user's, or no flock here: left alone
            continue
        if fd is None:
            continue  # a run using it now
        try:
            log.warning("removing %s: left by a run that was killed", display_name(folder))
            shutil.rmtree(folder, ignore_errors=True)
        finally:
            os.close(fd)


def _make_locked(prefix: str, parent: str | os.PathLike[str] | None) -> tuple[Path, int | None]:
    while True:
        folder = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
        if fcntl is None:
            return folder, None
        try:
            fd = _try_lock(folder)
        except FileNotFoundError:  # another run's sweep took it before the lock: make another
            continue
        except OSError:  # no flock on this file system (some network mounts): unlocked
            return folder, None
        if fd is None:
            continue  # a sweep holds it, to delete it
        try:
            if os.path.samestat(os.fstat(fd), os.stat(folder, follow_symlinks=False)):
                return folder, fd
        except FileNotFoundError:
            pass
        os.close(fd)  # deleted by a sweep before the lock


def _try_lock(folder: Path) -> int | None:
    """An open descriptor of ``folder`` holding its exclusive ``flock``; None where another
    process holds it.

    Raises:
        OSError: ``folder`` cannot be opened, or its file system has no ``flock``.
    """
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    except OSError:
        os.close(fd)
        raise
    return fd
