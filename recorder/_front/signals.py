"""Opt-in SIGTERM handling: unwind like Ctrl-C so recorders flush before the process exits."""

from __future__ import annotations

import signal
from types import FrameType


def _exit_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def handle_sigterm() -> None:
    """Turn SIGTERM into ``SystemExit(143)`` in the main thread.

    ``with Recorder(...)`` blocks then exit normally (flushing), and a Recorder never closed is
    flushed at interpreter exit, as after Ctrl-C. A signal during that flush (a second SIGTERM
    or SIGINT) drops what is left quickly; no half-written video remains under a final name.
    Opt-in because a library should not take a signal over behind its user's back.

    Raises:
        ValueError: not called from the main thread (a Python rule for signal handlers).
    """
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
