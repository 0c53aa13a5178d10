"""The mode of the files the recorder renames into place: the one ``open()`` would give them.

``tempfile.mkstemp`` creates its file ``0600`` whatever the umask (a temporary file is private);
a video, sidecar or page renamed from it would stay unreadable to a web server or another user
that can read files made with ``open()``, such as gymnasium's videos.
"""

from __future__ import annotations

import os


def _from_proc() -> int | None:
    """The umask as Linux shows it (``/proc/self/status``): read without changing it."""
    try:
        with open("/proc/self/status", "rb") as f:
            for line in f:
                if line.startswith(b"Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    return None


def _by_setting() -> int:
    # The only portable read is a write, then back: racy with threads creating files meanwhile,
    # so done once, at import; 0o077 (not 0) so such a file is private, never world-writable.
    old = os.umask(0o077)
    os.umask(old)
    return old


_SHOWN = _from_proc()
_AT_IMPORT = _by_setting() if _SHOWN is None else _SHOWN


def umask() -> int:
    """The process's umask now (Linux), else as it was when ``recorder`` was imported."""
    now = _from_proc()
    return _AT_IMPORT if now is None else now


def share(fd: int, mask: int | None = None) -> None:
    """Give the new file *fd* the mode ``open()`` would have: ``0o666`` less the umask (*mask*
    if given: the umask as read before)."""
    if os.chmod in os.supports_fd:  # not on Windows, whose files have no such bits
        os.chmod(fd, 0o666 & ~(umask() if mask is None else mask))
