"""The counters behind :class:`RecorderStats`, and the errors kept for stats() and flush()."""

from __future__ import annotations

import collections

from recorder._base.results import RecorderStats

#: errors kept for stats() and for the next flush()/close() to raise (the newest / the first).
MAX_ERRORS = 100


class Counters:
    """Running totals (see :class:`RecorderStats`); changed under the queue's lock."""

    #: the totals RecorderStats reports as they are.
    TOTALS = (
        "queued_frames",
        "frames_submitted",
        "frames_encoded",
        "frames_dropped",
        "videos_started",
        "videos_saved",
        "videos_dropped",
        "videos_failed",
        "bytes_written",
        "encode_seconds",
    )
    __slots__ = (*TOTALS, "errors", "unreported", "unreported_more", "unreported_other")

    def __init__(self) -> None:
        self.queued_frames = self.frames_submitted = self.frames_encoded = 0
        self.frames_dropped = self.videos_started = self.videos_saved = 0
        self.videos_dropped = self.videos_failed = self.bytes_written = 0
        self.encode_seconds = 0.0
        # The newest MAX_ERRORS (a failing disk fails every video for hours; each error holds
        # its traceback); of the unreported ones, the first MAX_ERRORS and a count of the rest.
        self.errors: collections.deque[BaseException] = collections.deque(maxlen=MAX_ERRORS)
        self.unreported: list[BaseException] = []
        self.unreported_more = 0
        self.unreported_other = 0  # of those (kept or not), errors that are no video's own

    def keep(self, error: BaseException, *, video: bool = True) -> None:
        """Keep *error* (a failed video's, or not: a callback's, a sidecar's) for stats() and
        for the next flush()/close() to raise."""
        self.errors.append(error)
        if len(self.unreported) < MAX_ERRORS:
            self.unreported.append(error)
        else:
            self.unreported_more += 1
        if not video:
            self.unreported_other += 1

    def take_unreported(self) -> tuple[list[BaseException], int, int]:
        """The errors not yet raised, now reported; how many more there were; and how many
        of all those were no video's own."""
        errors, self.unreported = self.unreported, []
        more, self.unreported_more = self.unreported_more, 0
        other, self.unreported_other = self.unreported_other, 0
        return errors, more, other

    def snapshot(
        self, queued_bytes: int, peak_queued_bytes: int, max_queue_bytes: int, pooled_bytes: int
    ) -> RecorderStats:
        """These totals with the memory's figures, as a :class:`RecorderStats`."""
        totals = {name: getattr(self, name) for name in self.TOTALS}
        return RecorderStats(
            queued_bytes=queued_bytes,
            peak_queued_bytes=peak_queued_bytes,
            max_queue_bytes=max_queue_bytes,
            pooled_bytes=pooled_bytes,
            errors=tuple(self.errors),
            **totals,
        )
