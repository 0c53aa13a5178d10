"""Recovery of the videos a crash left half-written: ``recorder recover FOLDER``.

Every complete fragment of a dead writer's fragment file is copied (no re-encoding) into
``{stem}-partial.mp4`` with a sidecar; docs/reliability.md (Crash recovery) describes the files
involved.
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av

from recorder._base.modes import share
from recorder._base.results import ClipKind, VideoInfo
from recorder._encode.encoder import (
    FASTSTART_OPTIONS,
    FRAGMENT_SUFFIX,
    TMP_SUFFIX,
    lock_file,
    remux,
)
from recorder._encode.mp4 import scan_fragments
from recorder._encode.sidecars import append_manifest, record_of, write_sidecar
from recorder._folder.entry import NAME_INDEX

#: recover's own temporary file, while it writes a partial video.
RECOVER_SUFFIX = ".rec-recover"
#: an empty leftover younger than this is left alone: its writer may not have locked it yet.
JUST_CREATED_SECONDS = 10.0
_TOKEN = r"(?P<token>[a-z0-9_]{8})"  # tempfile.mkstemp's random part
_TMP = re.compile(rf"^\.(?P<stem>.+)\.{_TOKEN}{re.escape(TMP_SUFFIX)}$")
_FRAGMENT = re.compile(rf"^\.(?P<stem>.+)\.{_TOKEN}(?P<ext>\.mp4){re.escape(FRAGMENT_SUFFIX)}$")
_RECOVERING = re.compile(rf"^\..+\.{_TOKEN}{re.escape(RECOVER_SUFFIX)}$")
#: temporary files of the same name pattern that are no video's (the gallery's page).
_NOT_VIDEOS = frozenset({"index.html"})
_FORMATS = {"mov": (".mp4", "mp4"), "matroska": (".webm", "webm"), "gif": (".gif", "gif")}
_CODEC_NAMES = {"hevc": "h265"}


@dataclass(frozen=True, slots=True)
class RecoveredVideo:
    """A partial video made from a leftover.

    Attributes:
        source: the leftover's file name.
        path: the partial video (``{name}-partial.mp4``).
        sidecar: its JSON sidecar.
        frames: the frames it holds.
    """

    source: str
    path: Path
    sidecar: Path
    frames: int


@dataclass(frozen=True, slots=True)
class Leftover:
    """A leftover temporary file that was skipped or removed, and why."""

    name: str
    reason: str


@dataclass(frozen=True, slots=True)
class RecoveryReport:
    """What :func:`recover` did in a folder.

    Attributes:
        folder: the folder.
        recovered: the partial videos written, their leftovers deleted.
        skipped: leftovers left alone: their writer is alive (or starting), or they cannot be
            recovered.
        removed: leftovers deleted: they held no frame (or one that was recovered).
    """

    folder: Path
    recovered: tuple[RecoveredVideo, ...] = ()
    skipped: tuple[Leftover, ...] = ()
    removed: tuple[Leftover, ...] = ()

    @property
    def nothing_done(self) -> bool:
        """Whether nothing was recovered or removed."""
        return not (self.recovered or self.removed)

    def lines(self) -> list[str]:
        """One line per file, then a summary line."""
        out = [f"recovered {r.source} -> {r.path.name} ({r.frames} frames)" for r in self.recovered]
        out += [f"skipped {s.name}: {s.reason}" for s in self.skipped]
        out += [f"removed {r.name}: {r.reason}" for r in self.removed]
        out.append(
            f"{len(self.recovered)} recovered, {len(self.skipped)} skipped, "
            f"{len(self.removed)} removed in {self.folder}"
        )
        return out


def recover(folder: str | os.PathLike[str]) -> RecoveryReport:
    """Turn the leftover temporary files of dead writers in *folder* into partial videos.

    For each video whose writer died mid-clip, writes ``{name}-partial.mp4`` (``+faststart``,
    the frames of every complete fragment; ``-partial-2`` etc. when taken: nothing is ever
    overwritten) and ``{name}-partial.json`` (how many frames survived, the leftover's name,
    ``"partial": true``), appends that record to ``manifest.jsonl``, then deletes the
    leftovers. A file whose writer is alive (it holds the file's ``flock``: a recorder in
    another process sharing the folder) is never touched. Leftovers without a frame are
    deleted. Idempotent: a second run finds nothing to do.

    Args:
        folder: the video folder (not searched recursively).

    Returns:
        What was recovered, skipped and removed.

    Raises:
        NotADirectoryError, FileNotFoundError: *folder* is not a folder.
    """
    root = Path(folder)
    groups: dict[tuple[str, str], dict[str, str]] = {}
    stale: list[str] = []
    for name in sorted(os.listdir(root)):
        if m := _FRAGMENT.match(name):
            groups.setdefault((m["stem"], m["token"]), {})["fragment"] = name
        elif (m := _TMP.match(name)) and m["stem"] not in _NOT_VIDEOS:
            groups.setdefault((m["stem"], m["token"]), {})["tmp"] = name
        elif _RECOVERING.match(name):
            stale.append(name)
    recovered: list[RecoveredVideo] = []
    skipped: list[Leftover] = []
    removed: list[Leftover] = []
    for name in stale:
        with _opened(root / name) as fd:
            if fd is None or not lock_file(fd, block=False):
                continue  # another recover is writing it (or it is gone)
            if _unlink_if_same(root / name, fd):
                removed.append(Leftover(name, "the output of an interrupted recovery"))
    for (stem, _token), files in groups.items():
        _recover_one(root, stem, files, recovered, skipped, removed)
    return RecoveryReport(root, tuple(recovered), tuple(skipped), tuple(removed))


def _recover_one(
    root: Path,
    stem: str,
    files: dict[str, str],
    recovered: list[RecoveredVideo],
    skipped: list[Leftover],
    removed: list[Leftover],
) -> None:
    """Recover one video from its temporary and fragment files (under their locks)."""
    with contextlib.ExitStack() as stack:
        fds: dict[str, int] = {}
        for role, name in files.items():
            fd = stack.enter_context(_opened(root / name))
            if fd is None:
                continue  # gone meanwhile (its writer finished), or not a regular file
            if not lock_file(fd, block=False):
                skipped.extend(Leftover(n, "its writer is alive") for n in files.values())
                return
            if not _names(root / name, fd):
                continue  # its writer finished meanwhile: that file has its final name now
            fds[role] = fd
        if fds and all(_just_created(fd) for fd in fds.values()):
            # A writer creates its file, then locks it: it may be between the two.
            skipped.extend(Leftover(n, "just created: its writer may be starting")
                           for n in files.values())  # fmt: skip
            return
        if "fragment" in fds:
            _recover_fragment(root, stem, files, fds, recovered, skipped, removed)
            return
        if "tmp" not in fds:
            return
        name, fd = files["tmp"], fds["tmp"]
        if os.fstat(fd).st_size == 0:  # older than JUST_CREATED_SECONDS: its writer is dead
            if _unlink_if_same(root / name, fd):
                removed.append(Leftover(name, "empty"))
            return
        try:
            ext, fmt = _format_of(fd)
            video = _write_partial(root, stem, name, _Prefix(fd, os.fstat(fd).st_size), ext, fmt)
        except (OSError, ValueError, av.FFmpegError) as e:
            # An mp4 cut before its moov atom (written by a recorder without fragment files).
            skipped.append(Leftover(name, f"cannot be recovered: {e}"))
            return
        recovered.append(video)
        _unlink_if_same(root / name, fd)


def _recover_fragment(
    root: Path,
    stem: str,
    files: dict[str, str],
    fds: dict[str, int],
    recovered: list[RecoveredVideo],
    skipped: list[Leftover],
    removed: list[Leftover],
) -> None:
    """Recover one video from its fragment file (*fds*: the leftovers open and locked)."""
    name = files["fragment"]
    try:
        end, frames = scan_fragments(fds["fragment"])
        reader = _Prefix(fds["fragment"], end)
        video = _write_partial(root, stem, name, reader, ".mp4", "mp4") if frames else None
    except (OSError, ValueError, av.FFmpegError) as e:
        # Reported and left alone: one bad file does not stop the others.
        skipped.append(Leftover(name, f"cannot be recovered: {e}"))
        return
    if video is not None:
        recovered.append(video)
        _unlink_if_same(root / name, fds["fragment"])
    elif _unlink_if_same(root / name, fds["fragment"]):
        removed.append(Leftover(name, "no complete fragment: no frame"))
    if "tmp" in fds and _unlink_if_same(root / files["tmp"], fds["tmp"]):
        removed.append(Leftover(files["tmp"], "its video was in the fragment file"))


class _Prefix:
    """A read-only file object of the first *end* bytes of *fd* (PyAV reads it)."""

    def __init__(self, fd: int, end: int) -> None:
        self._fd, self._end, self._pos = fd, end, 0

    def read(self, n: int = -1) -> bytes:
        n = self._end - self._pos if n < 0 else min(n, self._end - self._pos)
        data = os.pread(self._fd, max(n, 0), self._pos) if n > 0 else b""
        self._pos += len(data)
        return data

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self._pos, os.SEEK_END: self._end}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def tell(self) -> int:
        return self._pos

    def seekable(self) -> bool:
        return True


def _format_of(fd: int) -> tuple[str, str]:
    """(extension, PyAV format) of the video in *fd*, as FFmpeg probes it."""
    with av.open(_Prefix(fd, os.fstat(fd).st_size), "r") as container:
        probed = str(container.format.name).split(",")[0]
    if probed not in _FORMATS:
        raise ValueError(f"not a video format of the recorder: {probed}")
    return _FORMATS[probed]


def _write_partial(
    root: Path, stem: str, source: str, reader: _Prefix, ext: str, fmt: str
) -> RecoveredVideo:
    """Copy *reader*'s packets into ``{stem}-partial{ext}`` (a free name) with its sidecar."""
    fd, tmp = tempfile.mkstemp(prefix=f".{stem}-partial{ext}.", suffix=RECOVER_SUFFIX, dir=root)
    try:
        share(fd)
        lock_file(fd)
        target = f"/proc/self/fd/{fd}" if os.path.isdir("/proc/self/fd") else tmp
        frames = remux(reader, target, FASTSTART_OPTIONS if fmt == "mp4" else {}, fmt)
        if frames == 0:
            raise ValueError("no frame")
        path = _publish(tmp, root, f"{stem}-partial", ext)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        os.close(fd)
    try:
        info = _info_of(path, stem, frames)
        record = record_of(info)
        record.update(partial=True, recovered_from=source, dropped_frames=None)
        sidecar = Path(write_sidecar(info, record))
        append_manifest(root, record)
    except BaseException:
        # Not recovered after all (a full disk): the leftover stays for a later run, which
        # must not find a copy of it already there. The sidecar's name was free: it is ours.
        for made in (path, path.with_suffix(".json")):
            with contextlib.suppress(OSError):
                os.unlink(made)
        raise
    return RecoveredVideo(source, path, sidecar, frames)


