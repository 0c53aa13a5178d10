"""Shared fixtures: every test leaves no recorder thread behind."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator

import pytest

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")


def _recorder_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("recorder-") and t.is_alive()]


@pytest.fixture(autouse=True)
def no_thread_left() -> Iterator[None]:
    """Fail a test that leaves a recorder worker thread running (a Recorder not closed)."""
    before = set(_recorder_threads())
    yield
    left = [t for t in _recorder_threads() if t not in before]
    assert not left, f"threads left running: {[t.name for t in left]}"


@pytest.fixture
def no_worker_left() -> Iterator[None]:
    """Fail a test after which any recorder worker thread runs (the wrappers' own ones too)."""
    yield
    left = [t.name for t in threading.enumerate() if t.name.startswith("recorder-worker")]
    assert not left, f"recorder threads left running: {left}"
