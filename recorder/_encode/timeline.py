"""A video's per-frame info beside it: ``{name}.timeline.json`` (columns) and ``{name}.vtt``
(WebVTT captions), written by the worker once the video is in place, each atomically.

``{name}.timeline.json`` is ``{"version": 1, "name", "fps", "frames", "columns": {key: [value
per frame]}}``: index i of every column is the video's frame i (the i-th frame a decoder
returns); a frame without that key has null. ``{name}.vtt`` has a cue per run of frames with
the same text, ``step 12 · reward 1.0 · return 13.0`` (the columns in order, nulls left out).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from recorder._base.info import Info, row_text
from recorder._base.validate import frame_rate
from recorder._encode.sidecars import write_atomic

VERSION = 1
TIMELINE_SUFFIX = ".timeline.json"
CAPTIONS_SUFFIX = ".vtt"
TIMELINE_SUFFIXES = (TIMELINE_SUFFIX, CAPTIONS_SUFFIX)  # the files write_timeline writes


def timeline_paths(video: Path) -> tuple[Path, Path]:
    """The timeline and captions files of the video *video*."""
    return video.with_suffix(TIMELINE_SUFFIX), video.with_suffix(CAPTIONS_SUFFIX)


def write_timeline(
    video: Path, name: str, fps: float, rows: Sequence[Info | None]
) -> dict[str, str]:
    """Write the timeline and captions of the video *video* (named *name*, at *fps*) whose
    frame i had the info ``rows[i]``; nothing when no frame had any.

    Returns:
        What the sidecar says of them: ``{"timeline": file name, "captions": file name}``,
        or ``{}``.
    """
    if not any(rows):
        return {}
    columns = columns_of(rows)
    document = {"version": VERSION, "name": name, "fps": fps, "frames": len(rows)}
    timeline, captions = timeline_paths(video)
    write_atomic(timeline, _json({**document, "columns": columns}), name)
    write_atomic(captions, webvtt(rows, fps, list(columns)).encode("utf-8", "replace"), name)
    return {"timeline": timeline.name, "captions": captions.name}


def columns_of(rows: Sequence[Info | None]) -> dict[str, list[Any]]:
    """*rows* as columns: every key any row has (in the order first seen), a value per row."""
    keys = dict.fromkeys(key for row in rows if row for key in row)
    return {key: [None if row is None else row.get(key) for row in rows] for key in keys}


def webvtt(rows: Sequence[Info | None], fps: float, keys: list[str]) -> str:
    """WebVTT captions of *rows* (frames at *fps*): a cue per run of frames with the same text."""
    rate = frame_rate(fps)
    out = ["WEBVTT", ""]
    text, start = "", 0
    for i, row in enumerate([*rows, None]):
        now = "" if row is None else row_text(row, keys)
        if now == text:
            continue
        begin, end = _stamp(start / rate), _stamp(i / rate)
        if text and begin != end:  # (above 1,000 fps a frame can be shown for under 1 ms)
            out += [f"{begin} --> {end}", _cue_text(text), ""]
        text, start = now, i
    return "\n".join(out)


def _stamp(seconds: Any) -> str:
    """``hh:mm:ss.ttt`` of *seconds* (a Fraction), to the nearest millisecond."""
    ms = round(seconds * 1000)
    return f"{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d}.{ms % 1000:03d}"


def _cue_text(text: str) -> str:
    """*text* as a cue's one line: ``&``, ``<`` and ``>`` escaped (so it stays text, and
    holds no ``-->``), line breaks as spaces (a blank line would end the cue)."""
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return " ".join(text.splitlines())


def _json(document: dict[str, Any]) -> bytes:
    """*document* (plain values: :func:`~recorder._base.info.check_info` made them) as compact
    JSON in UTF-8; escaped to ASCII when a string cannot be UTF-8 (a lone surrogate)."""
    text = json.dumps(document, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(document, allow_nan=False, separators=(",", ":")).encode("ascii")
