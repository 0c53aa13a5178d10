"""The mode of the files the recorder renames into place: the one ``open()`` would give them.

``tempfile.mkstemp`` creates its file ``0600`` whatever the umask (a temporary file is private);
a video, sidecar or page renamed from it would stay unreadable to a web server or another user
that can read files made with ``open()``, such as gymnasium's videos.
"""

from __future__ import annotations

import os

_STATUS = "/proc/self/status"


def _umask_once() -> int:
    # The only portable read is a write, then back: racy with threads creating files meanwhile,
    # so done once, at import; 0o077 (not 0) so such a file is private, never world-writable.
    old = os.umask(0o077)
    os.umask(old)
    return old


_UMASK_AT_IMPORT = _umask_once()


def umask() -> int:
    """The process's umask now (Linux: from ``/proc``, no change; elsewhere: at import)."""
    try:
        with open(_STATUS, "rb") as f:
            for line in f:
                if line.startswith(b"Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    return _UMASK_AT_IMPORT


def share(fd: int) -> None:
    """Give the new file *fd* the mode ``open()`` would have: ``0o666`` less the umask."""
    if os.chmod in os.supports_fd:  # not on Windows, whose files have no such bits
        os.chmod(fd, 0o666 & ~umask())
