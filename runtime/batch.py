"""``qwen-asr-edge transcribe-many``: an archive (a folder, walked recursively, or a list file) on
Ray Data, one JSON line per file; restartable.

Ray Data's batch-inference pattern (DESIGN.md, Server and scale-out): the files are read as a
dataset (``read_binary_files``: their bytes travel to the actors, so on a cluster only the driver's
machine needs them; ``local://`` paths with ``--address``), ``map_batches`` runs a fixed pool of
actors each holding one ``Transcriber`` (loaded once per actor), and the driver appends each result
to the JSONL output as it arrives, one flushed line per file. A file that fails is an error row; a
run stopped half-way is resumed by running it again (done files are skipped; a torn last line is
dropped and redone). An actor transcribes a batch with the CLI's own calls (``cli.transcribe_all``:
``prepare`` + ``transcribe_batch``, each long file on its own), on a temporary copy of each file's
bytes under its own name, so its text equals ``qwen-asr-edge transcribe FILE``.

Ray is imported only when a job runs; without it the command says to install the [ray] extra.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import importlib.util
import inspect
import json
import logging
import os
import re
import signal
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from .audio import AUDIO_SUFFIXES, audio_files
from .console import PACKAGE_LOGGER, path_argument, quiet_loggers, run_command
from .delivery import first_missing, remove_empty_folders
from .errors import (
    AudioError,
    AudioFileNotFoundError,
    BundleError,
    InputError,
    MissingDependencyError,
    OutputError,
    QwenAsrEdgeError,
    display_name,
)
from .locked_folders import locked_temp_folder
from .options import DEFAULTS
from .outputs import temp_name
from .utf8_paths import is_utf8

RAY_EXTRA = "ray"
# Ray's scheme for paths read on the driver's node (the files need not be on the workers).
LOCAL_SCHEME = "local://"
# The temp folder of one run, where its actors copy the files they read (see _transcribe).
SCRATCH_PREFIX = "qwen-asr-edge-scratch-"
# What a row holds besides path, error and warnings; an error row has them all, null.
ROW_FIELDS = ("text", "language", "languages", "language_probability", "duration", "segments", "provider")
# What a row's result depends on, recorded in each row ("settings") so that a resumed run with
# other ones is refused rather than mixed in: each key and the option that sets it.
SETTINGS_FLAGS = {
    "bundle_sha256": "--bundle (another bundle)",
    "language": "--language",
    "context": "--context",
    "max_new_tokens": "--max-new-tokens",
    "repetition_guard": "--no-repetition-guard",
    "max_chunk_seconds": "--max-chunk-seconds",
    "word_timestamps": "--word-timestamps",
    "vad": "--vad",
    "vad_threshold": "--vad-threshold",
}
# How every line of the output starts (``ResultsFile.write``): the mark of a line cut off mid-write.
ROW_START = b'{"path": '


def parse_args(
    argv: list[str] | None = None, prog: str = "qwen-asr-edge transcribe-many"
) -> argparse.Namespace:
    """The command's options; usage errors exit with code 2 (argparse)."""
    from .cli import (
        add_decoding_options,
        add_model_options,
        add_session_options,
        check_model_options,
        decoding_options,
    )

    p = argparse.ArgumentParser(
        prog=prog,
        description="Transcribe an archive on Ray Data (a local Ray, or a cluster with --address): one "
        "JSON line per file in --output; run it again with the same --output to go on where it stopped.",
    )
    p.add_argument(
        "source",
        type=path_argument,
        help="a folder (its audio and video files, sub-folders too) or a list file (one path per line, "
        "relative ones from the list's folder; blank lines and # comments are skipped)",
    )
    p.add_argument(
        "--output",
        "-o",
        type=path_argument,
        required=True,
        help="the JSONL file of results; an existing one is resumed (its files are skipped), never replaced",
    )
    p.add_argument(
        "--retry-failed", action="store_true", help="transcribe again the files the output has as errors"
    )
    add_model_options(p)
    add_session_options(p)
    # What differs from transcribe: the bundle is exported beforehand (the dispatcher gives the
    # runtime's commands no --model resolver but transcribe's), and threads are per actor.
    for action in p._actions:
        if action.dest in ("model", "recipe"):
            action.help = argparse.SUPPRESS
        elif action.dest == "threads":
            action.help = "intra-op threads of each actor, and the CPUs it asks Ray for (default: 1)"
    p.add_argument(
        "--batch-size",
        type=int,
        default=DEFAULTS.batch_size,
        help="files per actor call, and chunks decoded together (default: %(default)s)",
    )
    add_decoding_options(p)
    ray_options = p.add_argument_group("Ray")
    ray_options.add_argument(
        "--address",
        help="an existing Ray cluster (auto, or HOST:PORT of its head); run the command on one of its nodes. "
        "Default: a local Ray instance",
    )
    ray_options.add_argument(
        "--actors",
        type=int,
        help="transcribers (Ray actors), each with --threads CPUs (default: the CPUs Ray has, / --threads)",
    )
    ray_options.add_argument(
        "--num-cpus",
        type=int,
        help="CPUs of the local Ray instance (default: the CPUs this process may use); not with --address",
    )
    p.add_argument("--no-verify", action="store_true", help="skip checking the bundle files' sha256")
    p.add_argument("--debug", action="store_true", help="show tracebacks and Ray's own messages")
    args = p.parse_args(argv)
    check_model_options(p, args)
    if args.model is not None:
        p.error(
            f"transcribe-many takes --bundle DIR: export the model once (qwen-asr-edge export {args.model} "
            "DIR) and pass that folder"
        )
    for name in ("actors", "num_cpus"):
        value = getattr(args, name)
        if value is not None and value < 1:
            p.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.address and args.num_cpus:
        p.error("--num-cpus sizes a local Ray instance; a cluster given by --address has its own")
    args.threads = args.threads or 1  # one intra-op thread per actor: the actors are the parallelism
    args.options = decoding_options(p, args, progress=False)
    return args


