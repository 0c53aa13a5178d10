"""The counters behind :class:`RecorderStats`, and the errors kept for stats() and flush()."""

from __future__ import annotations

import collections
from dataclasses import dataclass, field, fields

from recorder._results import RecorderStats

#: errors kept for stats() and for the next flush()/close() to raise (the newest / the first).
MAX_ERRORS = 100


@dataclass(slots=True)
class Counters:
    """Running totals (see :class:`RecorderStats`); changed under the queue's lock."""

    # Frames (one shared by several clips is queued once).
    queued_frames: int = 0
    frames_submitted: int = 0
    frames_encoded: int = 0
    frames_dropped: int = 0
    # Videos, and their output.
    videos_started: int = 0
    videos_saved: int = 0
    videos_dropped: int = 0
    videos_failed: int = 0
    bytes_written: int = 0
    encode_seconds: float = 0.0
    # The newest MAX_ERRORS of each (a failing disk fails every video for hours; each error
    # holds its traceback): the count of the rest is kept instead.
    errors: collections.deque[BaseException] = field(
        default_factory=lambda: collections.deque(maxlen=MAX_ERRORS)
    )
    unreported: list[BaseException] = field(default_factory=list)
    unreported_more: int = 0

    def keep(self, error: BaseException) -> None:
        """Keep *error* for stats() and for the next flush()/close() to raise."""
        self.errors.append(error)
        if len(self.unreported) < MAX_ERRORS:
            self.unreported.append(error)
        else:
            self.unreported_more += 1

    def take_unreported(self) -> tuple[list[BaseException], int]:
        """The errors not yet raised, now reported, and how many more there were."""
        errors, self.unreported = self.unreported, []
        more, self.unreported_more = self.unreported_more, 0
        return errors, more

    def snapshot(
        self, queued_bytes: int, peak_queued_bytes: int, max_queue_bytes: int, pooled_bytes: int
    ) -> RecorderStats:
        """These totals with the memory's figures, as a :class:`RecorderStats`."""
        totals = {f: getattr(self, f) for f in _TOTALS}
        return RecorderStats(
            queued_bytes=queued_bytes,
            peak_queued_bytes=peak_queued_bytes,
            max_queue_bytes=max_queue_bytes,
            pooled_bytes=pooled_bytes,
            errors=tuple(self.errors),
            **totals,
        )


# The totals RecorderStats reports as they are.
_TOTALS = [f.name for f in fields(Counters) if f.name in RecorderStats.__dataclass_fields__]
_TOTALS.remove("errors")
