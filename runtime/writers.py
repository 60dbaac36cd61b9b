"""Transcripts as text: one writer class per format (txt, json, srt, vtt, tsv)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import ClassVar

from .outputs import write_text
from .results import Transcript
from .subtitles import cues, timestamp


class ResultWriter:
    extension: ClassVar[str]

    def format(self, transcript: Transcript) -> str:
        raise NotImplementedError

    def write(self, transcript: Transcript, out_dir: str | Path, stem: str) -> Path:
        """Write ``out_dir/stem.ext`` atomically (``outputs.write_text``).

        Raises:
            OutputError: it cannot be written.
        """
        return write_text(Path(out_dir) / f"{stem}.{self.extension}", self.format(transcript))


class TxtWriter(ResultWriter):
    extension = "txt"

    def format(self, transcript: Transcript) -> str:
        return transcript.text + "\n"


class JsonWriter(ResultWriter):
    extension = "json"

    def format(self, transcript: Transcript) -> str:
        return json.dumps(transcript.to_dict(), ensure_ascii=False, indent=2) + "\n"


class SrtWriter(ResultWriter):
    extension = "srt"

    def format(self, transcript: Transcript) -> str:
        blocks = [
            f"{i}\n{timestamp(c.start, ',')} --> {timestamp(c.end, ',')}\n{c.text}\n"
            for i, c in enumerate(cues(transcript), start=1)
        ]
        return "\n".join(blocks)


class VttWriter(ResultWriter):
    extension = "vtt"

    def format(self, transcript: Transcript) -> str:
        blocks = [
            f"{timestamp(c.start, '.')} --> {timestamp(c.end, '.')}\n{c.text}\n" for c in cues(transcript)
        ]
        return "WEBVTT\n\n" + "\n".join(blocks)


class TsvWriter(ResultWriter):
    """start and end in integer milliseconds, then the text: one line per cue (as whisper writes)."""

    extension = "tsv"

    def format(self, transcript: Transcript) -> str:
        lines = ["start\tend\ttext"]
        lines += [f"{round(c.start * 1000)}\t{round(c.end * 1000)}\t{c.text}" for c in cues(transcript)]
        return "\n".join(lines) + "\n"


WRITERS: dict[str, type[ResultWriter]] = {
    "txt": TxtWriter,
    "json": JsonWriter,
    "srt": SrtWriter,
    "vtt": VttWriter,
    "tsv": TsvWriter,
}


def get_writer(fmt: str) -> ResultWriter:
    try:
        return WRITERS[fmt]()
    except KeyError:
        raise ValueError(f"unknown format {fmt!r}; choose from {', '.join(WRITERS)}") from None