class ActorError(QwenAsrEdgeError, RuntimeError):
    """An actor could not load its Transcriber (a bundle or provider missing on its node)."""


@dataclass(frozen=True)
class Entry:
    """One file of the archive: ``key`` is its name in the output (relative to the folder, or as
    the list gives it; printable, see ``display_name``), ``path`` where the driver reads it."""

    key: str
    path: Path


def list_files(source: Path) -> list[Entry]:
    """The archive's files, in order, each once.

    Raises:
        InputError: no such folder or list file, an audio file given instead, nothing in it.
    """
    from .cli import report_skipped

    if source.is_dir():
        found, skipped = audio_files([source], recursive=True)
        report_skipped(skipped)
        entries = [Entry(display_name(f.relative_to(source)), f) for f in found]
    elif source.is_file():
        if source.suffix.lower() in AUDIO_SUFFIXES:
            raise InputError(
                f"{display_name(source)} is an audio file: transcribe-many takes a folder or a list file "
                "(one path per line); for one file use `qwen-asr-edge transcribe`"
            )
        try:
            text = source.read_text(encoding="utf-8", errors="surrogateescape")
        except OSError as e:
            raise InputError(f"{display_name(source)}: cannot be read ({e.strerror or e})") from None
        if "\0" in text:
            raise InputError(
                f"{display_name(source)} is not a list of paths (it holds binary data): give a folder or "
                "a text file with one path per line"
            )
        names = [s.strip() for s in text.splitlines()]
        base = source.parent
        entries = [Entry(display_name(n), base / n) for n in names if n and not n.startswith("#")]
    else:
        raise InputError(f"{display_name(source)}: no such folder or list file")
    # The same file spelled twice (a.wav, ./a.wav, /archive/a.wav) is one file: the driver finds
    # rows by absolute path, so a second spelling would lose the first one's row.
    seen: set[str] = set()
    unique = []
    for e in entries:
        same = {e.key, os.path.abspath(e.path)}
        if not same & seen:
            seen |= same
            unique.append(e)
    if len(unique) < len(entries):
        repeats = len(entries) - len(unique)
        names = "1 name in the list repeats" if repeats == 1 else f"{repeats} names in the list repeat"
        print(
            f"note: {names} an earlier one (the same path, maybe spelled otherwise); each file once, "
            "under its first name",
            file=sys.stderr,
        )
    if not unique:
        raise InputError(f"no audio files in {display_name(source)}")
    return unique


