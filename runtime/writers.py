"""Transcripts to files: one writer class per format, each written to a temp file then renamed."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import ClassVar

from .results import Transcript


class ResultWriter:
    extension: ClassVar[str]

    def format(self, transcript: Transcript) -> str:
        raise NotImplementedError

    def write(self, transcript: Transcript, out_dir: str | Path, stem: str) -> Path:
        """Write ``out_dir/stem.ext`` atomically; a crash leaves no half-written file behind."""
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        target = out_dir / f"{stem}.{self.extension}"
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=out_dir)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(self.format(transcript))
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return target


class TxtWriter(ResultWriter):
    extension = "txt"

    def format(self, transcript: Transcript) -> str:
        return transcript.text + "\n"


class JsonWriter(ResultWriter):
    extension = "json"

    def format(self, transcript: Transcript) -> str:
        return json.dumps(transcript.to_dict(), ensure_ascii=False, indent=2) + "\n"


WRITERS: dict[str, type[ResultWriter]] = {"txt": TxtWriter, "json": JsonWriter}


def get_writer(fmt: str) -> ResultWriter:
    try:
        return WRITERS[fmt]()
    except KeyError:
        raise ValueError(f"unknown format {fmt!r}; choose from {', '.join(WRITERS)}") from None
