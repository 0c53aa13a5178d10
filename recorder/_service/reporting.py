"""How background outcomes reach the caller: events logged once, errors raised from flush/close."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence

logger = logging.getLogger("recorder")


class WarnOnce:
    """Counts events of one kind; logs the first as a warning, the rest at DEBUG."""

    def __init__(self, further: str) -> None:
        self.count = 0
        self._further = further  # appended to the warning: where the rest are counted
        self._lock = threading.Lock()  # events come from any thread

    def __call__(self, message: str, *args: object) -> None:
        """Count one event and log ``message % args``."""
        with self._lock:
            self.count += 1
            first = self.count == 1
        if first:
            logger.warning(f"{message} ({self._further})", *args)
        else:
            logger.debug(message, *args)


def raise_errors(errors: Sequence[BaseException], more: int, other: int = 0) -> None:
    """Raise the one error of *errors*, or an ExceptionGroup of them (*more* were not kept;
    *other* of all were no failed video's: an on_saved callback's, a sidecar's)."""
    if len(errors) == 1:
        raise errors[0]
    if errors:
        total = len(errors) + more
        title = f"{total} videos failed"
        if other:
            title = f"{total} errors in the background ({total - other} videos failed)"
        group = BaseExceptionGroup(title, errors)
        if more:
            group.add_note(
                f"the first {len(errors)} errors are attached; {more} more were not kept "
                "(stats().videos_failed counts every failed video; an on_saved error is not one)"
            )
        raise group


def note_close_error(block_error: BaseException, close_error: BaseException) -> None:
    """A ``with`` block raised *block_error* and closing the recorder then raised
    *close_error*: the block's propagates, with the other noted on it and logged."""
    logger.error("closing the recorder after an error in its block failed", exc_info=close_error)
    block_error.add_note(f"while closing the recorder: {close_error!r}")