class ResultsFile:
    """The JSONL output: one JSON object per line, each with a ``path`` (its Entry's key), ``error``
    (null, or the message for a file that failed) and ``warnings`` (the lines ``transcribe`` would
    log for the file); appended to, one flushed line per file.

    Args:
        path: The file; created when missing, resumed when it holds results.
        settings: This run's (``run_settings``), written into every row as ``settings``.

    Raises:
        OutputError: a folder, not a regular file (a device, a FIFO), unreadable or unwritable, in
            use by another run, a file that is not results of this command (a line that is not a
            JSON object with a "path"), or one whose rows were made from another source or with
            other settings (rows of versions that recorded none are taken as they are); it is left
            as it was. All before any work.
    """

    def __init__(self, path: Path, settings: dict):
        self.path = path
        self.settings = settings
        self.failed: dict[str, bool] = {}  # key -> whether its row is an error, for the rows in the file
        self.warned: set[str] = set()  # the keys whose rows have warnings
        self.torn = False
        self._file = None
        self._created = not path.exists()  # removed again at close() if nothing was written to it
        self._folders = first_missing(path.parent)  # and so are the folders made for it
        if path.is_dir():
            raise OutputError(path, "is a folder; --output names the JSONL file of results")
        if path.exists() and not path.is_file():  # /dev/full would be read forever, /dev/null loses all
            raise OutputError(path, "is not a regular file; --output names the JSONL file of results")
        try:
            data = path.read_bytes() if path.exists() else b""
        except OSError as e:
            raise OutputError(path, f"cannot be read ({e.strerror or e})") from None
        self._open()  # before any work: an output that cannot be written fails now, not at the end
        whole = data[: data.rfind(b"\n") + 1]  # a last line without its newline was cut off mid-write
        for number, line in enumerate(whole.splitlines(), 1):
            if not line.strip():
                continue
            row = _parse(line)
            if row is None:
                raise OutputError(
                    path,
                    f"line {number} is not a result of transcribe-many (a JSON object with a path); "
                    "name another --output",
                )
            self._count(row)
            self._check_settings(row, number)
        if len(whole) < len(data):
            if not data[len(whole) :].startswith(ROW_START):  # every row starts so (path comes first)
                raise OutputError(
                    path, "is not a JSONL file of transcribe-many results; name another --output"
                )
            self.torn = True
            with open(path, "r+b") as f:  # drop the torn line: its file is done again
                f.truncate(len(whole))

    def _check_settings(self, row: dict, number: int) -> None:
        theirs = row.get("settings")
        if not isinstance(theirs, dict):
            return  # written before rows recorded their settings
        source = theirs.get("source")
        # Rows of versions that recorded no source are taken as they are: which one is not known.
        if source is not None and source != self.settings["source"]:
            self.close()
            raise OutputError(
                self.path,
                f"it holds files of {source}, not of {self.settings['source']} (its paths are relative "
                f"to their source); run on {source} to go on, or name another --output",
            )
        for key, flag in SETTINGS_FLAGS.items():
            if theirs.get(key) != self.settings[key]:
                self.close()
                raise OutputError(
                    self.path,
                    f"line {number} was transcribed with other settings ({flag}: "
                    f"{json.dumps(theirs.get(key), ensure_ascii=False)} there, "
                    f"{json.dumps(self.settings[key], ensure_ascii=False)} now); run with the same "
                    "ones to go on, or name another --output",
                )

    def drop(self, keys: set[str]) -> None:
        """Rewrite the file without the rows of ``keys`` (atomically: a temporary file, then rename)."""
        if not keys:
            return
        lines = self.path.read_bytes().splitlines(keepends=True)
        kept = [line for line in lines if not line.strip() or _parse(line)["path"] not in keys]
        tmp = self.path.with_name(temp_name(self.path.name))
        try:
            tmp.write_bytes(b"".join(kept))
            os.replace(tmp, self.path)
        except OSError as e:  # no room for the copy: the output stays as it was
            tmp.unlink(missing_ok=True)
            raise OutputError(self.path, f"cannot be rewritten ({e.strerror or e})") from None
        self.close()  # the open file is the replaced one now: appends and the lock go to the new
        self._open()
        for key in keys:
            self.failed.pop(key, None)
            self.warned.discard(key)

    def _open(self) -> None:
        """Open (or create) the file to append to, and lock it against a second run writing it."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # backslashreplace: a lone surrogate (a name's undecodable byte) becomes a JSON \\u escape
            self._file = open(self.path, "a", encoding="utf-8", errors="backslashreplace")  # noqa: SIM115
        except (FileExistsError, NotADirectoryError):  # mkdir's "File exists" for a file in the way
            above = next((p for p in self.path.parents if p.exists()), self.path.parent)
            raise OutputError(
                self.path, f"cannot be written: {display_name(above)} is a file, not a folder"
            ) from None
        except OSError as e:
            raise OutputError(self.path, f"cannot be written ({e.strerror or e})") from None
        try:
            import fcntl
        except ImportError:  # Windows: no advisory locks here
            return
        try:
            fcntl.flock(self._file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self._file.close()
            self._file = None
            raise OutputError(
                self.path, "another transcribe-many is writing it; wait for it, or name another --output"
            ) from None

    def write(self, row: dict) -> None:
        """Append one row as one line and flush it, so a killed run leaves whole lines only."""
        if self._file is None:
            self._open()
        if row.get("error") is not None:  # the same keys as a result, so readers need no special case
            warned = row.get("warnings", [])
            row = {
                "path": row["path"],
                **dict.fromkeys(ROW_FIELDS),
                "error": row["error"],
                "warnings": warned,
            }
        row = {**row, "settings": self.settings}
        try:
            self._file.write(json.dumps(row, ensure_ascii=False) + "\n")
            self._file.flush()
        except OSError as e:  # a full disk: the rows before stay; a torn last line is dropped next run
            raise OutputError(self.path, f"cannot be written ({e.strerror or e})") from None
        self._count(row)

    def _count(self, row: dict) -> None:
        """Note whether ``row``'s file failed, and whether it has warnings (none in rows of versions
        that recorded none)."""
        self.failed[row["path"]] = row.get("error") is not None
        if row.get("warnings"):
            self.warned.add(row["path"])
        else:
            self.warned.discard(row["path"])

    def close(self) -> None:
        """Close the file; one this run created and wrote nothing to is removed (a run that failed
        before its first row leaves nothing behind)."""
        if self._file is not None:
            try:
                empty = self._file.tell() == 0
                self._file.close()  # closed even when its flush fails
            except OSError:  # said already by write(); what is on disk stays
                empty = False
            self._file = None
            if self._created and empty:
                self.path.unlink(missing_ok=True)
                if self._folders is not None:
                    remove_empty_folders(self._folders)


def _parse(line: bytes) -> dict | None:
    """A results line as a dict, or None when it is not one."""
    try:
        row = json.loads(line)
    except ValueError:
        return None
    return row if isinstance(row, dict) and isinstance(row.get("path"), str) else None


class _Rows:
    """``cli.transcribe_all``'s ``results``: each file's row by index, with the warnings logged
    for it while ``collecting``."""

    def __init__(self, names: list[str], temporary: list[Path]):
        self.names = names
        self.temporary = [display_name(t) for t in temporary]
        self.rows: dict[int, dict] = {}
        self.warnings: list[list[str]] = [[] for _ in names]

    def finished(self, i: int, transcript) -> None:
        row = transcript.to_dict()
        del row["source"]
        row.update(provider=transcript.provider, error=None)
        self.rows[i] = row

    def failed(self, i: int, error: Exception) -> None:
        if isinstance(error, QwenAsrEdgeError):
            message = str(error)
        else:  # a bug: still one row, and the other files go on
            message = (
                f"{self.temporary[i]}: unexpected {type(error).__name__}: {error} "
                "(--debug shows the traceback; please report it)"
            )
        message = message.replace(self.temporary[i], self.names[i])  # the file's name, not its copy's
        self.rows[i] = {"error": message}

    def warned(self, message: str) -> None:
        """A package warning, kept for the file it names (each names its file first: ``COPY: ...``).
        By name, not by when it came: the short files of a batch are decoded together, so a file's
        warnings come while the others' work is under way too; and each copy has a folder of its
        own, so two files of one name are told apart. One naming none of them is not kept."""
        for i, name in enumerate(self.temporary):
            if message.startswith(f"{name}: "):
                self.warnings[i].append(message.replace(name, self.names[i]))
                return

    @contextlib.contextmanager
    def collecting(self) -> Iterator[None]:
        """Hand the package logger's warnings to ``warned`` while the block runs."""
        package = logging.getLogger(PACKAGE_LOGGER)
        handler = _Warnings(self)
        level = package.level
        if not package.isEnabledFor(logging.WARNING):  # an actor's logging is not the command's
            package.setLevel(logging.WARNING)
        package.addHandler(handler)
        try:
            yield
        finally:
            package.removeHandler(handler)
            package.setLevel(level)

    def json(self, i: int) -> str:
        """File ``i``'s row as JSON text (no ``path``), with its ``warnings``."""
        return json.dumps({**self.rows[i], "warnings": self.warnings[i]}, ensure_ascii=False)


