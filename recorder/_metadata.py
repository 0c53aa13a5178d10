"""JSON sidecars next to each video and a manifest.jsonl per folder."""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import json
import math
import os
import stat
import tempfile
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any, TypeVar

import numpy as np

from recorder._encoder import Codec
from recorder._modes import share
from recorder._results import VideoInfo
from recorder._validate import describe

MANIFEST = "manifest.jsonl"
T = TypeVar("T")

try:
    import fcntl
except ImportError:  # pragma: no cover - not on Windows
    fcntl = None  # type: ignore[assignment]


def json_ready(value: Any, where: str = "value") -> Any:
    """*value* as the JSON data it is stored as (a new object); *where* names it in errors.

    JSON's own types are kept (str and int subclasses as plain ones); numpy scalars and arrays
    become numbers, bools and lists, tuples lists, ``os.PathLike`` its path; NaN and infinities
    become None (JSON has no such numbers; ``JSON.stringify`` does the same).

    Raises:
        TypeError: a value of another type, or a mapping key that is not a str.
        ValueError: a reference cycle, or nesting deeper than Python's recursion limit.
    """
    return _converted(where, partial(_plain, value, where, set()))


def _converted(where: str, convert: Callable[[], T]) -> T:
    try:
        return convert()
    except RecursionError:
        raise ValueError(f"{where} is nested too deeply to be stored as JSON") from None


def _plain(value: Any, where: str, inside: set[int]) -> Any:
    if isinstance(value, np.generic):
        value = value.item()  # a Python bool, int, float, str...
    elif isinstance(value, os.PathLike):
        value = os.fspath(value)
    if value is None or isinstance(value, str | bool):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, Mapping | list | tuple | np.ndarray):
        return _plain_container(value, where, inside)
    raise TypeError(
        f"{where} is {describe(value)}, which JSON cannot store: give a str, number, bool, "
        "None, list or dict (numpy scalars and arrays are converted)"
    )


def _plain_container(value: Any, where: str, inside: set[int]) -> Any:
    # *inside*: the containers *value* is in, to tell a cycle from a value seen twice.
    if id(value) in inside:
        raise ValueError(
            f"{where} refers back to a container it is in (a reference cycle): JSON cannot store it"
        )
    inside.add(id(value))
    try:
        if isinstance(value, Mapping):
            return dict(_plain_item(where, key, item, inside) for key, item in value.items())
        items = value.tolist() if isinstance(value, np.ndarray) else value
        if not isinstance(items, list | tuple):  # a 0-d array's item
            return _plain(items, where, inside)
        return [_plain(item, f"{where}[{i}]", inside) for i, item in enumerate(items)]
    finally:
        inside.discard(id(value))


def _plain_item(where: str, key: Any, value: Any, inside: set[int]) -> tuple[str, Any]:
    """An item of the mapping *where*, as it is stored."""
    if not isinstance(key, str):
        raise TypeError(f"{where} has the key {describe(key)}: JSON object keys are str")
    return str(key), _plain(value, f"{where}[{key!r}]", inside)


def split_metadata(
    metadata: Mapping[Any, Any], where: str = "metadata"
) -> tuple[dict[str, Any], list[TypeError | ValueError]]:
    """The items of *metadata* that can be stored, as :func:`json_ready` stores them, and the
    errors of the others (their keys are left out)."""
    stored: dict[str, Any] = {}
    errors: list[TypeError | ValueError] = []
    for key, value in metadata.items():
        convert = partial(_plain_item, where, key, value, {id(metadata)})
        try:
            name, stored_value = _converted(f"{where}[{key!r}]", convert)
            stored[name] = stored_value
        except (TypeError, ValueError) as e:
            errors.append(e)
    return stored, errors


def check_metadata(metadata: object, where: str = "metadata") -> dict[str, Any]:
    """*metadata* (a mapping or None) as it is stored; raises for what cannot be stored.

    Raises:
        TypeError, ValueError: the first item that cannot be stored (see :func:`json_ready`);
            the others, if any, are named in a note.
    """
    if metadata is None:
        return {}
    if not isinstance(metadata, Mapping):
        raise TypeError(f"{where} must be a mapping, got {describe(metadata)}")
    stored, errors = split_metadata(metadata, where)
    if errors:
        raise first_error(errors)
    return stored


def first_error(errors: list[TypeError | ValueError]) -> TypeError | ValueError:
    """The first of *errors*, with a note naming the others."""
    error = errors[0]
    if len(errors) > 1:
        error.add_note("also: " + "; ".join(str(e) for e in errors[1:]))
    return error


def record_of(info: VideoInfo, codec: Codec | None = None) -> dict[str, Any]:
    """The JSON-ready description of a saved video, with the settings *codec* encoded it at."""
    record = {f.name: getattr(info, f.name) for f in dataclasses.fields(info)}
    record["path"] = info.path.name  # relative: the folder may move
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
        record["preset"] = options.get("preset", options.get("cpu-used"))
        record["interpolation"] = codec.interpolation
    return record


def dumps(record: dict[str, Any], indent: int | None = None) -> bytes:
    """*record* as JSON in UTF-8, converted by :func:`json_ready` (NaN is written as null).

    Non-ASCII text stays readable, except where it cannot be UTF-8 (a lone surrogate from
    ``os.fsdecode`` of a non-UTF-8 path): then everything is escaped, and still round-trips.

    Raises:
        TypeError, ValueError: see :func:`json_ready`; never for metadata that
            :func:`check_metadata` returned.
    """
    data = json_ready(record, "record")
    text = json.dumps(data, ensure_ascii=False, allow_nan=False, indent=indent)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(data, allow_nan=False, indent=indent).encode("ascii")


def write_sidecar(info: VideoInfo, record: dict[str, Any]) -> str:
    """Write ``{name}.json`` beside the video, atomically; returns its path."""
    path = info.path.with_suffix(".json")
    data = dumps(record, indent=2) + b"\n"
    fd, tmp = tempfile.mkstemp(prefix=f".{info.name}.", suffix=".json.rec-tmp", dir=path.parent)
    try:
        share(fd)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return str(path)


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
    fd = os.open(path, flags, 0o666)  # less the umask, as open() does
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
        os.close(fd)  # closing releases the lock


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
                except ValueError:  # UnicodeDecodeError, JSONDecodeError (a blank line too)
                    continue
                if isinstance(record, dict):
                    records.append(record)
    except FileNotFoundError:
        return []
    return records