def _publish(tmp: str, root: Path, base: str, ext: str) -> Path:
    """Give *tmp* the first free name of ``{base}{ext}``, ``{base}-2{ext}``...; never replaces."""
    n = 1
    while True:
        name = base if n == 1 else f"{base}-{n}"
        path, sidecar = root / f"{name}{ext}", root / f"{name}.json"
        n += 1
        if os.path.lexists(path) or os.path.lexists(sidecar):
            continue
        try:
            os.link(tmp, path)  # fails if the name was taken meanwhile: no overwrite
        except FileExistsError:
            continue
        except OSError:  # pragma: no cover - a file system without hard links
            os.replace(tmp, path)
        return path


def _info_of(path: Path, stem: str, frames: int) -> VideoInfo:
    """The :class:`VideoInfo` of a recovered video, from the file and its name."""
    with av.open(os.fspath(path)) as container:
        stream: Any = container.streams.video[0]
        ctx = stream.codec_context
        fps = float(stream.average_rate or stream.guessed_rate or 0) or 30.0
        width, height, codec = ctx.width, ctx.height, str(ctx.name)
    kind: ClipKind = "clip"
    index = episode = first_step = None
    if m := NAME_INDEX.search(stem):
        kind, index = ("episode" if m[1] == "episode" else "step"), int(m[2])
        episode, first_step = (index, None) if kind == "episode" else (None, index)
    now = time.time()
    return VideoInfo(
        path=path,
        name=path.stem,
        kind=kind,
        index=index,
        frames=frames,
        fps=fps,
        width=width,
        height=height,
        encoded_width=width,
        encoded_height=height,
        codec=_CODEC_NAMES.get(codec, codec),
        size_bytes=path.stat().st_size,
        encode_seconds=0.0,
        episode_index=episode,
        first_step=first_step,
        created=now,
    )


@contextlib.contextmanager
def _opened(path: Path) -> Iterator[int | None]:
    """*path* opened for reading without following a symlink; None if gone or not a file."""
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags)
    except OSError:
        yield None
        return
    try:
        yield fd if stat.S_ISREG(os.fstat(fd).st_mode) else None
    finally:
        os.close(fd)


def _just_created(fd: int) -> bool:
    """Whether the file of *fd* is empty and younger than :data:`JUST_CREATED_SECONDS`."""
    st = os.fstat(fd)
    return st.st_size == 0 and time.time() - st.st_mtime < JUST_CREATED_SECONDS


def _names(path: Path, fd: int) -> bool:
    """Whether *path* still names the file of *fd*."""
    try:
        return os.path.samestat(os.lstat(path), os.fstat(fd))
    except FileNotFoundError:
        return False


def _unlink_if_same(path: Path, fd: int) -> bool:
    """Delete *path* if it still names the file of *fd*; whether it did."""
    try:
        if os.path.samestat(os.lstat(path), os.fstat(fd)):
            os.unlink(path)
            return True
    except FileNotFoundError:
        pass
    return False