class _Warnings(logging.Handler):
    """A logging handler that gives each warning's one line to ``_Rows.warned``."""

    def __init__(self, rows: _Rows):
        super().__init__(logging.WARNING)
        self.rows = rows

    def emit(self, record: logging.LogRecord) -> None:
        self.rows.warned(record.getMessage())


class TranscribeFiles:
    """The actor of ``map_batches``: one ``Transcriber``, loaded once, for every batch it gets.

    Args:
        args: The parsed options (bundle, language, context, options, session settings).
        scratch: The run's folder for the copies of the files (the driver's, which deletes it when
            the run ends, even one stopped while actors were killed mid-file). An actor on another
            node, which has no such folder, uses its own temp folder (its copies are deleted as
            each batch ends, but stay there if the actor is killed).

    A Transcriber that cannot be loaded (a bad bundle, an unavailable provider) is not an error
    here: every call then returns rows with ``fatal`` (the message), and the driver stops the job
    with it (ActorError).
    """

    def __init__(self, args: argparse.Namespace, scratch: str):
        from .cli import load_transcriber

        self.args = args
        # Decided now, while the driver runs: once it has deleted the folder, a late batch must fail
        # rather than leave its copies in the temp folder.
        self.scratch = scratch if os.path.isdir(scratch) else None
        self.transcriber = None
        self.error: str | None = None  # why the Transcriber could not be loaded
        try:
            self.transcriber = load_transcriber(args)
            # What the driver could not check without a Transcriber (the chunk's positions with
            # the context): every file would fail the same way.
            self.transcriber.check_options(args.options, args.context)
        except QwenAsrEdgeError as e:
            # Sent back by each call instead: an exception raised in an actor reaches the driver as
            # Ray's own (UserCodeException, ActorDiedError) with a traceback, not as ours.
            self.error = str(e)
        except Exception as e:  # a bug, or onnxruntime's own error: one line as well
            if args.debug:
                raise
            self.error = (
                f"loading {display_name(args.bundle)}: unexpected {type(e).__name__}: {e} "
                "(--debug shows the traceback; please report it)"
            )

    def __call__(self, batch: dict) -> dict[str, list[str]]:
        """Transcribe a batch of files.

        Args:
            batch: ``path`` (as read) and ``bytes`` (the file's contents), one item per file.

        Returns:
            ``path`` as given, and ``row``: each file's result as JSON text (no ``path``; an
            ``error``, and the file's ``warnings``).
        """
        from .cli import transcribe_all

        paths = [str(p) for p in batch["path"]]
        if self.error is not None:
            return {"path": paths, "row": [json.dumps({"fatal": self.error})] * len(paths)}
        with tempfile.TemporaryDirectory(prefix="qwen-asr-edge-", dir=self.scratch) as tmp:
            copies = []
            for i, (path, data) in enumerate(zip(paths, batch["bytes"], strict=True)):
                copy = Path(tmp, str(i), Path(path).name)  # its own name: the suffix picks the decoder
                copy.parent.mkdir()
                copy.write_bytes(data)
                copies.append(copy)
            # Named as the driver reads them (without local://), which it replaces by their keys.
            rows = _Rows([display_name(p.removeprefix(LOCAL_SCHEME)) for p in paths], copies)
            with rows.collecting():
                transcribe_all(self.transcriber, copies, self.args, rows)
        return {"path": paths, "row": [rows.json(i) for i in range(len(paths))]}


