"""Opt-in SIGTERM handling: unwind like Ctrl-C so recorders flush before the process exits."""

from __future__ import annotations

import signal
import sys
import threading
from types import FrameType

from recorder._service.service import closing_at_exit, drop_all_live

_signals = 0  # SIGTERMs received since handle_sigterm()


def _exit_on_sigterm(signum: int, frame: FrameType | None) -> None:
    global _signals
    _signals += 1
    if _signals == 1 and closing_at_exit():
        # The process is leaving already, flushing at exit: what SIGTERM asks for is under
        # way (multiprocessing's Pool.terminate() signals workers that are leaving). Raised,
        # it would drop the flush, as a second signal does; the next one still does.
        return
    if _signals == 2 and _asyncio_loop_runs():
        # The first SystemExit is unwinding the event loop (asyncio.run cancels the main task,
        # whose shielded close flushes). Raised again inside that cleanup, it would destroy
        # the task mid-close and leave its threads behind; dropping what is left lets the
        # close finish now, and the first SystemExit ends the program. (A third one raises.)
        # On a thread: the handler may run while this thread holds a queue's lock.
        threading.Thread(target=drop_all_live, args=("a second SIGTERM",), daemon=True).start()
        return
    raise SystemExit(128 + signum)


def _asyncio_loop_runs() -> bool:
    asyncio = sys.modules.get("asyncio")
    return asyncio is not None and asyncio.events._get_running_loop() is not None


def handle_sigterm() -> None:
    """Turn SIGTERM into ``SystemExit(143)`` in the main thread.

    ``with Recorder(...)`` blocks then exit normally (flushing), and a Recorder never closed is
    flushed at interpreter exit, as after Ctrl-C. A signal during that flush (a second SIGTERM
    or SIGINT) drops what is left quickly; no half-written video remains under a final name.
    Under asyncio (``asyncio.run``) a second SIGTERM drops what is left without raising again,
    so the first one's exit completes. Opt-in because a library should not take a signal over
    behind its user's back.

    Raises:
        ValueError: not called from the main thread (a Python rule for signal handlers).
    """
    global _signals
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    _signals = 0
