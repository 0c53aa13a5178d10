"""The live gallery's data: the page as the folder is now, and what ``manifest.jsonl`` said since.

A page carries the manifest's byte offset it was rendered at; it polls :meth:`updates` with it
and gets the cards of the videos saved since (rendered and escaped here, as the page's are)
and the files deleted since (keep). No state per client: the offset is the cursor.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

from recorder._base.kept import kept
from recorder._encode.sidecars import MANIFEST
from recorder._folder.gallery import GalleryEntry, describe, plain_name, scan
from recorder._folder.html import card, render

# One answer reads at most this much of the manifest; the page asks again at once for more.
MAX_READ = 2**20


class LiveFolder:
    """A folder the gallery server watches.

    Args:
        folder: the folder of videos.
        title: the page title; the folder's name by default.
        poll_ms: how often the page asks for updates.
    """

    def __init__(
        self, folder: str | os.PathLike[str], title: str | None = None, poll_ms: int = 1000
    ) -> None:
        self.root = Path(folder)
        self.title = title or self.root.resolve().name or str(self.root)
        self.poll_ms = poll_ms
        # Probing decodes a first frame: a page load or an update re-probes only changed files.
        self._cache: dict[str, tuple[Any, GalleryEntry]] = {}
        self._lock = threading.Lock()

    def page(self) -> str:
        """The page for the folder as it is, following the manifest from now on."""
        # The offset is taken before the scan: a video saved in between comes twice (the page
        # replaces its card), never not at all.
        offset = self._end_of_lines()
        with self._lock:
            entries = scan(self.root, self._cache)
            shown = {entry.file for entry in entries}
            for name in kept(self._cache, lambda name: name not in shown):
                del self._cache[name]  # deleted (keep), renamed: a long run must not keep it
        live = {"offset": offset, "updates": "_recorder/updates", "poll_ms": self.poll_ms}
        return render(entries, self.title, live=live)

    def updates(self, offset: int) -> dict[str, Any]:
        """What the manifest says after byte *offset*.

        Returns:
            ``{"offset": next, "more": bool, "events": [...], "reset": bool}``; an event is
            ``{"add": {"file", "html", "point", "timeline"}}`` (timeline: the strip's data, or
            None) or ``{"remove": file}``. ``reset``: the manifest is shorter than *offset*
            (replaced): the page reloads.
        """
        try:
            with open(self.root / MANIFEST, "rb") as f:
                size = os.fstat(f.fileno()).st_size
                if offset > size:
                    return {"offset": 0, "more": False, "events": [], "reset": True}
                f.seek(offset)
                data = f.read(MAX_READ)
                while b"\n" not in data and (chunk := f.read(MAX_READ)):
                    data += chunk  # one line longer than MAX_READ: read it whole
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            # Gone, or the folder (or the manifest's name) is no longer what it was.
            return {"offset": 0, "more": False, "events": [], "reset": offset > 0}
        complete = data[: data.rfind(b"\n") + 1]  # a line being written waits for next time
        events = [e for line in complete.splitlines() if (e := self._event(line)) is not None]
        end = offset + len(complete)
        return {"offset": end, "more": end < size and bool(complete), "events": events}

    def _event(self, line: bytes) -> dict[str, Any] | None:
        try:
            record = json.loads(line.decode("utf-8"))
        except (ValueError, RecursionError):
            return None  # torn or not ours: read_manifest skips it too
        if not isinstance(record, dict):
            return None
        if record.get("event") == "deleted":
            return self._deleted(record.get("file"))
        name = record.get("path")
        if record.get("event") is not None or not plain_name(name):
            return None
        with self._lock:
            entry = describe(self.root / name, record, self._cache)
            if entry is None:  # deleted since (keep), or not a video
                self._cache.pop(name, None)
                return None
        html, point = card(entry), entry.point()
        return {
            "add": {"file": entry.file, "html": html, "point": point, "timeline": entry.timeline}
        }

    def _deleted(self, file: object) -> dict[str, Any] | None:
        if not isinstance(file, str):
            return None
        with self._lock:
            self._cache.pop(file, None)
        return {"remove": file}

    def _end_of_lines(self) -> int:
        try:
            with open(self.root / MANIFEST, "rb") as f:
                data = f.read()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return 0
        return data.rfind(b"\n") + 1