def run(args: argparse.Namespace) -> int:
    """Transcribe the files of ``args.source`` not yet in ``args.output`` on Ray Data.

    Returns:
        The exit code: 0; 1 when some of the source's files are error rows in the output, or the
        Ray job failed (a node or an actor lost); 130 on Ctrl-C. The rows written so far stay:
        run again to go on.

    Raises:
        QwenAsrEdgeError: a bad source, output, bundle, language or option, or Ray missing
            (MissingDependencyError), before any file is transcribed.
    """
    if importlib.util.find_spec("ray") is None:  # before anything is read or changed
        raise MissingDependencyError("transcribe-many (Ray Data)", RAY_EXTRA)
    entries = list_files(args.source)
    results = ResultsFile(args.output, run_settings(args))
    try:
        return _resume(args, entries, results)
    finally:
        results.close()


def run_settings(args: argparse.Namespace) -> dict:
    """What each row's result depends on (``SETTINGS_FLAGS``' keys, and the bundle's folder name),
    and its ``source``; resolves ``args.bundle`` (the demo model's note is said here, once) and
    refuses, before any work, what would fail every file.

    Returns:
        JSON-ready: ``source`` is ``source_of(args.source)``; ``bundle_sha256`` is the first 16 hex
        digits of the sha256 of the bundle's manifest (which holds every file's sha256),
        ``language`` the name the model knows or None.

    Raises:
        QwenAsrEdgeError: a bundle that cannot be loaded, an unknown language, --vad without its
            package, --word-timestamps without an aligner.
    """
    from .bundle import MANIFEST_NAME, load_bundle
    from .cli import bundle_of, check_decoding
    from .prompt import normalize_language
    from .vad import VadOptions

    demo = args.bundle is None
    args.bundle = bundle_of(args)
    bundle = load_bundle(args.bundle, verify=False)  # the actors verify; a wrong path fails here
    language = normalize_language(args.language, bundle.manifest.languages) if args.language else None
    options = args.options
    check_decoding(bundle, options, demo)  # the [vad] extra on this node; the aligner
    try:
        manifest = (bundle.path / MANIFEST_NAME).read_bytes()
    except OSError as e:
        raise BundleError(bundle.path, f"its {MANIFEST_NAME} cannot be read ({e.strerror or e})") from None
    vad = options.vad_parameters or VadOptions()
    return {
        "source": source_of(args.source),
        "bundle": display_name(bundle.path.name),
        "bundle_sha256": hashlib.sha256(manifest).hexdigest()[:16],
        "language": language,
        "context": args.context,
        "max_new_tokens": options.max_new_tokens,
        "repetition_guard": options.repetition_guard is not None,
        "max_chunk_seconds": options.max_chunk_seconds,
        "word_timestamps": options.word_timestamps,
        "vad": options.vad_filter,
        "vad_threshold": vad.threshold if options.vad_filter else None,
    }


