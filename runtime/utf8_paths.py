"""Paths for libraries that take them as UTF-8 text (onnxruntime, onnx, onnxruntime's quantizer,
tokenizers): a folder whose name has other bytes (an old archive's Latin-1, which Python keeps as
surrogate escapes) cannot be named to them, so they are given a link to it whose name is UTF-8."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def is_utf8(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` can be passed on as UTF-8 text (False for surrogate-escaped bytes)."""
    try:
        os.fspath(path).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


@contextmanager
def utf8_alias(folder: str | os.PathLike[str]) -> Iterator[Path]:
    """``folder`` itself when its path is UTF-8 text; otherwise, for the block, a symbolic link to
    it in the temp folder (whose name is), so that files are read and written through it where they
    are and names inside it resolve (a graph's external weights beside it). The link is removed
    after the block; what was written through it stays. The price: a library's own error message
    names the link.

    Raises:
        OSError: the link cannot be made (no symbolic links on this file system).
    """
    folder = Path(folder)
    if is_utf8(folder):
        yield folder
        return
    with tempfile.TemporaryDirectory(prefix="qwen-asr-edge-") as tmp:
        link = Path(tmp, "utf8")
        os.symlink(os.path.abspath(folder), link, target_is_directory=True)
        yield link
