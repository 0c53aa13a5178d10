"""One video as the gallery sees it: its file, what its sidecar or probe says, its poster."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeGuard

from recorder._base.validate import MAX_INT

#: files shown in a <video> element (a gif is shown as an image).
VIDEO_SUFFIXES = (".mp4", ".webm")

#: the index at the end of a video's name: ``-episode-3``, ``-step-200``.
NAME_INDEX = re.compile(r"-(episode|step)-(\d+)$")


@dataclass
class GalleryEntry:
    """One video of the gallery.

    Attributes:
        file: the file name in the folder.
        info: what is known about it: the sidecar (or manifest line) over what probing found.
        source: ``"sidecar"``, ``"manifest"`` or ``"probe"`` (no record of the recorder).
        poster: PNG bytes of the first frame, or None when it could not be decoded.
        error: why the video could not be read, or None.
        mtime: when the file was last modified.
        timeline: the strip's data from its ``{name}.timeline.json`` (see ``strip``), or None.
        captions: its WebVTT file, or None.
    """

    file: str
    info: dict[str, Any] = field(default_factory=dict)
    source: str = "probe"
    poster: bytes | None = None
    error: str | None = None
    mtime: float | None = None
    timeline: dict[str, Any] | None = None
    captions: Path | None = None

    @property
    def name(self) -> str:
        """The file name without its extension."""
        return Path(self.file).stem

    @property
    def is_video(self) -> bool:
        """Whether it plays in a ``<video>`` element (a gif is shown as an image)."""
        return self.file.lower().endswith(VIDEO_SUFFIXES)

    @property
    def metadata(self) -> Mapping[str, Any]:
        """The user metadata recorded with the episode (seed, return...)."""
        meta = self.info.get("metadata")
        return meta if isinstance(meta, Mapping) else {}

    @property
    def health(self) -> Mapping[str, Any] | None:
        """What the recorder's health check found (``suspect``, ``why``...), or None."""
        health = self.info.get("health")
        return health if isinstance(health, Mapping) else None

    @property
    def suspect(self) -> bool:
        """Whether the health check found the video suspect (blank, frozen...)."""
        return self.health is not None and self.health.get("suspect") is True

    @property
    def partial(self) -> bool:
        """Whether the video was cut short (Ctrl-C, close) or recovered after a crash."""
        return self.info.get("partial") is True

    @property
    def series(self) -> str:
        """The plot's series: the producer (Ray sink) or the name without its index."""
        producer = self.info.get("producer")
        if isinstance(producer, str) and producer:
            return producer
        return NAME_INDEX.sub("", self.name)

    @property
    def created(self) -> float | None:
        """When the video was complete: the recorder's record, else the file's time."""
        created = self.info.get("created")
        if finite(created):
            return float(created)
        return self.mtime

    def point(self) -> dict[str, Any]:
        """What the page's plot and filters know of this video (JSON-able)."""
        values = {str(k): v for k, v in self.metadata.items() if finite(v)}
        for k in ("frames", "duration", "size_bytes"):
            if finite(self.info.get(k)) and k not in values:
                values[k] = self.info[k]
        return {
            "file": self.file,
            "name": self.name,
            "series": self.series,
            "episode": as_int(self.info.get("episode_index")),
            "first_step": as_int(self.info.get("first_step")),
            "created": self.created,
            "suspect": self.suspect,
            "values": values,
        }

    def sort_key(self) -> tuple[float, float, str]:
        """By episode, then first step, then name; unknown episodes last."""
        episode = as_int(self.info.get("episode_index"))
        step = as_int(self.info.get("first_step"))
        return (
            math.inf if episode is None else episode,
            -1 if step is None else step,
            self.name,
        )


def finite(value: Any) -> TypeGuard[float]:
    """Whether *value* is a number a float holds (not a bool, NaN, an infinity or an int beyond)."""
    if isinstance(value, float):
        return math.isfinite(value)
    return isinstance(value, int) and not isinstance(value, bool) and abs(value) <= MAX_INT


def as_int(value: Any) -> int | None:
    """*value* if it is an int (not a bool), else None."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None