def source_of(source: Path) -> str:
    """What a row's path is relative to (``Entry.key``), as one absolute name, so that an output is
    resumed from that source only: another folder has other files under the same names. A folder
    resolved (relative, through a link: the same files); a list file by its folder resolved and its
    own name, as its relative paths are read from there (a link to a list elsewhere is another
    list: its names point elsewhere)."""
    if source.is_dir():
        return display_name(source.resolve())
    return display_name(source.parent.resolve() / source.name)


def _resume(args: argparse.Namespace, entries: list[Entry], results: ResultsFile) -> int:
    name = display_name(args.output)
    if results.torn:
        print(
            f"note: {name}: its last line was cut off (a stopped run); that file is done again",
            file=sys.stderr,
        )
    keys = {e.key for e in entries}
    retry = (
        {k for k, failed in results.failed.items() if failed and k in keys} if args.retry_failed else set()
    )
    results.drop(retry)
    todo = [e for e in entries if e.key not in results.failed]
    done = len(entries) - len(todo)
    if done:
        print(
            f"note: {name}: {done} of the {len(entries)} files are done already; "
            f"transcribing the other {len(todo)}",
            file=sys.stderr,
        )
    code = _transcribe(args, todo, results) if todo else 0
    warned = sum(1 for e in entries if e.key in results.warned)
    if warned:  # said in each row, not line by line: an archive may have thousands
        have = "files have" if warned > 1 else "file has"
        print(f'note: {warned} {have} warnings (their rows\' "warnings")', file=sys.stderr)
    failed = sum(1 for e in entries if results.failed.get(e.key))
    if failed and code == 0:
        more = "" if args.retry_failed else " (--retry-failed tries them again)"
        print(
            f"error: {failed} of the {len(entries)} files failed; see their error rows{more}", file=sys.stderr
        )
        code = 1
    return code


def _transcribe(args: argparse.Namespace, todo: list[Entry], results: ResultsFile) -> int:
    """Run the Ray job over ``todo``, each row written as it arrives; the exit code (0, 1 or 130)."""
    from .providers import resolve_providers

    if not args.address:  # the actors run here: a provider missing here fails now, before Ray
        resolve_providers(args.providers)
    ray = _import_ray()
    # Ray kills the actors of a stopped job before their own clean-up runs: what they copy goes
    # here, and this run deletes it whatever happens, once they are gone (a run killed outright
    # leaves it to the next run's sweep).
    with locked_temp_folder(SCRATCH_PREFIX) as scratch:
        return _transcribe_in(ray, args, todo, results, str(scratch))


def _transcribe_in(
    ray, args: argparse.Namespace, todo: list[Entry], results: ResultsFile, scratch: str
) -> int:
    """``_transcribe`` with its scratch folder: Ray started (unless already), the job, Ray shut down."""
    started = not ray.is_initialized()
    if started:
        try:
            _start_ray(ray, args)
        except KeyboardInterrupt:  # Ctrl-C, or SIGTERM, while Ray starts
            print(f"error: interrupted; 0 of {len(todo)} files done ({_GO_ON})", file=sys.stderr)
            return 130
    try:
        # Not even Ray Data's errors: a failed job is said in one line of ours (--debug shows them).
        with quiet_loggers(("ray.data",), logging.INFO if args.debug else logging.CRITICAL):
            return _run_job(ray, args, todo, results, scratch)
    finally:
        if started:
            ray.shutdown()


def _import_ray():
    try:
        import ray
        import ray.data
    except ImportError:
        raise MissingDependencyError("transcribe-many (Ray Data)", RAY_EXTRA) from None
    return ray


def _start_ray(ray, args: argparse.Namespace) -> None:
    """A local Ray instance (``--num-cpus``), or the cluster at ``--address``; quiet unless --debug.

    Raises:
        InputError: the cluster cannot be reached (Ray itself would retry for minutes).
    """
    level = logging.INFO if args.debug else logging.ERROR
    # ray.init makes SIGTERM exit at once (SystemExit 15, also while it starts); afterwards the
    # `qwen-asr-edge` command's own handler, which takes SIGTERM as Ctrl-C (a line saying how many
    # files are done, exit 130), is put back, as is SIG_IGN. Where the default was (the module run
    # directly), Ray's stays: it lets Ray disconnect, which the default would not.
    terminate = signal.getsignal(signal.SIGTERM)
    try:
        _init_ray(ray, args, level)
    except SystemExit as e:
        if e.code != signal.SIGTERM:
            raise
        # Ray's own handler, while it starts: a stop like any other (a line, exit 130), with
        # what it had started shut down.
        ray.shutdown()
        raise KeyboardInterrupt from None
    finally:
        keep = callable(terminate) or terminate == signal.SIG_IGN
        if keep and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, terminate)


