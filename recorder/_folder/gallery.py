"""``index.html`` for a folder of videos: its entries (sidecars, probes, posters, timelines), and
the page.

Posters are the first frame, decoded and encoded as PNG with PyAV (no Pillow). The HTML is
``_gallery_html``'s; serving the folder, ``_serve``'s.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TypeGuard

import av

from recorder._encode.sidecars import MANIFEST, read_manifest, write_atomic
from recorder._folder.entry import NAME_INDEX, VIDEO_SUFFIXES, GalleryEntry
from recorder._folder.html import ENCODING_ERRORS, render
from recorder._folder.strip import read_timeline

__all__ = [
    "INDEX",
    "GalleryEntry",
    "build_gallery",
    "describe",
    "inside",
    "plain_name",
    "poster_png",
    "probe",
    "scan",
    "write_gallery",
]

INDEX = "index.html"
IMAGE_SUFFIXES = (".gif",)
POSTER_WIDTH = 320


def scan(
    folder: str | os.PathLike[str], cache: dict[str, tuple[Any, GalleryEntry]] | None = None
) -> list[GalleryEntry]:
    """Describe every video in *folder*, sorted by episode.

    Metadata comes from the ``{name}.json`` sidecar, else from the last ``manifest.jsonl`` line
    about the file, else only from probing the video with PyAV. *cache* (kept by a server
    between pages) saves re-probing files that did not change.
    """
    root = Path(folder)
    manifest: dict[str, dict[str, Any]] = {}
    with contextlib.suppress(OSError, ValueError, RecursionError):
        for record in read_manifest(root):
            if isinstance(record, dict) and isinstance(record.get("path"), str):
                manifest[record["path"]] = record
    entries = []
    for path in sorted(root.iterdir()):
        entry = describe(path, manifest.get(path.name), cache)
        if entry is not None:
            entries.append(entry)
    entries.sort(key=GalleryEntry.sort_key)
    return entries


def describe(
    path: Path,
    recorded: dict[str, Any] | None = None,
    cache: dict[str, tuple[Any, GalleryEntry]] | None = None,
) -> GalleryEntry | None:
    """The entry of one file (*recorded*: its manifest line), or None if it is not a video."""
    suffix = path.suffix.lower()
    if path.name.startswith(".") or suffix not in VIDEO_SUFFIXES + IMAGE_SUFFIXES:
        return None
    try:
        st = path.stat()
    except OSError:
        return None
    if not stat.S_ISREG(st.st_mode) or not inside(path, path.parent):
        return None
    # The sidecar and the timeline land after the video: a change of them changes the entry;
    # so does a manifest line about it (its only record when it has no sidecar).
    line = None if recorded is None else json.dumps(recorded, sort_keys=True, default=repr)
    key = (st.st_mtime_ns, st.st_size, st.st_ino, line, *(_mtime(path, s) for s in _BESIDE))
    if cache is not None and (hit := cache.get(path.name)) is not None and hit[0] == key:
        return hit[1]
    entry = GalleryEntry(path.name, mtime=st.st_mtime)
    try:
        entry.info, entry.poster = probe(path)
    except (OSError, ValueError, StopIteration, av.FFmpegError) as e:
        entry.error = f"cannot read the video: {e}" if str(e) else "cannot read the video"
        entry.info = {"size_bytes": _size(path)}
    sidecar = _read_sidecar(path)
    if sidecar is not None:
        entry.source, recorded = "sidecar", sidecar
    elif recorded is not None:
        entry.source = "manifest"
    if recorded is not None:
        entry.info.update(recorded)
    elif (m := NAME_INDEX.search(entry.name)) and m.group(1) == "episode":
        entry.info.setdefault("episode_index", int(m.group(2)))
    if entry.is_video:
        timeline = _beside(path, entry.info.get("timeline"), ".timeline.json")
        if timeline is not None:
            entry.timeline = read_timeline(timeline, entry.info.get("fps"))
        entry.captions = _beside(path, entry.info.get("captions"), ".vtt")
    if cache is not None:
        cache[path.name] = (key, entry)
    return entry


def probe(path: str | os.PathLike[str]) -> tuple[dict[str, Any], bytes | None]:
    """What PyAV finds in a video, and a PNG poster of its first frame.

    Raises:
        av.FFmpegError, OSError: the file cannot be opened or decoded.
        ValueError: it has no video stream.
    """
    info: dict[str, Any] = {"size_bytes": _size(path)}
    poster = None
    with av.open(os.fspath(path)) as container:
        if not container.streams.video:
            raise ValueError("no video stream")
        stream = container.streams.video[0]
        ctx = stream.codec_context
        info.update(codec=ctx.name, width=ctx.width, height=ctx.height)
        if stream.average_rate:
            info["fps"] = float(stream.average_rate)
        if container.duration:
            info["duration"] = container.duration / av.time_base
        frames = stream.frames
        for frame in container.decode(stream):
            poster = poster_png(frame)
            break
    if not frames:  # webm and gif do not store a count: count the packets (no decoding)
        with av.open(os.fspath(path)) as container:
            stream = container.streams.video[0]
            frames = sum(1 for p in container.demux(stream) if p.size)
    info["frames"] = frames
    return info, poster


def poster_png(frame: Any, width: int = POSTER_WIDTH) -> bytes:
    """Scale a decoded ``av.VideoFrame`` to at most *width* pixels wide and encode it as PNG."""
    w, h = frame.width, frame.height
    if w > width:
        w, h = width, max(1, round(frame.height * width / frame.width))
    rgb = frame.reformat(width=w, height=h, format="rgb24")
    codec: Any = av.CodecContext.create("png", "w")
    codec.width, codec.height, codec.pix_fmt = w, h, "rgb24"
    packets = [*codec.encode(rgb), *codec.encode(None)]
    return b"".join(bytes(p) for p in packets)


def build_gallery(folder: str | os.PathLike[str], *, title: str | None = None) -> Path:
    """Write ``folder/index.html``: every video with its poster and metadata.

    Args:
        folder: a folder of videos (sidecars and ``manifest.jsonl`` are used when present).
        title: the page title; the folder's name by default.

    Returns:
        The path of the page.

    Raises:
        NotADirectoryError, FileNotFoundError: *folder* is not a folder.
        OSError: the page cannot be written.
    """
    root = Path(folder)
    if not root.is_dir():
        if root.exists():
            raise NotADirectoryError(f"not a folder: {root}")
        raise FileNotFoundError(f"no such folder: {root}")
    return write_gallery(root, scan(root), title=title)


def write_gallery(
    folder: str | os.PathLike[str], entries: Iterable[GalleryEntry], *, title: str | None = None
) -> Path:
    """Write the page for *entries* (from :func:`scan`) as ``folder/index.html``, atomically."""
    root = Path(folder)
    page = render(entries, title or root.resolve().name or str(root))
    target = root / INDEX
    write_atomic(target, page.encode("utf-8", ENCODING_ERRORS), INDEX)
    return target


def inside(path: str | os.PathLike[str], folder: str | os.PathLike[str]) -> bool:
    """Whether *path*, symlinks resolved, is *folder* or in it."""
    root = os.path.realpath(folder)
    return os.path.commonpath([os.path.realpath(path), root]) == root


def plain_name(name: Any) -> TypeGuard[str]:
    """Whether *name* is a file directly in the folder: a hostile record cannot point elsewhere."""
    return (
        isinstance(name, str)
        and name not in ("", ".", "..")
        and os.path.basename(name) == name
        and "\\" not in name
        and "\0" not in name
    )


# The files a video's record may name beside it, by the suffix of their default name.
_BESIDE = (".json", ".timeline.json", ".vtt")


def _mtime(video: Path, suffix: str) -> int | None:
    try:
        return video.with_name(video.stem + suffix).stat().st_mtime_ns
    except OSError:
        return None


def _beside(video: Path, named: Any, suffix: str) -> Path | None:
    """The file a video's record names (*named*), else ``{stem}{suffix}``, if it is a regular
    file directly beside the video, symlinks resolved; else None."""
    name = named if plain_name(named) else video.stem + suffix
    path = video.with_name(name)
    return path if path.is_file() and inside(path, video.parent) else None


def _size(path: str | os.PathLike[str]) -> int | None:
    try:
        return os.stat(path).st_size
    except OSError:
        return None


def _read_sidecar(video: Path) -> dict[str, Any] | None:
    sidecar = video.with_suffix(".json")
    if sidecar.name == MANIFEST:
        return None
    try:
        with open(sidecar, encoding="utf-8") as f:
            record = json.load(f)
    except (OSError, ValueError, RecursionError):  # RecursionError: nested too deep
        return None  # missing or not ours: probing still describes the video
    return record if isinstance(record, dict) else None
