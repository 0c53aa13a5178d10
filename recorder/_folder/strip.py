"""The strip under a video: its ``{name}.timeline.json`` made small enough to embed in the page,
and its ``{name}.vtt`` packed for a page opened from ``file://``.

The timeline is what the worker writes beside a video: ``{"version": 1, "fps", "frames",
"columns": {name: [one value per decoded frame]}}``. The page plots one numeric column against
the frame; strings and vectors are left out, numbers are rounded to 6 significant digits, a
column that counts by a constant step is sent as its first value and step, and one longer than
:data:`MAX_POINTS` as the lowest and highest value of each stretch of frames (a one-frame spike
stays visible).
"""

from __future__ import annotations

import base64
import gzip
import json
import os
from typing import Any

from recorder._folder.entry import as_int, finite

#: a timeline file larger than this is not shown (reading it would stall every page load).
MAX_TIMELINE_BYTES = 16 * 2**20
#: a caption file larger than this is not embedded (served pages still load it).
MAX_CAPTION_BYTES = 4 * 2**20
#: points sent per column at most: more than a strip has pixels.
MAX_POINTS = 1000

Number = int | float  # an int stays one: its JSON is shorter
Column = list[Number | None] | dict[str, Any]


def read_timeline(path: str | os.PathLike[str], fps: Any = None) -> dict[str, Any] | None:
    """The strip's data from a timeline file: ``{"fps", "frames", "columns"}``.

    Args:
        path: the ``{name}.timeline.json`` file.
        fps: the video's frame rate, used when the file does not give one.

    Returns:
        None when the file is missing, too large, not JSON, not the timeline's shape, or has
        no numeric column.
    """
    try:
        with open(path, "rb") as f:
            if os.fstat(f.fileno()).st_size > MAX_TIMELINE_BYTES:
                return None
            data = json.loads(f.read())
    except (OSError, ValueError, RecursionError):
        return None
    return compact(data, fps)


def compact(data: Any, fps: Any = None) -> dict[str, Any] | None:
    """The strip's data from a parsed timeline (see :func:`read_timeline`)."""
    if not isinstance(data, dict) or not isinstance(data.get("columns"), dict):
        return None
    rate = next((r for r in (data.get("fps"), fps) if finite(r) and r > 0), None)
    lists = {k: v for k, v in data["columns"].items() if isinstance(k, str) and isinstance(v, list)}
    frames = as_int(data.get("frames"))
    if frames is None or frames <= 0:
        frames = max((len(v) for v in lists.values()), default=0)
    if rate is None or not frames:
        return None
    columns: dict[str, Column] = {}
    for name, values in lists.items():
        numbers = [_number(v) for v in values[:frames]]
        if any(v is not None for v in numbers):
            columns[name] = pack(numbers)
    if not columns:
        return None
    return {"fps": rate, "frames": frames, "columns": columns}


def pack(values: list[Number | None]) -> Column:
    """One column as the page reads it: the list itself; ``{"start", "step", "count"}`` for
    integers counting by a constant step; ``{"x", "y"}`` (frame, value) when it is too long."""
    n = len(values)
    ints = [v for v in values if isinstance(v, int)]
    if n >= 3 and len(ints) == n:
        step = ints[1] - ints[0]
        if all(v == ints[0] + i * step for i, v in enumerate(ints)):
            return {"start": ints[0], "step": step, "count": n}
    if n <= MAX_POINTS:
        return values
    xs: list[int] = []
    ys: list[Number | None] = []
    buckets = MAX_POINTS // 2
    for b in range(buckets):
        lo, hi = b * n // buckets, (b + 1) * n // buckets
        known = [(v, i) for i, v in enumerate(values[lo:hi], lo) if v is not None]
        if not known:  # a gap: the line breaks there
            xs.append(lo)
            ys.append(None)
            continue
        for i in sorted({min(known)[1], max(known)[1]}):
            xs.append(i)
            ys.append(values[i])
    return {"x": xs, "y": ys}


def pack_captions(path: str | os.PathLike[str]) -> str | None:
    """A WebVTT file gzipped and base64-encoded, for the page to hand its ``<track>`` as a blob.

    Chromium loads no ``file:`` URL into a ``<track>`` (each file is its own origin): a page
    opened from disk carries its captions. None when missing, too large or not WebVTT.
    """
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_CAPTION_BYTES + 1)
    except OSError:
        return None
    if len(data) > MAX_CAPTION_BYTES or not data.removeprefix(b"\xef\xbb\xbf").startswith(
        b"WEBVTT"
    ):
        return None
    return base64.b64encode(gzip.compress(data, 9, mtime=0)).decode("ascii")


def _number(value: Any) -> Number | None:
    """*value* as the strip plots it: a bool as 0/1, a float to 6 significant digits (an
    integral one as an int: shorter JSON); None for anything else."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int) and abs(value) < 2**53:
        return value
    if not finite(value):
        return None
    rounded = float(f"{value:.6g}")
    return int(rounded) if rounded.is_integer() and abs(rounded) < 2**53 else rounded