def _init_ray(ray, args: argparse.Namespace, level: int) -> None:
    if args.address:
        _check_reachable(args.address)
        try:
            ray.init(address=args.address, logging_level=level, log_to_driver=True)
        except ConnectionError as e:
            raise InputError(f"--address {args.address}: no Ray cluster found ({e})") from None
    else:
        cpus = args.num_cpus or (
            len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        )
        # The actors' own output stays out of ours: a file's problem is in its error row.
        ray.init(num_cpus=cpus, include_dashboard=False, logging_level=level, log_to_driver=args.debug)


def _check_reachable(address: str, seconds: float = 5.0) -> None:
    """For ``HOST:PORT`` (not ``auto``): a TCP connection to the head, within ``seconds``.

    Raises:
        InputError: nothing answers there.
    """
    import socket

    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        return  # "auto", or a form Ray knows better
    try:
        socket.create_connection((host, int(port)), timeout=seconds).close()
    except OSError as e:
        raise InputError(
            f"--address {address}: no Ray cluster answers there ({e.strerror or e}); start one with "
            "`ray start --head`, or leave out --address for a local Ray"
        ) from None


def _size(entry: Entry) -> int:
    try:
        return os.stat(entry.path).st_size
    except OSError:  # unreadable: said when it is read
        return 0


