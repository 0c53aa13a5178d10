"""JSON sidecars next to each video and a manifest.jsonl per folder."""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import json
import os
import stat
import tempfile
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from recorder._base.codec import Codec
from recorder._base.metadata import dumps
from recorder._base.modes import share
from recorder._base.results import VideoInfo

MANIFEST = "manifest.jsonl"
SIDECAR_SUFFIX = ".json"

try:
    import fcntl
except ImportError:  # pragma: no cover - not on Windows
    fcntl = None  # type: ignore[assignment]


# Each folder's publish lock for this process's threads (where flock is emulated with fcntl's
# per-process locks, NFS, threads need their own; one per folder: a keep deletion on the
# training thread waits for its own folder's publishing only).
_folder_locks: dict[str, threading.Lock] = {}
# The files this process holds a flock on (the publish lock, the manifest's). A child forked
# meanwhile closes its copies: the lock belongs to the open file, shared with the child, and
# would otherwise stay taken while the child lives. Opened and closed under _held_lock, which
# a fork waits for, so no fork falls between an open and its note.
_held: set[int] = set()
_held_lock = threading.Lock()


def _after_fork_in_child() -> None:
    global _held_lock
    _folder_locks.clear()  # any of them may have been held by a thread of the parent
    for fd in _held:
        with contextlib.suppress(OSError):
            os.close(fd)
    _held.clear()
    _held_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(  # lambdas: the child rebinds _held_lock
        before=lambda: _held_lock.acquire(),  # noqa: PLW0108
        after_in_parent=lambda: _held_lock.release(),  # noqa: PLW0108
        after_in_child=_after_fork_in_child,
    )


def _open_held(path: str | os.PathLike[str], flags: int, mode: int = 0o777) -> int:
    """``os.open``, the descriptor noted as one a forked child must close (see _held)."""
    with _held_lock:
        fd = os.open(path, flags, mode)
        _held.add(fd)
    return fd


def _close_held(fd: int) -> None:
    """Close a descriptor of :func:`_open_held` (releasing its flock)."""
    with _held_lock:
        _held.discard(fd)
        os.close(fd)


@contextlib.contextmanager
def publishing(folder: Path) -> Iterator[None]:
    """Hold *folder*'s publish lock: a video's rename and its sidecars' writing are one step
    for every other writer of the folder (threads, Recorders, processes).

    Without it, two writers of one name could leave one's sidecar beside the other's video.
    """
    key = os.path.abspath(folder)
    lock = _folder_locks.get(key)
    if lock is None:  # setdefault: atomic, two threads get the same lock
        lock = _folder_locks.setdefault(key, threading.Lock())
    with lock, contextlib.ExitStack() as stack:
        # No folder, or no flock on its file system: the threads' lock only (the rename or
        # deletion that follows says what is wrong, if anything).
        with contextlib.suppress(OSError):
            fd = _open_held(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
            stack.callback(_close_held, fd)
            if fcntl is not None:
                fcntl.flock(fd, fcntl.LOCK_EX)
        yield


def remove_beside(video: Path, suffixes: Sequence[str]) -> None:
    """Delete ``{stem}{suffix}`` beside *video* for each of *suffixes*, where there is one: an
    earlier video's of the same name, which would describe the wrong video."""
    for suffix in suffixes:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(video.with_suffix(suffix))


def record_of(info: VideoInfo, codec: Codec | None = None) -> dict[str, Any]:
    """The JSON-ready description of a saved video, with the settings *codec* encoded it at."""
    record = {f.name: getattr(info, f.name) for f in dataclasses.fields(info)}
    record["path"] = info.path.name  # relative: the folder may move
    if info.health is None:  # Recorder(health=False)
        del record["health"]
    else:
        record["health"] = dataclasses.asdict(info.health)
    record["duration"] = info.duration
    # Clips are dropped whole, so a saved video misses none of its frames; said explicitly
    # for readers that compare it with the episode's length.
    record["dropped_frames"] = 0
    if codec is not None:
        encoder, _container, pix_fmt, options = codec.ffmpeg_settings()
        record["encoder"] = encoder
        record["pix_fmt"] = pix_fmt
        # What was used, defaults included (crf/preset do not apply to gif: absent then).
        record["crf"] = int(options["crf"]) if "crf" in options else None
        # The preset the video was encoded at (adaptive: the one it started with).
        preset = options.get("preset", options.get("cpu-used"))
        record["preset"] = info.preset if info.preset is not None else preset
        record["interpolation"] = codec.interpolation
    return record


def write_sidecar(info: VideoInfo, record: dict[str, Any]) -> str:
    """Write ``{name}.json`` beside the video, atomically; returns its path."""
    path = info.path.with_suffix(SIDECAR_SUFFIX)
    write_atomic(path, dumps(record, indent=2) + b"\n", info.name)
    return str(path)


def write_atomic(path: Path, data: bytes, stem: str) -> None:
    """Write *data* into *path* atomically: a hidden temporary file ``.{stem}.*.rec-tmp`` in
    its folder, renamed over it once whole."""
    suffix = f"{path.name.removeprefix(stem)}.rec-tmp"
    fd, tmp = tempfile.mkstemp(prefix=f".{stem}.", suffix=suffix, dir=path.parent)
    try:
        share(fd)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def append_manifest(folder: str | os.PathLike[str], record: dict[str, Any]) -> None:
    """Append one line to ``folder/manifest.jsonl`` in a single locked O_APPEND write.

    Several recorders and processes may share the folder: a line is never torn or interleaved.
    A line a dead writer left torn (no newline) is ended first, so it does not swallow this one.
    """
    line = dumps(record) + b"\n"
    # O_NONBLOCK: a FIFO planted under the name is refused below, instead of blocking the
    # worker in open() or write() for good. O_RDWR: the last byte is read (a torn line?).
    flags = os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0)
    path = os.path.join(folder, MANIFEST)
    fd = _open_held(path, flags, 0o666)  # less the umask, as open() does
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, f"{MANIFEST} is not a regular file", path)
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX)
        # Under the lock, no other writer can end the file between this read and the write.
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            line = b"\n" + line
        written = os.write(fd, line)
        if written != len(line):
            raise OSError(f"short write to {MANIFEST}: {written} of {len(line)} bytes")
    finally:
        _close_held(fd)  # closing releases the lock


def read_manifest(folder: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The records of a folder's manifest, oldest first (missing file: none).

    A line that is not a JSON object (torn by a crash or a full disk, edited by hand) is
    skipped: one bad line does not hide the others.
    """
    path = os.path.join(folder, MANIFEST)
    records: list[dict[str, Any]] = []
    try:
        # Bytes: a torn line may end inside a UTF-8 sequence, which would fail the whole file.
        with open(path, "rb") as f:
            for line in f:
                try:
                    record = json.loads(line.decode("utf-8"))
                except (ValueError, RecursionError):  # not UTF-8, not JSON, nested too deep
                    continue
                if isinstance(record, dict):
                    records.append(record)
    except FileNotFoundError:
        return []
    return records