def _run_job(ray, args: argparse.Namespace, todo: list[Entry], results: ResultsFile, scratch: str) -> int:
    import ray.data

    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = bool(args.debug)
    cpus = int(ray.cluster_resources().get("CPU", 1))
    actors = args.actors or max(1, cpus // args.threads)
    if not args.address and actors * args.threads > cpus:
        raise InputError(
            f"--actors {actors} with --threads {args.threads} needs {actors * args.threads} CPUs; "
            f"the local Ray has {cpus} (--num-cpus)"
        )
    prefix = LOCAL_SCHEME if args.address else ""  # read on this node; the bytes go to the actors
    where = {}
    count = 0
    # Smallest first, so a batch holds files of similar length (it decodes until its longest one
    # ends, as transcribe sorts its chunks by length); the output's order does not matter.
    for e in sorted(todo, key=_size):
        problem = _unreadable(e)
        if problem is None:
            where[os.path.abspath(e.path)] = e.key
            continue
        print(f"error: {problem}", file=sys.stderr)  # Ray's read would fail the whole job: a row now
        results.write({"path": e.key, "error": str(problem)})
        count += 1
    if not where:
        return 0
    # Reading takes no CPU of its own: the actors hold them all, and reads waiting for one would
    # wait forever. Named `num_cpus` since Ray 2.5x; `ray_remote_args` before (deprecated since).
    if "num_cpus" in inspect.signature(ray.data.read_binary_files).parameters:
        read_resources = {"num_cpus": 0}
    else:
        read_resources = {"ray_remote_args": {"num_cpus": 0}}
    # Reading tasks, a batch of files each, at most one per actor: tasks that take no CPU would
    # otherwise run all at once, each in a Python worker of its own (26 for 50 files, measured).
    blocks = -(-len(where) // args.batch_size)
    actors = min(actors, blocks)  # no actor without a batch to do
    try:
        files = ray.data.read_binary_files(
            [prefix + p for p in where],
            include_paths=True,
            override_num_blocks=blocks,
            concurrency=actors,
            **read_resources,
        )
    except FileNotFoundError as e:  # Ray lists the files first: one gone since _unreadable looked
        if (gone := _vanished(e, where)) is None:
            raise
        print(f"error: {gone}; {count} of {len(todo)} files done ({_GO_ON})", file=sys.stderr)
        return 1
    more = {}
    if not args.address and _takes_remote_args(files.map_batches):
        # A local actor is not restarted: a dead one stops the job, which a new run resumes. (With
        # restarts Ray's core logs an alarming line on every run: ray-project/ray#53727.)
        more["max_restarts"] = 0
    with warnings.catch_warnings():  # passing it is deprecated in Ray 2.60 (a named option is to come)
        warnings.filterwarnings("ignore", message=".*ray_remote_args.*")
        rows = files.map_batches(
            TranscribeFiles,
            fn_constructor_kwargs={"args": args, "scratch": scratch},
            compute=ray.data.ActorPoolStrategy(size=actors),
            batch_size=args.batch_size,
            num_cpus=args.threads,
            **more,
        )
    start = time.perf_counter()
    seconds = first = 0.0
    try:
        for item in _rows(rows):
            path = item["path"].removeprefix(LOCAL_SCHEME)
            key = where.get(path) or where.get(os.path.abspath(path)) or display_name(path)
            row = {"path": key, **json.loads(item["row"])}
            if "fatal" in row:
                raise ActorError(row["fatal"])
            row["warnings"] = [w.replace(display_name(path), key) for w in row["warnings"]]
            if row["error"] is not None:
                row["error"] = row["error"].replace(display_name(path), key)
                print(f"error: {row['error']}", file=sys.stderr)
            else:
                seconds += row["duration"]
            results.write(row)
            count += 1
            first = first or time.perf_counter() - start
    except KeyboardInterrupt:
        print(
            f"error: interrupted; {count} of {len(todo)} files done "
            "(run again with the same --output to go on)",
            file=sys.stderr,
        )
        return 130
    except OutputError as e:  # a full disk: stop, as the rows could not be kept
        print(
            f"error: {e}; {count} of {len(todo)} files done (make room, then run again with the same "
            "--output to go on)",
            file=sys.stderr,
        )
        return 1
    except ray.exceptions.RayError as e:  # the cluster's fault (a node lost, a worker killed), not a file's
        if args.debug:
            raise
        if (gone := _vanished(e, where)) is not None:  # a reading task's: it stops the job
            print(f"error: {gone}; {count} of {len(todo)} files done ({_GO_ON})", file=sys.stderr)
            return 1
        lines = (_ANSI.sub("", line) for line in str(e).splitlines())  # Ray colours names even in logs
        what = next((line for line in lines if line.strip()), "")
        print(
            f"error: the Ray job failed ({type(e).__name__}: {what}); {count} of {len(todo)} files done "
            f"({_GO_ON}; --debug shows Ray's traceback)",
            file=sys.stderr,
        )
        return 1
    took = time.perf_counter() - start
    print(
        f"note: {count} file{'s' if count != 1 else ''} ({seconds:.1f} s of audio) in {took:.1f} s with "
        f"{actors} actor"
        f"{'s' if actors > 1 else ''}, the first row after {first:.1f} s: {count / took:.2f} files/s, "
        f"{seconds / took:.1f} s of audio per second",
        file=sys.stderr,
    )
    return 0


_GO_ON = "run again with the same --output to go on"
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _vanished(error: BaseException, where: dict[str, str]) -> AudioError | None:
    """For Ray Data's FileNotFoundError (raised, or a reading task's, as RayTaskError's cause) of a
    file of the job (``where``: absolute path -> key): the file's error, named by its key, saying
    that it went while the job ran; None for any other error."""
    cause = getattr(error, "cause", None) or error
    if not isinstance(cause, FileNotFoundError):
        return None
    path = cause.filename or (cause.args[0] if cause.args and isinstance(cause.args[0], str) else None)
    if path is None:
        return None
    path = str(path).removeprefix(LOCAL_SCHEME)
    key = where.get(path) or where.get(os.path.abspath(path))
    if key is None:
        return None
    return AudioError(key, "no such file (removed or moved while the job ran)")


def _takes_remote_args(function) -> bool:
    """Whether ``function`` takes Ray's remote options as keyword arguments (``**ray_remote_args``)."""
    kinds = [p.kind for p in inspect.signature(function).parameters.values()]
    return inspect.Parameter.VAR_KEYWORD in kinds


def _unreadable(entry: Entry) -> AudioError | None:
    """Why Ray Data could not read ``entry``'s file (a reading task that fails stops the whole job),
    or None: no such file, not a regular file, no permission, a name that is not UTF-8 or holds a
    tab or line break (Ray Data parses paths as URLs, and URL parsing drops those)."""
    path = entry.path
    if not is_utf8(path):
        return AudioError(entry.key, "its name is not UTF-8, which Ray Data cannot read; rename it")
    if any(c in os.fspath(path) for c in "\t\r\n"):
        problem = "its name holds a tab or line break, which Ray Data cannot read; rename it"
        return AudioError(entry.key, problem)
    if not path.exists():
        return AudioFileNotFoundError(entry.key)
    if not path.is_file():
        return AudioError(entry.key, "not a regular file")
    try:
        with open(path, "rb"):
            pass
    except OSError as e:
        return AudioError(entry.key, f"cannot be opened ({e.strerror or type(e).__name__})")
    return None


def _rows(dataset) -> Iterable[dict]:
    """The job's rows as they arrive: each actor call's output as soon as it is done, with no
    prefetching (iter_rows holds a block back until the next one is done: a whole batch later)."""
    for batch in dataset.iter_batches(batch_size=None, prefetch_batches=0):
        for path, row in zip(batch["path"], batch["row"], strict=True):
            yield {"path": str(path), "row": str(row)}


def main(argv: list[str] | None = None, prog: str = "qwen-asr-edge transcribe-many") -> int:
    """``qwen-asr-edge transcribe-many`` (also ``python -m qwen_asr_edge.runtime.batch``).

    Args:
        argv: the arguments after the command name (default: ``sys.argv[1:]``).
        prog: the program name for usage lines.

    Returns:
        The exit code: 0; 1 when some files failed (each an error row in the output) or the Ray
        job failed; 2 for a bad source, output, bundle or option, a missing [ray] extra, or an actor
        that could not load its Transcriber; 130 on Ctrl-C.
    """
    args = parse_args(argv, prog)
    return run_command(lambda: run(args), debug=args.debug)


if __name__ == "__main__":
    sys.exit(main())
